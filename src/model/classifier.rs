//! A stance classifier as one unit: encoder + head + tokenizer + label set +
//! target descriptions. Saved as a folder that transformers loads as
//! `BertForSequenceClassification` (`config.json` with `id2label`, weights under
//! `bert.*`/`classifier.*`, the base model's tokenizer files), with stancekit's
//! own settings in a `stancekit` section of `config.json`.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::{
    Arithmetic, EncoderConfig, Head, HeadKind, HeadShape, Int8Plan, ParamStore, Pooling, Precision, StanceModel,
};
use crate::resolve::ModelDir;
use crate::tokenization::{Encoded, StanceTokenizer};
use crate::{Error, Result};

/// Tokenizer files transformers' `AutoTokenizer` reads, copied from the base model.
const TOKENIZER_FILES: [&str; 4] = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"];

/// What stancekit needs beyond a BERT config: the `stancekit` section of `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StanceSpec {
    /// Label names in logit order.
    pub labels: Vec<String>,
    /// Target id → the description the model reads as the pair's first text.
    pub targets: BTreeMap<String, String>,
    pub pooling: Pooling,
    pub max_length: usize,
    /// One classifier over pairs (the default), or one per target over the sentence.
    #[serde(default, skip_serializing_if = "HeadKind::is_joint")]
    pub head: HeadKind,
    /// The last encoder layers a per-target head reads, their normalised mean
    /// pools concatenated (the last first); 1, the sentence embedding, when absent.
    #[serde(default = "one_layer", skip_serializing_if = "is_one_layer")]
    pub feature_layers: usize,
    /// The temperature fitted on held-out labels ([`Classifier::divide_logits`]),
    /// already folded into the output layer's weights: a record, not applied again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The labels F_avg leaves out, as the targets file named them; `none` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutral: Option<crate::data::Neutral>,
}

/// The serde default of a layer count: the last layer alone.
pub(crate) fn one_layer() -> usize {
    1
}

fn is_one_layer(layers: &usize) -> bool {
    *layers == 1
}

impl StanceSpec {
    /// The spec of a saved classifier, read from its `config.json` alone (no weights).
    pub fn read(dir: &ModelDir) -> Result<Self> {
        Self::of(dir, &EncoderConfig::load(&dir.config())?)
    }

    fn of(dir: &ModelDir, config: &EncoderConfig) -> Result<Self> {
        let Some(section) = config.extra.get("stancekit") else {
            return Err(Error::Model(format!(
                "{}: not a stancekit model (no `stancekit` section); train one with `stancekit train`",
                dir.path().display()
            )));
        };
        let bad = |e: String| Error::Model(format!("{}: bad `stancekit` section: {e}", dir.config().display()));
        let spec: Self = serde_json::from_value(section.clone()).map_err(|e| bad(e.to_string()))?;
        spec.check().map_err(bad)?;
        Ok(spec)
    }

    /// What serde lets through but no trained model has.
    fn check(&self) -> std::result::Result<(), String> {
        if let Some(label) = self.labels.iter().enumerate().find_map(|(i, l)| self.labels[..i].contains(l).then_some(l))
        {
            return Err(format!("label `{label}` is named twice"));
        }
        if self.labels.len() < 2 {
            return Err("fewer than two labels".into());
        }
        if self.max_length < crate::tokenization::MIN_MAX_LENGTH {
            return Err(format!("max_length {} leaves no room for a sentence", self.max_length));
        }
        if let Some(neutral) = self.neutral.iter().flat_map(|n| &n.0).find(|n| !self.labels.contains(n)) {
            return Err(format!("neutral label `{neutral}` is not one of the labels"));
        }
        match self.temperature {
            Some(t) if !(t > 0.0 && t.is_finite()) => Err(format!("temperature {t} must be a positive number")),
            _ => Ok(()),
        }
    }

    /// The head this spec describes.
    pub fn head_shape(&self) -> HeadShape {
        HeadShape {
            pooling: self.pooling,
            kind: self.head,
            labels: self.labels.len(),
            targets: self.targets.len(),
            layers: self.feature_layers,
        }
    }
}

/// Turns (target description, sentence) pairs into what the model reads: the
/// pair, or for a per-target head the sentence alone marked with its target.
/// It borrows the classifier's tokenizer, so tokenising can run on another
/// (scoped) thread without a copy of the vocabulary.
#[derive(Clone)]
pub struct PairEncoder<'a> {
    tokenizer: &'a StanceTokenizer,
    /// The per-target head's targets, by description, in block order.
    blocks: Option<Vec<&'a str>>,
}

impl PairEncoder<'_> {
    pub fn encode(&self, pairs: &[(&str, &str)]) -> Result<Vec<Encoded>> {
        let Some(blocks) = &self.blocks else { return self.tokenizer.encode_pairs(pairs) };
        let texts: Vec<&str> = pairs.iter().map(|p| p.1).collect();
        let mut encoded = self.tokenizer.encode_texts(&texts)?;
        for (e, (description, _)) in encoded.iter_mut().zip(pairs) {
            let block = blocks.iter().position(|b| b == description).ok_or_else(|| {
                Error::Model(format!(
                    "no classifier for the target described as {description:?}: this model (the frozen \
                     recipe, a classifier per target) scores only the targets it was trained on, and their \
                     descriptions; a new target is read zero-shot by a fine-tuned model"
                ))
            })?;
            e.target = Some(block as u32);
        }
        Ok(encoded)
    }
}

pub struct Classifier {
    pub model: StanceModel,
    pub tokenizer: StanceTokenizer,
    pub spec: StanceSpec,
    pub config: EncoderConfig,
    pub device: Device,
    /// The int8 kernel and layers of a classifier loaded in int8; `None` in f32.
    pub int8: Option<Int8Plan>,
}

impl Classifier {
    /// A new head on a base encoder (the start of fine-tuning); `seed` draws the head.
    pub fn from_base(dir: &ModelDir, spec: StanceSpec, device: &Device, seed: u64) -> Result<Self> {
        let config = EncoderConfig::load(&dir.config())?;
        let params = ParamStore::from_safetensors(&dir.weights(), device, seed)?;
        Self::build(dir, config, params, spec, device, seed)
    }

    /// A classifier saved by [`Classifier::save`].
    pub fn load(dir: &ModelDir, device: &Device) -> Result<Self> {
        Self::load_params(dir, device, None)
    }

    /// [`Classifier::load`] for inference only: the parameters are constants
    /// ([`ParamStore::frozen`]), so a forward pass holds one layer's activations
    /// at a time instead of the whole graph. Gradients cannot flow through it.
    pub fn load_frozen(dir: &ModelDir, device: &Device) -> Result<Self> {
        Self::load_params(dir, device, Some(Precision::F32.into()))
    }

    /// [`Classifier::load_frozen`] at a precision. With int8, the encoder's
    /// linear layers are quantized as the weights are read, for the kernel
    /// this CPU runs best, and run in int8 from then on. `Precision::Int8`
    /// alone keeps every input column in int8; the CLI's default adds
    /// [`Arithmetic::with_f32_columns_chosen_at_load`].
    pub fn load_inference(dir: &ModelDir, device: &Device, arithmetic: impl Into<Arithmetic>) -> Result<Self> {
        Self::load_params(dir, device, Some(arithmetic.into()))
    }

    /// `frozen`: `None` for a trainable model, else the precision of a frozen one.
    fn load_params(dir: &ModelDir, device: &Device, frozen: Option<Arithmetic>) -> Result<Self> {
        let config = EncoderConfig::load(&dir.config())?;
        let spec = StanceSpec::of(dir, &config)?;
        let (params, int8) = match frozen {
            None => (ParamStore::from_safetensors(&dir.weights(), device, 0)?, None),
            Some(arithmetic) => {
                super::int8::inference_params(&dir.weights(), device, arithmetic, config.num_hidden_layers)?
            }
        };
        // Every tensor, the head included, must come from the file: a trained model is never re-drawn.
        let mut classifier = Self::build(dir, config, params.clone(), spec, device, 0)?;
        if let Some(missing) = params.initialised().first() {
            return Err(Error::Model(format!("{}: missing tensor `{missing}`", dir.weights().display())));
        }
        if frozen.is_some() {
            params.release_checkpoint();
        }
        if let Some(plan) = int8 {
            // The encoder's linear layers take the weights quantized at load and run in int8 from now on.
            let model = &mut classifier.model;
            model
                .encoder
                .quantize(plan, &model.params)
                .map_err(|e| Error::Model(format!("{}: {e}", dir.weights().display())))?;
            let plan = super::choose_f32_columns(&mut model.encoder, &classifier.tokenizer, &dir.weights(), plan)?;
            classifier.int8 = Some(plan);
        }
        Ok(classifier)
    }

    fn build(
        dir: &ModelDir,
        config: EncoderConfig,
        params: ParamStore,
        spec: StanceSpec,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        super::check_layer_count(&config, &params, &dir.weights())?;
        let model = StanceModel::with_head(&config, &params, spec.head_shape(), seed)?;
        // A pair longer than the position table has no position to read: cut there, as `embed` does.
        let limit = spec.max_length.min(config.max_tokens());
        let tokenizer = StanceTokenizer::from_file(&dir.tokenizer(), limit)?;
        super::check_tokenizer(&tokenizer, &config, &dir.tokenizer())?;
        Ok(Self { model, tokenizer, spec, config, device: device.clone(), int8: None })
    }

    /// The same model over constants ([`ParamStore::frozen`]): what an
    /// evaluation during training runs, without a graph, on the fused kernels.
    pub fn inference_model(&self) -> Result<StanceModel> {
        if self.int8.is_some() {
            return Err(Error::Model("an int8 classifier runs as it is; it cannot be rebuilt in f32".into()));
        }
        let params = self.model.params.frozen();
        StanceModel::with_head(&self.config, &params, self.spec.head_shape(), 0)
    }

    /// What turns pairs into the model's input ([`PairEncoder`]).
    pub fn pair_encoder(&self) -> PairEncoder<'_> {
        let blocks =
            (self.spec.head == HeadKind::PerTarget).then(|| self.spec.targets.values().map(String::as_str).collect());
        PairEncoder { tokenizer: &self.tokenizer, blocks }
    }

    /// (target description, sentence) pairs as the model reads them.
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Encoded>> {
        self.pair_encoder().encode(pairs)
    }

    pub fn description(&self, target: &str) -> Option<&str> {
        self.spec.targets.get(target).map(String::as_str)
    }

    /// Label probabilities for (target description, sentence) pairs, in input order.
    pub fn predict_proba(&self, pairs: &[(&str, &str)], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        self.proba_encoded(&self.encode_pairs(pairs)?, batch_size)
    }

    /// [`Classifier::predict_proba`] for pairs already encoded by [`Classifier::pair_encoder`]
    /// (so that tokenising can run on another thread).
    pub fn proba_encoded(&self, encoded: &[Encoded], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        self.model.probabilities(encoded, (batch_size, self.tokenizer.pad_id()), &self.device, false)
    }

    /// Divides every logit by `temperature` from now on, by dividing the output
    /// layer's weights and bias by it, so that the saved folder gives the same
    /// probabilities in transformers. The label of every input stays the same.
    /// Needs a trainable classifier ([`Classifier::load`]).
    pub fn divide_logits(&mut self, temperature: f64) -> Result<()> {
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(Error::Model(format!("temperature {temperature} must be a positive number")));
        }
        let layer = Head::output_layer(self.config.family(), self.spec.pooling);
        let vars = self.model.params.vars();
        for name in [format!("{layer}.weight"), format!("{layer}.bias")] {
            let (_, var) = vars.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                Error::Model(format!("`{name}` is not a trainable parameter of this classifier; load it with `load`"))
            })?;
            var.set(&var.as_tensor().affine(1.0 / temperature, 0.0)?)?;
        }
        self.spec.temperature = Some(self.spec.temperature.unwrap_or(1.0) * temperature);
        Ok(())
    }

    /// Writes the classifier into `out` (which must exist), copying tokenizer files from `base`.
    pub fn save(&self, out: &Path, base: &Path) -> Result<()> {
        // Weights and config are written before either replaces its old self: a failure leaves
        // the run as it was, not new weights beside an old config (calibrate's temperature).
        let mut staged = crate::io::Staged::default();
        self.model.params.stage(&out.join("model.safetensors"), &mut staged)?;
        staged.json(&out.join("config.json"), &self.hf_config())?;
        staged.commit()?;
        for name in TOKENIZER_FILES {
            let (from, to) = (base.join(name), out.join(name));
            if from.is_file() && from != to {
                std::fs::copy(&from, &to).map_err(|e| Error::io(&to, e))?;
            }
        }
        Ok(())
    }

    /// `config.json` as transformers' `BertForSequenceClassification` (`MPNetFor…`) reads it.
    fn hf_config(&self) -> EncoderConfig {
        let mut config = self.config.clone();
        let labels = &self.spec.labels;
        let id2label: serde_json::Map<String, serde_json::Value> =
            labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone().into())).collect();
        let label2id: serde_json::Map<String, serde_json::Value> =
            labels.iter().enumerate().map(|(i, l)| (l.clone(), i.into())).collect();
        // Only a `[CLS]`/`<s>` head is a transformers class. A per-target head, or one linear
        // layer over the mean, is not (BERT's class runs its pooler, which such a run has not
        // got, MPNet's a two-layer head): the folder loads as the encoder, the head beside it.
        let family = config.family();
        let architecture = match (self.spec.head, self.spec.pooling) {
            (HeadKind::Joint, Pooling::Cls) => family.classifier_architecture(),
            _ => family.encoder_architecture(),
        };
        let extra = &mut config.extra;
        extra.insert("architectures".into(), serde_json::json!([architecture]));
        extra.insert("id2label".into(), id2label.into());
        extra.insert("label2id".into(), label2id.into());
        extra.insert("problem_type".into(), "single_label_classification".into());
        extra.insert("stancekit".into(), serde_json::to_value(&self.spec).expect("the spec serialises"));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::ModelDir;

    fn spec(pooling: Pooling) -> StanceSpec {
        StanceSpec {
            labels: ["favor", "against", "none"].map(String::from).to_vec(),
            targets: [("nato".to_string(), "ukraine joining nato".to_string())].into(),
            pooling,
            max_length: 32,
            head: Default::default(),
            feature_layers: 1,
            temperature: None,
            neutral: None,
        }
    }

    type WriteBase = fn(&Path, u64) -> crate::Result<()>;
    /// Each family, and the class transformers loads its `cls` and `mean` runs as.
    const FAMILIES: [(WriteBase, [&str; 2]); 2] = [
        (crate::testing::write_tiny_model, ["BertForSequenceClassification", "BertModel"]),
        (crate::testing::write_tiny_mpnet_model, ["MPNetForSequenceClassification", "MPNetModel"]),
    ];

    #[test]
    fn saved_classifier_reloads_with_identical_probabilities() {
        for (write_base, architectures) in FAMILIES {
            let base = tempfile::tempdir().unwrap();
            write_base(base.path(), 1).unwrap();
            let base_dir = ModelDir::open(base.path()).unwrap();
            let pairs = [("ukraine joining nato", "nato is for peace"), ("ukraine joining nato", "never")];
            for (pooling, architecture) in [Pooling::Cls, Pooling::Mean].into_iter().zip(architectures) {
                let c = Classifier::from_base(&base_dir, spec(pooling), &Device::Cpu, 4).unwrap();
                let before = c.predict_proba(&pairs, 2).unwrap();
                let out = tempfile::tempdir().unwrap();
                c.save(out.path(), base.path()).unwrap();
                let dir = ModelDir::open(out.path()).unwrap();
                let reloaded = Classifier::load(&dir, &Device::Cpu).unwrap();
                assert_eq!(reloaded.spec, spec(pooling));
                assert_eq!(reloaded.predict_proba(&pairs, 2).unwrap(), before);
                // Unpadded, and through the fused attention (inference holds constants, so
                // MPNet's position bias takes it there): the same to rounding.
                let frozen = Classifier::load_frozen(&dir, &Device::Cpu).unwrap();
                for other in [reloaded.predict_proba(&pairs, 1).unwrap(), frozen.predict_proba(&pairs, 2).unwrap()] {
                    let diff = other.iter().flatten().zip(before.iter().flatten()).map(|(a, b)| (a - b).abs());
                    assert!(diff.fold(0f32, f32::max) < 1e-6, "{architecture} {pooling:?}");
                }
                let config: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap()).unwrap();
                assert_eq!(config["architectures"][0], architecture);
                assert_eq!(config["id2label"]["1"], "against");
                assert_eq!(config["label2id"]["none"], 2);
            }
        }
    }

    /// A config counting fewer layers than the file holds: f32 would have run the first ones alone.
    #[test]
    fn a_layer_the_config_does_not_count_is_named() {
        for (write_base, _) in FAMILIES {
            let base = tempfile::tempdir().unwrap();
            write_base(base.path(), 1).unwrap();
            let path = base.path().join("config.json");
            let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            config["num_hidden_layers"] = 1.into();
            std::fs::write(&path, config.to_string()).unwrap();
            let dir = ModelDir::open(base.path()).unwrap();
            let err = Classifier::from_base(&dir, spec(Pooling::Mean), &Device::Cpu, 4).err().unwrap().to_string();
            assert!(err.contains("encoder.layer.1.") && err.contains("past the 1 that config.json"), "{err}");
            // `embed` builds the encoder alone, at either precision.
            for precision in [Precision::F32, Precision::Int8] {
                let embedder = crate::inference::embed::Embedder::load(&dir, &Device::Cpu, None, precision);
                let err = embedder.err().unwrap().to_string();
                let no_int8 = err.contains("needs a CPU with AVX2");
                assert!(err.contains("past the 1 that config.json") || no_int8, "{precision:?}: {err}");
            }
        }
    }

    #[test]
    fn dividing_the_logits_keeps_the_labels_and_survives_saving() {
        let pairs = [("ukraine joining nato", "nato is for peace"), ("ukraine joining nato", "never")];
        for (write_base, [architecture, _]) in FAMILIES {
            let base = tempfile::tempdir().unwrap();
            write_base(base.path(), 1).unwrap();
            let heads = [
                (Pooling::Cls, HeadKind::Joint),
                (Pooling::Mean, HeadKind::Joint),
                (Pooling::Mean, HeadKind::PerTarget),
            ];
            for (pooling, head) in heads {
                let spec = StanceSpec { head, ..spec(pooling) };
                let mut c =
                    Classifier::from_base(&ModelDir::open(base.path()).unwrap(), spec, &Device::Cpu, 4).unwrap();
                let before = c.predict_proba(&pairs, 2).unwrap();
                c.divide_logits(2.0).unwrap();
                c.divide_logits(1.5).unwrap();
                assert_eq!(c.spec.temperature, Some(3.0));
                let after = c.predict_proba(&pairs, 2).unwrap();
                for (b, a) in before.iter().zip(&after) {
                    // softmax(z / T) ∝ softmax(z)^(1/T)
                    let powered: Vec<f32> = b.iter().map(|p| p.powf(1.0 / 3.0)).collect();
                    let total: f32 = powered.iter().sum();
                    for (want, got) in powered.iter().zip(a) {
                        assert!((want / total - got).abs() < 1e-5, "{architecture} {pooling:?} {head:?}: {b:?} {a:?}");
                    }
                    assert_eq!(crate::kernels::argmax(b), crate::kernels::argmax(a));
                }
                let out = tempfile::tempdir().unwrap();
                c.save(out.path(), base.path()).unwrap();
                let reloaded = Classifier::load_frozen(&ModelDir::open(out.path()).unwrap(), &Device::Cpu).unwrap();
                assert_eq!(reloaded.spec.temperature, Some(3.0));
                let again = reloaded.predict_proba(&pairs, 2).unwrap();
                assert!(again.iter().flatten().zip(after.iter().flatten()).all(|(x, y)| (x - y).abs() < 1e-6));
            }
        }
        let base = tempfile::tempdir().unwrap();
        crate::testing::write_tiny_model(base.path(), 1).unwrap();
        let mut c =
            Classifier::from_base(&ModelDir::open(base.path()).unwrap(), spec(Pooling::Mean), &Device::Cpu, 4).unwrap();
        assert!(c.divide_logits(0.0).is_err() && c.divide_logits(f64::NAN).is_err());
    }

    #[test]
    fn a_tokenizer_of_another_family_is_refused() {
        let base = tempfile::tempdir().unwrap();
        crate::testing::write_tiny_mpnet_model(base.path(), 1).unwrap();
        std::fs::write(base.path().join("tokenizer.json"), crate::testing::tiny_tokenizer_json()).unwrap();
        let dir = ModelDir::open(base.path()).unwrap();
        let err = Classifier::from_base(&dir, spec(Pooling::Mean), &Device::Cpu, 4).err().unwrap().to_string();
        assert!(err.contains("tokenizer.json") && err.contains("<s>"), "{err}");
    }

    #[test]
    fn a_frozen_classifier_predicts_the_same_without_a_graph() {
        let base = tempfile::tempdir().unwrap();
        crate::testing::write_tiny_model(base.path(), 1).unwrap();
        let c =
            Classifier::from_base(&ModelDir::open(base.path()).unwrap(), spec(Pooling::Cls), &Device::Cpu, 4).unwrap();
        let out = tempfile::tempdir().unwrap();
        c.save(out.path(), base.path()).unwrap();
        let dir = ModelDir::open(out.path()).unwrap();
        let (trainable, frozen) =
            (Classifier::load(&dir, &Device::Cpu).unwrap(), Classifier::load_frozen(&dir, &Device::Cpu).unwrap());
        let pairs = [("ukraine joining nato", "nato is for peace"), ("ukraine joining nato", "never")];
        assert_eq!(frozen.predict_proba(&pairs, 2).unwrap(), trainable.predict_proba(&pairs, 2).unwrap());
        let tok = &frozen.tokenizer;
        let batch =
            crate::tokenization::Batch::from_encoded(&tok.encode_pairs(&pairs).unwrap(), tok.pad_id(), &Device::Cpu)
                .unwrap();
        assert!(!frozen.model.forward_t(&batch, false).unwrap().track_op());
        assert!(trainable.model.forward_t(&batch, false).unwrap().track_op());
    }

    #[test]
    fn a_base_model_is_not_a_classifier() {
        let base = tempfile::tempdir().unwrap();
        crate::testing::write_tiny_model(base.path(), 1).unwrap();
        let err = Classifier::load(&ModelDir::open(base.path()).unwrap(), &Device::Cpu).err().unwrap();
        assert!(err.to_string().contains("not a stancekit model"), "{err}");
    }

    /// A hand-edited `stancekit` section that no trained model has is refused
    /// by name at load, not met later as duplicate JSON keys or a broken softmax.
    #[test]
    fn a_spec_no_model_could_have_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        crate::testing::write_tiny_classifier(dir.path(), 2).unwrap();
        let config_path = dir.path().join("config.json");
        let original: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
        let edits = [
            ("labels", serde_json::json!(["favor", "favor", "none"]), "label `favor` is named twice"),
            ("temperature", serde_json::json!(0.0), "temperature 0 must be a positive number"),
            ("max_length", serde_json::json!(0), "max_length 0 leaves no room"),
            ("neutral", serde_json::json!("neither"), "neutral label `neither` is not one of the labels"),
        ];
        for (key, value, message) in edits {
            let mut config = original.clone();
            config["stancekit"][key] = value;
            std::fs::write(&config_path, config.to_string()).unwrap();
            let err = Classifier::load(&ModelDir::open(dir.path()).unwrap(), &Device::Cpu).err().unwrap().to_string();
            assert!(err.contains("bad `stancekit` section") && err.contains(message), "{key}: {err}");
        }
    }
}
