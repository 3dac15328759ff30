//! The encoder of whichever family `config.json` names.

use std::path::Path;

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::bert::Bert;
use super::config::{EncoderConfig, Family};
use super::mpnet::MPNet;
use super::weights::ParamStore;
use crate::kernels::dropout::DropoutRng;
use crate::kernels::int8::Kernel;
use crate::tokenization::{Batch, StanceTokenizer};

pub enum Encoder {
    Bert(Bert),
    MPNet(MPNet),
}

impl Encoder {
    /// Loads from the root scope: the encoder's tensors are under the family's
    /// prefix (`bert.*`, `mpnet.*`; a bare base checkpoint maps there too).
    pub fn load(root: VarBuilder, config: &EncoderConfig, rng: &DropoutRng) -> Result<Self> {
        Self::load_scope(root.pp(config.family().prefix()), config, rng)
    }

    /// Loads from the encoder's own scope (`embeddings.*`, `encoder.*`).
    pub fn load_scope(vb: VarBuilder, config: &EncoderConfig, rng: &DropoutRng) -> Result<Self> {
        Ok(match config.family() {
            Family::Bert => Self::Bert(Bert::load(vb, config, rng)?),
            Family::MPNet => Self::MPNet(MPNet::load(vb, config, rng)?),
        })
    }

    /// The last hidden state, [batch, seq, hidden].
    pub fn forward_t(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        self.encode(batch, train, false)
    }

    /// The last hidden state at the first position only, [batch, 1, hidden]:
    /// what a first-token head reads. The last layer then computes one row per
    /// sequence instead of all (its keys and values still come from every position).
    pub fn forward_first_t(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        self.encode(batch, train, true)
    }

    /// Runs every layer's linear layers in int8 from now on (inference only;
    /// the word table goes to f16, see [`super::embedding`]; layer norms and
    /// attention stay f32), on the weights `store`
    /// quantized at load where it has them (see [`ParamStore::take_quantized`]).
    pub fn quantize(&mut self, kernel: Kernel, store: &ParamStore) -> Result<()> {
        let (words, layers) = match self {
            Self::Bert(m) => m.int8_parts(),
            Self::MPNet(m) => m.int8_parts(),
        };
        words.halve(store)?;
        layers.iter_mut().try_for_each(|l| l.quantize(kernel, store))?;
        match store.untaken_quantized().first() {
            Some(name) => {
                candle_core::bail!("tensor `{name}` was quantized at load, but no layer of the model reads it")
            }
            None => Ok(()),
        }
    }

    fn encode(&self, batch: &Batch, train: bool, first_only: bool) -> Result<Tensor> {
        match self {
            Self::Bert(m) => m.encode(batch, train, first_only),
            Self::MPNet(m) => m.encode(batch, train, first_only),
        }
    }
}

/// A tokenizer made for another family feeds the encoder ids it was never
/// trained on, silently: refuse one that does not start inputs with the
/// family's first token or pads with another id than `config.json` says.
pub fn check_tokenizer(tokenizer: &StanceTokenizer, config: &EncoderConfig, path: &Path) -> crate::Result<()> {
    let start = config.family().start_token();
    let first = tokenizer.encode_pairs(&[("a", "b")])?.first().and_then(|e| e.ids.first().copied());
    let problem = if first.is_none() || first != tokenizer.token_to_id(start) {
        format!("it does not start inputs with {start}, as {:?} models need", config.model_type)
    } else if tokenizer.pad_id() as usize != config.pad_token_id {
        format!("it pads with id {}, config.json's pad_token_id is {}", tokenizer.pad_id(), config.pad_token_id)
    } else {
        return Ok(());
    };
    Err(crate::Error::Tokenizer(format!("{}: {problem}; is it the tokenizer of this model's family?", path.display())))
}
