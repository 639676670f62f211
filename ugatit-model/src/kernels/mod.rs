//! Hand-written CPU kernels for the ops that hold U-GAT-IT's time on burn's Flex backend, where
//! burn composes them from slower general ops (BURN_NOTES: a reflect pad costs 20x PyTorch's,
//! and a convolution's backward 3.5x).
//!
//! - [`reflect_conv`]: convolution of the reflection-padded input without the padded copy,
//!   with its own backward.
//! - [`norm_stats`]: instance norm and the AdaILN/ILN instance-layer mix with single-pass
//!   statistics and their own backward.
//! - [`norm_affine`]: AdaILN/ILN with their scale, shift and following ReLU in one op.
//!
//! Each kernel is a method of [`KernelBackend`], implemented for [`Flex`] (the computation on
//! f32 slices) and for [`Autodiff<Flex>`] (which registers its own backward step with
//! burn-autodiff, calling the Flex kernels, and keeps only the tensors that backward reads).
//!
//! The model stays generic over `B: Backend`: a `KernelBackend` bound would have to spread
//! through every struct and crate that names a backend. Instead each op's generic function
//! (`layers::reflect_conv`, `norm::instance_norm`, `norm::instance_layer_mix`) asks [`Fast::chosen`] once, by `TypeId`, whether `B` is one of those two
//! backends, and if so moves the tensor primitives to it through `Box<dyn Any>`
//! ([`into_backend`], [`from_backend`]). Every other backend (CUDA, ndarray) runs burn's composed ops exactly as
//! before.
//!
//! `UGATIT_KERNELS=off` in the environment (read once per process) turns the kernels off: Flex
//! then runs burn's composed ops, the ones every GPU backend runs, so the test command checks
//! those against the PyTorch reference on the CPU as well ([`Fast::chosen`]).

mod matmul;
pub mod norm_affine;
pub mod norm_stats;
pub mod reflect_conv;
pub mod winograd;

use core::any::{Any, TypeId};

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorPrimitive;

pub use reflect_conv::ReflectConvOptions;

/// A backend with our kernels.
pub trait KernelBackend: Backend {
    /// `conv2d(ReflectionPad2d(opts.pad)(x), weight, bias, stride = opts.stride)` for `x`
    /// `[batch, c_in, h, w]` and a square `weight` `[c_out, c_in, k, k]`, in f32.
    fn reflect_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        opts: ReflectConvOptions,
    ) -> FloatTensor<Self>;

    /// `nn.InstanceNorm2d` (biased variance, eps 1e-5, no affine) of `[batch, c, h, w]`.
    fn instance_norm(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The official AdaILN/ILN mix of instance and layer normalisation (unbiased variances) of
    /// `x` `[batch, c, h, w]` with `rho` `[1, c, 1, 1]`.
    fn instance_layer_mix(x: FloatTensor<Self>, rho: FloatTensor<Self>) -> FloatTensor<Self>;

    /// AdaILN / ILN: `instance_layer_mix(x, rho) * gamma + beta` with `gamma`, `beta`
    /// `[batch or 1, c]`, then ReLU when `relu_after`.
    fn norm_affine(
        x: FloatTensor<Self>,
        rho: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        relu_after: bool,
    ) -> FloatTensor<Self>;
}

impl KernelBackend for Flex {
    fn reflect_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        opts: ReflectConvOptions,
    ) -> FloatTensor<Self> {
        reflect_conv::flex_reflect_conv(x, weight, bias, opts)
    }

    fn instance_norm(x: FloatTensor<Self>) -> FloatTensor<Self> {
        norm_stats::flex_instance_norm(x).0
    }

    fn instance_layer_mix(x: FloatTensor<Self>, rho: FloatTensor<Self>) -> FloatTensor<Self> {
        norm_stats::flex_instance_layer_mix(x, rho)
    }

    fn norm_affine(
        x: FloatTensor<Self>,
        rho: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        relu_after: bool,
    ) -> FloatTensor<Self> {
        norm_affine::flex_norm_affine(x, rho, gamma, beta, relu_after)
    }
}

impl KernelBackend for Autodiff<Flex> {
    fn reflect_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        opts: ReflectConvOptions,
    ) -> FloatTensor<Self> {
        reflect_conv::autodiff_reflect_conv(x, weight, bias, opts)
    }

    fn instance_norm(x: FloatTensor<Self>) -> FloatTensor<Self> {
        norm_stats::autodiff_instance_norm(x)
    }

    fn instance_layer_mix(x: FloatTensor<Self>, rho: FloatTensor<Self>) -> FloatTensor<Self> {
        norm_stats::autodiff_instance_layer_mix(x, rho)
    }

    fn norm_affine(
        x: FloatTensor<Self>,
        rho: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        relu_after: bool,
    ) -> FloatTensor<Self> {
        norm_affine::autodiff_norm_affine(x, rho, gamma, beta, relu_after)
    }
}

/// The backends our kernels run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    Flex,
    AutodiffFlex,
}

impl Fast {
    /// Which of our backends `B` is, if any.
    pub fn of<B: Backend>() -> Option<Self> {
        let b = TypeId::of::<B>();
        if b == TypeId::of::<Flex>() {
            Some(Self::Flex)
        } else if b == TypeId::of::<Autodiff<Flex>>() {
            Some(Self::AutodiffFlex)
        } else {
            None
        }
    }
}

impl Fast {
    /// The kernels to run for `B`: [`Fast::of`], unless `UGATIT_KERNELS=off` turned them off.
    pub fn chosen<B: Backend>() -> Option<Self> {
        Self::of::<B>().filter(|_| kernels_on())
    }
}

/// Whether our kernels run where they can: unless the environment held `UGATIT_KERNELS=off`
/// when first asked (any other value leaves them on).
pub fn kernels_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("UGATIT_KERNELS").map_or(true, |v| v.trim() != "off"))
}

/// Moves `x` to type `U`, which the caller has checked to be `T` itself.
fn same_type<T: 'static, U: 'static>(x: T) -> U {
    match (Box::new(x) as Box<dyn Any>).downcast::<U>() {
        Ok(u) => *u,
        Err(_) => unreachable!("the caller compared the TypeIds"),
    }
}

/// `t`'s primitive as one of backend `K`, which must be `B` itself (see [`Fast::of`]).
pub(crate) fn into_backend<B: Backend, K: Backend, const D: usize>(
    t: Tensor<B, D>,
) -> FloatTensor<K> {
    same_type::<FloatTensor<B>, FloatTensor<K>>(t.into_primitive().tensor())
}

/// The inverse of [`into_backend`].
pub(crate) fn from_backend<K: Backend, B: Backend, const D: usize>(
    p: FloatTensor<K>,
) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(same_type::<
        FloatTensor<K>,
        FloatTensor<B>,
    >(p)))
}
