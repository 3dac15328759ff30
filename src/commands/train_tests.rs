//! Training end to end on a tiny random BERT: it learns, it is deterministic,
//! and a resumed run ends where an uninterrupted one does.

use std::path::Path;

use super::*;
use crate::testing::write_tiny_model;
use crate::training::{config, optim, Example};

const WORDS: [&str; 8] = ["the war", "peace talks", "europe", "land", "nato", "defence spending", "borders", "it"];

/// 32 pairs whose label follows from one word: `for` → favor, `against` → against, `not` → none.
fn write_data(dir: &Path, name: &str, offset: usize) {
    let mut lines = Vec::new();
    for i in 0..16 {
        let topic = WORDS[(i + offset) % WORDS.len()];
        let (text, label) = match i % 3 {
            0 => (format!("it is for {topic}"), "favor"),
            1 => (format!("it is against {topic}"), "against"),
            _ => (format!("it is not {topic}"), "none"),
        };
        for target in ["nato", "europe"] {
            let text = format!("{text} {}", if target == "nato" { "now" } else { "" }).trim().to_string();
            lines.push(
                serde_json::json!({"id": format!("{name}{i}"), "text": text, "target": target, "label": label})
                    .to_string(),
            );
        }
    }
    std::fs::write(dir.join(name), lines.join("\n")).unwrap();
}

fn setup(dir: &Path) -> TrainConfig {
    write_tiny_model(&dir.join("base"), 11).unwrap();
    write_data(dir, "train.jsonl", 0);
    write_data(dir, "dev.jsonl", 2);
    std::fs::write(
        dir.join("targets.json"),
        r#"{"labels": ["favor", "against", "none"], "targets": {"nato": "ukraine joining nato", "europe": "europe pay more"}}"#,
    )
    .unwrap();
    let s = |p: &str| dir.join(p).to_str().unwrap().to_string();
    TrainConfig {
        model: s("base"),
        train: vec![s("train.jsonl")],
        dev: vec![s("dev.jsonl")],
        targets: dir.join("targets.json"),
        out: dir.join("run"),
        learning_rate: 3e-3,
        num_train_epochs: 12,
        per_device_train_batch_size: 8,
        warmup_ratio: 0.1,
        device: "cpu".into(),
        quiet: true,
        ..TrainConfig::default()
    }
}

fn never(_: usize) -> bool {
    false
}

fn metrics(run: &Path) -> String {
    std::fs::read_to_string(run.join("metrics.jsonl")).unwrap()
}

#[test]
fn a_tiny_model_learns_its_training_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.dev = config.train.clone();
    config.num_train_epochs = 30;
    config.learning_rate = 1e-2;
    // On a 16-wide random encoder, [CLS] through a tanh pooler learns two of the
    // three classes within this budget and then plateaus; mean pooling learns all.
    config.pooling = crate::model::Pooling::Mean;
    let summary = train(config.clone(), false, &never).unwrap();
    assert_eq!(summary.outcome, Outcome::Finished);
    let history: Vec<EvalLog> = metrics(&config.out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(history.len(), 30);
    assert!(history.iter().all(|l| l.learning_rate.is_some()));
    assert!(history.last().unwrap().train_loss < history[0].train_loss / 4.0, "loss did not fall: {history:?}");
    assert_eq!(summary.best.unwrap().eval_accuracy, 1.0, "the 32 training pairs are not all learnt");
    // The run folder reloads as a classifier that reproduces the selected scores.
    let reloaded = Classifier::load(&ModelDir::open(&config.out).unwrap(), &candle_core::Device::Cpu).unwrap();
    let schema = Schema::load(&config.targets).unwrap();
    let records = crate::data::load_records(&config.train, None, &schema).unwrap();
    let (_, scores) = trainer::evaluate(&reloaded, &encode(&reloaded, &schema, &records).unwrap(), 7).unwrap();
    assert_eq!(scores.accuracy, 1.0);
}

#[test]
fn the_same_seed_gives_the_same_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.num_train_epochs = 3;
    train(config.clone(), false, &never).unwrap();
    let first = metrics(&config.out);
    config.overwrite = true;
    train(config.clone(), false, &never).unwrap();
    assert_eq!(metrics(&config.out), first);
    config.seed += 1;
    train(config.clone(), false, &never).unwrap();
    assert_ne!(metrics(&config.out), first, "the seed must matter");
}

#[test]
fn a_resumed_run_ends_like_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.num_train_epochs = 3;
    config.gradient_accumulation_steps = 2;
    train(config.clone(), false, &never).unwrap();
    let uninterrupted = metrics(&config.out);
    let weights = std::fs::read(config.out.join("model.safetensors")).unwrap();

    config.overwrite = true;
    // Interrupted mid-epoch (2 optimizer steps per epoch), then resumed twice.
    let summary = train(config.clone(), false, &|step| step == 1).unwrap();
    assert_eq!(summary.outcome, Outcome::Interrupted);
    let state = crate::training::state::TrainerState::load(&config.out.join("checkpoint-last/trainer_state.json"));
    assert_eq!(state.unwrap().started_in, std::env::current_dir().ok(), "what --resume reads relative paths from");
    // Other training data (one pair fewer, or one label changed) is refused, not trained on.
    let data = std::fs::read_to_string(&config.train[0]).unwrap();
    let fewer = data.lines().skip(1).collect::<Vec<_>>().join("\n");
    let relabelled = data.replacen("\"favor\"", "\"none\"", 1);
    for other in [fewer, relabelled] {
        std::fs::write(&config.train[0], other).unwrap();
        let err = train(config.clone(), true, &never).unwrap_err().to_string();
        assert!(err.contains("the training or dev data changed since this run started"), "{err}");
    }
    std::fs::write(&config.train[0], &data).unwrap();
    // Dev data too: it selects the model, and two dev sets would mix their scores.
    let dev = std::fs::read_to_string(&config.dev[0]).unwrap();
    std::fs::write(&config.dev[0], dev.lines().skip(1).collect::<Vec<_>>().join("\n")).unwrap();
    let err = train(config.clone(), true, &never).unwrap_err().to_string();
    assert!(err.contains("the training or dev data changed"), "{err}");
    std::fs::write(&config.dev[0], &dev).unwrap();
    // A kill in the middle of the checkpoint swap: the new checkpoint still in `.tmp`, the old set aside.
    std::fs::rename(config.out.join("checkpoint-last"), config.out.join(".checkpoint-last.tmp")).unwrap();
    std::fs::create_dir(config.out.join(".checkpoint-last.old")).unwrap();
    let summary = train(config.clone(), true, &|step| step == 4).unwrap();
    assert_eq!(summary.outcome, Outcome::Interrupted);
    // Killed before the rename of a run's first checkpoint: whole in `.tmp`, with no `.old` beside it.
    std::fs::rename(config.out.join("checkpoint-last"), config.out.join(".checkpoint-last.tmp")).unwrap();
    let summary = train(config.clone(), true, &|step| step == 5).unwrap();
    assert_eq!(summary.outcome, Outcome::Interrupted);
    let summary = train(config.clone(), true, &never).unwrap();
    assert_eq!(summary.outcome, Outcome::Finished);
    assert_eq!(metrics(&config.out), uninterrupted);
    assert_eq!(std::fs::read(config.out.join("model.safetensors")).unwrap(), weights);
    // The run the interrupted --overwrite kept aside goes once the resumed one is done.
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().filter(|e| e.as_ref().unwrap().file_name() == ".run.replaced").count(),
        0
    );
    let again = train(config, true, &never).unwrap_err().to_string();
    assert!(again.contains("already finished"), "{again}");
}

/// Once trained, the selected model's logits are divided by the temperature
/// that fits dev best: its dev NLL is the fit's, no label moves, and
/// `--calibrate false` keeps the logits as trained.
#[test]
fn the_selected_model_is_calibrated_on_dev() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.num_train_epochs = 4;
    config.calibrate = false;
    train(config.clone(), false, &never).unwrap();
    let schema = Schema::load(&config.targets).unwrap();
    let dev = |config: &TrainConfig| {
        let c = Classifier::load(&ModelDir::open(&config.out).unwrap(), &candle_core::Device::Cpu).unwrap();
        let records = crate::data::load_records(&config.dev, None, &schema).unwrap();
        let examples = encode(&c, &schema, &records).unwrap();
        let (loss, _) = trainer::evaluate(&c, &examples, 8).unwrap();
        let pairs: Vec<(&str, &str)> =
            records.iter().map(|r| (c.description(&r.target).unwrap(), r.text.as_str())).collect();
        let probs = c.predict_proba(&pairs, 8).unwrap();
        (c.spec.temperature, loss, probs)
    };
    let (none, raw_loss, raw) = dev(&config);
    assert_eq!(none, None);
    config.calibrate = true;
    config.overwrite = true;
    let fit = train(config.clone(), false, &never).unwrap().calibration.expect("dev data was given");
    let (temperature, loss, calibrated) = dev(&config);
    assert_eq!(temperature, Some(fit.temperature));
    assert!((fit.nll_before - raw_loss).abs() < 1e-4 && (fit.nll_after - loss).abs() < 1e-4, "{fit:?} {loss}");
    assert!(fit.nll_after < fit.nll_before && (fit.temperature - 1.0).abs() > 0.01, "{fit:?}");
    let argmax = |rows: &[Vec<f32>]| rows.iter().map(|r| crate::kernels::argmax(r)).collect::<Vec<_>>();
    assert_eq!(argmax(&calibrated), argmax(&raw));
    assert_ne!(calibrated, raw);
    // Killed once trained, before the fit: `--resume` fits it, to the same temperature and probabilities.
    let killed = TrainConfig { out: dir.path().join("killed"), calibrate: false, overwrite: false, ..config.clone() };
    train(killed.clone(), false, &never).unwrap();
    let saved = killed.out.join("train_config.json");
    let mut settings: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    settings["calibrate"] = true.into();
    std::fs::write(&saved, settings.to_string()).unwrap();
    let refused = train(killed.clone(), false, &never).err().unwrap().to_string();
    assert!(refused.contains("--resume"), "the fit is left to do: {refused}");
    let resumed = train(TrainConfig { calibrate: true, ..killed.clone() }, true, &never).unwrap();
    assert_eq!(
        (resumed.outcome, resumed.calibration.map(|f| f.temperature)),
        (Outcome::Finished, Some(fit.temperature))
    );
    assert_eq!(dev(&TrainConfig { calibrate: true, ..killed.clone() }).2, calibrated);
    let again = train(killed, true, &never).unwrap_err().to_string();
    assert!(again.contains("already finished"), "{again}");
}

/// `--eval-steps` beyond the last step: no evaluation runs, so the last model
/// is kept (as without dev data), and it is still calibrated on dev.
#[test]
fn a_run_that_never_evaluates_keeps_its_last_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.num_train_epochs = 1;
    config.eval_strategy = config::EvalStrategy::Steps;
    config.eval_steps = 1000;
    let summary = train(config.clone(), false, &never).unwrap();
    assert!(summary.best.is_none() && summary.calibration.is_some());
    let said = "--eval-steps 1000 is more than the run's 4 steps: no evaluation ran, the last model is kept";
    assert!(summary.warnings.iter().any(|w| w == said), "{:?}", summary.warnings);
    let c = Classifier::load(&ModelDir::open(&config.out).unwrap(), &candle_core::Device::Cpu).unwrap();
    assert_eq!(c.spec.temperature, summary.calibration.map(|f| f.total));
}

#[test]
fn an_existing_run_is_not_overwritten_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.num_train_epochs = 1;
    train(config.clone(), false, &never).unwrap();
    let err = train(config, false, &never).unwrap_err().to_string();
    assert!(err.contains("--overwrite"), "{err}");
}

/// `--overwrite` empties the run folder only once every input has been read,
/// and never a folder that is no run, or one the new run reads from.
#[test]
fn overwrite_loses_nothing_the_run_needs() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    frozen(&mut config);
    train(config.clone(), false, &never).unwrap();
    let files = |p: &Path| std::fs::read_dir(p).unwrap().count();
    let before = files(&config.out);
    config.overwrite = true;
    // Bad data: the old run stays whole.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"x\", \"target\": \"nato\", \"label\": \"maybe\"}\n").unwrap();
    let with_bad = TrainConfig { train: vec![bad.display().to_string()], ..config.clone() };
    assert!(train(with_bad, false, &never).unwrap_err().to_string().contains("unknown label"));
    assert_eq!(files(&config.out), before);
    // Data inside the run folder, or a folder that no run wrote: refused.
    let inside = config.out.join("train.jsonl");
    std::fs::copy(&config.train[0], &inside).unwrap();
    let reads_inside = TrainConfig { train: vec![inside.display().to_string()], ..config.clone() };
    let err = train(reads_inside, false, &never).unwrap_err().to_string();
    assert!(err.contains("inside it, which this run reads"), "{err}");
    assert!(inside.is_file());
    let not_a_run = TrainConfig { out: dir.path().join("base"), ..config.clone() };
    let err = train(not_a_run, false, &never).unwrap_err().to_string();
    assert!(err.contains("has no train_config.json"), "{err}");
    assert!(dir.path().join("base").join("config.json").is_file());
}

/// A loss gone NaN stops the run, and the message says whether a checkpoint
/// is left to go back to (here it diverges before the first one).
#[test]
fn a_diverging_loss_stops_and_says_what_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.num_train_epochs = 2;
    config.max_grad_norm = 0.0;
    config.warmup_ratio = 0.0;
    config.learning_rate = 1e30;
    let err = train(config.clone(), false, &never).unwrap_err().to_string();
    assert!(err.contains("training loss became"), "{err}");
    assert!(err.contains("no checkpoint was saved before it"), "{err}");
    assert!(!config.out.join("checkpoint-last").join("trainer_state.json").exists());
}

#[test]
fn a_frozen_encoder_trains_the_head_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.num_train_epochs = 2;
    config.freeze_encoder = true;
    train(config.clone(), false, &never).unwrap();
    let before =
        candle_core::safetensors::load(dir.path().join("base/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let after =
        candle_core::safetensors::load(config.out.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let same = |a: &candle_core::Tensor, b: &candle_core::Tensor| {
        a.flatten_all().unwrap().to_vec1::<f32>().unwrap() == b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let key = "encoder.layer.0.attention.self.query.weight";
    assert!(same(&before[key], &after[&format!("bert.{key}")]), "the encoder moved");
    let initial = Classifier::from_base(
        &ModelDir::open(&dir.path().join("base")).unwrap(),
        crate::model::StanceSpec {
            labels: vec!["favor".into(), "against".into(), "none".into()],
            targets: Default::default(),
            pooling: config.pooling,
            max_length: config.max_length,
            head: Default::default(),
            feature_layers: 1,
            temperature: None,
            neutral: None,
        },
        &candle_core::Device::Cpu,
        config.seed,
    )
    .unwrap();
    let head = initial.model.params.vars().into_iter().find(|(n, _)| n == "classifier.weight").unwrap().1;
    assert!(!same(head.as_tensor(), &after["classifier.weight"]), "the head did not move");
}

/// The frozen recipe, scored on its own training set, with little
/// regularisation so that a tiny random encoder's vectors separate it.
fn frozen(config: &mut TrainConfig) {
    config.dev = config.train.clone();
    config.freeze_encoder = true;
    config.head_c = 100.0;
}

/// [`frozen`], with the held-out `dev.jsonl` of `dir` as dev data instead of the training set.
fn frozen_held_out(config: &mut TrainConfig, dir: &Path) {
    frozen(config);
    config.dev = vec![dir.join("dev.jsonl").to_str().unwrap().to_string()];
}

/// The frozen recipe fits a classifier per target once: one evaluation at
/// epoch 1, step 1; on both families it separates the training set (the
/// same sentence is "for", "against" or "not" something: only its words
/// decide, which a frozen random encoder's vectors keep); the run folder
/// predicts what the fit gave, and the same data gives the same fit.
#[test]
fn the_frozen_recipe_fits_the_head_once_on_both_families() {
    for mpnet in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = setup(dir.path());
        if mpnet {
            crate::testing::write_tiny_mpnet_model(&dir.path().join("base"), 11).unwrap();
        }
        frozen(&mut config);
        let summary = train(config.clone(), false, &never).unwrap();
        let history: Vec<EvalLog> = metrics(&config.out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(history.len(), 1);
        assert_eq!((history[0].epoch, history[0].step, history[0].learning_rate), (1.0, 1, None));
        let state = crate::training::state::TrainerState::load(&config.out.join("trainer_state.json")).unwrap();
        assert_eq!((state.epoch, state.global_step, state.total_steps), (1, 1, 1), "one fit, whatever the epochs");
        let best = summary.best.unwrap();
        assert!(best.eval_accuracy >= 0.9, "mpnet {mpnet}: {history:?}");
        assert!(summary.warnings.is_empty());
        // The saved folder reads each sentence alone and answers with its target's classifier.
        let dir_ = ModelDir::open(&config.out).unwrap();
        let reloaded = Classifier::load_frozen(&dir_, &candle_core::Device::Cpu).unwrap();
        assert_eq!(reloaded.spec.head, crate::model::HeadKind::PerTarget);
        let schema = Schema::load(&config.targets).unwrap();
        let records = crate::data::load_records(&config.train, None, &schema).unwrap();
        let (_, scores) = trainer::evaluate(&reloaded, &encode(&reloaded, &schema, &records).unwrap(), 5).unwrap();
        assert_eq!(scores.accuracy, best.eval_accuracy);
        let first = metrics(&config.out);
        config.overwrite = true;
        train(config.clone(), false, &never).unwrap();
        assert_eq!(metrics(&config.out), first, "the same data must give the same fit");
    }
}

/// `--overwrite` sets the old run aside: dropped when the new one is done,
/// kept (and said so) when it is interrupted to be resumed.
#[test]
fn overwrite_keeps_the_old_run_until_the_new_one_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.num_train_epochs = 2;
    train(config.clone(), false, &never).unwrap();
    let old = std::fs::read(config.out.join("model.safetensors")).unwrap();
    config.overwrite = true;
    let summary = train(config.clone(), false, &|step| step == 1).unwrap();
    assert_eq!(summary.outcome, Outcome::Interrupted);
    let kept = dir.path().join(".run.replaced");
    assert_eq!(std::fs::read(kept.join("model.safetensors")).unwrap(), old, "the old run is kept");
    assert!(summary.warnings.iter().any(|w| w.contains(".run.replaced")), "{:?}", summary.warnings);
    std::fs::remove_dir_all(&kept).unwrap();
    train(config.clone(), false, &never).unwrap();
    assert!(!kept.exists(), "dropped once the new run is done");
}

/// A second run into a folder another is writing is refused, not mixed with it.
#[test]
fn a_run_folder_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    frozen(&mut config);
    let held = crate::io::lock_beside(&config.out, "test").unwrap();
    let err = train(config.clone(), false, &never).err().unwrap().to_string();
    assert!(err.contains("another stancekit process is writing this folder"), "{err}");
    assert!(!config.out.exists(), "nothing written");
    drop(held);
    train(config, false, &never).unwrap();
}

/// The targets file's `neutral` label goes into the run, and the dev F_avg
/// that selects the model leaves it out: renamed labels score as the originals.
#[test]
fn the_neutral_label_of_the_targets_file_is_left_out_of_dev_f_avg() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    // Held-out dev data with a gold label the model will not agree with, so that the labels' F1 differ.
    frozen_held_out(&mut config, dir.path());
    let dev = std::fs::read_to_string(&config.dev[0]).unwrap();
    std::fs::write(&config.dev[0], dev.replacen("\"favor\"", "\"none\"", 1)).unwrap();
    train(config.clone(), false, &never).unwrap();
    let last =
        |run: &Path| -> serde_json::Value { serde_json::from_str(metrics(run).lines().last().unwrap()).unwrap() };
    let original = last(&config.out);
    let rename = |text: String| text.replace("favor", "pro").replace("against", "con").replace("none", "neutral");
    for file in [&config.train[0], &config.dev[0]] {
        std::fs::write(file, rename(std::fs::read_to_string(file).unwrap())).unwrap();
    }
    let targets = rename(std::fs::read_to_string(&config.targets).unwrap());
    std::fs::write(&config.targets, targets.replacen("\"targets\"", "\"neutral\": \"neutral\", \"targets\"", 1))
        .unwrap();
    config.out = dir.path().join("renamed");
    train(config.clone(), false, &never).unwrap();
    let renamed = last(&config.out);
    assert_ne!(original["eval_f_avg"], original["eval_macro_f1"], "the neutral label must weigh");
    assert_eq!(renamed["eval_f_avg"], original["eval_f_avg"]);
    let spec = StanceSpec::read(&ModelDir::open(&config.out).unwrap()).unwrap();
    assert_eq!(spec.neutral, Some(crate::data::Neutral::one("neutral")));
}

/// A label that a target's training pairs lack: `train` warns, and the dev
/// pairs with it (which the frozen classifier gives no probability) are left
/// out of the temperature fit instead of pushing T to its bound for every target.
#[test]
fn a_label_a_target_never_had_is_named_and_left_out_of_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    frozen_held_out(&mut config, dir.path());
    let full = std::fs::read_to_string(&config.train[0]).unwrap();
    let kept: Vec<&str> = full.lines().filter(|l| !(l.contains(r#""target":"nato""#) && l.contains("favor"))).collect();
    assert!(kept.len() < full.lines().count());
    std::fs::write(&config.train[0], kept.join("\n")).unwrap();
    let summary = train(config.clone(), false, &never).unwrap();
    assert_eq!(
        summary.warnings,
        ["no training pair of target `nato` is labelled `favor`: its classifier never answers it"]
    );
    let fit = summary.calibration.unwrap();
    let dev = std::fs::read_to_string(&config.dev[0]).unwrap();
    let unreachable = dev.lines().filter(|l| l.contains(r#""target":"nato""#) && l.contains("favor")).count();
    assert_eq!((fit.left_out, fit.examples + fit.left_out), (unreachable, dev.lines().count()), "{fit:?}");
    assert!(fit.temperature < 19.0, "{fit:?}");
    // Dev pairs whose labels all lack training pairs: nothing to fit on, and `train` says so.
    let only: Vec<&str> = dev.lines().filter(|l| l.contains(r#""target":"nato""#) && l.contains("favor")).collect();
    let unfit = dir.path().join("unfit.jsonl");
    std::fs::write(&unfit, only.join("\n")).unwrap();
    let dev = vec![unfit.to_str().unwrap().to_string()];
    let summary = train(TrainConfig { overwrite: true, dev, ..config.clone() }, false, &never).unwrap();
    assert!(summary.calibration.is_none());
    let said = format!("not calibrated: the model gives the label of each of the {unreachable} dev pairs");
    assert!(summary.warnings.iter().any(|w| w.starts_with(&said)), "{:?}", summary.warnings);
    // A target the dev data has and the training data lacks altogether.
    let no_europe: Vec<&str> = full.lines().filter(|l| !l.contains(r#""target":"europe""#)).collect();
    std::fs::write(&config.train[0], no_europe.join("\n")).unwrap();
    let summary = train(TrainConfig { overwrite: true, ..config.clone() }, false, &never).unwrap();
    let dev_text = std::fs::read_to_string(&config.dev[0]).unwrap();
    let europe_dev = dev_text.lines().filter(|l| l.contains(r#""target":"europe""#)).count();
    assert!(europe_dev > 0);
    let said = format!(
        "target `europe` is in the dev data but has no training pair: the frozen recipe has no classifier for it, \
         so the run leaves it out, and its {europe_dev} dev pairs with it"
    );
    assert_eq!(summary.warnings, [said]);
    // The run scores only the targets it has a classifier for.
    let spec = StanceSpec::read(&ModelDir::open(&config.out).unwrap()).unwrap();
    assert!(!spec.targets.contains_key("europe") && spec.targets.contains_key("nato"), "{spec:?}");
}

/// Pairs longer than `--max-length` are cut, and `train` says how many of each set.
#[test]
fn train_counts_the_pairs_it_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    frozen(&mut config);
    config.max_length = 6;
    let summary = train(config.clone(), false, &never).unwrap();
    let cut: Vec<&String> = summary.warnings.iter().filter(|w| w.contains("longer than --max-length 6")).collect();
    assert_eq!(cut.len(), 2, "training and dev (the same file here): {:?}", summary.warnings);
    assert!(cut[0].ends_with("training pairs are longer than --max-length 6 tokens: their sentences were cut to it"));
    let n: usize = cut[0].split(' ').next().unwrap().parse().unwrap();
    assert!(n > 0 && n < 32, "{cut:?}");
    // More than the model's positions (64 in the tiny model): cut there, not an indexing error.
    let long = "it is for nato ".repeat(30);
    let line = serde_json::json!({"id": "long", "text": long, "target": "nato", "label": "favor"}).to_string();
    let mut data = std::fs::read_to_string(&config.train[0]).unwrap();
    data.push_str(&format!("\n{line}"));
    std::fs::write(&config.train[0], data).unwrap();
    let config = TrainConfig { max_length: 1000, overwrite: true, ..config };
    let summary = train(config, false, &never).unwrap();
    assert!(summary
        .warnings
        .iter()
        .any(|w| w.starts_with("1 of 33 training pairs are longer than the model's 64 positions")));
}

/// `--precision int8` runs the frozen recipe's one pass in int8: the fitted
/// classifier moves a little from f32's (so the int8 path ran) and still
/// separates the training set; fine-tuning refuses it.
#[test]
fn the_frozen_recipe_can_embed_in_int8() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    frozen(&mut config);
    let head = |config: &TrainConfig| {
        let saved = candle_core::safetensors::load(config.out.join("model.safetensors"), &candle_core::Device::Cpu);
        saved.unwrap()["classifier.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    train(config.clone(), false, &never).unwrap();
    let f32_head = head(&config);
    config.precision = crate::model::Precision::Int8;
    config.overwrite = true;
    let summary = train(config.clone(), false, &never).unwrap();
    let int8_head = head(&config);
    let largest = f32_head.iter().fold(0f32, |m, w| m.max(w.abs()));
    let moved = f32_head.iter().zip(&int8_head).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(moved > 0.0 && moved < 0.05 * largest, "moved {moved} of {largest}");
    assert!(summary.best.unwrap().eval_accuracy >= 0.9);
    config.freeze_encoder = false;
    let err = train(config, false, &never).unwrap_err().to_string();
    assert!(err.contains("--precision int8 applies to --freeze-encoder"), "{err}");
}

/// `--feature-layers 2`: each target's classifier reads the last two layers'
/// pools ([labels, 2 × hidden] per target), the run folder records it and
/// predicts what the fit gave, in f32 and int8; fine-tuning refuses it.
#[test]
fn the_frozen_recipe_reads_more_layers_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    frozen(&mut config);
    config.feature_layers = 2;
    let summary = train(config.clone(), false, &never).unwrap();
    let best = summary.best.unwrap();
    assert!(best.eval_accuracy >= 0.9, "{best:?}");
    let saved =
        candle_core::safetensors::load(config.out.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let hidden = crate::testing::tiny_config().hidden_size;
    assert_eq!(saved["classifier.weight"].dims(), &[3 * 2, 2 * hidden]);
    let dir_ = ModelDir::open(&config.out).unwrap();
    let spec = crate::model::StanceSpec::read(&dir_).unwrap();
    assert_eq!(spec.feature_layers, 2);
    let schema = Schema::load(&config.targets).unwrap();
    let records = crate::data::load_records(&config.train, None, &schema).unwrap();
    let reloaded = Classifier::load_frozen(&dir_, &candle_core::Device::Cpu).unwrap();
    let (_, scores) = trainer::evaluate(&reloaded, &encode(&reloaded, &schema, &records).unwrap(), 5).unwrap();
    assert_eq!(scores.accuracy, best.eval_accuracy);
    config.precision = crate::model::Precision::Int8;
    config.overwrite = true;
    assert!(train(config.clone(), false, &never).unwrap().best.unwrap().eval_accuracy >= 0.9);
    config.precision = crate::model::Precision::F32;
    config.freeze_encoder = false;
    let err = train(config, false, &never).unwrap_err().to_string();
    assert!(err.contains("--feature-layers applies to --freeze-encoder"), "{err}");
}

#[test]
fn the_frozen_recipe_reads_the_mean_pooled_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.freeze_encoder = true;
    config.pooling = crate::model::Pooling::Cls;
    let err = train(config, false, &never).unwrap_err().to_string();
    assert!(err.contains("--pooling cls"), "{err}");
}

/// Fine-tuning MPNet: the relative-position table learns (its gradient leaves
/// the fused attention through the tap on q); runs are deterministic and resume exactly.
#[test]
fn mpnet_fine_tunes_deterministically_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    crate::testing::write_tiny_mpnet_model(&dir.path().join("base"), 11).unwrap();
    config.num_train_epochs = 3;
    config.layer_lr_decay = 0.8;
    train(config.clone(), false, &never).unwrap();
    let uninterrupted = metrics(&config.out);
    config.overwrite = true;
    let summary = train(config.clone(), false, &|step| step == 5).unwrap();
    assert_eq!(summary.outcome, Outcome::Interrupted);
    train(config.clone(), true, &never).unwrap();
    assert_eq!(metrics(&config.out), uninterrupted);
    let saved =
        candle_core::safetensors::load(config.out.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let base =
        candle_core::safetensors::load(dir.path().join("base/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let table = "encoder.relative_attention_bias.weight";
    let values = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_ne!(values(&saved[&format!("mpnet.{table}")]), values(&base[table]), "the position table did not learn");
}

#[test]
fn weight_decay_and_head_groups() {
    assert!(trainer::decays("bert.encoder.layer.0.attention.self.query.weight"));
    assert!(!trainer::decays("bert.encoder.layer.0.attention.self.query.bias"));
    assert!(!trainer::decays("bert.embeddings.LayerNorm.weight"));
    assert!(!trainer::decays("mpnet.encoder.relative_attention_bias.weight"));
    assert!(trainer::is_head("classifier.weight") && trainer::is_head("bert.pooler.dense.bias"));
    assert!(!trainer::is_head("bert.encoder.layer.5.output.dense.weight"));
}

#[test]
fn class_weights_parse() {
    let ex = |l| Example {
        encoded: crate::tokenization::Encoded { ids: vec![], type_ids: vec![], target: None, truncated: false },
        label: l,
    };
    let train = vec![ex(0), ex(0), ex(1)];
    assert_eq!(class_weights(Some("1,2,0.5"), &train, 3).unwrap(), Some(vec![1.0, 2.0, 0.5]));
    assert!(class_weights(Some("1,2"), &train, 3).is_err());
    let err = class_weights(Some("0,0,1"), &train, 3).unwrap_err().to_string();
    assert!(err.contains("no training pair has a label of positive weight"), "{err}");
    // sklearn: compute_class_weight("balanced", classes=np.unique(y), y=[0, 0, 1]) → [0.75, 1.5]; label 2 weighs nothing.
    let balanced = class_weights(Some("balanced"), &train, 3).unwrap().unwrap();
    assert!((balanced[0] - 0.75).abs() < 1e-6 && (balanced[1] - 1.5).abs() < 1e-6, "{balanced:?}");
}

#[test]
fn eval_strategy_no_reads_no_dev_data_and_keeps_the_last_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.num_train_epochs = 2;
    config.eval_strategy = config::EvalStrategy::No;
    config.dev = vec![dir.path().join("absent.jsonl").to_str().unwrap().to_string()];
    let summary = train(config.clone(), false, &never).unwrap();
    assert_eq!(summary.outcome, Outcome::Finished);
    assert!(summary.best.is_none());
    assert_eq!(std::fs::read_to_string(config.out.join("metrics.jsonl")).unwrap_or_default(), "");
    let kept = std::fs::read(config.out.join("model.safetensors")).unwrap();
    assert_eq!(kept, std::fs::read(config.out.join("checkpoint-last/model.safetensors")).unwrap());

    config.early_stopping_patience = Some(1);
    let err = train(config, false, &never).unwrap_err().to_string();
    assert!(err.contains("--early-stopping-patience needs evaluations"), "{err}");
}

/// One AdamW step with the Trainer's two groups on the tiny MPNet, against
/// `torch.optim.AdamW` (`scripts/make_golden_tiny_mpnet.py`: lr 1e-3, betas
/// (0.9, 0.999), eps 1e-8, weight decay 0.01 except where [`trainer::decays`]
/// says no, as `get_decay_parameter_names` does); in f32 (the fused CPU
/// kernels and AdamW) and in f64 (the composite ops `--device cuda` runs).
#[test]
fn one_adamw_step_on_mpnet_matches_pytorch() {
    use crate::model::golden_mpnet_tests::{assert_close, batch, fixture, flat, load_in};
    use candle_core::DType;
    use optim::{collect_grads, AdamW, AdamWConfig, Group};
    let (dir, e) = fixture();
    for dtype in [DType::F32, DType::F64] {
        let model = load_in(&dir, false, dtype);
        let logits = model.forward_t(&batch(&e), false).unwrap();
        let labels = candle_core::Tensor::new(e.labels.as_slice(), &candle_core::Device::Cpu).unwrap();
        let grads = candle_nn::loss::cross_entropy(&logits, &labels).unwrap().backward().unwrap();
        let params: Vec<_> = model
            .params
            .vars()
            .into_iter()
            .map(|(name, var)| (name.clone(), var, usize::from(!trainer::decays(&name))))
            .collect();
        let groups = vec![Group { lr: 1e-3, weight_decay: 0.01 }, Group { lr: 1e-3, weight_decay: 0.0 }];
        let mut adam = AdamW::new(params, groups, AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8 }).unwrap();
        let grads = collect_grads(&grads, adam.vars()).unwrap();
        adam.step(&grads, 1.0).unwrap();
        let vars: std::collections::BTreeMap<_, _> = model.params.vars().into_iter().collect();
        for (name, want) in &e.after_adamw_step {
            assert_close(&format!("{dtype:?}, after one step: {name}"), vars[name].as_tensor(), flat(want), 1e-6);
        }
    }
}

/// `train`'s settings from a command line, as `stancekit train` reads them.
fn parse(args: &[&str]) -> Result<(TrainConfig, bool)> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = crate::cli::Cli::command().try_get_matches_from(args).unwrap();
    let crate::cli::Command::Train(train) = crate::cli::Cli::from_arg_matches(&matches).unwrap().command else {
        unreachable!()
    };
    settings(*train, matches.subcommand_matches("train").unwrap())
}

#[test]
fn resume_refuses_flags_that_would_change_the_saved_settings() {
    let err = parse(&["stancekit", "train", "--resume", "nowhere", "--num-train-epochs", "9"]).unwrap_err();
    assert!(err.to_string().contains("--num-train-epochs cannot change them"), "{err}");
    let err = parse(&["stancekit", "train", "--resume", "nowhere", "--quiet"]).unwrap_err();
    assert!(err.to_string().contains("train_config.json"), "--quiet may be given: {err}");
}

#[test]
fn a_config_file_inside_the_run_folder_is_not_overwritten_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("run.toml");
    std::fs::write(&toml, "freeze_encoder = true\n").unwrap();
    let (toml, out) = (toml.to_str().unwrap(), dir.path().to_str().unwrap());
    let err = parse(&["stancekit", "train", "--config", toml, "--out", out, "--overwrite"]).unwrap_err().to_string();
    assert!(err.contains("lies inside --out"), "{err}");
}

/// As transformers' `EarlyStoppingCallback`: `patience` evaluations without a
/// better dev score end the run.
#[test]
fn mpnet_stops_early_after_patience_evaluations_without_gain() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    crate::testing::write_tiny_mpnet_model(&dir.path().join("base"), 11).unwrap();
    config.eval_strategy = config::EvalStrategy::Steps;
    config.eval_steps = 2;
    config.early_stopping_patience = Some(2);
    let summary = train(config.clone(), false, &never).unwrap();
    assert_eq!(summary.outcome, Outcome::EarlyStopped);
    let best = summary.best.expect("evaluated").step;
    let steps: Vec<usize> = metrics(&config.out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(steps.iter().filter(|&&s| s > best).count(), 2, "{steps:?}, best {best}");
    assert!(*steps.last().unwrap() < trainer::total_steps(&config, 32), "{steps:?}");
}

/// A model that answers one label for every dev pair is said so in the summary;
/// batches whose labels all weigh 0 leave the losses finite.
#[test]
fn a_model_answering_one_label_is_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.num_train_epochs = 3;
    // Only `none` weighs in the loss: the model learns to answer it for everything. One
    // pair a batch: two batches in three weigh nothing, and add nothing (no NaN).
    config.class_weights = Some("0,0,1".into());
    config.per_device_train_batch_size = 1;
    config.calibrate = false;
    let summary = train(config.clone(), false, &never).unwrap();
    let warning = summary.warnings.iter().find(|w| w.contains("answers `none` for every dev pair"));
    assert!(warning.is_some(), "{:?}", summary.warnings);
    for line in metrics(&config.out).lines() {
        let log: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(log["train_loss"].as_f64().is_some_and(f64::is_finite), "{line}");
    }
}

/// Ctrl-C during a frozen encoder's run (one encoding pass, no steps to stop
/// at, nothing to resume): the run fails, and the run it was to replace stays.
#[test]
fn an_interrupted_frozen_run_fails_and_keeps_the_old_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    config.freeze_encoder = true;
    train(config.clone(), false, &never).unwrap();
    let before = std::fs::read(config.out.join("model.safetensors")).unwrap();
    config.overwrite = true;
    let err = train(config.clone(), false, &|_| true).unwrap_err().to_string();
    assert!(err.contains("interrupted while encoding"), "{err}");
    assert_eq!(std::fs::read(config.out.join("model.safetensors")).unwrap(), before);
}

/// The same in `cv`: an interrupted cross-validation of frozen-encoder folds is
/// an error, and the old cross-validation folder comes back whole.
#[test]
fn an_interrupted_frozen_cross_validation_fails_and_keeps_the_old_folder() {
    use crate::commands::cv;
    let dir = tempfile::tempdir().unwrap();
    let mut training = setup(dir.path());
    (training.freeze_encoder, training.out) = (true, dir.path().join("cv"));
    let config = cv::CvConfig { folds: 2, bootstrap: 50, training };
    cv::run(&config, &never).unwrap();
    let before = std::fs::read(dir.path().join("cv/cv.json")).unwrap();
    let mut again = config.clone();
    again.training.overwrite = true;
    let err = cv::run(&again, &|_| true).unwrap_err().to_string();
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("cv/cv.json")).unwrap(), before);
    // Ctrl-C after the first fold's encoding pass (true from the second question on): an error too.
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let late = |_| calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0;
    assert!(cv::run(&again, &late).unwrap_err().to_string().contains("interrupted"));
    assert!(calls.into_inner() >= 2);
    assert_eq!(std::fs::read(dir.path().join("cv/cv.json")).unwrap(), before);
}

/// A folder that exists is refused with the way out that fits it: `--resume`
/// only where a checkpoint of an unfinished run is there to continue.
#[test]
fn an_existing_run_folder_is_refused_with_the_hint_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    let refusal = |config: &TrainConfig| train(config.clone(), false, &never).err().unwrap().to_string();
    // Not a run folder at all: --overwrite would refuse it too.
    std::fs::create_dir_all(&config.out).unwrap();
    std::fs::write(config.out.join("notes.txt"), "mine").unwrap();
    assert!(refusal(&config).contains("choose another --out: it holds no train_config.json"));
    std::fs::remove_file(config.out.join("notes.txt")).unwrap();
    // Killed before its first checkpoint: the settings alone.
    std::fs::write(config.out.join("train_config.json"), "{}").unwrap();
    let err = refusal(&config);
    assert!(err.contains("holds no checkpoint to --resume from") && !err.contains("to continue it"), "{err}");
    let resumed = train(config.clone(), true, &never).err().unwrap().to_string();
    assert!(resumed.contains("holds no whole checkpoint") && resumed.contains("--overwrite"), "{resumed}");
    config.overwrite = true;
    train(config.clone(), false, &|step| step == 1).unwrap();
    config.overwrite = false;
    assert!(refusal(&config).contains(&format!("--resume {} to continue it", config.out.display())));
    train(config.clone(), true, &never).unwrap();
    let err = refusal(&config);
    assert!(err.ends_with("pass --overwrite to replace it"), "finished: {err}");
}

/// A frozen run whose dev pairs were all left out (targets it has no
/// classifier for) has no temperature to fit: `--resume` finds it finished.
#[test]
fn a_run_with_nothing_to_calibrate_on_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = setup(dir.path());
    frozen_held_out(&mut config, dir.path());
    let europe = |keep: bool| move |l: &&str| l.contains(r#""target":"europe""#) == keep;
    let train_text = std::fs::read_to_string(&config.train[0]).unwrap();
    let dev_text = std::fs::read_to_string(&config.dev[0]).unwrap();
    std::fs::write(&config.train[0], train_text.lines().filter(europe(false)).collect::<Vec<_>>().join("\n")).unwrap();
    std::fs::write(&config.dev[0], dev_text.lines().filter(europe(true)).collect::<Vec<_>>().join("\n")).unwrap();
    let summary = train(config.clone(), false, &never).unwrap();
    assert!(summary.calibration.is_none() && summary.warnings[0].contains("leaves it out"), "{:?}", summary.warnings);
    let again = train(config, true, &never).unwrap_err().to_string();
    assert!(again.contains("already finished"), "{again}");
}
