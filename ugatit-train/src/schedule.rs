//! The official learning-rate schedule in closed form.

use crate::config::TrainConfig;

/// Learning rate of step `step` (from 1): `lr` up to `H = iterations / 2` (integer division),
/// then `lr * (1 - (step - H) / H)`, reaching 0 at the last step. The official code subtracts
/// `lr / H` from the optimisers' rate at every step after H; this is the same line. With a
/// single iteration (`H = 0`, where the official code would divide by zero) there is no decay.
pub fn lr_at(step: u64, cfg: &TrainConfig) -> f64 {
    let half = cfg.iterations / 2;
    if !cfg.decay_lr || half == 0 || step <= half {
        cfg.lr
    } else {
        cfg.lr * (1.0 - (step - half) as f64 / half as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decays_linearly_over_the_second_half_to_zero() {
        let cfg = TrainConfig {
            iterations: 10,
            lr: 1e-4,
            ..Default::default()
        };
        assert_eq!(lr_at(1, &cfg), 1e-4);
        assert_eq!(lr_at(5, &cfg), 1e-4);
        assert!((lr_at(6, &cfg) - 0.8e-4).abs() < 1e-18);
        assert_eq!(lr_at(10, &cfg), 0.0);
        let odd = TrainConfig {
            iterations: 5,
            ..cfg.clone()
        };
        // H = 2: the official decrement lr / 2 per step after step 2 crosses 0 at step 4.
        assert_eq!(lr_at(4, &odd), 0.0);
        let flat = TrainConfig {
            decay_lr: false,
            ..cfg
        };
        assert_eq!(lr_at(10, &flat), 1e-4);
    }
}
