//! The classification head: pooled vector → dropout → linear → logits; or,
//! for the frozen-encoder recipe, one linear layer per target over the
//! normalised sentence embedding.

use candle_core::{Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::config::Family;
use super::layer::Output;
use super::HeadShape;
use crate::kernels::dropout::Dropout;

/// How the sequence is reduced to one vector before the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The first token's vector through dense + tanh, so that the head is exactly
    /// transformers' `BertForSequenceClassification` (`BertPooler`) or
    /// `MPNetForSequenceClassification` (`MPNetClassificationHead`) and
    /// transformers loads it as such.
    #[default]
    Cls,
    /// Masked mean of the last hidden state, as sentence-transformers pools.
    Mean,
}

/// What the classifier reads and how many it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// One classifier over the pooled (target description, sentence) pair.
    #[default]
    Joint,
    /// One classifier per target over the sentence alone, mean-pooled and L2-normalised
    /// as sentence-transformers encodes it (with `feature_layers` N, the last N
    /// layers so, concatenated): `classifier.weight` holds the targets'
    /// [labels, N × hidden] blocks one under the other, in the order of the spec's targets.
    PerTarget,
}

impl HeadKind {
    pub fn is_joint(&self) -> bool {
        *self == HeadKind::Joint
    }
}

/// The pooler (for [`Pooling::Cls`]) + dropout + classifier, as transformers'
/// `BertForSequenceClassification` and `MPNetForSequenceClassification` have them.
pub struct Head {
    kind: HeadKind,
    labels: usize,
    /// The last encoder layers a per-target head reads (1: the last hidden state).
    layers: usize,
    pooling: Pooling,
    pooler: Option<Linear>,
    /// `MPNetClassificationHead` also drops out the first token's vector before its dense layer.
    dropout_before_pooler: bool,
    dropout: Dropout,
    classifier: Linear,
}

impl Head {
    /// `vb` is the root scope. BERT: `bert.pooler.dense`, then `classifier`.
    /// MPNet ([`Pooling::Cls`]): `classifier.dense`, then `classifier.out_proj`.
    /// A mean-pooled head is `classifier` alone in both.
    /// A [`HeadKind::PerTarget`] head has one classifier per target, each over
    /// the normalised mean pools of the last `shape.layers` layers, concatenated.
    pub fn load(vb: VarBuilder, family: Family, shape: HeadShape, hidden: usize, dropout: Dropout) -> Result<Self> {
        let HeadShape { pooling, kind, labels, targets, layers } = shape;
        let head = vb.pp("classifier");
        if kind == HeadKind::PerTarget && pooling != Pooling::Mean {
            candle_core::bail!("a per-target head reads the mean-pooled sentence: pooling must be mean");
        }
        if layers != 1 && kind != HeadKind::PerTarget {
            candle_core::bail!("only a per-target head reads more than the last layer ({layers} asked)");
        }
        let outputs = if kind == HeadKind::PerTarget { labels * targets.max(1) } else { labels };
        let output = vb.pp(Self::output_layer(family, pooling));
        let pooler = match (pooling, family) {
            (Pooling::Mean, _) => None,
            (Pooling::Cls, Family::Bert) => Some(linear(hidden, hidden, vb.pp("bert.pooler.dense"))?),
            (Pooling::Cls, Family::MPNet) => Some(linear(hidden, hidden, head.pp("dense"))?),
        };
        let classifier = linear(hidden * layers, outputs, output)?;
        let dropout_before_pooler = family == Family::MPNet && pooling == Pooling::Cls;
        Ok(Self { kind, labels, layers, pooling, pooler, dropout_before_pooler, dropout, classifier })
    }

    /// What the head reads of the encoder at every position.
    pub fn encoder_output(&self) -> Output {
        Output::Layers(self.layers)
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The name of the linear layer that makes the logits (`{name}.weight`,
    /// `{name}.bias`), as [`Head::load`] reads it.
    pub fn output_layer(family: Family, pooling: Pooling) -> &'static str {
        match (pooling, family) {
            (Pooling::Cls, Family::MPNet) => "classifier.out_proj",
            _ => "classifier",
        }
    }

    /// The vector the classifier reads, [batch, hidden] ([batch, N × hidden]
    /// for a per-target head over N layers, from [`Head::encoder_output`]).
    pub fn pool(&self, hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        self.pool_t(hidden, attention_mask, false)
    }

    fn pool_t(&self, hidden: &Tensor, attention_mask: &Tensor, train: bool) -> Result<Tensor> {
        if self.kind == HeadKind::PerTarget {
            // Each layer's pool normalised on its own, as sentence-transformers
            // normalises the last one: [batch, layers × hidden] → [batch, layers, hidden].
            let mean = mean_pool(hidden, attention_mask)?;
            let (b, width) = mean.dims2()?;
            let blocks = mean.reshape((b, self.layers, width / self.layers))?;
            let norms = blocks.sqr()?.sum_keepdim(2)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            return blocks.broadcast_div(&norms)?.reshape((b, width));
        }
        let Some(dense) = &self.pooler else { return mean_pool(hidden, attention_mask) };
        let first = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let first = if self.dropout_before_pooler { self.dropout.forward_t(&first, train)? } else { first };
        dense.forward(&first)?.tanh()
    }

    /// Logits [batch, labels]; a per-target head needs each example's target index.
    pub fn forward_t(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        targets: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let pooled = self.dropout.forward_t(&self.pool_t(hidden, attention_mask, train)?, train)?;
        let logits = self.classifier.forward(&pooled)?;
        if self.kind == HeadKind::Joint {
            return Ok(logits);
        }
        let Some(targets) = targets else { candle_core::bail!("a per-target head needs the targets of the batch") };
        let b = logits.dim(0)?;
        let blocks = logits.reshape((b, (), self.labels))?;
        let index = targets.reshape((b, 1, 1))?.broadcast_as((b, 1, self.labels))?.contiguous()?;
        blocks.gather(&index, 1)?.squeeze(1)
    }
}

/// Masked mean over the sequence: [batch, seq, hidden] → [batch, hidden].
pub fn mean_pool(hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
    let mask = attention_mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    summed.broadcast_div(&mask.sum(1)?.clamp(1e-9, f64::MAX)?)
}
