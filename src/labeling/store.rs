//! The labels file of a labelling session: JSONL records as `train --train`
//! reads them, only ever appended to. Each decision (one sentence's labels)
//! is one write, synced to disk before it is acknowledged, so a killed server
//! loses nothing it said it had saved. Undo cuts the file back to where the
//! last decision began; nothing else ever shortens it. The file is locked
//! while a session has it open, so two sessions cannot interleave.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::data::{Format, Record, Schema};
use crate::{Error, Result};

/// An open labels file and what it holds.
pub struct LabelStore {
    path: PathBuf,
    file: File,
    /// Sentence (trimmed text) → target → label.
    labels: HashMap<String, BTreeMap<String, String>>,
    /// The decisions in file order: this session's appends, and runs of one
    /// sentence's lines in what was there before.
    decisions: Vec<Decision>,
    len: u64,
    /// The file's modification time as this session last left it.
    modified: Option<std::time::SystemTime>,
    /// The file ends without a newline (edited by hand): the next write starts one.
    needs_newline: bool,
}

/// One sentence's labels written together, from byte `start` to the end of the file or the next one.
#[derive(Debug, Clone, PartialEq)]
struct Decision {
    sentence: String,
    start: u64,
    targets: Vec<String>,
}

impl LabelStore {
    /// Opens (creating) `path` for appending. Labels already there must pass
    /// `data check` against `schema`; if not, the error names every bad line
    /// and the file is left as it is.
    pub fn open(path: &Path, schema: &Schema) -> Result<Self> {
        let file =
            OpenOptions::new().create(true).append(true).read(true).open(path).map_err(|e| Error::io(path, e))?;
        lock(&file, path)?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let mut store = Self {
            path: path.to_path_buf(),
            file,
            labels: HashMap::new(),
            decisions: Vec::new(),
            len: bytes.len() as u64,
            modified: None,
            needs_newline: bytes.last().is_some_and(|&b| b != b'\n'),
        };
        if bytes.iter().any(|b| !b.is_ascii_whitespace()) {
            store.load(&bytes, schema)?;
        }
        store.seen();
        Ok(store)
    }

    fn load(&mut self, bytes: &[u8], schema: &Schema) -> Result<()> {
        let name = self.path.display().to_string();
        let data = crate::data::load(&[&name], Some(Format::Jsonl), schema).map_err(|e| {
            Error::Other(format!(
                "{name} holds labels that do not pass `stancekit data check`; nothing was changed: fix or move the file\n{e}"
            ))
        })?;
        let line_starts = line_starts(bytes);
        for entry in data.files.iter().flat_map(|f| &f.entries) {
            let record = &entry.record;
            let start = line_starts[entry.text_at.line - 1];
            match self.decisions.last_mut() {
                Some(last) if last.sentence == record.sentence() => last.targets.push(record.target.clone()),
                _ => self.decisions.push(Decision {
                    sentence: record.sentence().to_string(),
                    start,
                    targets: vec![record.target.clone()],
                }),
            }
            self.remember(record);
        }
        Ok(())
    }

    fn remember(&mut self, record: &Record) {
        let labels = self.labels.entry(record.sentence().to_string()).or_default();
        labels.insert(record.target.clone(), record.label.clone());
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The labels a sentence has, by target.
    pub fn labels_of(&self, sentence: &str) -> Option<&BTreeMap<String, String>> {
        self.labels.get(sentence.trim())
    }

    /// Sentences in the order their labels were written (a sentence labelled in two decisions appears twice).
    pub fn sentences_in_order(&self) -> impl Iterator<Item = &str> {
        self.decisions.iter().map(|d| d.sentence.as_str())
    }

    /// Each decision's sentence and the targets its records name, in file order.
    pub fn decisions_in_order(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.decisions.iter().map(|d| (d.sentence.as_str(), d.targets.as_slice()))
    }

    /// Appends one sentence's records in one write and syncs them to disk.
    pub fn append(&mut self, records: &[Record]) -> Result<()> {
        let Some(first) = records.first() else { return Ok(()) };
        self.check_unchanged()?;
        let mut buffer = Vec::new();
        if self.needs_newline {
            buffer.push(b'\n');
        }
        let start = self.len + buffer.len() as u64;
        crate::io::write_json_lines(&mut buffer, records).map_err(|e| Error::io(&self.path, e))?;
        if let Err(e) = self.file.write_all(&buffer).and_then(|()| self.file.sync_data()) {
            // A failed write (a full disk) may have left part of a line: cut it back, so that the file
            // holds whole records only and the next append (the file is opened to append) follows them.
            if self.file.set_len(self.len).and_then(|()| self.file.sync_data()).is_ok() {
                self.seen();
            }
            return Err(Error::io(&self.path, e));
        }
        self.len += buffer.len() as u64;
        self.seen();
        self.needs_newline = false;
        let targets = records.iter().map(|r| r.target.clone()).collect();
        self.decisions.push(Decision { sentence: first.sentence().to_string(), start, targets });
        records.iter().for_each(|r| self.remember(r));
        Ok(())
    }

    /// Takes back the last decision if it is `sentence`'s: cuts the file back
    /// to where it began. Returns false, and changes nothing, otherwise.
    pub fn undo_last(&mut self, sentence: &str) -> Result<bool> {
        let Some(last) = self.decisions.last().filter(|d| d.sentence == sentence.trim()) else { return Ok(false) };
        let start = last.start;
        self.check_unchanged()?;
        self.file.set_len(start).and_then(|()| self.file.sync_data()).map_err(|e| Error::io(&self.path, e))?;
        let last = self.decisions.pop().expect("checked above");
        self.len = start;
        self.seen();
        if let Some(labels) = self.labels.get_mut(&last.sentence) {
            last.targets.iter().for_each(|t| drop(labels.remove(t)));
            if labels.is_empty() {
                self.labels.remove(&last.sentence);
            }
        }
        Ok(true)
    }

    /// The file as this session left it. The lock is advisory, so `>>` or an
    /// editor may still have written it: an undo would cut their lines (or,
    /// the file shorter, pad it with zeros), and an append's start would be
    /// wrong. An editor that renames a new file over it (vim, `sed -i`,
    /// `data clean --out`) leaves the open file unchanged but no longer at
    /// `path`, where saves would be lost. Either is refused until a restart
    /// reads the file anew.
    fn check_unchanged(&self) -> Result<()> {
        let meta = self.file.metadata().map_err(|e| Error::io(&self.path, e))?;
        let same_file = std::fs::metadata(&self.path).is_ok_and(|at_path| crate::io::same_inode(&meta, &at_path));
        if same_file && meta.len() == self.len && meta.modified().ok() == self.modified {
            return Ok(());
        }
        let now = if same_file {
            format!("{} bytes now, {} then", meta.len(), self.len)
        } else {
            "replaced or removed".into()
        };
        Err(Error::Other(format!(
            "{}: changed outside this session since its last save ({now}); nothing written: \
             restart `stancekit label` to read it as it is",
            self.path.display(),
        )))
    }

    /// Notes the file as this session leaves it.
    fn seen(&mut self) {
        self.modified = self.file.metadata().and_then(|m| m.modified()).ok();
    }

    /// How many records have each label, per target.
    pub fn counts(&self, targets: &[String], labels: &[String]) -> Vec<Vec<usize>> {
        let mut counts = vec![vec![0; labels.len()]; targets.len()];
        for by_target in self.labels.values() {
            for (t, target) in targets.iter().enumerate() {
                if let Some(l) = by_target.get(target).and_then(|l| labels.iter().position(|x| x == l)) {
                    counts[t][l] += 1;
                }
            }
        }
        counts
    }
}

/// Byte offset of each line's start.
fn line_starts(bytes: &[u8]) -> Vec<u64> {
    let ends = bytes.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i as u64 + 1);
    std::iter::once(0).chain(ends).collect()
}

/// An exclusive advisory lock for this process's session; another session on
/// the same file is told so instead of interleaving its writes.
fn lock(file: &File, path: &Path) -> Result<()> {
    crate::io::try_lock(
        file,
        path,
        "another labelling session has this file open; stop it first, or label into another file",
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn schema() -> Schema {
        Schema {
            labels: ["favor", "against", "none"].map(String::from).to_vec(),
            targets: [("nato", "Ukraine joining NATO"), ("eu", "Europe paying")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            neutral: None,
            source: None,
            from_runs: false,
        }
    }

    fn record(text: &str, target: &str, label: &str) -> Record {
        Record { id: Some("s1".into()), text: text.into(), target: target.into(), label: label.into() }
    }

    #[test]
    fn appends_survive_a_reopen_and_undo_cuts_only_the_last_decision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.jsonl");
        let mut store = LabelStore::open(&path, &schema()).unwrap();
        store.append(&[record("one", "nato", "favor"), record("one", "eu", "none")]).unwrap();
        store.append(&[record("two", "nato", "against")]).unwrap();
        let after_two = std::fs::read_to_string(&path).unwrap();
        drop(store);
        let mut store = LabelStore::open(&path, &schema()).unwrap();
        assert_eq!(store.labels_of(" one ").unwrap()["eu"], "none");
        assert_eq!(store.sentences_in_order().collect::<Vec<_>>(), ["one", "two"]);
        assert!(!store.undo_last("one").unwrap(), "only the last decision can be taken back");
        assert!(store.undo_last("two").unwrap());
        assert!(store.labels_of("two").is_none());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            after_two.lines().take(2).map(|l| l.to_string() + "\n").collect::<String>()
        );
        store.append(&[record("three", "eu", "favor")]).unwrap();
        let names = [String::from("nato"), String::from("eu")];
        let labels = schema().labels;
        assert_eq!(store.counts(&names, &labels), vec![vec![1, 0, 0], vec![1, 0, 1]]);
        assert!(crate::data::load(&[path.display().to_string()], None, &schema()).is_ok());
    }

    #[test]
    fn a_file_without_a_final_newline_gets_one_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.jsonl");
        std::fs::write(&path, r#"{"text":"one","target":"nato","label":"none"}"#).unwrap();
        let mut store = LabelStore::open(&path, &schema()).unwrap();
        store.append(&[record("two", "nato", "favor")]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        assert!(store.undo_last("two").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn bad_labels_are_named_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.jsonl");
        let text = "{\"text\":\"one\",\"target\":\"nato\",\"label\":\"none\"}\n{\"text\":\"two\",\"tar\n";
        std::fs::write(&path, text).unwrap();
        let err = LabelStore::open(&path, &schema()).err().unwrap().to_string();
        assert!(err.contains("labels.jsonl:2: json:"), "{err}");
        std::fs::write(&path, "{\"text\":\"one\",\"target\":\"mars\",\"label\":\"none\"}\n").unwrap();
        let err = LabelStore::open(&path, &schema()).err().unwrap().to_string();
        assert!(err.contains("labels.jsonl:1: target:") && err.contains("mars"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"text\":\"one\",\"target\":\"mars\",\"label\":\"none\"}\n"
        );
    }

    #[test]
    fn a_file_changed_by_another_writer_is_neither_cut_nor_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.jsonl");
        let mut store = LabelStore::open(&path, &schema()).unwrap();
        store.append(&[record("one", "nato", "favor")]).unwrap();
        let by_hand = "{\"text\":\"two\",\"target\":\"nato\",\"label\":\"none\"}\n";
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(by_hand.as_bytes()).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        for err in [store.undo_last("one").unwrap_err(), store.append(&[record("three", "eu", "none")]).unwrap_err()] {
            assert!(err.to_string().contains("changed outside this session"), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        // Shorter (rewritten by an editor): an undo would have padded it with zeros.
        std::fs::write(&path, "").unwrap();
        assert!(store.undo_last("one").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    /// vim, `sed -i` and stancekit's own writers replace a file by renaming a new one over it.
    #[test]
    fn a_file_replaced_by_a_rename_is_not_written_behind_its_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.jsonl");
        let mut store = LabelStore::open(&path, &schema()).unwrap();
        store.append(&[record("one", "nato", "favor")]).unwrap();
        let edited = std::fs::read_to_string(&path).unwrap().replace("favor", "against");
        crate::io::write_text(&path, &edited).unwrap();
        let err = store.append(&[record("two", "nato", "none")]).unwrap_err().to_string();
        assert!(err.contains("replaced or removed"), "{err}");
        assert!(store.undo_last("one").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    }

    #[test]
    fn a_second_session_on_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.jsonl");
        let _first = LabelStore::open(&path, &schema()).unwrap();
        let err = LabelStore::open(&path, &schema()).err().unwrap().to_string();
        assert!(err.contains("another labelling session"), "{err}");
    }
}
