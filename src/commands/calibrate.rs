//! `stancekit calibrate`: fits a trained model's temperature on labelled data
//! it did not train on and folds it into the run folder (what `train` does on
//! its dev data by default), for runs trained without it or to refit on other
//! held-out data, as scikit-learn's `CalibratedClassifierCV(cv="prefit")`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::{self, Format, Schema};
use crate::model::Classifier;
use crate::training::temperature::{self, TemperatureFit};
use crate::{Error, Result};

/// What a run folder records of its training, copied into `--out` beside the calibrated model.
const RUN_RECORDS: [&str; 3] = ["train_config.json", "trainer_state.json", "metrics.jsonl"];

/// Fit a run's temperature on held-out labelled data and write it into the run folder.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct CalibrateConfig {
    /// The trained model (run folder) to calibrate.
    #[arg(long, value_name = "RUN_DIR")]
    pub model: PathBuf,
    /// Labelled data the model did not train on, read against the run's own labels and targets.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub data: Vec<String>,
    /// Format of the data; by default it follows from each path.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the calibrated classifier (weights, config, tokenizer, and the run's
    /// train_config.json, trainer_state.json and metrics.jsonl) here instead of into the run folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Pairs per forward pass.
    #[arg(long, default_value_t = 32, value_parser = super::count)]
    pub batch_size: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

impl CalibrateConfig {
    /// Where the calibrated classifier goes: `--out`, else the run folder itself.
    fn out_dir(&self) -> &PathBuf {
        self.out.as_ref().unwrap_or(&self.model)
    }
}

/// Fits and writes: the fit, relative to the logits the run had, with the
/// temperature in all (runs calibrated before carry theirs).
pub fn calibrate(config: &CalibrateConfig) -> Result<TemperatureFit> {
    let (schema, records) = read(config)?;
    calibrate_records(config, &schema, &records)
}

/// The run's label set and the held-out pairs read against it.
fn read(config: &CalibrateConfig) -> Result<(Schema, Vec<data::Record>)> {
    let schema = super::schema_of_runs(std::slice::from_ref(&config.model))?;
    let records = data::load_records(&config.data, config.format, &schema)?;
    Ok((schema, records))
}

/// [`calibrate`] on pairs already read.
fn calibrate_records(config: &CalibrateConfig, schema: &Schema, records: &[data::Record]) -> Result<TemperatureFit> {
    let nothing = || Error::Other(format!("{}: no labelled pairs to calibrate on", config.data.join(", ")));
    if records.is_empty() {
        return Err(nothing());
    }
    let out = config.out_dir();
    if config.out.is_some() {
        crate::io::prepare_output_dir(out, None, "choose an empty or new folder")?;
    }
    let device = crate::device::select(&config.device)?;
    let examples = |c: &Classifier| crate::training::encode(c, schema, records);
    // Pairs were read, so none fitted means every one was left out.
    let left_out = || {
        Error::Other(format!(
            "{}: all {} labelled pairs were left out: the model gives each one's label no probability at any \
             temperature (a label that the frozen recipe's training data lacks for its target); nothing was written",
            config.data.join(", "),
            records.len()
        ))
    };
    let fit = temperature::calibrate_saved((&config.model, out), examples, config.batch_size, &device)?
        .ok_or_else(left_out)?;
    if out != &config.model {
        // The run's record of its training goes along (its checkpoint for --resume does not).
        for name in RUN_RECORDS {
            let (from, to) = (config.model.join(name), out.join(name));
            if from.is_file() {
                std::fs::copy(&from, &to).map_err(|e| Error::io(&to, e))?;
            }
        }
    }
    Ok(fit)
}

pub fn run_command(config: &CalibrateConfig) -> Result<()> {
    let (schema, records) = read(config)?;
    if let Some(note) = training_overlap(config, &schema, &records)? {
        eprintln!("warning: {note}");
    }
    let fit = calibrate_records(config, &schema, &records)?;
    let out = config.out_dir();
    let total =
        if (fit.total - fit.temperature).abs() > 1e-12 { format!("; {:.3} in all", fit.total) } else { String::new() };
    eprintln!("{}: logits divided by {fit}{total}", out.display());
    Ok(())
}

/// Held-out pairs the run trained on fit a temperature for text it knows:
/// said, as `eval` says it of gold records.
fn training_overlap(config: &CalibrateConfig, schema: &Schema, records: &[data::Record]) -> Result<Option<String>> {
    let Some(seen) = super::eval::trained_on(&config.model, schema)? else { return Ok(None) };
    let shared = super::eval::shared_pairs(&seen, records);
    Ok((shared > 0).then(|| {
        format!(
            "{shared} of {} held-out pairs (same text and target) are also in the data {} trained on; \
             a temperature fitted on them suits text the model knows, not new text",
            records.len(),
            config.model.display()
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StanceSpec;
    use crate::resolve::ModelDir;

    /// A tiny random classifier made confident (its logits spread to about 5), and 24
    /// held-out pairs labelled as it answers them, except every third: it is
    /// overconfident there, so its temperature lies inside the bounds.
    fn setup(dir: &std::path::Path) -> CalibrateConfig {
        let run = dir.join("run");
        crate::testing::write_tiny_classifier(&run, 3).unwrap();
        let mut classifier = Classifier::load(&ModelDir::open(&run).unwrap(), &candle_core::Device::Cpu).unwrap();
        let texts: Vec<String> = (0..24).map(|i| format!("it is {} {i}", ["for", "against", "not"][i % 3])).collect();
        let target = |i: usize| if i.is_multiple_of(2) { "nato" } else { "defence" };
        let spec = classifier.spec.clone();
        let pairs: Vec<(&str, &str)> =
            texts.iter().enumerate().map(|(i, t)| (spec.targets[target(i)].as_str(), t.as_str())).collect();
        // A random head's logits differ by hundredths: spread them to about 5 between a row's extremes.
        let spread = |rows: &[Vec<f32>]| {
            let row = |p: &Vec<f32>| {
                p.iter().fold(f32::MIN, |m, &x| m.max(x)).ln() - p.iter().fold(1f32, |m, &x| m.min(x)).ln()
            };
            rows.iter().map(row).fold(0f32, f32::max)
        };
        let before = spread(&classifier.predict_proba(&pairs, 8).unwrap());
        classifier.divide_logits(f64::from(before / 5.0)).unwrap();
        classifier.spec.temperature = None;
        classifier.save(&run, &run).unwrap();
        let answers = classifier.predict_proba(&pairs, 8).unwrap();
        let lines: Vec<String> = answers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let label = spec.labels[(crate::kernels::argmax(p) + usize::from(i % 3 == 0)) % 3].clone();
                serde_json::json!({"id": i.to_string(), "text": texts[i], "target": target(i), "label": label})
                    .to_string()
            })
            .collect();
        std::fs::write(dir.join("held.jsonl"), lines.join("\n")).unwrap();
        CalibrateConfig {
            model: run,
            data: vec![dir.join("held.jsonl").display().to_string()],
            format: None,
            out: None,
            batch_size: 5,
            device: "cpu".into(),
        }
    }

    fn temperature_of(dir: &std::path::Path) -> Option<f64> {
        StanceSpec::read(&ModelDir::open(dir).unwrap()).unwrap().temperature
    }

    #[test]
    fn calibrating_again_on_the_same_data_changes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let config = setup(dir.path());
        let first = calibrate(&config).unwrap();
        let total = first.total;
        assert!(first.nll_after < first.nll_before && first.temperature > 1.5, "{first:?}");
        assert!(first.temperature < 15.0, "inside the bounds: {first:?}");
        assert_eq!((total, temperature_of(&config.model)), (first.temperature, Some(first.temperature)));
        let second = calibrate(&config).unwrap();
        let total = second.total;
        assert!((second.temperature - 1.0).abs() < 1e-3, "{second:?}");
        assert!((second.nll_before - first.nll_after).abs() < 1e-5, "{first:?} {second:?}");
        assert!((total / first.temperature - 1.0).abs() < 1e-3);
    }

    #[test]
    fn out_writes_a_copy_and_leaves_the_run_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = setup(dir.path());
        let weights = std::fs::read(config.model.join("model.safetensors")).unwrap();
        config.out = Some(dir.path().join("calibrated"));
        std::fs::write(config.model.join("metrics.jsonl"), "{}\n").unwrap();
        let fit = calibrate(&config).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("calibrated/metrics.jsonl")).unwrap(), "{}\n");
        assert_eq!(std::fs::read(config.model.join("model.safetensors")).unwrap(), weights);
        assert_eq!(temperature_of(&config.model), None);
        assert_eq!(temperature_of(&dir.path().join("calibrated")), Some(fit.temperature));
        let err = calibrate(&config).unwrap_err().to_string();
        assert!(err.contains("calibrated exists"), "{err}");
    }

    #[test]
    fn data_on_a_target_the_run_lacks_blames_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let config = setup(dir.path());
        std::fs::write(dir.path().join("held.jsonl"), r#"{"text": "a", "target": "climate", "label": "favor"}"#)
            .unwrap();
        let err = calibrate(&config).unwrap_err().to_string();
        assert!(err.contains("held.jsonl") && err.contains("climate"), "{err}");
        assert_eq!(temperature_of(&config.model), None);
    }

    /// Held-out pairs that the run trained on are counted and said so; other
    /// pairs, or a run whose training data cannot be read back, say nothing.
    #[test]
    fn pairs_the_run_trained_on_are_said() {
        let dir = tempfile::tempdir().unwrap();
        let config = setup(dir.path());
        let overlap = |c: &CalibrateConfig| {
            let (schema, records) = read(c).unwrap();
            training_overlap(c, &schema, &records).unwrap()
        };
        assert_eq!(overlap(&config), None, "no train_config.json");
        let schema = super::super::schema_of_runs(std::slice::from_ref(&config.model)).unwrap();
        let targets = dir.path().join("targets.json");
        std::fs::write(&targets, serde_json::to_string(&schema).unwrap()).unwrap();
        let trained = super::super::train::TrainConfig {
            train: config.data.clone(),
            dev: Vec::new(),
            targets,
            ..Default::default()
        };
        crate::io::write_json(&config.model.join("train_config.json"), &trained).unwrap();
        let note = overlap(&config).unwrap();
        assert!(note.starts_with("24 of 24 held-out pairs (same text and target) are also in the data"), "{note}");
    }
}
