//! The sentences of a labelling session: a suggestions file as
//! `stancekit suggest` writes it (with the model's probabilities and the
//! neighbours), or anything `predict` reads (raw article text, lines, JSONL,
//! CSV). Each distinct sentence comes once, in input order.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use super::session::Item;
use crate::active::{is_suggestions_file, read_pool, read_suggestions, LabelProbs};
use crate::input::ReadOptions;
use crate::Result;

/// The items of every input, in order, each sentence once.
pub fn read_items(inputs: &[PathBuf], options: &ReadOptions) -> Result<Vec<Item>> {
    let mut items: Vec<Item> = Vec::new();
    for path in inputs {
        if is_suggestions_file(path) {
            items.extend(read_suggestions(path)?.into_iter().map(|s| Item {
                id: s.id,
                text: s.text,
                doc: s.doc,
                before: s.before,
                after: s.after,
                probs: Some(s.probs),
            }));
        } else {
            items.extend(read_pool(std::slice::from_ref(path), options, &HashSet::new())?.into_iter().map(|p| Item {
                id: p.record.id,
                text: p.record.text,
                doc: p.record.span.map(|s| s.doc),
                before: p.before,
                after: p.after,
                probs: None,
            }));
        }
    }
    let mut seen = HashSet::new();
    items.retain(|item| seen.insert(item.text.trim().to_string()));
    Ok(items)
}

/// The targets the items' probabilities name, in order of first appearance.
pub fn targets_of(items: &[Item]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for target in items.iter().filter_map(|i| i.probs.as_ref()).flat_map(BTreeMap::<String, LabelProbs>::keys) {
        if !out.contains(target) {
            out.push(target.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::active::{Strategy, Suggestion};

    #[test]
    fn suggestions_and_articles_become_items_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let article = dir.path().join("news.txt");
        std::fs::write(&article, "Talks failed. Peace is far.\n").unwrap();
        let suggestions = dir.path().join("s.jsonl");
        let row = Suggestion {
            id: "x".into(),
            doc: None,
            sentence: None,
            start: None,
            end: None,
            text: "Peace is far.".into(),
            before: None,
            after: None,
            probs: [("nato".to_string(), LabelProbs(vec![("none".into(), 1.0)]))].into(),
            picked_for: "nato".into(),
            strategy: Strategy::Entropy,
            score: 0.1,
            distance: None,
            why: "w".into(),
        };
        crate::io::write_jsonl(&suggestions, &[row]).unwrap();
        let items = read_items(&[suggestions, article], &ReadOptions::default()).unwrap();
        let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts, ["Peace is far.", "Talks failed."]);
        assert_eq!(items[1].after.as_deref(), Some("Peace is far."));
        assert!(items[1].id.ends_with("news.txt:0"), "{}", items[1].id);
        assert_eq!(targets_of(&items), ["nato"]);
    }
}
