//! The classification head: pooled vector → dropout → linear → logits.

use candle_core::{Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::bert::mean_pool;
use super::ops::Dropout;

/// How the sequence is reduced to one vector before the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// transformers' `BertPooler`: dense + tanh on the [CLS] vector, so the head is
    /// exactly `BertForSequenceClassification` and transformers loads it as such.
    #[default]
    Cls,
    /// Masked mean of the last hidden state, as sentence-transformers pools.
    Mean,
}

/// `BertPooler` (for [`Pooling::Cls`]) + dropout + `classifier`, as transformers'
/// `BertForSequenceClassification`.
pub struct Head {
    pooling: Pooling,
    pooler: Option<Linear>,
    dropout: Dropout,
    classifier: Linear,
}

impl Head {
    /// `vb` is the root scope: the pooler lives at `bert.pooler.dense`, the classifier at `classifier`.
    pub fn load(vb: VarBuilder, pooling: Pooling, hidden: usize, labels: usize, dropout: Dropout) -> Result<Self> {
        let pooler = match pooling {
            Pooling::Cls => Some(linear(hidden, hidden, vb.pp("bert").pp("pooler").pp("dense"))?),
            Pooling::Mean => None,
        };
        let classifier = linear(hidden, labels, vb.pp("classifier"))?;
        Ok(Self { pooling, pooler, dropout, classifier })
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The vector the classifier reads, [batch, hidden].
    pub fn pool(&self, hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        match &self.pooler {
            Some(dense) => dense.forward(&hidden.narrow(1, 0, 1)?.squeeze(1)?)?.tanh(),
            None => mean_pool(hidden, attention_mask),
        }
    }

    pub fn forward_t(&self, hidden: &Tensor, attention_mask: &Tensor, train: bool) -> Result<Tensor> {
        let pooled = self.dropout.forward_t(&self.pool(hidden, attention_mask)?, train)?;
        self.classifier.forward(&pooled)
    }
}
