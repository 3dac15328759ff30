//! `stancekit suggest` end to end, through the binary, on a tiny random MPNet
//! with the frozen recipe's classifier per target (`nato` and `defence`).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const ARTICLE: &str = "The war must end. Ukraine joining NATO is for peace. Europe will never pay more.\n\n\
    Talks will resume in May. The border is not for sale. Defence spending must rise.\n";

fn suggest(model: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stancekit"))
        .arg("suggest")
        .arg("--model")
        .arg(model)
        .arg("--pool")
        .arg(dir.join("news.txt"))
        .arg(dir.join("more.jsonl"))
        .arg("--out")
        .arg(dir.join("s.jsonl"))
        .args(args)
        .output()
        .unwrap()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    stancekit::testing::write_tiny_mpnet_classifier(&dir.path().join("model"), true, 11).unwrap();
    std::fs::write(dir.path().join("news.txt"), ARTICLE).unwrap();
    let more = "{\"id\": \"m1\", \"text\": \"peace talks never end\"}\n\
                {\"id\": \"m2\", \"text\": \"The war must end.\"}\n\
                {\"id\": \"m3\", \"text\": \"nato is not the answer\", \"target\": \"nato\"}\n";
    std::fs::write(dir.path().join("more.jsonl"), more).unwrap();
    // Only texts matter here: a target or label the model lacks (labelled since it was trained) is no problem.
    let labelled = "{\"id\": \"x\", \"text\": \"Talks will resume in May.\", \"target\": \"nato\", \"label\": \"none\"}\n\
                    {\"id\": \"y\", \"text\": \"peace talks never end\", \"target\": \"eu\", \"label\": \"strongly against\"}\n";
    std::fs::write(dir.path().join("labelled.jsonl"), labelled).unwrap();
    dir
}

fn rows(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("s.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn every_strategy_picks_distinct_unlabelled_sentences_balanced_over_targets() {
    let dir = setup();
    let model = dir.path().join("model");
    let exclude = dir.path().join("labelled.jsonl");
    for strategy in ["diverse", "entropy", "margin", "random"] {
        let out =
            suggest(&model, dir.path(), &["--n", "4", "--strategy", strategy, "--exclude", exclude.to_str().unwrap()]);
        assert!(out.status.success(), "{strategy}: {}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(&format!("suggested 4 of 6 unlabelled sentences ({strategy};")), "{stderr}");
        let rows = rows(dir.path());
        let mut texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
        for labelled in ["Talks will resume in May.", "peace talks never end"] {
            assert!(!texts.contains(&labelled), "{strategy}: a labelled sentence came back");
        }
        texts.dedup();
        assert_eq!(texts.len(), 4);
        let for_nato = rows.iter().filter(|r| r["picked_for"] == "nato").count();
        assert_eq!(for_nato, 2, "{strategy}: two picks per target");
        for row in &rows {
            assert_eq!(row["strategy"], strategy);
            assert!(!row["why"].as_str().unwrap().is_empty());
            let probs = row["probs"].as_object().unwrap();
            let wanted = if row["id"] == "m3" { vec!["nato"] } else { vec!["defence", "nato"] };
            assert_eq!(probs.keys().collect::<Vec<_>>(), wanted);
            let nato = probs["nato"].as_object().unwrap();
            assert_eq!(nato.keys().collect::<Vec<_>>(), ["favor", "against", "none"]);
        }
    }
}

#[test]
fn article_sentences_keep_their_place_and_neighbours_and_random_follows_its_seed() {
    let dir = setup();
    let model = dir.path().join("model");
    let out = suggest(&model, dir.path(), &["--n", "20", "--strategy", "random", "--seed", "4"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first = rows(dir.path());
    assert_eq!(first.len(), 8, "every distinct sentence once ('The war must end.' is in both files)");
    let talks = first.iter().find(|r| r["text"] == "Talks will resume in May.").unwrap();
    assert_eq!((talks["sentence"].as_u64(), talks["start"].as_u64()), (Some(3), Some(82)));
    assert!(talks["doc"].as_str().unwrap().ends_with("news.txt"));
    assert_eq!(talks["before"], "Europe will never pay more.");
    assert_eq!(talks["after"], "The border is not for sale.");
    suggest(&model, dir.path(), &["--n", "20", "--strategy", "random", "--seed", "4"]);
    assert_eq!(rows(dir.path()), first);
}

#[test]
fn bad_requests_fail_before_writing() {
    let dir = setup();
    let model = dir.path().join("model");
    let out = suggest(&model, dir.path(), &["--n", "0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--n"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = suggest(&model, dir.path(), &["--targets", "venus"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown target `venus`"));
    assert!(!dir.path().join("s.jsonl").exists());
}
