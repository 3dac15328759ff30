//! `stancekit suggest`: read an unlabelled pool as `predict` reads its input,
//! score every (sentence, target) pair, pick the sentences most worth
//! labelling ([`crate::active`]), and write them with their probabilities and
//! why each was picked, for `stancekit label`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use crate::active::{read_pool, select, LabelProbs, Pick, PoolSentence, Request, Scored, Strategy, Suggestion};
use crate::data::{Record as Labelled, Schema};
use crate::inference::predict::{predict_stream, Prediction, Sink, StreamOptions, TargetSet};
use crate::input::Record;
use crate::model::Classifier;
use crate::{Error, Result};

/// Configuration of `stancekit suggest`.
#[derive(Debug, Clone, clap::Args)]
pub struct SuggestConfig {
    /// Trained model folder (as `stancekit train` writes it) or Hugging Face hub id.
    #[arg(long)]
    pub model: String,
    /// Unlabelled sentences, read as `predict` reads --input: raw article text
    /// (`.txt`, split into sentences), lines, JSONL or CSV with `text`.
    #[arg(long, required = true, num_args = 1..)]
    pub pool: Vec<PathBuf>,
    /// Targets to score, comma-separated ids (default: every target the model was trained on).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// A target the model reads zero-shot from its description, `ID=DESCRIPTION` (repeatable;
    /// fine-tuned models only: a frozen-encoder model has a classifier per trained target).
    #[arg(long = "target", value_name = "ID=DESCRIPTION")]
    pub target: Vec<String>,
    /// How many sentences to suggest.
    #[arg(long, default_value_t = 50)]
    pub n: usize,
    /// How to rank them (all balance the picks over the targets).
    #[arg(long, value_enum, default_value_t = Strategy::Diverse)]
    pub strategy: Strategy,
    /// Labelled files (any format `data check` reads): their sentences are never suggested,
    /// and `diverse` picks away from them.
    #[arg(long, num_args = 1..)]
    pub exclude: Vec<String>,
    /// Where to write the suggestions (JSONL), replaced only when the run succeeds.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of `random`.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub layout: super::InputLayout,
    /// Pairs per forward pass.
    #[arg(long, default_value_t = 32, value_parser = super::count)]
    pub batch_size: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub requested: usize,
    pub suggested: usize,
    /// Distinct unlabelled sentences in the pool.
    pub pool: usize,
    pub strategy: Strategy,
    /// Picks per target, in target order.
    pub per_target: Vec<(String, usize)>,
    pub out: PathBuf,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_target: Vec<String> = self.per_target.iter().map(|(t, n)| format!("{t} {n}")).collect();
        write!(
            f,
            "suggested {} of {} unlabelled sentences ({}; picked for {}) into {}",
            self.suggested,
            self.pool,
            self.strategy.name(),
            per_target.join(", "),
            self.out.display()
        )?;
        if self.suggested < self.requested.min(self.pool) {
            write!(f, "; the rest are near-duplicates of labelled or suggested sentences")?;
        }
        Ok(())
    }
}

/// Runs `stancekit suggest`.
pub fn run(config: &SuggestConfig) -> Result<Summary> {
    if config.n == 0 {
        return Err(Error::Other("--n: suggest at least one sentence".into()));
    }
    let exclude: Vec<PathBuf> = config.exclude.iter().map(|e| crate::data::Input::parse(e).path).collect();
    let model = PathBuf::from(&config.model);
    let inputs = config.pool.iter().chain(&exclude).chain([&model]);
    crate::io::check_not_an_input(&config.out, "--out", inputs)?;
    let (_, classifier) = super::load_classifier(&config.model, &config.device, &super::PrecisionArgs::default())?;
    let targets = TargetSet::new(&classifier.spec.targets, &config.targets, &config.target)?;
    targets.check_fit(&classifier.pair_encoder())?;
    let labelled = read_labelled(&config.exclude, &classifier, &targets)?;
    let skip: HashSet<String> = labelled.iter().map(|r| r.sentence().to_string()).collect();
    let options = config.layout.read_options(None);
    let pool = read_pool(&config.pool, &options, &skip)?;
    let (scored, ids) = score(&classifier, &targets, &pool, config.batch_size)?;
    let (n, strategy, seed) = (config.n, config.strategy, config.seed);
    let request = Request { n, strategy, seed, targets: ids.len(), shortlist: crate::active::SHORTLIST };
    let embed = |texts: Vec<&str>| sentence_embeddings(&classifier, &texts, config.batch_size);
    let centres = match config.strategy {
        Strategy::Diverse => embed(skip.iter().map(String::as_str).collect())?,
        _ => Vec::new(),
    };
    let mut embed_pool = |items: &[usize]| embed(items.iter().map(|&i| pool[i].record.text.as_str()).collect());
    let picks = select(&scored, &request, &mut embed_pool, &centres)?;
    let candidates = candidates_per_target(&scored, ids.len());
    let rows: Vec<Suggestion> = picks
        .iter()
        .map(|pick| {
            let why = why(pick, config, &ids[pick.target], candidates[pick.target]);
            suggestion(
                &pool[pick.item],
                &scored[pick.item],
                pick,
                (&ids, &classifier.spec.labels),
                why,
                config.strategy,
            )
        })
        .collect();
    crate::io::write_jsonl(&config.out, &rows)?;
    let per_target = ids.iter().enumerate().map(|(t, id)| (id.clone(), picks.iter().filter(|p| p.target == t).count()));
    Ok(Summary {
        requested: config.n,
        suggested: rows.len(),
        pool: pool.len(),
        strategy: config.strategy,
        per_target: per_target.collect(),
        out: config.out.clone(),
    })
}

/// The labelled records of `--exclude`. Only their texts matter, so in
/// JSONL and CSV a target or label the model lacks (one labelled since it
/// was trained) is no problem; a file that cannot be read is, and so is a
/// target description that SemEval-style files name and no target has.
fn read_labelled(files: &[String], classifier: &Classifier, selected: &TargetSet) -> Result<Vec<Labelled>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    // The model's targets and `--target`'s let SemEval-style files that name a target by description be read.
    let spec = &classifier.spec;
    let mut targets = spec.targets.clone();
    let given = selected.selected().iter().map(|&t| (selected.id(t).to_string(), selected.description(t).to_string()));
    targets.extend(given);
    let (labels, neutral) = (spec.labels.clone(), spec.neutral.clone());
    let schema = Schema { labels, targets, neutral, source: None, from_runs: true };
    let (files, problems) = crate::data::read_all(files, None, &schema);
    if !problems.is_empty() {
        return Err(crate::data::invalid(problems));
    }
    Ok(files.into_iter().flat_map(|f| f.entries).map(|e| e.record).collect())
}

/// Every pool sentence's probabilities per target, as `predict` computes them;
/// also the target ids, indexed as in the scores (the selected ones first).
fn score(
    classifier: &Classifier,
    targets: &TargetSet,
    pool: &[PoolSentence],
    batch_size: usize,
) -> Result<(Vec<Scored>, Vec<String>)> {
    // The stream's ids are pool positions, so each prediction finds its sentence;
    // a sentence given for several targets goes once for each.
    let records = pool.iter().enumerate().flat_map(|(i, p)| {
        let record = Record { id: i.to_string(), ..p.record.clone() };
        let targets = p.targets.clone().map_or(vec![None], |ts| ts.into_iter().map(Some).collect());
        targets.into_iter().map(move |target| Ok(Record { target, ..record.clone() }))
    });
    let mut sink = Collect {
        scored: vec![Vec::new(); pool.len()],
        ids: targets.selected().iter().map(|&t| targets.id(t).to_string()).collect(),
    };
    let options = StreamOptions { batch_size, window: 16, skip_invalid: false };
    predict_stream(classifier, targets, records, &options, None, &mut sink)?;
    Ok((sink.scored, sink.ids))
}

struct Collect {
    scored: Vec<Scored>,
    ids: Vec<String>,
}

impl Sink for Collect {
    fn prediction(&mut self, p: &Prediction) -> Result<()> {
        let item: usize = p.record.id.parse().expect("pool positions as ids");
        let target = match self.ids.iter().position(|t| t == p.target) {
            Some(t) => t,
            None => {
                self.ids.push(p.target.to_string());
                self.ids.len() - 1
            }
        };
        // Its records may name one target twice (by id and by description).
        if !self.scored[item].iter().any(|(t, _)| *t == target) {
            self.scored[item].push((target, p.probabilities.to_vec()));
        }
        Ok(())
    }
}

/// The vector the model's head reads for each sentence alone ([`crate::training::head_fit::head_inputs`]).
fn sentence_embeddings(classifier: &Classifier, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
    let encoded = classifier.tokenizer.encode_texts(texts)?;
    crate::training::head_fit::head_inputs(classifier, &encoded, batch_size, None, &|| false)
}

fn candidates_per_target(scored: &[Scored], targets: usize) -> Vec<usize> {
    let mut counts = vec![0; targets];
    scored.iter().flatten().for_each(|(t, _)| counts[*t] += 1);
    counts
}

fn why(pick: &Pick, config: &SuggestConfig, target: &str, candidates: usize) -> String {
    let rank = format!("rank {} of {candidates} for {target}", pick.rank);
    match config.strategy {
        Strategy::Random => format!("drawn at random for {target} (seed {})", config.seed),
        Strategy::Margin => format!("{:.3} between the two likeliest labels, {rank}", 1.0 - pick.score),
        Strategy::Entropy => format!("entropy {:.3} (1: all labels equally likely), {rank}", pick.score),
        Strategy::Diverse => {
            let coverage = match pick.distance {
                Some(d) => format!("cosine distance {d:.3} to the nearest labelled or earlier-suggested sentence"),
                None => "the first pick, with nothing labelled to be near".into(),
            };
            format!("entropy {:.3} (1: all labels equally likely), {rank}; {coverage}", pick.score)
        }
    }
}

fn suggestion(
    sentence: &PoolSentence,
    scored: &Scored,
    pick: &Pick,
    (ids, labels): (&[String], &[String]),
    why: String,
    strategy: Strategy,
) -> Suggestion {
    let record = &sentence.record;
    let probs: BTreeMap<String, LabelProbs> = scored
        .iter()
        .map(|(t, p)| (ids[*t].clone(), LabelProbs(labels.iter().cloned().zip(p.iter().copied()).collect())))
        .collect();
    let span = record.span.as_ref();
    Suggestion {
        id: record.id.clone(),
        doc: span.map(|s| s.doc.clone()),
        sentence: span.map(|s| s.sentence),
        start: span.map(|s| s.start),
        end: span.map(|s| s.end),
        text: record.text.clone(),
        before: sentence.before.clone(),
        after: sentence.after.clone(),
        probs,
        picked_for: ids[pick.target].clone(),
        strategy,
        score: pick.score,
        distance: pick.distance,
        why,
    }
}

/// Runs `stancekit suggest` and prints its summary line.
pub fn run_command(config: &SuggestConfig) -> Result<()> {
    eprintln!("{}", run(config)?);
    Ok(())
}
