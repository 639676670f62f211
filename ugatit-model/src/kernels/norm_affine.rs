//! AdaILN and ILN in one op: the instance-layer mix, its scale and shift, and the ReLU that
//! follows it in the generator (official `ResnetAdaILNBlock` and the up-sampling blocks:
//! `relu(ILN(x))`, `relu(adaILN(x, gamma, beta))`, and `adaILN(x, gamma, beta)` before the
//! residual add).
//!
//! Composed from burn's ops, `mix * gamma + beta` then ReLU keep three full-size tensors for
//! the backward (the mix's input, the mix's output for gamma's gradient, and the ReLU's) and
//! make four passes over the activation each way. Here the forward is one pass and the
//! backward keeps only the input, which it normalises again from recomputed statistics, and,
//! when a ReLU follows, the output for its mask (in the decoder's residual blocks the next
//! convolution keeps that same tensor for its weight gradient, so it costs nothing there).

use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorMetadata;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::norm_stats::{dims4, f32_input, flex, mix_backward_with, mix_stats, mix_value};

/// Which scale and shift plane `p` (sample `p / c`, channel `p % c`) takes: gamma and beta
/// are `[batch, c]` (AdaILN, from the MLP) or `[1, c]` (ILN, parameters).
fn affine_index(p: usize, c: usize, per_sample: bool) -> usize {
    if per_sample {
        p
    } else {
        p % c
    }
}

/// ReLU as Flex's (`max(v, 0)`: NaN becomes 0, as the separate ops gave on this backend; a
/// diverged step still shows in its losses).
fn relu(v: f32) -> f32 {
    v.max(0.0)
}

/// `mix(x, rho) * gamma + beta`, then ReLU when `relu_after`, of `x` `[batch, c, n]` with
/// `rho` `[c]` and `gamma`, `beta` `[batch or 1, c]`. The same f32 operations in the same order
/// as the mix kernel ([`super::norm_stats::instance_layer_mix`]) followed by burn's multiply,
/// add and ReLU on Flex, so the same values.
pub fn norm_affine(
    x: &[f32],
    rho: &[f32],
    gamma: &[f32],
    beta: &[f32],
    c: usize,
    n: usize,
    relu_after: bool,
) -> Vec<f32> {
    let st = mix_stats(x, c, n);
    let per_sample = gamma.len() != c;
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(n)
        .zip(x.par_chunks(n))
        .enumerate()
        .for_each(|(p, (y, x))| {
            let (i, l, r) = (st.inst[p], st.layer[p / c], rho[p % c]);
            let a = affine_index(p, c, per_sample);
            let (g, b) = (gamma[a], beta[a]);
            for (y, &x) in y.iter_mut().zip(x) {
                let mix = mix_value(x, i, l, r);
                let v = mix * g + b;
                *y = if relu_after { relu(v) } else { v };
            }
        });
    y
}

/// The gradients of [`norm_affine`] with respect to `x`, `rho`, `gamma` and `beta`, from the
/// input `x`, the output `y` (read only for the ReLU's mask) and the output gradient `dy`.
/// With `g = dy` where the ReLU's output is positive (Flex's mask; everywhere without a ReLU):
/// `d beta = sum(g)`, `d gamma = sum(g * mix)`, and the mix's own backward of `g * gamma`
/// (from the same statistics of `x`).
#[allow(clippy::too_many_arguments)]
pub fn norm_affine_backward(
    x: &[f32],
    rho: &[f32],
    gamma: &[f32],
    y: Option<&[f32]>,
    dy: &[f32],
    c: usize,
    n: usize,
) -> [Vec<f32>; 4] {
    let st = mix_stats(x, c, n);
    let per_sample = gamma.len() != c;
    let mut dmix = vec![0.0; x.len()];
    // Per plane: sum(g) and sum(g * mix).
    let sums: Vec<(f64, f64)> = dmix
        .par_chunks_mut(n)
        .zip(x.par_chunks(n).zip(dy.par_chunks(n)))
        .enumerate()
        .map(|(p, (dmix, (x, dy)))| {
            let (i, l, r) = (st.inst[p], st.layer[p / c], rho[p % c]);
            let g_scale = gamma[affine_index(p, c, per_sample)];
            let y = y.map(|y| &y[p * n..(p + 1) * n]);
            let mut sums = (0.0f64, 0.0f64);
            for (k, ((dm, &x), &d)) in dmix.iter_mut().zip(x).zip(dy).enumerate() {
                let g = match y {
                    Some(y) if y[k] > 0.0 => d,
                    Some(_) => 0.0,
                    None => d,
                };
                let mix = mix_value(x, i, l, r);
                sums.0 += f64::from(g);
                sums.1 += f64::from(g) * f64::from(mix);
                *dm = g * g_scale;
            }
            sums
        })
        .collect();
    let mut dgamma = vec![0.0f64; gamma.len()];
    let mut dbeta = vec![0.0f64; gamma.len()];
    for (p, (sg, sgm)) in sums.into_iter().enumerate() {
        let a = affine_index(p, c, per_sample);
        dbeta[a] += sg;
        dgamma[a] += sgm;
    }
    let (dx, drho) = mix_backward_with(&st, x, rho, &dmix, c, n);
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    [dx, drho, to_f32(dgamma), to_f32(dbeta)]
}

/// The op's inputs as contiguous f32: `x` `[batch, c, h, w]`, `rho` `[.., c, ..]` (c values),
/// `gamma` and `beta` `[batch or 1, c]`.
fn checked(
    x: &FlexTensor,
    rho: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
) -> [FlexTensor; 4] {
    let [b, c, _, _] = dims4(x);
    assert!(
        rho.shape().num_elements() == c,
        "norm_affine: rho must have {c} values"
    );
    let dims = gamma.shape().to_vec();
    assert!(
        (dims == [1, c] || dims == [b, c]) && beta.shape().to_vec() == dims,
        "norm_affine: gamma and beta must both be [{b} or 1, {c}], got {dims:?} and {:?}",
        beta.shape().to_vec()
    );
    [x, rho, gamma, beta].map(f32_input)
}

pub(super) fn flex_norm_affine(
    x: FlexTensor,
    rho: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    relu_after: bool,
) -> FlexTensor {
    let [b, c, h, w] = dims4(&x);
    let [x, rho, gamma, beta] = checked(&x, &rho, &gamma, &beta);
    let y = norm_affine(
        x.storage(),
        rho.storage(),
        gamma.storage(),
        beta.storage(),
        c,
        h * w,
        relu_after,
    );
    flex(y, [b, c, h, w])
}

#[derive(Debug)]
struct NormAffineStep;

/// The backward keeps the input, rho and gamma (whose shape beta shares), and the output when a
/// ReLU follows (its mask).
#[derive(Debug, Clone)]
struct SavedNormAffine {
    x: FlexTensor,
    rho: FlexTensor,
    gamma: FlexTensor,
    y: Option<FlexTensor>,
}

impl Backward<Flex, 4> for NormAffineStep {
    type State = SavedNormAffine;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let s = ops.state;
        let [b, c, h, w] = dims4(&s.x);
        let (x, rho, gamma) = (
            s.x.to_contiguous(),
            s.rho.to_contiguous(),
            s.gamma.to_contiguous(),
        );
        let y = s.y.map(|y| y.to_contiguous());
        let [dx, drho, dgamma, dbeta] = norm_affine_backward(
            x.storage(),
            rho.storage(),
            gamma.storage(),
            y.as_ref().map(|y| y.storage()),
            dy.storage(),
            c,
            h * w,
        );
        let [node_x, node_rho, node_gamma, node_beta] = ops.parents;
        let shapes = [
            burn::tensor::Shape::from([b, c, h, w]),
            s.rho.shape(),
            s.gamma.shape(),
            s.gamma.shape(),
        ];
        for ((node, grad), shape) in [node_x, node_rho, node_gamma, node_beta]
            .into_iter()
            .zip([dx, drho, dgamma, dbeta])
            .zip(shapes)
        {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, flex(grad, shape));
            }
        }
    }
}

pub(super) fn autodiff_norm_affine(
    x: FloatTensor<Autodiff<Flex>>,
    rho: FloatTensor<Autodiff<Flex>>,
    gamma: FloatTensor<Autodiff<Flex>>,
    beta: FloatTensor<Autodiff<Flex>>,
    relu_after: bool,
) -> FloatTensor<Autodiff<Flex>> {
    let nodes = [&x, &rho, &gamma, &beta].map(|t| t.node.clone());
    match NormAffineStep
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (xs, rhos, gammas) = (
                x.primitive.clone(),
                rho.primitive.clone(),
                gamma.primitive.clone(),
            );
            let y = flex_norm_affine(
                x.primitive,
                rho.primitive,
                gamma.primitive,
                beta.primitive,
                relu_after,
            );
            let saved = SavedNormAffine {
                x: xs,
                rho: rhos,
                gamma: gammas,
                y: relu_after.then(|| y.clone()),
            };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(flex_norm_affine(
            x.primitive,
            rho.primitive,
            gamma.primitive,
            beta.primitive,
            relu_after,
        )),
    }
}
