//! The sentences of a labelling session: a suggestions file as
//! `stancekit suggest` writes it (with the model's probabilities and the
//! neighbours), or anything `predict` reads (raw article text, lines, JSONL,
//! CSV). Each distinct sentence comes once, in input order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::session::Item;
use crate::active::{is_suggestions_file, read_pool, read_suggestions, LabelProbs};
use crate::input::ReadOptions;
use crate::Result;

/// The items of every input, in order, each sentence once. An id that two
/// inputs both give (line numbers, the usual default) is written with the
/// file's name before it (`a.txt:3`), so that no two sentences of the labels
/// file share one.
pub fn read_items(inputs: &[PathBuf], options: &ReadOptions) -> Result<Vec<Item>> {
    let mut items: Vec<(usize, Item)> = Vec::new();
    for (input, path) in inputs.iter().enumerate() {
        items.extend(read_input(path, options)?.into_iter().map(|item| (input, item)));
    }
    let mut seen = HashSet::new();
    items.retain(|(_, item)| seen.insert(item.text.trim().to_string()));
    let mut inputs_of: HashMap<&str, HashSet<usize>> = HashMap::new();
    for (input, item) in &items {
        inputs_of.entry(item.id.as_str()).or_default().insert(*input);
    }
    let shared: HashSet<String> =
        inputs_of.into_iter().filter(|(_, inputs)| inputs.len() > 1).map(|(id, _)| id.to_string()).collect();
    let names = input_names(inputs);
    Ok(items
        .into_iter()
        .map(|(input, mut item)| {
            if shared.contains(&item.id) {
                item.id = format!("{}:{}", names[input], item.id);
            }
            item
        })
        .collect())
}

/// Each input's file name, or the path as given where two share a name (`a/s.txt`, `b/s.txt`).
fn input_names(inputs: &[PathBuf]) -> Vec<String> {
    let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
    inputs
        .iter()
        .map(|path| match name(path) {
            Some(n) if inputs.iter().filter(|other| name(other).as_deref() == Some(n.as_str())).count() == 1 => n,
            _ => path.display().to_string(),
        })
        .collect()
}

/// One input's items: a suggestions file's, or the sentences `predict` would read.
fn read_input(path: &Path, options: &ReadOptions) -> Result<Vec<Item>> {
    if is_suggestions_file(path) {
        return Ok(read_suggestions(path)?
            .into_iter()
            .map(|s| Item {
                id: s.id,
                text: s.text,
                doc: s.doc,
                before: s.before,
                after: s.after,
                probs: Some(s.probs),
            })
            .collect());
    }
    let pool = read_pool(std::slice::from_ref(&path.to_path_buf()), options, &HashSet::new())?;
    Ok(pool
        .into_iter()
        .map(|p| Item {
            id: p.record.id,
            text: p.record.text,
            doc: p.record.span.map(|s| s.doc),
            before: p.before,
            after: p.after,
            probs: None,
        })
        .collect())
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

    /// Two plain-text inputs both number their lines from 1.
    #[test]
    fn an_id_two_inputs_give_is_named_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (p, q) = (dir.path().join("p.lines"), dir.path().join("q.lines"));
        std::fs::write(&p, "Ukraine should join NATO.\nEurope must pay.\n").unwrap();
        std::fs::write(&q, "Poland says Europe must spend more.\n").unwrap();
        let items = read_items(&[p, q], &ReadOptions::default()).unwrap();
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["p.lines:1", "2", "q.lines:1"]);
        // Two files of one name, in two folders: their paths as given.
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for (folder, text) in [(&a, "Kyiv will never cede Crimea.\n"), (&b, "Berlin pays more.\n")] {
            std::fs::create_dir(folder).unwrap();
            std::fs::write(folder.join("s.lines"), text).unwrap();
        }
        let items = read_items(&[a.join("s.lines"), b.join("s.lines")], &ReadOptions::default()).unwrap();
        assert_eq!(items[0].id, format!("{}:1", a.join("s.lines").display()));
        assert_ne!(items[0].id, items[1].id);
    }
}
