//! Times the int8 matrix product (every kernel this CPU runs) against the f32
//! linear layer on the shapes of MiniLM's and MPNet's layers, one input of
//! `--rows` token rows (batch × tokens). Prints the CPU flags and a table of
//! GMAC/s (multiply-adds per second) and the ratio to f32, medians of `--reps`.
//! With `--peak`, first the multiply-adds one core can make per second
//! (independent FMAs, and `vpdpbusd`s, on registers, the widest vectors the
//! CPU has): the ceiling of any f32 and of any VNNI int8 matrix product,
//! PyTorch's included. Without VNNI, two int8 ceilings: exact sums (the
//! `avx2` kernel's instructions) and 7-bit activations (fbgemm's, which
//! PyTorch's dynamic int8 runs on such a CPU).
//!
//! ```text
//! cargo run --release --example bench_int8_gemm -- [--rows 1024] [--reps 9] [--only INPUTS] [--kernel NAME|none] [--best] [--peak]
//! ```

use std::time::Instant;

use anyhow::Result;
use candle_core::{Device, Module, Tensor};
use stancekit::kernels::int8::{Kernel, QuantizedWeights};
use stancekit::model::linear::Linear;

/// (inputs, outputs): attention projections, FFN in, FFN out; MiniLM then MPNet.
const SHAPES: [(usize, usize); 6] = [(384, 384), (384, 1536), (1536, 384), (768, 768), (768, 3072), (3072, 768)];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median of `reps` timings, or the fastest with `best` (on a shared machine
/// the fastest run is the one least disturbed, for A/B comparisons of a kernel).
fn time<F: FnMut()>(reps: usize, best: bool, mut f: F) -> f64 {
    f();
    let pick = if best { |v: Vec<f64>| v.into_iter().fold(f64::INFINITY, f64::min) } else { median };
    pick(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Independent accumulators in a peak loop: more than an instruction's
/// latency times its issue rate (4 × 2 for FMA and `vpdpbusd` on the cores
/// seen), and no more than the registers hold beside the operands (32 with
/// AVX-512, 16 with AVX2: 24 AVX2 chains spilled, and the "peak" came out at
/// half what gemm's kernels reach on a Zen 3).
#[cfg(target_arch = "x86_64")]
const STEPS: usize = 4_000_000;

/// A function that runs `$chains × STEPS` steps of one multiply-add on
/// registers, no memory traffic, and returns how many: its time gives the
/// core's peak. A step
/// that is more than one instruction multiplies its own accumulator (`$x`
/// is then unused), or the compiler would hoist the invariant product out
/// of the loop.
#[cfg(target_arch = "x86_64")]
macro_rules! peak_loop {
    ($name:ident, $features:literal, $chains:literal, $zero:expr, ($a:expr, $b:expr), |$acc:ident, $x:ident, $y:ident| $op:expr) => {
        #[target_feature(enable = $features)]
        unsafe fn $name() -> usize {
            #[allow(unused_variables)]
            let ($x, $y) = ($a, $b);
            let mut acc = [$zero; $chains];
            for _ in 0..STEPS {
                acc.iter_mut().for_each(|$acc| *$acc = $op);
            }
            std::hint::black_box(acc);
            $chains * STEPS
        }
    };
}

/// One core's peak: (multiply-adds per second, what ran), for f32 and int8
/// on the widest vectors the CPU has. Without VNNI there are two int8
/// ceilings: sums exact for any u8 activation, which stancekit's `avx2`
/// kernel makes (both sides widened to i16, `vpmaddwd` + `vpaddd`: 16
/// products), and 7-bit activations, which PyTorch's dynamic int8 uses
/// (`reduce_range`) so that fbgemm's `vpmaddubsw` cannot saturate
/// (`vpmaddubsw` + `vpmaddwd` by ones + `vpaddd`: 32 products).
fn peaks() -> Vec<(&'static str, f64, &'static str)> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        peak_loop!(
            avx512,
            "avx512f",
            24,
            _mm512_setzero_ps(),
            (_mm512_set1_ps(1.000_000_1), _mm512_set1_ps(0.999_999_9)),
            |acc, a, b| _mm512_fmadd_ps(a, b, *acc)
        );
        peak_loop!(
            avx2,
            "avx2,fma",
            12,
            _mm256_setzero_ps(),
            (_mm256_set1_ps(1.000_000_1), _mm256_set1_ps(0.999_999_9)),
            |acc, a, b| _mm256_fmadd_ps(a, b, *acc)
        );
        peak_loop!(
            vnni,
            "avx512f,avx512bw,avx512vnni",
            24,
            _mm512_setzero_si512(),
            (_mm512_set1_epi32(0x0101_0101), _mm512_set1_epi32(0x0101_0101)),
            |acc, a, b| _mm512_dpbusd_epi32(*acc, a, b)
        );
        peak_loop!(
            avx2_exact,
            "avx2",
            12,
            _mm256_setzero_si256(),
            (_mm256_setzero_si256(), _mm256_set1_epi16(3)),
            |acc, a, b| _mm256_add_epi32(*acc, _mm256_madd_epi16(*acc, b))
        );
        peak_loop!(
            avx2_7bit,
            "avx2",
            12,
            _mm256_setzero_si256(),
            (_mm256_set1_epi16(1), _mm256_set1_epi8(3)),
            |acc, ones, b| _mm256_add_epi32(*acc, _mm256_madd_epi16(_mm256_maddubs_epi16(*acc, b), ones))
        );
        let has_avx2 = is_x86_feature_detected!("avx2");
        let has_avx512 = is_x86_feature_detected!("avx512f");
        let has_fma = has_avx2 && is_x86_feature_detected!("fma");
        let has_vnni = has_avx512 && is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni");
        // (what, function, multiply-adds per step, how)
        type Run = (&'static str, unsafe fn() -> usize, usize, &'static str);
        let mut runs: Vec<Run> = Vec::new();
        if has_avx512 {
            runs.push(("f32", avx512, 16, "AVX-512 FMA"));
        } else if has_fma {
            runs.push(("f32", avx2, 8, "AVX2 FMA"));
        }
        if has_vnni {
            runs.push(("int8", vnni, 64, "AVX-512 vpdpbusd"));
        } else if has_avx2 {
            runs.push(("int8, exact", avx2_exact, 16, "AVX2 vpmaddwd + vpaddd, as the avx2 kernel"));
            runs.push(("int8, 7-bit", avx2_7bit, 32, "AVX2 vpmaddubsw + vpmaddwd + vpaddd, as fbgemm"));
        }
        runs.into_iter()
            .map(|(what, run, macs, how)| {
                let mut steps = 0;
                // SAFETY: the CPU has the features checked above.
                let s = time(5, true, || steps = unsafe { run() });
                (what, (steps * macs) as f64 / s / 1e9, how)
            })
            .collect()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        vec![("f32 and int8", f64::NAN, "not measured off x86-64")]
    }
}

fn main() -> Result<()> {
    // The process settings `stancekit` runs under (its allocator's above all),
    // so that the products are timed as `predict` makes them.
    stancekit::runtime::init();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (rows, reps) = (arg("--rows", 1024), arg("--reps", 9));
    // `--only INPUTS` keeps the shapes with that many inputs (for a profiler).
    let only = arg("--only", 0);
    let best = args.iter().any(|a| a == "--best");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let line = cpuinfo.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16"];
    let present: Vec<_> = line.split_whitespace().filter(|f| wanted.contains(f)).collect();
    println!("CPU flags: {present:?}; threads: {}; rows: {rows}\n", rayon::current_num_threads());
    if args.iter().any(|a| a == "--peak") {
        for (what, gmacs, how) in peaks() {
            println!("{what} peak, one thread: {gmacs:.1} GMAC/s ({how})");
        }
        println!();
    }
    // `--kernel NAME` times that kernel alone, `--kernel none` none (f32 only).
    let pick = args.iter().position(|a| a == "--kernel").and_then(|i| args.get(i + 1));
    let kernels: Vec<Kernel> = Kernel::available().into_iter().filter(|k| pick.is_none_or(|p| p == k.name())).collect();
    let mut header = "| inputs × outputs | f32 GMAC/s |".to_string();
    for k in &kernels {
        header += &format!(" {} GMAC/s (× f32) |", k.name());
    }
    println!("{header}\n|---|---|{}", "---|".repeat(kernels.len()));
    for (inputs, outputs) in SHAPES.into_iter().filter(|s| only == 0 || s.0 == only) {
        let x: Vec<f32> = (0..rows * inputs).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let w: Vec<f32> = (0..outputs * inputs).map(|i| ((i * 104729) % 1000) as f32 / 10000.0 - 0.05).collect();
        let bias = vec![0.01f32; outputs];
        let macs = (rows * inputs * outputs) as f64 / 1e9;
        let xt = Tensor::from_slice(&x, (rows, inputs), &Device::Cpu)?;
        let linear = Linear::new(
            Tensor::from_slice(&w, (outputs, inputs), &Device::Cpu)?,
            Some(Tensor::from_slice(&bias, outputs, &Device::Cpu)?),
        );
        let f32_s = time(reps, best, || drop(linear.forward(&xt).unwrap()));
        let mut line = format!("| {inputs} × {outputs} | {:.1} |", macs / f32_s);
        for &k in &kernels {
            let q = QuantizedWeights::new(&w, outputs, inputs, k);
            let s = time(reps, best, || drop(q.matmul(&x, Some(&bias), &|_| {})));
            line += &format!(" {:.1} ({:.2}×) |", macs / s, f32_s / s);
        }
        println!("{line}");
    }
    Ok(())
}
