//! Normalisations of the generator: plain instance norm (encoder), AdaILN (decoder residual
//! blocks) and ILN (upsampling blocks).

mod ada_iln;
mod iln;

pub use ada_iln::AdaIln;
pub use iln::Iln;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::DType;

use crate::kernels::{from_backend, into_backend, Fast, KernelBackend};

/// The epsilon inside every square root, as in the official code.
pub const EPS: f64 = 1e-5;

/// `nn.InstanceNorm2d(C)` with the official defaults: no affine, biased variance, eps 1e-5.
///
/// `[batch, channels, h, w]` in and out. On Flex and `Autodiff<Flex>` in f32 this runs our
/// single-pass kernel ([`crate::kernels::norm_stats`]), elsewhere
/// [`instance_norm_composed`].
pub fn instance_norm<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    fn on<B: Backend, K: KernelBackend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
        from_backend::<K, B, 4>(K::instance_norm(into_backend::<B, K, 4>(x)))
    }
    match Fast::chosen::<B>().filter(|_| x.dtype() == DType::F32) {
        Some(Fast::Flex) => on::<B, Flex>(x),
        Some(Fast::AutodiffFlex) => on::<B, Autodiff<Flex>>(x),
        None => instance_norm_composed(x),
    }
}

/// [`instance_norm`] in burn's tensor ops (any backend; the reference of the kernel tests).
pub fn instance_norm_composed<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let (var, mean) = plane_stats(x.clone(), false);
    (x - mean) / (var + EPS).sqrt()
}

/// The instance-layer mix shared by AdaILN and ILN (paper eq. 1-2):
/// `rho * (x - mu_I) / sqrt(var_I + eps) + (1 - rho) * (x - mu_L) / sqrt(var_L + eps)`.
///
/// Both variances are **unbiased** (`torch.var` in the official `adaILN`/`ILN`), not the
/// biased ones of `nn.InstanceNorm2d`. `rho` is `[1, C, 1, 1]`; `x` is `[batch, C, h, w]`.
/// On Flex and `Autodiff<Flex>` in f32 this runs our single-pass kernel
/// ([`crate::kernels::norm_stats`]), elsewhere [`instance_layer_mix_composed`].
/// Variance (unbiased or biased) and mean of each `[r, s]` plane of `x` `[b, g, r, s]`, as
/// `[b, g, 1, 1]`: the mean first, then the mean squared deviation from it (two passes, as
/// `torch.var`). Each sum runs over one axis at a time, rows then columns: the same sums as one
/// reduction over the plane, added in runs of `s` and `r` values. burn-cubecl's reduction adds a
/// long row in one sequence on some shapes (measured on wgpu: the mean of one row of a
/// `[2, 131072]` tensor off by 6e-5, so a light 128 generator's last ILN moved the image by
/// 5e-4 in the second image of a batch only); short runs keep float32's accuracy everywhere.
fn plane_stats<B: Backend>(x: Tensor<B, 4>, unbiased: bool) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [_, _, r, s] = x.dims();
    let n = (r * s) as f64;
    let mean = x.clone().sum_dim(3).sum_dim(2) / n;
    let d = x - mean.clone();
    let var = (d.clone() * d).sum_dim(3).sum_dim(2) / if unbiased { n - 1.0 } else { n };
    (var, mean)
}

pub fn instance_layer_mix<B: Backend>(x: Tensor<B, 4>, rho: Tensor<B, 4>) -> Tensor<B, 4> {
    fn on<B: Backend, K: KernelBackend>(x: Tensor<B, 4>, rho: Tensor<B, 4>) -> Tensor<B, 4> {
        from_backend::<K, B, 4>(K::instance_layer_mix(
            into_backend::<B, K, 4>(x),
            into_backend::<B, K, 4>(rho),
        ))
    }
    let f32s = x.dtype() == DType::F32 && rho.dtype() == DType::F32;
    match Fast::chosen::<B>().filter(|_| f32s) {
        Some(Fast::Flex) => on::<B, Flex>(x, rho),
        Some(Fast::AutodiffFlex) => on::<B, Autodiff<Flex>>(x, rho),
        None => instance_layer_mix_composed(x, rho),
    }
}

/// [`instance_layer_mix`] in burn's tensor ops (any backend; the reference of the kernel
/// tests).
pub fn instance_layer_mix_composed<B: Backend>(x: Tensor<B, 4>, rho: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    let (in_var, in_mean) = plane_stats(x.clone(), true);
    let out_in = (x.clone() - in_mean) / (in_var + EPS).sqrt();
    // The layer statistics: every value of a sample, as `[b, 1, c * h, w]` planes.
    let (ln_var, ln_mean) = plane_stats(x.clone().reshape([b, 1, c * h, w]), true);
    let out_ln = (x - ln_mean) / (ln_var + EPS).sqrt();
    out_in * rho.clone() + out_ln * (rho.neg() + 1.0)
}

/// AdaILN and ILN (paper eq. 1): `instance_layer_mix(x, rho) * gamma + beta`, followed by a
/// ReLU when `relu_after` (the generator's `relu(adaILN(..))` and `relu(ILN(..))`). `x` is
/// `[batch, C, h, w]`, `rho` `[1, C, 1, 1]`, `gamma` and `beta` `[batch, C]` (AdaILN) or
/// `[1, C]` (ILN). On Flex and `Autodiff<Flex>` in f32 one op
/// ([`crate::kernels::norm_affine`]), elsewhere [`norm_affine_composed`].
pub fn norm_affine<B: Backend>(
    x: Tensor<B, 4>,
    rho: Tensor<B, 4>,
    gamma: Tensor<B, 2>,
    beta: Tensor<B, 2>,
    relu_after: bool,
) -> Tensor<B, 4> {
    fn on<B: Backend, K: KernelBackend>(
        x: Tensor<B, 4>,
        rho: Tensor<B, 4>,
        gamma: Tensor<B, 2>,
        beta: Tensor<B, 2>,
        relu_after: bool,
    ) -> Tensor<B, 4> {
        from_backend::<K, B, 4>(K::norm_affine(
            into_backend::<B, K, 4>(x),
            into_backend::<B, K, 4>(rho),
            into_backend::<B, K, 2>(gamma),
            into_backend::<B, K, 2>(beta),
            relu_after,
        ))
    }
    let f32s = [x.dtype(), rho.dtype(), gamma.dtype(), beta.dtype()]
        .iter()
        .all(|d| *d == DType::F32);
    match Fast::chosen::<B>().filter(|_| f32s) {
        Some(Fast::Flex) => on::<B, Flex>(x, rho, gamma, beta, relu_after),
        Some(Fast::AutodiffFlex) => on::<B, Autodiff<Flex>>(x, rho, gamma, beta, relu_after),
        None => norm_affine_composed(x, rho, gamma, beta, relu_after),
    }
}

/// [`norm_affine`] in burn's tensor ops: what every backend without our kernels runs.
pub fn norm_affine_composed<B: Backend>(
    x: Tensor<B, 4>,
    rho: Tensor<B, 4>,
    gamma: Tensor<B, 2>,
    beta: Tensor<B, 2>,
    relu_after: bool,
) -> Tensor<B, 4> {
    let [gb, c] = gamma.dims();
    let y = instance_layer_mix_composed(x, rho) * gamma.reshape([gb, c, 1, 1])
        + beta.reshape([gb, c, 1, 1]);
    if relu_after {
        relu(y)
    } else {
        y
    }
}
