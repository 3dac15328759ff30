//! `stancekit data clean`: resolves the conflicting labels (and, if asked, the exact
//! duplicates) that real annotated sets carry, so that such a set can be trained on.
//! Every other problem still rejects the input: only disagreement is resolved here.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::data::INPUT_HELP;
use crate::data::validate::{self, Conflict, Duplicate};
use crate::data::{invalid, read_all, Dataset, Entry, Format, Input, Pos, Schema};
use crate::error::{Error, Result};

/// What becomes of the records of one text and target that disagree on the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Conflicts {
    /// Drop every record of the group.
    Drop,
    /// Keep the label most records give (its first record); a tie drops the group.
    Majority,
    /// Keep the first record's label (that record).
    First,
}

/// Resolve conflicting labels (and optionally exact duplicates) and write the records as JSONL.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct CleanConfig {
    #[arg(required = true, value_name = "FILE", help = INPUT_HELP)]
    pub files: Vec<String>,
    /// The cleaned JSONL file, replaced atomically; never one of the inputs.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Records of one text and target with different labels: drop them all, keep the
    /// majority label (a tie drops the group), or keep the first record's label.
    #[arg(long, value_enum, default_value_t = Conflicts::Drop)]
    pub conflicts: Conflicts,
    /// Collapse exact duplicates (same text, target and label) to their first record.
    #[arg(long)]
    pub dedupe: bool,
    /// Targets file: the allowed labels and the target ids with their descriptions.
    #[arg(long, value_name = "FILE", default_value = "datasets/targets.json")]
    pub targets: PathBuf,
    /// Input format; by default it follows from each path (folder: tweeteval; .jsonl, .csv;
    /// .tsv/.txt: semeval if the header is ID, Target, Tweet, Stance, else tsv).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// The records of one text and target that disagree, and what became of them.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictGroup {
    pub text: String,
    pub target: String,
    /// Each record's label and place, in input order.
    pub records: Vec<(String, Pos)>,
    /// The record kept, if any.
    pub kept: Option<Pos>,
    /// Whether `majority` found no single majority label.
    pub tie: bool,
}

/// What `clean` changed and why.
#[derive(Debug, Clone)]
pub struct CleanReport {
    pub out: PathBuf,
    pub policy: Conflicts,
    pub read: usize,
    pub written: usize,
    pub conflicts: Vec<ConflictGroup>,
    /// The exact duplicates dropped (with `--dedupe`).
    pub collapsed: Vec<Duplicate>,
    /// The exact duplicates kept (without `--dedupe`).
    pub warnings: Vec<String>,
}

/// Reads and validates the inputs, resolves conflicts and duplicates, and writes the rest.
pub fn clean(config: &CleanConfig) -> Result<CleanReport> {
    refuse_to_replace_an_input(config)?;
    refuse_another_format(&config.out)?;
    let schema = Schema::load(&config.targets)?;
    let (files, mut problems) = read_all(&config.files, config.format, &schema);
    let entries: Vec<&Entry> = files.iter().flat_map(|f| &f.entries).collect();
    let found = validate::validate(entries.iter().copied(), &schema);
    problems.extend(found.problems);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let (groups, duplicates) = group(&entries, found.conflicts, found.duplicates);
    let mut keep = vec![true; entries.len()];
    let conflicts = groups.values().map(|members| resolve(&entries, members, config.conflicts, &mut keep)).collect();
    let (collapsed, kept) = if config.dedupe { (duplicates, Vec::new()) } else { (Vec::new(), duplicates) };
    let index = positions(&entries);
    for duplicate in &collapsed {
        keep[index[&duplicate.at]] = false;
    }
    let records: Vec<_> = entries.iter().zip(&keep).filter(|(_, &k)| k).map(|(e, _)| &e.record).collect();
    // The duplicates kept are what `data check` would warn about; its wording serves here too.
    let warnings = Dataset { files: Vec::new(), duplicates: kept }.warnings();
    let (read, written) = (entries.len(), records.len());
    let report = CleanReport {
        out: config.out.clone(),
        policy: config.conflicts,
        read,
        written,
        conflicts,
        collapsed,
        warnings,
    };
    if records.is_empty() {
        // The listing says why every record went.
        return Err(Error::Other(report.to_string()));
    }
    crate::io::write_jsonl(&config.out, records.iter().copied())?;
    Ok(report)
}

/// The atomic rename would replace an input with its cleaned self: a failed or
/// mistaken run must never cost the source.
fn refuse_to_replace_an_input(config: &CleanConfig) -> Result<()> {
    let out = resolved(&config.out);
    for arg in &config.files {
        // An input that cannot be resolved cannot be read either; reading says so.
        let Ok(input) = Input::parse(arg).path.canonicalize() else { continue };
        let why = if out == input {
            "is the input"
        } else if input.is_dir() && out.starts_with(&input) {
            "lies in the input folder"
        } else {
            continue;
        };
        let out = config.out.display();
        return Err(Error::Other(format!("--out {out} {why} {arg}; write the cleaned records elsewhere")));
    }
    Ok(())
}

/// The records are written as JSONL: a name that every reader would take for
/// CSV, TSV or SemEval text would fail its next `data check`.
fn refuse_another_format(out: &Path) -> Result<()> {
    let extension = out.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some(other @ ("csv" | "tsv" | "txt")) => Err(Error::Other(format!(
            "--out {}: the cleaned records are written as JSONL, which a .{other} name would be read as \
             another format; name it .jsonl",
            out.display()
        ))),
        _ => Ok(()),
    }
}

/// A path with its links and `..` resolved, for a file that may not exist yet.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(path) = path.canonicalize() {
        return path;
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    dir.join(path.file_name().unwrap_or_default())
}

/// Each entry's index by the place validation names it by (where its text is).
fn positions<'a>(entries: &[&'a Entry]) -> HashMap<&'a Pos, usize> {
    entries.iter().enumerate().map(|(i, e)| (&e.text_at, i)).collect()
}

/// Conflicting groups (entry indices in input order, keyed by the first) and the
/// exact duplicates outside them. Validation names every record of a text and
/// target against the first one, so that first record identifies the group; a
/// duplicate inside a group is resolved with the group.
fn group(
    entries: &[&Entry],
    conflicts: Vec<Conflict>,
    duplicates: Vec<Duplicate>,
) -> (BTreeMap<usize, Vec<usize>>, Vec<Duplicate>) {
    let index = positions(entries);
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for c in &conflicts {
        groups.entry(index[&c.first]).or_insert_with(|| vec![index[&c.first]]).push(index[&c.at]);
    }
    let (inside, outside): (Vec<Duplicate>, Vec<Duplicate>) =
        duplicates.into_iter().partition(|d| groups.contains_key(&index[&d.first]));
    for d in inside {
        groups.entry(index[&d.first]).or_default().push(index[&d.at]);
    }
    groups.values_mut().for_each(|members| members.sort_unstable());
    (groups, outside)
}

/// Applies the policy to one group: marks its records kept or dropped and says what it did.
fn resolve(entries: &[&Entry], members: &[usize], policy: Conflicts, keep: &mut [bool]) -> ConflictGroup {
    let labels: Vec<&str> = members.iter().map(|&i| entries[i].record.label.as_str()).collect();
    let (chosen, tie) = match policy {
        Conflicts::Drop => (None, false),
        Conflicts::First => (Some(0), false),
        Conflicts::Majority => majority(&labels).map_or((None, true), |at| (Some(at), false)),
    };
    for (n, &i) in members.iter().enumerate() {
        keep[i] = chosen == Some(n);
    }
    let first = &entries[members[0]].record;
    ConflictGroup {
        text: first.text.clone(),
        target: first.target.clone(),
        records: members.iter().map(|&i| (entries[i].record.label.clone(), entries[i].text_at.clone())).collect(),
        kept: chosen.map(|n| entries[members[n]].text_at.clone()),
        tie,
    }
}

/// The position of the first label of the single most frequent one; `None` on a tie.
/// Counted once into a map: a group may hold thousands of records.
fn majority(labels: &[&str]) -> Option<usize> {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    labels.iter().for_each(|&l| *counts.entry(l).or_default() += 1);
    let most = *counts.values().max()?;
    let mut winners = counts.iter().filter(|&(_, &n)| n == most);
    let (winner, _) = winners.next()?;
    let first = labels.iter().position(|l| l == winner)?;
    winners.next().is_none().then_some(first)
}

impl fmt::Display for CleanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conflicts.is_empty() {
            writeln!(f, "no conflicting labels")?;
        } else {
            let policy = self.policy.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            writeln!(
                f,
                "{} group(s) of records with the same text and target but different labels (--conflicts {policy}):",
                self.conflicts.len()
            )?;
            self.conflicts.iter().try_for_each(|group| write!(f, "{group}"))?;
        }
        if !self.collapsed.is_empty() {
            writeln!(
                f,
                "{} exact duplicate(s) (same text, target and label) dropped (--dedupe):",
                self.collapsed.len()
            )?;
            self.collapsed.iter().try_for_each(|d| writeln!(f, "  {}: duplicate of {}", d.at, d.first))?;
        }
        match self.written {
            0 => write!(f, "nothing left to write: all {} records were dropped", self.read),
            n => write!(f, "wrote {n} of {} records to {}", self.read, self.out.display()),
        }
    }
}

impl fmt::Display for ConflictGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let records: Vec<String> = self.records.iter().map(|(label, at)| format!("{label} at {at}")).collect();
        writeln!(f, "  {:?} ({}): {}", crate::input::shorten(&self.text, 60), self.target, records.join(", "))?;
        let dropped: Vec<String> = self
            .records
            .iter()
            .filter(|(_, at)| Some(at) != self.kept.as_ref())
            .map(|(_, at)| at.to_string())
            .collect();
        match self.records.iter().find(|(_, at)| Some(at) == self.kept.as_ref()) {
            Some((label, at)) => writeln!(f, "    kept {label} ({at}); dropped {}", dropped.join(", ")),
            None if self.tie => writeln!(f, "    no majority (a tie): dropped all {}", dropped.len()),
            None => writeln!(f, "    dropped all {}", dropped.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::data::{check, CheckConfig};
    use crate::data::load;
    use crate::data::tests::write;

    const TARGETS: &str = r#"{"targets": {"nato": "Ukraine joining NATO", "climate": "Climate Change"}}"#;

    fn line(id: &str, text: &str, label: &str) -> String {
        format!("{{\"id\":\"{id}\",\"text\":\"{text}\",\"target\":\"nato\",\"label\":\"{label}\"}}\n")
    }

    /// Lines 1-3 disagree (favor twice), 4-5 tie, 6-7 repeat exactly, 8 is alone.
    fn config(dir: &Path, conflicts: Conflicts, dedupe: bool) -> CleanConfig {
        let body = [
            line("a", "Same.", "favor"),
            line("b", "Same.", "against"),
            line("c", "Same. ", "favor"),
            line("d", "Tie.", "none"),
            line("e", "Tie.", "favor"),
            line("f", "Twice.", "none"),
            line("g", "Twice.", "none"),
            line("h", "Alone.", "against"),
        ]
        .concat();
        CleanConfig {
            files: vec![write(dir, "in.jsonl", body)],
            out: dir.join("out.jsonl"),
            conflicts,
            dedupe,
            targets: write(dir, "targets.json", TARGETS).into(),
            format: None,
        }
    }

    /// The ids written, in order.
    fn ids(config: &CleanConfig) -> Vec<String> {
        let schema = Schema::load(&config.targets).unwrap();
        let out = config.out.display().to_string();
        load(&[out], None, &schema).unwrap().records().filter_map(|r| r.id.clone()).collect()
    }

    #[test]
    fn drop_is_the_default_and_keeps_exact_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), Conflicts::Drop, false);
        let report = clean(&config).unwrap();
        assert_eq!(ids(&config), ["f", "g", "h"]);
        assert_eq!((report.read, report.written, report.conflicts.len()), (8, 3, 2));
        assert!(report.warnings[0].starts_with("1 exact duplicate"), "{:?}", report.warnings);
        let shown = report.to_string();
        let file = &config.files[0];
        let expected = format!(
            "  \"Same.\" (nato): favor at {file}:1, against at {file}:2, favor at {file}:3\n    dropped all 3\n"
        );
        assert!(shown.contains(&expected), "{shown}");
        assert!(shown.ends_with(&format!("wrote 3 of 8 records to {}", config.out.display())), "{shown}");
    }

    #[test]
    fn majority_keeps_its_first_record_and_a_tie_drops_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), Conflicts::Majority, false);
        let report = clean(&config).unwrap();
        assert_eq!(ids(&config), ["a", "f", "g", "h"]);
        let file = &config.files[0];
        assert_eq!(report.conflicts[0].kept, Some(Pos { file: file.as_str().into(), line: 1 }));
        assert!(report.conflicts[1].tie);
        let shown = report.to_string();
        assert!(shown.contains(&format!("    kept favor ({file}:1); dropped {file}:2, {file}:3\n")), "{shown}");
        assert!(shown.contains("    no majority (a tie): dropped all 2\n"), "{shown}");
    }

    #[test]
    fn first_keeps_the_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), Conflicts::First, false);
        clean(&config).unwrap();
        assert_eq!(ids(&config), ["a", "d", "f", "g", "h"]);
    }

    #[test]
    fn dedupe_collapses_exact_duplicates_to_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), Conflicts::First, true);
        let report = clean(&config).unwrap();
        assert_eq!(ids(&config), ["a", "d", "f", "h"]);
        assert!(report.warnings.is_empty());
        let file = &config.files[0];
        assert!(report.to_string().contains(&format!("  {file}:7: duplicate of {file}:6\n")), "{report}");
    }

    #[test]
    fn output_passes_check_with_ids_and_field_order_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), Conflicts::Majority, true);
        clean(&config).unwrap();
        let written = std::fs::read_to_string(&config.out).unwrap();
        assert_eq!(written.lines().next(), Some(line("a", "Same.", "favor").trim_end()));
        assert!(!written.contains(&line("c", "Same. ", "favor")));
        let files = vec![config.out.display().to_string()];
        let report = check(&CheckConfig { files, targets: config.targets.clone(), format: None }).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(report.total.records(), 3);
    }

    #[test]
    fn refuses_to_write_over_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), Conflicts::Drop, false);
        let before = std::fs::read(&config.files[0]).unwrap();
        config.out = dir.path().join(".").join("in.jsonl");
        let err = clean(&config).unwrap_err().to_string();
        assert!(err.contains("is the input"), "{err}");
        assert_eq!(std::fs::read(&config.files[0]).unwrap(), before);
        config.files = vec![dir.path().display().to_string()];
        config.out = dir.path().join("sub/out.jsonl");
        assert!(clean(&config).unwrap_err().to_string().contains("lies in the input folder"));
    }

    #[test]
    fn other_problems_still_reject_the_input_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), Conflicts::Majority, false);
        let bad = write(dir.path(), "bad.jsonl", line("x", "Odd.", "neutral") + "{oops\n");
        let missing = dir.path().join("missing.jsonl").display().to_string();
        config.files.extend([bad.clone(), missing.clone()]);
        let err = clean(&config).unwrap_err().to_string();
        assert!(err.contains(&format!("{bad}:1: label: unknown label 'neutral'")), "{err}");
        assert!(err.contains(&format!("{bad}:2: json:")), "{err}");
        assert!(err.contains(&format!("{missing}: file: no such file or folder")), "{err}");
        assert!(!err.contains("conflicting"), "conflicts are resolved, not reported: {err}");
        assert!(!config.out.exists());
    }

    #[test]
    fn an_output_named_for_another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), Conflicts::Drop, false);
        config.out = dir.path().join("clean.CSV");
        let err = clean(&config).unwrap_err().to_string();
        assert!(err.contains("written as JSONL") && err.contains("name it .jsonl"), "{err}");
        assert!(!config.out.exists());
    }

    #[test]
    fn nothing_left_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), Conflicts::Drop, false);
        config.files = vec![write(dir.path(), "c.jsonl", line("a", "X", "favor") + &line("b", "X", "none"))];
        let err = clean(&config).unwrap_err().to_string();
        assert!(err.ends_with("nothing left to write: all 2 records were dropped"), "{err}");
        assert!(err.starts_with("1 group(s) of records with the same text and target"), "it says why: {err}");
        assert!(!config.out.exists());
    }

    #[test]
    fn majority_of_labels() {
        assert_eq!(majority(&["favor", "none", "none"]), Some(1));
        assert_eq!(majority(&["favor", "none"]), None);
        assert_eq!(majority(&["a", "b", "a", "b", "c"]), None);
        assert_eq!(majority(&["a", "b", "b", "c", "a", "b"]), Some(1));
    }
}
