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
    /// The labels that take no stance, which F_avg leaves out; `none` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutral: Option<Neutral>,
    /// The targets file it was read from ([`Schema::load`]), for hints that
    /// name a command to run next (`validate::conflict_problems`).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// Taken from the models evaluated rather than from a targets file (`eval`
    /// without `--targets`), so that problems say which to blame.
    #[serde(skip)]
    pub from_runs: bool,
}

/// The labels that take no stance: a targets file's `neutral`, one label
/// (`"none"`) or a list (`["none", "unrelated"]`, or `[]` for no label left
/// out of F_avg). Written back as it was given: a string for one label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Neutral(pub Vec<String>);

impl Neutral {
    pub fn one(label: &str) -> Self {
        Self(vec![label.to_string()])
    }

    /// The labels, as the F_avg definitions and messages name them.
    pub fn names(&self) -> String {
        self.0.iter().map(|l| format!("'{l}'")).collect::<Vec<_>>().join(", ")
    }
}

impl Serialize for Neutral {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Neutral {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a label or a list of labels")]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(label) => Self(vec![label]),
            OneOrMany::Many(labels) => Self(labels),
        })
    }
}

/// The label of `labels` that `given` spells, the exact spelling first, else
/// in any case (`FAVOR` is `favor`, `support` is `Support`), as files from
/// other tools write them.
pub fn label_in_any_case<'a>(labels: &'a [String], given: &str) -> Option<&'a String> {
    let exact = labels.iter().find(|l| l.as_str() == given);
    exact.or_else(|| labels.iter().find(|l| l.to_lowercase() == given.to_lowercase()))
}

/// Whether `given` names a target by this description: case and surrounding
/// whitespace are ignored, as SemEval-style files write descriptions freely.
pub fn names_description(given: &str, description: &str) -> bool {
    description.trim().eq_ignore_ascii_case(given.trim())
}

/// The label that takes no stance, which F_avg leaves out, unless a targets
/// file names another (`neutral`): SemEval-2016's.
pub const DEFAULT_NEUTRAL: &str = "none";

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

    /// What the file allows but likely does not mean: a label spelled as a
    /// neutral one (`Neutral`, `None`, `no stance`) while `neutral` is not
    /// given and no label is `none`, so F_avg counts it as a stance.
    pub fn warnings(&self) -> Vec<String> {
        const SPELLINGS: [&str; 6] = ["none", "neutral", "no stance", "no_stance", "nostance", "neither"];
        if self.neutral.is_some() || self.labels.iter().any(|l| l == DEFAULT_NEUTRAL) {
            return Vec::new();
        }
        let looks_neutral = |l: &&String| SPELLINGS.contains(&l.trim().to_lowercase().as_str());
        let said = |l: &String| {
            format!(
                "label '{l}' counts as a stance in F_avg: the targets file names no `neutral` label; \
                 add \"neutral\": \"{l}\" if it takes no stance"
            )
        };
        self.labels.iter().filter(looks_neutral).map(said).collect()
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
        for neutral in self.neutral.iter().flat_map(|n| &n.0).filter(|n| !self.labels.contains(n)) {
            out.push(("neutral", format!("'{neutral}' is not one of the labels ({})", self.label_list())));
        }
        if let Some(dup) = first_duplicate(self.neutral.iter().flat_map(|n| &n.0)) {
            out.push(("neutral", format!("label '{dup}' is listed twice")));
        }
        if self.neutral.as_ref().is_some_and(|n| !self.labels.is_empty() && self.labels.iter().all(|l| n.0.contains(l)))
        {
            out.push(("neutral", "names every label: F_avg needs at least one stance label".to_string()));
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

/// A map keyed by target id (the targets file's descriptions, the label
/// page's decisions), refusing an id given twice: serde's map would keep the
/// last silently, and the first would vanish.
pub fn unique_targets<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object keyed by target id")
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

    /// `neutral` is one label or a list, and is written back as it was given.
    #[test]
    fn neutral_is_one_label_or_a_list() {
        let dir = tempfile::tempdir().unwrap();
        let labels = r#""labels": ["pro", "con", "none", "unrelated"], "targets": {"a": "A"}"#;
        for (neutral, want) in [(r#""none""#, vec!["none"]), (r#"["none", "unrelated"]"#, vec!["none", "unrelated"])] {
            let schema = Schema::load(&write(&dir, &format!(r#"{{{labels}, "neutral": {neutral}}}"#))).unwrap();
            assert_eq!(schema.neutral, Some(Neutral(want.iter().map(|l| l.to_string()).collect())));
            assert_eq!(serde_json::to_value(&schema).unwrap()["neutral"].to_string().replace(',', ", "), neutral);
        }
        let bad = write(&dir, &format!(r#"{{{labels}, "neutral": ["none", "other", "none"]}}"#));
        let err = Schema::load(&bad).unwrap_err().to_string();
        assert!(err.contains("neutral: 'other' is not one of the labels"), "{err}");
        assert!(err.contains("neutral: label 'none' is listed twice"), "{err}");
        let all = write(&dir, &format!(r#"{{{labels}, "neutral": ["pro", "con", "none", "unrelated"]}}"#));
        let err = Schema::load(&all).unwrap_err().to_string();
        assert!(err.contains("neutral: names every label"), "{err}");
        let number = write(&dir, &format!(r#"{{{labels}, "neutral": 3}}"#));
        let err = Schema::load(&number).unwrap_err().to_string();
        assert!(err.contains("a label or a list of labels"), "{err}");
    }

    /// A label spelled as a neutral one, with no `neutral` to say so, is
    /// warned of: F_avg would count it as a stance.
    #[test]
    fn an_unnamed_neutral_looking_label_is_warned_of() {
        let dir = tempfile::tempdir().unwrap();
        let load = |body: &str| Schema::load(&write(&dir, body)).unwrap();
        let german = load(r#"{"labels": ["Dafür", "Dagegen", "Neutral"], "targets": {"a": "A"}}"#);
        let warned = german.warnings();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].starts_with("label 'Neutral' counts as a stance in F_avg"), "{warned:?}");
        assert!(warned[0].ends_with(r#"add "neutral": "Neutral" if it takes no stance"#), "{warned:?}");
        let named = load(r#"{"labels": ["Dafür", "Dagegen", "Neutral"], "neutral": "Neutral", "targets": {"a": "A"}}"#);
        assert!(named.warnings().is_empty());
        assert!(load(r#"{"targets": {"a": "A"}}"#).warnings().is_empty(), "the default `none`");
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
