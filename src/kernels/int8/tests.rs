use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn normal_vec(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    // Sum of uniforms: close enough to normal, with occasional large values below.
    (0..n).map(|_| (0..4).map(|_| rng.random::<f32>() - 0.5).sum::<f32>() * scale).collect()
}

/// The products the kernels must reproduce, written the plain way: the same
/// quantization, then Σ over k in i32 and the same f32 output step.
fn reference(x: &[f32], weight: &[f32], outputs: usize, inputs: usize, bias: &[f32]) -> Vec<f32> {
    let (q, scales) = quantize_channels(weight, inputs);
    let rows = x.len() / inputs;
    let mut y = Vec::with_capacity(rows * outputs);
    for row in x.chunks(inputs) {
        let mut a = vec![0u8; inputs];
        let (sa, zero) = quantize_row(row, &mut a, 1);
        for c in 0..outputs {
            let w = &q[c * inputs..(c + 1) * inputs];
            let acc: i32 = a.iter().zip(w).map(|(&a, &w)| a as i32 * w as i32).sum();
            let sum: i32 = w.iter().map(|&w| w as i32).sum();
            y.push((acc - zero * sum) as f32 * (sa * scales[c]) + bias[c]);
        }
    }
    y
}

fn f32_matmul(x: &[f32], weight: &[f32], outputs: usize, inputs: usize, bias: &[f32]) -> Vec<f32> {
    x.chunks(inputs)
        .flat_map(|row| {
            (0..outputs).map(move |c| {
                row.iter().zip(&weight[c * inputs..(c + 1) * inputs]).map(|(a, b)| a * b).sum::<f32>() + bias[c]
            })
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Shapes with every kind of edge: fewer rows than MR, channels not a
/// multiple of NR, depth not a multiple of 4, more than one tile each way.
const SHAPES: [(usize, usize, usize); 6] =
    [(1, 1, 1), (3, 5, 7), (13, 37, 70), (70, 64, 384), (9, 300, 5), (130, 160, 64)];

#[test]
fn every_kernel_this_cpu_runs_matches_the_scalar_reference_exactly() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let available = Kernel::tested();
    assert!(available.contains(&Kernel::Scalar) && available.contains(&Kernel::Amx));
    let model = if Kernel::Amx.supported() { "" } else { " (amx on a model of the tile unit)" };
    eprintln!("int8 kernels tested on this CPU: {:?}{model}", available.iter().map(|k| k.name()).collect::<Vec<_>>());
    for (rows, outputs, inputs) in SHAPES {
        let x = normal_vec(&mut rng, rows * inputs, 2.0);
        let w = normal_vec(&mut rng, outputs * inputs, 0.1);
        let bias = normal_vec(&mut rng, outputs, 0.5);
        let want = reference(&x, &w, outputs, inputs, &bias);
        for &kernel in &available {
            let got = QuantizedWeights::new(&w, outputs, inputs, kernel).matmul(&x, Some(&bias), &|_| {});
            assert_eq!(bits(&got), bits(&want), "{} on {rows}×{inputs} · {inputs}×{outputs}", kernel.name());
        }
    }
}

/// Rounding x to steps of sa and w to steps of sw moves each product by at
/// most |x|·sw/2 + |w|·sa/2 + sa·sw/4: a bound per output, from the scales.
#[test]
fn the_error_against_f32_stays_within_half_a_step_per_product() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (rows, outputs, inputs) = (32, 96, 384);
    // Activations with a few outliers, as transformer hidden states have.
    let mut x = normal_vec(&mut rng, rows * inputs, 1.0);
    for i in (0..x.len()).step_by(97) {
        x[i] *= 8.0;
    }
    let w = normal_vec(&mut rng, outputs * inputs, 0.05);
    let bias = normal_vec(&mut rng, outputs, 0.1);
    let exact = f32_matmul(&x, &w, outputs, inputs, &bias);
    let got = QuantizedWeights::new(&w, outputs, inputs, Kernel::available()[0]).matmul(&x, Some(&bias), &|_| {});
    let (mut worst, mut total) = (0f32, 0f32);
    for (r, row) in x.chunks(inputs).enumerate() {
        let sa = (row.iter().fold(0f32, |m, &v| m.max(v)) - row.iter().fold(0f32, |m, &v| m.min(v))) / 255.0;
        for c in 0..outputs {
            let wc = &w[c * inputs..(c + 1) * inputs];
            let sw = wc.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            let sum_x: f32 = row.iter().map(|v| v.abs()).sum();
            let sum_w: f32 = wc.iter().map(|v| v.abs()).sum();
            let bound = 0.5 * sw * sum_x + 0.5 * sa * sum_w + 0.25 * sa * sw * inputs as f32;
            let err = (got[r * outputs + c] - exact[r * outputs + c]).abs();
            assert!(err <= bound * 1.01 + 1e-5, "[{r}, {c}]: |Δ| {err} over the bound {bound}");
            worst = worst.max(err / bound);
            total += err;
        }
    }
    // Rounding errors mostly cancel: the typical error is far below the worst case.
    let spread = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mean = total / got.len() as f32;
    assert!(mean < 0.01 * spread, "mean |Δ| {mean} for outputs up to {spread} (worst {worst:.2} of the bound)");
}

#[test]
fn finish_runs_on_every_output_once_and_no_bias_means_zero() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (rows, outputs, inputs) = (50, 150, 40);
    let x = normal_vec(&mut rng, rows * inputs, 1.0);
    let w = normal_vec(&mut rng, outputs * inputs, 0.2);
    let want: Vec<f32> =
        reference(&x, &w, outputs, inputs, &vec![0.0; outputs]).iter().map(|v| v.max(0.0) + 1.0).collect();
    for kernel in Kernel::tested() {
        let got = QuantizedWeights::new(&w, outputs, inputs, kernel)
            .matmul(&x, None, &|s| s.iter_mut().for_each(|v| *v = v.max(0.0) + 1.0));
        assert_eq!(bits(&got), bits(&want), "{}", kernel.name());
    }
}

#[test]
fn zero_weights_and_constant_rows_are_exact() {
    let (rows, outputs, inputs) = (5, 20, 12);
    let mut x = vec![0.0; rows * inputs];
    x[inputs..2 * inputs].fill(-3.0); // a constant negative row: its zero point is 255
    x[2 * inputs..3 * inputs].fill(2.5);
    // Channel 0 is all zero; the others take values on their own i8 grid (±127 steps of 3/127).
    let w: Vec<f32> = (0..outputs * inputs).map(|i| if i < inputs { 0.0 } else { [-3.0, 0.0, 3.0][i % 3] }).collect();
    let bias: Vec<f32> = (0..outputs).map(|c| c as f32).collect();
    let exact = f32_matmul(&x, &w, outputs, inputs, &bias);
    for kernel in Kernel::tested() {
        let got = QuantizedWeights::new(&w, outputs, inputs, kernel).matmul(&x, Some(&bias), &|_| {});
        for (i, (g, e)) in got.iter().zip(&exact).enumerate() {
            assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{} [{i}]: {g} vs {e}", kernel.name());
        }
    }
}

/// Activations at both ends of u8 (0 and 255) against weights at both ends
/// of i8 (±127), in every sign pattern: where `vpmaddubsw`, which adds two
/// products into an i16, would saturate (2 · 255 · 127 > 32,767), and the
/// largest sums any kernel's lanes hold. Every kernel matches the reference
/// to the bit.
#[test]
fn sums_at_the_ends_of_both_ranges_are_exact_on_every_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (rows, outputs, inputs) = (9, 40, 72);
    // `lines` lines of `inputs` values ±`v`: the first all -v, the second all
    // +v, the rest random signs.
    let mut ends = |lines: usize, v: f32| -> Vec<f32> {
        (0..lines * inputs)
            .map(|i| match i / inputs {
                0 => -v,
                1 => v,
                _ if rng.random::<bool>() => v,
                _ => -v,
            })
            .collect()
    };
    // ±1 spans the range around 0: -1 quantizes to 0, +1 to 255. Weights of
    // ±0.5, each channel's largest, quantize to ±127.
    let x = ends(rows, 1.0);
    let w = ends(outputs, 0.5);
    // The data reach both ends: rows of 0s and of 255s, weights of ±127 only.
    let mut row = vec![0u8; inputs];
    for (r, end) in [(0, 0u8), (1, 255)] {
        quantize_row(&x[r * inputs..(r + 1) * inputs], &mut row, 1);
        assert!(row.iter().all(|&v| v == end), "row {r}: {row:?}");
    }
    assert!(quantize_channels(&w, inputs).0.iter().all(|&v| v.abs() == 127));
    let bias = vec![0.25; outputs];
    let want = reference(&x, &w, outputs, inputs, &bias);
    for kernel in Kernel::tested() {
        let got = QuantizedWeights::new(&w, outputs, inputs, kernel).matmul(&x, Some(&bias), &|_| {});
        assert_eq!(bits(&got), bits(&want), "{}", kernel.name());
    }
}

#[test]
fn kernel_names_round_trip() {
    for k in Kernel::ALL {
        assert_eq!(Kernel::parse(k.name()), Some(k));
    }
    assert_eq!(Kernel::parse("avx512"), None);
}

/// Residual weights: every kernel gives the same bits, and with inputs that
/// u8 holds exactly, what is left of the error is far below one rounding's.
#[test]
fn residual_weights_agree_across_kernels_and_leave_almost_no_rounding() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for (rows, outputs, inputs) in SHAPES {
        // Each row spans 0 … 255 steps of 0.01 and holds only whole steps: u8 is exact for it.
        let x: Vec<f32> = (0..rows * inputs)
            .map(|i| match i % inputs {
                0 => 0.0,
                1 => 2.55,
                _ => (rng.random::<u32>() % 256) as f32 * 0.01,
            })
            .collect();
        let w = normal_vec(&mut rng, outputs * inputs, 0.1);
        let bias = normal_vec(&mut rng, outputs, 0.5);
        let exact = f32_matmul(&x, &w, outputs, inputs, &bias);
        let err = |y: &[f32]| y.iter().zip(&exact).map(|(a, b)| (a - b).abs()).sum::<f32>() / y.len() as f32;
        let plain = err(&QuantizedWeights::new(&w, outputs, inputs, Kernel::Scalar).matmul(&x, Some(&bias), &|_| {}));
        let mut first: Option<Vec<f32>> = None;
        for kernel in Kernel::tested() {
            let q = QuantizedWeights::with_residual(&w, outputs, inputs, kernel, true);
            assert!(q.residual() && q.outputs() == outputs);
            let got = q.matmul(&x, Some(&bias), &|_| {});
            match &first {
                Some(want) => {
                    assert_eq!(bits(&got), bits(want), "{} on {rows}×{inputs}·{inputs}×{outputs}", kernel.name())
                }
                None => first = Some(got),
            }
        }
        let residual = err(&first.unwrap());
        assert!(residual * 50.0 <= plain.max(1e-5), "{rows}×{inputs}·{inputs}×{outputs}: {residual} vs {plain}");
    }
}

/// A column far larger than the rest (as an encoder's residual stream has a
/// few): kept in f32 it no longer sets each row's step, so the error falls
/// well below the plain one's; every kernel gives the same bits, with plain
/// and residual weights alike.
#[test]
fn f32_columns_take_a_large_column_out_of_the_rounding_on_every_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (rows, outputs, inputs) in SHAPES.into_iter().filter(|s| s.2 >= 5) {
        let mut x = normal_vec(&mut rng, rows * inputs, 1.0);
        x.chunks_mut(inputs).for_each(|row| row[3] *= 40.0);
        let w = normal_vec(&mut rng, outputs * inputs, 0.1);
        let bias = normal_vec(&mut rng, outputs, 0.5);
        let exact = f32_matmul(&x, &w, outputs, inputs, &bias);
        let err = |y: &[f32]| y.iter().zip(&exact).map(|(a, b)| (a - b).abs()).sum::<f32>() / y.len() as f32;
        for residual in [false, true] {
            let plain = QuantizedWeights::with_residual(&w, outputs, inputs, Kernel::Scalar, residual);
            let plain = err(&plain.matmul(&x, Some(&bias), &|_| {}));
            let mut first: Option<Vec<f32>> = None;
            for kernel in Kernel::tested() {
                let q = QuantizedWeights::with_residual(&w, outputs, inputs, kernel, residual);
                let q = q.with_f32_columns(&[3, 3, inputs + 9], &w);
                assert_eq!(q.f32_columns(), [3]);
                let got = q.matmul(&x, Some(&bias), &|_| {});
                let shape = format!("{} on {rows}×{inputs}·{inputs}×{outputs}, residual {residual}", kernel.name());
                match &first {
                    Some(want) => assert_eq!(bits(&got), bits(want), "{shape}"),
                    None => first = Some(got),
                }
            }
            let kept = err(&first.unwrap());
            assert!(kept * 4.0 <= plain, "{rows}×{inputs}·{inputs}×{outputs}, residual {residual}: {kept} vs {plain}");
        }
    }
}

/// A row that is 0 but in a column kept in f32 reads that column of the
/// weights exactly, on every kernel.
#[test]
fn f32_columns_hold_the_weights_unrounded() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (outputs, inputs) = (37, 70);
    let w = normal_vec(&mut rng, outputs * inputs, 0.1);
    for kernel in Kernel::tested() {
        for c in [0, 5, 69] {
            let mut x = vec![0.0; inputs];
            x[c] = 1.0;
            let kept = QuantizedWeights::new(&w, outputs, inputs, kernel).with_f32_columns(&[c], &w);
            let column: Vec<f32> = w.iter().skip(c).step_by(inputs).copied().collect();
            assert_eq!(bits(&kept.matmul(&x, None, &|_| {})), bits(&column), "{} column {c}", kernel.name());
        }
    }
}

/// What the kernels load starts on a cache line, whatever its length, and
/// keeps the bytes written to it.
#[test]
fn kernel_operands_start_on_a_cache_line() {
    for len in [0, 1, 63, 64, 65, 4096 + 16] {
        let mut b = tiles::LineBytes::zeroed(len);
        assert_eq!((b.len(), b.as_ptr() as usize % 64), (len, 0), "{len} bytes");
        assert!(b.iter().all(|&v| v == 0), "{len} bytes");
        b.iter_mut().enumerate().for_each(|(i, v)| *v = i as u8);
        assert!(b.iter().enumerate().all(|(i, &v)| v == i as u8), "{len} bytes");
    }
    let w = vec![0.5f32; 40 * 70];
    for kernel in Kernel::tested() {
        let q = QuantizedWeights::new(&w, 40, 70, kernel);
        let x = q.quantize_input(&[1.0; 3 * 70]);
        assert_eq!((q.packed.as_ptr() as usize % 64, x.acts.data.as_ptr() as usize % 64), (0, 0), "{}", kernel.name());
    }
}

/// `finish` (GELU in the encoder) sees each output whole, with the f32
/// columns' products already added, on every kernel and over several tiles.
#[test]
fn finish_runs_after_the_f32_columns_are_added() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (rows, outputs, inputs) = (70, 150, 40);
    let mut x = normal_vec(&mut rng, rows * inputs, 1.0);
    x.iter_mut().skip(17).step_by(inputs).for_each(|v| *v *= 30.0);
    let w = normal_vec(&mut rng, outputs * inputs, 0.2);
    let finish = |s: &mut [f32]| s.iter_mut().for_each(|v| *v = v.max(0.0) * 2.0 + 1.0);
    for kernel in Kernel::tested() {
        let q = QuantizedWeights::new(&w, outputs, inputs, kernel).with_f32_columns(&[2, 17], &w);
        let mut want = q.matmul(&x, None, &|_| {});
        finish(&mut want);
        assert_eq!(bits(&q.matmul(&x, None, &finish)), bits(&want), "{}", kernel.name());
    }
}
