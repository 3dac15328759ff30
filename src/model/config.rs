//! The encoder's hyper-parameters, read from a Hugging Face `config.json`;
//! `model_type` names the family (BERT or MPNet).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The fields of transformers' `BertConfig` / `MPNetConfig` that the encoder
/// uses; unknown fields are kept in `extra` so a saved config round-trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
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
    /// MPNet's relative-position buckets (transformers' default 32); absent for BERT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_attention_num_buckets: Option<usize>,
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

/// The encoder families stancekit implements, by `config.json`'s `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Bert,
    MPNet,
}

impl Family {
    pub const SUPPORTED: [(&'static str, Family); 2] = [("bert", Family::Bert), ("mpnet", Family::MPNet)];

    fn from_model_type(model_type: &str) -> Option<Self> {
        Self::SUPPORTED.iter().find(|(name, _)| *name == model_type).map(|(_, f)| *f)
    }

    /// The scope of the encoder's tensors in a classifier checkpoint (`bert.*`, `mpnet.*`).
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::MPNet => "mpnet",
        }
    }

    /// The first special token of every encoded input: what the tokenizer must put there.
    pub fn start_token(self) -> &'static str {
        match self {
            Family::Bert => "[CLS]",
            Family::MPNet => "<s>",
        }
    }

    /// transformers' class for the encoder alone.
    pub fn encoder_architecture(self) -> &'static str {
        match self {
            Family::Bert => "BertModel",
            Family::MPNet => "MPNetModel",
        }
    }

    /// transformers' class for a classifier of this family.
    pub fn classifier_architecture(self) -> &'static str {
        match self {
            Family::Bert => "BertForSequenceClassification",
            Family::MPNet => "MPNetForSequenceClassification",
        }
    }
}

impl EncoderConfig {
    /// Reads and checks a `config.json`; a model this encoder cannot serve is an error.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config: Self = serde_json::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: not an encoder config: {e}", path.display())))?;
        config.check().map_err(|msg| Error::Model(format!("{}: {msg}", path.display())))?;
        Ok(config)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if Family::from_model_type(&self.model_type).is_none() {
            let names: Vec<_> = Family::SUPPORTED.iter().map(|(name, _)| format!("{name:?}")).collect();
            return Err(format!("model_type {:?} is not supported (supported: {})", self.model_type, names.join(", ")));
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
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    /// The family, from `model_type` (checked when the config was loaded).
    pub fn family(&self) -> Family {
        Family::from_model_type(&self.model_type).unwrap_or(Family::Bert)
    }

    /// MPNet's bucket count; 32 where the config leaves it out, as transformers.
    pub fn relative_buckets(&self) -> usize {
        self.relative_attention_num_buckets.unwrap_or(32)
    }

    /// The longest input the position table covers: MPNet's positions start
    /// after the pad id (RoBERTa-style), so 514 positions hold 512 tokens.
    pub fn max_tokens(&self) -> usize {
        match self.family() {
            Family::Bert => self.max_position_embeddings,
            Family::MPNet => self.max_position_embeddings.saturating_sub(self.pad_token_id + 1),
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
pub(crate) fn tiny() -> EncoderConfig {
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
        let err = c.check().unwrap_err();
        assert!(err.contains("roberta") && err.contains("\"bert\", \"mpnet\""), "{err}");
        c.model_type = "mpnet".into();
        assert_eq!((c.check(), c.family()), (Ok(()), Family::MPNet));
    }

    #[test]
    fn keeps_unknown_fields() {
        let c: EncoderConfig = serde_json::from_value(serde_json::json!({
            "vocab_size": 4, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1,
            "intermediate_size": 4, "max_position_embeddings": 8, "architectures": ["BertModel"]
        }))
        .unwrap();
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["architectures"][0], "BertModel");
    }
}
