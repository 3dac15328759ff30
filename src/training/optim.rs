//! AdamW with decoupled weight decay (`torch.optim.AdamW`), parameter groups,
//! global gradient-norm clipping, and a state that is saved with checkpoints:
//! candle-nn's `AdamW` has one group and keeps its moments private.
//!
//! On CPU (f32) each parameter is updated in place in one pass over its raw
//! buffer, the gradient and both moments, instead of a dozen tensor ops that
//! each allocate; half of MiniLM's 22.6 M parameters are the word-embedding
//! table, whose gradient is dense. Other devices use the tensor ops. Both paths
//! do the same f32 arithmetic in the same order, so they agree bit for bit.

use std::cell::RefCell;
use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Result, Storage, Tensor, Var};
use rayon::prelude::*;

/// A group's own learning rate and weight decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Group {
    pub lr: f64,
    pub weight_decay: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// First and second moments of one parameter.
enum Moments {
    /// CPU f32 parameters: plain buffers, updated in place with the parameter.
    Host { m: Vec<f32>, v: Vec<f32> },
    /// Anything else: tensors on the parameter's device.
    Device { m: Tensor, v: Tensor },
}

struct Slot {
    name: String,
    var: Var,
    group: usize,
    moments: Moments,
}

pub struct AdamW {
    slots: Vec<Slot>,
    groups: Vec<Group>,
    config: AdamWConfig,
    steps: usize,
}

fn on_host(t: &Tensor) -> bool {
    crate::kernels::fused_ok(&[t])
}

/// The f32 values of a contiguous CPU tensor, borrowed (`None` elsewhere).
fn with_host_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    if !on_host(t) {
        return None;
    }
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(all)), Some((a, b))) => Some(f(&all[a..b])),
        _ => None,
    }
}

impl AdamW {
    /// `params` are (name, variable, group index).
    pub fn new(params: Vec<(String, Var, usize)>, groups: Vec<Group>, config: AdamWConfig) -> Result<Self> {
        let slots = params
            .into_iter()
            .map(|(name, var, group)| {
                let moments = if on_host(var.as_tensor()) {
                    let n = var.elem_count();
                    Moments::Host { m: vec![0.0; n], v: vec![0.0; n] }
                } else {
                    let zeros = var.as_tensor().zeros_like()?;
                    Moments::Device { m: zeros.clone(), v: zeros }
                };
                Ok(Slot { name, var, group, moments })
            })
            .collect::<Result<_>>()?;
        Ok(Self { slots, groups, config, steps: 0 })
    }

    /// Keeps the moments as tensors and updates with tensor ops, as on a GPU
    /// (the reference the in-place path is tested against).
    #[cfg(test)]
    fn with_tensor_ops(mut self) -> Result<Self> {
        for s in &mut self.slots {
            if let Moments::Host { m, v } = &s.moments {
                let t = |x: &Vec<f32>| Tensor::from_slice(x, s.var.shape(), s.var.device());
                s.moments = Moments::Device { m: t(m)?, v: t(v)? };
            }
        }
        Ok(self)
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The optimised variables, in the order [`AdamW::step`] expects gradients.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.slots.iter().map(|s| &s.var)
    }

    /// One update with gradients aligned to [`AdamW::vars`]; every group's
    /// learning rate is multiplied by `lr_factor` (the schedule).
    pub fn step(&mut self, grads: &[Tensor], lr_factor: f64) -> Result<()> {
        self.step_scaled(grads, lr_factor, 1.0)
    }

    /// [`AdamW::step`] with every gradient multiplied by `grad_scale` first
    /// (gradient clipping without rewriting the gradients).
    pub fn step_scaled(&mut self, grads: &[Tensor], lr_factor: f64, grad_scale: f64) -> Result<()> {
        if grads.len() != self.slots.len() {
            candle_core::bail!("AdamW: {} gradients for {} parameters", grads.len(), self.slots.len());
        }
        self.steps += 1;
        let AdamWConfig { beta1, beta2, eps } = self.config;
        let t = self.steps as i32;
        let (c1, c2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
        for (slot, grad) in self.slots.iter_mut().zip(grads) {
            let Group { lr, weight_decay } = self.groups[slot.group];
            let lr = lr * lr_factor;
            match &mut slot.moments {
                Moments::Host { m, v } => {
                    // Each constant rounded to f32 once, as candle's scalar ops do.
                    let k = Constants {
                        grad_scale: grad_scale as f32,
                        beta1: beta1 as f32,
                        one_minus_beta1: (1.0 - beta1) as f32,
                        beta2: beta2 as f32,
                        one_minus_beta2: (1.0 - beta2) as f32,
                        inv_sqrt_c2: (1.0 / c2.sqrt()) as f32,
                        eps: eps as f32,
                        step_size: (lr / c1) as f32,
                        decay: (1.0 - lr * weight_decay) as f32,
                    };
                    let op = InPlaceUpdate { m: RefCell::new(m), v: RefCell::new(v), k };
                    slot.var.as_tensor().inplace_op2(&grad.contiguous()?, &op)?;
                }
                Moments::Device { m, v } => {
                    let grad = if grad_scale == 1.0 { grad.clone() } else { (grad * grad_scale)? };
                    *m = ((&*m * beta1)? + (&grad * (1.0 - beta1))?)?;
                    *v = ((&*v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
                    let denom = ((v.sqrt()? / c2.sqrt())? + eps)?;
                    let update = (m.div(&denom)? * (lr / c1))?;
                    let decayed = (slot.var.as_tensor() * (1.0 - lr * weight_decay))?;
                    slot.var.set(&(decayed - update)?)?;
                }
            }
        }
        Ok(())
    }

    /// First and second moments under `exp_avg.NAME` / `exp_avg_sq.NAME`.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for s in &self.slots {
            let (m, v) = match &s.moments {
                Moments::Host { m, v } => {
                    let t = |x: &Vec<f32>| {
                        Tensor::from_slice(x, s.var.shape(), s.var.device()).expect("moments fit their parameter")
                    };
                    (t(m), t(v))
                }
                Moments::Device { m, v } => (m.clone(), v.clone()),
            };
            out.insert(format!("exp_avg.{}", s.name), m);
            out.insert(format!("exp_avg_sq.{}", s.name), v);
        }
        out
    }

    /// Restores what [`AdamW::state`] saved, after `steps` updates.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, steps: usize) -> Result<()> {
        for s in &mut self.slots {
            let get = |key: String| -> Result<Tensor> {
                let t = state
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| candle_core::Error::Msg(format!("optimizer state lacks `{key}`")))?;
                if t.shape() != s.var.shape() {
                    candle_core::bail!("optimizer state `{key}` has shape {:?}, not {:?}", t.shape(), s.var.shape());
                }
                t.to_device(s.var.device())?.to_dtype(s.var.dtype())
            };
            let (m, v) = (get(format!("exp_avg.{}", s.name))?, get(format!("exp_avg_sq.{}", s.name))?);
            s.moments = match s.moments {
                Moments::Host { .. } => {
                    Moments::Host { m: m.flatten_all()?.to_vec1::<f32>()?, v: v.flatten_all()?.to_vec1::<f32>()? }
                }
                Moments::Device { .. } => Moments::Device { m, v },
            };
        }
        self.steps = steps;
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Constants {
    grad_scale: f32,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    inv_sqrt_c2: f32,
    eps: f32,
    step_size: f32,
    decay: f32,
}

/// Elements per parallel task of the in-place update.
const CHUNK: usize = 1 << 14;

/// `p ← p·decay − step_size · m / (√v / √c2 + eps)` after updating m and v
/// with the (scaled) gradient: the tensor path's arithmetic, element by element.
struct InPlaceUpdate<'a> {
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
    k: Constants,
}

impl InplaceOp2 for InPlaceUpdate<'_> {
    fn name(&self) -> &'static str {
        "stancekit-adamw"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let (Some((p0, p1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            candle_core::bail!("AdamW: parameter and gradient must be contiguous")
        };
        let p = match s1 {
            CpuStorage::F32(p) => &mut p[p0..p1],
            _ => candle_core::bail!("AdamW: the in-place path needs f32 parameters"),
        };
        let g = &s2.as_slice::<f32>()?[g0..g1];
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        if g.len() != p.len() || m.len() != p.len() || v.len() != p.len() {
            candle_core::bail!("AdamW: gradient or moments do not fit the parameter");
        }
        let k = self.k;
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
            .for_each(|((p, g), (m, v))| adamw_chunk(p, g, m, v, k));
        Ok(())
    }
}

crate::kernels::simd::multiversion! {
    fn adamw_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: Constants) {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g * k.grad_scale;
            *m = *m * k.beta1 + g * k.one_minus_beta1;
            *v = *v * k.beta2 + g * g * k.one_minus_beta2;
            let denom = v.sqrt() * k.inv_sqrt_c2 + k.eps;
            *p = *p * k.decay - *m / denom * k.step_size;
        }
    }
}

/// Gradients of `vars` from `store`, zeros where a variable got none.
pub fn collect_grads<'a>(store: &GradStore, vars: impl Iterator<Item = &'a Var>) -> Result<Vec<Tensor>> {
    vars.map(|v| match store.get(v.as_tensor()) {
        Some(g) => Ok(g.clone()),
        None => v.as_tensor().zeros_like(),
    })
    .collect()
}

/// The global L2 norm of all gradients together.
pub fn grad_norm(grads: &[Tensor]) -> Result<f64> {
    let mut sum = 0f64;
    for g in grads {
        // Blocks summed in f32, blocks added in f64: fast and accurate enough for clipping.
        let host = with_host_slice(g, |x| {
            x.par_chunks(CHUNK)
                .map(|c| crate::kernels::simd::sum_squares(c) as f64)
                .collect::<Vec<f64>>()
                .iter()
                .sum::<f64>()
        });
        sum += match host {
            Some(s) => s,
            None => g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?,
        };
    }
    Ok(sum.sqrt())
}

/// The factor `torch.nn.utils.clip_grad_norm_` scales gradients by: 1 below
/// `max_norm` (or when `max_norm` is 0, clipping off).
pub fn clip_coefficient(norm: f64, max_norm: f64) -> f64 {
    let coef = max_norm / (norm + 1e-6);
    if max_norm > 0.0 && coef < 1.0 {
        coef
    } else {
        1.0
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scales all gradients together so that
/// their global L2 norm is at most `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let norm = grad_norm(grads)?;
    let coef = clip_coefficient(norm, max_norm);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g = (&*g * coef)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn one_step_matches_the_closed_form() {
        // After one step m̂ = g and v̂ = g², so p ← p(1 − lr·wd) − lr·g/(|g| + eps).
        let var = Var::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap();
        let grad = Tensor::new(&[0.1f32, -0.3, 0.0], &Device::Cpu).unwrap();
        let group = Group { lr: 0.01, weight_decay: 0.1 };
        let config = AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
        let mut opt = AdamW::new(vec![("p".into(), var.clone(), 0)], vec![group], config).unwrap();
        opt.step(&[grad], 0.5).unwrap();
        let lr = 0.005f64;
        let want: Vec<f64> = [(1.0, 0.1), (-2.0, -0.3), (0.5, 0.0)]
            .iter()
            .map(|&(p, g): &(f64, f64)| p * (1.0 - lr * 0.1) - lr * g / (g.abs() + 1e-8))
            .collect();
        for (got, want) in var.as_tensor().to_vec1::<f32>().unwrap().iter().zip(want) {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert_eq!(opt.steps(), 1);
    }

    #[test]
    fn state_round_trips() {
        let config = AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
        let group = vec![Group { lr: 0.1, weight_decay: 0.0 }];
        let make = || {
            let var = Var::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
            (var.clone(), AdamW::new(vec![("p".into(), var, 0)], group.clone(), config).unwrap())
        };
        let g = Tensor::new(&[0.5f32, -1.0], &Device::Cpu).unwrap();
        let (a, mut opt_a) = make();
        for _ in 0..3 {
            opt_a.step(std::slice::from_ref(&g), 1.0).unwrap();
        }
        let (b, mut opt_b) = make();
        opt_b.step(std::slice::from_ref(&g), 1.0).unwrap();
        let (state, steps) = (opt_b.state(), opt_b.steps());
        let (c, mut opt_c) = make();
        c.set(b.as_tensor()).unwrap();
        opt_c.restore(&state, steps).unwrap();
        for _ in 0..2 {
            opt_c.step(std::slice::from_ref(&g), 1.0).unwrap();
        }
        assert_eq!(a.as_tensor().to_vec1::<f32>().unwrap(), c.as_tensor().to_vec1::<f32>().unwrap());
    }

    /// The in-place CPU path and the tensor-op path (GPUs) agree bit for bit over
    /// several steps, with groups, a schedule factor, clipping, and a state round trip.
    #[test]
    fn in_place_updates_match_the_tensor_ops() {
        let config = AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
        let groups = vec![Group { lr: 1e-2, weight_decay: 0.01 }, Group { lr: 3e-3, weight_decay: 0.0 }];
        // 40 000 elements: several parallel chunks; 7: a remainder.
        let shapes: [&[usize]; 3] = [&[200, 200], &[7], &[3, 5]];
        let make = |tensor_ops: bool| {
            let vars: Vec<Var> = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let n: usize = s.iter().product();
                    let init: Vec<f32> = (0..n).map(|j| ((j * 31 + i * 7) % 97) as f32 / 50.0 - 1.0).collect();
                    Var::from_tensor(&Tensor::from_vec(init, *s, &Device::Cpu).unwrap()).unwrap()
                })
                .collect();
            let params = vars.iter().enumerate().map(|(i, v)| (format!("p{i}"), v.clone(), i % 2)).collect();
            let opt = AdamW::new(params, groups.clone(), config).unwrap();
            let opt = if tensor_ops { opt.with_tensor_ops().unwrap() } else { opt };
            (vars, opt)
        };
        let grads = |step: usize| -> Vec<Tensor> {
            shapes
                .iter()
                .map(|s| {
                    let n: usize = s.iter().product();
                    let g: Vec<f32> = (0..n).map(|j| (((j + 3 * step) * 17 % 89) as f32 - 44.0) / 9.0).collect();
                    Tensor::from_vec(g, *s, &Device::Cpu).unwrap()
                })
                .collect()
        };
        let run = |tensor_ops: bool| {
            let (vars, mut opt) = make(tensor_ops);
            for step in 0..3 {
                let g = grads(step);
                let clip = clip_coefficient(grad_norm(&g).unwrap(), 50.0);
                opt.step_scaled(&g, 0.5 + step as f64 * 0.25, clip).unwrap();
            }
            let state = opt.state();
            let (_, mut resumed) = make(tensor_ops);
            resumed.restore(&state, opt.steps()).unwrap();
            let (g, mut opt) = (grads(3), resumed);
            // The resumed optimizer updates the original variables.
            opt.slots.iter_mut().zip(&vars).for_each(|(s, v)| s.var = v.clone());
            opt.step(&g, 1.0).unwrap();
            let values: Vec<Vec<f32>> =
                vars.iter().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()).collect();
            let moments: Vec<Vec<f32>> = {
                let mut state: Vec<(String, Tensor)> = opt.state().into_iter().collect();
                state.sort_by(|a, b| a.0.cmp(&b.0));
                state.iter().map(|(_, t)| t.flatten_all().unwrap().to_vec1().unwrap()).collect()
            };
            (values, moments)
        };
        let (fast, fast_moments) = run(false);
        let (reference, reference_moments) = run(true);
        assert_eq!(fast, reference);
        assert_eq!(fast_moments, reference_moments);
        assert!(grad_norm(&grads(0)).unwrap() > 50.0, "the test must exercise clipping");
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let mut grads =
            vec![Tensor::new(&[3.0f32], &Device::Cpu).unwrap(), Tensor::new(&[4.0f32], &Device::Cpu).unwrap()];
        let norm = clip_grad_norm(&mut grads, 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-9);
        let clipped: Vec<f32> = grads.iter().map(|g| g.to_vec1::<f32>().unwrap()[0]).collect();
        assert!((clipped[0] - 0.6).abs() < 1e-5 && (clipped[1] - 0.8).abs() < 1e-5);
        let norm = clip_grad_norm(&mut grads, 10.0).unwrap();
        assert!((norm - 1.0).abs() < 1e-5, "no clipping below the limit");
    }
}
