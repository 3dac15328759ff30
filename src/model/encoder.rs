//! The encoder of whichever family `config.json` names.

use std::path::Path;

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::bert::Bert;
use super::config::{EncoderConfig, Family};
use super::int8::Int8Plan;
use super::layer::Output;
use super::mpnet::MPNet;
use super::weights::ParamStore;
use crate::kernels::dropout::DropoutRng;
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
        self.encode(batch, train, Output::LAST)
    }

    /// What `output` asks for (see [`Output`]).
    pub fn forward_output_t(&self, batch: &Batch, train: bool, output: Output) -> Result<Tensor> {
        self.encode(batch, train, output)
    }

    /// Runs every layer's linear layers in int8 from now on (inference only;
    /// the word table goes to f16, see [`super::embedding`]; layer norms and
    /// attention stay f32), on the weights `store`
    /// quantized at load where it has them (see [`ParamStore::take_quantized`]).
    pub(crate) fn quantize(&mut self, plan: Int8Plan, store: &ParamStore) -> Result<()> {
        let (words, layers) = self.int8_parts();
        words.halve(store)?;
        layers.iter_mut().try_for_each(|l| l.quantize(plan, store))?;
        match store.untaken_quantized().first() {
            Some(name) => {
                candle_core::bail!("tensor `{name}` was quantized at load, but no layer of the model reads it")
            }
            None => Ok(()),
        }
    }

    /// Every encoder layer's linear layers, in order.
    pub(crate) fn linears_mut(&mut self) -> Vec<&mut super::linear::Linear> {
        self.int8_parts().1.iter_mut().flat_map(|l| l.linears_mut()).collect()
    }

    /// What int8 changes: the word table (to f16) and the layers.
    fn int8_parts(&mut self) -> (&mut super::embedding::WordEmbeddings, &mut [super::layer::Layer]) {
        match self {
            Self::Bert(m) => m.int8_parts(),
            Self::MPNet(m) => m.int8_parts(),
        }
    }

    /// In int8, the batch runs [`INT8_ROWS`] tokens' worth of examples at a
    /// time: every op is per example (attention) or per row (quantization,
    /// layer norm), so the result is the same to the bit, and the activations
    /// (the feed-forward block's are four times the hidden width) never exist
    /// for the whole batch. On the MiniLM benchmark `predict --precision int8`
    /// peaked at 77 MB at batch 8 against 98 at batch 32, at the same speed.
    fn encode(&self, batch: &Batch, train: bool, output: Output) -> Result<Tensor> {
        let run = |batch: &Batch| match self {
            Self::Bert(m) => m.encode(batch, train, output),
            Self::MPNet(m) => m.encode(batch, train, output),
        };
        let (examples, len) = batch.input_ids.dims2()?;
        let per_call = (INT8_ROWS / len.max(1)).max(1);
        if train || examples <= per_call || !self.is_int8() {
            return run(batch);
        }
        let parts: Vec<Tensor> = (0..examples)
            .step_by(per_call)
            .map(|at| run(&batch.narrow(at, per_call.min(examples - at))?))
            .collect::<Result<_>>()?;
        Tensor::cat(&parts, 0)
    }

    fn is_int8(&self) -> bool {
        let layers = match self {
            Self::Bert(m) => m.layers(),
            Self::MPNet(m) => m.layers(),
        };
        // Any layer: `--int8-keep-f32-layers 0` leaves the first in f32.
        layers.iter().any(|l| l.is_int8())
    }
}

/// Rows (examples × tokens) per model call in int8 (see `Encoder::encode`).
const INT8_ROWS: usize = 512;

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

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;
    use crate::kernels::int8::Kernel;
    use crate::model::{Arithmetic, Precision};

    /// A batch of `examples` × `len` tokens, the last ones of every third example padding.
    fn batch(examples: usize, len: usize, vocab: usize, pad: u32) -> Batch {
        let ids: Vec<u32> = (0..examples * len).map(|i| 3 + (i * 7919 % (vocab - 3)) as u32).collect();
        let mask: Vec<u32> =
            (0..examples * len).map(|i| u32::from(!(i / len).is_multiple_of(3) || i % len < len / 2)).collect();
        let ids: Vec<u32> = ids.iter().zip(&mask).map(|(&id, &m)| if m == 1 { id } else { pad }).collect();
        let t = |v: Vec<u32>| Tensor::from_vec(v, (examples, len), &Device::Cpu).unwrap();
        Batch {
            input_ids: t(ids),
            token_type_ids: Tensor::zeros((examples, len), DType::U32, &Device::Cpu).unwrap(),
            attention_mask: t(mask),
            targets: None,
        }
    }

    /// Split into calls of at most [`INT8_ROWS`] rows, an int8 batch gives what
    /// one call over it gives, to the bit (both families; mean and first-token outputs).
    #[test]
    fn an_int8_batch_in_several_calls_equals_one_call() {
        let Some(kernel) = Kernel::available().first().copied() else { return };
        for config in [crate::testing::tiny_config(), crate::testing::tiny_mpnet_config()] {
            let store = crate::testing::params_for(&config, 5).frozen();
            let mut encoder = Encoder::load(store.strict(), &config, &DropoutRng::new(0)).unwrap();
            assert!(!encoder.is_int8());
            // The first layer kept in f32 (`--int8-keep-f32-layers 0`): the split still applies.
            let arithmetic = Arithmetic::from(Precision::Int8).keeping_layers(&[0]);
            encoder.quantize(Int8Plan { kernel, arithmetic }, &store).unwrap();
            assert!(encoder.is_int8(), "the split applies to encoders with any int8 layer");
            let len = 30;
            let batch = batch(INT8_ROWS / len * 2 + 5, len, config.vocab_size, config.pad_token_id as u32);
            for output in [Output::LAST, Output::First, Output::Layers(2)] {
                let split = encoder.encode(&batch, false, output).unwrap();
                let whole = match &encoder {
                    Encoder::Bert(m) => m.encode(&batch, false, output),
                    Encoder::MPNet(m) => m.encode(&batch, false, output),
                }
                .unwrap();
                assert_eq!(split.dims(), whole.dims());
                let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                assert_eq!(flat(&split), flat(&whole), "{:?}, {output:?}", config.model_type);
            }
        }
    }
}
