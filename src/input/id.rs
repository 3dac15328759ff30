//! The one id policy for JSON inputs: a string is kept as it is; an integer
//! is kept as its decimal text, because other tools number their rows; null or
//! no id is none; anything else is a mistake worth naming. A number with a
//! fraction or an exponent, or an integer past 64 bits, is one: JSON parsing
//! keeps only its value, not its text (`1e3` would become `1000.0`, and two
//! 23-digit ids one and the same), so it must be written as a string.

use serde_json::Value;

use crate::error::Problem;

/// The id a JSON `id` field gives, or why it gives none.
pub fn from_json(value: Option<&Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(Value::Number(n)) => Err(format!(
            "{n} (as parsed) is a number that is not kept as written (a fraction, an exponent or past 64 \
             bits); write the id as a string, as the source has it"
        )),
        Some(other) => Err(format!("expected a string or a number, found {}", crate::input::json::shown(other))),
    }
}

/// [`from_json`] for the record on line `line` of `file`.
pub fn from_json_at(value: Option<&Value>, file: &str, line: usize) -> Result<Option<String>, Problem> {
    from_json(value).map_err(|message| Problem::new(file, line, "id", message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_numbers_are_ids_null_and_absent_are_none() {
        assert_eq!(from_json(Some(&json!("s1"))), Ok(Some("s1".into())));
        assert_eq!(from_json(Some(&json!(7))), Ok(Some("7".into())));
        assert_eq!(from_json(Some(&json!(-7))), Ok(Some("-7".into())));
        assert_eq!(from_json(Some(&json!(u64::MAX))), Ok(Some(u64::MAX.to_string())), "tweet ids are kept");
        assert_eq!(from_json(Some(&json!(null))), Ok(None));
        assert_eq!(from_json(None), Ok(None));
    }

    /// `1e3`, `1.10` and a 23-digit id would be rewritten (`1000.0`, `1.1`,
    /// `1.2345678901234568e22`), and distinct ids would meet.
    #[test]
    fn numbers_json_cannot_keep_as_written_are_a_problem() {
        for text in ["1e3", "1.10", "-2.5", "12345678901234567890123"] {
            let value: Value = serde_json::from_str(text).unwrap();
            let err = from_json(Some(&value)).unwrap_err();
            assert!(err.contains("write the id as a string"), "{text}: {err}");
        }
    }

    #[test]
    fn other_types_are_a_problem_of_the_id_field() {
        for (value, shown) in [(json!(true), "true"), (json!([1]), "[1]"), (json!({"a": 1}), "{\"a\":1}")] {
            let p = from_json_at(Some(&value), "f.jsonl", 3).unwrap_err();
            assert_eq!(p.to_string(), format!("f.jsonl:3: id: expected a string or a number, found {shown}"));
        }
    }
}
