//! The transformer layer that BERT and MPNet share: multi-head self-attention
//! with its output projection, then the feed-forward block, each closed by a
//! residual and a layer norm (post-norm). The families differ only in tensor
//! names and in an optional additive attention bias (MPNet's relative
//! positions), so one implementation serves both.
//!
//! BERT: `BertSelfAttention` / `BertSelfOutput` / `BertIntermediate` / `BertOutput`,
//! <https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py#L392>;
//! MPNet: `MPNetAttention` / `MPNetLayer`, the same computation under other names.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::EncoderConfig;
use super::int8::Int8Plan;
use super::linear::{linear, Linear};
use super::norm::LayerNorm;
use super::weights::ParamStore;
use crate::kernels::attention::attention;
use crate::kernels::dropout::{Dropout, DropoutRng};

/// Added to attention scores at padding positions. Finite, so that half
/// precision cannot turn `0 * -inf` into NaN; exp() of it is exactly 0 in f32.
const MASKED_SCORE: f64 = -10_000.0;

/// Where a family keeps the attention block's tensors, relative to `layer.N.attention`.
pub(crate) struct AttentionNames {
    pub query: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    pub output: &'static str,
    pub layer_norm: &'static str,
}

// Self-attention and its output projection.
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    layer_norm: LayerNorm,
    probs_dropout: Dropout,
    output_dropout: Dropout,
    heads: usize,
}

impl Attention {
    fn load(vb: VarBuilder, c: &EncoderConfig, names: &AttentionNames, rng: &DropoutRng) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Self {
            query: linear(h, h, vb.pp(names.query))?,
            key: linear(h, h, vb.pp(names.key))?,
            value: linear(h, h, vb.pp(names.value))?,
            output: linear(h, h, vb.pp(names.output))?,
            layer_norm: LayerNorm::load(h, c.layer_norm_eps, vb.pp(names.layer_norm))?,
            probs_dropout: Dropout::new(c.attention_probs_dropout_prob, rng),
            output_dropout: Dropout::new(c.hidden_dropout_prob, rng),
            heads: c.num_attention_heads,
        })
    }

    /// `queries` are the positions whose output is wanted, `xs` all positions
    /// (the keys and values); in a full layer they are the same tensor.
    fn forward_t(&self, queries: &Tensor, xs: &Tensor, bias: &AttentionBias, train: bool) -> Result<Tensor> {
        let shared = if std::ptr::eq(queries, xs) {
            Linear::forward_shared(&[&self.query, &self.key, &self.value], xs)?
        } else {
            None
        };
        let (q, k, v) = match shared.as_deref() {
            Some([q, k, v]) => (q.clone(), k.clone(), v.clone()),
            _ => (self.query.forward(queries)?, self.key.forward(xs)?, self.value.forward(xs)?),
        };
        let position = bias.position.as_ref();
        let context = attention(&q, &k, &v, &bias.mask, position, self.heads, &self.probs_dropout, train)?;
        let projected = self.output.forward_dropout(&context, &self.output_dropout, train)?;
        self.layer_norm.forward_residual(&projected, queries)
    }
}

/// One encoder layer: attention, then the feed-forward block.
pub(crate) struct Layer {
    attention: Attention,
    intermediate: Linear,
    output: Linear,
    layer_norm: LayerNorm,
    dropout: Dropout,
}

impl Layer {
    pub fn load(vb: VarBuilder, c: &EncoderConfig, names: &AttentionNames, rng: &DropoutRng) -> Result<Self> {
        Ok(Self {
            attention: Attention::load(vb.pp("attention"), c, names, rng)?,
            intermediate: linear(c.hidden_size, c.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            output: linear(c.intermediate_size, c.hidden_size, vb.pp("output").pp("dense"))?,
            layer_norm: LayerNorm::load(c.hidden_size, c.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            dropout: Dropout::new(c.hidden_dropout_prob, rng),
        })
    }

    /// Every linear layer, for [`Layer::quantize`].
    pub(crate) fn linears_mut(&mut self) -> [&mut Linear; 6] {
        let a = &mut self.attention;
        [&mut a.query, &mut a.key, &mut a.value, &mut a.output, &mut self.intermediate, &mut self.output]
    }

    /// Runs the layer's linear layers in int8 (see [`Linear::quantize`]).
    pub(crate) fn quantize(&mut self, plan: Int8Plan, store: &ParamStore) -> Result<()> {
        self.linears_mut().into_iter().try_for_each(|l| l.quantize(plan, store))
    }

    fn forward_t(&self, queries: &Tensor, xs: &Tensor, bias: &AttentionBias, train: bool) -> Result<Tensor> {
        let attended = self.attention.forward_t(queries, xs, bias, train)?;
        let hidden = self.intermediate.forward_gelu(&attended)?;
        let out = self.output.forward_dropout(&hidden, &self.dropout, train)?;
        self.layer_norm.forward_residual(&out, &attended)
    }

    /// Whether any of the layer's linear layers runs in int8 ([`Layer::quantize`]).
    pub fn is_int8(&self) -> bool {
        let a = &self.attention;
        [&a.query, &a.key, &a.value, &a.output, &self.intermediate, &self.output].iter().any(|l| l.is_int8())
    }
}

/// What every layer adds to its attention scores.
pub(crate) struct AttentionBias {
    /// [batch, 1, 1, seq]: 0 on tokens, a large negative number on padding.
    pub mask: Tensor,
    /// [heads, seq, seq], the same for every item of the batch (MPNet's relative positions).
    pub position: Option<Tensor>,
}

impl AttentionBias {
    pub fn new(attention_mask: &Tensor, position: Option<Tensor>, dtype: DType) -> Result<Self> {
        Ok(Self { mask: mask_bias(attention_mask, dtype)?, position })
    }

    /// The bias of the first query row only (see [`run_layers`]).
    fn first_row(&self) -> Result<Self> {
        let position = self.position.as_ref().map(|p| p.narrow(1, 0, 1)).transpose()?;
        Ok(Self { mask: self.mask.clone(), position })
    }
}

/// What an encoder call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The last `n` layers' outputs at every position, the last layer first,
    /// concatenated along the hidden axis: [batch, seq, n × hidden]. `Layers(1)`
    /// is the last hidden state; more is what the frozen recipe's
    /// `--feature-layers` reads (the BERT paper's feature-based study found
    /// the last four concatenated best, arXiv:1810.04805, Table 7).
    Layers(usize),
    /// The last layer at the first position alone, [batch, 1, hidden]: what a
    /// first-token head reads. That layer computes one row per sequence (its
    /// keys and values still come from every position), for ~5/6 less work in
    /// it, a seventh of a six-layer model's.
    First,
}

impl Output {
    pub const LAST: Output = Output::Layers(1);
}

/// Runs the stack over the embeddings `xs` and returns what `output` asks for.
pub(crate) fn run_layers(
    layers: &[Layer],
    mut xs: Tensor,
    bias: &AttentionBias,
    output: Output,
    train: bool,
) -> Result<Tensor> {
    let keep = match output {
        Output::Layers(n) if n == 0 || n > layers.len() => {
            candle_core::bail!("{n} output layers asked of an encoder of {}", layers.len())
        }
        Output::Layers(n) => n,
        Output::First => 1,
    };
    let last = layers.len().saturating_sub(1);
    let mut kept = Vec::with_capacity(keep);
    for (i, layer) in layers.iter().enumerate() {
        xs = if output == Output::First && i == last {
            layer.forward_t(&xs.narrow(1, 0, 1)?, &xs, &bias.first_row()?, train)?
        } else {
            layer.forward_t(&xs, &xs, bias, train)?
        };
        if keep > 1 && i + keep >= layers.len() {
            kept.push(xs.clone());
        }
    }
    if keep == 1 {
        return Ok(xs);
    }
    kept.reverse();
    Tensor::cat(&kept, 2)
}

/// [batch, seq] 0/1 mask → [batch, 1, 1, seq] additive bias (BERT's
/// `get_extended_attention_mask`, modeling_bert.py#L995 at the commit above).
fn mask_bias(attention_mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, l) = attention_mask.dims2()?;
    let keep = attention_mask.to_dtype(DType::F32)?;
    ((keep - 1.0)? * -MASKED_SCORE)?.reshape((b, 1, 1, l))?.to_dtype(dtype)
}
