//! End-to-end: `stancekit eval` as a user runs it, on predictions files and on
//! a model that `stancekit train` made.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

const TARGETS: &str = r#"{"targets": {"nato": "ukraine joining nato", "europe": "europe pay more"}}"#;
const LABELS: [&str; 3] = ["favor", "against", "none"];

fn stancekit(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stancekit")).current_dir(dir).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_lines(path: &Path, rows: &[Value]) {
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, body).unwrap();
}

/// `n` sentences labelled for both targets; the label follows a word of the sentence.
fn gold_rows(n: usize, prefix: &str) -> Vec<Value> {
    let words = ["for", "against", "not"];
    let topics = ["the war", "peace talks", "land", "borders", "defence spending", "europe"];
    (0..n)
        .flat_map(|i| {
            let label = LABELS[i % 3];
            let text = format!("it is {} {} {}", words[i % 3], topics[i % topics.len()], i / 3);
            let id = format!("{prefix}{i}");
            ["nato", "europe"].map(|t| json!({"id": id, "text": text, "target": t, "label": label}))
        })
        .collect()
}

/// Predictions that get every `every`-th record wrong (predicting the next label), with probabilities.
fn predictions(gold: &[Value], every: usize) -> Vec<Value> {
    gold.iter()
        .enumerate()
        .map(|(i, g)| {
            let gold_index = LABELS.iter().position(|l| *l == g["label"]).unwrap();
            let pred = if i % every == 0 { (gold_index + 1) % 3 } else { gold_index };
            let mut probs = serde_json::Map::new();
            for (j, l) in LABELS.iter().enumerate() {
                probs.insert(l.to_string(), json!(if j == pred { 0.8 } else { 0.1 }));
            }
            json!({"id": g["id"], "text": g["text"], "target": g["target"], "label": LABELS[pred], "probs": probs})
        })
        .collect()
}

/// targets.json, train.jsonl and gold.jsonl in a temp folder.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("targets.json"), TARGETS).unwrap();
    write_lines(&dir.path().join("train.jsonl"), &gold_rows(30, "t"));
    write_lines(&dir.path().join("gold.jsonl"), &gold_rows(12, "g"));
    dir
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn scores_a_predictions_file_and_writes_the_report() {
    let dir = setup();
    let gold: Vec<Value> = gold_rows(12, "g");
    write_lines(&dir.path().join("theirs.jsonl"), &predictions(&gold, 4));
    let out = stancekit(
        dir.path(),
        &[
            "eval",
            "--predictions",
            "other=theirs.jsonl",
            "--data",
            "gold.jsonl",
            "--train",
            "train.jsonl",
            "--targets",
            "targets.json",
            "--bootstrap",
            "200",
            "--report",
            "report",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.starts_with("24 records, 12 sentences, 2 targets; 200 bootstrap resamples"), "{stdout}");
    for name in ["other", "majority", "tfidf-lr"] {
        assert!(stdout.lines().any(|l| l.starts_with(name)), "{name} missing from\n{stdout}");
    }
    let report = dir.path().join("report");
    let metrics = read_json(&report.join("metrics.json"));
    // The documented schema (docs/metrics-json.md): a change here is a change there.
    assert_eq!(metrics["schema"], "stancekit.metrics/1");
    assert_eq!(
        keys(&metrics),
        ["schema", "labels", "stance_labels", "data", "bootstrap", "systems", "comparisons", "notes"]
    );
    let system = &metrics["systems"][0];
    assert_eq!(
        keys(system),
        ["name", "kind", "source", "pooled", "mean_over_targets", "targets", "calibration", "errors"]
    );
    assert_eq!(keys(&system["pooled"]), ["n", "accuracy", "macro_f1", "f_avg", "per_label", "confusion", "ci"]);
    assert_eq!((system["name"].as_str(), system["kind"].as_str()), (Some("other"), Some("predictions")));
    // Records 0, 4, 8, …, 20 are wrong: 6 of 24.
    assert_eq!(system["errors"]["count"], 6);
    assert_eq!(system["pooled"]["accuracy"], 0.75);
    assert_eq!(system["targets"].as_array().unwrap().len(), 2);
    assert_eq!(metrics["systems"][1]["kind"], "baseline");
    let comparison = &metrics["comparisons"][0];
    assert_eq!((comparison["a"].as_str(), comparison["b"].as_str()), (Some("other"), Some("majority")));
    assert!(comparison["differences"][0]["p_value"].is_number());
    let lines = std::fs::read_to_string(report.join("predictions.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 24);
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!((first["label"].as_str(), first["gold"].as_str()), (Some("against"), Some("favor")));
    assert_eq!(first["probs"]["against"], 0.8);
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("Pooled F_avg of <b>other</b>") && html.contains("<svg"));
    assert!(std::fs::read_to_string(report.join("report.md")).unwrap().contains("# Stance evaluation"));
    assert_eq!(read_json(&report.join("eval_config.json"))["bootstrap"], 200);
}

/// F_avg leaves out the label the targets file names `neutral` (`none` when
/// it names none): with favor/against/none renamed pro/con/neutral and
/// `"neutral": "neutral"` it scores as before; without it, no label is left
/// out and F_avg is macro-F1.
#[test]
fn f_avg_leaves_out_the_neutral_label_the_targets_file_names() {
    let dir = setup();
    let gold = gold_rows(12, "g");
    // Every third record wrong: all of them favor or against, so the neutral label's F1 differs.
    write_lines(&dir.path().join("theirs.jsonl"), &predictions(&gold, 3));
    let rename = |text: String| text.replace("favor", "pro").replace("against", "con").replace("none", "neutral");
    let renamed = |name: &str| {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(format!("renamed-{name}")), rename(text)).unwrap();
    };
    renamed("gold.jsonl");
    renamed("theirs.jsonl");
    let labels = r#""labels": ["pro", "con", "neutral"]"#;
    let targets = r#""targets": {"nato": "ukraine joining nato", "europe": "europe pay more"}"#;
    std::fs::write(dir.path().join("declared.json"), format!(r#"{{{labels}, "neutral": "neutral", {targets}}}"#))
        .unwrap();
    std::fs::write(dir.path().join("undeclared.json"), format!("{{{labels}, {targets}}}")).unwrap();
    let pooled = |gold: &str, predictions: &str, targets: &str, report: &str| {
        let args = ["eval", "--predictions", predictions, "--data", gold, "--targets", targets, "--report", report];
        let out = stancekit(dir.path(), &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let metrics = read_json(&dir.path().join(report).join("metrics.json"));
        (metrics["stance_labels"].clone(), metrics["systems"][0]["pooled"].clone())
    };
    let (stance, original) = pooled("gold.jsonl", "theirs.jsonl", "targets.json", "a");
    assert_eq!(stance, json!(["favor", "against"]));
    let (stance, declared) = pooled("renamed-gold.jsonl", "renamed-theirs.jsonl", "declared.json", "b");
    assert_eq!(stance, json!(["pro", "con"]));
    assert_eq!(declared["f_avg"], original["f_avg"]);
    let md = std::fs::read_to_string(dir.path().join("b/report.md")).unwrap();
    assert!(md.contains("here pro and con (leaving out `neutral`, the neutral label;"), "the report says which labels");
    assert_ne!(declared["f_avg"], declared["macro_f1"]);
    let (stance, undeclared) = pooled("renamed-gold.jsonl", "renamed-theirs.jsonl", "undeclared.json", "c");
    assert_eq!(stance, json!(["pro", "con", "neutral"]));
    assert_eq!(undeclared["f_avg"], undeclared["macro_f1"]);
    std::fs::write(dir.path().join("bad.json"), format!(r#"{{{labels}, "neutral": "none", {targets}}}"#)).unwrap();
    let out = stancekit(dir.path(), &["data", "check", "renamed-gold.jsonl", "--targets", "bad.json"]);
    assert!(text(&out.stderr).contains("bad.json: neutral: 'none' is not one of the labels (pro, con, neutral)"));
}

#[test]
fn predictions_that_do_not_match_the_gold_are_listed() {
    let dir = setup();
    let mut rows = predictions(&gold_rows(12, "g"), 3);
    rows[1]["target"] = json!("climate");
    rows[2]["id"] = json!("g99");
    rows.truncate(20);
    write_lines(&dir.path().join("bad.jsonl"), &rows);
    let out = stancekit(
        dir.path(),
        &["eval", "--predictions", "bad.jsonl", "--data", "gold.jsonl", "--targets", "targets.json"],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    for expected in [
        "bad.jsonl:2: id: gold has id 'g0' for target(s) nato, europe, not 'climate'",
        "bad.jsonl:3: id: no gold record has id 'g99'",
        "no prediction for gold record id 'g0', target 'europe'",
        "no prediction for gold record id 'g11', target 'europe'",
    ] {
        assert!(stderr.contains(expected), "{expected} not in\n{stderr}");
    }
}

#[test]
fn compare_shows_two_systems_with_a_paired_p_value_and_notes_missing_baselines() {
    let dir = setup();
    std::fs::remove_file(dir.path().join("train.jsonl")).unwrap();
    let gold = gold_rows(12, "g");
    write_lines(&dir.path().join("a.jsonl"), &predictions(&gold, 8));
    write_lines(&dir.path().join("b.jsonl"), &predictions(&gold, 2));
    let out = stancekit(
        dir.path(),
        &[
            "eval",
            "--compare",
            "a.jsonl",
            "b.jsonl",
            "--data",
            "gold.jsonl",
            "--targets",
            "targets.json",
            "--report",
            "r",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("a vs b: pooled F_avg +"), "{}", text(&out.stdout));
    let metrics = read_json(&dir.path().join("r/metrics.json"));
    assert_eq!(metrics["systems"].as_array().unwrap().len(), 2);
    let d = &metrics["comparisons"][0]["differences"][0];
    assert_eq!(d["metric"], "pooled.f_avg");
    assert!(d["difference"].as_f64().unwrap() > 0.0);
    assert!(metrics["notes"][0].as_str().unwrap().starts_with("Baselines not shown: no training data"));
    assert!(dir.path().join("r/predictions-b.jsonl").is_file());
}

#[test]
fn evaluates_a_model_that_train_made() {
    let dir = setup();
    let base = dir.path().join("base");
    stancekit::testing::write_tiny_model(&base, 5).unwrap();
    write_lines(&dir.path().join("dev.jsonl"), &gold_rows(6, "d"));
    let train = stancekit(
        dir.path(),
        &[
            "train",
            "--model",
            "base",
            "--train",
            "train.jsonl",
            "--dev",
            "dev.jsonl",
            "--targets",
            "targets.json",
            "--out",
            "run",
            "--num-train-epochs",
            "2",
            "--device",
            "cpu",
            "--quiet",
        ],
    );
    assert!(train.status.success(), "{}", text(&train.stderr));
    let out = stancekit(
        dir.path(),
        &[
            "eval",
            "--model",
            "run",
            "--data",
            "gold.jsonl",
            "--targets",
            "targets.json",
            "--bootstrap",
            "100",
            "--report",
            "r",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let metrics = read_json(&dir.path().join("r/metrics.json"));
    let system = &metrics["systems"][0];
    assert_eq!((system["name"].as_str(), system["kind"].as_str()), (Some("run"), Some("model")));
    assert!(system["calibration"]["ece"].is_number());
    // The baselines trained on what the run trained on, as its train_config.json says.
    assert!(
        metrics["systems"][2]["source"].as_str().unwrap().contains("train.jsonl (as the run"),
        "{}",
        metrics["systems"][2]
    );
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(dir.path().join("r/predictions.jsonl")).unwrap().lines().next().unwrap(),
    )
    .unwrap();
    let total: f64 = LABELS.iter().map(|l| first["probs"][l].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-5);
    let html = std::fs::read_to_string(dir.path().join("r/report.html")).unwrap();
    assert!(html.contains("Dev scores (%)"), "training curves from metrics.jsonl");
    // gold_rows repeats texts across files: the report must say the run has seen them.
    let notes: Vec<&str> = metrics["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(notes.iter().any(|n| n.contains("also in the training data of run")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("also in the dev data that selected the model of run")), "{notes:?}");
    assert!(notes.iter().any(|n| n.starts_with("The probabilities of run are calibrated")), "{notes:?}");
    // Without --targets the run's own labels and targets apply (this folder has no datasets/targets.json).
    let out = stancekit(dir.path(), &["eval", "--model", "run", "--data", "gold.jsonl", "--report", "r2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = read_json(&dir.path().join("r2/metrics.json"));
    assert_eq!(again["systems"][0]["pooled"]["confusion"], system["pooled"]["confusion"]);
}

/// `stancekit train` of a tiny model on `train`, selected on `dev`, into `out`.
fn train_tiny(dir: &Path, train: &str, dev: &str, out: &str) {
    if !dir.join("base").exists() {
        stancekit::testing::write_tiny_model(&dir.join("base"), 5).unwrap();
    }
    let args = ["train", "--model", "base", "--train", train, "--dev", dev, "--targets", "targets.json"];
    let rest = ["--out", out, "--num-train-epochs", "1", "--device", "cpu", "--quiet"];
    let trained = stancekit(dir, &[&args[..], &rest[..]].concat());
    assert!(trained.status.success(), "{}", text(&trained.stderr));
}

#[test]
fn without_targets_runs_on_different_targets_compare_on_what_they_share() {
    let dir = setup();
    let only_nato = |rows: Vec<Value>| rows.into_iter().filter(|r| r["target"] == "nato").collect::<Vec<_>>();
    write_lines(&dir.path().join("train-nato.jsonl"), &only_nato(gold_rows(30, "t")));
    write_lines(&dir.path().join("gold-nato.jsonl"), &only_nato(gold_rows(12, "g")));
    write_lines(&dir.path().join("dev.jsonl"), &gold_rows(6, "d"));
    write_lines(&dir.path().join("dev-nato.jsonl"), &only_nato(gold_rows(6, "d")));
    train_tiny(dir.path(), "train-nato.jsonl", "dev-nato.jsonl", "nato-only");
    train_tiny(dir.path(), "train.jsonl", "dev.jsonl", "both");
    // The second run's training data names `europe`, which the first run does not know.
    let out = stancekit(dir.path(), &["eval", "--compare", "nato-only", "both", "--data", "gold-nato.jsonl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("nato-only vs both: pooled F_avg"), "{}", text(&out.stdout));
    // A gold target no run knows is blamed on the runs, not on a targets file.
    let out = stancekit(dir.path(), &["eval", "--model", "nato-only", "--data", "gold.jsonl"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("unknown target 'europe': no model evaluated was trained on it"), "{stderr}");
}

#[test]
fn cross_validation_trains_and_evaluates_every_fold() {
    let dir = setup();
    stancekit::testing::write_tiny_model(&dir.path().join("base"), 5).unwrap();
    let out = stancekit(
        dir.path(),
        &[
            "cv",
            "--folds",
            "3",
            "--bootstrap",
            "50",
            "--model",
            "base",
            "--train",
            "train.jsonl",
            "--dev-split",
            "0.2",
            "--targets",
            "targets.json",
            "--out",
            "cv",
            "--num-train-epochs",
            "1",
            "--device",
            "cpu",
            "--quiet",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Each fold's training says what `train` says, the fold named.
    assert!(text(&out.stderr).contains("fold 3: calibrated on dev: logits divided by"), "{}", text(&out.stderr));
    // Training prints a JSON line per dev evaluation first.
    assert!(stdout.contains("\n3-fold cross-validation on train.jsonl (60 records, 30 sentences"), "{stdout}");
    assert!(stdout.contains("fold  test records  model F_avg  majority F_avg  tfidf-lr F_avg"), "{stdout}");
    let cv = read_json(&dir.path().join("cv/cv.json"));
    assert_eq!(cv["schema"], "stancekit.cv/1");
    let names: Vec<&str> = cv["summary"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["model", "majority", "tfidf-lr"]);
    let folds = cv["per_fold"].as_array().unwrap();
    // The model's ECE over the folds is the mean of each fold's report's.
    let fold_ece = |k: usize| {
        let metrics = read_json(&dir.path().join(format!("cv/fold-{k}/eval/metrics.json")));
        metrics["systems"][0]["calibration"]["ece"].as_f64().unwrap()
    };
    let mean = cv["summary"][0]["ece"]["mean"].as_f64().unwrap();
    assert!((mean - (1..=3).map(fold_ece).sum::<f64>() / 3.0).abs() < 1e-12, "{mean}");
    assert_eq!(folds.len(), 3);
    let tested: u64 = folds.iter().map(|f| f["test_records"].as_u64().unwrap()).sum();
    assert_eq!(tested, 60, "every record is tested exactly once");
    for k in 1..=3 {
        let fold = dir.path().join(format!("cv/fold-{k}"));
        assert!(fold.join("eval/report.html").is_file() && fold.join("model/metrics.jsonl").is_file());
        // --dev-split's dev is held out of the fold's data: the saved settings name no dev file.
        let saved = read_json(&fold.join("model/train_config.json"));
        assert_eq!((saved["dev"].as_array().map(Vec::len), saved["dev_split"].as_f64()), (Some(0), Some(0.2)));
    }
    assert!(std::fs::read_to_string(dir.path().join("cv/cv.md")).unwrap().starts_with("# Cross-validation"));
    let again = stancekit(
        dir.path(),
        &["cv", "--model", "base", "--train", "train.jsonl", "--targets", "targets.json", "--out", "cv"],
    );
    assert!(text(&again.stderr).contains("pass --overwrite"), "{}", text(&again.stderr));
    // --overwrite with a model that cannot load: refused before the old folds are touched.
    let args = ["cv", "--model", "nowhere", "--train", "train.jsonl", "--dev-split", "0.2"];
    let bad =
        stancekit(dir.path(), &[&args[..], &["--targets", "targets.json", "--out", "cv", "--overwrite"]].concat());
    assert!(!bad.status.success());
    assert!(
        dir.path().join("cv/cv.json").is_file() && dir.path().join("cv/fold-3/model").is_dir(),
        "the old run stays"
    );
    // Refused before its folder was made: no lock file is left beside the folder that never came.
    let refused = stancekit(dir.path(), &[&args[..], &["--targets", "targets.json", "--out", "cv-new"]].concat());
    assert!(!refused.status.success());
    assert!(!dir.path().join("cv-new").exists() && !dir.path().join(".cv-new.lock").exists());
    assert!(dir.path().join(".cv.lock").exists(), "the lock beside a folder that exists stays");
}

/// `calibrate` from the command line: a trained run takes a temperature fitted
/// on held-out data, into a new folder; a bad line is an error naming it, and
/// nothing is written.
#[test]
fn calibrate_writes_a_calibrated_copy_and_names_bad_lines() {
    let dir = setup();
    write_lines(&dir.path().join("dev.jsonl"), &gold_rows(6, "d"));
    train_tiny(dir.path(), "train.jsonl", "dev.jsonl", "run");
    let out = stancekit(dir.path(), &["calibrate", "--model", "run", "--data", "gold.jsonl", "--out", "cal"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("logits divided by temperature"), "{}", text(&out.stderr));
    let spec = |run: &str| read_json(&dir.path().join(run).join("config.json"))["stancekit"].clone();
    let (trained, calibrated) = (spec("run")["temperature"].as_f64(), spec("cal")["temperature"].as_f64());
    assert!(trained.is_some() && calibrated.is_some() && trained != calibrated, "{trained:?} {calibrated:?}");
    std::fs::write(dir.path().join("bad.jsonl"), "{\"text\": \"a\", \"target\": \"nato\", \"label\": \"maybe\"}\n")
        .unwrap();
    let out = stancekit(dir.path(), &["calibrate", "--model", "run", "--data", "bad.jsonl", "--out", "cal2"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("bad.jsonl:1: label"), "{}", text(&out.stderr));
    assert!(!dir.path().join("cal2").exists());
}

/// A system that answers one label for everything is warned of on stderr and in the report.
#[test]
fn a_system_answering_one_label_is_warned_of_in_the_report() {
    let dir = setup();
    let gold: Vec<Value> = gold_rows(12, "g");
    let one_label: Vec<Value> = predictions(&gold, usize::MAX)
        .into_iter()
        .map(|mut p| {
            p["label"] = json!("none");
            p["probs"] = json!({"favor": 0.1, "against": 0.1, "none": 0.8});
            p
        })
        .collect();
    write_lines(&dir.path().join("flat.jsonl"), &one_label);
    let args = ["eval", "--predictions", "flat.jsonl", "--data", "gold.jsonl", "--targets", "targets.json"];
    let out = stancekit(
        dir.path(),
        &[&args[..], &["--train", "train.jsonl", "--bootstrap", "100", "--report", "r"]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let warning = "System flat answers `none` for every evaluated pair";
    assert!(text(&out.stderr).contains(warning), "{}", text(&out.stderr));
    let report = std::fs::read_to_string(dir.path().join("r/report.md")).unwrap();
    assert!(report.contains("answers `none` for every evaluated pair"), "{report}");
}
