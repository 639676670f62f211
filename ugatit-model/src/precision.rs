//! The precision of the networks' matrix work (every convolution and linear layer): float32, or
//! bfloat16 / float16 with float32 parameters, as `torch.autocast` runs the official code
//! (its convolutions and matmuls in half precision, its reductions and norms in float32).
//!
//! Parameters, optimiser state, spectral-norm power iterations and every norm's statistics stay
//! in float32: [`crate::layers`] casts a layer's input and weight to the compute type, runs the
//! convolution or matmul, and casts the result back to float32 (the cast is differentiable, so
//! gradients reach the float32 weights in float32). The choice is per thread, set for a scope
//! with [`Precision::enter`], so a trainer, a translator and tests on other threads do not see
//! each other's setting; in float32 no cast is made at all and results are bit-identical to a
//! build without this module.

use std::cell::Cell;

use burn::tensor::FloatDType;

/// The compute type of convolutions and linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in float32 (the official code without autocast).
    #[default]
    F32,
    /// bfloat16 matrix work: float32's range, 8 bits of mantissa; needs no loss scaling.
    Bf16,
    /// float16 matrix work: 11 bits of mantissa but a range up to 65504, so training scales the
    /// loss to keep small gradients from flushing to zero (`torch.cuda.amp.GradScaler`).
    F16,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::F16];

    /// burn's float type for this precision.
    pub fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::Bf16 => FloatDType::BF16,
            Precision::F16 => FloatDType::F16,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// The precision of this thread's matrix work (float32 unless a scope says otherwise).
    pub fn current() -> Precision {
        COMPUTE.with(Cell::get)
    }

    /// Sets this thread's matrix-work precision until the returned guard is dropped.
    #[must_use = "the precision reverts when the guard is dropped"]
    pub fn enter(self) -> PrecisionScope {
        PrecisionScope {
            previous: COMPUTE.with(|c| c.replace(self)),
        }
    }
}

thread_local! {
    static COMPUTE: Cell<Precision> = const { Cell::new(Precision::F32) };
}

/// Restores the previous precision of its thread when dropped.
#[derive(Debug)]
pub struct PrecisionScope {
    previous: Precision,
}

impl Drop for PrecisionScope {
    fn drop(&mut self) {
        COMPUTE.with(|c| c.set(self.previous));
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Precision::ALL
            .into_iter()
            .find(|p| p.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| format!("unknown precision {s:?}: use f32, bf16 or f16"))
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_sets_this_thread_only_and_restores_on_drop() {
        assert_eq!(Precision::current(), Precision::F32);
        {
            let _bf16 = Precision::Bf16.enter();
            assert_eq!(Precision::current(), Precision::Bf16);
            std::thread::spawn(|| assert_eq!(Precision::current(), Precision::F32))
                .join()
                .unwrap();
            {
                let _f16 = Precision::F16.enter();
                assert_eq!(Precision::current(), Precision::F16);
            }
            assert_eq!(Precision::current(), Precision::Bf16);
        }
        assert_eq!(Precision::current(), Precision::F32);
        assert_eq!("BF16".parse(), Ok(Precision::Bf16));
        assert!("f64"
            .parse::<Precision>()
            .unwrap_err()
            .contains("f32, bf16 or f16"));
    }
}
