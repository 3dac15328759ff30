//! `stancekit label` end to end, through the binary: the HTTP API, what lands
//! in the labels file, a kill and a restart, and the bad inputs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

const ARTICLE: &str =
    "The war must end. Ukraine joining NATO is for peace.\n\nEurope will never pay more for defence.\n";

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let targets = json!({"labels": ["favor", "against", "none"],
            "targets": {"nato": "ukraine joining nato", "defence": "europe pay more for defence", "mars": "going to mars"}});
        std::fs::write(dir.path().join("targets.json"), targets.to_string()).unwrap();
        std::fs::write(dir.path().join("news.txt"), ARTICLE).unwrap();
        Self { dir }
    }

    /// The targets file `new` writes, written again.
    fn new_targets(&self) {
        let fresh = Self::new();
        std::fs::copy(fresh.path("targets.json"), self.path("targets.json")).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn out(&self) -> String {
        std::fs::read_to_string(self.path("labels.jsonl")).unwrap_or_default()
    }
}

/// A running `stancekit label`; killed (SIGKILL, no chance to tidy up) when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(files: &Files, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stancekit"));
    command
        .arg("label")
        .arg("--targets")
        .arg(files.path("targets.json"))
        .arg("--input")
        .arg(files.path("news.txt"))
        .arg("--out")
        .arg(files.path("labels.jsonl"))
        .args(["--target", "nato,defence"])
        .args(extra);
    command
}

fn start(files: &Files, extra: &[&str]) -> Server {
    let mut child = command(files, &[&["--addr", "127.0.0.1:0"], extra].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_else(|| panic!("{line}"));
    Server { addr: addr.to_string(), child }
}

fn fails(files: &Files, extra: &[&str]) -> String {
    let out: Output = command(files, extra).output().unwrap();
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8(out.stderr).unwrap()
}

/// One HTTP/1.1 request; the status, the headers and the body.
fn request(addr: &str, host: &str, method: &str, path: &str, body: &str) -> (u16, String, String) {
    request_with(addr, host, "Content-Type: application/json\r\n", method, path, body)
}

/// [`request`] with `headers` (each line ending in CRLF) in place of the JSON content type.
fn request_with(addr: &str, host: &str, headers: &str, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

impl Server {
    fn get(&self, path: &str) -> Value {
        self.call("GET", path, "", 200)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.call("POST", path, &body.to_string(), 200)
    }

    fn call(&self, method: &str, path: &str, body: &str, status: u16) -> Value {
        let (got, _, text) = request(&self.addr, &self.addr, method, path, body);
        assert_eq!(got, status, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    fn label(&self, item: u64, nato: &str, defence: &str) -> Value {
        self.post("/api/label", json!({"item": item, "labels": {"nato": nato, "defence": defence}}))
    }
}

fn index(view: &Value) -> Option<u64> {
    view["item"]["index"].as_u64()
}

fn records(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|r| {
            (
                r["text"].as_str().unwrap().into(),
                r["target"].as_str().unwrap().into(),
                r["label"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn data_check(files: &Files) {
    let out = Command::new(env!("CARGO_BIN_EXE_stancekit"))
        .args(["data", "check", "--targets"])
        .arg(files.path("targets.json"))
        .arg(files.path("labels.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_api_labels_skips_undoes_and_counts() {
    let files = Files::new();
    let server = start(&files, &[]);
    let (status, head, page) = request(&server.addr, &server.addr, "GET", "/", "");
    assert_eq!(status, 200);
    assert!(page.contains("<title>stancekit label</title>") && head.contains("content-security-policy"));
    assert!(!page.contains("http://") && !page.contains("https://"), "the page fetches nothing from elsewhere");
    let meta = server.get("/api/meta");
    assert_eq!(meta["targets"][1]["id"], "defence");
    assert_eq!(meta["neutral"], json!(["none"]), "the page greys the labels F_avg leaves out");
    assert!(meta["rules"].as_str().unwrap().contains("Judge the sentence on its own"));

    let view = server.get("/api/next");
    assert_eq!((index(&view), view["item"]["text"].as_str()), (Some(0), Some("The war must end.")));
    assert_eq!(view["item"]["after"], "Ukraine joining NATO is for peace.");
    assert_eq!(view["stats"]["total"], 3);
    assert_eq!(index(&server.label(0, "favor", "none")), Some(1));
    let missing = server.call("POST", "/api/label", &json!({"item": 1, "labels": {"nato": "none"}}).to_string(), 400);
    assert!(missing["error"].as_str().unwrap().contains("`defence`"), "{missing}");
    let bad = server.call(
        "POST",
        "/api/label",
        &json!({"item": 1, "labels": {"nato": "pro", "defence": "none"}}).to_string(),
        400,
    );
    assert!(bad["error"].as_str().unwrap().contains("`pro`"), "{bad}");
    // A target given twice is refused, not its last label taken.
    let twice = r#"{"item": 1, "labels": {"nato": "favor", "defence": "none", "nato": "none"}}"#;
    let twice = server.call("POST", "/api/label", twice, 422);
    assert!(twice["error"].as_str().unwrap().contains("target id `nato` is given twice"), "{twice}");
    server.call(
        "POST",
        "/api/label",
        &json!({"item": 0, "labels": {"nato": "none", "defence": "none"}}).to_string(),
        409,
    );
    assert_eq!(index(&server.post("/api/skip", json!({"item": 1}))), Some(2));
    assert_eq!(index(&server.post("/api/undo", json!({}))), Some(1), "undo takes the skip back");
    let stats = server.get("/api/stats");
    assert_eq!((stats["labelled"].as_u64(), stats["counts"]["nato"]["favor"].as_u64()), (Some(1), Some(1)));
    assert_eq!(index(&server.post("/api/undo", json!({}))), Some(0));
    assert_eq!(files.out(), "", "undo cut the decision back out");
    server.call("POST", "/api/undo", "{}", 409);

    let (forbidden, _, _) = request(&server.addr, "evil.example:80", "GET", "/api/next", "");
    assert_eq!(forbidden, 403, "another host name is refused");
    // Another site's page, through the user's browser: `fetch(…, {method: "POST", mode: "no-cors"})`.
    assert_eq!(
        index(&server.post("/api/label", json!({"item": 0, "labels": {"nato": "favor", "defence": "none"}}))),
        Some(1)
    );
    let saved = files.out();
    let foreign = [
        "Origin: https://evil.example\r\nContent-Type: text/plain\r\n",
        "Origin: null\r\n",
        "Sec-Fetch-Site: cross-site\r\n",
        "Sec-Fetch-Site: same-site\r\nContent-Type: application/json\r\n",
    ];
    for headers in foreign {
        let (status, _, body) = request_with(&server.addr, &server.addr, headers, "POST", "/api/undo", "");
        assert_eq!((status, body.contains("another site")), (403, true), "{headers}: {body}");
    }
    assert_eq!(files.out(), saved, "nothing undone");
    // Behind a reverse proxy (a login) Host is rewritten and Origin is the proxy's: the browser's word stands.
    let proxied = "Origin: https://label.example.com\r\nSec-Fetch-Site: same-origin\r\n";
    let (status, _, _) = request_with(&server.addr, &server.addr, proxied, "POST", "/api/undo", "");
    assert_eq!(status, 200, "the page's own origin may");
    assert_eq!(files.out(), "");
    // Every refusal is JSON with an error, HTTP's own ones included.
    let refusals = [
        ("POST", "/api/label", "x".repeat(100_000), 413),
        ("POST", "/api/label", "{oops".to_string(), 400),
        ("POST", "/api/label", r#"{"item": "0", "labels": {}}"#.to_string(), 422),
        ("GET", "/api/label", String::new(), 405),
        ("GET", "/nowhere", String::new(), 404),
    ];
    for (method, path, body, status) in refusals {
        let (got, _, text) = request(&server.addr, &server.addr, method, path, &body);
        let error: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"));
        assert_eq!(got, status, "{method} {path}: {text}");
        assert!(!error["error"].as_str().unwrap().is_empty(), "{text}");
    }

    server.label(0, "against", "favor");
    let done = server.label(1, "none", "none");
    assert_eq!(done["stats"]["counts"]["defence"]["none"], 1);
    let expected = [
        ("The war must end.", "nato", "against"),
        ("The war must end.", "defence", "favor"),
        ("Ukraine joining NATO is for peace.", "nato", "none"),
        ("Ukraine joining NATO is for peace.", "defence", "none"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(records(&files.out()), expected);
    data_check(&files);
}

#[test]
fn a_killed_server_loses_nothing_and_a_restart_resumes() {
    let files = Files::new();
    let server = start(&files, &[]);
    server.label(0, "favor", "none");
    server.label(1, "none", "against");
    drop(server);
    let before = files.out();
    let server = start(&files, &[]);
    let view = server.get("/api/next");
    assert_eq!((index(&view), view["stats"]["labelled"].as_u64()), (Some(2), Some(2)));
    assert_eq!(index(&server.post("/api/undo", json!({}))), Some(1), "what the file holds can be undone");
    assert_eq!(files.out(), before.lines().take(2).map(|l| format!("{l}\n")).collect::<String>());
    let view = server.label(1, "none", "against");
    assert_eq!(index(&view), Some(2));
    assert_eq!(files.out(), before);
    drop(server);
    data_check(&files);
}

#[test]
fn bad_inputs_are_named_and_labels_are_never_cut() {
    let files = Files::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = fails(&files, &["--addr", &addr]);
    assert!(err.contains(&format!("--addr {addr}: the port is in use")), "{err}");

    let err = fails(&files, &["--target", "venus"]);
    assert!(err.contains("unknown target `venus`") && err.contains("targets.json"), "{err}");

    // An unreadable rules file is named, and no labels file is created for nothing.
    let err = fails(&files, &["--rules", "no-such-rules.md"]);
    assert!(err.contains("--rules no-such-rules.md:"), "{err}");
    assert!(!files.path("labels.jsonl").exists());

    // A model of another label set would show guesses the page does not offer.
    let model = files.path("model");
    stancekit::testing::write_tiny_classifier(&model, 5).unwrap();
    let other =
        json!({"labels": ["pro", "con", "neutral"], "targets": {"nato": "ukraine joining nato", "defence": "x"}});
    std::fs::write(files.path("targets.json"), other.to_string()).unwrap();
    let err = fails(&files, &["--model", model.to_str().unwrap()]);
    assert!(err.contains("--model guess labels against, favor, none, but --targets"), "{err}");
    assert!(!files.path("labels.jsonl").exists());
    Files::new_targets(&files);

    // A classifier per target has none for `mars`: said before the labels file is created.
    let per_target = files.path("per-target");
    stancekit::testing::write_tiny_mpnet_classifier(&per_target, true, 5).unwrap();
    let err = fails(&files, &["--model", per_target.to_str().unwrap(), "--target", "nato,mars"]);
    assert!(err.contains("mars"), "{err}");
    assert!(!files.path("labels.jsonl").exists());

    let corrupt = "{\"text\":\"The war must end.\",\"target\":\"nato\",\"label\":\"favor\"}\n{\"text\": \"half a li\n";
    std::fs::write(files.path("labels.jsonl"), corrupt).unwrap();
    let err = fails(&files, &["--addr", "127.0.0.1:0"]);
    assert!(err.contains("labels.jsonl:2: json:"), "{err}");
    assert_eq!(files.out(), corrupt, "the file is left as it was");
}

#[test]
fn a_model_shows_its_guess() {
    let files = Files::new();
    let model = files.path("model");
    stancekit::testing::write_tiny_classifier(&model, 5).unwrap();
    let server = start(&files, &["--model", model.to_str().unwrap()]);
    let view = server.get("/api/next");
    for target in ["nato", "defence"] {
        let probs = view["item"]["probs"][target].as_object().unwrap();
        assert_eq!(probs.keys().collect::<Vec<_>>(), ["favor", "against", "none"]);
        let sum: f64 = probs.values().map(|p| p.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }
}
