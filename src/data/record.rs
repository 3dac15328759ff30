//! The unit of labelled data.

use serde::{Deserialize, Serialize};

/// One (sentence, target) pair with its stance label.
///
/// In project files `id` names the sentence, so the records of one sentence share
/// it; formats do not agree on ids, so records are keyed by (text, target) instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub text: String,
    pub target: String,
    pub label: String,
}

impl Record {
    /// The sentence as compared across records: surrounding whitespace is not content.
    pub fn sentence(&self) -> &str {
        self.text.trim()
    }
}

/// Distinct sentences among `records` (a sentence labelled for three targets counts once).
pub fn count_sentences(records: &[Record]) -> usize {
    records.iter().map(Record::sentence).collect::<std::collections::HashSet<_>>().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_field_order_and_missing_id() {
        let mut r = Record { id: Some("s1".into()), text: "t".into(), target: "x".into(), label: "none".into() };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"id":"s1","text":"t","target":"x","label":"none"}"#);
        r.id = None;
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"text":"t","target":"x","label":"none"}"#);
    }
}
