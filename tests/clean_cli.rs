//! End-to-end: data hygiene as a user meets it. Empty inputs are refused by every
//! command that reads labelled data, and a set with conflicting labels, which
//! `train` refuses, trains after `stancekit data clean`.

use std::path::Path;
use std::process::{Command, Output};

const TARGETS: &str = r#"{"targets": {"nato": "Ukraine joining NATO", "climate": "Climate Change is a Real Concern"}}"#;
const LABELS: [&str; 3] = ["favor", "against", "none"];

fn stancekit(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stancekit")).current_dir(dir).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn record(id: &str, text: &str, target: &str, label: &str) -> String {
    format!("{{\"id\":\"{id}\",\"text\":\"{text}\",\"target\":\"{target}\",\"label\":\"{label}\"}}\n")
}

/// targets.json, an empty file, and `annotated.jsonl`: 12 sentences for two targets,
/// where sentence 0 has a second, conflicting `nato` label (line 25) and sentence 1 a
/// third `nato` record that outvotes its first (lines 26 and 27).
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("targets.json"), TARGETS).unwrap();
    std::fs::write(dir.path().join("empty.jsonl"), "\n\n").unwrap();
    let mut body: String = (0..12)
        .flat_map(|i| {
            let sentence = format!("Sentence {i}.");
            [("nato", LABELS[i % 3]), ("climate", "none")].map(|(t, l)| record(&format!("s{i}"), &sentence, t, l))
        })
        .collect();
    body += &record("s0", "Sentence 0.", "nato", "against");
    body += &record("s1", "Sentence 1.", "nato", "none");
    body += &record("s1", "Sentence 1.", "nato", "none");
    std::fs::write(dir.path().join("annotated.jsonl"), body).unwrap();
    dir
}

fn fails_with(out: &Output, wanted: &str) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "succeeded:\n{}", text(&out.stdout));
    assert!(stderr.contains(wanted), "{wanted:?} not in\n{stderr}");
}

#[test]
fn an_empty_file_is_refused_by_check_train_and_eval() {
    let dir = setup();
    let d = dir.path();
    let check = stancekit(d, &["data", "check", "--targets", "targets.json", "empty.jsonl"]);
    fails_with(&check, "empty.jsonl: file: no records");
    let train = ["train", "--model", "base", "--targets", "targets.json", "--out", "run", "--dev-split", "0.2"];
    let train = stancekit(d, &[&train[..], &["--train", "empty.jsonl", "--device", "cpu"]].concat());
    fails_with(&train, "empty.jsonl: file: no records");
    std::fs::write(d.join("p.jsonl"), record("s0", "Sentence 0.", "nato", "favor")).unwrap();
    let eval =
        stancekit(d, &["eval", "--predictions", "p.jsonl", "--data", "empty.jsonl", "--targets", "targets.json"]);
    fails_with(&eval, "empty.jsonl: file: no records");
}

#[test]
fn train_names_data_clean_and_trains_on_its_output() {
    let dir = setup();
    let d = dir.path();
    stancekit::testing::write_tiny_model(&d.join("base"), 5).unwrap();
    let train = |file: &str| {
        let args = ["train", "--model", "base", "--targets", "targets.json", "--out", "run", "--dev-split", "0.25"];
        let more = ["--train", file, "--num-train-epochs", "1", "--device", "cpu", "--quiet", "--overwrite"];
        stancekit(d, &[&args[..], &more].concat())
    };
    let refused = train("annotated.jsonl");
    fails_with(
        &refused,
        "annotated.jsonl:25: label: conflicting labels: 'against' here but 'favor' at annotated.jsonl:1",
    );
    fails_with(
        &refused,
        "`stancekit data clean annotated.jsonl --targets targets.json --out CLEAN.jsonl --conflicts majority` keeps one label per text and target",
    );

    let clean = ["data", "clean", "annotated.jsonl", "--out", "clean.jsonl", "--targets", "targets.json"];
    let out = stancekit(d, &[&clean[..], &["--conflicts", "majority", "--dedupe"]].concat());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("  \"Sentence 0.\" (nato): favor at annotated.jsonl:1, against at annotated.jsonl:25\n    no majority (a tie): dropped all 2\n"), "{stdout}");
    assert!(
        stdout.contains("    kept none (annotated.jsonl:26); dropped annotated.jsonl:3, annotated.jsonl:27\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("wrote 23 of 27 records to clean.jsonl\n"), "{stdout}");
    let check = stancekit(d, &["data", "check", "--targets", "targets.json", "clean.jsonl"]);
    assert!(check.status.success() && check.stderr.is_empty(), "{}", text(&check.stderr));
    let trained = train("clean.jsonl");
    assert!(trained.status.success(), "{}", text(&trained.stderr));
}

#[test]
fn clean_keeps_exact_duplicates_unless_told_and_refuses_bad_input() {
    let dir = setup();
    let d = dir.path();
    let clean = |args: &[&str]| stancekit(d, &[&["data", "clean", "--targets", "targets.json"][..], args].concat());
    let mut body = std::fs::read_to_string(d.join("annotated.jsonl")).unwrap();
    body += &record("s2", "Sentence 2.", "climate", "none");
    std::fs::write(d.join("annotated.jsonl"), body).unwrap();
    let out = clean(&["annotated.jsonl", "--out", "clean.jsonl", "--conflicts", "first"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning:   annotated.jsonl:28: duplicate of annotated.jsonl:6"), "{stderr}");
    let written = std::fs::read_to_string(d.join("clean.jsonl")).unwrap();
    assert_eq!(written.lines().count(), 25, "one record per conflicting group; the exact repeat kept");
    assert_eq!(written.lines().next(), Some(record("s0", "Sentence 0.", "nato", "favor").trim_end()));

    let before = std::fs::read(d.join("annotated.jsonl")).unwrap();
    fails_with(&clean(&["annotated.jsonl", "--out", "annotated.jsonl"]), "is the input annotated.jsonl");
    assert_eq!(std::fs::read(d.join("annotated.jsonl")).unwrap(), before);
    fails_with(&clean(&["missing.jsonl", "--out", "x.jsonl"]), "missing.jsonl: file: no such file or folder");
    std::fs::write(d.join("bad.jsonl"), record("x", "Odd.", "nato", "neutral")).unwrap();
    fails_with(&clean(&["bad.jsonl", "--out", "x.jsonl"]), "bad.jsonl:1: label: unknown label 'neutral'");
    assert!(!d.join("x.jsonl").exists());
}
