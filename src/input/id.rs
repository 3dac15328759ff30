//! The one id policy for JSON inputs: a string is kept as it is; a number is
//! kept as its decimal text, because other tools number their rows; null or no
//! id is none; anything else is a mistake worth naming.

use serde_json::Value;

use crate::error::Problem;

/// The id a JSON `id` field gives, or why it gives none.
pub fn from_json(value: Option<&Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("expected a string or a number, found {other}")),
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
        assert_eq!(from_json(Some(&json!(-2.5))), Ok(Some("-2.5".into())));
        assert_eq!(from_json(Some(&json!(null))), Ok(None));
        assert_eq!(from_json(None), Ok(None));
    }

    #[test]
    fn other_types_are_a_problem_of_the_id_field() {
        for (value, shown) in [(json!(true), "true"), (json!([1]), "[1]"), (json!({"a": 1}), "{\"a\":1}")] {
            let p = from_json_at(Some(&value), "f.jsonl", 3).unwrap_err();
            assert_eq!(p.to_string(), format!("f.jsonl:3: id: expected a string or a number, found {shown}"));
        }
    }
}
