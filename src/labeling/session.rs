//! A labelling session: the sentences to label, in input order, over the
//! labels file ([`LabelStore`]). The current sentence is always the first one
//! without a label for every target that was not skipped, so a restart
//! resumes where the file stops. Undo takes back the last action: a skip, or
//! the last decision written (also one written before a restart).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::store::LabelStore;
use crate::active::LabelProbs;
use crate::data::Record;

/// One sentence to label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub id: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The model's probabilities per target, when known up front (a suggestions file).
    #[serde(skip)]
    pub probs: Option<BTreeMap<String, LabelProbs>>,
}

/// A target as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub id: String,
    pub description: String,
}

/// Scores a sentence on every target of the session, in order.
pub type Scorer = Box<dyn FnMut(&str) -> crate::Result<Vec<LabelProbs>> + Send>;

/// Why a request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The request itself is wrong (a missing target, an unknown label).
    #[error("{0}")]
    Bad(String),
    /// It does not fit the session's state (labelled already, nothing to undo).
    #[error("{0}")]
    Conflict(String),
    /// Writing or scoring failed.
    #[error(transparent)]
    Failed(#[from] crate::Error),
}

type Reply<T> = std::result::Result<T, Refusal>;

/// What the page needs after every action.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// The sentence to label now; none when all are labelled (or skipped).
    pub item: Option<ItemView>,
    pub stats: Stats,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    /// The item's place in the session: what `label` and `skip` name.
    pub index: usize,
    #[serde(flatten)]
    pub item: Item,
    /// Labels this sentence already has (for some targets), by target.
    pub saved: BTreeMap<String, String>,
    /// The model's guess: target → label → probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probs: Option<BTreeMap<String, LabelProbs>>,
}

/// Progress and the label counts of the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub total: usize,
    pub labelled: usize,
    pub skipped: usize,
    pub remaining: usize,
    /// Target → label → records in the labels file.
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    /// Whether `undo` has something to take back.
    pub can_undo: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Labelled(usize),
    Skipped(usize),
}

pub struct Session {
    items: Vec<Item>,
    targets: Vec<Target>,
    labels: Vec<String>,
    store: LabelStore,
    skipped: BTreeSet<usize>,
    history: Vec<Action>,
    scorer: Option<Scorer>,
}

impl Session {
    /// `items` are distinct sentences; decisions already in the store for them,
    /// on this session's targets alone (as a session writes them), become
    /// undoable history, in file order. Records naming other targets were
    /// written by someone else: undo never cuts them.
    pub fn new(items: Vec<Item>, targets: Vec<Target>, labels: Vec<String>, store: LabelStore) -> Self {
        let index: HashMap<&str, usize> = items.iter().enumerate().map(|(i, item)| (item.text.trim(), i)).collect();
        let ours = |named: &[String]| named.iter().all(|t| targets.iter().any(|s| &s.id == t));
        let history = store
            .decisions_in_order()
            .filter(|(_, named)| ours(named))
            .filter_map(|(s, _)| index.get(s).map(|&i| Action::Labelled(i)))
            .collect();
        Self { items, targets, labels, store, skipped: BTreeSet::new(), history, scorer: None }
    }

    /// Scores each sentence shown, unless its probabilities came with it.
    pub fn with_scorer(mut self, scorer: Scorer) -> Self {
        self.scorer = Some(scorer);
        self
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn store(&self) -> &LabelStore {
        &self.store
    }

    /// The current sentence and the counts.
    pub fn view(&mut self) -> Reply<View> {
        let item = match self.current() {
            Some(index) => Some(self.item_view(index)?),
            None => None,
        };
        Ok(View { item, stats: self.stats() })
    }

    /// Refuses a request about item `index` that names another sentence than
    /// it is: a page loaded before a restart on other inputs would otherwise
    /// save its labels under whatever sentence now has that place. `None`
    /// (a client that does not say) is not checked.
    pub fn expect_text(&self, index: usize, text: Option<&str>) -> Reply<()> {
        let (Some(item), Some(text)) = (self.items.get(index), text) else { return Ok(()) };
        if item.text.trim() != text.trim() {
            return Err(Refusal::Conflict(format!(
                "item {index} is another sentence now (the server restarted on other inputs?): reload the page"
            )));
        }
        Ok(())
    }

    /// Saves `labels` (target → label) for item `index`: every target it has
    /// no label for must be given, and only those are written.
    pub fn label(&mut self, index: usize, labels: &BTreeMap<String, String>) -> Reply<View> {
        let item = self.items.get(index).ok_or_else(|| Refusal::Bad(format!("no item {index}")))?;
        if let Some(unknown) = labels.keys().find(|t| !self.targets.iter().any(|x| &x.id == *t)) {
            return Err(Refusal::Bad(format!("`{unknown}` is not a target of this session")));
        }
        let saved = self.store.labels_of(&item.text);
        let mut records = Vec::new();
        for target in self.targets.iter().filter(|t| !saved.is_some_and(|s| s.contains_key(&t.id))) {
            let label = labels.get(&target.id).ok_or_else(|| Refusal::Bad(format!("no label for `{}`", target.id)))?;
            if !self.labels.contains(label) {
                return Err(Refusal::Bad(format!("`{label}` is not a label ({})", self.labels.join(", "))));
            }
            let (id, text) = (Some(item.id.clone()), item.text.clone());
            records.push(Record { id, text, target: target.id.clone(), label: label.clone() });
        }
        if records.is_empty() {
            return Err(Refusal::Conflict(format!("item {index} is labelled already")));
        }
        self.store.append(&records)?;
        self.skipped.remove(&index);
        self.history.push(Action::Labelled(index));
        self.view()
    }

    /// Leaves item `index` for later (until every other one is done).
    pub fn skip(&mut self, index: usize) -> Reply<View> {
        if index >= self.items.len() || self.is_done(index) {
            return Err(Refusal::Conflict(format!("item {index} is not waiting for labels")));
        }
        if self.skipped.insert(index) {
            self.history.push(Action::Skipped(index));
        }
        self.view()
    }

    /// Takes back the last skip or decision; that sentence is current again.
    pub fn undo(&mut self) -> Reply<View> {
        match self.history.last().copied() {
            None => return Err(Refusal::Conflict("nothing to undo".into())),
            Some(Action::Skipped(index)) => drop(self.skipped.remove(&index)),
            Some(Action::Labelled(index)) => {
                if !self.store.undo_last(&self.items[index].text)? {
                    return Err(Refusal::Conflict(format!(
                        "the last labels in {} are not from this session's sentences; nothing undone",
                        self.store.path().display()
                    )));
                }
                self.skipped.remove(&index);
            }
        }
        self.history.pop();
        self.view()
    }

    /// Brings the skipped sentences back.
    pub fn revisit(&mut self) -> Reply<View> {
        self.skipped.clear();
        self.history.retain(|a| matches!(a, Action::Labelled(_)));
        self.view()
    }

    pub fn stats(&self) -> Stats {
        let labelled = (0..self.items.len()).filter(|&i| self.is_done(i)).count();
        let skipped = self.skipped.len();
        let ids: Vec<String> = self.targets.iter().map(|t| t.id.clone()).collect();
        let counts = self.store.counts(&ids, &self.labels);
        let counts = ids.into_iter().zip(counts).map(|(t, c)| (t, self.labels.iter().cloned().zip(c).collect()));
        Stats {
            total: self.items.len(),
            labelled,
            skipped,
            remaining: self.items.len() - labelled - skipped,
            counts: counts.collect(),
            can_undo: !self.history.is_empty(),
        }
    }

    fn current(&self) -> Option<usize> {
        (0..self.items.len()).find(|&i| !self.is_done(i) && !self.skipped.contains(&i))
    }

    fn is_done(&self, index: usize) -> bool {
        let saved = self.store.labels_of(&self.items[index].text);
        saved.is_some_and(|s| self.targets.iter().all(|t| s.contains_key(&t.id)))
    }

    fn item_view(&mut self, index: usize) -> Reply<ItemView> {
        if self.items[index].probs.is_none() {
            if let Some(scorer) = &mut self.scorer {
                let probs = scorer(&self.items[index].text)?;
                let by_target = self.targets.iter().map(|t| t.id.clone()).zip(probs).collect();
                self.items[index].probs = Some(by_target);
            }
        }
        let item = self.items[index].clone();
        let saved = self.store.labels_of(&item.text).cloned().unwrap_or_default();
        Ok(ItemView { index, probs: item.probs.clone(), item, saved })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labeling::store::tests::schema;

    fn items(texts: &[&str]) -> Vec<Item> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Item {
                id: format!("d:{i}"),
                text: t.to_string(),
                doc: None,
                before: None,
                after: None,
                probs: None,
            })
            .collect()
    }

    fn session(dir: &std::path::Path, texts: &[&str]) -> Session {
        let store = LabelStore::open(&dir.join("labels.jsonl"), &schema()).unwrap();
        let targets = [("nato", "Ukraine joining NATO"), ("eu", "Europe paying")]
            .map(|(id, d)| Target { id: id.into(), description: d.into() })
            .to_vec();
        Session::new(items(texts), targets, schema().labels, store)
    }

    fn labels(nato: &str, eu: &str) -> BTreeMap<String, String> {
        [("nato".to_string(), nato.to_string()), ("eu".to_string(), eu.to_string())].into()
    }

    fn current(view: &View) -> Option<usize> {
        view.item.as_ref().map(|i| i.index)
    }

    #[test]
    fn label_skip_undo_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = session(dir.path(), &["a", "b", "c"]);
        assert_eq!(current(&s.view().unwrap()), Some(0));
        let v = s.label(0, &labels("favor", "none")).unwrap();
        assert_eq!(current(&v), Some(1));
        let v = s.skip(1).unwrap();
        assert_eq!((current(&v), v.stats.skipped), (Some(2), 1));
        let v = s.label(2, &labels("against", "none")).unwrap();
        assert_eq!(current(&v), None, "only the skipped one is left");
        assert_eq!(v.stats.counts["nato"]["against"], 1);
        let v = s.undo().unwrap();
        assert_eq!((current(&v), v.stats.labelled), (Some(2), 1));
        let v = s.undo().unwrap();
        assert_eq!(current(&v), Some(1), "the skip is taken back too");
        drop(s);
        // A restart resumes at the first sentence without labels, and can undo what the file holds.
        let mut s = session(dir.path(), &["a", "b", "c"]);
        let v = s.view().unwrap();
        assert_eq!((current(&v), v.stats.labelled, v.stats.can_undo), (Some(1), 1, true));
        assert_eq!(current(&s.undo().unwrap()), Some(0));
        assert!(matches!(s.undo(), Err(Refusal::Conflict(_))));
    }

    #[test]
    fn undo_never_cuts_records_this_session_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        // The file holds "a" labelled for `eu`, which this session (on `nato` alone) does not label.
        let theirs = r#"{"text":"a","target":"eu","label":"none"}"#;
        std::fs::write(dir.path().join("labels.jsonl"), format!("{theirs}\n")).unwrap();
        let store = LabelStore::open(&dir.path().join("labels.jsonl"), &schema()).unwrap();
        let nato = vec![Target { id: "nato".into(), description: "Ukraine joining NATO".into() }];
        let mut s = Session::new(items(&["a", "b"]), nato, schema().labels, store);
        assert!(!s.view().unwrap().stats.can_undo);
        assert!(matches!(s.undo(), Err(Refusal::Conflict(_))));
        assert_eq!(std::fs::read_to_string(dir.path().join("labels.jsonl")).unwrap(), format!("{theirs}\n"));
    }

    #[test]
    fn bad_requests_are_refused_and_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = session(dir.path(), &["a"]);
        let mut partial = labels("favor", "none");
        partial.remove("eu");
        assert!(matches!(s.label(0, &partial), Err(Refusal::Bad(m)) if m.contains("`eu`")));
        assert!(matches!(s.label(0, &labels("pro", "none")), Err(Refusal::Bad(m)) if m.contains("`pro`")));
        let mut extra = labels("favor", "none");
        extra.insert("mars".into(), "none".into());
        assert!(matches!(s.label(0, &extra), Err(Refusal::Bad(_))));
        assert!(matches!(s.label(7, &labels("favor", "none")), Err(Refusal::Bad(_))));
        assert_eq!(std::fs::read_to_string(dir.path().join("labels.jsonl")).unwrap(), "");
        s.label(0, &labels("favor", "none")).unwrap();
        assert!(matches!(s.label(0, &labels("favor", "none")), Err(Refusal::Conflict(_))));
    }

    /// A page loaded before a restart on other inputs names the sentence it shows.
    #[test]
    fn a_request_naming_another_sentence_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(dir.path(), &["Poland says Europe must spend more.", "Ukraine should join NATO."]);
        assert!(s.expect_text(0, Some(" Poland says Europe must spend more.\n")).is_ok());
        assert!(s.expect_text(0, None).is_ok(), "a client that does not say is not checked");
        let stale = s.expect_text(0, Some("Ukraine should join NATO."));
        assert!(matches!(stale, Err(Refusal::Conflict(m)) if m.contains("reload the page")));
    }

    #[test]
    fn a_sentence_labelled_for_some_targets_asks_only_for_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let line = "{\"id\":\"x\",\"text\":\"a\",\"target\":\"nato\",\"label\":\"against\"}\n";
        std::fs::write(dir.path().join("labels.jsonl"), line).unwrap();
        let mut s = session(dir.path(), &["a"]);
        let v = s.view().unwrap();
        assert_eq!(v.item.unwrap().saved["nato"], "against");
        let mut eu = BTreeMap::new();
        eu.insert("eu".to_string(), "favor".to_string());
        assert_eq!(current(&s.label(0, &eu).unwrap()), None);
        let text = std::fs::read_to_string(dir.path().join("labels.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn the_scorer_is_asked_once_per_sentence_shown() {
        let dir = tempfile::tempdir().unwrap();
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = calls.clone();
        let scorer: Scorer = Box::new(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let p = LabelProbs(vec![("favor".into(), 0.7), ("against".into(), 0.2), ("none".into(), 0.1)]);
            Ok(vec![p.clone(), p])
        });
        let mut s = session(dir.path(), &["a", "b"]).with_scorer(scorer);
        let v = s.view().unwrap();
        assert_eq!(v.item.unwrap().probs.unwrap()["eu"].0[0], ("favor".to_string(), 0.7));
        s.view().unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
