//! `stancekit label`: read the sentences to label, open the labels file
//! (resuming where it stops), choose the targets, optionally load a model for
//! its guesses, and serve the labelling page on localhost until Ctrl-C
//! ([`crate::labeling`]).

use std::io::Write;
use std::path::PathBuf;

use crate::active::LabelProbs;
use crate::data::Schema;
use crate::evaluation::metrics::neutral_indices;

use crate::labeling::{self, Item, LabelStore, Meta, Scorer, Session, Target};
use crate::model::Classifier;
use crate::{Error, Result};

/// Configuration of `stancekit label`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabelConfig {
    /// Targets file: the allowed labels and the target ids with their descriptions.
    #[arg(long, value_name = "FILE", default_value = "datasets/targets.json")]
    pub targets: PathBuf,
    /// Sentences to label: a suggestions file (`stancekit suggest --out`), or raw
    /// article text, lines, JSONL or CSV as `predict` reads --input.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// The labels file (JSONL, as `train --train` reads it): created if missing,
    /// only ever appended to; labelling resumes at its first unlabelled sentence.
    #[arg(long)]
    pub out: PathBuf,
    /// Targets to label, comma-separated ids from the targets file (default: the
    /// suggestions' targets, else the model's, else every target of the file).
    #[arg(long = "target", value_delimiter = ',')]
    pub target: Vec<String>,
    /// A trained model (run folder or hub id) whose guess the page shows for each sentence.
    #[arg(long)]
    pub model: Option<String>,
    /// A rules file the page shows (for example the annotation guidelines); default: a short reminder.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Address to serve on; port 0 picks a free one. Keep it on 127.0.0.1: the page has no login.
    #[arg(long, default_value = "127.0.0.1:8750")]
    pub addr: String,
    #[command(flatten)]
    pub layout: super::InputLayout,
    /// Where the model runs: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// Runs `stancekit label` until Ctrl-C.
pub fn run(config: &LabelConfig) -> Result<()> {
    let schema = Schema::load(&config.targets)?;
    let options = config.layout.read_options(None);
    let items = labeling::read_items(&config.input, &options)?;
    if items.is_empty() {
        return Err(Error::Other("--input: no sentences to label".into()));
    }
    let classifier = config.model.as_deref().map(load_model(config)).transpose()?;
    check_labels(&schema, &items, classifier.as_ref(), config)?;
    let targets = targets(config, &schema, &items, classifier.as_ref())?;
    // Every input is read before the labels file is opened (and so created).
    let rules = match &config.rules {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| Error::Other(format!("--rules {}: {e}", path.display())))?
        }
        None => labeling::default_rules(&schema),
    };
    // A target the model cannot read fails here, before the labels file exists.
    let scorer = classifier.map(|classifier| scorer(classifier, &targets)).transpose()?;
    let listener = crate::http::bind(&config.addr, "label")?;
    check_out(config)?;
    let store = LabelStore::open(&config.out, &schema)?;
    let meta = Meta {
        targets: targets.clone(),
        labels: schema.labels.clone(),
        neutral: neutral_indices(&schema.labels, schema.neutral.as_ref())
            .iter()
            .map(|&i| schema.labels[i].clone())
            .collect(),
        rules,
        out: config.out.display().to_string(),
        inputs: config.input.iter().map(|p| p.display().to_string()).collect(),
        model: config.model.clone(),
    };
    let mut session = Session::new(items, targets.clone(), schema.labels, store);
    if let Some(scorer) = scorer {
        session = session.with_scorer(scorer);
    }
    announce(&session, &listener, config)?;
    labeling::serve(session, meta, listener)
}

/// The model's guesses (a suggestions file's, or `--model`'s) name the labels
/// it was trained on: another label set than the targets file's would show
/// guesses for labels the page does not offer.
fn check_labels(schema: &Schema, items: &[Item], model: Option<&Classifier>, config: &LabelConfig) -> Result<()> {
    let mut wanted: Vec<&String> = schema.labels.iter().collect();
    wanted.sort();
    let suggested = items.iter().flat_map(|i| i.probs.iter().flat_map(|p| p.values())).next();
    let from_file = suggested.map(|p| (p.0.iter().map(|(l, _)| l).collect::<Vec<_>>(), "the suggestions in --input"));
    let from_model = model.map(|c| (c.spec.labels.iter().collect::<Vec<_>>(), "--model"));
    for (mut labels, whose) in from_file.into_iter().chain(from_model) {
        labels.sort();
        if labels != wanted {
            let list = |l: &[&String]| l.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            return Err(Error::Other(format!(
                "{whose} guess labels {}, but --targets {} allows {}: pass the targets file the model was trained with",
                list(&labels),
                config.targets.display(),
                list(&wanted)
            )));
        }
    }
    Ok(())
}

/// The labels file is appended to, synced and cut back on undo: a plain file
/// (or none yet), and not one of the inputs.
fn check_out(config: &LabelConfig) -> Result<()> {
    if std::fs::metadata(&config.out).is_ok_and(|m| !m.is_file()) {
        let message = format!(
            "--out {}: not a plain file; labels are appended to one and cut back on undo",
            config.out.display()
        );
        return Err(Error::Other(message));
    }
    crate::io::check_not_an_input(&config.out, "--out", &config.input)
}

fn load_model(config: &LabelConfig) -> impl Fn(&str) -> Result<Classifier> + '_ {
    |model| Ok(super::load_classifier(model, &config.device, &super::PrecisionArgs::default())?.1)
}

/// `--target`, or the suggestions', the model's, or the file's targets; each must be in the targets file.
fn targets(config: &LabelConfig, schema: &Schema, items: &[Item], model: Option<&Classifier>) -> Result<Vec<Target>> {
    let mut ids = config.target.clone();
    if ids.is_empty() {
        ids = labeling::targets_of(items);
    }
    if ids.is_empty() {
        ids = model
            .map_or_else(|| schema.targets.keys().cloned().collect(), |m| m.spec.targets.keys().cloned().collect());
    }
    let mut targets: Vec<Target> = Vec::new();
    for id in ids.iter().map(|id| id.trim()).filter(|id| !id.is_empty()) {
        let description = schema.description(id).ok_or_else(|| {
            Error::Other(format!(
                "unknown target `{id}`: {} has {}; add it there with its description, or label other targets",
                config.targets.display(),
                schema.target_list()
            ))
        })?;
        if !targets.iter().any(|t| t.id == id) {
            targets.push(Target { id: id.to_string(), description: description.to_string() });
        }
    }
    Ok(targets)
}

/// The model's probabilities per target for a sentence, reading each target by
/// the description it was trained with (a target it does not know, by the file's).
fn scorer(classifier: Classifier, targets: &[Target]) -> Result<Scorer> {
    let descriptions: Vec<String> =
        targets.iter().map(|t| classifier.description(&t.id).unwrap_or(&t.description).to_string()).collect();
    // A target this model cannot read (a per-target model has no classifier for it) fails now.
    classifier.encode_pairs(&descriptions.iter().map(|d| (d.as_str(), "x")).collect::<Vec<_>>())?;
    let labels = classifier.spec.labels.clone();
    Ok(Box::new(move |text: &str| {
        let pairs: Vec<(&str, &str)> = descriptions.iter().map(|d| (d.as_str(), text)).collect();
        let probs = classifier.predict_proba(&pairs, pairs.len())?;
        Ok(probs.into_iter().map(|p| LabelProbs(labels.iter().cloned().zip(p).collect())).collect())
    }))
}

/// The address on stdout (tests and scripts read it from there), and where things stand.
fn announce(session: &Session, listener: &std::net::TcpListener, config: &LabelConfig) -> Result<()> {
    let addr = listener.local_addr().map_err(|e| Error::Other(format!("--addr {}: {e}", config.addr)))?;
    if !addr.ip().is_loopback() {
        eprintln!("warning: {addr} is reachable from other machines, and the page has no login");
    }
    let stats = session.stats();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "labelling at http://{addr}/ : {} sentences, {} labelled, into {} (Ctrl-C stops; every decision is saved at once)",
        stats.total,
        stats.labelled,
        config.out.display()
    )
    .and_then(|()| out.flush())
    .map_err(|e| Error::io("stdout", e))
}

/// Runs `stancekit label`.
pub fn run_command(config: &LabelConfig) -> Result<()> {
    run(config)
}
