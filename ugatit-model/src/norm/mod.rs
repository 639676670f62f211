//! Normalisations of the generator: plain instance norm (encoder), AdaILN (decoder residual
//! blocks) and ILN (upsampling blocks).

mod ada_iln;
mod iln;

pub use ada_iln::AdaIln;
pub use iln::Iln;

use burn::prelude::*;

/// The epsilon inside every square root, as in the official code.
pub const EPS: f64 = 1e-5;

/// `nn.InstanceNorm2d(C)` with the official defaults: no affine, biased variance, eps 1e-5.
///
/// `[batch, channels, h, w]` in and out.
pub fn instance_norm<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    let flat = x.reshape([b, c, h * w]);
    let (var, mean) = flat.clone().var_mean_bias(2);
    ((flat - mean) / (var + EPS).sqrt()).reshape([b, c, h, w])
}

/// The instance-layer mix shared by AdaILN and ILN (paper eq. 1-2):
/// `rho * (x - mu_I) / sqrt(var_I + eps) + (1 - rho) * (x - mu_L) / sqrt(var_L + eps)`.
///
/// Both variances are **unbiased** (`torch.var` in the official `adaILN`/`ILN`), not the
/// biased ones of `nn.InstanceNorm2d`. `rho` is `[1, C, 1, 1]`; `x` is `[batch, C, h, w]`.
pub fn instance_layer_mix<B: Backend>(x: Tensor<B, 4>, rho: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    let per_channel = x.clone().reshape([b, c, h * w]);
    let (in_var, in_mean) = per_channel.var_mean(2);
    let out_in =
        (x.clone() - in_mean.reshape([b, c, 1, 1])) / (in_var + EPS).sqrt().reshape([b, c, 1, 1]);
    let per_sample = x.clone().reshape([b, c * h * w]);
    let (ln_var, ln_mean) = per_sample.var_mean(1);
    let out_ln = (x - ln_mean.reshape([b, 1, 1, 1])) / (ln_var + EPS).sqrt().reshape([b, 1, 1, 1]);
    out_in * rho.clone() + out_ln * (rho.neg() + 1.0)
}
