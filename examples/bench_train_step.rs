//! Times one fine-tuning step of the default model as `stancekit train` runs it:
//! batch 16, padded to 64 tokens, dropout on, AdamW with the trainer's groups
//! (lr 2e-5, weight decay 0.01 on weight matrices), gradient clipping at 1.0.
//!
//! Forward (with the loss), backward (with collecting the gradients) and the
//! optimizer (clipping + AdamW) are timed separately; the median of `--steps`
//! steps after `--warmup` steps is reported. `scripts/bench-train-step.sh` runs
//! this and the PyTorch twin (`scripts/bench_train_step.py`) on the same batch.
//!
//! ```text
//! cargo run --release --example bench_train_step -- [--model DIR] [--steps 20] [--warmup 3]
//!     [--save-batch FILE] [--json]
//! cargo run --release --example bench_train_step -- --print-malloc-tunables
//! ```
//!
//! The second form prints stancekit's malloc settings as a `GLIBC_TUNABLES`
//! value, with which the script runs PyTorch a second time.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use stancekit::model::{Classifier, Pooling, StanceSpec};
use stancekit::tokenization::Batch;
use stancekit::training::{trainer, TrainConfig};

const BATCH: usize = 16;
const LENGTH: usize = 64;

/// (target description, sentence): short and long ones, so that the batch has
/// both padding and truncation at 64 tokens.
const PAIRS: [(&str, &str); BATCH] = [
    ("ukraine joining nato", "Nato membership is the only guarantee that keeps Ukraine safe from another invasion."),
    ("ukraine joining nato", "Kyiv should stay neutral."),
    ("europe pay more for defence", "European governments have relied on American money for far too long and must now spend at least three percent of their output on their armies, whatever the voters say."),
    ("europe pay more for defence", "The summit ended without any agreement on budgets."),
    ("ukraine joining nato", "Bringing Ukraine into the alliance would drag every member into a war with a nuclear power."),
    ("a ceasefire now", "Every day the guns keep firing, more families lose their homes; talks must start this week."),
    ("a ceasefire now", "A pause today only lets the invader regroup and strike again next spring."),
    ("europe pay more for defence", "Defence spending rose in Poland."),
    ("ukraine joining nato", "The foreign ministers met in Brussels on Tuesday to discuss the agenda for the summit, which is expected to focus on ammunition supplies, air defence and the long-term question of membership."),
    ("a ceasefire now", "The negotiators said nothing."),
    ("sanctions on russia", "The sanctions have barely dented the economy and mostly hurt ordinary people in Europe."),
    ("sanctions on russia", "Tighter sanctions are the cheapest way to shorten the war."),
    ("sanctions on russia", "Oil prices fell slightly after the announcement, analysts said, although markets remained nervous about supply disruptions in the coming months and traders expected further volatility."),
    ("a ceasefire now", "We want peace, and we want it now."),
    ("europe pay more for defence", "Why should taxpayers in Lisbon fund tanks for Berlin?"),
    ("ukraine joining nato", "Membership talks should begin at once."),
];

struct Args {
    model: PathBuf,
    steps: usize,
    warmup: usize,
    save_batch: Option<PathBuf>,
    json: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        model: PathBuf::from(stancekit::resolve::DEFAULT_MODEL),
        steps: 20,
        warmup: 3,
        save_batch: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value()?.into(),
            "--steps" => args.steps = value()?.parse()?,
            "--warmup" => args.warmup = value()?.parse()?,
            "--save-batch" => args.save_batch = Some(value()?.into()),
            "--json" => args.json = true,
            "--print-malloc-tunables" => {
                println!("{}", stancekit::runtime::malloc_tunables());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    Ok(args)
}

/// The pairs, tokenised as for training and padded to exactly [`LENGTH`] tokens.
fn fixed_batch(classifier: &Classifier, device: &Device) -> Result<(Batch, Vec<u32>, serde_json::Value)> {
    let encoded = classifier.tokenizer.encode_pairs(&PAIRS)?;
    let pad = classifier.tokenizer.pad_id();
    let (mut ids, mut types, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    for e in &encoded {
        let n = e.len();
        ids.push(e.ids.iter().copied().chain(std::iter::repeat_n(pad, LENGTH - n)).collect::<Vec<u32>>());
        types.push(e.type_ids.iter().copied().chain(std::iter::repeat_n(0, LENGTH - n)).collect::<Vec<u32>>());
        mask.push(std::iter::repeat_n(1u32, n).chain(std::iter::repeat_n(0, LENGTH - n)).collect::<Vec<u32>>());
    }
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 3).collect();
    let json = serde_json::json!({
        "input_ids": ids, "token_type_ids": types, "attention_mask": mask, "labels": labels,
    });
    let batch = Batch {
        input_ids: Tensor::new(ids, device)?,
        token_type_ids: Tensor::new(types, device)?,
        attention_mask: Tensor::new(mask, device)?,
        targets: None,
    };
    Ok((batch, labels, json))
}

/// CPU time of the whole process (all threads), in ms: a steadier measure than
/// wall time on a machine shared with other work.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// Minor page faults of the process so far: each is a fresh page the kernel had
/// to map and zero, the cost of allocating large buffers anew.
fn minor_faults() -> f64 {
    // SAFETY: getrusage fills one rusage struct, which `usage` is.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_minflt as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn main() -> Result<()> {
    let args = parse_args()?;
    stancekit::runtime::pin_thread_count();
    stancekit::runtime::park_idle_workers();
    if std::env::var_os("STANCEKIT_DEFAULT_MALLOC").is_none() {
        stancekit::runtime::tune_malloc();
    }
    let device = Device::Cpu;
    let dir = stancekit::resolve::resolve(args.model.to_str().context("model path")?)?;
    let spec = StanceSpec {
        labels: ["favor", "against", "none"].map(String::from).to_vec(),
        targets: Default::default(),
        pooling: Pooling::Cls,
        max_length: LENGTH,
        head: Default::default(),
        feature_layers: 1,
        temperature: None,
        neutral: None,
    };
    let config = TrainConfig { learning_rate: 2e-5, weight_decay: 0.01, max_grad_norm: 1.0, ..TrainConfig::default() };
    let classifier = Classifier::from_base(&dir, spec, &device, config.seed)?;
    let (batch, labels, json) = fixed_batch(&classifier, &device)?;
    if let Some(path) = &args.save_batch {
        std::fs::write(path, serde_json::to_string(&json)?).with_context(|| path.display().to_string())?;
    }
    let labels = Tensor::new(labels, &device)?;
    let mut optimizer = trainer::build_optimizer(&config, &classifier)?;

    let (mut fwd, mut bwd, mut opt, mut step, mut losses) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut cpu_fwd, mut cpu_bwd, mut cpu_opt, mut cpu_step) = (vec![], vec![], vec![], vec![]);
    let mut faults = vec![];
    for i in 0..args.warmup + args.steps {
        let f0 = minor_faults();
        let c0 = cpu_ms();
        let t0 = Instant::now();
        let loss = trainer::training_loss(&classifier, &batch, &labels, None, 0.0)?;
        let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let t1 = Instant::now();
        let c1 = cpu_ms();
        let grads = trainer::gradients(&loss, 1.0, &optimizer)?;
        let t2 = Instant::now();
        let c2 = cpu_ms();
        trainer::update(&mut optimizer, &grads, config.max_grad_norm, 1.0)?;
        let t3 = Instant::now();
        let c3 = cpu_ms();
        drop(grads);
        if i >= args.warmup {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            fwd.push(ms(t0, t1));
            bwd.push(ms(t1, t2));
            opt.push(ms(t2, t3));
            step.push(ms(t0, t3));
            cpu_fwd.push(c1 - c0);
            cpu_bwd.push(c2 - c1);
            cpu_opt.push(c3 - c2);
            cpu_step.push(c3 - c0);
            faults.push(minor_faults() - f0);
        }
        losses.push(value);
    }
    let result = serde_json::json!({
        "system": "stancekit (candle 0.11.1)",
        "threads": candle_core::utils::get_num_threads(),
        "steps": args.steps,
        "step_ms": median(step.clone()),
        "step_min_ms": step.iter().copied().fold(f64::INFINITY, f64::min),
        "step_max_ms": step.iter().copied().fold(0.0, f64::max),
        "forward_ms": median(fwd.clone()),
        "backward_ms": median(bwd.clone()),
        "optimizer_ms": median(opt.clone()),
        "cpu_step_ms": median(cpu_step),
        "cpu_forward_ms": median(cpu_fwd),
        "cpu_backward_ms": median(cpu_bwd),
        "cpu_optimizer_ms": median(cpu_opt),
        "page_faults_per_step": median(faults),
        "samples": { "step_ms": step, "forward_ms": fwd, "backward_ms": bwd, "optimizer_ms": opt },
        "first_loss": losses[0],
        "last_loss": losses[losses.len() - 1],
    });
    if args.json {
        println!("{result}");
    } else {
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(())
}
