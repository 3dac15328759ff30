//! The task definition: which labels exist and which targets may be labelled.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Problem, Problems, Result};

/// Labels and targets, loaded from a targets file such as `datasets/targets.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    #[serde(default = "default_labels")]
    pub labels: Vec<String>,
    /// Target id (as used in data files) → description (the text a model may be given).
    #[serde(deserialize_with = "unique_targets")]
    pub targets: BTreeMap<String, String>,
    /// The label that takes no stance, which F_avg leaves out; `none` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutral: Option<String>,
    /// The targets file it was read from ([`Schema::load`]), for hints that
    /// name a command to run next (`validate::conflict_problems`).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// Taken from the models evaluated rather than from a targets file (`eval`
    /// without `--targets`), so that problems say which to blame.
    #[serde(skip)]
    pub from_runs: bool,
}

/// Whether `given` names a target by this description: case and surrounding
/// whitespace are ignored, as SemEval-style files write descriptions freely.
pub fn names_description(given: &str, description: &str) -> bool {
    description.trim().eq_ignore_ascii_case(given.trim())
}

/// The targets file the commands read unless `--targets` names another.
pub const DEFAULT_TARGETS: &str = "datasets/targets.json";

fn default_labels() -> Vec<String> {
    ["favor", "against", "none"].map(String::from).to_vec()
}

impl Schema {
    /// Reads and checks a targets file.
    pub fn load(path: &Path) -> Result<Schema> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            // The default, looked for where the command runs: name the flag that chooses another.
            std::io::ErrorKind::NotFound if path == Path::new(DEFAULT_TARGETS) => Error::Other(format!(
                "no targets file: pass --targets FILE, the labels and target ids with their descriptions \
                 ({DEFAULT_TARGETS} does not exist here)"
            )),
            _ => Error::io(path, e),
        })?;
        // A byte order mark, as editors on Windows write, is no JSON: read past it as the data readers do.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let file = path.display().to_string();
        let mut schema: Schema = serde_json::from_slice(bytes).map_err(|e| {
            Error::Invalid(Problems(vec![Problem {
                file: file.clone(),
                line: e.line(),
                field: "json".into(),
                message: e.to_string(),
            }]))
        })?;
        let problems: Vec<Problem> = schema
            .problems()
            .into_iter()
            .map(|(field, message)| Problem { file: file.clone(), line: 0, field: field.into(), message })
            .collect();
        schema.source = Some(path.to_path_buf());
        Problems::or_ok(problems, schema)
    }

    /// The description of a target id.
    pub fn description(&self, id: &str) -> Option<&str> {
        self.targets.get(id).map(String::as_str)
    }

    /// The target id whose description this is (SemEval files name targets by description).
    /// Case and surrounding whitespace are ignored.
    pub fn target_for_description(&self, description: &str) -> Option<&str> {
        self.targets.iter().find(|(_, d)| names_description(description, d)).map(|(id, _)| id.as_str())
    }

    /// The target a file names by id or, failing that, by description (the
    /// same order as `predict`'s lookup).
    pub fn resolve_target<'a>(&'a self, given: &'a str) -> Option<&'a str> {
        self.description(given).map(|_| given).or_else(|| self.target_for_description(given))
    }

    /// The position of a label, which is its class index in models.
    pub fn label_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// The known target ids, comma-separated, for messages.
    pub fn target_list(&self) -> String {
        self.targets.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
    }

    /// The allowed labels, comma-separated, for messages.
    pub fn label_list(&self) -> String {
        self.labels.join(", ")
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.labels.is_empty() {
            out.push(("labels", "no labels; leave the field out for favor, against, none".to_string()));
        }
        if let Some(dup) = first_duplicate(self.labels.iter()) {
            out.push(("labels", format!("label '{dup}' is listed twice")));
        }
        if let Some(neutral) = self.neutral.as_ref().filter(|n| !self.labels.contains(n)) {
            out.push(("neutral", format!("'{neutral}' is not one of the labels ({})", self.label_list())));
        }
        if self.labels.iter().any(|l| l.trim().is_empty()) {
            out.push(("labels", "empty label".to_string()));
        }
        // `" pro"` beside `"pro"` would be two labels that print alike.
        if let Some(label) = self.labels.iter().find(|l| !l.trim().is_empty() && l.trim() != l.as_str()) {
            out.push(("labels", format!("label '{label}' begins or ends with whitespace")));
        }
        if self.targets.is_empty() {
            out.push(("targets", "no targets".to_string()));
        }
        for (id, description) in &self.targets {
            if id.trim().is_empty() || id.contains(char::is_whitespace) {
                out.push(("targets", format!("target id '{id}' is empty or contains whitespace")));
            }
            // `--targets a,b` lists ids and `--target ID=DESCRIPTION` names one: neither could name this.
            if id.contains([',', '=']) {
                out.push((
                    "targets",
                    format!("target id '{id}' contains ',' or '=', which the --targets and --target flags split at"),
                ));
            }
            if description.trim().is_empty() {
                out.push(("targets", format!("target '{id}' has an empty description")));
            }
        }
        // Descriptions map back to ids, so they must be unique too.
        if let Some(dup) = first_duplicate(self.targets.values().map(|d| d.trim().to_lowercase())) {
            out.push(("targets", format!("description '{dup}' is used by two targets")));
        }
        out
    }
}

/// The targets map, refusing an id given twice: serde's map would keep the
/// last silently, and the first description would vanish from every model.
fn unique_targets<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of target id -> description")
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> std::result::Result<Self::Value, M::Error> {
            let mut targets = BTreeMap::new();
            // Checked at the key, so that the error's line is the repeated key's.
            while let Some(id) = map.next_key::<String>()? {
                if targets.contains_key(&id) {
                    return Err(serde::de::Error::custom(format!("target id `{id}` is given twice")));
                }
                targets.insert(id, map.next_value()?);
            }
            Ok(targets)
        }
    }
    deserializer.deserialize_map(Visitor)
}

fn first_duplicate<T: Ord + Clone, I: IntoIterator<Item = T>>(items: I) -> Option<T> {
    let mut seen = BTreeSet::new();
    items.into_iter().find(|item| !seen.insert(item.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let path = dir.path().join("targets.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn loads_with_default_labels_and_maps_descriptions() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, r#"{"targets": {"atheism": "Atheism", "climate": "Climate Change is a Real Concern"}}"#);
        let schema = Schema::load(&path).unwrap();
        assert_eq!(schema.labels, ["favor", "against", "none"]);
        assert_eq!(schema.description("atheism"), Some("Atheism"));
        assert_eq!(schema.target_for_description(" climate change is a real concern"), Some("climate"));
        assert_eq!(schema.target_for_description("Atheism?"), None);
        assert_eq!(schema.label_index("none"), Some(2));
        assert_eq!(schema.label_index("NONE"), None);
        let bom = write(&dir, "\u{feff}{\"targets\": {\"atheism\": \"Atheism\"}}");
        assert_eq!(
            Schema::load(&bom).unwrap().description("atheism"),
            Some("Atheism"),
            "a byte order mark is read past"
        );
    }

    #[test]
    fn rejects_bad_json_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "{\n  \"targets\": {\n    \"a\": \"A\",\n  }\n}");
        let err = Schema::load(&path).unwrap_err().to_string();
        assert!(err.contains("targets.json:4: json:"), "{err}");
    }

    #[test]
    fn rejects_duplicate_descriptions_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, r#"{"labels": ["pro", "pro"], "targets": {"a": "Same", "b": "same"}}"#);
        let err = Schema::load(&path).unwrap_err().to_string();
        assert!(err.contains("label 'pro' is listed twice"), "{err}");
        assert!(err.contains("description 'same' is used by two targets"), "{err}");
        let twice = write(&dir, "{\"targets\": {\n  \"a\": \"A\",\n  \"a\": \"B\"\n}}");
        let err = Schema::load(&twice).unwrap_err().to_string();
        assert!(err.contains("targets.json:3: json: target id `a` is given twice"), "{err}");
        let unnameable = write(&dir, r#"{"labels": ["pro", " con"], "targets": {"tax,carbon": "A", "k=v": "B"}}"#);
        let err = Schema::load(&unnameable).unwrap_err().to_string();
        assert!(err.contains("label ' con' begins or ends with whitespace"), "{err}");
        for id in ["tax,carbon", "k=v"] {
            assert!(err.contains(&format!("target id '{id}' contains ',' or '='")), "{err}");
        }
    }

    #[test]
    fn project_targets_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/targets.json");
        let schema = Schema::load(&path).unwrap();
        for id in ["nato_accession", "territorial_concessions", "european_burden_sharing", "hillary"] {
            assert!(schema.description(id).is_some(), "{id}");
        }
    }
}
