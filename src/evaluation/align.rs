//! Pairing a predictions file with the gold records.
//!
//! A prediction answers the gold record with the same key: (id, target) when
//! every gold record and every prediction has an id, otherwise (text with
//! surrounding whitespace trimmed, target). Keys may repeat (a data set may hold
//! a record twice); repeats pair up in file order. Every gold record needs
//! exactly one prediction and every prediction one gold record; anything else is
//! an error that lists each mismatch.

use std::collections::{HashMap, HashSet, VecDeque};

use super::gold::{Gold, GoldItem, Output};
use super::predictions::PredictionsFile;
use crate::{Error, Problem, Problems, Result};

/// The system's answers in gold order.
pub fn align(gold: &Gold, file: &PredictionsFile) -> Result<Output> {
    let by_id = gold.items.iter().all(|i| i.id.is_some()) && file.rows.iter().all(|p| p.id.is_some());
    let keys = Keys::new(gold, by_id);
    let mut open: HashMap<&(String, String), VecDeque<usize>> =
        keys.records.iter().map(|(key, records)| (key, records.iter().copied().collect())).collect();
    let mut answer: Vec<Option<usize>> = vec![None; gold.items.len()];
    let mut problems = Vec::new();
    for (row, p) in file.rows.iter().enumerate() {
        let name = if by_id { p.id.clone().unwrap_or_default() } else { p.text.trim().to_string() };
        let key = (name, p.target.clone());
        match open.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(i) => {
                if by_id && gold.items[i].text.trim() != p.text.trim() {
                    problems.push(file.problem(row, "text", format!("differs from the gold text of id '{}'", key.0)));
                }
                answer[i] = Some(row);
            }
            None => problems.push(keys.unmatched(file, row, &key.0)),
        }
    }
    for (i, a) in answer.iter().enumerate() {
        if a.is_none() {
            problems.push(keys.missing(file, i));
        }
    }
    if !problems.is_empty() {
        let none_paired = by_id && answer.iter().all(Option::is_none);
        // First, where a long list cannot hide it.
        if let Some(hint) = none_paired.then(|| by_text_hint(gold, file)).flatten() {
            problems.insert(0, hint);
        }
        return Err(Error::Invalid(Problems(problems)));
    }
    let rows: Vec<usize> = answer.into_iter().map(|a| a.expect("every gold item is answered")).collect();
    output(gold, file, &rows)
}

/// When no prediction's id is a gold id, whether their texts would pair:
/// `predict` numbers an article's sentences by document, so its ids are
/// seldom a gold file's.
fn by_text_hint(gold: &Gold, file: &PredictionsFile) -> Option<Problem> {
    let texts: HashSet<(&str, &str)> =
        gold.items.iter().map(|i| (i.text.trim(), gold.targets[i.target].as_str())).collect();
    let pairs = file.rows.iter().filter(|p| texts.contains(&(p.text.trim(), p.target.as_str()))).count();
    let message = format!(
        "no prediction's id is a gold id, but {pairs} of the {} predictions match a gold record by text and \
         target: records pair by id when all have one; drop the `id` field of the predictions to pair them by text",
        file.rows.len()
    );
    (pairs > 0).then(|| Problem { file: file.name.clone(), line: 0, field: "id".into(), message })
}

/// The gold records by key, in file order, and the targets each name (id or
/// text) is held for: built once, so that a predictions file of other data
/// is told apart in linear time, not by a scan of the gold per mismatch.
struct Keys<'a> {
    gold: &'a Gold,
    by_id: bool,
    records: HashMap<(String, String), Vec<usize>>,
    targets: HashMap<String, Vec<&'a str>>,
}

impl<'a> Keys<'a> {
    fn new(gold: &'a Gold, by_id: bool) -> Self {
        let (mut records, mut targets) = (HashMap::<_, Vec<usize>>::new(), HashMap::<_, Vec<&str>>::new());
        for (i, item) in gold.items.iter().enumerate() {
            let name = Self::name(item, by_id).to_string();
            let target = gold.targets[item.target].as_str();
            targets.entry(name.clone()).or_default().push(target);
            records.entry((name, target.to_string())).or_default().push(i);
        }
        Keys { gold, by_id, records, targets }
    }

    fn name(item: &GoldItem, by_id: bool) -> &str {
        if by_id {
            item.id.as_deref().unwrap_or_default()
        } else {
            item.text.trim()
        }
    }

    /// A prediction without a gold record: say whether the sentence is unknown or just the target.
    fn unmatched(&self, file: &PredictionsFile, row: usize, name: &str) -> Problem {
        let p = &file.rows[row];
        let what = if self.by_id { format!("id '{name}'") } else { "this text".to_string() };
        let targets = self.targets.get(name).map(Vec::as_slice).unwrap_or_default();
        let message = if targets.is_empty() {
            format!("no gold record has {what}")
        } else if targets.contains(&p.target.as_str()) {
            format!("a second prediction for {what} and target '{}'", p.target)
        } else {
            format!("gold has {what} for target(s) {}, not '{}'", targets.join(", "), p.target)
        };
        file.problem(row, if self.by_id { "id" } else { "text" }, message)
    }

    fn missing(&self, file: &PredictionsFile, i: usize) -> Problem {
        let item = &self.gold.items[i];
        let who = match (&item.id, self.by_id) {
            (Some(id), true) => format!("id '{id}'"),
            _ => format!("text \"{}\"", crate::input::shorten(&item.text, 60)),
        };
        let target = &self.gold.targets[item.target];
        let times = self.records.get(&(Self::name(item, self.by_id).to_string(), target.clone())).map_or(1, Vec::len);
        // A record the gold data holds twice needs two predictions: say so, or the reader blames the predictions alone.
        let repeated = if times > 1 { format!(" (the gold data holds it {times} times)") } else { String::new() };
        let message = format!("no prediction for gold record {who}, target '{target}'{repeated}");
        Problem { file: file.name.clone(), line: 0, field: "missing".into(), message }
    }
}

/// Labels and probabilities of the aligned rows; probabilities on some lines but not others is an error.
fn output(gold: &Gold, file: &PredictionsFile, rows: &[usize]) -> Result<Output> {
    let index = |label: &str| gold.labels.iter().position(|l| l == label).expect("labels were checked on reading");
    let pred = rows.iter().map(|&r| index(&file.rows[r].label)).collect();
    let with_probs = file.rows.iter().filter(|p| !p.probs.is_empty()).count();
    if with_probs == 0 {
        return Ok(Output { pred, probs: None });
    }
    if with_probs < file.rows.len() {
        let problems = (0..file.rows.len())
            .filter(|&r| file.rows[r].probs.is_empty())
            .map(|r| file.problem(r, "probs", "missing, while other lines have them (give them on every line or none)"))
            .collect();
        return Err(Error::Invalid(Problems(problems)));
    }
    let probs = rows.iter().map(|&r| file.rows[r].probs.in_order(&gold.labels).expect("probs were checked")).collect();
    Ok(Output { pred, probs: Some(probs) })
}

#[cfg(test)]
mod tests {
    use super::super::gold::tests::{labels, records};
    use super::super::predictions::{Prediction, Probs};
    use super::*;

    fn gold() -> Gold {
        let rows = [
            (Some("s1"), "nato now", "nato", "favor"),
            (Some("s1"), "nato now", "land", "none"),
            (Some("s2"), "never", "land", "against"),
        ];
        Gold::new(&labels(), &records(&rows)).unwrap()
    }

    fn pred(id: Option<&str>, text: &str, target: &str, label: &str) -> Prediction {
        Prediction {
            id: id.map(String::from),
            text: text.into(),
            target: target.into(),
            label: label.into(),
            probs: Probs::default(),
        }
    }

    fn file(rows: Vec<Prediction>) -> PredictionsFile {
        let lines = (1..=rows.len()).collect();
        PredictionsFile { name: "p.jsonl".into(), rows, lines }
    }

    #[test]
    fn aligns_by_id_in_any_order_and_by_text_without_ids() {
        let rows = vec![
            pred(Some("s2"), "never", "land", "against"),
            pred(Some("s1"), "nato now", "land", "favor"),
            pred(Some("s1"), "nato now", "nato", "none"),
        ];
        assert_eq!(align(&gold(), &file(rows)).unwrap(), Output { pred: vec![2, 0, 1], probs: None });
        let rows = vec![
            pred(None, "never ", "land", "against"),
            pred(None, "nato now", "nato", "favor"),
            pred(Some("x"), "nato now", "land", "none"),
        ];
        assert_eq!(align(&gold(), &file(rows)).unwrap().pred, vec![0, 2, 1]);
    }

    #[test]
    fn every_mismatch_is_listed() {
        let rows = vec![
            pred(Some("s1"), "nato now", "nato", "favor"),
            pred(Some("s1"), "nato now", "nato", "favor"),
            pred(Some("s2"), "never", "nato", "none"),
            pred(Some("s9"), "what", "land", "none"),
            pred(Some("s1"), "other text", "land", "none"),
        ];
        let err = align(&gold(), &file(rows)).unwrap_err().to_string();
        for expected in [
            "p.jsonl:2: id: a second prediction for id 's1' and target 'nato'",
            "p.jsonl:3: id: gold has id 's2' for target(s) land, not 'nato'",
            "p.jsonl:4: id: no gold record has id 's9'",
            "p.jsonl:5: text: differs from the gold text of id 's1'",
            "p.jsonl: missing: no prediction for gold record id 's2', target 'land'",
        ] {
            assert!(err.contains(expected), "{expected} not in\n{err}");
        }
    }

    #[test]
    fn ids_that_pair_nothing_while_texts_would_are_said_to() {
        let gold = gold();
        let rows = gold.items.iter().map(|i| pred(Some("doc:0"), &i.text, &gold.targets[i.target], "none")).collect();
        let err = align(&gold, &file(rows)).unwrap_err().to_string();
        let first = err.lines().nth(1).unwrap();
        assert!(first.starts_with("p.jsonl: id: no prediction's id is a gold id, but 3 of the 3 predictions"), "{err}");
    }

    #[test]
    fn a_gold_record_held_twice_is_said_to_need_two_predictions() {
        let rows = [(Some("s1"), "nato now", "nato", "favor"), (Some("s1"), "nato now", "nato", "favor")];
        let twice = Gold::new(&labels(), &records(&rows)).unwrap();
        let err = align(&twice, &file(vec![pred(Some("s1"), "nato now", "nato", "favor")])).unwrap_err().to_string();
        let said = "no prediction for gold record id 's1', target 'nato' (the gold data holds it 2 times)";
        assert!(err.contains(said), "{err}");
    }

    #[test]
    fn probabilities_come_in_label_order_on_every_line_or_none() {
        let mut rows = vec![
            pred(Some("s1"), "nato now", "nato", "favor"),
            pred(Some("s1"), "nato now", "land", "none"),
            pred(Some("s2"), "never", "land", "against"),
        ];
        let order: Vec<String> = ["none", "against", "favor"].map(String::from).to_vec();
        for r in &mut rows {
            r.probs = Probs::from_values(&order, &[0.2, 0.3, 0.5]);
        }
        let out = align(&gold(), &file(rows.clone())).unwrap();
        assert_eq!(out.probs.unwrap()[0], vec![0.5, 0.3, 0.2]);
        rows[1].probs = Probs::default();
        let err = align(&gold(), &file(rows)).unwrap_err().to_string();
        assert!(err.contains("p.jsonl:2: probs: missing, while other lines have them"), "{err}");
    }
}
