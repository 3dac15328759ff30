//! The HTTP API's request and error types: what `POST /v1/predict` accepts,
//! how it is checked (every refusal names the field at fault), and the JSON an
//! error is answered with.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value::Null;

use crate::inference::predict::{RecordPairs, TargetSet};
use crate::input::Record;

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

/// A 400 naming the field at fault: serde names the object a field is
/// missing from (or given twice in), so the field is named, as a wrong type's path does.
fn field_error(mut field: String, mut message: String) -> ApiError {
    // The field's path says where; serde_json's " at line 1 column 12" says it again, less clearly.
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    let named = ["missing field `", "duplicate field `"].iter().find_map(|p| message.strip_prefix(p));
    if let Some(name) = named.and_then(|m| m.split('`').next()) {
        field = if field == "." { name.to_string() } else { format!("{field}.{name}") };
    }
    ApiError::bad(&field, format!("{field}: {message}"))
}

/// A refused request: the status, the field at fault (if one is), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub field: Option<String>,
    pub message: String,
    /// Seconds to wait before trying again (`Retry-After`), for a refusal that passes.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, field: Option<&str>, message: impl Into<String>) -> Self {
        Self { status, field: field.map(String::from), message: message.into(), retry_after: None }
    }

    pub fn retry_after(self, seconds: u32) -> Self {
        Self { retry_after: Some(seconds), ..self }
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
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl PredictRequest {
    /// Parses a body; a type error names its path (`texts[2]`, `records[0].text`).
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        // A byte order mark (Windows tools write one) is not JSON, but `predict` reads past it too.
        let body = crate::input::lines::strip_bom(body);
        let invalid = |e: serde_json::Error| ApiError::bad("body", format!("body: not valid JSON ({e})"));
        // The whole body is JSON first, so that a cut-off body is said to be one, not a field's fault.
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(invalid)?;
        // serde would read an array as the struct's fields in order: say what is wanted instead.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad("body", "body: not a JSON object with `texts` or `records`"));
        }
        // Read from the bytes, not through a `Value`, whose map would keep the last of a key given twice.
        let mut json = serde_json::Deserializer::from_slice(body);
        let request = serde_path_to_error::deserialize(&mut json).map_err(|e| match e.inner().classify() {
            serde_json::error::Category::Data => field_error(e.path().to_string(), e.inner().to_string()),
            _ => invalid(e.into_inner()),
        })?;
        json.end().map_err(invalid)?;
        Ok(request)
    }

    /// The records and pairs to score, or the first problem. `targets` holds
    /// the model's targets; at most `max_texts` texts are taken.
    pub fn check(self, targets: &TargetSet, max_texts: usize) -> Result<RecordPairs, ApiError> {
        let selected = selection(self.targets.as_deref(), targets)?;
        let (field, records) = match (self.texts, self.records) {
            (Some(texts), None) => {
                ("texts", texts.into_iter().map(|text| RecordIn { id: Null, text, target: None }).collect())
            }
            (None, Some(records)) => ("records", records),
            (Some(_), Some(_)) => return Err(ApiError::bad("texts", "texts: give `texts` or `records`, not both")),
            (None, None) => return Err(ApiError::bad("texts", "texts: missing; give `texts` or `records`")),
        };
        check_count(field, records.len(), max_texts)?;
        let file: Arc<str> = "request".into();
        let mut checked = RecordPairs { records: Vec::with_capacity(records.len()), pairs: Vec::new() };
        for (i, r) in records.into_iter().enumerate() {
            let at = |name: &str| if field == "texts" { format!("texts[{i}]") } else { format!("records[{i}].{name}") };
            let (record, own) = r.check(i, at, targets, &file)?;
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

impl RecordIn {
    /// The record at `index` as `predict` would read it, and its own target's
    /// index if it names one; `at` names a field of it.
    fn check(
        self,
        index: usize,
        at: impl Fn(&str) -> String,
        targets: &TargetSet,
        file: &Arc<str>,
    ) -> Result<(Record, Option<usize>), ApiError> {
        if crate::input::is_blank(&self.text) {
            return Err(ApiError::bad(&at("text"), format!("{}: empty text", at("text"))));
        }
        let own = match self.target.as_deref().map(str::trim) {
            None => None,
            Some("") => return Err(ApiError::bad(&at("target"), format!("{}: empty", at("target")))),
            Some(id) => Some(find_target(targets, id, &at("target"))?),
        };
        // `predict`'s id policy; a record without one is numbered by its position, as a JSONL line by its line.
        let id = crate::input::id::from_json(Some(&self.id))
            .map_err(|message| ApiError::bad(&at("id"), format!("{}: {message}", at("id"))))?
            .unwrap_or_else(|| (index + 1).to_string());
        let target = own.map(|t| targets.id(t).to_string());
        Ok((Record { id, text: self.text, target, span: None, file: file.clone(), line: index + 1 }, own))
    }
}

/// The targets a record without its own is scored on: those named, or all.
fn selection(named: Option<&[String]>, targets: &TargetSet) -> Result<Vec<usize>, ApiError> {
    match named {
        None => Ok(targets.selected().to_vec()),
        Some([]) => Err(ApiError::bad("targets", "targets: empty; leave it out for all")),
        Some(ids) => {
            let mut selected = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                let target = find_target(targets, id.trim(), &format!("targets[{i}]"))?;
                // Once each, as `predict --targets` takes them: repeats would multiply one request's work.
                if !selected.contains(&target) {
                    selected.push(target);
                }
            }
            Ok(selected)
        }
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

/// The index of the target named `given` (by id or description, as
/// `predict` reads a record's), or a 400 naming `field`.
fn find_target(targets: &TargetSet, given: &str, field: &str) -> Result<usize, ApiError> {
    targets.lookup(given).ok_or_else(|| {
        let known = targets.id_list();
        ApiError::bad(field, format!("{field}: unknown target `{given}` (known by id or description: {known})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn targets() -> TargetSet {
        let model: BTreeMap<String, String> =
            [("defence", "europe paying for its defence"), ("nato", "ukraine joining nato")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into();
        TargetSet::new(&model, &[], &[]).unwrap()
    }

    fn check(body: &str, max_texts: usize) -> Result<RecordPairs, ApiError> {
        PredictRequest::parse(body.as_bytes())?.check(&targets(), max_texts)
    }

    /// (status, field) of a refused body.
    fn refusal(body: &str) -> (u16, String, String) {
        let e = check(body, 3).unwrap_err();
        (e.status.as_u16(), e.field.unwrap_or_default(), e.message)
    }

    #[test]
    fn texts_get_every_target_and_their_positions_as_ids() {
        let checked = check(r#"{"texts": ["the war must end", "peace"]}"#, 3).unwrap();
        let ids: Vec<&str> = checked.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
        assert_eq!(checked.pairs, [(0, 0), (0, 1), (1, 0), (1, 1)]);
        // Each target once, trimmed: repeats would multiply a small request's work without bound.
        let checked = check(r#"{"texts": ["peace"], "targets": ["nato", "defence", " nato ", "defence"]}"#, 3).unwrap();
        assert_eq!(checked.pairs, [(0, 1), (0, 0)]);
        let bom = PredictRequest::parse(b"\xEF\xBB\xBF{\"texts\": [\"peace\"]}").unwrap();
        assert_eq!(bom.check(&targets(), 3).unwrap().pairs, [(0, 0), (0, 1)]);
    }

    #[test]
    fn records_keep_their_ids_and_their_own_target_as_predict_reads_them() {
        let body = r#"{"records": [{"id": "a", "text": "x", "target": " nato "}, {"id": 7, "text": "y", "label": "favor"},
                                   {"text": "z"}, {"text": "w", "target": "Ukraine joining NATO"}], "targets": ["defence"]}"#;
        let checked = check(body, 4).unwrap();
        let records: Vec<(&str, Option<&str>)> =
            checked.records.iter().map(|r| (r.id.as_str(), r.target.as_deref())).collect();
        assert_eq!(
            records,
            [("a", Some("nato")), ("7", None), ("3", None), ("4", Some("nato"))],
            "by id or description"
        );
        assert_eq!(checked.pairs, [(0, 1), (1, 0), (2, 0), (3, 1)]);
    }

    #[test]
    fn every_refusal_names_its_field() {
        let cases = [
            (r#"{"texts": ["a", "  "]}"#, 400, "texts[1]", "empty text"),
            (r#"{"texts": ["a", 3]}"#, 400, "texts[1]", "invalid type: integer"),
            (r#"{"texts": []}"#, 400, "texts", "empty"),
            (r#"{"texts": ["a", "b", "c", "d"]}"#, 413, "texts", "4 texts; at most 3"),
            (r#"{"targets": ["nato"]}"#, 400, "texts", "missing"),
            (r#"{"texts": ["a"], "records": [{"text": "b"}]}"#, 400, "texts", "not both"),
            (r#"{"text": ["a"]}"#, 400, "text", "unknown field `text`"),
            (
                r#"{"texts": ["a"], "targets": ["nato", "eu"]}"#,
                400,
                "targets[1]",
                "unknown target `eu` (known by id or description: defence, nato)",
            ),
            (r#"{"texts": ["a"], "targets": []}"#, 400, "targets", "empty"),
            (r#"{"records": [{"text": "a"}, {"id": "b"}]}"#, 400, "records[1].text", "missing field `text`"),
            (r#"{"records": [{"text": ""}]}"#, 400, "records[0].text", "empty text"),
            (r#"{"records": [{"text": "a", "target": "eu"}]}"#, 400, "records[0].target", "unknown target `eu`"),
            (r#"{"records": [{"text": "a", "target": ""}]}"#, 400, "records[0].target", "empty"),
            (r#"{"records": [{"text": "a", "target": 1}]}"#, 400, "records[0].target", "invalid type"),
            (r#"{"records": [{"text": "a", "id": true}]}"#, 400, "records[0].id", "expected a string or a number"),
            (r#"{"texts": ["a"]"#, 400, "body", "not valid JSON"),
            ("", 400, "body", "not valid JSON"),
            (r#"["a"]"#, 400, "body", "not a JSON object"),
            (r#"{"texts": ["x"], "texts": ["y"]}"#, 400, "texts", "duplicate field `texts`"),
            (r#"{"records": [{"text": "a", "text": "b"}]}"#, 400, "records[0].text", "duplicate field `text`"),
            (r#"{"texts": ["a"]} {"texts": ["b"]}"#, 400, "body", "not valid JSON"),
            (r#"  {"texts": ["a"], "#, 400, "body", "not valid JSON"),
            (r#"{"texts": 5, "#, 400, "body", "not valid JSON"),
        ];
        for (body, status, field, message) in cases {
            let (got_status, got_field, got_message) = refusal(body);
            assert_eq!((got_status, got_field.as_str()), (status, field), "{body}: {got_message}");
            assert!(got_message.contains(message) && got_message.starts_with(field), "{body}: {got_message}");
            assert!(field == "body" || !got_message.contains(" at line "), "the path says where: {got_message}");
        }
    }

    #[test]
    fn an_error_answers_json_with_its_status() {
        let response = ApiError::bad("texts[0]", "texts[0]: empty text").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["content-type"], "application/json");
    }
}
