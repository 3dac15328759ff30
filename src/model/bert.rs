//! The BERT encoder, written on differentiable candle ops so that fine-tuning
//! reaches every layer. Parameter names follow transformers' `modeling_bert.py`
//! (permalinks below are to commit 6eedfa6 of that file).

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{embedding, Embedding, VarBuilder};

use super::config::BertConfig;
use super::fused::{attention, linear, Linear};
use super::ops::{Dropout, DropoutRng, LayerNorm};
use crate::tokenization::Batch;

const UPSTREAM: &str = "https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py";

/// Added to attention scores at padding positions. Finite, so that half
/// precision cannot turn `0 * -inf` into NaN; exp() of it is exactly 0 in f32.
const MASKED_SCORE: f64 = -10_000.0;

// {UPSTREAM}#L180
struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    layer_norm: LayerNorm,
    dropout: Dropout,
}

impl Embeddings {
    fn load(vb: VarBuilder, c: &BertConfig, rng: &DropoutRng) -> Result<Self> {
        Ok(Self {
            word: embedding(c.vocab_size, c.hidden_size, vb.pp("word_embeddings"))?,
            position: embedding(c.max_position_embeddings, c.hidden_size, vb.pp("position_embeddings"))?,
            token_type: embedding(c.type_vocab_size, c.hidden_size, vb.pp("token_type_embeddings"))?,
            layer_norm: LayerNorm::load(c.hidden_size, c.layer_norm_eps, vb.pp("LayerNorm"))?,
            dropout: Dropout::new(c.hidden_dropout_prob, rng),
        })
    }

    fn forward_t(&self, input_ids: &Tensor, token_type_ids: &Tensor, train: bool) -> Result<Tensor> {
        let seq_len = input_ids.dim(1)?;
        let positions = Tensor::arange(0u32, seq_len as u32, input_ids.device())?;
        let xs = self
            .word
            .forward(input_ids)?
            .add(&self.token_type.forward(token_type_ids)?)?
            .broadcast_add(&self.position.forward(&positions)?)?;
        self.dropout.forward_t(&self.layer_norm.forward(&xs)?, train)
    }
}

// Self-attention and its output projection (BertSelfAttention, BertSelfOutput).
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
    // {UPSTREAM}#L392
    fn load(vb: VarBuilder, c: &BertConfig, rng: &DropoutRng) -> Result<Self> {
        let h = c.hidden_size;
        let attn = vb.pp("self");
        Ok(Self {
            query: linear(h, h, attn.pp("query"))?,
            key: linear(h, h, attn.pp("key"))?,
            value: linear(h, h, attn.pp("value"))?,
            output: linear(h, h, vb.pp("output").pp("dense"))?,
            layer_norm: LayerNorm::load(h, c.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            probs_dropout: Dropout::new(c.attention_probs_dropout_prob, rng),
            output_dropout: Dropout::new(c.hidden_dropout_prob, rng),
            heads: c.num_attention_heads,
        })
    }

    /// `queries` are the positions whose output is wanted, `xs` all positions
    /// (the keys and values); in a full layer they are the same tensor.
    fn forward_t(&self, queries: &Tensor, xs: &Tensor, mask_bias: &Tensor, train: bool) -> Result<Tensor> {
        let (q, k, v) = (self.query.forward(queries)?, self.key.forward(xs)?, self.value.forward(xs)?);
        let context = attention(&q, &k, &v, mask_bias, self.heads, &self.probs_dropout, train)?;
        let projected = self.output.forward_dropout(&context, &self.output_dropout, train)?;
        self.layer_norm.forward(&(projected + queries)?)
    }
}

// {UPSTREAM}#L470 (BertLayer, with BertIntermediate #L441 and BertOutput #L456)
struct Layer {
    attention: Attention,
    intermediate: Linear,
    output: Linear,
    layer_norm: LayerNorm,
    dropout: Dropout,
}

impl Layer {
    fn load(vb: VarBuilder, c: &BertConfig, rng: &DropoutRng) -> Result<Self> {
        Ok(Self {
            attention: Attention::load(vb.pp("attention"), c, rng)?,
            intermediate: linear(c.hidden_size, c.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            output: linear(c.intermediate_size, c.hidden_size, vb.pp("output").pp("dense"))?,
            layer_norm: LayerNorm::load(c.hidden_size, c.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            dropout: Dropout::new(c.hidden_dropout_prob, rng),
        })
    }

    fn forward_t(&self, queries: &Tensor, xs: &Tensor, mask_bias: &Tensor, train: bool) -> Result<Tensor> {
        let attended = self.attention.forward_t(queries, xs, mask_bias, train)?;
        let hidden = self.intermediate.forward_gelu(&attended)?;
        let out = self.output.forward_dropout(&hidden, &self.dropout, train)?;
        self.layer_norm.forward(&(out + attended)?)
    }
}

/// The encoder stack (`BertModel` without its pooler), {UPSTREAM}#L874.
pub struct Bert {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    config: BertConfig,
}

impl Bert {
    /// Loads from a scope whose names are transformers' `BertModel` names (`embeddings.*`, `encoder.*`).
    pub fn load(vb: VarBuilder, config: &BertConfig, rng: &DropoutRng) -> Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("encoder").pp("layer").pp(i), config, rng))
            .collect::<Result<_>>()?;
        Ok(Self { embeddings: Embeddings::load(vb.pp("embeddings"), config, rng)?, layers, config: config.clone() })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The last hidden state, [batch, seq, hidden].
    pub fn forward_t(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        self.encode(batch, train, false)
    }

    /// The last hidden state at the first position only, [batch, 1, hidden]:
    /// what a `[CLS]` head reads. The last layer then computes one row per
    /// sequence instead of all (its keys and values still come from every
    /// position), which saves ~5/6 of that layer's work, a seventh of the model's.
    pub fn forward_first_t(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        self.encode(batch, train, true)
    }

    fn encode(&self, batch: &Batch, train: bool, first_only: bool) -> Result<Tensor> {
        let mut xs = self.embeddings.forward_t(&batch.input_ids, &batch.token_type_ids, train)?;
        let mask_bias = mask_bias(&batch.attention_mask, xs.dtype())?;
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let queries = if first_only && i == last { xs.narrow(1, 0, 1)? } else { xs.clone() };
            xs = layer.forward_t(&queries, &xs, &mask_bias, train)?;
        }
        Ok(xs)
    }
}

/// [batch, seq] 0/1 mask → [batch, 1, 1, seq] additive bias ({UPSTREAM}#L995).
fn mask_bias(attention_mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, l) = attention_mask.dims2()?;
    let keep = attention_mask.to_dtype(DType::F32)?;
    ((keep - 1.0)? * -MASKED_SCORE)?.reshape((b, 1, 1, l))?.to_dtype(dtype)
}

/// Masked mean over the sequence: [batch, seq, hidden] → [batch, hidden].
pub fn mean_pool(hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
    let mask = attention_mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    summed.broadcast_div(&mask.sum(1)?.clamp(1e-9, f64::MAX)?)
}

#[allow(dead_code)]
fn upstream() -> &'static str {
    UPSTREAM
}
