//! End-to-end: `stancekit train` as a process meets a stop.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TARGETS: &str = r#"{"targets": {"nato": "Ukraine joining NATO"}}"#;

/// SIGTERM (what `timeout`, docker and systemd send) stops training as Ctrl-C
/// does: at the next step, with the checkpoint saved to `--resume` from.
#[test]
fn sigterm_stops_training_with_its_checkpoint_saved() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("targets.json"), TARGETS).unwrap();
    let labels = ["favor", "against", "none"];
    let body: String = (0..24)
        .map(|i| format!("{{\"text\":\"Sentence {i}.\",\"target\":\"nato\",\"label\":\"{}\"}}\n", labels[i % 3]))
        .collect();
    std::fs::write(d.join("train.jsonl"), body).unwrap();
    stancekit::testing::write_tiny_model(&d.join("base"), 5).unwrap();
    let args = ["train", "--model", "base", "--targets", "targets.json", "--train", "train.jsonl", "--out", "run"];
    let long = ["--dev-split", "0.25", "--num-train-epochs", "100000", "--eval-strategy", "steps", "--eval-steps", "1"];
    let child = Command::new(env!("CARGO_BIN_EXE_stancekit"))
        .current_dir(d)
        .args(args)
        .args(long)
        .args(["--device", "cpu", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let state = |name: &str| d.join("run/checkpoint-last").join(name);
    let started = Instant::now();
    while !state("trainer_state.json").is_file() {
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint within 2 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Stopped at a step with its checkpoint saved, then ended as SIGTERM would end it.
    assert!(
        stderr.contains("interrupted; the checkpoint is saved: continue with `stancekit train --resume"),
        "{stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{stderr}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state("trainer_state.json")).unwrap()).unwrap();
    assert_eq!(saved["finished"], false);
    assert!(Path::new(&d.join("run/train_config.json")).is_file());
}
