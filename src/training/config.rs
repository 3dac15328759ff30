//! `stancekit train`'s configuration: the clap flags, the TOML of `--config`, and
//! the `train_config.json` saved in the run folder are one struct. Names follow
//! transformers' `TrainingArguments` where one exists.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::schedule::SchedulerType;
use crate::model::{Pooling, Precision};
use crate::tokenization::MIN_MAX_LENGTH;
use crate::{Error, Result};

/// What decides the best checkpoint and early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BestMetric {
    /// Mean F1 of the stance labels (SemEval's F_avg).
    FAvg,
    MacroF1,
    Accuracy,
    /// Dev loss (lower is better).
    Loss,
}

/// When to evaluate on the dev set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EvalStrategy {
    /// Never: no dev data is read and the model after the last step is kept
    /// (a fixed number of epochs, as transformers' `eval_strategy="no"`).
    No,
    Epoch,
    /// Every `--eval-steps` optimizer steps.
    Steps,
}

/// Configuration of `stancekit train`.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Base model: a folder or a Hugging Face hub id.
    #[arg(long, default_value = crate::resolve::DEFAULT_MODEL)]
    pub model: String,
    /// Training data (any format `stancekit data check` reads; TweetEval folders take a `:train` suffix).
    #[arg(long, num_args = 1.., default_value = "datasets/train.jsonl")]
    pub train: Vec<String>,
    /// Dev data for evaluation and model selection.
    #[arg(long, num_args = 1.., default_value = "datasets/dev.jsonl", conflicts_with = "dev_split")]
    pub dev: Vec<String>,
    /// Hold out this share of the training sentences as dev data instead of `--dev`.
    #[arg(long)]
    pub dev_split: Option<f64>,
    /// Label set and target descriptions.
    #[arg(long, default_value = "datasets/targets.json")]
    pub targets: PathBuf,
    /// The run folder to write.
    #[arg(long, default_value = "runs/default")]
    pub out: PathBuf,
    /// Peak learning rate of the encoder.
    // 1e-4, not BERT-base's usual 5e-5: the small MiniLM encoder learned too slowly at
    // 5e-5 (dev F_avg 40.6 after 5 epochs against 70.0 at 1e-4; see the README).
    #[arg(long, default_value_t = 1e-4)]
    pub learning_rate: f64,
    /// Peak learning rate of the head (pooler and classifier); default: `--learning-rate`.
    #[arg(long)]
    pub head_learning_rate: Option<f64>,
    /// Layer-wise learning-rate decay: the head keeps its rate, the top encoder
    /// layer gets the encoder's rate × this, each layer below one factor more,
    /// the embeddings the smallest (1 turns it off).
    #[arg(long, default_value_t = 1.0)]
    pub layer_lr_decay: f64,
    #[arg(long, default_value_t = 6)]
    pub num_train_epochs: usize,
    #[arg(long, default_value_t = 16)]
    pub per_device_train_batch_size: usize,
    #[arg(long, default_value_t = 64)]
    pub per_device_eval_batch_size: usize,
    /// Micro-batches whose gradients are summed before one optimizer step.
    #[arg(long, default_value_t = 1)]
    pub gradient_accumulation_steps: usize,
    /// Share of the optimizer steps spent warming the learning rate up from 0.
    #[arg(long, default_value_t = 0.1)]
    pub warmup_ratio: f64,
    /// Decoupled weight decay, applied to weight matrices only (not biases or layer norms).
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0 turns clipping off).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    #[arg(long, value_enum, default_value_t = SchedulerType::Linear)]
    pub lr_scheduler_type: SchedulerType,
    #[arg(long, default_value_t = 0.9)]
    pub adam_beta1: f64,
    #[arg(long, default_value_t = 0.999)]
    pub adam_beta2: f64,
    #[arg(long, default_value_t = 1e-8)]
    pub adam_epsilon: f64,
    /// Seeds the head's initialisation, the data order and dropout.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Keep the encoder as it is: it embeds each training sentence once (alone,
    /// mean-pooled and normalised, as sentence-transformers does), and each target
    /// gets a logistic-regression classifier over that embedding, fitted in
    /// seconds (learning-rate, epoch and batch flags do not apply; class weights
    /// default to balanced).
    #[arg(long)]
    pub freeze_encoder: bool,
    /// With --freeze-encoder: the arithmetic of its one pass over the training
    /// sentences; int8 (CPU) trained about twice as fast on large sets, measured
    /// on a VNNI CPU (see the README). Fine-tuning always trains in f32.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    #[serde(default)]
    pub precision: Precision,
    /// With --freeze-encoder: how many of the encoder's last layers the
    /// classifiers read: each layer's mean pool over the sentence, normalised,
    /// then concatenated, the last layer first (1: the sentence embedding alone).
    #[arg(long, default_value_t = 1)]
    #[serde(default = "crate::model::one_layer")]
    pub feature_layers: usize,
    /// Inverse L2 strength of the frozen-encoder classifiers (scikit-learn's `C`).
    #[arg(long, default_value_t = 1.0)]
    pub head_c: f64,
    /// `balanced` (n / (k · count)), or one weight per label in label order, comma-separated.
    #[arg(long)]
    pub class_weights: Option<String>,
    /// Label smoothing ε of the cross-entropy.
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing_factor: f64,
    #[arg(long, value_enum, default_value_t = EvalStrategy::Epoch)]
    pub eval_strategy: EvalStrategy,
    /// Once trained, divide the selected model's logits by one temperature
    /// fitted on the dev data (temperature scaling), so that its probabilities
    /// match how often it is right; labels do not change. `false` keeps the
    /// logits as trained. Needs dev data.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub calibrate: bool,
    /// Optimizer steps between evaluations with `--eval-strategy steps`.
    #[arg(long, default_value_t = 100)]
    pub eval_steps: usize,
    #[arg(long, value_enum, default_value_t = BestMetric::FAvg)]
    pub metric_for_best_model: BestMetric,
    /// Stop after this many evaluations without improvement.
    #[arg(long)]
    pub early_stopping_patience: Option<usize>,
    /// Token limit of a (target, sentence) pair; only the sentence is truncated.
    #[arg(long, default_value_t = 128)]
    pub max_length: usize,
    /// `mean` (the default) is how all-MiniLM-L6-v2 was pre-trained to pool; `cls` gives
    /// transformers' own `BertForSequenceClassification` head, which transformers reproduces.
    #[arg(long, value_enum, default_value_t = Pooling::Mean)]
    pub pooling: Pooling,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Replace an existing run folder.
    #[arg(long)]
    #[serde(skip)]
    pub overwrite: bool,
    /// No progress bars or summary table on stderr.
    #[arg(long)]
    #[serde(skip)]
    pub quiet: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: TrainConfig,
        }
        Wrapper::parse_from(["stancekit"]).config
    }
}

impl TrainConfig {
    /// Reads a TOML file whose keys are the flag names with underscores.
    pub fn from_toml(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bad = |e: String| Error::Other(format!("{}: {e}", path.display()));
        let table: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        // As on the command line, where the two flags conflict.
        if table.contains_key("dev") && table.contains_key("dev_split") {
            return Err(bad("`dev` and `dev_split` both given: dev data comes from one or the other".into()));
        }
        toml::from_str(&text).map_err(|e| bad(e.to_string()))
    }

    /// Reads a saved `train_config.json`.
    pub fn from_json(path: &Path) -> Result<Self> {
        crate::io::read_json(path)
    }

    /// Every file or folder the run reads (data, targets, base model), as
    /// paths; a split suffix (`TE:train`) is cut off.
    pub fn input_paths(&self) -> Vec<PathBuf> {
        let data = self.train.iter().chain(self.dev_files()).map(|p| crate::data::Input::parse(p).path);
        data.chain([self.targets.clone(), PathBuf::from(&self.model)]).collect()
    }

    /// Reads each relative path that the current folder lacks as from
    /// `from`, the folder the run started in, so that `--resume` finds its
    /// data from any folder; a path found here (a project moved, or reached
    /// by another mount) is kept. A model that is no folder in either place
    /// is a hub id and stays as it is.
    pub fn rebase(&mut self, from: &Path) {
        let found = |arg: &str| crate::data::Input::parse(arg).path.exists();
        let at = |arg: &String| {
            let moved = from.join(arg).to_string_lossy().into_owned();
            match Path::new(arg).is_relative() && !found(arg) && found(&moved) {
                true => moved,
                false => arg.clone(),
            }
        };
        self.train = self.train.iter().map(at).collect();
        self.dev = self.dev.iter().map(at).collect();
        self.targets = PathBuf::from(at(&self.targets.to_string_lossy().into_owned()));
        self.model = at(&self.model);
    }

    /// The `--dev` files that training reads: none with `--dev-split` or
    /// `--eval-strategy no`.
    pub fn dev_files(&self) -> &[String] {
        if self.dev_split.is_some() || self.eval_strategy == EvalStrategy::No {
            &[]
        } else {
            &self.dev
        }
    }

    /// The settings as `train_config.json` keeps them: `dev` lists only the
    /// files training reads, not `--dev`'s default beside `--dev-split`.
    pub fn as_saved(&self) -> Self {
        Self { dev: self.dev_files().to_vec(), ..self.clone() }
    }

    pub fn head_lr(&self) -> f64 {
        self.head_learning_rate.unwrap_or(self.learning_rate)
    }

    /// Checks what clap cannot: values that would make training meaningless.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Other(msg));
        if self.per_device_train_batch_size == 0 || self.gradient_accumulation_steps == 0 {
            return bad("batch size and gradient accumulation steps must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad(format!("--warmup-ratio {} must be in [0, 1)", self.warmup_ratio));
        }
        if let Some(share) = self.dev_split {
            if !(share > 0.0 && share < 1.0) {
                return bad(format!("--dev-split {share} must be in (0, 1)"));
            }
        }
        if !(0.0..1.0).contains(&self.label_smoothing_factor) {
            return bad(format!("--label-smoothing-factor {} must be in [0, 1)", self.label_smoothing_factor));
        }
        if self.eval_strategy == EvalStrategy::No && self.early_stopping_patience.is_some() {
            return bad("--early-stopping-patience needs evaluations: not with --eval-strategy no".into());
        }
        if !(self.layer_lr_decay > 0.0 && self.layer_lr_decay <= 1.0) {
            return bad(format!("--layer-lr-decay {} must be in (0, 1]", self.layer_lr_decay));
        }
        if self.freeze_encoder && self.pooling != Pooling::Mean {
            return bad("--freeze-encoder reads the mean-pooled sentence embedding: not with --pooling cls".into());
        }
        if self.precision == Precision::Int8 && !self.freeze_encoder {
            return bad("--precision int8 applies to --freeze-encoder's pass; fine-tuning trains in f32".into());
        }
        if self.feature_layers == 0 {
            return bad("--feature-layers must be at least 1".into());
        }
        if self.feature_layers > 1 && !self.freeze_encoder {
            return bad(
                "--feature-layers applies to --freeze-encoder's classifiers; fine-tuning reads the last layer".into()
            );
        }
        if self.head_c != 1.0 && !self.freeze_encoder {
            return bad("--head-c applies to --freeze-encoder's classifiers; fine-tuning has no C".into());
        }
        if self.dev_split.is_some() && self.eval_strategy == EvalStrategy::No {
            return bad("--dev-split holds out dev data for evaluations: not with --eval-strategy no".into());
        }
        // Far outside this the fit's 1/(C·n) over- or underflows and L-BFGS works on NaN.
        if !(1e-6..=1e6).contains(&self.head_c) {
            return bad(format!("--head-c {:e} must be between 1e-6 and 1e6", self.head_c));
        }
        self.validate_numbers()
    }

    /// The optimiser's numbers (NaN fails every comparison here, so it is caught).
    fn validate_numbers(&self) -> Result<()> {
        let positive = |x: f64| x > 0.0 && x.is_finite();
        let checks = [
            (positive(self.learning_rate) && positive(self.head_lr()), "learning rates must be positive numbers"),
            (self.weight_decay >= 0.0 && self.weight_decay.is_finite(), "--weight-decay must be 0 or more"),
            (self.max_grad_norm >= 0.0 && self.max_grad_norm.is_finite(), "--max-grad-norm must be 0 (off) or more"),
            ((0.0..1.0).contains(&self.adam_beta1), "--adam-beta1 must be in [0, 1)"),
            ((0.0..1.0).contains(&self.adam_beta2), "--adam-beta2 must be in [0, 1)"),
            (positive(self.adam_epsilon), "--adam-epsilon must be a positive number"),
            (self.num_train_epochs > 0, "--num-train-epochs must be at least 1"),
            (self.per_device_eval_batch_size > 0, "--per-device-eval-batch-size must be at least 1"),
            (self.eval_steps > 0, "--eval-steps must be at least 1"),
            (
                self.max_length >= MIN_MAX_LENGTH,
                "--max-length must be at least 5 tokens: the special tokens and a word",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(Error::Other((*message).into())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_between_clap_and_serde() {
        let from_toml: TrainConfig = toml::from_str("").unwrap();
        assert_eq!(from_toml, TrainConfig::default());
        assert_eq!((from_toml.learning_rate, from_toml.pooling), (1e-4, Pooling::Mean));
        assert_eq!(from_toml.train, vec!["datasets/train.jsonl".to_string()]);
    }

    #[test]
    fn rebase_reads_relative_paths_from_the_starting_folder() {
        // Tests run in the crate's folder: `src` is found here, the others only in `from`.
        let from = tempfile::tempdir().unwrap();
        for dir in ["base", "data", "te"] {
            std::fs::create_dir(from.path().join(dir)).unwrap();
        }
        for file in ["data/train.jsonl", "data/dev.jsonl", "data/targets.json"] {
            std::fs::write(from.path().join(file), "").unwrap();
        }
        let mut config = TrainConfig {
            model: "base".into(),
            train: vec!["data/train.jsonl".into(), "/abs/te:train".into(), "te:train".into(), "src".into()],
            dev: vec!["data/dev.jsonl".into()],
            targets: "data/targets.json".into(),
            ..TrainConfig::default()
        };
        config.rebase(from.path());
        let at = |p: &str| from.path().join(p).to_string_lossy().into_owned();
        let kept = "src".to_string();
        assert_eq!(
            config.train,
            [at("data/train.jsonl"), "/abs/te:train".into(), at("te:train"), kept],
            "found here: kept"
        );
        assert_eq!(
            (config.dev[0].clone(), config.targets.clone()),
            (at("data/dev.jsonl"), from.path().join("data/targets.json"))
        );
        assert_eq!(config.model, at("base"));
        assert_eq!(
            crate::data::Input::parse(&config.train[2]).path,
            from.path().join("te"),
            "the split suffix is kept"
        );
        let mut hub = TrainConfig { model: "sentence-transformers/all-MiniLM-L6-v2".into(), ..TrainConfig::default() };
        hub.rebase(from.path());
        assert_eq!(hub.model, "sentence-transformers/all-MiniLM-L6-v2", "a hub id is no path");
    }

    #[test]
    fn toml_refuses_dev_data_from_two_places() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, "dev = [\"d.jsonl\"]\ndev_split = 0.2\n").unwrap();
        let err = TrainConfig::from_toml(&path).unwrap_err().to_string();
        assert!(err.contains("`dev` and `dev_split` both given"), "{err}");
    }

    #[test]
    fn toml_sets_fields_and_rejects_typos() {
        let c: TrainConfig = toml::from_str("learning_rate = 3e-5\nnum_train_epochs = 2\npooling = \"mean\"").unwrap();
        assert_eq!((c.learning_rate, c.num_train_epochs, c.pooling), (3e-5, 2, Pooling::Mean));
        let err = toml::from_str::<TrainConfig>("learning_rat = 1.0").unwrap_err().to_string();
        assert!(err.contains("learning_rat"), "{err}");
    }

    #[test]
    fn json_round_trip() {
        let c = TrainConfig { seed: 7, class_weights: Some("balanced".into()), ..Default::default() };
        let back: TrainConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
