//! `stancekit serve` end to end, through the binary, on tiny random classifiers:
//! concurrent requests answer the rows `predict` writes, limits answer JSON
//! errors, and SIGTERM lets the request in flight finish before exiting 0.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// A running `stancekit serve` on a free localhost port; killed if the test ends early.
struct Server {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(model: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stancekit"))
            .args(["serve", "--addr", "127.0.0.1:0", "--model"])
            .arg(model)
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().expect("serve printed nothing").unwrap();
        let port = first
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        // Keep draining stderr, so that the server never blocks on it.
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            lines.map_while(Result::ok).for_each(|l| sink.lock().unwrap().push_str(&(l + "\n")))
        });
        Self { child, port, stderr }
    }

    /// One request on a fresh connection: (status, body).
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no body in {response:?}"));
        (head.split(' ').nth(1).unwrap().parse().unwrap(), body.to_string())
    }

    fn predict(&self, body: &Value) -> Vec<Value> {
        let (status, text) = self.call("POST", "/v1/predict", &body.to_string());
        assert_eq!(status, 200, "{text}");
        serde_json::from_str::<Value>(&text).unwrap()["predictions"].as_array().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `stancekit predict` over JSONL `input`: its rows.
fn predict(model: &Path, input: &str, precision: &str) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stancekit"))
        .args(["predict", "--input", "-", "--precision", precision, "--model"])
        .arg(model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Sentences of zigzagging lengths, so that batching and sorting reorder them.
fn records() -> Vec<Value> {
    let words: Vec<&str> =
        "the war must end and europe will never give up its borders for peace talks with nato".split(' ').collect();
    (0..60).map(|i| json!({"id": format!("s{i}"), "text": words[..1 + (i * 7) % words.len()].join(" ")})).collect()
}

/// Rows keyed by (id, target), with the probabilities set apart.
fn by_key(rows: Vec<Value>) -> BTreeMap<(String, String), (Value, Vec<f64>)> {
    rows.into_iter()
        .map(|mut row| {
            let probs: Vec<f64> = row["probs"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).collect();
            let labels: Vec<String> = row["probs"].as_object().unwrap().keys().cloned().collect();
            row["probs"] = json!(labels);
            let key = (row["id"].as_str().unwrap().to_string(), row["target"].as_str().unwrap().to_string());
            (key, (row, probs))
        })
        .collect()
}

#[test]
fn concurrent_requests_get_the_rows_predict_writes() {
    type Write = fn(&Path, u64) -> stancekit::Result<()>;
    let per_target: Write = |dir, seed| stancekit::testing::write_tiny_mpnet_classifier(dir, true, seed);
    let models: [(Write, &str); 3] = [
        (stancekit::testing::write_tiny_classifier, "f32"),
        (per_target, "f32"),
        (stancekit::testing::write_tiny_classifier, "int8"),
    ];
    for (write, precision) in models {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 11).unwrap();
        let records = records();
        let jsonl: String = records.iter().map(|r| format!("{r}\n")).collect();
        let want = by_key(predict(dir.path(), &jsonl, precision));
        let server = Arc::new(Server::start(
            dir.path(),
            &["--max-wait-ms", "50", "--max-batch-size", "40", "--batch-size", "8", "--precision", precision],
        ));
        // Requests of 1 to 16 records from 8 threads at once, merged as they arrive.
        let chunks: Vec<Vec<Value>> = records.chunks(16).flat_map(|c| [c[..1].to_vec(), c[1..].to_vec()]).collect();
        let threads: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let server = server.clone();
                std::thread::spawn(move || server.predict(&json!({ "records": chunk })))
            })
            .collect();
        let got = by_key(threads.into_iter().flat_map(|t| t.join().unwrap()).collect());
        assert_eq!(got.len(), want.len());
        for (key, (row, probs)) in &want {
            let (got_row, got_probs) = &got[key];
            assert_eq!(got_row, row, "{precision}: fields of {key:?}");
            let diff = probs.iter().zip(got_probs).map(|(a, b)| (a - b).abs()).fold(0f64, f64::max);
            assert!(diff <= 1e-6, "{precision}: {key:?} differs by {diff}");
        }
        let (_, metrics) = server.call("GET", "/metrics", "");
        let line = metrics.lines().find(|l| l.starts_with("stancekit_batch_requests_count")).unwrap();
        let calls: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(calls < 8, "{precision}: 8 requests took {calls} model calls: none were merged");
        let (_, info) = server.call("GET", "/v1/model", "");
        let info = serde_json::from_str::<Value>(&info).unwrap();
        assert_eq!((&info["precision"], &info["feature_layers"]), (&json!(precision), &json!(1)));
    }
}

#[test]
fn texts_and_targets_as_predict_reads_them_and_errors_as_json() {
    let dir = tempfile::tempdir().unwrap();
    stancekit::testing::write_tiny_classifier(dir.path(), 5).unwrap();
    let server = Server::start(dir.path(), &["--max-texts", "2", "--max-body-bytes", "300"]);
    let rows = server.predict(&json!({"texts": ["the war must end", "peace"], "targets": ["nato"]}));
    let want = predict(dir.path(), "{\"text\": \"the war must end\"}\n{\"text\": \"peace\"}\n", "f32");
    let want: Vec<&Value> = want.iter().filter(|r| r["target"] == "nato").collect();
    assert_eq!(rows.len(), 2);
    for (got, want) in rows.iter().zip(want) {
        assert_eq!((&got["id"], &got["text"], &got["label"]), (&want["id"], &want["text"], &want["label"]));
    }
    let long = "war ".repeat(100);
    let refusals = [
        (json!({"texts": ["a", "b", "c"]}).to_string(), 413, "texts"),
        (json!({ "texts": [long] }).to_string(), 413, "body"),
        (json!({"texts": ["a", ""]}).to_string(), 400, "texts[1]"),
        (json!({"texts": ["a"], "targets": ["eu"]}).to_string(), 400, "targets[0]"),
        (json!({"records": [{"text": "a", "target": "eu"}]}).to_string(), 400, "records[0].target"),
        ("{\"texts\": [".to_string(), 400, "body"),
    ];
    for (body, status, field) in refusals {
        let (got, text) = server.call("POST", "/v1/predict", &body);
        let error: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!((got, error["field"].as_str().unwrap()), (status, field), "{text}");
    }
    assert_eq!(server.call("GET", "/health", ""), (200, "{\"status\":\"ok\"}".to_string()));
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    stancekit::testing::write_tiny_classifier(dir.path(), 5).unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let port = server.port;
    // A request whose body is half sent when SIGTERM comes: in flight, it is still answered.
    let body = "{\"texts\": [\"peace\"]}";
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{}", body.len(), &body[..5])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signals our own child process by its id.
    assert_eq!(unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "still accepting after SIGTERM");
    stream.write_all(&body.as_bytes()[5..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"predictions\""), "{response}");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit {status:?}; stderr:\n{}", server.stderr.lock().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    assert!(server.stderr.lock().unwrap().contains("stancekit serve: stopped"));
}

/// A second signal during the drain (an impatient Ctrl-C) stops at once,
/// without waiting out `--timeout-ms` for a stalled request.
#[test]
fn a_second_signal_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    stancekit::testing::write_tiny_classifier(dir.path(), 5).unwrap();
    let mut server = Server::start(dir.path(), &["--timeout-ms", "60000"]);
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stalled.write_all(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.child.id() as i32;
    let signal = |sig| {
        // SAFETY: signals our own child process by its id.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
        std::thread::sleep(Duration::from_millis(500));
    };
    signal(libc::SIGTERM);
    assert!(server.child.try_wait().unwrap().is_none(), "the first signal waits for the request in flight");
    let signalled = std::time::Instant::now();
    signal(libc::SIGINT);
    let status = server.child.wait().unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(10), "stopped after {:?}", signalled.elapsed());
    assert!(status.success(), "exit {status:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(server.stderr.lock().unwrap().contains("a second stop signal"), "{}", server.stderr.lock().unwrap());
}

/// A client that stops sending its body holds its connection no longer than
/// `--timeout-ms` (408, as JSON), nor a stop after it; a body declared too
/// large is refused (413) before a byte of it is read.
#[test]
fn a_stalled_or_oversized_body_is_answered_at_once_or_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    stancekit::testing::write_tiny_classifier(dir.path(), 5).unwrap();
    let mut server = Server::start(dir.path(), &["--timeout-ms", "500"]);
    let response = |head: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let started = std::time::Instant::now();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        (response, started.elapsed())
    };
    let (stalled, waited) = response("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"texts\"");
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
    assert!(stalled.contains("\"field\":\"body\"") && stalled.contains("not received within 500 ms"), "{stalled}");
    assert!(waited >= Duration::from_millis(400) && waited < Duration::from_secs(10), "answered after {waited:?}");
    let (huge, waited) = response("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n");
    assert!(huge.starts_with("HTTP/1.1 413") && huge.contains("body: over"), "{huge}");
    assert!(waited < Duration::from_millis(400), "413 at once, not after the timeout: {waited:?}");
    // A stop while a body stalls: the request is answered (408) at its time, then the server exits.
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stalled.write_all(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let signalled = std::time::Instant::now();
    // SAFETY: signals our own child process by its id.
    assert_eq!(unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) }, 0);
    let mut answer = String::new();
    stalled.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(server.child.wait().unwrap().success());
    assert!(signalled.elapsed() < Duration::from_secs(5), "stopped after {:?}", signalled.elapsed());
}

/// Connections are bounded too: one that never finishes its headers is closed
/// after `--timeout-ms`, and past `--max-connections` a new one waits to be
/// accepted until another closes.
#[test]
fn idle_connections_are_closed_and_their_number_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    stancekit::testing::write_tiny_classifier(dir.path(), 5).unwrap();
    let mut server = Server::start(dir.path(), &["--timeout-ms", "500", "--max-connections", "2"]);
    let started = std::time::Instant::now();
    let mut idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap()).collect();
    idle[0].write_all(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Both places are taken: this request is answered once the server has closed one of them.
    let (status, body) = server.call("POST", "/v1/predict", r#"{"texts": ["peace"]}"#);
    let waited = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(waited >= Duration::from_millis(400) && waited < Duration::from_secs(10), "answered after {waited:?}");
    // Both were closed by the server (end of stream), the one that sent nothing too.
    for stream in &mut idle {
        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).expect("closed by the server, not left open");
        assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&rest));
    }
    // SAFETY: signals our own child process by its id.
    assert_eq!(unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) }, 0);
    assert!(server.child.wait().unwrap().success());
}
