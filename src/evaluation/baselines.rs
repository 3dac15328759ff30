//! The baselines every report shows beside the model, trained on the same
//! training data:
//!
//! - **majority**: each target's most frequent training label (ties go to the
//!   label listed first); its probabilities are the target's training label
//!   frequencies, so it is a fair reference for calibration too.
//! - **tfidf-lr**: per target, TF-IDF over word uni- and bigrams (sublinear tf,
//!   L2 norm; [`super::tfidf`]) and multinomial logistic regression with L2
//!   penalty C = 1 ([`super::logistic`]). One model per target, as the SemEval-2016
//!   baselines were trained: which words signal which stance depends on the
//!   target, and a linear model over shared features cannot learn that.
//!
//! A target without training records gets the majority label of all training
//! records, and a note says so.

use std::collections::BTreeMap;

use super::gold::{Gold, Output};
use super::logistic::LogisticRegression;
use super::results::{SystemInfo, SystemKind};
use super::tfidf::Tfidf;
use crate::data::Record;
use crate::kernels::argmax;

/// The baselines' system names, in the order [`run`] returns them.
pub const NAMES: [&str; 2] = ["majority", "tfidf-lr"];

/// The penalty of the logistic regression: scikit-learn's default.
pub const C: f64 = 1.0;

/// Training label frequencies, per target and over all targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Priors {
    per_target: BTreeMap<String, Vec<f64>>,
    overall: Vec<f64>,
}

impl Priors {
    pub fn fit(train: &[Record], labels: &[String]) -> Self {
        let index = |r: &Record| labels.iter().position(|l| *l == r.label);
        let mut counts: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut overall = vec![0.0; labels.len()];
        for r in train {
            let Some(l) = index(r) else { continue };
            counts.entry(r.target.clone()).or_insert_with(|| vec![0.0; labels.len()])[l] += 1.0;
            overall[l] += 1.0;
        }
        let normalise = |v: Vec<f64>| {
            let sum: f64 = v.iter().sum();
            v.into_iter().map(|c| if sum > 0.0 { c / sum } else { 0.0 }).collect::<Vec<_>>()
        };
        let per_target = counts.into_iter().map(|(t, c)| (t, normalise(c))).collect();
        Self { per_target, overall: normalise(overall) }
    }

    /// The target's label frequencies, or the overall ones for a target never seen.
    pub fn of(&self, target: &str) -> &[f64] {
        self.per_target.get(target).unwrap_or(&self.overall)
    }

    pub fn knows(&self, target: &str) -> bool {
        self.per_target.contains_key(target)
    }
}

pub fn majority(priors: &Priors, gold: &Gold) -> Output {
    let probs: Vec<Vec<f64>> = gold.items.iter().map(|i| priors.of(&gold.targets[i.target]).to_vec()).collect();
    Output { pred: probs.iter().map(|p| argmax(p)).collect(), probs: Some(probs) }
}

/// One TF-IDF vectoriser and classifier per target.
pub struct TfidfLr {
    models: BTreeMap<String, (Tfidf, LogisticRegression)>,
    priors: Priors,
}

impl TfidfLr {
    pub fn fit(train: &[Record], labels: &[String]) -> Self {
        let mut by_target: BTreeMap<&str, (Vec<&str>, Vec<usize>)> = BTreeMap::new();
        for r in train {
            if let Some(l) = labels.iter().position(|x| *x == r.label) {
                let entry = by_target.entry(r.target.as_str()).or_default();
                entry.0.push(r.sentence());
                entry.1.push(l);
            }
        }
        let models = by_target
            .into_iter()
            .map(|(target, (texts, y))| {
                let vectorizer = Tfidf::fit(&texts);
                let x: Vec<_> = texts.iter().map(|t| vectorizer.transform(t)).collect();
                let model = LogisticRegression::fit(&x, &y, vectorizer.n_features(), C);
                (target.to_string(), (vectorizer, model))
            })
            .collect();
        Self { models, priors: Priors::fit(train, labels) }
    }

    pub fn predict(&self, gold: &Gold) -> Output {
        let k = gold.labels.len();
        let probs: Vec<Vec<f64>> = gold
            .items
            .iter()
            .map(|item| match self.models.get(&gold.targets[item.target]) {
                Some((vectorizer, model)) => model.predict_proba(&vectorizer.transform(item.text.trim()), k),
                None => self.priors.of(&gold.targets[item.target]).to_vec(),
            })
            .collect();
        Output { pred: probs.iter().map(|p| argmax(p)).collect(), probs: Some(probs) }
    }
}

/// Both baselines' answers on `gold`, trained on `train` (named `source` in the
/// report), with notes on targets the training data lacks.
pub fn run(train: &[Record], source: &str, gold: &Gold) -> (Vec<(SystemInfo, Output)>, Vec<String>) {
    let priors = Priors::fit(train, &gold.labels);
    let unseen: Vec<&str> = gold.targets.iter().filter(|t| !priors.knows(t)).map(String::as_str).collect();
    if unseen.len() == gold.targets.len() {
        // Trained on other targets only, both would answer one label everywhere:
        // comparing a model with that says nothing.
        let note = format!(
            "Baselines not shown: their training data ({source}) has none of the evaluated targets; \
             pass --train FILE with records for them."
        );
        return (Vec::new(), vec![note]);
    }
    let mut notes = Vec::new();
    if !unseen.is_empty() {
        notes.push(format!(
            "The baselines' training data ({source}) has no records for target(s) {}; \
             there they predict the label most frequent over all training records.",
            unseen.join(", ")
        ));
    }
    let info = |name: &str, what: &str| SystemInfo {
        name: name.to_string(),
        kind: SystemKind::Baseline,
        source: format!("{what}, trained on {source}"),
    };
    let systems = vec![
        (info(NAMES[0], "most frequent training label per target"), majority(&priors, gold)),
        (
            info(NAMES[1], "TF-IDF word 1-2-grams + logistic regression (C = 1), one per target"),
            TfidfLr::fit(train, &gold.labels).predict(gold),
        ),
    ];
    (systems, notes)
}

#[cfg(test)]
mod tests {
    use super::super::gold::tests::{labels, records};
    use super::*;

    #[test]
    fn majority_per_target_with_ties_to_the_first_label() {
        let train = records(&[
            (None, "a", "nato", "against"),
            (None, "b", "nato", "against"),
            (None, "c", "nato", "favor"),
            (None, "d", "land", "none"),
            (None, "e", "land", "favor"),
        ]);
        let gold =
            Gold::new(&labels(), &records(&[(None, "x", "nato", "favor"), (None, "x", "land", "none")])).unwrap();
        let out = majority(&Priors::fit(&train, &labels()), &gold);
        assert_eq!(out.pred, vec![1, 0]);
        assert_eq!(out.probs.unwrap()[0], vec![1.0 / 3.0, 2.0 / 3.0, 0.0]);
    }

    #[test]
    fn tfidf_lr_learns_words_per_target_and_notes_unseen_targets() {
        let mut rows = Vec::new();
        for i in 0..6 {
            rows.push((
                None,
                if i % 2 == 0 { "join nato now" } else { "nato never" },
                "nato",
                ["favor", "against"][i % 2],
            ));
            rows.push((
                None,
                if i % 2 == 0 { "keep all land" } else { "give land" },
                "land",
                ["against", "favor"][i % 2],
            ));
        }
        let train = records(&rows);
        let gold = Gold::new(
            &labels(),
            &records(&[
                (None, "nato now", "nato", "favor"),
                (None, "never nato", "nato", "against"),
                (None, "give it land", "land", "favor"),
                (None, "anything", "burden", "none"),
            ]),
        )
        .unwrap();
        let (systems, notes) = run(&train, "train.jsonl", &gold);
        let tfidf = &systems[1].1;
        // The unseen target gets the overall majority: favor and against tie at 6, favor is listed first.
        assert_eq!(tfidf.pred, vec![0, 1, 0, 0]);
        assert!(notes[0].contains("no records for target(s) burden"), "{notes:?}");
        assert_eq!(systems[0].0.name, "majority");
    }

    #[test]
    fn no_baselines_when_training_data_has_none_of_the_targets() {
        let train = records(&[(None, "join nato now", "nato", "favor"), (None, "nato never", "nato", "against")]);
        let gold = Gold::new(&labels(), &records(&[(None, "give land", "land", "favor")])).unwrap();
        let (systems, notes) = run(&train, "train.jsonl", &gold);
        assert!(systems.is_empty());
        assert!(notes[0].starts_with("Baselines not shown: their training data (train.jsonl) has none"), "{notes:?}");
    }
}
