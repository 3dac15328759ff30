//! `stancekit predict` end to end, through the binary, on a tiny random classifier.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tiny_classifier() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    stancekit::testing::write_tiny_classifier(dir.path(), 11).unwrap();
    dir
}

fn predict(model: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stancekit"))
        .arg("predict")
        .arg("--model")
        .arg(model)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_string();
    let writer = std::thread::spawn(move || input.write_all(text.as_bytes()));
    let output = child.wait_with_output().unwrap();
    // A run refused before it reads its input may close stdin before all of it is written.
    match writer.join().unwrap() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => output,
    }
}

fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(bytes.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn jsonl_from_stdin_to_stdout_in_input_order() {
    let model = tiny_classifier();
    let input = "{\"id\": \"a\", \"text\": \"the war must end\"}\n\
                 {\"id\": \"b\", \"text\": \"europe will never pay more for defence\", \"target\": \"defence\"}\n\
                 {\"text\": \"peace\"}\n";
    let out = predict(model.path(), &["--input", "-", "--batch-size", "2"], input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = json_lines(&out.stdout);
    let keys: Vec<(&str, &str)> =
        rows.iter().map(|r| (r["id"].as_str().unwrap(), r["target"].as_str().unwrap())).collect();
    assert_eq!(keys, [("a", "defence"), ("a", "nato"), ("b", "defence"), ("3", "defence"), ("3", "nato")]);
    for row in &rows {
        let p = row["probs"].as_object().unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["favor", "against", "none"]);
        let sum: f64 = p.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5);
        let best = p.iter().max_by(|a, b| a.1.as_f64().partial_cmp(&b.1.as_f64()).unwrap()).unwrap().0;
        assert_eq!(row["label"].as_str().unwrap(), best);
    }
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("predicted 5 rows (3 sentences, 2 targets) in"), "{stderr}");
    assert!(stderr.contains("sentences/s"), "{stderr}");
}

/// A sentence longer than the model's token limit is cut to it, and the
/// summary says how many rows read such a sentence.
#[test]
fn the_summary_counts_rows_whose_sentence_was_cut() {
    let model = tiny_classifier();
    let long = "the war must end ".repeat(20);
    let input = format!("{{\"text\": \"{long}\"}}\n{{\"text\": \"peace\"}}\n");
    let out = predict(model.path(), &["--input", "-"], &input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("; 2 rows read a sentence cut to the model's 32 tokens"), "{stderr}");
    let short = predict(model.path(), &["--input", "-"], "{\"text\": \"peace\"}\n");
    assert!(!String::from_utf8(short.stderr).unwrap().contains("cut to"));
}

#[test]
fn plain_lines_and_articles_to_csv_with_a_zero_shot_target() {
    let model = tiny_classifier();
    let dir = tempfile::tempdir().unwrap();
    let article = dir.path().join("news.txt");
    std::fs::write(&article, "Talks failed on Feb. 3 in the U.S. Senate. Peace is far.\n\nWar goes on.\n").unwrap();
    let out_path = dir.path().join("out.csv");
    let out = predict(
        model.path(),
        &[
            "--input",
            "-",
            article.to_str().unwrap(),
            "--target",
            "eu=ukraine joining the eu",
            "--output",
            out_path.to_str().unwrap(),
        ],
        "the war must end\n\nnever give up\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    let mut csv = csv::Reader::from_path(&out_path).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        ["id", "doc", "sentence", "start", "end", "text", "target", "label", "p_favor", "p_against", "p_none"]
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let cells = |i: usize| -> Vec<&str> { rows[i].iter().take(7).collect() };
    assert_eq!(rows.len(), 5);
    // Line numbers name their input where there are several.
    assert_eq!(cells(0), ["-:1", "", "", "", "", "the war must end", "eu"]);
    assert_eq!(cells(1)[0], "-:3");
    let doc = article.to_str().unwrap();
    let first = format!("{doc}:0");
    assert_eq!(cells(2), [first.as_str(), doc, "0", "0", "42", "Talks failed on Feb. 3 in the U.S. Senate.", "eu"]);
    assert_eq!(&cells(3)[3..6], ["43", "56", "Peace is far."]);
    assert_eq!(&cells(4)[2..6], ["2", "58", "70", "War goes on."]);
}

#[test]
fn an_invalid_line_stops_the_run_and_keeps_the_old_output() {
    let model = tiny_classifier();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.jsonl");
    std::fs::write(&out_path, "old\n").unwrap();
    let input = "{\"text\": \"peace\"}\n{\"id\": 2}\nnot json\n{\"text\": \"war\", \"target\": \"mars\"}\n";
    let args = ["--input", "-", "--output", out_path.to_str().unwrap()];
    let out = predict(model.path(), &args, input);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("-:2: text: missing"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "old\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a temporary file was left behind");

    let out = predict(model.path(), &[&args[..], &["--skip-invalid"]].concat(), input);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("-:3: json:") && stderr.contains("-:4: target: unknown target `mars`"), "{stderr}");
    assert!(stderr.contains("skipped 3 invalid lines"), "{stderr}");
    assert_eq!(json_lines(std::fs::read_to_string(&out_path).unwrap().as_bytes()).len(), 2);
}

#[test]
fn unknown_target_is_an_error_naming_the_fix() {
    let model = tiny_classifier();
    let out = predict(model.path(), &["--input", "-", "--targets", "nato,eu"], "peace\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("unknown target `eu`") && stderr.contains("--target 'eu=DESCRIPTION'"), "{stderr}");
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let model = tiny_classifier();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stancekit"))
        .args(["predict", "--input", "-", "--window", "1", "--model"])
        .arg(model.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // Fed as it is read, so that the run is still going when its reader leaves.
    let writer = std::thread::spawn(move || {
        for i in 0..20_000 {
            if writeln!(input, "the war must end number {i}").is_err() {
                break;
            }
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("{\"id\":\"1\""), "{first}");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "status {:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// MPNet classifiers, a `<s>` head and a per-target one (the frozen recipe's,
/// which reads the sentence alone), predict through the binary what the
/// library gives for the same (target description, sentence) pairs.
#[test]
fn mpnet_classifiers_predict_through_the_binary() {
    use stancekit::model::Classifier;
    for per_target in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        stancekit::testing::write_tiny_mpnet_classifier(dir.path(), per_target, 5).unwrap();
        let input =
            "{\"id\": \"a\", \"text\": \"the war must end\"}\n{\"id\": \"b\", \"text\": \"europe will never pay\"}\n";
        let out = predict(dir.path(), &["--input", "-"], input);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rows = json_lines(&out.stdout);
        assert_eq!(rows.len(), 4);
        let resolved = stancekit::resolve::ModelDir::open(dir.path()).unwrap();
        let classifier = Classifier::load_frozen(&resolved, &candle_core::Device::Cpu).unwrap();
        for row in &rows {
            let description = classifier.description(row["target"].as_str().unwrap()).unwrap();
            let want = classifier.predict_proba(&[(description, row["text"].as_str().unwrap())], 1).unwrap();
            let got: Vec<f32> =
                row["probs"].as_object().unwrap().values().map(|v| v.as_f64().unwrap() as f32).collect();
            let diff = got.iter().zip(&want[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff < 1e-6, "per_target {per_target}: {row} vs {want:?}");
        }
        // Per target, the same sentence gets each target's own classifier.
        if per_target {
            assert_ne!(rows[0]["probs"], rows[1]["probs"]);
        }
    }
}

/// `--precision int8`: the same rows as f32 with probabilities near f32's, the
/// kernel named in the summary, and a kernel the CPU cannot run refused by name.
#[test]
fn int8_predicts_near_f32_and_names_its_kernel() {
    let model = tiny_classifier();
    let input =
        "{\"id\": \"a\", \"text\": \"the war must end\"}\n{\"id\": \"b\", \"text\": \"europe will never pay\"}\n";
    let f32 = predict(model.path(), &["--input", "-"], input);
    let int8 = predict(model.path(), &["--input", "-", "--precision", "int8"], input);
    assert!(int8.status.success(), "{}", String::from_utf8_lossy(&int8.stderr));
    let (a, b) = (json_lines(&f32.stdout), json_lines(&int8.stdout));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x["id"], &x["target"]), (&y["id"], &y["target"]));
        for (label, p) in x["probs"].as_object().unwrap() {
            let q = y["probs"][label].as_f64().unwrap();
            assert!((p.as_f64().unwrap() - q).abs() < 0.02, "{label}: {p} vs {q}");
        }
    }
    let stderr = String::from_utf8(int8.stderr).unwrap();
    assert!(stderr.contains(", int8 (kernel "), "{stderr}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_stancekit"));
    child.args(["predict", "--input", "-", "--precision", "int8", "--model"]).arg(model.path());
    let out = child.env("STANCEKIT_INT8_KERNEL", "sse9").stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("STANCEKIT_INT8_KERNEL=\"sse9\" is not one of amx, avx512-vnni, avx-vnni, avx2, scalar"),
        "{stderr}"
    );
    // Set but empty is unset: the kernel is chosen as without it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_stancekit"));
    child.args(["predict", "--input", "-", "--precision", "int8", "--model"]).arg(model.path());
    let out = child.env("STANCEKIT_INT8_KERNEL", "").stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `--int8-keep-f32`: the summary names the layers left in f32; they move
/// the rows towards f32; the flag without `--precision int8` is refused.
#[test]
fn int8_can_keep_layers_in_f32() {
    let model = tiny_classifier();
    let input = "{\"id\": \"a\", \"text\": \"the war must end\"}\n{\"id\": \"b\", \"text\": \"peace now\"}\n";
    let run = |args: &[&str]| {
        let out = predict(model.path(), &[&["--input", "-"], args].concat(), input);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (json_lines(&out.stdout), String::from_utf8(out.stderr).unwrap())
    };
    let probs = |rows: &[serde_json::Value]| -> Vec<f64> {
        rows.iter().flat_map(|r| r["probs"].as_object().unwrap().values().map(|v| v.as_f64().unwrap())).collect()
    };
    let gap = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let (f32, _) = run(&[]);
    let (int8, _) = run(&["--precision", "int8"]);
    let all = "query,key,value,attention-output,ffn-in,ffn-out";
    let (kept, stderr) = run(&["--precision", "int8", "--int8-keep-f32", all]);
    assert!(stderr.contains("in f32: query, key, value, attention-output, ffn-in, ffn-out"), "{stderr}");
    // With every linear layer in f32 only the f16 word table differs from f32.
    assert!(gap(&probs(&kept), &probs(&f32)) < 1e-4 && gap(&probs(&int8), &probs(&f32)) > 0.0);
    // The tiny model's two encoder layers, whole.
    let (layers, stderr) = run(&["--precision", "int8", "--int8-keep-f32", "key", "--int8-keep-f32-layers", "0,1"]);
    assert!(stderr.contains("in f32: key, layer 0, layer 1"), "{stderr}");
    assert!(gap(&probs(&layers), &probs(&f32)) < 1e-4);
    let beyond = predict(model.path(), &["--input", "-", "--precision", "int8", "--int8-keep-f32-layers", "2"], input);
    let stderr = String::from_utf8(beyond.stderr).unwrap();
    assert!(!beyond.status.success() && stderr.contains("the model has 2 layers, 0 to 1"), "{stderr}");
    // Input columns in f32 (`--int8-f32-columns`): named in the summary, and
    // one past the layers' inputs or more than 8 are refused by name.
    let (columns, stderr) = run(&["--precision", "int8", "--int8-f32-columns", "3,0"]);
    assert!(stderr.contains("in f32: columns 0 3"), "{stderr}");
    assert!(gap(&probs(&columns), &probs(&int8)) > 0.0 && gap(&probs(&columns), &probs(&f32)) < 0.02);
    // By default they are chosen at load (`auto`); the tiny random model has
    // no large column, so none is, as with `none`.
    for choice in ["auto", "none"] {
        let (rows, stderr) = run(&["--precision", "int8", "--int8-f32-columns", choice]);
        assert!(rows == int8 && !stderr.contains("columns"), "{choice}: {stderr}");
    }
    let args = ["--input", "-", "--precision", "int8", "--int8-f32-columns"];
    let bad = [
        ("5000", "--int8-f32-columns 5000: the layer has"),
        ("1,2,3,4,5,6,7,8,9", "at most 8"),
        ("most", "`most`: auto, none, or column numbers"),
    ];
    for (columns, error) in bad {
        let out = predict(model.path(), &[&args[..], &[columns]].concat(), input);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success() && stderr.contains(error), "{stderr}");
    }
    // Columns that no int8 layer reads are refused, not shown as used.
    let unread = [["--int8-keep-f32", "query,key,value,ffn-in"], ["--int8-keep-f32-layers", "0,1"]];
    for keep in unread {
        let out = predict(model.path(), &[&args[..], &["3"], &keep[..]].concat(), input);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success() && stderr.contains("no layer reads them in int8"), "{keep:?}: {stderr}");
    }
    // `auto` and `none` name no columns: every reader kept in f32 is no problem.
    for choice in ["auto", "none"] {
        let keep = ["--int8-keep-f32", "query,key,value,ffn-in"];
        let out = predict(model.path(), &[&args[..], &[choice], &keep[..]].concat(), input);
        assert!(out.status.success(), "{choice}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // With some of them kept, the others still read the columns.
    let out = predict(model.path(), &[&args[..], &["0", "--int8-keep-f32", "query,key"]].concat(), input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A large column planted at the layer norms is found, and the summary says so.
    stancekit::testing::plant_large_column(model.path(), 5, 30.0).unwrap();
    let (_, stderr) = run(&["--precision", "int8"]);
    assert!(stderr.contains("in f32: columns 5 chosen at load"), "{stderr}");
    let refused = predict(model.path(), &["--input", "-", "--int8-keep-f32", "ffn-out"], input);
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(stderr.contains("--int8-keep-f32 needs --precision int8"), "{stderr}");
}

/// `STANCEKIT_FUSED_KERNELS=0`: candle's composite ops in place of the fused
/// CPU kernels give the same probabilities to rounding, for BERT and MPNet
/// (MPNet's attention adds its position bias in the kernel), with a warning
/// saying so; a value other than 0 or 1 is refused by name.
#[test]
fn the_fused_kernels_can_be_turned_off() {
    let (bert, mpnet) = (tiny_classifier(), tempfile::tempdir().unwrap());
    stancekit::testing::write_tiny_mpnet_classifier(mpnet.path(), false, 5).unwrap();
    let input = "{\"id\": \"a\", \"text\": \"the war must end now\"}\n{\"id\": \"b\", \"text\": \"pay\"}\n";
    let run = |model: &Path, setting: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stancekit"));
        child.args(["predict", "--input", "-", "--model"]).arg(model);
        match setting {
            Some(value) => child.env("STANCEKIT_FUSED_KERNELS", value),
            None => child.env_remove("STANCEKIT_FUSED_KERNELS"),
        };
        let mut child = child.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    for model in [bert.path(), mpnet.path()] {
        let (fused, composite) = (run(model, None), run(model, Some("0")));
        assert!(composite.status.success(), "{}", String::from_utf8_lossy(&composite.stderr));
        let stderr = String::from_utf8(composite.stderr).unwrap();
        assert!(stderr.contains("warning: STANCEKIT_FUSED_KERNELS=0: the fused CPU kernels are off"), "{stderr}");
        assert!(!String::from_utf8(fused.stderr).unwrap().contains("FUSED"));
        let (a, b) = (json_lines(&fused.stdout), json_lines(&composite.stdout));
        assert_eq!(a.len(), 4);
        for (x, y) in a.iter().zip(&b) {
            for (label, p) in x["probs"].as_object().unwrap() {
                let q = y["probs"][label].as_f64().unwrap();
                assert!((p.as_f64().unwrap() - q).abs() < 1e-5, "{label}: {p} vs {q}");
            }
        }
    }
    let out = run(bert.path(), Some("off"));
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("STANCEKIT_FUSED_KERNELS=\"off\" is not 0 or 1"), "{stderr}");
}

/// `command` running `predict` from stdin to `output`, one line sent and its
/// temporary output made beside `output`: a run waiting on input, to be
/// signalled. The input is returned open.
fn streaming(mut command: Command, model: &Path, output: &Path) -> (std::process::Child, std::process::ChildStdin) {
    command.args(["predict", "--model"]).arg(model).args(["--input", "-", "--output"]).arg(output);
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"{\"text\": \"the war must end\"}\n").unwrap();
    let folder = output.parent().unwrap();
    let temporary =
        || std::fs::read_dir(folder).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"));
    let started = std::time::Instant::now();
    while !temporary() {
        assert!(started.elapsed().as_secs() < 60, "no temporary output within a minute");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child, input)
}

/// Ctrl-C (or SIGTERM) while rows stream to `--output`: the file keeps what it
/// held, no temporary is left beside it, and the signal ends the run even
/// while the input (a terminal, a pipe) has nothing more to give.
#[test]
fn an_interrupted_run_leaves_the_output_as_it_was() {
    let model = tiny_classifier();
    let dir = tempfile::tempdir().unwrap();
    let (real, link) = (dir.path().join("out.jsonl"), dir.path().join("link.jsonl"));
    std::fs::write(&real, "earlier\n").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // Through a link the temporary sits beside the file it names, and goes too.
    for (signal, output) in [(libc::SIGINT, &real), (libc::SIGTERM, &real), (libc::SIGTERM, &link)] {
        let (child, input) = streaming(Command::new(env!("CARGO_BIN_EXE_stancekit")), model.path(), output);
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let out = child.wait_with_output().unwrap();
        // Ended as the signal would end it: a shell sees 128 + the signal, a loop stops.
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(signal), "{}", String::from_utf8_lossy(&out.stderr));
        drop(input);
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "earlier\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary left");
    }
}

/// Records without ids from several inputs are told apart by their input's
/// path, as articles' sentences are; a record's own id, and the ids of a
/// single input, stay as they are.
#[test]
fn line_number_ids_name_their_input_when_there_are_several() {
    let model = tiny_classifier();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.csv"));
    std::fs::write(&a, "{\"text\": \"peace now\"}\n{\"id\": 7, \"text\": \"war\"}\n").unwrap();
    std::fs::write(&b, "text\nnever give up\n").unwrap();
    let ids = |inputs: &[&Path]| -> Vec<String> {
        let mut args = vec!["--input"];
        args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
        args.extend(["--targets", "nato"]);
        let out = predict(model.path(), &args, "");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        json_lines(&out.stdout).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    };
    let (a_id, b_id) = (format!("{}:1", a.display()), format!("{}:2", b.display()));
    assert_eq!(ids(&[&a, &b]), [a_id.as_str(), "7", b_id.as_str()]);
    assert_eq!(ids(&[&a]), ["1", "7"]);
}

/// A signal the run started with set to be ignored (`nohup` ignores SIGHUP)
/// stays ignored: the run goes on, and a signal it does catch still ends it.
#[test]
fn a_signal_ignored_at_start_stays_ignored() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let model = tiny_classifier();
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_stancekit"));
    // SAFETY: only async-signal-safe `signal` runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let (mut child, input) = streaming(command, model.path(), &dir.path().join("out.jsonl"));
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP, ignored at start, ended the run");
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    drop(input);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{}", String::from_utf8_lossy(&out.stderr));
}
