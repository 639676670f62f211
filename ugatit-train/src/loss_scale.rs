//! Dynamic loss scaling for float16 training, as `torch.cuda.amp.GradScaler` does it with its
//! defaults: the loss is multiplied by the scale before the backward pass so that small
//! gradients survive float16's range; an update whose unscaled gradients are not finite is
//! skipped and the scale halved; after `growth_interval` steps in a row without one, the scale
//! doubles.

use serde::{Deserialize, Serialize};

/// The scaler's state (saved with a checkpoint, so a resumed float16 run scales as before).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    scale: f32,
    /// Steps in a row whose updates were all applied.
    good_steps: u32,
    growth_interval: u32,
}

impl Default for LossScaler {
    /// torch's defaults: `init_scale=2.**16`, `growth_interval=2000`.
    fn default() -> Self {
        Self::new(65536.0, 2000)
    }
}

impl LossScaler {
    pub fn new(scale: f32, growth_interval: u32) -> Self {
        Self {
            scale,
            good_steps: 0,
            growth_interval,
        }
    }

    /// The factor the loss is multiplied by.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Ends a step: `all_finite` says whether every update of it was applied.
    pub fn update(&mut self, all_finite: bool) {
        if all_finite {
            self.good_steps += 1;
            if self.good_steps >= self.growth_interval {
                // torch keeps the scale finite: growth that would overflow is not applied.
                if (self.scale * 2.0).is_finite() {
                    self.scale *= 2.0;
                }
                self.good_steps = 0;
            }
        } else {
            // Halved (`backoff_factor=0.5`), never below the smallest normal float32.
            self.scale = (self.scale * 0.5).max(f32::MIN_POSITIVE);
            self.good_steps = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_step_halves_the_scale_and_good_steps_double_it() {
        let mut s = LossScaler::new(1024.0, 3);
        s.update(true);
        s.update(true);
        assert_eq!(s.scale(), 1024.0);
        s.update(false);
        assert_eq!(s.scale(), 512.0);
        // The count of good steps starts again after a bad one.
        s.update(true);
        s.update(true);
        assert_eq!(s.scale(), 512.0);
        s.update(true);
        assert_eq!(s.scale(), 1024.0);
        assert_eq!(LossScaler::default().scale(), 65536.0);
    }
}
