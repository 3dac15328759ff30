//! AdamW with decoupled weight decay (`torch.optim.AdamW`), parameter groups,
//! global gradient-norm clipping, and a state that is saved with checkpoints:
//! candle-nn's `AdamW` has one group and keeps its moments private.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

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

struct Slot {
    name: String,
    var: Var,
    group: usize,
    m: Tensor,
    v: Tensor,
}

pub struct AdamW {
    slots: Vec<Slot>,
    groups: Vec<Group>,
    config: AdamWConfig,
    steps: usize,
}

impl AdamW {
    /// `params` are (name, variable, group index).
    pub fn new(params: Vec<(String, Var, usize)>, groups: Vec<Group>, config: AdamWConfig) -> Result<Self> {
        let slots = params
            .into_iter()
            .map(|(name, var, group)| {
                let zeros = var.as_tensor().zeros_like()?;
                Ok(Slot { name, m: zeros.clone(), v: zeros, var, group })
            })
            .collect::<Result<_>>()?;
        Ok(Self { slots, groups, config, steps: 0 })
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
        self.steps += 1;
        let AdamWConfig { beta1, beta2, eps } = self.config;
        let t = self.steps as i32;
        let (c1, c2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
        for (slot, grad) in self.slots.iter_mut().zip(grads) {
            let Group { lr, weight_decay } = self.groups[slot.group];
            let lr = lr * lr_factor;
            slot.m = ((&slot.m * beta1)? + (grad * (1.0 - beta1))?)?;
            slot.v = ((&slot.v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let denom = ((slot.v.sqrt()? / c2.sqrt())? + eps)?;
            let update = (slot.m.div(&denom)? * (lr / c1))?;
            let decayed = (slot.var.as_tensor() * (1.0 - lr * weight_decay))?;
            slot.var.set(&(decayed - update)?)?;
        }
        Ok(())
    }

    /// First and second moments under `exp_avg.NAME` / `exp_avg_sq.NAME`.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for s in &self.slots {
            out.insert(format!("exp_avg.{}", s.name), s.m.clone());
            out.insert(format!("exp_avg_sq.{}", s.name), s.v.clone());
        }
        out
    }

    /// Restores what [`AdamW::state`] saved, after `steps` updates.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, steps: usize) -> Result<()> {
        for s in &mut self.slots {
            let get = |key: String| {
                state
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| candle_core::Error::Msg(format!("optimizer state lacks `{key}`")))
            };
            s.m = get(format!("exp_avg.{}", s.name))?.to_device(s.var.device())?;
            s.v = get(format!("exp_avg_sq.{}", s.name))?.to_device(s.var.device())?;
        }
        self.steps = steps;
        Ok(())
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

/// `torch.nn.utils.clip_grad_norm_`: scales all gradients together so that
/// their global L2 norm is at most `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let mut sum = 0f64;
    for g in grads.iter() {
        sum += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
    }
    let norm = sum.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if max_norm > 0.0 && coef < 1.0 {
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
