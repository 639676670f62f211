//! Seeded, order-independent parameter initialisation.
//!
//! Every parameter draws from its own generator, seeded from the run seed and the parameter's
//! official key, so a model initialises identically on every backend and device, whichever
//! order its parameters are first touched in (Burn initialises lazily).

/// How a fresh parameter is filled. The bounds reproduce PyTorch's defaults, which the official
/// code keeps: `Conv2d` and `Linear` weights and biases uniform in `±1/sqrt(fan_in)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Uniform in `[-bound, bound)`.
    Uniform(f32),
    /// Every element equal to this value (AdaILN's rho 0.9, ILN's 0 / 1 / 0).
    Const(f32),
    /// Standard normal, then scaled to unit L2 norm: torch spectral norm's initial `u` and `v`.
    UnitNormal,
}

impl Init {
    /// PyTorch's default for a layer with `fan_in` inputs.
    pub fn torch_default(fan_in: usize) -> Self {
        Init::Uniform(1.0 / (fan_in as f32).sqrt())
    }

    /// Draws `n` values with a generator seeded by `seed`.
    pub fn sample(self, n: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64(seed);
        match self {
            Init::Const(c) => vec![c; n],
            Init::Uniform(b) => (0..n).map(|_| (rng.unit() * 2.0 - 1.0) * b).collect(),
            Init::UnitNormal => {
                let v: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.into_iter().map(|x| x / norm).collect()
            }
        }
    }
}

/// 64-bit FNV-1a: stable identifiers for parameters, derived from their official keys.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast, identical on every platform, and its
/// whole state is one `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// A generator for the stream named by `parts` (a run seed, a domain, a sample index...).
    pub fn for_stream(parts: &[u64]) -> Self {
        let mut rng = SplitMix64(0x5851_f42d_4c95_7f2d);
        for p in parts {
            rng.0 ^= p.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            rng.next_u64();
        }
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1) with 24 bits, exactly representable as f32.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal by the Box-Muller transform.
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_respects_bound_and_seed() {
        let a = Init::torch_default(16).sample(1000, 7);
        assert!(a.iter().all(|x| x.abs() <= 0.25));
        assert_eq!(a, Init::torch_default(16).sample(1000, 7));
        assert_ne!(a, Init::torch_default(16).sample(1000, 8));
    }

    #[test]
    fn unit_normal_has_unit_norm() {
        let v = Init::UnitNormal.sample(300, 3);
        let n: f32 = v.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }
}
