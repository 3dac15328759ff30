//! The stance model: an encoder (BERT or MPNet) reading (target description,
//! sentence) and a classification head over the label set.

mod bert;
mod classifier;
mod config;
mod embedding;
mod encoder;
mod head;
mod int8;
mod int8_columns;
mod layer;
pub mod linear;
mod mpnet;
mod norm;
mod weights;

pub use crate::kernels::dropout::DropoutRng;
pub use bert::Bert;
pub(crate) use classifier::one_layer;
pub use classifier::{Classifier, PairEncoder, StanceSpec};
pub use config::{EncoderConfig, Family};
pub use encoder::{check_tokenizer, Encoder};
pub use head::{mean_pool, Head, HeadKind, Pooling};
pub(crate) use int8::inference_params;
pub use int8::{Arithmetic, Int8Plan, LinearKind, Precision, MAX_F32_COLUMNS, MAX_LAYERS};
pub(crate) use int8_columns::choose_f32_columns;
pub use layer::Output;
pub use mpnet::MPNet;
pub use weights::ParamStore;

use candle_core::Tensor;

use candle_core::D;

use crate::tokenization::{run_sorted, Batch, Encoded};
use crate::{Error, Result};

/// Encoder + head, with the store that owns their trainable parameters.
pub struct StanceModel {
    pub encoder: Encoder,
    pub head: Head,
    pub params: ParamStore,
    pub dropout_rng: DropoutRng,
}

/// The head of a model: how it pools, which kind, how many labels and targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadShape {
    pub pooling: Pooling,
    pub kind: HeadKind,
    pub labels: usize,
    /// Targets with a classifier of their own ([`HeadKind::PerTarget`]); 1 otherwise.
    pub targets: usize,
    /// Encoder layers the head reads, the last ones (only a per-target head reads more than 1).
    pub layers: usize,
}

impl StanceModel {
    /// Builds the model over `params`: encoder tensors must be in the checkpoint,
    /// head tensors are initialised when it lacks them (a base encoder).
    pub fn new(
        config: &EncoderConfig,
        params: &ParamStore,
        pooling: Pooling,
        labels: usize,
        seed: u64,
    ) -> Result<Self> {
        let shape = HeadShape { pooling, kind: HeadKind::Joint, labels, targets: 1, layers: 1 };
        Self::with_head(config, params, shape, seed)
    }

    /// [`StanceModel::new`] with any head.
    pub fn with_head(config: &EncoderConfig, params: &ParamStore, shape: HeadShape, seed: u64) -> Result<Self> {
        let dropout_rng = DropoutRng::new(seed);
        let encoder = Encoder::load(params.strict(), config, &dropout_rng).map_err(model_error)?;
        let classifier_dropout =
            config.extra.get("classifier_dropout").and_then(|v| v.as_f64()).unwrap_or(config.hidden_dropout_prob);
        let dropout = crate::kernels::dropout::Dropout::new(classifier_dropout, &dropout_rng);
        if !(1..=config.num_hidden_layers).contains(&shape.layers) {
            return Err(Error::Model(format!(
                "the head reads the last {} layers, but the encoder has {} (a head reads at least one layer)",
                shape.layers, config.num_hidden_layers
            )));
        }
        let head =
            Head::load(params.lenient(config.initializer_range), config.family(), shape, config.hidden_size, dropout)
                .map_err(model_error)?;
        Ok(Self { encoder, head, params: params.clone(), dropout_rng })
    }

    /// Logits over the labels, [batch, labels].
    pub fn forward_t(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        // Training keeps the full last layer so that its dropout draws, and so
        // runs, stay as they were; the logits agree either way, to rounding.
        let output = match (self.head.pooling(), train) {
            (Pooling::Cls, false) => Output::First,
            _ => self.head.encoder_output(),
        };
        let hidden = self.encoder.forward_output_t(batch, train, output)?;
        Ok(self.head.forward_t(&hidden, &batch.attention_mask, batch.targets.as_ref(), train)?)
    }

    /// Label probabilities (or, with `log`, their logarithms) of every encoded
    /// pair, in input order, over length-sorted batches without dropout.
    pub fn probabilities(
        &self,
        encoded: &[Encoded],
        (batch_size, pad_id): (usize, u32),
        device: &candle_core::Device,
        log: bool,
    ) -> Result<Vec<Vec<f32>>> {
        run_sorted(encoded, batch_size, pad_id, device, |batch| {
            let logits = self.forward_t(batch, false)?;
            let normalised = if log { candle_nn::ops::log_softmax(&logits, D::Minus1) } else { softmax(&logits) };
            Ok(normalised?)
        })
    }
}

fn softmax(logits: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::softmax(logits, D::Minus1)
}

/// A layer the file holds that `config.json` does not count would be left out
/// without a word (int8 refuses it at load): a config that does not fit its weights.
pub(crate) fn check_layer_count(config: &EncoderConfig, params: &ParamStore, file: &std::path::Path) -> Result<()> {
    let layer_of = |name: &str| name.split("encoder.layer.").nth(1)?.split('.').next()?.parse::<usize>().ok();
    let layers = config.num_hidden_layers;
    let extra = params.checkpoint_names().into_iter().find(|name| layer_of(name).is_some_and(|n| n >= layers));
    match extra {
        Some(name) => Err(Error::Model(format!(
            "{}: tensor `{name}` belongs to a layer past the {layers} that config.json's num_hidden_layers counts",
            file.display()
        ))),
        None => Ok(()),
    }
}

/// Errors while building a model come from the checkpoint not fitting the config.
pub(crate) fn model_error(e: candle_core::Error) -> Error {
    Error::Model(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{params_for, tiny_config, tiny_mpnet_config, tiny_mpnet_tokenizer_json, tiny_tokenizer};
    use crate::tokenization::StanceTokenizer;
    use candle_core::{Device, Var};

    fn tokenizer(family: Family) -> StanceTokenizer {
        let base = match family {
            Family::Bert => tiny_tokenizer(),
            Family::MPNet => tiny_mpnet_tokenizer_json().parse().unwrap(),
        };
        StanceTokenizer::new(base, 32).unwrap()
    }

    fn batch_of(family: Family) -> Batch {
        let tok = tokenizer(family);
        let pairs = [("ukraine joining nato", "nato is for peace"), ("europe pay more", "europe will never pay")];
        Batch::from_encoded(&tok.encode_pairs(&pairs).unwrap(), tok.pad_id(), &Device::Cpu).unwrap()
    }

    fn batch() -> Batch {
        batch_of(Family::Bert)
    }

    fn loss(model: &StanceModel, batch: &Batch) -> Tensor {
        let logits = model.forward_t(batch, false).unwrap();
        let labels = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        candle_nn::loss::cross_entropy(&logits, &labels).unwrap()
    }

    fn config_of(family: Family) -> EncoderConfig {
        match family {
            Family::Bert => tiny_config(),
            Family::MPNet => tiny_mpnet_config(),
        }
    }

    fn tiny_model_of(family: Family, pooling: Pooling) -> StanceModel {
        // A larger init than BERT's 0.02 so that every path carries a visible signal.
        let mut config = config_of(family);
        config.initializer_range = 0.5;
        StanceModel::new(&config, &params_for(&config_of(family), 5), pooling, 3, 0).unwrap()
    }

    fn tiny_model(pooling: Pooling) -> StanceModel {
        tiny_model_of(Family::Bert, pooling)
    }

    /// candle #3011: a fused layer norm silently leaves the encoder without gradient.
    #[test]
    fn every_parameter_gets_a_gradient() {
        // Per layer 16 tensors in both; embeddings 5 (BERT) or 4 + the relative-position table (MPNet).
        for (family, encoder) in [(Family::Bert, 2 * 16 + 5), (Family::MPNet, 2 * 16 + 4 + 1)] {
            for pooling in [Pooling::Cls, Pooling::Mean] {
                let model = tiny_model_of(family, pooling);
                let grads = loss(&model, &batch_of(family)).backward().unwrap();
                let vars = model.params.vars();
                assert_eq!(vars.len(), encoder + 2 + if pooling == Pooling::Cls { 2 } else { 0 }, "{family:?}");
                for (name, var) in vars {
                    let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient"));
                    let max = grad.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                    assert!(max > 0.0, "{name}: zero gradient");
                }
            }
        }
    }

    #[test]
    fn mpnet_autograd_agrees_with_finite_differences() {
        let model = tiny_model_of(Family::MPNet, Pooling::Cls);
        let probes = [
            ("mpnet.encoder.relative_attention_bias.weight", 2 * 17 + 1),
            ("mpnet.encoder.relative_attention_bias.weight", 2 * 3),
            ("mpnet.embeddings.position_embeddings.weight", 16 * 3 + 4),
            ("mpnet.encoder.layer.0.attention.attn.q.weight", 17),
            ("mpnet.encoder.layer.1.attention.LayerNorm.bias", 2),
            ("classifier.dense.bias", 5),
            ("classifier.out_proj.weight", 20),
        ];
        finite_differences(&model, &batch_of(Family::MPNet), &probes);
    }

    fn bump(var: &Var, index: usize, delta: f32) {
        let mut values = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        values[index] += delta;
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap()).unwrap();
    }

    #[test]
    fn autograd_agrees_with_finite_differences() {
        let probes = [
            ("bert.embeddings.LayerNorm.weight", 3),
            ("bert.encoder.layer.0.attention.self.query.weight", 17),
            ("bert.encoder.layer.1.intermediate.dense.weight", 40),
            ("bert.embeddings.word_embeddings.weight", 16 * 7 + 2),
            ("bert.pooler.dense.bias", 5),
            ("classifier.weight", 20),
        ];
        finite_differences(&tiny_model(Pooling::Cls), &batch(), &probes);
    }

    fn finite_differences(model: &StanceModel, batch: &Batch, probes: &[(&str, usize)]) {
        let grads = loss(model, batch).backward().unwrap();
        let vars: std::collections::BTreeMap<String, Var> = model.params.vars().into_iter().collect();
        let eps = 1e-2;
        for &(name, index) in probes {
            let var = &vars[name];
            let analytic = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()[index];
            bump(var, index, eps);
            let up = loss(model, batch).to_scalar::<f32>().unwrap();
            bump(var, index, -2.0 * eps);
            let down = loss(model, batch).to_scalar::<f32>().unwrap();
            bump(var, index, eps);
            let numeric = (up - down) / (2.0 * eps);
            let tolerance = 2e-3 + 0.02 * analytic.abs();
            assert!(
                (numeric - analytic).abs() < tolerance,
                "{name}[{index}]: autograd {analytic}, finite difference {numeric}"
            );
        }
    }

    #[test]
    fn the_first_row_alone_matches_the_full_last_layer() {
        for family in [Family::Bert, Family::MPNet] {
            let model = tiny_model_of(family, Pooling::Cls);
            let batch = batch_of(family);
            let full = model.encoder.forward_t(&batch, false).unwrap().narrow(1, 0, 1).unwrap();
            let first = model.encoder.forward_output_t(&batch, false, Output::First).unwrap();
            assert_eq!(first.dims(), full.dims());
            let diff = (first - full).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "{family:?}: max |diff| {diff}");
        }
    }

    /// `Output::Layers(2)` is the last layer, then the one before it: the second
    /// block equals what the same weights give with the top layer cut off.
    /// A per-target head over it normalises each block on its own, and a model
    /// cannot ask for more layers than it has.
    #[test]
    fn the_last_layers_come_last_first_and_are_normalised_apart() {
        for family in [Family::Bert, Family::MPNet] {
            let config = config_of(family);
            let params = params_for(&config, 5);
            let shape =
                HeadShape { pooling: Pooling::Mean, kind: HeadKind::PerTarget, labels: 3, targets: 2, layers: 2 };
            let model = StanceModel::with_head(&config, &params, shape, 0).unwrap();
            let cut = EncoderConfig { num_hidden_layers: 1, ..config.clone() };
            // A store of its own (the same seed, the same encoder weights): the head above lives in `params`.
            let lower = StanceModel::new(&cut, &params_for(&config, 5), Pooling::Mean, 3, 0).unwrap();
            let batch = batch_of(family);
            let both = model.encoder.forward_output_t(&batch, false, Output::Layers(2)).unwrap();
            let h = config.hidden_size;
            let values = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(values(both.narrow(2, 0, h).unwrap()), values(model.encoder.forward_t(&batch, false).unwrap()));
            assert_eq!(values(both.narrow(2, h, h).unwrap()), values(lower.encoder.forward_t(&batch, false).unwrap()));
            let pooled = model.head.pool(&both, &batch.attention_mask).unwrap().to_vec2::<f32>().unwrap();
            for row in pooled {
                for block in row.chunks(h) {
                    let norm = block.iter().map(|v| v * v).sum::<f32>().sqrt();
                    assert!((norm - 1.0).abs() < 1e-5, "{family:?}: block norm {norm}");
                }
            }
            let shape = HeadShape { layers: 3, ..shape };
            let err = StanceModel::with_head(&config, &params, shape, 0).err().unwrap().to_string();
            assert!(err.contains("the last 3 layers, but the encoder has 2"), "{err}");
            let err = StanceModel::with_head(&config, &params, HeadShape { layers: 0, ..shape }, 0).err().unwrap();
            assert!(err.to_string().contains("at least one layer"), "{err}");
        }
    }

    #[test]
    fn dropout_changes_training_outputs_only() {
        let model = tiny_model(Pooling::Cls);
        let batch = batch();
        let eval = |m: &StanceModel| m.forward_t(&batch, false).unwrap().to_vec2::<f32>().unwrap();
        let train = |m: &StanceModel| m.forward_t(&batch, true).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(eval(&model), eval(&model));
        assert_ne!(train(&model), eval(&model));
        assert_ne!(train(&model), train(&model), "successive masks must differ");
    }
}

#[cfg(test)]
pub(crate) mod golden_mpnet_tests;
#[cfg(test)]
pub(crate) mod golden_tests;
