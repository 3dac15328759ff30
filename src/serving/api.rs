//! The HTTP API's request and error types: what `POST /v1/predict` accepts,
//! how it is checked (every refusal names the field at fault), and the JSON an
//! error is answered with.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::inference::predict::TargetSet;
use crate::inference::Record;

/// The body of `POST /v1/predict`: plain `texts`, or `records` as `predict`
/// reads them from JSONL; `targets` narrows the model's targets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    #[serde(default)]
    pub texts: Option<Vec<String>>,
    #[serde(default)]
    pub records: Option<Vec<RecordIn>>,
    /// Target ids to score (default: all); a record's own `target` overrides them.
    #[serde(default)]
    pub targets: Option<Vec<String>>,
}

/// One input record, as a JSONL line of `predict`'s input: `text`, optional
/// `id` (default: its 1-based position) and `target`; other fields are ignored.
#[derive(Debug, Deserialize)]
pub struct RecordIn {
    #[serde(default)]
    pub id: serde_json::Value,
    pub text: String,
    #[serde(default)]
    pub target: Option<String>,
}

/// A checked request: its records and the (record, target) pairs to score, in output order.
#[derive(Debug)]
pub struct Checked {
    pub records: Vec<Record>,
    pub pairs: Vec<(usize, usize)>,
}

/// A refused request: the status, the field at fault (if one is), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub field: Option<String>,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, field: Option<&str>, message: impl Into<String>) -> Self {
        Self { status, field: field.map(String::from), message: message.into() }
    }

    /// 400 for a bad `field`.
    pub fn bad(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(field), message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, None, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "field": self.field, "status": self.status.as_u16() });
        (self.status, axum::Json(body)).into_response()
    }
}

impl PredictRequest {
    /// Parses a body; a type error names its path (`texts[2]`, `records[0].text`).
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            if e.inner().is_syntax() || e.inner().is_eof() {
                return ApiError::bad("body", format!("body: not valid JSON ({})", e.inner()));
            }
            let field = match e.path().to_string() {
                root if root == "." => "body".to_string(),
                path => path,
            };
            ApiError::bad(&field, format!("{field}: {}", e.inner()))
        })
    }

    /// The records and pairs to score, or the first problem. `targets` holds
    /// the model's targets; at most `max_texts` texts are taken.
    pub fn check(self, targets: &TargetSet, max_texts: usize) -> Result<Checked, ApiError> {
        let selected = match &self.targets {
            Some(ids) if ids.is_empty() => {
                return Err(ApiError::bad("targets", "targets: empty; leave it out for all"))
            }
            Some(ids) => ids
                .iter()
                .enumerate()
                .map(|(i, id)| find_target(targets, id, &format!("targets[{i}]")))
                .collect::<Result<_, _>>()?,
            None => targets.selected().to_vec(),
        };
        let (field, records) = match (self.texts, self.records) {
            (Some(texts), None) => (
                "texts",
                texts.into_iter().map(|text| RecordIn { id: serde_json::Value::Null, text, target: None }).collect(),
            ),
            (None, Some(records)) => ("records", records),
            (Some(_), Some(_)) => return Err(ApiError::bad("texts", "give `texts` or `records`, not both")),
            (None, None) => {
                return Err(ApiError::bad(
                    "texts",
                    "missing: give `texts` (strings) or `records` (objects with `text`)",
                ))
            }
        };
        check_count(field, records.len(), max_texts)?;
        let file: Arc<str> = "request".into();
        let mut checked = Checked { records: Vec::with_capacity(records.len()), pairs: Vec::new() };
        for (i, r) in records.into_iter().enumerate() {
            let at = |name: &str| if field == "texts" { format!("texts[{i}]") } else { format!("records[{i}].{name}") };
            if r.text.trim().is_empty() {
                return Err(ApiError::bad(&at("text"), format!("{}: empty text", at("text"))));
            }
            let own = match r.target.as_deref().map(str::trim) {
                None => None,
                Some("") => return Err(ApiError::bad(&at("target"), format!("{}: empty", at("target")))),
                Some(id) => Some(find_target(targets, id, &at("target"))?),
            };
            let record = Record {
                id: record_id(&r.id, i),
                text: r.text,
                target: own.map(|t| targets.id(t).to_string()),
                span: None,
                file: file.clone(),
                line: i + 1,
            };
            let index = checked.records.len();
            match own {
                Some(t) => checked.pairs.push((index, t)),
                None => checked.pairs.extend(selected.iter().map(|&t| (index, t))),
            }
            checked.records.push(record);
        }
        Ok(checked)
    }
}

fn check_count(field: &str, n: usize, max_texts: usize) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::bad(field, format!("{field}: empty; give at least one")));
    }
    if n > max_texts {
        let message = format!("{field}: {n} texts; at most {max_texts} per request (--max-texts)");
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, Some(field), message));
    }
    Ok(())
}

/// The index of target `id` among the model's, or a 400 naming `field`.
fn find_target(targets: &TargetSet, id: &str, field: &str) -> Result<usize, ApiError> {
    let known = targets.selected();
    known.iter().copied().find(|&t| targets.id(t) == id).ok_or_else(|| {
        let names: Vec<&str> = known.iter().map(|&t| targets.id(t)).collect();
        ApiError::bad(field, format!("{field}: unknown target `{id}` (known: {})", names.join(", ")))
    })
}

/// A record's id as `predict` takes it from JSONL: a string as it is, another
/// value as JSON, none as the record's 1-based position.
fn record_id(id: &serde_json::Value, index: usize) -> String {
    match id {
        serde_json::Value::Null => (index + 1).to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
