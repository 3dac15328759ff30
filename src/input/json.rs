//! A JSON line's object as records read it: serde_json's map keeps the last
//! of a key given twice, silently, where `{"label": "favor", "label": "none"}`
//! or `{"text": "a", "text": "b"}` is a typo to name, not a value to pick.

use serde_json::{Map, Value};

/// Why a JSON line could not be read.
pub enum LineError {
    /// An object with this key given twice.
    Twice(String),
    /// Not JSON at all.
    Json(serde_json::Error),
}

/// A JSON line as a value: an object with its keys checked, anything else as it parses.
pub fn parse_line(text: &str) -> Result<Value, LineError> {
    match serde_json::from_str::<Entries>(text) {
        Ok(entries) => entries.into_object().map(Value::Object).map_err(LineError::Twice),
        Err(_) => serde_json::from_str(text).map_err(LineError::Json),
    }
}

/// What a record's field given twice is told.
pub const GIVEN_TWICE: &str = "given twice in one record";

/// A JSON object's entries in order, a key given twice kept twice.
pub struct Entries(Vec<(String, Value)>);

impl Entries {
    /// The object, or the first key given twice.
    pub fn into_object(self) -> Result<Map<String, Value>, String> {
        let mut seen = std::collections::HashSet::new();
        if let Some((key, _)) = self.0.iter().find(|(key, _)| !seen.insert(key.as_str())) {
            return Err(key.clone());
        }
        Ok(self.0.into_iter().collect())
    }
}

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Entries, M::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}
