//! The HTTP routes over a loaded classifier: `POST /v1/predict`,
//! `GET /v1/model`, `GET /health` and `GET /metrics`.
//!
//! A prediction request is checked and tokenised on tokio's blocking pool (so
//! that it overlaps the model, as `predict`'s reader thread does), queued for
//! the [`Batcher`], and answered with the rows `predict` writes for the same
//! records, by the same [`RowWriter`].

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::api::{ApiError, PredictRequest};
use super::batcher::{Answer, BatchOptions, Batcher, Probabilities, Refused};
use super::metrics::Metrics;
use crate::inference::predict::{OutputFormat, RecordPairs, RowWriter, Sink, TargetSet};
use crate::model::{Classifier, Int8Plan};
use crate::resolve::ModelDir;
use crate::tokenization::Encoded;

/// Per-request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Texts (or records) in one request.
    pub max_texts: usize,
    /// Bytes of one request body.
    pub max_body_bytes: usize,
    /// From a request's arrival to its answer.
    pub timeout: Duration,
    /// Connections open at once (the connection loop's bound, shown in `/v1/model`).
    pub max_connections: usize,
}

/// Everything the handlers share.
pub struct Service {
    pub classifier: Arc<Classifier>,
    pub targets: TargetSet,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// The body of `GET /v1/model`, made once.
    pub info: serde_json::Value,
}

/// How the service batches and what it allows.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub batching: BatchOptions,
    /// Pairs per forward pass inside a model call.
    pub batch_size: usize,
    pub limits: Limits,
}

impl Service {
    /// Starts the model thread over `classifier` (loaded from `dir`); the
    /// thread ends once the service and every clone of its batcher are dropped.
    pub fn start(
        classifier: Classifier,
        dir: &ModelDir,
        settings: Settings,
    ) -> crate::Result<(Arc<Self>, JoinHandle<()>)> {
        let classifier = Arc::new(classifier);
        let targets = TargetSet::new(&classifier.spec.targets, &[], &[])?;
        // As `predict` does: a description that leaves no room for a sentence is refused at start.
        targets.check_fit(&classifier.pair_encoder())?;
        let info = model_info(&classifier, dir, &settings);
        let metrics = Arc::new(Metrics::new(settings.batching.queue));
        let model = classifier.clone();
        let batch_size = settings.batch_size;
        // On CPU whole forward passes run side by side, one per core: a call too
        // small to fill every core with a full pass is cut into one pass per core,
        // which at low load nearly halves the latency on two cores.
        let cores = if classifier.device.is_cpu() { rayon::current_num_threads() } else { 1 };
        let run = move |encoded: &[Encoded]| {
            model.proba_encoded(encoded, batch_size.min(encoded.len().div_ceil(cores)).max(1))
        };
        let (batcher, thread) = Batcher::start(run, settings.batching, metrics.clone());
        let service = Service { classifier, targets, batcher, metrics, limits: settings.limits, info };
        Ok((Arc::new(service), thread))
    }
}

/// What `GET /v1/model` says: labels, targets, the base model, precision, and the server's limits.
fn model_info(classifier: &Classifier, dir: &ModelDir, settings: &Settings) -> serde_json::Value {
    let spec = &classifier.spec;
    let targets: Vec<serde_json::Value> = spec
        .targets
        .iter()
        .map(|(id, description)| serde_json::json!({ "id": id, "description": description }))
        .collect();
    let (batching, limits) = (&settings.batching, &settings.limits);
    let arithmetic = Int8Plan::arithmetic_of(classifier.int8);
    serde_json::json!({
        "labels": spec.labels,
        "targets": targets,
        "base_model": base_model(classifier, dir),
        "model_type": classifier.config.model_type,
        "head": spec.head,
        "feature_layers": spec.feature_layers,
        "max_length": spec.max_length,
        "precision": arithmetic.precision,
        "int8_kernel": classifier.int8.map(|p| p.kernel.name()),
        "int8_keep_f32": arithmetic.kept_f32(),
        "int8_keep_f32_layers": arithmetic.kept_layers(),
        "int8_f32_columns": arithmetic.f32_columns(),
        "int8_f32_columns_chosen_at_load": arithmetic.f32_columns_chosen_at_load(),
        "batching": {
            "max_batch_size": batching.max_pairs,
            "batch_size": settings.batch_size,
            "max_wait_ms": batching.max_wait.as_millis() as u64,
            "queue_size": batching.queue,
        },
        "limits": {
            "max_texts": limits.max_texts,
            "max_body_bytes": limits.max_body_bytes,
            "timeout_ms": limits.timeout.as_millis() as u64,
            "max_connections": limits.max_connections,
        },
    })
}

/// The encoder a run was trained from (`train_config.json`'s `model`), else
/// the name its `config.json` carries.
fn base_model(classifier: &Classifier, dir: &ModelDir) -> Option<String> {
    let trained_from = std::fs::read(dir.file("train_config.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|config| config.get("model")?.as_str().map(String::from));
    trained_from.or_else(|| classifier.config.extra.get("_name_or_path")?.as_str().map(String::from))
}

/// The routes over `service`, with the body limit and the request metrics.
pub fn router(service: Arc<Service>) -> Router {
    let limit = service.limits.max_body_bytes;
    Router::new()
        .route("/v1/predict", post(predict))
        .route("/v1/model", get(model))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, None, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, None, "method not allowed on this route")
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            crate::http::BodyBounds {
                time: service.limits.timeout,
                max_bytes: limit,
                flags: [" (--timeout-ms)", " (--max-body-bytes)"],
            },
            crate::http::bound_body,
        ))
        .layer(middleware::from_fn_with_state(service.clone(), track))
        .with_state(service)
}

/// Counts every answer by route and status, with its latency.
async fn track(
    State(service): State<Arc<Service>>,
    path: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = path.map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    service.metrics.request(&route, response.status().as_u16(), started.elapsed());
    response
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn model(State(service): State<Arc<Service>>) -> impl IntoResponse {
    axum::Json(service.info.clone())
}

async fn metrics(State(service): State<Arc<Service>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], service.metrics.render())
}

async fn predict(
    State(service): State<Arc<Service>>,
    arrived: Option<axum::Extension<crate::http::Arrived>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let limits = service.limits;
    // Its size was bounded as it was read (`http::bound_body`).
    let body = match body {
        Ok(body) => body,
        Err(e) => return ApiError::new(e.status(), Some("body"), e.body_text()).into_response(),
    };
    // --timeout-ms counts from the request's arrival: the time its body took is spent.
    let spent = arrived.map_or(Duration::ZERO, |a| a.0 .0.elapsed());
    // Dropping the answer on timeout drops its queue receiver, so the batcher skips it.
    match tokio::time::timeout(limits.timeout.saturating_sub(spent), answer(service, body)).await {
        Ok(Ok((rows, timing))) => {
            ([(header::CONTENT_TYPE, "application/json".to_string()), (SERVER_TIMING, timing)], rows).into_response()
        }
        Ok(Err(e)) => e.into_response(),
        Err(_) => {
            let message = format!("no answer within {} ms (--timeout-ms)", limits.timeout.as_millis());
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, None, message).into_response()
        }
    }
}

/// Where a request's time went, as the `Server-Timing` header says it (the
/// load test reads it): checking and tokenising it, waiting for its model
/// call, the call, and writing the rows.
const SERVER_TIMING: header::HeaderName = header::HeaderName::from_static("server-timing");

fn server_timing(prepare: Duration, answer: &Answer, write: Duration) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "prepare;dur={:.3}, queue;dur={:.3}, model;dur={:.3}, write;dur={:.3}",
        ms(prepare),
        ms(answer.queued),
        ms(answer.model),
        ms(write)
    )
}

/// Checks and tokenises off the async threads, waits for the model, writes
/// the rows; also gives the `Server-Timing` value.
async fn answer(service: Arc<Service>, body: Bytes) -> Result<(String, String), ApiError> {
    // From here until it is queued, a call about to close waits for this request.
    let arrival = service.batcher.arriving();
    let started = Instant::now();
    let prepared = service.clone();
    let (checked, encoded) = tokio::task::spawn_blocking(move || prepare(&prepared, &body))
        .await
        .map_err(|e| ApiError::internal(format!("checking the request: {e}")))??;
    let prepare = started.elapsed();
    let waiting = arrival.submit(encoded).map_err(|refused| match refused {
        Refused::Full => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, None, "the queue is full (--queue-size); retry shortly")
                .retry_after(1)
        }
        Refused::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, "the model has stopped"),
    })?;
    let answer = waiting
        .await
        .map_err(|_| ApiError::internal("the model stopped before answering"))?
        .map_err(ApiError::internal)?;
    let writing = Instant::now();
    let rows = rows_json(&service, &checked, &answer.rows)?;
    Ok((rows, server_timing(prepare, &answer, writing.elapsed())))
}

/// A request's records and pairs, and the pairs as the model reads them.
fn prepare(service: &Service, body: &[u8]) -> Result<(RecordPairs, Vec<Encoded>), ApiError> {
    let checked = PredictRequest::parse(body)?.check(&service.targets, service.limits.max_texts)?;
    let encoder = service.classifier.pair_encoder();
    let encoded = encoder.encode(&checked.texts(&service.targets)).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((checked, encoded))
}

/// `{"predictions": [...]}`, each row as `predict` writes it to JSONL.
fn rows_json(service: &Service, checked: &RecordPairs, probabilities: &Probabilities) -> Result<String, ApiError> {
    let labels = &service.classifier.spec.labels;
    let internal = |e: crate::Error| ApiError::internal(e.to_string());
    let mut writer = RowWriter::new(Vec::new(), OutputFormat::Jsonl, labels, false, "response").map_err(internal)?;
    for prediction in checked.predictions(&service.targets, probabilities) {
        writer.prediction(&prediction).map_err(internal)?;
    }
    let jsonl = String::from_utf8(writer.finish().map_err(internal)?).map_err(|e| ApiError::internal(e.to_string()))?;
    // JSON escapes newlines inside strings, so the only ones are between rows.
    Ok(format!("{{\"predictions\":[{}]}}", jsonl.trim_end().replace('\n', ",")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use candle_core::Device;
    use tower::ServiceExt;

    fn settings(max_texts: usize, max_body_bytes: usize, timeout_ms: u64) -> Settings {
        Settings {
            batching: BatchOptions { max_pairs: 64, max_wait: Duration::from_millis(1), queue: 1 },
            batch_size: 4,
            limits: Limits {
                max_texts,
                max_body_bytes,
                timeout: Duration::from_millis(timeout_ms),
                max_connections: 8,
            },
        }
    }

    fn tiny(dir: &tempfile::TempDir) -> (Classifier, ModelDir) {
        crate::testing::write_tiny_classifier(dir.path(), 3).unwrap();
        let model = ModelDir::open(dir.path()).unwrap();
        (Classifier::load_frozen(&model, &Device::Cpu).unwrap(), model)
    }

    async fn call(app: &Router, method: &str, uri: &str, body: &str) -> (u16, String) {
        let request = Request::builder().method(method).uri(uri).body(Body::from(body.to_string())).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn json(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[tokio::test]
    async fn routes_answer_json_and_metrics_count_them() {
        let dir = tempfile::tempdir().unwrap();
        let (classifier, model) = tiny(&dir);
        let (service, _thread) = Service::start(classifier, &model, settings(2, 1000, 10_000)).unwrap();
        let app = router(service);
        let (status, body) = call(&app, "POST", "/v1/predict", r#"{"texts": ["the war must end"]}"#).await;
        assert_eq!(status, 200, "{body}");
        let rows = json(&body)["predictions"].as_array().unwrap().clone();
        let keys: Vec<(&str, &str)> =
            rows.iter().map(|r| (r["id"].as_str().unwrap(), r["target"].as_str().unwrap())).collect();
        assert_eq!(keys, [("1", "defence"), ("1", "nato")]);
        let request = Request::post("/v1/predict").body(Body::from(r#"{"texts": ["peace"]}"#)).unwrap();
        let timing = app.clone().oneshot(request).await.unwrap().headers()[SERVER_TIMING].to_str().unwrap().to_string();
        assert!(timing.starts_with("prepare;dur=") && timing.contains(", model;dur="), "{timing}");
        let (status, body) = call(&app, "GET", "/v1/model", "").await;
        let info = json(&body);
        assert_eq!(
            (status, &info["labels"], &info["precision"]),
            (200, &serde_json::json!(["favor", "against", "none"]), &"f32".into())
        );
        assert_eq!(info["targets"][1]["id"], "nato");
        assert_eq!(info["int8_keep_f32"], serde_json::json!([]));
        assert_eq!(info["int8_keep_f32_layers"], serde_json::json!([]));
        assert_eq!(info["int8_f32_columns"], serde_json::json!([]));
        assert_eq!(info["int8_f32_columns_chosen_at_load"], false);
        assert_eq!(
            (info["limits"]["max_texts"].as_u64(), info["limits"]["max_connections"].as_u64()),
            (Some(2), Some(8))
        );
        assert_eq!(call(&app, "GET", "/health", "").await, (200, r#"{"status":"ok"}"#.to_string()));
        let refusals = [
            ("POST", "/v1/predict", r#"{"texts": ["a", "b", "c"]}"#.to_string(), 413, Some("texts")),
            ("POST", "/v1/predict", format!(r#"{{"texts": ["{}"]}}"#, "a".repeat(2000)), 413, Some("body")),
            ("POST", "/v1/predict", r#"{"texts": [""]}"#.to_string(), 400, Some("texts[0]")),
            ("GET", "/v1/predict", String::new(), 405, None),
            ("GET", "/nowhere", String::new(), 404, None),
        ];
        for (method, uri, body, status, field) in refusals {
            let (got, text) = call(&app, method, uri, &body).await;
            let error = json(&text);
            assert_eq!((got, error["field"].as_str()), (status, field), "{text}");
            assert_eq!(error["status"], status, "{text}");
            assert!(!error["error"].as_str().unwrap().is_empty());
        }
        let (_, metrics) = call(&app, "GET", "/metrics", "").await;
        for line in [
            "stancekit_requests_total{route=\"/v1/predict\",status=\"200\"} 2",
            "stancekit_requests_total{route=\"/v1/predict\",status=\"413\"} 2",
            "stancekit_requests_total{route=\"unmatched\",status=\"404\"} 1",
            "stancekit_batch_pairs_sum 4",
            "stancekit_queue_depth 0",
        ] {
            assert!(metrics.lines().any(|l| l == line), "missing {line:?} in\n{metrics}");
        }
    }

    #[tokio::test]
    async fn a_full_queue_answers_429_and_a_late_answer_504() {
        let dir = tempfile::tempdir().unwrap();
        let (classifier, model) = tiny(&dir);
        // Long enough that the second request still waits when the third comes, on a busy machine.
        let settings = settings(4, 1000, 1500);
        let info = model_info(&classifier, &model, &settings);
        let metrics = Arc::new(Metrics::new(1));
        // A model that never answers: the first request holds it, the second fills the queue.
        let (_hold, gate) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(gate);
        let stuck = move |_: &[Encoded]| -> crate::Result<Probabilities> {
            let _ = gate.lock().unwrap().recv();
            Err(crate::Error::Other("released".into()))
        };
        let (batcher, _thread) = Batcher::start(stuck, settings.batching, metrics.clone());
        let targets = TargetSet::new(&classifier.spec.targets, &[], &[]).unwrap();
        let classifier = Arc::new(classifier);
        let service = Service { classifier, targets, batcher, metrics: metrics.clone(), limits: settings.limits, info };
        let app = router(Arc::new(service));
        let body = r#"{"texts": ["peace"]}"#;
        let first = tokio::spawn({
            let app = app.clone();
            async move { call(&app, "POST", "/v1/predict", body).await }
        });
        while metrics.render().contains("stancekit_batch_pairs_count 0") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let second = tokio::spawn({
            let app = app.clone();
            async move { call(&app, "POST", "/v1/predict", body).await }
        });
        while metrics.queue_depth() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let full = app.clone().oneshot(Request::post("/v1/predict").body(Body::from(body)).unwrap()).await.unwrap();
        assert_eq!(
            (full.status().as_u16(), full.headers()[axum::http::header::RETRY_AFTER].to_str().unwrap()),
            (429, "1")
        );
        let text =
            String::from_utf8(axum::body::to_bytes(full.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
        assert!(json(&text)["error"].as_str().unwrap().contains("queue is full"));
        for waiting in [first, second] {
            let (status, text) = waiting.await.unwrap();
            assert_eq!(status, 504, "{text}");
            assert!(json(&text)["error"].as_str().unwrap().contains("no answer within 1500 ms"));
        }
    }
}
