//! The encoder's hyper-parameters, read from a Hugging Face `config.json`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The fields of transformers' `BertConfig` that the encoder uses; unknown
/// fields are kept in `extra` so a saved config round-trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "default_position_type")]
    pub position_embedding_type: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn default_model_type() -> String {
    "bert".into()
}
fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_init_range() -> f64 {
    0.02
}
fn default_eps() -> f64 {
    1e-12
}
fn default_position_type() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Reads and checks a `config.json`; a model this encoder cannot serve is an error.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config: Self = serde_json::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: not a BERT config: {e}", path.display())))?;
        config.check().map_err(|msg| Error::Model(format!("{}: {msg}", path.display())))?;
        Ok(config)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.model_type != "bert" {
            return Err(format!("model_type {:?} is not supported (stancekit's encoder is BERT)", self.model_type));
        }
        if self.hidden_act != "gelu" {
            return Err(format!("hidden_act {:?} is not supported (only \"gelu\")", self.hidden_act));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
pub(crate) fn tiny() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 40, "hidden_size": 8, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 16,
        "max_position_embeddings": 24, "layer_norm_eps": 1e-12
    }))
    .expect("tiny config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_other_model_types() {
        let mut c = tiny();
        c.model_type = "roberta".into();
        assert!(c.check().unwrap_err().contains("roberta"));
    }

    #[test]
    fn keeps_unknown_fields() {
        let c: BertConfig = serde_json::from_value(serde_json::json!({
            "vocab_size": 4, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1,
            "intermediate_size": 4, "max_position_embeddings": 8, "architectures": ["BertModel"]
        }))
        .unwrap();
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["architectures"][0], "BertModel");
    }
}
