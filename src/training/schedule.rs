//! Learning-rate schedules as pure functions of the step, as transformers'
//! `get_scheduler` defines them (`optimization.py`).

use serde::{Deserialize, Serialize};

/// transformers' `lr_scheduler_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerType {
    /// Linear warm-up, then linear decay to 0 at the last step.
    #[default]
    Linear,
    /// Linear warm-up, then half a cosine wave down to 0.
    Cosine,
    /// Linear warm-up, then constant.
    ConstantWithWarmup,
}

/// The multiplier of the base learning rate at optimizer step `step` (0-based),
/// out of `total` steps with `warmup` warm-up steps.
pub fn lr_factor(kind: SchedulerType, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    match kind {
        SchedulerType::Linear => (1.0 - progress).max(0.0),
        SchedulerType::Cosine => (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0),
        SchedulerType::ConstantWithWarmup => 1.0,
    }
}

/// Warm-up steps for `ratio` of `total`, rounded up as transformers does.
pub fn warmup_steps(ratio: f64, total: usize) -> usize {
    (ratio * total as f64).ceil() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_warms_up_then_decays_to_zero() {
        let f = |s| lr_factor(SchedulerType::Linear, s, 10, 110);
        assert_eq!(f(0), 0.0);
        assert_eq!(f(5), 0.5);
        assert_eq!(f(10), 1.0);
        assert_eq!(f(60), 0.5);
        assert_eq!(f(110), 0.0);
        assert_eq!(f(200), 0.0);
    }

    #[test]
    fn cosine_is_half_way_at_the_middle() {
        let f = |s| lr_factor(SchedulerType::Cosine, s, 0, 100);
        assert_eq!(f(0), 1.0);
        assert!((f(50) - 0.5).abs() < 1e-12);
        assert!(f(100).abs() < 1e-12);
        assert!(f(25) > 0.5 && f(75) < 0.5);
    }

    #[test]
    fn constant_after_warmup_and_rounded_warmup() {
        assert_eq!(lr_factor(SchedulerType::ConstantWithWarmup, 3, 4, 10), 0.75);
        assert_eq!(lr_factor(SchedulerType::ConstantWithWarmup, 9, 4, 10), 1.0);
        assert_eq!(warmup_steps(0.1, 95), 10);
        assert_eq!(warmup_steps(0.0, 95), 0);
    }
}
