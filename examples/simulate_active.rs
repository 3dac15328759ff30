//! Does active learning pay? The loop of `stancekit suggest` → label → `train
//! --freeze-encoder`, simulated on data with gold labels: TweetEval stance
//! `train` is the unlabelled pool, its `test` scores each round.
//!
//! The frozen-encoder recipe as the library runs it: the encoder reads every
//! tweet once, alone (`training::head_fit::head_inputs`, the vectors cached on
//! disk), each round fits a classifier per target on the labelled tweets'
//! vectors (`head_fit::fit_per_target`, C = 1, balanced class weights, as
//! `train --freeze-encoder` fits them) and scores `test` with `eval`'s pooled
//! macro-F1 and F_avg (`evaluation::Confusion`). The pool's probabilities come
//! from the same fit, and `active::select` picks the next tweets exactly as
//! `suggest` does (the embeddings `diverse` spreads over are the same
//! vectors). Every strategy starts from the same random tweets per seed.
//!
//! ```text
//! cargo run --release --example simulate_active -- --data ../shared/datasets/tweeteval-stance \
//!     [--model models/all-mpnet-base-v2] [--seeds 3] [--start 50] [--step 50] [--end 600] \
//!     [--svg docs/active-learning.svg] [--cache target/simulate-active]
//! ```
//!
//! It prints a markdown table (mean ± standard deviation over seeds) and the
//! labels each strategy needs to reach `random`'s final score, and writes the
//! two curves as one SVG.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use stancekit::active::{select, Request, Scored, Strategy};
use stancekit::data::{load_records, Record, Schema};
use stancekit::evaluation::Confusion;
use stancekit::model::{Classifier, HeadKind, Pooling, StanceSpec};
use stancekit::reporting::svg::{lines, system_colour, Series};
use stancekit::training::head_fit::{fit_per_target, head_inputs, ClassWeights, LinearFit};

#[derive(Debug, Parser)]
struct Args {
    /// TweetEval stance folder (`mapping.txt` and one folder per target).
    #[arg(long)]
    data: PathBuf,
    /// The frozen encoder.
    #[arg(long, default_value = "models/all-mpnet-base-v2")]
    model: String,
    #[arg(long, default_value = "datasets/targets.json")]
    targets: PathBuf,
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    #[arg(long, default_value_t = 50)]
    start: usize,
    #[arg(long, default_value_t = 50)]
    step: usize,
    #[arg(long, default_value_t = 600)]
    end: usize,
    #[arg(long, default_value = "docs/active-learning.svg")]
    svg: PathBuf,
    /// `diverse`'s shortlist, in multiples of each target's share of a round.
    #[arg(long, default_value_t = stancekit::active::SHORTLIST)]
    shortlist: usize,
    /// The split that scores each round: `test`, or `val` to choose settings without looking at `test`.
    #[arg(long, default_value = "test")]
    score_on: String,
    /// Where the encoder's vectors are kept between runs.
    #[arg(long, default_value = "target/simulate-active")]
    cache: PathBuf,
}

const STRATEGIES: [Strategy; 3] = [Strategy::Random, Strategy::Entropy, Strategy::Diverse];
/// The label set of `datasets/targets.json`, which TweetEval's labels are read into.
const LABELS: [&str; 3] = ["favor", "against", "none"];
/// `train --freeze-encoder`'s defaults: `--head-c 1`, balanced class weights.
const C: f64 = 1.0;

/// One split as the head reads it: a vector, a gold label and a target block per tweet.
struct Split {
    x: Vec<Vec<f32>>,
    y: Vec<usize>,
    target: Vec<usize>,
}

/// Pooled macro-F1 and F_avg on `test` after each round: `[strategy][seed][round]`.
type Curves = Vec<Vec<Vec<(f64, f64)>>>;

/// One of the two scores of a round.
type Metric = fn(&(f64, f64)) -> f64;

fn main() -> Result<()> {
    let args = Args::parse();
    let schema = Schema::load(&args.targets)?;
    anyhow::ensure!(schema.labels == LABELS, "{}: expected the labels {LABELS:?}", args.targets.display());
    let root = args.data.display();
    let train = load_records(&[format!("{root}:train")], None, &schema)?;
    let test = load_records(&[format!("{root}:{}", args.score_on)], None, &schema)?;
    let (pool, test, blocks) = embed(&args, &schema, &train, &test)?;
    let sizes: Vec<usize> = (args.start..=args.end).step_by(args.step).collect();
    let mut curves: Curves = vec![Vec::new(); STRATEGIES.len()];
    for seed in 1..=args.seeds {
        let first = initial(&pool, args.start, blocks, seed)?;
        for (s, &strategy) in STRATEGIES.iter().enumerate() {
            let started = std::time::Instant::now();
            let request = Request { n: 0, strategy, seed, targets: blocks, shortlist: args.shortlist };
            curves[s].push(run(&pool, &test, &sizes, first.clone(), request)?);
            eprintln!("seed {seed} {:>7}: {:.1} s", strategy.name(), started.elapsed().as_secs_f64());
        }
    }
    print!("{}", table(&sizes, &curves));
    println!("{}", reaching(&sizes, &curves));
    write_svg(&args.svg, &sizes, &curves)?;
    eprintln!("wrote {}", args.svg.display());
    Ok(())
}

/// The head's input for every tweet, from the cache or from one pass of the encoder.
fn embed(args: &Args, schema: &Schema, train: &[Record], test: &[Record]) -> Result<(Split, Split, usize)> {
    let base = stancekit::resolve::resolve(&args.model)?;
    let targets = train.iter().chain(test).map(|r| r.target.clone());
    let spec = StanceSpec {
        labels: schema.labels.clone(),
        targets: targets.map(|t| (t.clone(), schema.description(&t).unwrap_or(&t).to_string())).collect(),
        pooling: Pooling::Mean,
        max_length: 128,
        head: HeadKind::PerTarget,
        feature_layers: 1,
        temperature: None,
        neutral: None,
    };
    let blocks = spec.targets.len();
    let classifier = Classifier::from_base(&base, spec, &candle_core::Device::Cpu, 0)?;
    let name = base.path().file_name().map_or("model".into(), |n| n.to_string_lossy().into_owned());
    let split = |records: &[Record], part: &str| -> Result<Split> {
        let examples = stancekit::training::encode(&classifier, schema, records)?;
        let cache = args.cache.join(format!("{name}-{part}.npy"));
        let x = match read_cache(&cache, records.len()) {
            Some(x) => x,
            None => {
                let x = head_inputs(&classifier, examples.iter().map(|e| &e.encoded), 32, None, &|| false)?;
                write_cache(&cache, &x)?;
                x
            }
        };
        let y = examples.iter().map(|e| e.label as usize).collect();
        let target = examples.iter().map(|e| e.encoded.target.unwrap_or(0) as usize).collect();
        Ok(Split { x, y, target })
    };
    Ok((split(train, "train")?, split(test, &args.score_on)?, blocks))
}

fn read_cache(path: &Path, rows: usize) -> Option<Vec<Vec<f32>>> {
    let array: ndarray::Array2<f32> = ndarray_npy::read_npy(path).ok()?;
    (array.nrows() == rows).then(|| array.outer_iter().map(|r| r.to_vec()).collect())
}

fn write_cache(path: &Path, x: &[Vec<f32>]) -> Result<()> {
    std::fs::create_dir_all(path.parent().context("a cache folder")?)?;
    let d = x.first().map_or(0, Vec::len);
    let array = ndarray::Array2::from_shape_vec((x.len(), d), x.concat())?;
    ndarray_npy::write_npy(path, &array).with_context(|| path.display().to_string())
}

/// The same random start for every strategy of a seed: `random`'s balanced draw.
fn initial(pool: &Split, n: usize, blocks: usize, seed: u64) -> Result<Vec<usize>> {
    let uniform: Vec<Scored> = pool.target.iter().map(|&t| vec![(t, vec![1.0 / 3.0; LABELS.len()])]).collect();
    let request = Request { n, strategy: Strategy::Random, seed, targets: blocks, shortlist: 1 };
    let picks = select(&uniform, &request, &mut |_| unreachable!("random embeds nothing"), &[])?;
    Ok(picks.into_iter().map(|p| p.item).collect())
}

/// One curve: fit, score, pick the next `step`, until the last size.
/// `request` is the round's but for its size and seed.
fn run(
    pool: &Split,
    test: &Split,
    sizes: &[usize],
    mut labelled: Vec<usize>,
    request: Request,
) -> Result<Vec<(f64, f64)>> {
    let mut curve = Vec::new();
    for (round, window) in sizes.windows(2).map(Some).chain([None]).enumerate() {
        let fit = fit_on(pool, &labelled, request.targets);
        curve.push(score(&fit, test));
        let Some(&[now, next]) = window else { break };
        debug_assert_eq!(labelled.len(), now);
        let unlabelled: Vec<usize> = (0..pool.x.len()).filter(|i| !labelled.contains(i)).collect();
        let scored: Vec<Scored> = unlabelled.iter().map(|&i| vec![(pool.target[i], proba(&fit, pool, i))]).collect();
        let request = Request { n: next - now, seed: request.seed * 1_000 + round as u64, ..request };
        let centres: Vec<Vec<f32>> = labelled.iter().map(|&i| pool.x[i].clone()).collect();
        let mut embed = |items: &[usize]| Ok(items.iter().map(|&k| pool.x[unlabelled[k]].clone()).collect());
        let picks = select(&scored, &request, &mut embed, &centres)?;
        labelled.extend(picks.iter().map(|p| unlabelled[p.item]));
    }
    Ok(curve)
}

fn fit_on(pool: &Split, rows: &[usize], blocks: usize) -> LinearFit {
    let x: Vec<Vec<f32>> = rows.iter().map(|&i| pool.x[i].clone()).collect();
    let y: Vec<usize> = rows.iter().map(|&i| pool.y[i]).collect();
    let t: Vec<usize> = rows.iter().map(|&i| pool.target[i]).collect();
    fit_per_target(&x, (&y, &t), (LABELS.len(), blocks), C, ClassWeights::Balanced)
}

fn proba(fit: &LinearFit, split: &Split, i: usize) -> Vec<f32> {
    fit.proba(&split.x[i], split.target[i], LABELS.len()).into_iter().map(|p| p as f32).collect()
}

/// Pooled macro-F1 and F_avg, as `eval` reports them.
fn score(fit: &LinearFit, test: &Split) -> (f64, f64) {
    let pred: Vec<usize> = (0..test.x.len()).map(|i| stancekit::kernels::argmax(&proba(fit, test, i))).collect();
    let labels = LABELS.map(String::from);
    let scores = Confusion::new(&labels, &test.y, &pred).scores();
    (scores.macro_f1, scores.f_avg)
}

/// Mean and sample standard deviation, ×100.
fn mean_sd(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.map(|x| 100.0 * x).collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (mean, var.sqrt())
}

/// One metric's mean over seeds at every size.
fn means(curves: &Curves, s: usize, metric: Metric) -> Vec<f64> {
    let rounds = curves[s][0].len();
    (0..rounds).map(|r| mean_sd(curves[s].iter().map(|c| metric(&c[r]))).0).collect()
}

const METRICS: [(&str, Metric); 2] = [("macro-F1", |m| m.0), ("F_avg", |m| m.1)];

fn table(sizes: &[usize], curves: &Curves) -> String {
    let mut header = String::from("| labels |");
    let mut rule = String::from("|---:|");
    for (metric, _) in METRICS {
        for strategy in STRATEGIES {
            header += &format!(" {metric} {} |", strategy.name());
            rule += "---:|";
        }
    }
    let mut out = format!("{header}\n{rule}\n");
    for (r, size) in sizes.iter().enumerate() {
        out += &format!("| {size} |");
        for (_, metric) in METRICS {
            for strategy in curves {
                let (mean, sd) = mean_sd(strategy.iter().map(|c| metric(&c[r])));
                out += &format!(" {mean:.1} ± {sd:.1} |");
            }
        }
        out += "\n";
    }
    out
}

/// For each strategy, the fewest labels whose mean reaches `random`'s mean at the last size.
fn reaching(sizes: &[usize], curves: &Curves) -> String {
    let mut out = String::new();
    for (name, metric) in METRICS {
        let goal = *means(curves, 0, metric).last().expect("a round");
        out += &format!("\n{name}: random ends at {goal:.1} with {} labels;", sizes.last().expect("a size"));
        for (s, strategy) in STRATEGIES.iter().enumerate().skip(1) {
            let first = means(curves, s, metric).iter().position(|&m| m >= goal);
            let reached = match first {
                Some(r) => {
                    format!("{} labels ({:.0} %)", sizes[r], 100.0 * sizes[r] as f64 / *sizes.last().unwrap() as f64)
                }
                None => "not reached".into(),
            };
            out += &format!(" {} reaches it with {reached};", strategy.name());
        }
        // The whole curve after the shared start, in one number per strategy.
        let area: Vec<String> = (0..STRATEGIES.len())
            .map(|s| {
                let m = means(curves, s, metric);
                format!("{} {:.1}", STRATEGIES[s].name(), m[1..].iter().sum::<f64>() / (m.len() - 1).max(1) as f64)
            })
            .collect();
        out += &format!(" mean over the rounds after the start: {}", area.join(", "));
    }
    out
}

/// Both metrics' mean curves, side by side in one SVG.
fn write_svg(path: &Path, sizes: &[usize], curves: &Curves) -> Result<()> {
    let charts: Vec<String> = METRICS
        .iter()
        .map(|(name, metric)| {
            let series: Vec<Series> = STRATEGIES
                .iter()
                .enumerate()
                .map(|(s, strategy)| Series {
                    name: strategy.name(),
                    colour: system_colour(s, *strategy == Strategy::Random),
                    points: sizes.iter().map(|&n| n as f64).zip(means(curves, s, *metric)).collect(),
                    dashed: *strategy == Strategy::Random,
                })
                .collect();
            let title = format!("TweetEval test {name} (×100, mean of seeds) against labelled tweets");
            // A zero-based axis would flatten differences of a few points.
            let values = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
            let low = (values().fold(f64::INFINITY, f64::min) / 5.0).floor() * 5.0;
            let high = (values().fold(f64::NEG_INFINITY, f64::max) / 5.0).ceil() * 5.0;
            lines(&title, &format!("labelled tweets · {name}"), &series, Some((low, high)), None)
        })
        .collect();
    let (width, height) = (2.0 * 464.0, 248.0);
    let style = "<style>text{font:11px system-ui,sans-serif;fill:#1a202c}.tick{fill:#718096}</style>";
    let body: String = charts
        .iter()
        .enumerate()
        .map(|(i, c)| format!(r#"<g transform="translate({})">{c}</g>"#, i as f64 * 464.0))
        .collect();
    let svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}">{style}{body}</svg>"#
    );
    stancekit::io::write_text(path, &(svg + "\n"))?;
    Ok(())
}
