//! End-to-end: the `stancekit data` commands as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TARGETS: &str = r#"{"targets": {"nato": "Ukraine joining NATO", "climate": "Climate Change is a Real Concern"}}"#;

fn stancekit(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stancekit")).current_dir(dir).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, body).unwrap();
    path
}

fn record(text: &str, target: &str, label: &str) -> String {
    format!("{{\"text\":\"{text}\",\"target\":\"{target}\",\"label\":\"{label}\"}}\n")
}

/// A temp folder holding `targets.json` and a valid `good.jsonl` of `n` sentences, two targets each.
fn setup(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "targets.json", TARGETS);
    let body: String = (0..n)
        .map(|i| {
            record(&format!("Sentence {i}."), "nato", ["favor", "against", "none"][i % 3])
                + &record(&format!("Sentence {i}."), "climate", "none")
        })
        .collect();
    write(dir.path(), "good.jsonl", &body);
    dir
}

/// Without `--targets` the default is looked for where the command runs; its
/// absence names the flag, not just the missing path.
#[test]
fn a_missing_default_targets_file_names_the_flag() {
    let dir = setup(3);
    let out = stancekit(dir.path(), &["data", "check", "good.jsonl"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no targets file: pass --targets FILE"), "{stderr}");
    assert!(stderr.contains("datasets/targets.json does not exist here"), "{stderr}");
}

#[test]
fn check_prints_the_counts_table() {
    let dir = setup(6);
    let out = stancekit(dir.path(), &["data", "check", "--targets", "targets.json", "good.jsonl"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("== good.jsonl"), "{stdout}");
    assert!(stdout.contains("target   favor  against  none  records  sentences"), "{stdout}");
    assert!(stdout.contains("nato         2        2     2        6          6"), "{stdout}");
    assert!(stdout.contains("total        2        2     8       12          6"), "{stdout}");
    assert!(stdout.contains("12 records, 6 distinct sentences"), "{stdout}");
}

#[test]
fn check_lists_every_problem_of_every_file_and_fails() {
    let dir = setup(1);
    let bad = [record("a", "nato", "none"), "\n".into(), record("b", "nato", "neutral"), "{oops\n".into()].concat();
    write(dir.path(), "bad.jsonl", &bad);
    write(dir.path(), "worse.csv", "text,target,label\n,climate,none\n");
    let out =
        stancekit(dir.path(), &["data", "check", "--targets", "targets.json", "bad.jsonl", "good.jsonl", "worse.csv"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.starts_with("error: invalid input (3 problem(s)):"), "{stderr}");
    assert!(stderr.contains("bad.jsonl:3: label: unknown label 'neutral'; allowed: favor, against, none"), "{stderr}");
    assert!(stderr.contains("bad.jsonl:4: json:"), "{stderr}");
    assert!(stderr.contains("worse.csv:2: text: empty or whitespace-only text"), "{stderr}");
}

#[test]
fn check_reads_a_tweeteval_folder_with_a_split_suffix() {
    let dir = setup(1);
    write(dir.path(), "te/mapping.txt", "0\tnone\n1\tagainst\n2\tfavor");
    write(dir.path(), "te/climate/train_text.txt", "Hot #SemST \nHot #SemST \n");
    write(dir.path(), "te/climate/train_labels.txt", "2\n2\n");
    write(dir.path(), "te/climate/test_text.txt", "Cold #SemST \n");
    write(dir.path(), "te/climate/test_labels.txt", "1\n");
    let out = stancekit(dir.path(), &["data", "check", "--targets", "targets.json", "te:train"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("climate      2        0     0        2          1"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("warning: 1 exact duplicate record(s)"), "{}", text(&out.stderr));
}

#[test]
fn check_uses_the_project_targets_file_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.jsonl", &record("Ukraine's place is in NATO.", "nato_accession", "favor"));
    let root = env!("CARGO_MANIFEST_DIR");
    let out = stancekit(Path::new(root), &["data", "check", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn split_writes_reproducible_parts_and_will_not_overwrite() {
    let dir = setup(40);
    let split = |out: &str, extra: &[&str]| {
        let mut args = vec!["data", "split", "--targets", "targets.json", "good.jsonl", "--out", out, "--test", "0.2"];
        args.extend(extra);
        stancekit(dir.path(), &args)
    };
    let first = split("a", &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("== a/dev.jsonl"), "{}", text(&first.stdout));
    assert!(split("b", &[]).status.success());
    for part in ["train.jsonl", "dev.jsonl", "test.jsonl"] {
        let (a, b) = (dir.path().join("a").join(part), dir.path().join("b").join(part));
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{part}");
    }
    let dev = std::fs::read_to_string(dir.path().join("a/dev.jsonl")).unwrap();
    assert_eq!(dev.lines().count(), 12, "15% of 40 sentences, two records each");

    let again = split("a", &["--seed", "7"]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("pass --overwrite"), "{}", text(&again.stderr));
    assert!(split("a", &["--seed", "7", "--overwrite"]).status.success());
    assert_ne!(std::fs::read_to_string(dir.path().join("a/dev.jsonl")).unwrap(), dev);
}

#[test]
fn split_writes_folds() {
    let dir = setup(10);
    let out = stancekit(
        dir.path(),
        &["data", "split", "--targets", "targets.json", "good.jsonl", "--out", "cv", "--folds", "5"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for k in 1..=5 {
        let test = std::fs::read_to_string(dir.path().join(format!("cv/fold-{k}/test.jsonl"))).unwrap();
        let train = std::fs::read_to_string(dir.path().join(format!("cv/fold-{k}/train.jsonl"))).unwrap();
        assert_eq!((test.lines().count(), train.lines().count()), (4, 16), "fold {k}");
    }
    // Fewer folds over the same folder: folds 4 and 5 of the first split do not stay behind.
    let args = ["data", "split", "--targets", "targets.json", "good.jsonl", "--out", "cv", "--folds", "3"];
    let refused = stancekit(dir.path(), &args);
    assert!(text(&refused.stderr).contains("pass --overwrite"), "{}", text(&refused.stderr));
    let again = stancekit(dir.path(), &[&args[..], &["--overwrite"]].concat());
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(!dir.path().join("cv/fold-4").exists() && !dir.path().join("cv/fold-5").exists());
    assert!(dir.path().join("cv/fold-3/test.jsonl").exists());
}

/// Too few sentences for the shares: a dev or test part left empty is not
/// written and said so; a train part left empty is an error, and nothing is written.
#[test]
fn split_says_which_part_came_out_empty() {
    let dir = setup(3);
    let args = ["data", "split", "--targets", "targets.json", "good.jsonl", "--out", "s", "--dev", "0.01"];
    let out = stancekit(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("warning: dev gets none of the 3 sentence(s) at --dev 0.01 --test 0: s/dev.jsonl is not written"),
        "{stderr}"
    );
    assert!(dir.path().join("s/train.jsonl").is_file() && !dir.path().join("s/dev.jsonl").exists());
    let args = ["data", "split", "--targets", "targets.json", "good.jsonl", "--out", "t", "--dev", "0.999"];
    let out = stancekit(dir.path(), &args);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("train gets none of the 3 sentence(s) at --dev 0.999"), "{}", text(&out.stderr));
    assert!(!dir.path().join("t").exists());
    write(dir.path(), "afile", "");
    let out = stancekit(dir.path(), &["data", "split", "--targets", "targets.json", "good.jsonl", "--out", "afile"]);
    assert!(text(&out.stderr).contains("afile: not a folder; --out names the folder"), "{}", text(&out.stderr));
}
