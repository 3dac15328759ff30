//! The fine-tuning loop: shuffled batches, AdamW with a schedule, evaluation,
//! best-model selection, early stopping and resumable checkpoints.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::{BestMetric, EvalStrategy, TrainConfig};
use super::head_fit;
use super::loss::cross_entropy;
use super::optim::{clip_coefficient, collect_grads, grad_norm, AdamW, AdamWConfig, Group};
use super::schedule::{lr_factor, warmup_steps};
use super::state::{EvalLog, TrainerState};
use crate::evaluation::{single_answer, Confusion, Scores};
use crate::inference::embed::Embedder;
use crate::model::{Arithmetic, Classifier, Family, Precision};
use crate::resolve::ModelDir;
use crate::tokenization::{Batch, Encoded};
use crate::{Error, Result};

/// A tokenised (target, sentence) pair with its label index.
#[derive(Debug, Clone)]
pub struct Example {
    pub encoded: Encoded,
    pub label: u32,
}

/// The folder layout of a run.
pub struct RunDir(pub PathBuf);

impl RunDir {
    pub fn checkpoint(&self) -> PathBuf {
        self.0.join("checkpoint-last")
    }

    /// Finishes a checkpoint swap that a kill cut short ([`Trainer::checkpoint`]):
    /// with `checkpoint-last` gone, the new one in `.tmp` is whole once its
    /// `trainer_state.json` (written last) is there, and the swap starts only
    /// then; it becomes `checkpoint-last`, else the previous one set aside as
    /// `.old` does. The first checkpoint, killed before its rename, has no `.old`.
    pub fn recover_checkpoint(&self) -> Result<()> {
        let (last, tmp, old) = (self.checkpoint(), self.new_checkpoint(), self.old_checkpoint());
        if last.exists() {
            return Ok(());
        }
        let newest = match (tmp.join("trainer_state.json").is_file(), old.exists()) {
            (true, _) => tmp,
            (false, true) => old,
            (false, false) => return Ok(()),
        };
        std::fs::rename(&newest, &last).map_err(|e| Error::io(&last, e))
    }
    /// Where a checkpoint is written before it replaces `checkpoint-last`.
    pub fn new_checkpoint(&self) -> PathBuf {
        self.0.join(".checkpoint-last.tmp")
    }

    /// Where the previous checkpoint waits while the new one takes its place.
    pub fn old_checkpoint(&self) -> PathBuf {
        self.0.join(".checkpoint-last.old")
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

/// How training ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished,
    EarlyStopped,
    /// Stopped on request (Ctrl-C); a checkpoint was saved.
    Interrupted,
}

pub struct Trainer {
    config: TrainConfig,
    classifier: Classifier,
    base: PathBuf,
    run: RunDir,
    train: Vec<Example>,
    dev: Vec<Example>,
    class_weights: Option<Tensor>,
    optimizer: AdamW,
    pub state: TrainerState,
    head_only: bool,
    /// The label the selected model answers for every dev example, if only one (this process's evaluations).
    pub best_single_answer: Option<String>,
}

/// Optimizer steps of a fine-tuning run over `examples` training pairs.
pub fn total_steps(config: &TrainConfig, examples: usize) -> usize {
    let per_epoch = examples.div_ceil(config.per_device_train_batch_size).div_ceil(config.gradient_accumulation_steps);
    per_epoch * config.num_train_epochs
}

impl Trainer {
    pub fn new(
        config: TrainConfig,
        classifier: Classifier,
        base: &Path,
        train: Vec<Example>,
        dev: Vec<Example>,
        class_weights: Option<Vec<f32>>,
    ) -> Result<Self> {
        let optimizer = build_optimizer(&config, &classifier)?;
        let class_weights = class_weights.map(|w| Tensor::new(w, &classifier.device)).transpose()?;
        let state = TrainerState {
            global_step: 0,
            total_steps: total_steps(&config, train.len()),
            epoch: 0,
            batch_in_epoch: 0,
            best_metric: None,
            best_step: None,
            evals_without_improvement: 0,
            log_history: Vec::new(),
            loss_sum: 0.0,
            loss_count: 0,
            dropout_rng: classifier.model.dropout_rng.state(),
            finished: false,
            training_data: Some(format!(
                "training {}; dev {}",
                super::state::data_fingerprint(&train),
                super::state::data_fingerprint(&dev)
            )),
            started_in: std::env::current_dir().ok(),
        };
        let run = RunDir(config.out.clone());
        let head_only = config.freeze_encoder;
        Ok(Self {
            config,
            classifier,
            base: base.to_path_buf(),
            run,
            train,
            dev,
            class_weights,
            optimizer,
            state,
            head_only,
            best_single_answer: None,
        })
    }

    /// Continues from `checkpoint-last`: optimizer moments, schedule position, RNG, counters.
    pub fn restore(&mut self) -> Result<()> {
        let dir = self.run.checkpoint();
        let saved = TrainerState::load(&dir.join("trainer_state.json"))?;
        let (then, now) = (&saved.training_data, &self.state.training_data);
        if saved.total_steps != self.state.total_steps || then.is_some() && then != now {
            let then = then.as_deref().unwrap_or("other data");
            let now = now.as_deref().unwrap_or_default();
            return Err(Error::Other(format!(
                "{}: the training or dev data changed since this run started ({then}; now {now}); --resume needs the same data",
                self.run.0.display()
            )));
        }
        self.state = saved;
        let file = dir.join("optimizer.safetensors");
        let moments = candle_core::safetensors::load(&file, &self.classifier.device)
            .map_err(|e| Error::Other(format!("{}: {e}", file.display())))?;
        self.optimizer.restore(&moments, self.state.global_step)?;
        self.classifier.model.dropout_rng.restore(self.state.dropout_rng.clone());
        Ok(())
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The dev examples that selected the model, the rest of the trainer dropped.
    pub fn into_dev(self) -> Vec<Example> {
        self.dev
    }

    /// Training examples processed since optimizer step `steps_before` (the
    /// frozen recipe reads each once).
    pub fn examples_since(&self, steps_before: usize) -> usize {
        if self.head_only {
            return self.train.len();
        }
        let batch = self.config.per_device_train_batch_size * self.config.gradient_accumulation_steps;
        (self.state.global_step - steps_before) * batch
    }

    /// Trains to the end, to early stopping, or until `stop(step)` asks to stop.
    pub fn run(
        &mut self,
        stop: &(dyn Fn(usize) -> bool + Sync),
        progress: &super::progress::Progress,
    ) -> Result<Outcome> {
        if self.head_only {
            return self.fit_frozen_head(&|| stop(0), progress);
        }
        let batch = self.config.per_device_train_batch_size;
        while self.state.epoch < self.config.num_train_epochs {
            let order = self.epoch_order(self.state.epoch);
            let chunks: Vec<&[usize]> = order.chunks(batch).collect();
            let bar = progress.epoch_bar(self.state.epoch, self.config.num_train_epochs, chunks.len());
            bar.set_position(self.state.batch_in_epoch as u64);
            while self.state.batch_in_epoch < chunks.len() {
                let group_end = (self.state.batch_in_epoch + self.config.gradient_accumulation_steps).min(chunks.len());
                let group = &chunks[self.state.batch_in_epoch..group_end];
                self.optimizer_step(group)?;
                self.state.batch_in_epoch = group_end;
                bar.set_position(group_end as u64);
                progress.describe_step(
                    &bar,
                    self.state.loss_sum / self.state.loss_count.max(1) as f64,
                    self.current_lr(),
                );
                let epoch_done = group_end == chunks.len();
                if epoch_done {
                    self.state.epoch += 1;
                    self.state.batch_in_epoch = 0;
                }
                if let Some(outcome) = self.after_step(epoch_done, stop, progress)? {
                    match outcome {
                        Outcome::Interrupted => bar.abandon(),
                        _ => bar.finish_and_clear(),
                    }
                    return Ok(outcome);
                }
                if epoch_done {
                    break;
                }
            }
            bar.finish_and_clear();
        }
        // Without an evaluation (no dev data, or `--eval-steps` beyond the last step) the last model is kept.
        if self.state.best_step.is_none() {
            self.save_best()?;
        }
        self.state.finished = true;
        self.checkpoint()?;
        Ok(Outcome::Finished)
    }

    /// Evaluates and checkpoints when `--eval-strategy` says so, and stops
    /// where early stopping or `stop` asks: the outcome then, else none.
    fn after_step(
        &mut self,
        epoch_done: bool,
        stop: &(dyn Fn(usize) -> bool + Sync),
        progress: &super::progress::Progress,
    ) -> Result<Option<Outcome>> {
        let due = match self.config.eval_strategy {
            EvalStrategy::No => false,
            EvalStrategy::Epoch => epoch_done,
            EvalStrategy::Steps => self.state.global_step.is_multiple_of(self.config.eval_steps.max(1)),
        };
        if due {
            let early_stop = self.evaluate_and_select(progress)?;
            self.state.finished = early_stop;
            self.checkpoint()?;
            if early_stop {
                return Ok(Some(Outcome::EarlyStopped));
            }
        }
        if stop(self.state.global_step) {
            self.checkpoint()?;
            return Ok(Some(Outcome::Interrupted));
        }
        Ok(None)
    }

    /// The same permutation for the same seed and epoch, whatever happened before.
    fn epoch_order(&self, epoch: usize) -> Vec<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        rng.set_stream(epoch as u64 + 1);
        let mut order: Vec<usize> = (0..self.train.len()).collect();
        order.shuffle(&mut rng);
        order
    }

    fn current_lr(&self) -> f64 {
        let warmup = warmup_steps(self.config.warmup_ratio, self.state.total_steps);
        self.config.learning_rate
            * lr_factor(self.config.lr_scheduler_type, self.state.global_step, warmup, self.state.total_steps)
    }

    /// Forward and backward over each micro-batch of `group`, then one update.
    fn optimizer_step(&mut self, group: &[&[usize]]) -> Result<()> {
        let mut summed: Option<Vec<Tensor>> = None;
        let examples: usize = group.iter().map(|c| c.len()).sum();
        for chunk in group {
            let (loss, grads) = self.micro_batch(chunk, examples)?;
            self.state.loss_sum += loss;
            self.state.loss_count += 1;
            summed = Some(match summed {
                None => grads,
                Some(acc) => acc.iter().zip(&grads).map(|(a, g)| a + g).collect::<candle_core::Result<_>>()?,
            });
        }
        let grads = summed.expect("an optimizer step has at least one micro-batch");
        let warmup = warmup_steps(self.config.warmup_ratio, self.state.total_steps);
        let factor = lr_factor(self.config.lr_scheduler_type, self.state.global_step, warmup, self.state.total_steps);
        update(&mut self.optimizer, &grads, self.config.max_grad_norm, factor)?;
        self.state.global_step += 1;
        Ok(())
    }

    /// The loss of one micro-batch (as an average over it) and its gradients,
    /// scaled so that the micro-batches of a step sum to the step's mean loss.
    fn micro_batch(&self, chunk: &[usize], step_examples: usize) -> Result<(f64, Vec<Tensor>)> {
        let device = &self.classifier.device;
        let batch = Batch::from_encoded(chunk.iter().map(|&i| &self.train[i].encoded), self.pad_id(), device)?;
        let labels: Vec<u32> = chunk.iter().map(|&i| self.train[i].label).collect();
        let labels = Tensor::new(labels, device)?;
        let smoothing = self.config.label_smoothing_factor;
        let loss = training_loss(&self.classifier, &batch, &labels, self.class_weights.as_ref(), smoothing)?;
        let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !value.is_finite() {
            let checkpoint = self.run.checkpoint();
            let kept = if checkpoint.join("trainer_state.json").is_file() {
                format!("{} keeps the last good checkpoint", checkpoint.display())
            } else {
                "no checkpoint was saved before it".to_string()
            };
            return Err(Error::Other(format!(
                "the training loss became {value} at step {} (epoch {}); stopped, and {kept}. \
                 Try a lower --learning-rate or --max-grad-norm.",
                self.state.global_step + 1,
                self.state.epoch + 1,
            )));
        }
        let share = chunk.len() as f64 / step_examples as f64;
        Ok((value, gradients(&loss, share, &self.optimizer)?))
    }

    /// `--freeze-encoder`: one pass of the encoder over the training sentences,
    /// then a classifier per target fitted on the cached vectors
    /// ([`super::head_fit`]); the run folder is written as after a one-step run.
    fn fit_frozen_head(
        &mut self,
        stop: &(dyn Fn() -> bool + Sync),
        progress: &super::progress::Progress,
    ) -> Result<Outcome> {
        let encoded = self.train.iter().map(|e| &e.encoded);
        let int8 = self.int8_embedder()?;
        let batch = self.config.per_device_eval_batch_size;
        let x = head_fit::head_inputs(&self.classifier, encoded, batch, int8.as_ref(), stop)?;
        let y: Vec<usize> = self.train.iter().map(|e| e.label as usize).collect();
        let targets: Vec<usize> = self.train.iter().map(|e| e.encoded.target.unwrap_or(0) as usize).collect();
        // Balanced unless --class-weights says otherwise: the setting that held on every data set measured.
        let fixed = self.class_weights.as_ref().map(|w| w.to_vec1::<f32>()).transpose()?;
        let weights = match (self.config.class_weights.as_deref(), &fixed) {
            (Some(spec), Some(w)) if spec != "balanced" => head_fit::ClassWeights::Fixed(w),
            _ => head_fit::ClassWeights::Balanced,
        };
        let shape = (self.classifier.spec.labels.len(), self.classifier.spec.targets.len());
        let fit = head_fit::fit_per_target(&x, (&y, &targets), shape, self.config.head_c, weights);
        fit.install(&self.classifier)?;
        // One fit: the state and the evaluation log read epoch 1, step 1 of 1, whatever --num-train-epochs says.
        self.state.total_steps = 1;
        self.state.global_step = 1;
        self.state.epoch = 1;
        self.state.loss_sum = fit.mean_loss(&x, &y, &targets, shape.0);
        self.state.loss_count = 1;
        if self.dev.is_empty() {
            self.save_best()?;
        } else {
            self.evaluate_and_select(progress)?;
        }
        self.state.finished = true;
        self.checkpoint()?;
        Ok(Outcome::Finished)
    }

    /// `--precision int8`: the base model again, its linear layers in int8 (the
    /// f32 columns chosen at load, as `predict --precision int8` does).
    fn int8_embedder(&self) -> Result<Option<Embedder>> {
        if self.config.precision == Precision::F32 {
            return Ok(None);
        }
        let arithmetic = Arithmetic::from(Precision::Int8).with_f32_columns_chosen_at_load();
        let base = ModelDir::open(&self.base)?;
        Embedder::load(&base, &self.classifier.device, Some(self.config.max_length), arithmetic).map(Some)
    }

    fn pad_id(&self) -> u32 {
        self.classifier.tokenizer.pad_id()
    }

    /// Scores the dev set; returns whether early stopping says to stop.
    fn evaluate_and_select(&mut self, progress: &super::progress::Progress) -> Result<bool> {
        if self.dev.is_empty() {
            return Ok(false);
        }
        let (eval_loss, scores, single) =
            evaluate_predictions(&self.classifier, &self.dev, self.config.per_device_eval_batch_size)?;
        let steps_per_epoch = self.state.total_steps as f64 / self.config.num_train_epochs.max(1) as f64;
        let log = EvalLog {
            epoch: round4(self.state.global_step as f64 / steps_per_epoch.max(1.0)),
            step: self.state.global_step,
            learning_rate: (!self.head_only).then(|| self.current_lr()),
            train_loss: self.state.loss_sum / self.state.loss_count.max(1) as f64,
            eval_loss,
            eval_accuracy: scores.accuracy,
            eval_macro_f1: scores.macro_f1,
            eval_f_avg: scores.f_avg,
        };
        self.state.loss_sum = 0.0;
        self.state.loss_count = 0;
        progress.evaluation(&log);
        let value = best_value(self.config.metric_for_best_model, &log);
        if self.state.best_metric.is_none_or(|best| value > best) {
            self.state.best_metric = Some(value);
            self.state.best_step = Some(log.step);
            self.state.evals_without_improvement = 0;
            self.state.log_history.push(log);
            self.best_single_answer = single.map(|l| self.classifier.spec.labels[l].clone());
            self.save_best()?;
        } else {
            self.state.evals_without_improvement += 1;
            self.state.log_history.push(log);
        }
        Ok(self.config.early_stopping_patience.is_some_and(|p| self.state.evals_without_improvement >= p))
    }

    /// The best model so far goes to the top of the run folder.
    fn save_best(&self) -> Result<()> {
        self.classifier.save(&self.run.0, &self.base)
    }

    /// Writes `checkpoint-last` whole under a temporary name, then swaps it in,
    /// so a crash mid-save leaves the previous checkpoint intact.
    fn checkpoint(&mut self) -> Result<()> {
        self.state.dropout_rng = self.classifier.model.dropout_rng.state();
        let final_dir = self.run.checkpoint();
        let tmp = self.run.new_checkpoint();
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        self.classifier.save(&tmp, &self.base)?;
        let moments = tmp.join("optimizer.safetensors");
        crate::io::replace_file(&moments, |file| Ok(candle_core::safetensors::save(&self.optimizer.state(), file)?))?;
        self.state.save(&tmp.join("trainer_state.json"))?;
        let old = self.run.old_checkpoint();
        let _ = std::fs::remove_dir_all(&old);
        if final_dir.exists() {
            std::fs::rename(&final_dir, &old).map_err(|e| Error::io(&final_dir, e))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
        let _ = std::fs::remove_dir_all(&old);
        self.state.save(&self.run.file("trainer_state.json"))?;
        self.state.save_metrics(&self.run.file("metrics.jsonl"))
    }
}

// The three phases of a training step, as [`Trainer`] runs them; public so that
// `examples/bench_train_step.rs` times this code rather than a copy of it.

/// The loss of a batch with dropout on: the model's logits through the
/// (weighted, smoothed) cross-entropy.
pub fn training_loss(
    classifier: &Classifier,
    batch: &Batch,
    labels: &Tensor,
    class_weights: Option<&Tensor>,
    label_smoothing: f64,
) -> Result<Tensor> {
    let logits = classifier.model.forward_t(batch, true)?;
    Ok(cross_entropy(&logits, labels, class_weights, label_smoothing)?)
}

/// The gradients of `loss · share` for the optimizer's variables, in its order.
pub fn gradients(loss: &Tensor, share: f64, optimizer: &AdamW) -> Result<Vec<Tensor>> {
    let store = (loss * share)?.backward()?;
    Ok(collect_grads(&store, optimizer.vars())?)
}

/// One AdamW update at `lr_factor` times the base rates, with the gradients
/// clipped to `max_grad_norm` (0 = no clipping); clipping scales them inside
/// the update rather than rewriting them.
pub fn update(optimizer: &mut AdamW, grads: &[Tensor], max_grad_norm: f64, lr_factor: f64) -> Result<()> {
    let clip = if max_grad_norm > 0.0 { clip_coefficient(grad_norm(grads)?, max_grad_norm) } else { 1.0 };
    Ok(optimizer.step_scaled(grads, lr_factor, clip)?)
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// Higher is better for every metric: the loss is negated.
fn best_value(metric: BestMetric, log: &EvalLog) -> f64 {
    match metric {
        BestMetric::FAvg => log.eval_f_avg,
        BestMetric::MacroF1 => log.eval_macro_f1,
        BestMetric::Accuracy => log.eval_accuracy,
        BestMetric::Loss => -log.eval_loss,
    }
}

/// AdamW over the trainable parameters, grouped by depth (embeddings, each
/// encoder layer, head) and by weight decay (biases and LayerNorm weights never
/// decay, as transformers' Trainer has it). With `--layer-lr-decay` 1 every
/// encoder group has the same rate, as in Trainer.
pub fn build_optimizer(config: &TrainConfig, classifier: &Classifier) -> Result<AdamW> {
    let layers = classifier.config.num_hidden_layers;
    let params = classifier
        .model
        .params
        .vars()
        .into_iter()
        .filter(|(name, _)| !config.freeze_encoder || is_head(name))
        .map(|(name, var)| {
            let group = param_group(&name, layers)?;
            Ok((name, var, group))
        })
        .collect::<Result<_>>()?;
    let adam = AdamWConfig { beta1: config.adam_beta1, beta2: config.adam_beta2, eps: config.adam_epsilon };
    Ok(AdamW::new(params, param_groups(config, layers), adam)?)
}

/// Depth d (0 embeddings, 1..=layers the encoder layers, layers + 1 the head)
/// gives groups 2d (decayed) and 2d + 1 (not decayed). The rates follow the
/// layer-wise decay of ELECTRA and BEiT: encoder depth d gets
/// lr × decay^(layers + 1 − d).
fn param_groups(config: &TrainConfig, layers: usize) -> Vec<Group> {
    (0..=layers + 1)
        .flat_map(|depth| {
            let lr = if depth == layers + 1 {
                config.head_lr()
            } else {
                config.learning_rate * config.layer_lr_decay.powi((layers + 1 - depth) as i32)
            };
            [Group { lr, weight_decay: config.weight_decay }, Group { lr, weight_decay: 0.0 }]
        })
        .collect()
}

/// A parameter's name inside the encoder (`bert.x` and `mpnet.x` → `x`).
fn in_encoder(name: &str) -> Option<&str> {
    Family::SUPPORTED.iter().find_map(|(_, family)| name.strip_prefix(family.prefix())?.strip_prefix('.'))
}

fn param_group(name: &str, layers: usize) -> Result<usize> {
    let inner = in_encoder(name).unwrap_or_default();
    let layer = || inner.strip_prefix("encoder.layer.")?.split('.').next()?.parse::<usize>().ok();
    // MPNet's relative-position table serves every layer; it sits with the embeddings, below them all.
    let depth = if is_head(name) {
        layers + 1
    } else if inner.starts_with("embeddings.") || inner.starts_with("encoder.relative_attention_bias.") {
        0
    } else {
        match layer() {
            Some(i) if i < layers => i + 1,
            _ => return Err(Error::Other(format!("no optimizer group for parameter {name}"))),
        }
    };
    Ok(2 * depth + usize::from(!decays(name)))
}

/// The head: what `BertForSequenceClassification` (or MPNet's) adds on top of the encoder's layers.
pub fn is_head(name: &str) -> bool {
    name.starts_with("classifier.") || in_encoder(name).is_some_and(|inner| inner.starts_with("pooler."))
}

/// Weight decay applies to weight matrices, not to biases or LayerNorm
/// parameters: transformers' Trainer (`get_decay_parameter_names`) excludes
/// every name containing "bias", so MPNet's `relative_attention_bias.weight`
/// does not decay either.
pub fn decays(name: &str) -> bool {
    !(name.contains("bias") || name.contains("LayerNorm"))
}

/// Dev loss (unweighted mean cross-entropy) and scores of `classifier` on `examples`.
pub fn evaluate(classifier: &Classifier, examples: &[Example], batch_size: usize) -> Result<(f64, Scores)> {
    let (loss, scores, _) = evaluate_predictions(classifier, examples, batch_size)?;
    Ok((loss, scores))
}

/// Every example's log-probabilities under `classifier`, and its gold label index.
pub fn log_probabilities(
    classifier: &Classifier,
    examples: &[Example],
    batch_size: usize,
) -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
    let encoded: Vec<Encoded> = examples.iter().map(|e| e.encoded.clone()).collect();
    let pad = classifier.tokenizer.pad_id();
    // Over constants: a forward pass over `Var`s would keep every activation of the batch alive.
    let model = classifier.inference_model()?;
    let log_probs = model.probabilities(&encoded, (batch_size, pad), &classifier.device, true)?;
    Ok((log_probs, examples.iter().map(|e| e.label as usize).collect()))
}

/// [`evaluate`], and the label the model answers for every example when it answers only one.
fn evaluate_predictions(
    classifier: &Classifier,
    examples: &[Example],
    batch_size: usize,
) -> Result<(f64, Scores, Option<usize>)> {
    let (log_probs, gold) = log_probabilities(classifier, examples, batch_size)?;
    let pred: Vec<usize> = log_probs.iter().map(|row| crate::kernels::argmax(row)).collect();
    let loss = log_probs.iter().zip(&gold).map(|(row, &g)| -(row[g] as f64)).sum::<f64>() / gold.len().max(1) as f64;
    let spec = &classifier.spec;
    let neutral = crate::evaluation::metrics::neutral_indices(&spec.labels, spec.neutral.as_ref());
    let scores = Confusion::new(&spec.labels, &gold, &pred).with_neutral(neutral).scores();
    Ok((loss, scores, single_answer(&pred)))
}

#[cfg(test)]
mod group_tests {
    use super::*;

    fn group_of(groups: &[Group], name: &str) -> Group {
        groups[param_group(name, 2).unwrap()]
    }

    #[test]
    fn layer_decay_scales_each_depth_and_leaves_the_head() {
        let config = TrainConfig {
            learning_rate: 1e-4,
            head_learning_rate: Some(3e-4),
            layer_lr_decay: 0.5,
            weight_decay: 0.01,
            ..TrainConfig::default()
        };
        let groups = param_groups(&config, 2);
        let lr = |name: &str| group_of(&groups, name).lr;
        assert_eq!(lr("bert.embeddings.word_embeddings.weight"), 1e-4 * 0.125);
        assert_eq!(lr("bert.encoder.layer.0.attention.self.query.weight"), 1e-4 * 0.25);
        assert_eq!(lr("bert.encoder.layer.1.output.dense.bias"), 1e-4 * 0.5);
        assert_eq!((lr("bert.pooler.dense.weight"), lr("classifier.bias")), (3e-4, 3e-4));
        assert_eq!(group_of(&groups, "bert.encoder.layer.1.output.dense.bias").weight_decay, 0.0);
        assert_eq!(group_of(&groups, "bert.encoder.layer.1.output.LayerNorm.weight").weight_decay, 0.0);
        assert_eq!(group_of(&groups, "bert.encoder.layer.1.output.dense.weight").weight_decay, 0.01);
        assert!(param_group("bert.encoder.layer.2.output.dense.weight", 2).is_err());
    }

    #[test]
    fn without_decay_the_encoder_shares_one_rate() {
        let config = TrainConfig::default();
        let groups = param_groups(&config, 2);
        assert!(groups[..6].iter().all(|g| g.lr == config.learning_rate));
        for decay in [0.0, 1.5] {
            assert!(TrainConfig { layer_lr_decay: decay, ..TrainConfig::default() }.validate().is_err());
        }
    }
}
