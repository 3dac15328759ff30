//! Multi-head scaled dot-product attention as one op on CPU, forward and
//! backward, reading each head through strides.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::cpu::{fused_ok, host_f32, sgemm, slice, SharedMut};
use super::dropout::Dropout;
use super::simd::{self, multiversion};
use super::softmax::{attention_softmax, softmax_in_place};

/// Multi-head scaled dot-product attention on the projections q, k, v
/// [batch, seq, hidden] with an additive mask [batch, 1, 1, seq] and an
/// optional additive position bias [heads, seq, seq] (MPNet's):
/// `dropout(softmax(q·kᵀ · scale + position + mask)) · v` per head, returned as
/// [batch, seq, hidden] (heads side by side, as `BertSelfAttention` returns
/// them). On CPU in f32 one op that reads each head through strides, so there
/// are no head transposes or copies, forward or backward; the backward pass
/// recomputes the probabilities (cheaper than keeping them) and gives q, k, v
/// their gradients with four small matmuls per head. The dropout mask is drawn
/// from `dropout` exactly as the composite path draws it. The op reads the
/// position bias as a constant; when the bias is being trained, its gradient
/// (the score gradient summed over the batch, which the backward pass computes
/// anyway) leaves through [`PositionTap`] on q. Elsewhere: the composite ops.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask_bias: &Tensor,
    position: Option<&Tensor>,
    heads: usize,
    dropout: &Dropout,
    train: bool,
) -> Result<Tensor> {
    let (b, l, hidden) = q.dims3()?;
    if hidden % heads != 0 {
        candle_core::bail!("attention: hidden size {hidden} is not a multiple of {heads} heads");
    }
    let scale = 1.0 / ((hidden / heads) as f64).sqrt();
    let fits = k.dims3()? == (b, l, hidden) && v.dims3()? == (b, l, hidden) && mask_bias.dims4()? == (b, 1, 1, l);
    let position_fits = match position {
        Some(p) => fused_ok(&[p]) && p.dims3()? == (heads, l, l),
        None => true,
    };
    if !fused_ok(&[q, k, v, mask_bias]) || !fits || !position_fits {
        return attention_composite(q, k, v, (mask_bias, position), heads, scale, dropout, train);
    }
    let trained = position.filter(|p| p.track_op());
    let position_grad = trained.map(|_| PositionGrad::default());
    let op = AttentionOp {
        heads,
        scale: scale as f32,
        mask: mask_bias.flatten_all()?.to_vec1::<f32>()?,
        position: position.map(|p| p.flatten_all()?.to_vec1::<f32>()).transpose()?,
        dropout: dropout.draw_mask(b * heads * l * l, train),
        position_grad: position_grad.clone(),
    };
    let q = match (trained, position_grad) {
        (Some(p), Some(slot)) => q.contiguous()?.apply_op2(p, PositionTap(slot))?,
        _ => q.contiguous()?,
    };
    q.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

#[allow(clippy::too_many_arguments)]
fn attention_composite(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    (mask_bias, position): (&Tensor, Option<&Tensor>),
    heads: usize,
    scale: f64,
    dropout: &Dropout,
    train: bool,
) -> Result<Tensor> {
    let split = |x: &Tensor| -> Result<Tensor> {
        let (b, l, hidden) = x.dims3()?;
        x.reshape((b, l, heads, hidden / heads))?.transpose(1, 2)?.contiguous()
    };
    let (q, k, v) = (split(q)?, split(k)?, split(v)?);
    let scores = q.matmul(&k.t()?)?;
    let probs = match position {
        Some(p) => attention_softmax(&(scores * scale)?.broadcast_add(p)?, mask_bias, 1.0)?,
        None => attention_softmax(&scores, mask_bias, scale)?,
    };
    let probs = dropout.forward_t(&probs, train)?;
    probs.matmul(&v)?.transpose(1, 2)?.flatten_from(D::Minus2)
}

struct AttentionOp {
    heads: usize,
    scale: f32,
    /// The additive mask, [batch, seq].
    mask: Vec<f32>,
    /// The additive position bias, [heads, seq, seq], a constant.
    position: Option<Vec<f32>>,
    /// Keep-and-scale factors [batch, heads, seq, seq], when dropout is on.
    dropout: Option<Vec<f32>>,
    /// Where the backward pass leaves the position bias's gradient, when it is trained.
    position_grad: Option<PositionGrad>,
}

/// The gradient of a trained position bias, [heads, seq, seq]: written by
/// [`AttentionOp`]'s backward pass, read by [`PositionTap`]'s, which candle
/// runs after it (the tap's output is the attention's input).
#[derive(Clone, Default)]
struct PositionGrad(std::sync::Arc<std::sync::Mutex<Option<Vec<f32>>>>);

/// `q` unchanged, with the position bias as a second input: the way the bias
/// gets its gradient from the fused attention, whose three inputs are q, k, v.
struct PositionTap(PositionGrad);

impl CustomOp2 for PositionTap {
    fn name(&self) -> &'static str {
        "stancekit-position-tap"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, _s2: &CpuStorage, _l2: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(slice(s1, l1, self.name())?.to_vec()), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _q: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let taken = self.0 .0.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(values) = taken else {
            candle_core::bail!("{}: the attention's backward pass left no gradient", self.name())
        };
        Ok((Some(grad.clone()), Some(Tensor::from_vec(values, bias.shape(), bias.device())?)))
    }
}

/// Where each head's backward pass writes: dq, dk, dv [batch, seq, hidden]
/// (a head its own columns), and the score gradients [batch, heads, seq, seq]
/// when the position bias is trained.
#[derive(Clone, Copy)]
struct HeadGrads {
    dq: SharedMut,
    dk: SharedMut,
    dv: SharedMut,
    ds: SharedMut,
}

impl AttentionOp {
    /// The gradients of head `bh` for q, k, v (and its score gradient) into
    /// `out`, from `qkvg` (q, k, v and the output's gradient); `scratch` is
    /// three seq×seq buffers (the second empty without dropout).
    ///
    /// # Safety
    /// As [`Self::probabilities`]; `out` is as [`HeadGrads`] says, and no
    /// other task writes head `bh`'s parts of it.
    unsafe fn head_bwd(
        &self,
        bh: usize,
        [q, k, v, g]: [&[f32]; 4],
        (l, hidden): (usize, usize),
        (p, pd, dp): &mut (Vec<f32>, Vec<f32>, Vec<f32>),
        out: HeadGrads,
    ) {
        let hd = hidden / self.heads;
        let base = (bh / self.heads) * l * hidden + (bh % self.heads) * hd;
        self.probabilities(q, k, (l, hidden), bh, p, pd);
        let probs = if self.dropout.is_some() { &pd[..] } else { &p[..] };
        let g = g[base..].as_ptr();
        // dV = P'ᵀ·dO
        sgemm((l, hd, l), (out.dv.at(base), hidden, 1), false, (probs.as_ptr(), 1, l), (g, hidden, 1), false);
        // dP' = dO·Vᵀ, then through the dropout and the softmax
        sgemm((l, l, hd), (dp.as_mut_ptr(), l, 1), false, (g, hidden, 1), (v[base..].as_ptr(), 1, hidden), false);
        if let Some(d) = &self.dropout {
            for (dp, &d) in dp.iter_mut().zip(&d[bh * l * l..(bh + 1) * l * l]) {
                *dp *= d;
            }
        }
        softmax_block_bwd(p, dp, l, self.scale);
        if self.position_grad.is_some() {
            // dp is scale · ∂loss/∂(biased scores): the bias enters unscaled.
            let ds = std::slice::from_raw_parts_mut(out.ds.at(bh * l * l), l * l);
            ds.iter_mut().zip(dp.iter()).for_each(|(o, &d)| *o = d / self.scale);
        }
        // dQ = dS·K, dK = dSᵀ·Q
        sgemm(
            (l, hd, l),
            (out.dq.at(base), hidden, 1),
            false,
            (dp.as_ptr(), l, 1),
            (k[base..].as_ptr(), hidden, 1),
            false,
        );
        sgemm(
            (l, hd, l),
            (out.dk.at(base), hidden, 1),
            false,
            (dp.as_ptr(), 1, l),
            (q[base..].as_ptr(), hidden, 1),
            false,
        );
    }

    /// The score gradients `ds` [batch, heads, seq, seq] summed over the batch
    /// into the position bias's gradient, when it is trained.
    fn keep_position_grad(&self, ds: &[f32], l: usize) {
        let Some(slot) = &self.position_grad else { return };
        // Summed over the batch in item order: the same sum whatever the threads did.
        let per_head = self.heads * l * l;
        let mut sum = ds[..per_head].to_vec();
        for item in ds.chunks_exact(per_head).skip(1) {
            sum.iter_mut().zip(item).for_each(|(s, &d)| *s += d);
        }
        *slot.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(sum);
    }

    /// The probabilities of head `bh` (batch-major) into `p`, and with dropout
    /// applied into `pd` when there is dropout.
    ///
    /// # Safety
    /// `q` and `k` hold [batch, seq, hidden] and `p`, `pd` are seq×seq.
    unsafe fn probabilities(
        &self,
        q: &[f32],
        k: &[f32],
        dims: (usize, usize),
        bh: usize,
        p: &mut [f32],
        pd: &mut [f32],
    ) {
        let (l, hidden) = dims;
        let hd = hidden / self.heads;
        let (bi, hi) = (bh / self.heads, bh % self.heads);
        let base = bi * l * hidden + hi * hd;
        sgemm(
            (l, l, hd),
            (p.as_mut_ptr(), l, 1),
            false,
            (q[base..].as_ptr(), hidden, 1),
            (k[base..].as_ptr(), 1, hidden),
            false,
        );
        let position = self.position.as_ref().map(|p| &p[hi * l * l..(hi + 1) * l * l]);
        softmax_block(p, &self.mask[bi * l..(bi + 1) * l], position, self.scale);
        if let Some(d) = &self.dropout {
            for ((pd, &p), &d) in pd.iter_mut().zip(p.iter()).zip(&d[bh * l * l..(bh + 1) * l * l]) {
                *pd = p * d;
            }
        }
    }
}

multiversion! {
    /// Every row of `p` through [`softmax_in_place`]; with a position bias, `p`
    /// first becomes `p · scale + position` (then scaled by 1, exactly).
    fn softmax_block(p: &mut [f32], mask: &[f32], position: Option<&[f32]>, scale: f32) {
        match position {
            Some(bias) => {
                p.iter_mut().zip(bias).for_each(|(y, &b)| *y = *y * scale + b);
                softmax_in_place(p, mask, 1.0);
            }
            None => softmax_in_place(p, mask, scale),
        }
    }
}

multiversion! {
    /// `dS = scale · P ⊙ (dP − rowsum(dP ⊙ P))` in place of dP.
    fn softmax_block_bwd(p: &[f32], dp: &mut [f32], l: usize, scale: f32) {
        for (p, dp) in p.chunks_exact(l).zip(dp.chunks_exact_mut(l)) {
            let s = simd::dot(p, dp);
            for (d, &p) in dp.iter_mut().zip(p) {
                *d = p * (*d - s) * scale;
            }
        }
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "stancekit-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (q, k, v) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let (b, l, hidden) = l1.shape().dims3()?;
        let hd = hidden / self.heads;
        let mut out = vec![0f32; q.len()];
        let dst = SharedMut(out.as_mut_ptr());
        (0..b * self.heads).into_par_iter().for_each_init(
            || (vec![0f32; l * l], vec![0f32; if self.dropout.is_some() { l * l } else { 0 }]),
            |(p, pd), bh| {
                let base = (bh / self.heads) * l * hidden + (bh % self.heads) * hd;
                // SAFETY: q, k, v, out are [b, l, hidden]; head bh reads and writes the
                // columns base..base+hd of its item's rows only, so tasks write disjoint elements.
                unsafe {
                    self.probabilities(q, k, (l, hidden), bh, p, pd);
                    let probs = if self.dropout.is_some() { &pd[..] } else { &p[..] };
                    sgemm(
                        (l, hd, l),
                        (dst.at(base), hidden, 1),
                        false,
                        (probs.as_ptr(), l, 1),
                        (v[base..].as_ptr(), hidden, 1),
                        false,
                    );
                }
            },
        );
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, l, hidden) = q.dims3()?;
        let grad = grad.contiguous()?;
        let (sq, lq) = q.storage_and_layout();
        let (sk, lk) = k.storage_and_layout();
        let (sv, lv) = v.storage_and_layout();
        let (sg, lg) = grad.storage_and_layout();
        let name = self.name();
        let (q_, k_, v_, g_) =
            (host_f32(&sq, lq, name)?, host_f32(&sk, lk, name)?, host_f32(&sv, lv, name)?, host_f32(&sg, lg, name)?);
        let n = q_.len();
        let (mut dq, mut dk, mut dv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        // The score gradient of every head, kept when the position bias needs it.
        let mut ds = vec![0f32; if self.position_grad.is_some() { b * self.heads * l * l } else { 0 }];
        let grads = HeadGrads {
            dq: SharedMut(dq.as_mut_ptr()),
            dk: SharedMut(dk.as_mut_ptr()),
            dv: SharedMut(dv.as_mut_ptr()),
            ds: SharedMut(ds.as_mut_ptr()),
        };
        (0..b * self.heads).into_par_iter().for_each_init(
            || (vec![0f32; l * l], vec![0f32; if self.dropout.is_some() { l * l } else { 0 }], vec![0f32; l * l]),
            // SAFETY: as in the forward pass; each head writes only its own columns of dq, dk, dv.
            |scratch, bh| unsafe { self.head_bwd(bh, [q_, k_, v_, g_], (l, hidden), scratch, grads) },
        );
        self.keep_position_grad(&ds, l);
        let t = |x: Vec<f32>| Tensor::from_vec(x, (b, l, hidden), q.device());
        Ok((Some(t(dq)?), Some(t(dk)?), Some(t(dv)?)))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_support::{assert_close, mask, random, values, weighted_sum};
    use candle_core::{Device, Var};

    /// Output and gradients (q, k, v) of multi-head attention, fused or composite,
    /// with dropout drawn from a generator seeded `seed` when `p` > 0.
    fn attention_run(
        fused: bool,
        qkv: &[Tensor; 3],
        (mask, position): (&Tensor, Option<&Tensor>),
        heads: usize,
        p: f64,
    ) -> (Tensor, Vec<Tensor>) {
        let vars: Vec<Var> = qkv.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let (q, k, v) = (vars[0].as_tensor(), vars[1].as_tensor(), vars[2].as_tensor());
        let dropout = Dropout::new(p, &super::super::dropout::DropoutRng::new(5));
        let train = p > 0.0;
        let y = if fused {
            attention(q, k, v, mask, position, heads, &dropout, train).unwrap()
        } else {
            let scale = 1.0 / ((q.dim(2).unwrap() / heads) as f64).sqrt();
            attention_composite(q, k, v, (mask, position), heads, scale, &dropout, train).unwrap()
        };
        let grads = weighted_sum(&y, 3).backward().unwrap();
        (y, vars.iter().map(|v| grads.get(v.as_tensor()).unwrap().clone()).collect())
    }

    #[test]
    fn attention_matches_the_composite_values_and_gradients() {
        for ((b, l, hidden, heads), p) in [((2, 5, 12, 3), 0.0), ((3, 64, 384, 12), 0.0), ((2, 9, 16, 2), 0.3)] {
            let qkv = [0, 1, 2].map(|i| random(&[b, l, hidden], 30 + i, 1.5, 0.0));
            let m = mask(b, l);
            // MPNet's relative-position bias, a constant here (the fused op's case).
            let position = random(&[heads, l, l], 33, 2.0, 0.0);
            for position in [None, Some(&position)] {
                let (y, grads) = attention_run(true, &qkv, (&m, position), heads, p);
                let (want, want_grads) = attention_run(false, &qkv, (&m, position), heads, p);
                assert_eq!(y.dims(), want.dims());
                assert_close("context", &y, &want, 1e-5);
                for (name, (g, w)) in ["dq", "dk", "dv"].iter().zip(grads.iter().zip(&want_grads)) {
                    assert_close(name, g, w, 1e-5);
                }
            }
        }
    }

    /// A trained position bias gets the composite path's gradient from the fused op.
    #[test]
    fn a_trained_position_bias_gets_the_composite_gradient() {
        for ((b, l, hidden, heads), p) in [((2, 5, 12, 3), 0.0), ((3, 17, 24, 2), 0.2)] {
            let qkv = [0, 1, 2].map(|i| random(&[b, l, hidden], 80 + i, 1.5, 0.0));
            let m = mask(b, l);
            let run = |fused: bool| {
                let bias = Var::from_tensor(&random(&[heads, l, l], 84, 2.0, 0.0)).unwrap();
                let vars: Vec<Var> = qkv.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
                let dropout = Dropout::new(p, &super::super::dropout::DropoutRng::new(5));
                let (q, k, v) = (vars[0].as_tensor(), vars[1].as_tensor(), vars[2].as_tensor());
                let position = Some(bias.as_tensor());
                let y = if fused {
                    attention(q, k, v, &m, position, heads, &dropout, p > 0.0).unwrap()
                } else {
                    let scale = 1.0 / ((hidden / heads) as f64).sqrt();
                    attention_composite(q, k, v, (&m, position), heads, scale, &dropout, p > 0.0).unwrap()
                };
                let grads = weighted_sum(&y, 3).backward().unwrap();
                let mut out: Vec<Tensor> = vars.iter().map(|v| grads.get(v.as_tensor()).unwrap().clone()).collect();
                out.push(grads.get(bias.as_tensor()).unwrap().clone());
                (y, out)
            };
            let ((y, grads), (want, want_grads)) = (run(true), run(false));
            assert_close("context", &y, &want, 1e-5);
            for (name, (g, w)) in ["dq", "dk", "dv", "dposition"].iter().zip(grads.iter().zip(&want_grads)) {
                assert_close(name, g, w, 1e-5);
            }
        }
    }

    #[test]
    fn a_trained_position_bias_gets_its_gradient() {
        let qkv = [0, 1, 2].map(|i| random(&[2, 4, 6], 70 + i, 1.0, 0.0));
        let (m, bias) = (mask(2, 4), Var::from_tensor(&random(&[2, 4, 4], 73, 1.0, 0.0)).unwrap());
        let dropout = Dropout::new(0.0, &super::super::dropout::DropoutRng::new(5));
        let loss = |b: &Tensor| {
            let y = attention(&qkv[0], &qkv[1], &qkv[2], &m, Some(b), 2, &dropout, false).unwrap();
            weighted_sum(&y, 3)
        };
        let grad = loss(bias.as_tensor()).backward().unwrap().get(bias.as_tensor()).unwrap().clone();
        let eps = 1e-2f32;
        for i in [0, 5, 18, 31] {
            let mut vals = values(bias.as_tensor());
            vals[i] += eps;
            let up =
                loss(&Tensor::from_vec(vals.clone(), (2, 4, 4), &Device::Cpu).unwrap()).to_scalar::<f32>().unwrap();
            vals[i] -= 2.0 * eps;
            let down = loss(&Tensor::from_vec(vals, (2, 4, 4), &Device::Cpu).unwrap()).to_scalar::<f32>().unwrap();
            let (numeric, analytic) = ((up - down) / (2.0 * eps), values(&grad)[i]);
            assert!((numeric - analytic).abs() < 1e-3 + 1e-2 * analytic.abs(), "[{i}]: {analytic} vs {numeric}");
        }
    }

    #[test]
    fn attention_gradients_agree_with_finite_differences() {
        let qkv = [0, 1, 2].map(|i| random(&[2, 4, 6], 40 + i, 1.0, 0.0));
        let m = mask(2, 4);
        let (_, grads) = attention_run(true, &qkv, (&m, None), 2, 0.0);
        let dropout = Dropout::new(0.0, &super::super::dropout::DropoutRng::new(5));
        let loss = |t: &[Tensor; 3]| {
            let y = attention(&t[0], &t[1], &t[2], &m, None, 2, &dropout, false).unwrap();
            weighted_sum(&y, 3).to_scalar::<f32>().unwrap()
        };
        let eps = 1e-2f32;
        for (arg, i) in [(0, 0), (0, 13), (1, 7), (1, 40), (2, 3), (2, 47)] {
            let mut t = qkv.clone();
            let mut vals = values(&t[arg]);
            vals[i] += eps;
            t[arg] = Tensor::from_vec(vals.clone(), (2, 4, 6), &Device::Cpu).unwrap();
            let up = loss(&t);
            vals[i] -= 2.0 * eps;
            t[arg] = Tensor::from_vec(vals, (2, 4, 6), &Device::Cpu).unwrap();
            let down = loss(&t);
            let numeric = (up - down) / (2.0 * eps);
            let analytic = values(&grads[arg])[i];
            assert!(
                (numeric - analytic).abs() < 1e-3 + 1e-2 * analytic.abs(),
                "input {arg}[{i}]: {analytic} vs {numeric}"
            );
        }
    }
}
