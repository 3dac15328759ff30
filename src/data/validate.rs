//! Checks that hold across formats: labels, targets, text, and consistency
//! between records of the same (text, target).

use std::collections::HashMap;

use super::schema::DEFAULT_TARGETS;
use super::{Entry, Pos, Schema};
use crate::error::Problem;

/// A record that repeats an earlier one exactly (same text, target and label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub at: Pos,
    pub first: Pos,
}

/// A record whose label differs from the first record of its text and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub at: Pos,
    pub first: Pos,
    pub problem: Problem,
}

/// What validation finds. Conflicts are kept apart from the other problems so
/// that `data clean` can resolve them while still refusing everything else.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub problems: Vec<Problem>,
    pub conflicts: Vec<Conflict>,
    pub duplicates: Vec<Duplicate>,
}

/// Every problem of the entries, plus the exact duplicates among them (which are not problems).
pub(crate) fn validate<'a>(entries: impl IntoIterator<Item = &'a Entry>, schema: &Schema) -> Findings {
    let mut found = Findings::default();
    let mut seen: HashMap<(&str, &str), &Entry> = HashMap::new();
    for entry in entries {
        check_fields(entry, schema, &mut found.problems);
        let r = &entry.record;
        if crate::input::is_blank(&r.text) {
            continue;
        }
        let Some(first) = seen.get(&(r.sentence(), r.target.as_str())) else {
            seen.insert((r.sentence(), &r.target), entry);
            continue;
        };
        let (at, first_at) = (entry.text_at.clone(), first.text_at.clone());
        if first.record.label == r.label {
            found.duplicates.push(Duplicate { at, first: first_at });
        } else {
            let message = format!(
                "conflicting labels: '{}' here but '{}' at {} for the same text and target",
                r.label, first.record.label, first_at
            );
            found.conflicts.push(Conflict { problem: at.problem("label", message), at, first: first_at });
        }
    }
    found
}

/// The conflicts as problems; the last names the command that resolves them all,
/// since the user's next step is the same whichever conflict they read.
pub(crate) fn conflict_problems(conflicts: Vec<Conflict>, inputs: &[&str], schema: &Schema) -> Vec<Problem> {
    let mut problems: Vec<Problem> = conflicts.into_iter().map(|c| c.problem).collect();
    if let Some(last) = problems.last_mut() {
        let files: Vec<String> = inputs.iter().map(|f| shell_word(f)).collect();
        last.message += &format!(
            "; `stancekit data clean {}{} --out CLEAN.jsonl --conflicts majority` keeps one label per text and target",
            files.join(" "),
            targets_arg(schema)
        );
    }
    problems
}

/// ` --targets FILE` when the schema came from another file than the
/// default, for a command line to paste.
fn targets_arg(schema: &Schema) -> String {
    match &schema.source {
        Some(path) if path != std::path::Path::new(DEFAULT_TARGETS) => {
            format!(" --targets {}", shell_word(&path.display().to_string()))
        }
        _ => String::new(),
    }
}

/// A file name as it can be pasted into a shell.
fn shell_word(name: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:,+=@%".contains(c);
    if !name.is_empty() && name.chars().all(plain) {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', "'\\''"))
    }
}

fn check_fields(entry: &Entry, schema: &Schema, problems: &mut Vec<Problem>) {
    let r = &entry.record;
    if crate::input::is_blank(&r.text) {
        problems.push(entry.text_at.problem("text", "empty or whitespace-only text"));
    }
    if schema.description(&r.target).is_none() {
        let (known, fix) = if schema.from_runs {
            (
                ": no model evaluated was trained on it (they know: ",
                "); a model is scored and calibrated only on the targets it was trained on",
            )
        } else {
            ("; known: ", "; add new targets to the targets file")
        };
        let message = format!("unknown target '{}'{known}{}{fix}", r.target, schema.target_list());
        problems.push(entry.text_at.problem("target", message));
    }
    if schema.label_index(&r.label).is_none() {
        // Say where the allowed labels come from: a custom label set needs its own targets file.
        let whence = match (&schema.source, schema.from_runs) {
            (_, true) => " (the labels the model was trained with)".to_string(),
            (Some(file), false) => format!(" (the labels of {}; --targets names another file)", file.display()),
            (None, false) => String::new(),
        };
        let message = format!("unknown label '{}'; allowed: {}{whence}", r.label, schema.label_list());
        problems.push(entry.label_at.problem("label", message));
    }
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::super::tests::{problems, schema, write};
    use super::{shell_word, Schema, DEFAULT_TARGETS};

    fn jsonl(lines: &[(&str, &str, &str)]) -> String {
        lines
            .iter()
            .map(|(text, target, label)| {
                serde_json::json!({"text": text, "target": target, "label": label}).to_string() + "\n"
            })
            .collect()
    }

    fn check(lines: &[(&str, &str, &str)]) -> (String, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.jsonl", jsonl(lines));
        let got = problems(&[&file], None);
        (file, got)
    }

    #[test]
    fn unknown_label_lists_allowed_ones() {
        let (file, got) = check(&[("a", "nato", "none"), ("b", "nato", "neutral")]);
        assert_eq!(got, vec![format!("{file}:2: label: unknown label 'neutral'; allowed: favor, against, none")]);
    }

    #[test]
    fn unknown_target_lists_known_ones() {
        let (file, got) = check(&[("a", "natoo", "none")]);
        assert_eq!(
            got,
            vec![format!(
                "{file}:1: target: unknown target 'natoo'; known: climate, nato; add new targets to the targets file"
            )]
        );
    }

    #[test]
    fn empty_and_whitespace_text() {
        let (file, got) =
            check(&[("", "nato", "none"), (" \t", "nato", "none"), ("\u{200B}\u{00A0}\u{FEFF}", "nato", "none")]);
        assert_eq!(
            got,
            vec![
                format!("{file}:1: text: empty or whitespace-only text"),
                format!("{file}:2: text: empty or whitespace-only text"),
                format!("{file}:3: text: empty or whitespace-only text"),
            ]
        );
    }

    #[test]
    fn conflicting_labels_name_both_lines() {
        let (file, got) = check(&[("Same.", "nato", "favor"), ("x", "nato", "none"), ("Same. ", "nato", "against")]);
        assert_eq!(got.len(), 1);
        let expected = format!("{file}:3: label: conflicting labels: 'against' here but 'favor' at {file}:1 for the same text and target; `stancekit data clean {file} --out CLEAN.jsonl --conflicts majority` keeps one label per text and target");
        assert_eq!(got[0], expected);
    }

    #[test]
    fn same_text_other_target_and_exact_repeat_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let body = jsonl(&[("Same.", "nato", "favor"), ("Same.", "climate", "none"), ("Same.", "nato", "favor")]);
        let file = write(dir.path(), "a.jsonl", body);
        let data = load(&[file], None, &schema()).unwrap();
        assert_eq!(data.duplicates.len(), 1);
        assert_eq!((data.duplicates[0].at.line, data.duplicates[0].first.line), (3, 1));
    }

    #[test]
    fn conflicts_are_found_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.jsonl", jsonl(&[("Same.", "nato", "favor")]));
        let b = write(dir.path(), "b.jsonl", jsonl(&[("Same.", "nato", "none")]));
        let got = problems(&[&a, &b], None);
        assert!(
            got[0].starts_with(&format!("{b}:1: label: conflicting labels: 'none' here but 'favor' at {a}:1 for")),
            "{got:?}"
        );
        assert!(got[0].contains(&format!("`stancekit data clean {a} {b} --out CLEAN.jsonl")), "{got:?}");
    }

    #[test]
    fn only_the_last_conflict_carries_the_hint() {
        let (_, got) =
            check(&[("a", "nato", "favor"), ("a", "nato", "none"), ("b", "nato", "favor"), ("b", "nato", "none")]);
        assert_eq!(got.len(), 2);
        assert!(!got[0].contains("data clean") && got[1].contains("data clean"), "{got:?}");
    }

    #[test]
    fn the_hint_names_a_targets_file_other_than_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.jsonl", jsonl(&[("a", "nato", "favor"), ("a", "nato", "none")]));
        let mut schema = schema();
        let hint = |schema: &Schema| load(&[&file], None, schema).unwrap_err().to_string();
        schema.source = Some(DEFAULT_TARGETS.into());
        assert!(hint(&schema).contains(&format!("data clean {file} --out CLEAN.jsonl")), "{}", hint(&schema));
        schema.source = Some("my targets.json".into());
        let want = format!("data clean {file} --targets 'my targets.json' --out CLEAN.jsonl");
        assert!(hint(&schema).contains(&want), "{}", hint(&schema));
    }

    #[test]
    fn hint_quotes_odd_file_names() {
        assert_eq!(shell_word("data/te:train"), "data/te:train");
        assert_eq!(shell_word("my file's.jsonl"), "'my file'\\''s.jsonl'");
    }
}
