//! Whole-module gradient arithmetic the optimisers do not offer: scaling every gradient (loss
//! scaling's unscale, a data-parallel mean) with a check that all are finite, and summing the
//! gradients of replicas on other devices into one set on the main device.

use std::marker::PhantomData;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// Every gradient of `module`'s parameters in `grads` times `factor`; with `check`, also
/// whether they are all finite (one value read back from the device: a sum of `g * 0` is 0
/// when every element is finite and NaN otherwise, as `torch._amp_foreach_non_finite_check`
/// finds infs and NaNs). Without `check` nothing is read and the answer is `true`.
pub fn scale_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
    mut grads: GradientsParams,
    module: &M,
    factor: f32,
    check: bool,
) -> (GradientsParams, bool) {
    let mut visitor = Scale::<B> {
        grads: &mut grads,
        factor,
        check,
        non_finite: None,
        backend: PhantomData,
    };
    module.visit(&mut visitor);
    let finite = match visitor.non_finite.take() {
        Some(flag) => flag
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .is_ok_and(|v| v.iter().all(|x| x.is_finite())),
        None => true,
    };
    (grads, finite)
}

struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f32,
    check: bool,
    non_finite: Option<Tensor<B::InnerBackend, 1>>,
    backend: PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        // Spectral-norm vectors are visited too but have no gradient.
        let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) else {
            return;
        };
        let g = g.mul_scalar(self.factor);
        if self.check {
            let probe = g.clone().mul_scalar(0.0).sum();
            self.non_finite = Some(match self.non_finite.take() {
                Some(acc) => acc + probe,
                None => probe,
            });
        }
        self.grads.register(param.id, g);
    }
}

/// The sum of several replicas' gradients of `module`'s parameters, on `device` (the main
/// replica's). Parameters are matched by id, which every replica shares.
pub fn sum_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
    parts: Vec<GradientsParams>,
    module: &M,
    device: &B::Device,
) -> GradientsParams {
    let mut parts = parts.into_iter();
    let mut sum = parts.next().unwrap_or_default().to_device(device, module);
    for part in parts {
        let part = part.to_device(device, module);
        let mut visitor = Add::<B> {
            sum: &mut sum,
            part,
            backend: PhantomData,
        };
        module.visit(&mut visitor);
    }
    sum
}

struct Add<'a, B: AutodiffBackend> {
    sum: &'a mut GradientsParams,
    part: GradientsParams,
    backend: PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Add<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let part = self.part.remove::<B::InnerBackend, D>(param.id);
        let total = match (self.sum.remove::<B::InnerBackend, D>(param.id), part) {
            (Some(s), Some(p)) => s + p,
            (Some(g), None) | (None, Some(g)) => g,
            (None, None) => return,
        };
        self.sum.register(param.id, total);
    }
}
