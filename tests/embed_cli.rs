//! `stancekit embed` end to end, through the binary, on a tiny random model:
//! the rows it writes are the library's embeddings, as JSONL and as `.npy`.

use std::path::Path;
use std::process::{Command, Output};

use candle_core::Device;
use stancekit::inference::embed::Embedder;
use stancekit::model::Precision;
use stancekit::resolve::ModelDir;

const TEXTS: [&str; 3] = ["nato is for peace", "never", "europe must pay for its own defence now"];

fn embed(model: &Path, input: &Path, output: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stancekit"))
        .arg("embed")
        .arg("--model")
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra)
        // The default log level: the run must not depend on what is logged.
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn library(model: &Path, precision: Precision) -> Vec<Vec<f32>> {
    let embedder = Embedder::load(&ModelDir::open(model).unwrap(), &Device::Cpu, None, precision).unwrap();
    embedder.embed(&TEXTS, 2).unwrap()
}

/// A folder with a tiny classifier (`model`) and `TEXTS` as lines (`texts.txt`).
fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    stancekit::testing::write_tiny_classifier(&model, 5).unwrap();
    let input = dir.path().join("texts.txt");
    std::fs::write(&input, TEXTS.join("\n")).unwrap();
    (dir, model, input)
}

#[test]
fn jsonl_and_npy_rows_are_the_library_embeddings() {
    let (dir, model, input) = setup();
    let want = library(&model, Precision::F32);

    let jsonl = dir.path().join("out.jsonl");
    let out = embed(&model, &input, &jsonl, &["--batch-size", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("embedded 3 sentences") && !stderr.contains("blank line"), "{stderr}");
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 3);
    for ((row, text), want) in rows.iter().zip(TEXTS).zip(&want) {
        assert_eq!(row["text"], text);
        let got: Vec<f32> = serde_json::from_value(row["embedding"].clone()).unwrap();
        assert_eq!(&got, want, "{text}");
    }

    let npy = dir.path().join("out.npy");
    assert!(embed(&model, &input, &npy, &[]).status.success());
    let matrix: ndarray::Array2<f32> = ndarray_npy::read_npy(&npy).unwrap();
    assert_eq!(matrix.dim(), (3, want[0].len()));
    for (row, want) in matrix.outer_iter().zip(&want) {
        let diff = row.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff < 1e-6, "batch 32 against batch 2: {diff}");
    }
    // The extension in any case; no sentences still make a matrix of the model's width.
    let (empty, npy) = (dir.path().join("empty.txt"), dir.path().join("OUT.NPY"));
    std::fs::write(&empty, "\n").unwrap();
    assert!(embed(&model, &empty, &npy, &[]).status.success());
    let matrix: ndarray::Array2<f32> = ndarray_npy::read_npy(&npy).unwrap();
    assert_eq!(matrix.dim(), (0, want[0].len()));
}

#[test]
fn int8_embeds_and_names_its_kernel() {
    if stancekit::kernels::int8::Kernel::select().is_err() {
        eprintln!("SKIPPED int8_embeds_and_names_its_kernel: no int8 kernel on this CPU");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    stancekit::testing::write_tiny_classifier(&model, 5).unwrap();
    let input = dir.path().join("texts.jsonl");
    let lines: Vec<String> = TEXTS.iter().map(|t| serde_json::json!({ "text": t }).to_string()).collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let output = dir.path().join("out.jsonl");
    let out = embed(&model, &input, &output, &["--precision", "int8", "--batch-size", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains(", int8 (kernel "), "{stderr}");
    let want = library(&model, Precision::Int8);
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(&output).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let got: Vec<Vec<f32>> = rows.iter().map(|r| serde_json::from_value(r["embedding"].clone()).unwrap()).collect();
    assert_eq!(got, want);
}

/// An output whose ending promises another format (`.npz`, `.csv`) is refused
/// before the model loads, and nothing is written.
#[test]
fn an_output_ending_that_is_neither_npy_nor_jsonl_is_refused() {
    let (dir, model, input) = setup();
    for name in ["e.npz", "e.csv", "e"] {
        let output = dir.path().join(name);
        let out = embed(&model, &input, &output, &[]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(": end the name in .npy (a float32 matrix) or .jsonl"), "{stderr}");
        assert!(!output.exists());
    }
    assert!(embed(&model, &input, &dir.path().join("e.JSONL"), &[]).status.success());
}

/// Blank lines between a plain-text input's texts get no row: an `.npy`,
/// which has no ids, then no longer lines up with the file, and the summary says so.
#[test]
fn blank_lines_that_get_no_row_are_counted() {
    let (dir, model, _) = setup();
    let gaps = dir.path().join("gaps.txt");
    std::fs::write(&gaps, "alpha\n\nbeta\n   \ngamma\n\n").unwrap();
    let out = embed(&model, &gaps, &dir.path().join("g.npy"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("embedded 3 sentences") && stderr.contains("; 2 blank lines got no row"), "{stderr}");
    // The same lines on stdin, sniffed as lines.
    let piped = Command::new(env!("CARGO_BIN_EXE_stancekit"))
        .args(["embed", "--model"])
        .arg(&model)
        .args(["--input", "-", "--output"])
        .arg(dir.path().join("p.npy"))
        .stdin(std::fs::File::open(&gaps).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success() && stderr.contains("; 2 blank lines got no row"), "{stderr}");
}

/// A length past the model's position table is refused, not cut to it quietly
/// (sentence-transformers fails there too); the table's own length runs.
#[test]
fn a_max_length_past_the_position_table_is_refused() {
    let (dir, model, input) = setup();
    let output = dir.path().join("e.jsonl");
    let out = embed(&model, &input, &output, &["--max-length", "65"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--max-length 65: the model's position table holds 64 tokens"),
        "{stderr}"
    );
    assert!(!output.exists());
    assert!(embed(&model, &input, &output, &["--max-length", "64"]).status.success());
}

/// An input of many windows (64 batches each) streams: its rows are those of
/// the library over every text at once, in input order, as `.npy` and JSONL.
/// A bad line past the first window fails the run with every problem named,
/// and leaves the output as it was.
#[test]
fn an_input_of_many_windows_streams_in_order_and_a_late_bad_line_writes_nothing() {
    let (dir, model, _) = setup();
    let texts: Vec<String> = (0..150).map(|i| format!("{} {}", TEXTS[i % 3], "war ".repeat(i % 7))).collect();
    let input = dir.path().join("many.txt");
    std::fs::write(&input, texts.join("\n")).unwrap();
    let embedder = Embedder::load(&ModelDir::open(&model).unwrap(), &Device::Cpu, None, Precision::F32).unwrap();
    let want = embedder.embed(&texts.iter().map(String::as_str).collect::<Vec<_>>(), 32).unwrap();
    let npy = dir.path().join("many.npy");
    let out = embed(&model, &input, &npy, &["--batch-size", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let matrix: ndarray::Array2<f32> = ndarray_npy::read_npy(&npy).unwrap();
    assert_eq!(matrix.dim(), (150, want[0].len()));
    for (i, (row, want)) in matrix.outer_iter().zip(&want).enumerate() {
        let diff = row.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff < 1e-5, "row {i}: {diff}");
    }
    let jsonl = dir.path().join("many.jsonl");
    assert!(embed(&model, &input, &jsonl, &["--batch-size", "1"]).status.success());
    let ids: Vec<String> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, (1..=150).map(|i| i.to_string()).collect::<Vec<_>>());

    let bad = dir.path().join("bad.jsonl");
    let mut lines: Vec<String> = texts.iter().map(|t| serde_json::json!({ "text": t }).to_string()).collect();
    lines[100] = r#"{"text": 3}"#.into();
    lines[140] = r#"{"id": "no text"}"#.into();
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let before = std::fs::read(&npy).unwrap();
    let out = embed(&model, &bad, &npy, &["--batch-size", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("bad.jsonl:101: text: expected a string, found 3"), "{stderr}");
    assert!(stderr.contains("bad.jsonl:141: text: missing"), "{stderr}");
    assert_eq!(std::fs::read(&npy).unwrap(), before, "the old output stays whole");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!names.iter().any(|n| n.to_string_lossy().contains(".tmp")), "{names:?}");
}

/// A reader that goes away (`| head -1`) ends the run quietly, and the
/// summary counts what was written: no blank lines are made up from the
/// lines read ahead of it.
#[test]
fn a_closed_pipe_ends_the_run_quietly_with_a_true_summary() {
    use std::io::BufRead;
    let (dir, model, _) = setup();
    let input = dir.path().join("many.txt");
    std::fs::write(&input, (0..3000).map(|i| format!("text {i}\n")).collect::<String>()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stancekit"))
        .args(["embed", "--batch-size", "1", "--output", "-", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.contains("\"text\":\"text 0\""), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("embedded ") && !stderr.contains("blank line"), "{stderr}");
}

/// A JSONL or CSV text that is empty or whitespace gets its row, the
/// special tokens alone, as sentence-transformers encodes it; the rows stay
/// one per record.
#[test]
fn a_blank_text_gets_the_row_of_the_special_tokens_alone() {
    let (dir, model, _) = setup();
    let input = dir.path().join("blank.jsonl");
    std::fs::write(&input, "{\"text\": \"never\"}\n{\"text\": \" \"}\n{\"text\": \"\"}\n").unwrap();
    let output = dir.path().join("blank.npy");
    let out = embed(&model, &input, &output, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let matrix: ndarray::Array2<f32> = ndarray_npy::read_npy(&output).unwrap();
    let embedder = Embedder::load(&ModelDir::open(&model).unwrap(), &Device::Cpu, None, Precision::F32).unwrap();
    let want = embedder.embed(&["never", ""], 1).unwrap();
    assert_eq!(matrix.nrows(), 3);
    for (row, want) in matrix.outer_iter().zip([&want[0], &want[1], &want[1]]) {
        let diff = row.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff < 1e-6, "{diff}");
    }
}
