//! Kernel Inception Distance (Binkowski, Sutherland, Arbel and Gretton, *Demystifying MMD
//! GANs*, ICLR 2018): the unbiased estimate of the squared MMD between two feature sets under
//! the cubic polynomial kernel `k(x, y) = (x.y / d + 1)^3`, averaged over random subsets of
//! both sets; its standard deviation over the subsets is the "+-" papers print. As the common
//! implementations (torch-fidelity, clean-fid): `subsets` draws of `min(n_x, n_y, 1000)` rows
//! each, without replacement, and the population standard deviation. U-GAT-IT reports it x100.

use ugatit_model::init::SplitMix64;

use super::features::{dots, Features};
use super::EvalError;

/// Names the random stream of KID's subset draws ("KID" in ASCII).
const KID_STREAM: u64 = 0x004b_4944;

/// How KID draws its subsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KidOptions {
    /// Subsets drawn (100, as torch-fidelity and clean-fid).
    pub subsets: usize,
    /// Rows a subset takes from each set at most (1000); fewer when a set is smaller.
    pub max_subset_size: usize,
    /// Seeds the draws.
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        Self {
            subsets: 100,
            max_subset_size: 1000,
            seed: 0,
        }
    }
}

/// KID (not scaled) over subsets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kid {
    pub mean: f64,
    /// Population standard deviation over the subsets (0 when every subset is a whole set).
    pub std: f64,
    pub subsets: usize,
    pub subset_size: usize,
}

/// KID between `x` and `y` with subsets drawn as `options` says.
pub fn kid(x: &Features, y: &Features, options: &KidOptions) -> Result<Kid, EvalError> {
    let m = x.len().min(y.len()).min(options.max_subset_size);
    if m < 2 || options.subsets == 0 {
        return Err(EvalError::TooFew(format!(
            "KID needs at least 2 images in each set and 1 subset (got {} and {} images, {} subsets, subset size at most {})",
            x.len(),
            y.len(),
            options.subsets,
            options.max_subset_size
        )));
    }
    let mut rng = SplitMix64::for_stream(&[options.seed, KID_STREAM]);
    let subsets: Vec<(Vec<usize>, Vec<usize>)> = (0..options.subsets)
        .map(|_| (choose(&mut rng, x.len(), m), choose(&mut rng, y.len(), m)))
        .collect();
    kid_on_subsets(x, y, &subsets)
}

/// KID over the given subsets: pairs of row indices into `x` and `y` (each at least 2 rows).
pub fn kid_on_subsets(
    x: &Features,
    y: &Features,
    subsets: &[(Vec<usize>, Vec<usize>)],
) -> Result<Kid, EvalError> {
    if x.dim() != y.dim() {
        return Err(EvalError::TooFew(format!(
            "feature sets of different lengths ({} and {})",
            x.dim(),
            y.dim()
        )));
    }
    let bad = subsets.iter().any(|(ix, iy)| {
        ix.len() < 2
            || iy.len() < 2
            || ix.iter().any(|&i| i >= x.len())
            || iy.iter().any(|&i| i >= y.len())
    });
    if subsets.is_empty() || bad {
        return Err(EvalError::TooFew(
            "every KID subset needs at least 2 rows of each set, within the sets".into(),
        ));
    }
    let kernels = Kernels::new(x, y);
    let values: Vec<f64> = subsets
        .iter()
        .map(|(ix, iy)| kernels.mmd2_unbiased(ix, iy))
        .collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    Ok(Kid {
        mean,
        std: var.sqrt(),
        subsets: subsets.len(),
        subset_size: subsets[0].0.len(),
    })
}

/// The unbiased squared MMD between all of `x` and all of `y` (at least 2 rows each).
pub fn mmd2_unbiased(x: &Features, y: &Features) -> Result<f64, EvalError> {
    let all = |n: usize| (0..n).collect::<Vec<_>>();
    kid_on_subsets(x, y, &[(all(x.len()), all(y.len()))]).map(|k| k.mean)
}

/// The dot products within and between the two sets, computed once for every subset.
struct Kernels {
    d: f64,
    xx: Vec<f64>,
    yy: Vec<f64>,
    xy: Vec<f64>,
    nx: usize,
    ny: usize,
}

impl Kernels {
    fn new(x: &Features, y: &Features) -> Self {
        let (fx, fy) = (x.to_f64(), y.to_f64());
        let d = x.dim();
        Self {
            d: d as f64,
            xx: dots(&fx, &fx, d),
            yy: dots(&fy, &fy, d),
            xy: dots(&fx, &fy, d),
            nx: x.len(),
            ny: y.len(),
        }
    }

    fn k(&self, dot: f64) -> f64 {
        (dot / self.d + 1.0).powi(3)
    }

    /// Eq. (3) of Binkowski et al. (Gretton et al. 2012's unbiased estimator): the means of
    /// k over distinct pairs within each subset, less twice the mean over pairs across them.
    fn mmd2_unbiased(&self, ix: &[usize], iy: &[usize]) -> f64 {
        let within = |g: &[f64], n: usize, idx: &[usize]| {
            let mut sum = 0.0;
            for (a, &i) in idx.iter().enumerate() {
                for (b, &j) in idx.iter().enumerate() {
                    if a != b {
                        sum += self.k(g[i * n + j]);
                    }
                }
            }
            let m = idx.len() as f64;
            sum / (m * (m - 1.0))
        };
        let mut across = 0.0;
        for &i in ix {
            for &j in iy {
                across += self.k(self.xy[i * self.ny + j]);
            }
        }
        within(&self.xx, self.nx, ix) + within(&self.yy, self.ny, iy)
            - 2.0 * across / (ix.len() * iy.len()) as f64
    }
}

/// `m` distinct indices below `n`, uniformly (a partial Fisher-Yates shuffle).
fn choose(rng: &mut SplitMix64, n: usize, m: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..m {
        let j = i + rng.below((n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(m);
    all
}
