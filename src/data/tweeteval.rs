//! TweetEval stance folders: `<root>/mapping.txt` (`<int><TAB><label>` lines) and
//! `<root>/<target>/{train,val,test}_{text,labels}.txt`, aligned line by line.
//! The target is the folder name. An input may name the root (every target) or
//! one target folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{whole_file, Entry, Pos, Record, Schema, Sink, SplitName};
use crate::error::Problem;
use crate::input::lines::LineReader;
use crate::input::strip_semst;

const MAPPING: &str = "mapping.txt";

pub(crate) fn read(path: &Path, splits: &[SplitName], schema: &Schema, sink: &mut Sink) {
    let Some((mapping_path, folders)) = layout(path, sink) else { return };
    let Some(mapping) = read_mapping(&mapping_path, sink) else { return };
    // Splits the user named must exist; without a suffix, whatever splits exist load.
    let explicit = !splits.is_empty();
    let splits = if explicit { splits } else { &SplitName::ALL[..] };
    for folder in folders {
        read_target(&folder, splits, explicit, &mapping, schema, sink);
    }
}

/// The mapping file and the target folders an input names.
fn layout(path: &Path, sink: &mut Sink) -> Option<(PathBuf, Vec<PathBuf>)> {
    let problem = |message: String| whole_file(path, "file", message);
    if !path.is_dir() {
        sink.problems.push(problem("a TweetEval input must be a folder".into()));
        return None;
    }
    if path.join(MAPPING).is_file() {
        let folders =
            target_folders(path).map_err(|e| sink.problems.push(problem(format!("cannot list: {e}")))).ok()?;
        if folders.is_empty() {
            sink.problems.push(problem("no target folders (with *_text.txt files) here".into()));
        }
        return Some((path.join(MAPPING), folders));
    }
    match path.parent().map(|p| p.join(MAPPING)).filter(|m| m.is_file()) {
        Some(mapping) => Some((mapping, vec![path.to_path_buf()])),
        None => {
            sink.problems.push(problem(format!("not a TweetEval stance folder: no {MAPPING} here or one level up")));
            None
        }
    }
}

fn target_folders(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        if path.is_dir() && SplitName::ALL.iter().any(|s| split_files(&path, *s).0.is_file()) {
            folders.push(path);
        }
    }
    folders.sort();
    Ok(folders)
}

fn split_files(folder: &Path, split: SplitName) -> (PathBuf, PathBuf) {
    let name = split.as_str();
    (folder.join(format!("{name}_text.txt")), folder.join(format!("{name}_labels.txt")))
}

/// Label integer → label name.
fn read_mapping(path: &Path, sink: &mut Sink) -> Option<BTreeMap<i64, String>> {
    let bytes = std::fs::read(path)
        .map_err(|e| sink.problems.push(whole_file(path, "file", format!("cannot read: {e}"))))
        .ok()?;
    let file: Arc<str> = path.display().to_string().into();
    let before = sink.problems.len();
    let mut mapping = BTreeMap::new();
    for line in LineReader::new(&bytes[..], file.clone()) {
        let (at, text) = match line {
            Ok(line) if line.text.trim().is_empty() => continue,
            Ok(line) => (Pos { file: file.clone(), line: line.number }, line.text),
            Err(e) => {
                sink.error(e);
                continue;
            }
        };
        match text.split_once('\t').and_then(|(n, name)| Some((n.trim().parse::<i64>().ok()?, name.trim()))) {
            Some((n, name)) if !name.is_empty() => {
                if mapping.insert(n, name.to_string()).is_some() {
                    sink.problems.push(at.problem("mapping", format!("{n} is mapped twice")));
                }
            }
            _ => sink.problems.push(at.problem("mapping", format!("expected <integer><TAB><label>, found '{text}'"))),
        }
    }
    if mapping.is_empty() && sink.problems.len() == before {
        sink.problems.push(whole_file(path, "mapping", "empty mapping file".into()));
    }
    (sink.problems.len() == before).then_some(mapping)
}

fn read_target(
    folder: &Path,
    splits: &[SplitName],
    explicit: bool,
    mapping: &BTreeMap<i64, String>,
    schema: &Schema,
    sink: &mut Sink,
) {
    let target = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if schema.description(&target).is_none() {
        let message = format!(
            "unknown target '{target}' (the folder name); known: {}; add it to the targets file",
            schema.target_list()
        );
        return sink.problems.push(whole_file(folder, "target", message));
    }
    let mut found = false;
    for &split in splits {
        let (text, labels) = split_files(folder, split);
        match (text.is_file(), labels.is_file()) {
            (true, true) => read_split(&text, &labels, &target, split, mapping, sink),
            (false, false) if !explicit => continue,
            _ => {
                let missing = [text, labels].into_iter().filter(|p| !p.is_file());
                sink.problems.extend(missing.map(|p| whole_file(&p, "file", "missing".into())));
            }
        }
        found = true;
    }
    if !found {
        sink.problems.push(whole_file(folder, "file", "no {train,val,test}_text.txt files here".into()));
    }
}

fn read_split(
    text_path: &Path,
    labels_path: &Path,
    target: &str,
    split: SplitName,
    mapping: &BTreeMap<i64, String>,
    sink: &mut Sink,
) {
    let (Some(texts), Some(labels)) = (read_bytes(text_path, sink), read_bytes(labels_path, sink)) else { return };
    let text_file: Arc<str> = text_path.display().to_string().into();
    let label_file: Arc<str> = labels_path.display().to_string().into();
    let texts: Vec<_> = LineReader::new(&texts[..], text_file.clone()).collect();
    let labels: Vec<_> = LineReader::new(&labels[..], label_file.clone()).collect();
    check_alignment((&text_file, texts.len()), (&label_file, labels.len()), sink);
    // Each line gives one item, ok or not, so the n-th items share line n.
    for (line, (text, label)) in (1..).zip(texts.into_iter().zip(labels)) {
        let text_at = Pos { file: text_file.clone(), line };
        let label_at = Pos { file: label_file.clone(), line };
        let text = text.map_err(|e| sink.error(e));
        let label = label
            .map_err(|e| sink.error(e))
            .and_then(|l| map_label(&l.text, &label_at, mapping).map_err(|p| sink.problems.push(p)));
        if let (Ok(text), Ok(label)) = (text, label) {
            let id = format!("{target}-{}-{line:04}", split.as_str());
            let record = Record { id: Some(id), text: strip_semst(&text.text).into(), target: target.into(), label };
            sink.entries.push(Entry { record, text_at, label_at });
        }
    }
}

fn read_bytes(path: &Path, sink: &mut Sink) -> Option<Vec<u8>> {
    std::fs::read(path).map_err(|e| sink.problems.push(whole_file(path, "file", format!("cannot read: {e}")))).ok()
}

/// One problem for a length mismatch, at the first line that has no partner.
fn check_alignment(texts: (&Arc<str>, usize), labels: (&Arc<str>, usize), sink: &mut Sink) {
    let ((long, long_n, field), (short, short_n)) = match texts.1.cmp(&labels.1) {
        std::cmp::Ordering::Equal => return,
        std::cmp::Ordering::Greater => ((texts.0, texts.1, "text"), labels),
        std::cmp::Ordering::Less => ((labels.0, labels.1, "label"), texts),
    };
    let at = Pos { file: long.clone(), line: short_n + 1 };
    let message = format!("{long_n} lines here but {short_n} in {short}; the two files must align line by line");
    sink.problems.push(at.problem(field, message));
}

fn map_label(raw: &str, at: &Pos, mapping: &BTreeMap<i64, String>) -> Result<String, Problem> {
    let known = || mapping.iter().map(|(n, l)| format!("{n}={l}")).collect::<Vec<_>>().join(", ");
    let n: i64 = raw.trim().parse().map_err(|_| at.problem("label", format!("expected an integer, found '{raw}'")))?;
    mapping.get(&n).cloned().ok_or_else(|| at.problem("label", format!("{n} is not in {MAPPING} ({})", known())))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tests::{problems, schema, write};
    use super::super::{load, Record};

    /// A tiny TweetEval root with `nato` (train, val) and `climate` (train, test).
    fn root(dir: &Path) -> String {
        write(dir, "mapping.txt", "0\tnone\n1\tagainst\n2\tfavor");
        write(dir, "nato/train_text.txt", "Join now #SemST \nNo way \n");
        write(dir, "nato/train_labels.txt", "2\n1\n");
        write(dir, "nato/val_text.txt", "Maybe #SemST \n");
        write(dir, "nato/val_labels.txt", "0\n");
        write(dir, "climate/train_text.txt", "Warm #SemST \n");
        write(dir, "climate/train_labels.txt", "0\n");
        write(dir, "climate/test_text.txt", "Hot #SemST \n");
        write(dir, "climate/test_labels.txt", "2\n");
        dir.display().to_string()
    }

    fn records(inputs: &[String]) -> Vec<Record> {
        load(inputs, None, &schema()).unwrap().into_records()
    }

    #[test]
    fn reads_root_with_all_splits() {
        let dir = tempfile::tempdir().unwrap();
        let root = root(dir.path());
        let got = records(&[root]);
        let summary: Vec<_> =
            got.iter().map(|r| (r.id.clone().unwrap(), r.text.as_str(), r.target.as_str(), r.label.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                ("climate-train-0001".to_string(), "Warm", "climate", "none"),
                ("climate-test-0001".to_string(), "Hot", "climate", "favor"),
                ("nato-train-0001".to_string(), "Join now", "nato", "favor"),
                ("nato-train-0002".to_string(), "No way", "nato", "against"),
                ("nato-val-0001".to_string(), "Maybe", "nato", "none"),
            ]
        );
    }

    #[test]
    fn split_suffix_and_target_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = root(dir.path());
        assert_eq!(records(&[format!("{root}:train")]).len(), 3);
        assert_eq!(records(&[format!("{root}/nato")]).len(), 3);
        assert_eq!(records(&[format!("{root}/nato:val")]).len(), 1);
        assert_eq!(records(&[format!("{root}/climate:train,test")]).len(), 2);
    }

    #[test]
    fn asking_for_a_missing_split_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let root = root(dir.path());
        let got = problems(&[format!("{root}:val")], None);
        assert_eq!(
            got,
            vec![
                format!("{root}/climate/val_text.txt: file: missing"),
                format!("{root}/climate/val_labels.txt: file: missing")
            ]
        );
    }

    #[test]
    fn line_count_mismatch_names_the_first_unpaired_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = root(dir.path());
        write(dir.path(), "nato/train_labels.txt", "2\n");
        let got = problems(&[format!("{root}:train")], None);
        assert_eq!(got.len(), 1, "{got:?}");
        let expected =
            format!("{root}/nato/train_text.txt:2: text: 2 lines here but 1 in {root}/nato/train_labels.txt");
        assert!(got[0].starts_with(&expected), "{got:?}");
    }

    #[test]
    fn label_not_in_mapping_and_not_an_integer() {
        let dir = tempfile::tempdir().unwrap();
        let root = root(dir.path());
        write(dir.path(), "nato/train_labels.txt", "7\nfavor\n");
        let got = problems(&[format!("{root}:train")], None);
        let labels = format!("{root}/nato/train_labels.txt");
        assert_eq!(
            got,
            vec![
                format!("{labels}:1: label: 7 is not in mapping.txt (0=none, 1=against, 2=favor)"),
                format!("{labels}:2: label: expected an integer, found 'favor'"),
            ]
        );
    }

    #[test]
    fn invalid_utf8_and_empty_text_name_the_text_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = root(dir.path());
        write(dir.path(), "nato/train_text.txt", b"ok\n #SemST \ncaf\xe9\n");
        write(dir.path(), "nato/train_labels.txt", "0\n0\n0\n");
        let got = problems(&[format!("{root}/nato:train")], None);
        let text = format!("{root}/nato/train_text.txt");
        assert!(got[0].starts_with(&format!("{text}:2: text: empty")), "{got:?}");
        assert!(got[1].starts_with(&format!("{text}:3: encoding: invalid UTF-8")), "{got:?}");
    }

    #[test]
    fn unknown_target_folder_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = root(dir.path());
        write(dir.path(), "hillary/test_text.txt", "a\nb\n");
        write(dir.path(), "hillary/test_labels.txt", "0\n0\n");
        let got = problems(&[&root], None);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with(&format!("{root}/hillary: target: unknown target 'hillary'")), "{got:?}");
    }

    #[test]
    fn not_a_tweeteval_folder() {
        let dir = tempfile::tempdir().unwrap();
        let got = problems(&[dir.path().display().to_string()], None);
        assert!(got[0].contains("not a TweetEval stance folder"), "{got:?}");
    }
}
