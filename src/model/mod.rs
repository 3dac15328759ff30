//! The stance model: a BERT encoder reading (target description, sentence) and a
//! classification head over the label set.

mod bert;
mod classifier;
mod config;
mod fast_ops;
pub mod fused;
mod head;
pub mod ops;
pub(crate) mod simd;
mod weights;

pub use bert::{mean_pool, Bert};
pub use classifier::{Classifier, StanceSpec};
pub use config::BertConfig;
pub use head::{Head, Pooling};
pub use ops::DropoutRng;
pub use weights::ParamStore;

use candle_core::Tensor;

use crate::tokenization::Batch;
use crate::{Error, Result};

/// Encoder + head, with the store that owns their trainable parameters.
pub struct StanceModel {
    pub bert: Bert,
    pub head: Head,
    pub params: ParamStore,
    pub dropout_rng: DropoutRng,
}

impl StanceModel {
    /// Builds the model over `params`: encoder tensors must be in the checkpoint,
    /// head tensors are initialised when it lacks them (a base encoder).
    pub fn new(config: &BertConfig, params: &ParamStore, pooling: Pooling, labels: usize, seed: u64) -> Result<Self> {
        let dropout_rng = DropoutRng::new(seed);
        let bert = Bert::load(params.strict().pp("bert"), config, &dropout_rng).map_err(model_error)?;
        let classifier_dropout =
            config.extra.get("classifier_dropout").and_then(|v| v.as_f64()).unwrap_or(config.hidden_dropout_prob);
        let dropout = ops::Dropout::new(classifier_dropout, &dropout_rng);
        let head = Head::load(params.lenient(config.initializer_range), pooling, config.hidden_size, labels, dropout)
            .map_err(model_error)?;
        Ok(Self { bert, head, params: params.clone(), dropout_rng })
    }

    /// Logits over the labels, [batch, labels].
    pub fn forward_t(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        // Training keeps the full last layer so that its dropout draws, and so
        // runs, stay as they were; the logits agree either way, to rounding.
        let hidden = match (self.head.pooling(), train) {
            (Pooling::Cls, false) => self.bert.forward_first_t(batch, train)?,
            _ => self.bert.forward_t(batch, train)?,
        };
        Ok(self.head.forward_t(&hidden, &batch.attention_mask, train)?)
    }
}

/// Errors while building a model come from the checkpoint not fitting the config.
pub(crate) fn model_error(e: candle_core::Error) -> Error {
    Error::Model(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{tiny_config, tiny_params, tiny_tokenizer};
    use crate::tokenization::StanceTokenizer;
    use candle_core::{Device, Var};

    fn batch() -> Batch {
        let tok = StanceTokenizer::new(tiny_tokenizer(), 32).unwrap();
        let pairs = [("ukraine joining nato", "nato is for peace"), ("europe pay more", "europe will never pay")];
        Batch::from_encoded(&tok.encode_pairs(&pairs).unwrap(), tok.pad_id(), &Device::Cpu).unwrap()
    }

    fn loss(model: &StanceModel, batch: &Batch) -> Tensor {
        let logits = model.forward_t(batch, false).unwrap();
        let labels = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        candle_nn::loss::cross_entropy(&logits, &labels).unwrap()
    }

    fn tiny_model(pooling: Pooling) -> StanceModel {
        // A larger init than BERT's 0.02 so that every path carries a visible signal.
        let mut config = tiny_config();
        config.initializer_range = 0.5;
        StanceModel::new(&config, &tiny_params(5), pooling, 3, 0).unwrap()
    }

    /// candle #3011: a fused layer norm silently leaves the encoder without gradient.
    #[test]
    fn every_parameter_gets_a_gradient() {
        for pooling in [Pooling::Cls, Pooling::Mean] {
            let model = tiny_model(pooling);
            let grads = loss(&model, &batch()).backward().unwrap();
            let vars = model.params.vars();
            assert_eq!(vars.len(), 2 * 16 + 5 + 2 + if pooling == Pooling::Cls { 2 } else { 0 });
            for (name, var) in vars {
                let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient"));
                let max = grad.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(max > 0.0, "{name}: zero gradient");
            }
        }
    }

    fn bump(var: &Var, index: usize, delta: f32) {
        let mut values = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        values[index] += delta;
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap()).unwrap();
    }

    #[test]
    fn autograd_agrees_with_finite_differences() {
        let model = tiny_model(Pooling::Cls);
        let batch = batch();
        let grads = loss(&model, &batch).backward().unwrap();
        let vars: std::collections::BTreeMap<String, Var> = model.params.vars().into_iter().collect();
        let probes = [
            ("bert.embeddings.LayerNorm.weight", 3),
            ("bert.encoder.layer.0.attention.self.query.weight", 17),
            ("bert.encoder.layer.1.intermediate.dense.weight", 40),
            ("bert.embeddings.word_embeddings.weight", 16 * 7 + 2),
            ("bert.pooler.dense.bias", 5),
            ("classifier.weight", 20),
        ];
        let eps = 1e-2;
        for (name, index) in probes {
            let var = &vars[name];
            let analytic = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()[index];
            bump(var, index, eps);
            let up = loss(&model, &batch).to_scalar::<f32>().unwrap();
            bump(var, index, -2.0 * eps);
            let down = loss(&model, &batch).to_scalar::<f32>().unwrap();
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
        let model = tiny_model(Pooling::Cls);
        let batch = batch();
        let full = model.bert.forward_t(&batch, false).unwrap().narrow(1, 0, 1).unwrap();
        let first = model.bert.forward_first_t(&batch, false).unwrap();
        assert_eq!(first.dims(), full.dims());
        let diff = (first - full).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "max |diff| {diff}");
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
mod golden_tests;
