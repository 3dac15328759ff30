//! The BERT encoder, written on differentiable candle ops so that fine-tuning
//! reaches every layer. Parameter names follow transformers' `modeling_bert.py`
//! (permalinks below are to commit 6eedfa6 of that file); the layers are the
//! shared [`super::layer`].

use candle_core::{Module, Result, Tensor};
use candle_nn::{embedding, Embedding, VarBuilder};

use super::config::EncoderConfig;
use super::embedding::WordEmbeddings;
use super::layer::{run_layers, AttentionBias, AttentionNames, Layer, Output};
use super::norm::LayerNorm;
use crate::kernels::dropout::{Dropout, DropoutRng};
use crate::tokenization::Batch;

const UPSTREAM: &str = "https://github.com/huggingface/transformers/blob/6eedfa6dd15dc1e22a55ae036f681914e5a0d9a1/src/transformers/models/bert/modeling_bert.py";

/// `BertSelfAttention` under `self.*`, `BertSelfOutput` under `output.*` ({UPSTREAM}#L392).
const ATTENTION: AttentionNames = AttentionNames {
    query: "self.query",
    key: "self.key",
    value: "self.value",
    output: "output.dense",
    layer_norm: "output.LayerNorm",
};

// {UPSTREAM}#L180
struct Embeddings {
    word: WordEmbeddings,
    position: Embedding,
    token_type: Embedding,
    layer_norm: LayerNorm,
    dropout: Dropout,
}

impl Embeddings {
    fn load(vb: VarBuilder, c: &EncoderConfig, rng: &DropoutRng) -> Result<Self> {
        Ok(Self {
            word: WordEmbeddings::load(c.vocab_size, c.hidden_size, vb.clone())?,
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

/// The encoder stack (`BertModel` without its pooler), {UPSTREAM}#L874.
pub struct Bert {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Bert {
    /// Loads from a scope whose names are transformers' `BertModel` names (`embeddings.*`, `encoder.*`).
    pub fn load(vb: VarBuilder, config: &EncoderConfig, rng: &DropoutRng) -> Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("encoder").pp("layer").pp(i), config, &ATTENTION, rng))
            .collect::<Result<_>>()?;
        Ok(Self { embeddings: Embeddings::load(vb.pp("embeddings"), config, rng)?, layers })
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
        let xs = self.embeddings.forward_t(&batch.input_ids, &batch.token_type_ids, train)?;
        let bias = AttentionBias::new(&batch.attention_mask, None, xs.dtype())?;
        run_layers(&self.layers, xs, &bias, output, train)
    }
}

#[allow(dead_code)]
fn upstream() -> &'static str {
    UPSTREAM
}
