//! Checks against numbers from scikit-learn: `tests/fixtures/sklearn-eval.json`,
//! made by `scripts/make_sklearn_fixture.py` (its docstring says what is in it).

use std::collections::BTreeMap;

use serde_json::Value;

use super::calibration::calibration;
use super::logistic::LogisticRegression;
use super::metrics::Confusion;
use super::tfidf::Tfidf;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sklearn-eval.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!((got - want).abs() <= tol, "{what}: got {got}, scikit-learn {want}");
}

/// Compares one confusion's scores with a `scores()` block of the fixture.
fn check_scores(c: &Confusion, want: &Value, what: &str) {
    let s = c.scores();
    let counts: Vec<Vec<u64>> = c.counts.rows().into_iter().map(|r| r.to_vec()).collect();
    let want_counts: Vec<Vec<u64>> = serde_json::from_value(want["confusion"].clone()).unwrap();
    assert_eq!(counts, want_counts, "{what}: confusion");
    for (i, l) in s.per_label.iter().enumerate() {
        close(l.precision, floats(&want["precision"])[i], 1e-12, &format!("{what} precision {}", l.label));
        close(l.recall, floats(&want["recall"])[i], 1e-12, &format!("{what} recall {}", l.label));
        close(l.f1, floats(&want["f1"])[i], 1e-12, &format!("{what} f1 {}", l.label));
        assert_eq!(l.support as usize, indices(&want["support"])[i], "{what} support");
    }
    close(s.accuracy, want["accuracy"].as_f64().unwrap(), 1e-12, &format!("{what} accuracy"));
    close(s.macro_f1, want["macro_f1"].as_f64().unwrap(), 1e-12, &format!("{what} macro F1"));
    close(s.f_avg, want["f_avg"].as_f64().unwrap(), 1e-12, &format!("{what} F_avg"));
}

#[test]
fn metrics_match_scikit_learn() {
    let f = fixture();
    let labels: Vec<String> = serde_json::from_value(f["labels"].clone()).unwrap();
    let case = &f["metrics"];
    let records = case["records"].as_array().unwrap();
    let field = |r: &Value, k: &str| r[k].as_u64().unwrap() as usize;
    let gold: Vec<usize> = records.iter().map(|r| field(r, "gold")).collect();
    let pred: Vec<usize> = records.iter().map(|r| field(r, "pred")).collect();
    check_scores(&Confusion::new(&labels, &gold, &pred), &case["pooled"], "pooled");
    let mut by_target: BTreeMap<&str, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (r, (&g, &p)) in records.iter().zip(gold.iter().zip(&pred)) {
        let entry = by_target.entry(r["target"].as_str().unwrap()).or_default();
        entry.0.push(g);
        entry.1.push(p);
    }
    for (target, (g, p)) in &by_target {
        check_scores(&Confusion::new(&labels, g, p), &case["targets"][target], target);
    }
    let probs: Vec<Vec<f64>> = records.iter().map(|r| floats(&r["probs"])).collect();
    let want = &case["calibration"];
    let c = calibration(&gold, &pred, &probs, want["n_bins"].as_u64().unwrap() as usize);
    assert_eq!(c.bins.iter().map(|b| b.count as usize).collect::<Vec<_>>(), indices(&want["counts"]));
    let filled: Vec<_> = c.bins.iter().filter(|b| b.count > 0).collect();
    for (i, b) in filled.iter().enumerate() {
        close(b.accuracy, floats(&want["prob_true"])[i], 1e-12, "bin accuracy");
        close(b.confidence, floats(&want["prob_pred"])[i], 1e-12, "bin confidence");
    }
    close(c.ece, want["ece"].as_f64().unwrap(), 1e-12, "ECE");
    close(c.brier, want["brier"].as_f64().unwrap(), 1e-12, "Brier");
    close(c.log_loss.unwrap(), want["log_loss"].as_f64().unwrap(), 1e-12, "log loss");
}

#[test]
fn tfidf_and_logistic_regression_match_scikit_learn() {
    let f = fixture();
    let case = &f["tfidf_lr"];
    let text = |split: &str| -> Vec<(String, usize)> {
        let rows = case[split].as_array().unwrap();
        rows.iter().map(|r| (r["text"].as_str().unwrap().to_string(), r["label"].as_u64().unwrap() as usize)).collect()
    };
    let (train, test) = (text("train"), text("test"));
    let train_docs: Vec<&str> = train.iter().map(|(t, _)| t.as_str()).collect();
    let vectorizer = Tfidf::fit(&train_docs);
    let mut names: Vec<(&u32, &String)> = vectorizer.vocabulary.iter().map(|(t, i)| (i, t)).collect();
    names.sort();
    let names: Vec<&str> = names.into_iter().map(|(_, t)| t.as_str()).collect();
    let want_names: Vec<String> = serde_json::from_value(case["feature_names"].clone()).unwrap();
    assert_eq!(names, want_names);
    for (got, want) in vectorizer.idf.iter().zip(floats(&case["idf"])) {
        close(*got, want, 1e-12, "idf");
    }
    let x_test: Vec<_> = test.iter().map(|(t, _)| vectorizer.transform(t)).collect();
    for (row, want) in x_test.iter().zip(case["test_tfidf"].as_array().unwrap()) {
        let mut dense = vec![0.0; vectorizer.n_features()];
        row.iter().for_each(|&(j, v)| dense[j as usize] = v);
        for (got, want) in dense.iter().zip(floats(want)) {
            close(*got, want, 1e-12, "tf-idf value");
        }
    }
    let x_train: Vec<_> = train_docs.iter().map(|t| vectorizer.transform(t)).collect();
    let y_train: Vec<usize> = train.iter().map(|(_, y)| *y).collect();
    let model = LogisticRegression::fit(&x_train, &y_train, vectorizer.n_features(), case["C"].as_f64().unwrap());
    let want_pred = indices(&case["test_pred"]);
    for ((row, want), want_label) in x_test.iter().zip(case["test_probs"].as_array().unwrap()).zip(want_pred) {
        let p = model.predict_proba(row, 3);
        for (got, want) in p.iter().zip(floats(want)) {
            close(*got, want, 1e-6, "probability");
        }
        let argmax = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(argmax, want_label);
    }
}
