//! The MPNet encoder (all-mpnet-base-v2's family). It is BERT's layer stack
//! ([`super::layer`]) with three differences, each ported from transformers'
//! `modeling_mpnet.py` (permalinks to {UPSTREAM}):
//!
//! - position ids counted RoBERTa-style from `pad_token_id + 1` over the
//!   tokens that are not padding; no token-type embeddings;
//! - a relative-position bias, one [buckets, heads] table shared by every
//!   layer, added to each layer's attention scores;
//! - attention tensors named `attn.{q,k,v,o}`, its layer norm `attention.LayerNorm`.

use candle_core::{Module, Result, Tensor};
use candle_nn::{embedding, Embedding, VarBuilder};

use super::config::EncoderConfig;
use super::embedding::WordEmbeddings;
use super::layer::{run_layers, AttentionBias, AttentionNames, Layer, Output};
use super::norm::LayerNorm;
use crate::kernels::dropout::{Dropout, DropoutRng};
use crate::tokenization::Batch;

const UPSTREAM: &str = "https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/mpnet/modeling_mpnet.py";

/// `MPNetSelfAttention` under `attn.*`, `MPNetAttention`'s own LayerNorm.
const ATTENTION: AttentionNames =
    AttentionNames { query: "attn.q", key: "attn.k", value: "attn.v", output: "attn.o", layer_norm: "LayerNorm" };

/// transformers' `relative_position_bucket` default: distances beyond it share the last bucket.
const MAX_DISTANCE: i64 = 128;

// MPNetEmbeddings, {UPSTREAM}#L70
struct Embeddings {
    word: WordEmbeddings,
    position: Embedding,
    layer_norm: LayerNorm,
    dropout: Dropout,
    pad_id: u32,
}

impl Embeddings {
    fn load(vb: VarBuilder, c: &EncoderConfig, rng: &DropoutRng) -> Result<Self> {
        Ok(Self {
            word: WordEmbeddings::load(c.vocab_size, c.hidden_size, vb.clone())?,
            position: embedding(c.max_position_embeddings, c.hidden_size, vb.pp("position_embeddings"))?,
            layer_norm: LayerNorm::load(c.hidden_size, c.layer_norm_eps, vb.pp("LayerNorm"))?,
            dropout: Dropout::new(c.hidden_dropout_prob, rng),
            pad_id: c.pad_token_id as u32,
        })
    }

    fn forward_t(&self, input_ids: &Tensor, train: bool) -> Result<Tensor> {
        let ids = input_ids.to_vec2::<u32>()?;
        let positions: Vec<u32> = ids.iter().flat_map(|row| position_ids(row, self.pad_id)).collect();
        let positions = Tensor::from_vec(positions, input_ids.shape(), input_ids.device())?;
        let xs = self.word.forward(input_ids)?.add(&self.position.forward(&positions)?)?;
        self.dropout.forward_t(&self.layer_norm.forward(&xs)?, train)
    }
}

/// `create_position_ids_from_input_ids` ({UPSTREAM}#L525): the n-th token that is
/// not padding gets `pad + n` (from 1), padding gets `pad`.
pub(super) fn position_ids(ids: &[u32], pad: u32) -> Vec<u32> {
    let mut seen = 0;
    ids.iter()
        .map(|&id| {
            if id == pad {
                pad
            } else {
                seen += 1;
                pad + seen
            }
        })
        .collect()
}

/// `MPNetEncoder.relative_position_bucket` ({UPSTREAM}#L320) for key position
/// minus query position: half the buckets for each direction, exact below a
/// quarter of them, log-spaced up to [`MAX_DISTANCE`]. In f32 as torch computes it.
pub(super) fn relative_bucket(relative: i64, buckets: usize) -> u32 {
    let half = (buckets / 2) as i64;
    let n = -relative;
    let side = if n < 0 { half } else { 0 };
    let n = n.abs();
    let max_exact = half / 2;
    if n < max_exact {
        return (side + n) as u32;
    }
    let log_ratio = (n as f32 / max_exact as f32).ln() / ((MAX_DISTANCE as f64 / max_exact as f64).ln() as f32);
    let large = max_exact + (log_ratio * (half - max_exact) as f32) as i64;
    (side + large.min(half - 1)) as u32
}

/// The encoder stack (`MPNetModel` without its pooler), {UPSTREAM}#L430.
pub struct MPNet {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    relative_bias: Embedding,
    buckets: usize,
}

impl MPNet {
    /// Loads from a scope whose names are transformers' `MPNetModel` names (`embeddings.*`, `encoder.*`).
    pub fn load(vb: VarBuilder, config: &EncoderConfig, rng: &DropoutRng) -> Result<Self> {
        let encoder = vb.pp("encoder");
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(encoder.pp("layer").pp(i), config, &ATTENTION, rng))
            .collect::<Result<_>>()?;
        let buckets = config.relative_buckets();
        let relative_bias = embedding(buckets, config.num_attention_heads, encoder.pp("relative_attention_bias"))?;
        Ok(Self { embeddings: Embeddings::load(vb.pp("embeddings"), config, rng)?, layers, relative_bias, buckets })
    }

    pub(super) fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// What int8 inference changes: the word table (to f16) and the layers.
    pub(super) fn int8_parts(&mut self) -> (&mut WordEmbeddings, &mut [Layer]) {
        (&mut self.embeddings.word, &mut self.layers)
    }

    /// The last hidden state, [batch, seq, hidden], or its first position alone
    /// with `first_only` ([batch, 1, hidden]; see [`run_layers`]).
    pub fn encode(&self, batch: &Batch, train: bool, output: Output) -> Result<Tensor> {
        let xs = self.embeddings.forward_t(&batch.input_ids, train)?;
        let position = self.position_bias(xs.dim(1)?, xs.device())?;
        let bias = AttentionBias::new(&batch.attention_mask, Some(position), xs.dtype())?;
        run_layers(&self.layers, xs, &bias, output, train)
    }

    /// `MPNetEncoder.compute_position_bias` ({UPSTREAM}#L400): [heads, seq, seq],
    /// from positions 0..seq whatever the padding, as transformers computes it.
    fn position_bias(&self, len: usize, device: &candle_core::Device) -> Result<Tensor> {
        let buckets: Vec<u32> =
            (0..len as i64).flat_map(|q| (0..len as i64).map(move |k| relative_bucket(k - q, self.buckets))).collect();
        let buckets = Tensor::from_vec(buckets, (len, len), device)?;
        self.relative_bias.forward(&buckets)?.permute((2, 0, 1))?.contiguous()
    }
}

#[allow(dead_code)]
fn upstream() -> &'static str {
    UPSTREAM
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_from_after_the_pad_id() {
        assert_eq!(position_ids(&[0, 9, 9, 2, 1, 1], 1), vec![2, 3, 4, 5, 1, 1]);
    }

    /// Values of transformers' `relative_position_bucket` (32 buckets, max distance 128).
    #[test]
    fn buckets_are_exact_near_and_log_spaced_far() {
        let b = |r| relative_bucket(r, 32);
        assert_eq!([b(0), b(-1), b(-7), b(1), b(7)], [0, 1, 7, 17, 23]);
        // n = 8 starts the log range; n ≥ 128 saturates at the last bucket of its side.
        assert_eq!([b(-8), b(-16), b(-127), b(-500)], [8, 10, 15, 15]);
        assert_eq!([b(8), b(16), b(500)], [24, 26, 31]);
    }
}
