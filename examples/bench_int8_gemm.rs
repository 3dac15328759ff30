//! Times the int8 matrix product (every kernel this CPU runs) against the f32
//! linear layer on the shapes of MiniLM's and MPNet's layers, one input of
//! `--rows` token rows (batch × tokens). Prints the CPU flags and a table of
//! GMAC/s (multiply-adds per second) and the ratio to f32, medians of `--reps`.
//!
//! ```text
//! cargo run --release --example bench_int8_gemm -- [--rows 1024] [--reps 9] [--only INPUTS] [--kernel NAME] [--best]
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

fn main() -> Result<()> {
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
    // `--kernel NAME` times that kernel alone.
    let pick = args.iter().position(|a| a == "--kernel").and_then(|i| args.get(i + 1)).and_then(|n| Kernel::parse(n));
    let kernels: Vec<Kernel> = Kernel::available().into_iter().filter(|k| pick.is_none_or(|p| p == *k)).collect();
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
