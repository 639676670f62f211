//! The generator's normalisations with single-pass statistics and a hand-written backward:
//! `nn.InstanceNorm2d` (biased variance, no affine; the encoder) and the instance-layer mix of
//! the official `adaILN` and `ILN` (UNBIASED variances, `torch.var`, of each channel and of
//! each whole sample).
//!
//! One pass over the input gives each channel's sum and sum of squares (in f64, so the
//! `E[x^2] - E[x]^2` form loses nothing at these sizes); the layer statistics are sums of the
//! channel ones. The backward passes are the closed forms of these normalisations' gradients
//! (one reduction pass and one write pass), keeping only the output (instance norm) or the
//! input and rho (the mix).

use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, TensorData, TensorMetadata};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use crate::norm::EPS;

/// Mean and `1 / sqrt(var + eps)` of one group of values.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stats {
    pub(super) mean: f32,
    pub(super) rstd: f32,
}

impl Stats {
    /// From `n` values' sum and sum of squares; the variance divides by `n - ddof`.
    fn new(sum: f64, sum_sq: f64, n: usize, ddof: usize) -> Self {
        let n_f = n as f64;
        let mean = sum / n_f;
        // Rounding can leave a constant group's variance a hair below 0; one value's unbiased
        // variance stays NaN, as torch.var's.
        let var = (sum_sq - sum * mean) / (n_f - ddof as f64);
        let var = if var < 0.0 { 0.0 } else { var };
        Self {
            mean: mean as f32,
            rstd: (1.0 / (var + EPS).sqrt()) as f32,
        }
    }
}

/// Sum and sum of squares of each `n`-element plane.
fn plane_sums(x: &[f32], n: usize) -> Vec<(f64, f64)> {
    x.par_chunks(n)
        .map(|p| {
            p.iter().fold((0.0, 0.0), |(s, q), &v| {
                let v = f64::from(v);
                (s + v, q + v * v)
            })
        })
        .collect()
}

/// `nn.InstanceNorm2d` on `[planes, n]`: returns the output and each plane's statistics.
pub fn instance_norm(x: &[f32], n: usize) -> (Vec<f32>, Vec<f32>) {
    let stats: Vec<Stats> = plane_sums(x, n)
        .into_iter()
        .map(|(s, q)| Stats::new(s, q, n, 0))
        .collect();
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(n)
        .zip(x.par_chunks(n))
        .zip(&stats)
        .for_each(|((y, x), st)| {
            for (y, x) in y.iter_mut().zip(x) {
                *y = (x - st.mean) * st.rstd;
            }
        });
    (y, stats.iter().map(|s| s.rstd).collect())
}

/// The input gradient of [`instance_norm`] from its output `y` (the normalised input) and each
/// plane's `rstd`: `rstd * (dy - mean(dy) - y * mean(dy * y))`.
pub fn instance_norm_backward(y: &[f32], rstd: &[f32], dy: &[f32], n: usize) -> Vec<f32> {
    let mut dx = vec![0.0; y.len()];
    dx.par_chunks_mut(n)
        .zip(y.par_chunks(n).zip(dy.par_chunks(n)))
        .zip(rstd)
        .for_each(|((dx, (y, dy)), &rstd)| {
            let (sg, sgy) = y.iter().zip(dy).fold((0.0f64, 0.0f64), |(a, b), (&y, &g)| {
                (a + f64::from(g), b + f64::from(g) * f64::from(y))
            });
            let (mg, mgy) = ((sg / n as f64) as f32, (sgy / n as f64) as f32);
            for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                *dx = rstd * (g - mg - y * mgy);
            }
        });
    dx
}

/// Instance (per plane) and layer (per sample) statistics of `x` `[batch, c, n]`, both with
/// unbiased variances.
pub struct MixStats {
    pub(super) inst: Vec<Stats>,
    pub(super) layer: Vec<Stats>,
}

pub(super) fn mix_stats(x: &[f32], c: usize, n: usize) -> MixStats {
    let sums = plane_sums(x, n);
    let inst = sums.iter().map(|&(s, q)| Stats::new(s, q, n, 1)).collect();
    let layer = sums
        .chunks(c)
        .map(|p| {
            let (s, q) = p.iter().fold((0.0, 0.0), |(a, b), &(s, q)| (a + s, b + q));
            Stats::new(s, q, c * n, 1)
        })
        .collect();
    MixStats { inst, layer }
}

/// One value of the mix: `r * (x - mu_I) * rstd_I + (1 - r) * (x - mu_L) * rstd_L`.
#[inline]
pub(super) fn mix_value(x: f32, i: Stats, l: Stats, r: f32) -> f32 {
    r * ((x - i.mean) * i.rstd) + (1.0 - r) * ((x - l.mean) * l.rstd)
}

/// The official instance-layer mix `rho * (x - mu_I) / sqrt(var_I + eps) + (1 - rho) * (x -
/// mu_L) / sqrt(var_L + eps)` of `x` `[batch, c, n]` with `rho` `[c]`.
pub fn instance_layer_mix(x: &[f32], rho: &[f32], c: usize, n: usize) -> Vec<f32> {
    let st = mix_stats(x, c, n);
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(n)
        .zip(x.par_chunks(n))
        .enumerate()
        .for_each(|(p, (y, x))| {
            let (i, l, r) = (st.inst[p], st.layer[p / c], rho[p % c]);
            for (y, &x) in y.iter_mut().zip(x) {
                *y = mix_value(x, i, l, r);
            }
        });
    y
}

/// The input and rho gradients of [`instance_layer_mix`]. With `xi`, `xl` the instance- and
/// layer-normalised input and unbiased variances, each part's input gradient is `rstd * (g -
/// mean(g) - x_hat * sum(g * x_hat) / (n - 1))` over its group, with `g = rho * dy` (instance)
/// or `(1 - rho) * dy` (layer); `d rho = sum(dy * (xi - xl))` over samples and pixels.
pub fn instance_layer_mix_backward(
    x: &[f32],
    rho: &[f32],
    dy: &[f32],
    c: usize,
    n: usize,
) -> (Vec<f32>, Vec<f32>) {
    mix_backward_with(&mix_stats(x, c, n), x, rho, dy, c, n)
}

/// [`instance_layer_mix_backward`] with `x`'s statistics already at hand.
pub(super) fn mix_backward_with(
    st: &MixStats,
    x: &[f32],
    rho: &[f32],
    dy: &[f32],
    c: usize,
    n: usize,
) -> (Vec<f32>, Vec<f32>) {
    // Per plane: sum(dy), sum(dy * xi), sum(dy * xl).
    let sums: Vec<[f64; 3]> = x
        .par_chunks(n)
        .zip(dy.par_chunks(n))
        .enumerate()
        .map(|(p, (x, dy))| {
            let (i, l) = (st.inst[p], st.layer[p / c]);
            x.iter().zip(dy).fold([0.0; 3], |[a, b, d], (&x, &g)| {
                let g64 = f64::from(g);
                let xi = f64::from((x - i.mean) * i.rstd);
                let xl = f64::from((x - l.mean) * l.rstd);
                [a + g64, b + g64 * xi, d + g64 * xl]
            })
        })
        .collect();
    let n_l = (c * n) as f64;
    // Per sample: sum((1 - rho) dy) and sum((1 - rho) dy * xl).
    let layer: Vec<(f32, f32)> = sums
        .chunks(c)
        .map(|p| {
            let (sg, sgx) = p.iter().zip(rho).fold((0.0, 0.0), |(a, b), (s, &r)| {
                let w = f64::from(1.0 - r);
                (a + w * s[0], b + w * s[2])
            });
            ((sg / n_l) as f32, (sgx / (n_l - 1.0)) as f32)
        })
        .collect();
    let mut drho = vec![0.0f64; c];
    for (p, s) in sums.iter().enumerate() {
        drho[p % c] += s[1] - s[2];
    }
    let mut dx = vec![0.0; x.len()];
    let n_i = n as f64;
    dx.par_chunks_mut(n)
        .zip(x.par_chunks(n).zip(dy.par_chunks(n)))
        .enumerate()
        .for_each(|(p, (dx, (x, dy)))| {
            let (i, l, r) = (st.inst[p], st.layer[p / c], rho[p % c]);
            let (mg, mgx) = ((sums[p][0] / n_i) as f32, (sums[p][1] / (n_i - 1.0)) as f32);
            let (lmg, lmgx) = layer[p / c];
            for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(dy) {
                let xi = (x - i.mean) * i.rstd;
                let xl = (x - l.mean) * l.rstd;
                *dx = r * i.rstd * (g - mg - xi * mgx) + l.rstd * ((1.0 - r) * g - lmg - xl * lmgx);
            }
        });
    (dx, drho.into_iter().map(|v| v as f32).collect())
}

pub(super) fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

pub(super) fn flex(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

pub(super) fn f32_input(t: &FlexTensor) -> FlexTensor {
    assert!(t.dtype() == DType::F32, "norm kernels compute in f32");
    t.to_contiguous()
}

pub(super) fn flex_instance_norm(x: FlexTensor) -> (FlexTensor, Vec<f32>) {
    let [b, c, h, w] = dims4(&x);
    let x = f32_input(&x);
    let (y, rstd) = instance_norm(x.storage(), h * w);
    (flex(y, [b, c, h, w]), rstd)
}

pub(super) fn flex_instance_layer_mix(x: FlexTensor, rho: FlexTensor) -> FlexTensor {
    let [b, c, h, w] = dims4(&x);
    let (x, rho) = (f32_input(&x), f32_input(&rho));
    assert!(
        rho.shape().num_elements() == c,
        "instance_layer_mix: rho must have {c} values"
    );
    flex(
        instance_layer_mix(x.storage(), rho.storage(), c, h * w),
        [b, c, h, w],
    )
}

#[derive(Debug)]
struct InstanceNormStep;

/// Instance norm's backward keeps its output and each plane's `rstd`.
#[derive(Debug, Clone)]
struct SavedInstanceNorm {
    y: FlexTensor,
    rstd: Vec<f32>,
}

impl Backward<Flex, 1> for InstanceNormStep {
    type State = SavedInstanceNorm;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let [node] = ops.parents;
        if let Some(node) = node {
            let [b, c, h, w] = dims4(&ops.state.y);
            let y = ops.state.y.to_contiguous();
            let dx = instance_norm_backward(y.storage(), &ops.state.rstd, dy.storage(), h * w);
            grads.register::<Flex>(node.id, flex(dx, [b, c, h, w]));
        }
    }
}

#[derive(Debug)]
struct MixStep;

/// The mix's backward keeps its input and rho, and recomputes the statistics.
#[derive(Debug, Clone)]
struct SavedMix {
    x: FlexTensor,
    rho: FlexTensor,
}

impl Backward<Flex, 2> for MixStep {
    type State = SavedMix;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let [node_x, node_rho] = ops.parents;
        let [b, c, h, w] = dims4(&ops.state.x);
        let (x, rho) = (ops.state.x.to_contiguous(), ops.state.rho.to_contiguous());
        let (dx, drho) =
            instance_layer_mix_backward(x.storage(), rho.storage(), dy.storage(), c, h * w);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex(dx, [b, c, h, w]));
        }
        if let Some(node) = node_rho {
            grads.register::<Flex>(node.id, flex(drho, ops.state.rho.shape()));
        }
    }
}

pub(super) fn autodiff_instance_norm(
    x: FloatTensor<Autodiff<Flex>>,
) -> FloatTensor<Autodiff<Flex>> {
    match InstanceNormStep
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (y, rstd) = flex_instance_norm(x.primitive);
            let saved = SavedInstanceNorm { y: y.clone(), rstd };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(flex_instance_norm(x.primitive).0),
    }
}

pub(super) fn autodiff_instance_layer_mix(
    x: FloatTensor<Autodiff<Flex>>,
    rho: FloatTensor<Autodiff<Flex>>,
) -> FloatTensor<Autodiff<Flex>> {
    match MixStep
        .prepare::<NoCheckpointing>([x.node.clone(), rho.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let saved = SavedMix {
                x: x.primitive.clone(),
                rho: rho.primitive.clone(),
            };
            prep.finish(saved, flex_instance_layer_mix(x.primitive, rho.primitive))
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(flex_instance_layer_mix(x.primitive, rho.primitive))
        }
    }
}
