//! The HTTP side of `stancekit label`: one page and a small JSON API over a
//! [`Session`], on localhost.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page ([`PAGE`]): everything inline, nothing fetched from elsewhere |
//! | `GET /api/meta` | targets with descriptions, labels (and the neutral ones), the rules, the files |
//! | `GET /api/next` | the current sentence and the counts ([`super::View`]) |
//! | `POST /api/label` | `{"item": i, "text": t, "labels": {target: label}}`: save, then the next view |
//! | `POST /api/skip` | `{"item": i, "text": t}`: leave it for later |
//! | `POST /api/undo` | take back the last skip or decision |
//! | `POST /api/revisit` | bring the skipped sentences back |
//! | `GET /api/stats` | progress and per-target, per-label counts |
//!
//! A refused request answers 400 (malformed), 409 (does not fit the
//! session's state), or 404, 405, 408, 413, 415 or 422 as HTTP has them,
//! always with `{"error": "..."}`. Bodies are capped at
//! [`MAX_BODY`]; requests run one at a time on the session, and at most
//! [`MAX_WAITING`] wait for it (503 beyond). On a loopback
//! address, requests must name that address in `Host`, so that a web page
//! elsewhere cannot reach the API through a DNS name that points here; and a
//! change (a POST) whose browser says it comes from another site's page
//! (`Origin`, `Sec-Fetch-Site`) is refused (403), so that such a page cannot
//! undo or add labels through the user's browser.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::session::{Refusal, Session, Target};
use crate::{Error, Result};

/// The page: HTML with its CSS and script inline.
pub const PAGE: &str = include_str!("page.html");

/// No request of the API comes near this.
pub const MAX_BODY: usize = 64 * 1024;

/// How long a request's body may take to arrive (the page's are a few hundred bytes).
pub const BODY_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Connections open at once (the page keeps one or two); more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;

/// Requests waiting for the session at once; more are told to come back (503).
/// The page sends one at a time.
pub const MAX_WAITING: usize = 8;

/// The page may run its own inline script and style and talk to this server, nothing else.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'";

/// What the page shows beside the sentences.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub targets: Vec<Target>,
    pub labels: Vec<String>,
    /// The labels that take no stance (F_avg leaves them out), for the page's colours.
    pub neutral: Vec<String>,
    /// A reminder of the labelling rules (a rules file's text, or [`super::default_rules`]).
    pub rules: String,
    pub out: String,
    pub inputs: Vec<String>,
    /// The model whose guesses are shown, if any.
    pub model: Option<String>,
}

struct App {
    session: Mutex<Session>,
    waiting: tokio::sync::Semaphore,
    meta: Meta,
    /// `Host` values accepted; none: any (the user bound a non-loopback address on purpose).
    hosts: Option<Vec<String>>,
}

/// Serves `session` on `listener` (from [`crate::http::bind`]) until SIGTERM
/// or Ctrl-C. Every decision is on disk before its answer leaves, so stopping
/// at any moment loses nothing.
pub fn serve(session: Session, meta: Meta, listener: TcpListener) -> Result<()> {
    let addr = listener.local_addr().map_err(|e| Error::Other(format!("the listening socket: {e}")))?;
    let router = router(session, meta, addr);
    crate::http::runtime(Some(2))?.block_on(async move {
        let signals = crate::http::stop_signals()?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| Error::Other(format!("{addr}: {e}")))?;
        // A request takes a session call (milliseconds) once its body is in: BODY_TIME bounds the stop too.
        let bounds =
            crate::http::ConnectionBounds { max_open: MAX_CONNECTIONS, header_time: BODY_TIME, drain: BODY_TIME };
        crate::http::serve_router(listener, router, bounds, signals.nth(1), signals.nth(2)).await;
        Ok(())
    })
}

/// The routes over one session, answering for `addr`.
pub fn router(session: Session, meta: Meta, addr: SocketAddr) -> Router {
    let hosts = addr.ip().is_loopback().then(|| {
        let port = addr.port();
        vec![addr.to_string(), format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")]
    });
    let waiting = tokio::sync::Semaphore::new(MAX_WAITING);
    let app = Arc::new(App { session: Mutex::new(session), waiting, hosts, meta });
    Router::new()
        .route("/", get(page))
        .route("/api/meta", get(meta_route))
        .route("/api/next", get(|State(app): State<Arc<App>>| on_session(app, Session::view)))
        .route("/api/stats", get(|State(app): State<Arc<App>>| on_session(app, |s| Ok(s.stats()))))
        .route("/api/label", post(label))
        .route("/api/skip", post(skip))
        .route("/api/undo", post(|State(app): State<Arc<App>>| on_session(app, Session::undo)))
        .route("/api/revisit", post(|State(app): State<Arc<App>>| on_session(app, Session::revisit)))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route".into()) })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route".into())
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            crate::http::BodyBounds { time: BODY_TIME, max_bytes: MAX_BODY, flags: ["", ""] },
            crate::http::bound_body,
        ))
        .layer(axum::middleware::from_fn_with_state(app.clone(), same_host))
        .with_state(app)
}

async fn page() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (headers, PAGE).into_response()
}

async fn meta_route(State(app): State<Arc<App>>) -> Response {
    Json(&app.meta).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelBody {
    item: usize,
    /// The sentence the page shows as `item`, checked against it ([`Session::expect_text`]).
    text: Option<String>,
    /// Target → label; a target given twice is refused, not its last label kept.
    #[serde(deserialize_with = "crate::data::unique_targets")]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    item: usize,
    text: Option<String>,
}

async fn label(State(app): State<Arc<App>>, body: std::result::Result<Json<LabelBody>, JsonRejection>) -> Response {
    match body {
        Ok(Json(body)) => {
            on_session(app, move |s| {
                s.expect_text(body.item, body.text.as_deref())?;
                s.label(body.item, &body.labels)
            })
            .await
        }
        Err(rejected) => refused(rejected),
    }
}

async fn skip(State(app): State<Arc<App>>, body: std::result::Result<Json<ItemBody>, JsonRejection>) -> Response {
    match body {
        Ok(Json(body)) => {
            on_session(app, move |s| {
                s.expect_text(body.item, body.text.as_deref())?;
                s.skip(body.item)
            })
            .await
        }
        Err(rejected) => refused(rejected),
    }
}

/// A body axum could not take as JSON (no JSON content type, bad JSON, a
/// wrong type): its status and message, as JSON like every other refusal.
fn refused(rejected: JsonRejection) -> Response {
    error(rejected.status(), rejected.body_text())
}

/// Runs `work` on the session off the async threads (it syncs files and may run the model).
async fn on_session<T, F>(app: Arc<App>, work: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut Session) -> std::result::Result<T, Refusal> + Send + 'static,
{
    let Ok(_place) = app.waiting.try_acquire() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "busy: too many requests waiting; try again".into());
    };
    let session = app.clone();
    let done = tokio::task::spawn_blocking(move || {
        // A panic mid-request leaves the file as it was (writes are whole), so carry on.
        let mut session = session.session.lock().unwrap_or_else(PoisonError::into_inner);
        work(&mut session)
    })
    .await;
    match done {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(refusal)) => {
            let status = match refusal {
                Refusal::Bad(_) => StatusCode::BAD_REQUEST,
                Refusal::Conflict(_) => StatusCode::CONFLICT,
                Refusal::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::error!("{refusal}");
            }
            error(status, refusal.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the request failed: {e}")),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn same_host(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    match &app.hosts {
        Some(hosts) if !host.is_some_and(|h| hosts.iter().any(|x| x == h)) => {
            error(StatusCode::FORBIDDEN, "this server answers only to its own address".into())
        }
        _ if from_another_site(&request) => {
            error(StatusCode::FORBIDDEN, "changes come from this server's own page only, not another site's".into())
        }
        _ => next.run(request).await,
    }
}

/// A change asked by a page of another site. Its browser may send a POST
/// here (a form, or `fetch` in `no-cors` mode: `/api/undo` needs no JSON
/// body, so the content type does not stop it), but says so: browsers since
/// 2020 send `Sec-Fetch-Site` (`cross-site`, `same-site`), which is trusted
/// alone where present, since a reverse proxy in front (a login) rewrites
/// `Host` but not the browser's view; older ones send `Origin`, which must
/// then name this host. Tools that send neither (curl, scripts) are not
/// browsers acting for someone else's page.
fn from_another_site(request: &Request) -> bool {
    if matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
        return false;
    }
    let headers = request.headers();
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or_default());
    if let Some(site) = text(axum::http::HeaderName::from_static("sec-fetch-site")) {
        return !matches!(site, "same-origin" | "none");
    }
    let host = text(header::HOST).unwrap_or_default();
    text(header::ORIGIN)
        .is_some_and(|origin| origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) != Some(host))
}
