//! A JSON line as records read it: serde_json's map keeps the last of a key
//! given twice, silently, where `{"label": "favor", "label": "none"}` or
//! `{"probs": {"favor": 0.5, "favor": 0.9}}` is a typo to name, not a value to pick.

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// What a record's field given twice is told.
pub const GIVEN_TWICE: &str = "given twice in one record";

/// A field's value as an error shows it: a long one is cut, so that a
/// mistyped field holding an array of megabytes does not flood the terminal.
pub fn shown(value: &Value) -> String {
    const MAX_CHARS: usize = 60;
    let text = value.to_string();
    match text.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// What a field that must be a string but holds `value` is told.
pub fn not_a_string(value: &Value) -> String {
    format!("expected a string, found {}", shown(value))
}

/// Why a JSON line could not be read.
pub enum LineError {
    /// An object (at any depth) with this key given twice.
    Twice(String),
    /// Not JSON at all.
    Json(serde_json::Error),
}

/// A JSON line as a value, every object's keys checked.
pub fn parse_line(text: &str) -> Result<Value, LineError> {
    serde_json::from_str::<Checked>(text).map(|Checked(value)| value).map_err(|e| {
        let message = e.to_string();
        match message.strip_prefix(TWICE) {
            Some(rest) if e.is_data() => {
                LineError::Twice(rest.rsplit_once(" at line ").map_or(rest, |(k, _)| k).into())
            }
            _ => LineError::Json(e),
        }
    })
}

/// The custom error that carries a repeated key out of the parser.
const TWICE: &str = "stancekit: key given twice: ";

/// A `Value` built as serde_json builds one, but refusing a repeated key.
struct Checked(Value);

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor).map(Checked)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Checked(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(A::Error::custom(format!("{TWICE}{key}")));
            }
            let Checked(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value is serde_json's; a repeated key, at any depth, is named.
    #[test]
    fn a_long_value_is_shown_cut() {
        assert_eq!(shown(&serde_json::json!(3)), "3");
        let long = shown(&serde_json::json!(vec![1; 1000]));
        assert!(long.ends_with('…') && long.chars().count() == 61, "{long}");
    }

    #[test]
    fn a_key_given_twice_is_named_at_any_depth() {
        let line = r#"{"id": 7, "text": "a é", "n": [1.5, -2, null, true], "probs": {"favor": 0.5}}"#;
        assert_eq!(parse_line(line).ok(), serde_json::from_str::<Value>(line).ok());
        for (line, key) in
            [(r#"{"label": "a", "label": "b"}"#, "label"), (r#"{"p": {"favor": 1, "favor": 2}}"#, "favor")]
        {
            assert!(matches!(parse_line(line), Err(LineError::Twice(k)) if k == key), "{line}");
        }
        assert!(matches!(parse_line(r#"{"a": "#), Err(LineError::Json(_))));
        assert!(matches!(parse_line("[1, 2]"), Ok(Value::Array(_))));
    }
}
