//! One U-GAT-IT training iteration, exactly as the official `UGATIT.train()` loop body: the
//! discriminator update, then the generator update, then rho clipping (paper section 2.2,
//! eq. 6-9).

use burn::module::{AutodiffModule, Module, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use ugatit_model::loss::{bce_with_logits_to, l1, mse_to};
use ugatit_model::{
    Discriminator, DiscriminatorOutput, Generator, GeneratorOutput, Mode, Precision, Ugatit,
};

use crate::config::TrainConfig;
use crate::grads::scale_gradients;
use crate::loss_scale::LossScaler;

/// Both generators: the official `G_optim` updates them together.
#[derive(Module, Debug)]
pub struct Generators<B: Backend> {
    pub a2b: Generator<B>,
    pub b2a: Generator<B>,
}

/// The four discriminators: the official `D_optim` updates them together.
#[derive(Module, Debug)]
pub struct Discriminators<B: Backend> {
    pub ga: Discriminator<B>,
    pub gb: Discriminator<B>,
    pub la: Discriminator<B>,
    pub lb: Discriminator<B>,
}

/// Names of the values [`TrainState::step`] reports, in order: the weighted totals the
/// official code prints, then each unweighted term per domain (A: the selfie side).
pub const LOSS_NAMES: [&str; 12] = [
    "d_loss",
    "g_loss",
    "d_adv_A",
    "d_adv_B",
    "g_adv_A",
    "g_adv_B",
    "g_cycle_A",
    "g_cycle_B",
    "g_identity_A",
    "g_identity_B",
    "g_cam_A",
    "g_cam_B",
];

/// The losses of one step, in the order of [`LOSS_NAMES`].
#[derive(Debug, Clone, PartialEq)]
pub struct StepLosses(pub Vec<f32>);

impl StepLosses {
    pub fn get(&self, name: &str) -> f32 {
        LOSS_NAMES
            .iter()
            .position(|n| *n == name)
            .map_or(f32::NAN, |i| self.0[i])
    }

    /// The first loss that is NaN or infinite.
    pub fn first_non_finite(&self) -> Option<(&'static str, f32)> {
        LOSS_NAMES
            .iter()
            .zip(&self.0)
            .find(|(_, v)| !v.is_finite())
            .map(|(n, v)| (*n, *v))
    }
}

type AdamFor<M, B> = OptimizerAdaptor<Adam, M, B>;

/// The networks and both Adam optimisers (float32 weights and state in every precision).
pub struct TrainState<B: AutodiffBackend> {
    pub gens: Generators<B>,
    pub dis: Discriminators<B>,
    pub optim_g: AdamFor<Generators<B>, B>,
    pub optim_d: AdamFor<Discriminators<B>, B>,
    /// Dynamic loss scaling, in float16 only (bfloat16 has float32's range).
    pub scaler: Option<LossScaler>,
    cfg: TrainConfig,
}

/// torch's `Adam(lr, betas=(beta1, beta2), weight_decay=wd)`: eps 1e-8 (burn's default is
/// 1e-5) and the decay added to the gradient as an L2 term, not decoupled as in AdamW.
pub fn adam(cfg: &TrainConfig) -> AdamConfig {
    AdamConfig::new()
        .with_beta_1(cfg.beta1 as f32)
        .with_beta_2(cfg.beta2 as f32)
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(cfg.weight_decay as f32)))
}

impl<B: AutodiffBackend> TrainState<B> {
    /// Fresh optimisers around `model`.
    pub fn new(model: Ugatit<B>, cfg: &TrainConfig) -> Self {
        Self {
            gens: Generators {
                a2b: model.gen_a2b,
                b2a: model.gen_b2a,
            },
            dis: Discriminators {
                ga: model.dis_ga,
                gb: model.dis_gb,
                la: model.dis_la,
                lb: model.dis_lb,
            },
            optim_g: adam(cfg).init(),
            optim_d: adam(cfg).init(),
            scaler: (cfg.precision == Precision::F16).then(LossScaler::default),
            cfg: cfg.clone(),
        }
    }

    /// The six networks (cheap: parameters are shared, not copied).
    pub fn model(&self) -> Ugatit<B> {
        Ugatit {
            gen_a2b: self.gens.a2b.clone(),
            gen_b2a: self.gens.b2a.clone(),
            dis_ga: self.dis.ga.clone(),
            dis_gb: self.dis.gb.clone(),
            dis_la: self.dis.la.clone(),
            dis_lb: self.dis.lb.clone(),
        }
    }

    /// One iteration on real batches `a` and `b` (`[batch, 3, S, S]` in [-1, 1]) at learning
    /// rate `lr`, its losses read back (this waits for the device: the run loop uses
    /// [`Self::step_on_device`] and reads them in bulk).
    pub fn step(&mut self, a: Tensor<B, 4>, b: Tensor<B, 4>, lr: f64) -> StepLosses {
        self.step_on_device(a, b, lr).read()
    }

    /// One iteration, exactly the official one (paper eq. 6-9): the discriminators' update,
    /// then the generators', then rho clipping. Nothing is read back from the device.
    ///
    /// The official loop runs the generators eight times: `a -> b` and `b -> a` for the D
    /// update, then again, with the same unchanged weights, for the G update. Here each
    /// translation is computed once, with its graph; the D update sees it detached, as the
    /// official `.detach()` does, and the G update differentiates it. Every discriminator still
    /// runs three separate training-mode forwards (real and fake in the D update, fake in the G
    /// update), so its spectral-norm vectors advance three times, as in the official code
    /// (batching real and fake would advance them once).
    ///
    /// In float16 the losses are scaled before each backward and the gradients unscaled before
    /// each update; an update whose gradients are not finite is skipped, as
    /// `torch.cuda.amp.GradScaler.step` skips it, and the step's losses say so.
    pub fn step_on_device(&mut self, a: Tensor<B, 4>, b: Tensor<B, 4>, lr: f64) -> DeviceLosses<B> {
        let t = self.translate(&a, &b);
        let d = self.discriminator_losses(&a, &b, &t);
        let grads = self.gradients(&d.total, &self.dis);
        let d_applied = self.update_discriminators(grads, lr);

        let g = self.generator_losses(&a, &b, t);
        let grads = self.gradients(&g.total, &self.gens);
        let g_applied = self.update_generators(grads, lr);
        self.end_scaled_step(d_applied && g_applied);
        DeviceLosses::new(&d, &g).skipped(!(d_applied && g_applied))
    }

    /// The gradients of `loss` for `module`'s parameters, of the loss times the loss scale in
    /// float16 (still scaled: the update unscales them).
    pub fn gradients<M: AutodiffModule<B>>(
        &self,
        loss: &Tensor<B, 1>,
        module: &M,
    ) -> GradientsParams {
        let loss = match &self.scaler {
            Some(s) => loss.clone() * s.scale(),
            None => loss.clone(),
        };
        GradientsParams::from_grads(loss.backward(), module)
    }

    /// The discriminators' Adam update with `grads` (from [`Self::gradients`]); false when
    /// float16 gradients were not finite and the update was skipped.
    pub fn update_discriminators(&mut self, grads: GradientsParams, lr: f64) -> bool {
        let Some(grads) = self.unscaled(grads, &self.dis) else {
            return false;
        };
        self.dis = self.optim_d.step(lr, self.dis.clone(), grads);
        true
    }

    /// The generators' Adam update, then rho clipped to [0, 1] (the official `Rho_clipper`);
    /// false when skipped, as [`Self::update_discriminators`].
    pub fn update_generators(&mut self, grads: GradientsParams, lr: f64) -> bool {
        let Some(grads) = self.unscaled(grads, &self.gens) else {
            return false;
        };
        let gens = self.optim_g.step(lr, self.gens.clone(), grads);
        self.gens = Generators {
            a2b: clip_rho(gens.a2b),
            b2a: clip_rho(gens.b2a),
        };
        true
    }

    /// The loss scale's update at the end of a step (`GradScaler.update()`): halved when an
    /// update was skipped, doubled after enough good steps.
    pub fn end_scaled_step(&mut self, all_finite: bool) {
        if let Some(s) = &mut self.scaler {
            s.update(all_finite);
        }
    }

    /// `grads` divided by the loss scale, or none when one is not finite (float32 and
    /// bfloat16: unchanged, nothing read back).
    fn unscaled<M: AutodiffModule<B>>(
        &self,
        grads: GradientsParams,
        module: &M,
    ) -> Option<GradientsParams> {
        match &self.scaler {
            None => Some(grads),
            Some(s) => {
                let (grads, finite) = scale_gradients(grads, module, 1.0 / s.scale(), true);
                finite.then_some(grads)
            }
        }
    }

    /// The training config this state steps with.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The six generator passes of a step, four forwards: each generator translates its own
    /// domain's batch and (identity) the other's in one batched forward (every norm of the
    /// generator is per sample), then the cycles translate back.
    pub fn translate(&self, a: &Tensor<B, 4>, b: &Tensor<B, 4>) -> Translations<B> {
        let _precision = self.cfg.precision.enter();
        let n = a.dims()[0];
        let g = &self.gens;
        let (a2b, b2b) = split(g.a2b.forward(Tensor::cat(vec![a.clone(), b.clone()], 0)), n);
        let (b2a, a2a) = split(g.b2a.forward(Tensor::cat(vec![b.clone(), a.clone()], 0)), n);
        let a2b2a = g.b2a.forward(a2b.image.clone());
        let b2a2b = g.a2b.forward(b2a.image.clone());
        Translations {
            a2b,
            b2a,
            a2a,
            b2b,
            a2b2a,
            b2a2b,
        }
    }

    /// The discriminators' adversarial losses (eq. 6, the D side): real images scored as real,
    /// the detached translations as fake, by the global and the local discriminator of each
    /// domain.
    pub fn discriminator_losses(
        &self,
        a: &Tensor<B, 4>,
        b: &Tensor<B, 4>,
        t: &Translations<B>,
    ) -> DiscriminatorLosses<B> {
        let _precision = self.cfg.precision.enter();
        let fake_a2b = t.a2b.image.clone().detach();
        let fake_b2a = t.b2a.image.clone().detach();
        let d = &self.dis;
        let d_adv = |dis: &Discriminator<B>, real: &Tensor<B, 4>, fake: &Tensor<B, 4>| {
            let r = dis.forward(real.clone(), Mode::Train);
            let f = dis.forward(fake.clone(), Mode::Train);
            lsgan(r, 1.0) + lsgan(f, 0.0)
        };
        let adv_a = d_adv(&d.ga, a, &fake_b2a) + d_adv(&d.la, a, &fake_b2a);
        let adv_b = d_adv(&d.gb, b, &fake_a2b) + d_adv(&d.lb, b, &fake_a2b);
        DiscriminatorLosses {
            total: (adv_a.clone() + adv_b.clone()) * self.cfg.adv_weight,
            adv_a,
            adv_b,
        }
    }

    /// The generators' losses (eq. 6-9): adversarial against the (just updated)
    /// discriminators, which are not trained here, cycle, identity and CAM.
    pub fn generator_losses(
        &self,
        a: &Tensor<B, 4>,
        b: &Tensor<B, 4>,
        t: Translations<B>,
    ) -> GeneratorLosses<B> {
        let _precision = self.cfg.precision.enter();
        let c = &self.cfg;
        let dis = self.dis.clone().no_grad();
        let g_adv = |global: &Discriminator<B>, local: &Discriminator<B>, fake: &Tensor<B, 4>| {
            lsgan(global.forward(fake.clone(), Mode::Train), 1.0)
                + lsgan(local.forward(fake.clone(), Mode::Train), 1.0)
        };
        let adv_a = g_adv(&dis.ga, &dis.la, &t.b2a.image);
        let adv_b = g_adv(&dis.gb, &dis.lb, &t.a2b.image);
        let cycle_a = l1(t.a2b2a.image, a.clone());
        let cycle_b = l1(t.b2a2b.image, b.clone());
        let identity_a = l1(t.a2a.image, a.clone());
        let identity_b = l1(t.b2b.image, b.clone());
        // CAM loss (eq. 8): the translation's source-domain logits say "other domain", the
        // identity's say "own domain".
        let cam_a =
            bce_with_logits_to(t.b2a.cam_logit, 1.0) + bce_with_logits_to(t.a2a.cam_logit, 0.0);
        let cam_b =
            bce_with_logits_to(t.a2b.cam_logit, 1.0) + bce_with_logits_to(t.b2b.cam_logit, 0.0);
        let weighted =
            |adv: &Tensor<B, 1>, cyc: &Tensor<B, 1>, idt: &Tensor<B, 1>, cam: &Tensor<B, 1>| {
                adv.clone() * c.adv_weight
                    + cyc.clone() * c.cycle_weight
                    + idt.clone() * c.identity_weight
                    + cam.clone() * c.cam_weight
            };
        GeneratorLosses {
            total: weighted(&adv_a, &cycle_a, &identity_a, &cam_a)
                + weighted(&adv_b, &cycle_b, &identity_b, &cam_b),
            adv_a,
            adv_b,
            cycle_a,
            cycle_b,
            identity_a,
            identity_b,
            cam_a,
            cam_b,
        }
    }
}

/// The generator outputs one step uses, with their autodiff graphs (`x2y`: x translated to y).
pub struct Translations<B: Backend> {
    pub a2b: GeneratorOutput<B>,
    pub b2a: GeneratorOutput<B>,
    pub a2a: GeneratorOutput<B>,
    pub b2b: GeneratorOutput<B>,
    pub a2b2a: GeneratorOutput<B>,
    pub b2a2b: GeneratorOutput<B>,
}

/// The D update's loss and its two terms.
pub struct DiscriminatorLosses<B: Backend> {
    pub total: Tensor<B, 1>,
    pub adv_a: Tensor<B, 1>,
    pub adv_b: Tensor<B, 1>,
}

/// The G update's loss and its eight terms.
pub struct GeneratorLosses<B: Backend> {
    pub total: Tensor<B, 1>,
    pub adv_a: Tensor<B, 1>,
    pub adv_b: Tensor<B, 1>,
    pub cycle_a: Tensor<B, 1>,
    pub cycle_b: Tensor<B, 1>,
    pub identity_a: Tensor<B, 1>,
    pub identity_b: Tensor<B, 1>,
    pub cam_a: Tensor<B, 1>,
    pub cam_b: Tensor<B, 1>,
}

/// A step's 12 losses, still on the device, in the order of [`LOSS_NAMES`], and whether an
/// update of that step was skipped for non-finite float16 gradients (its losses may then be
/// infinite without the run having diverged).
#[derive(Debug, Clone)]
pub struct DeviceLosses<B: AutodiffBackend>(Tensor<B::InnerBackend, 1>, bool);

impl<B: AutodiffBackend> DeviceLosses<B> {
    pub fn new(d: &DiscriminatorLosses<B>, g: &GeneratorLosses<B>) -> Self {
        let terms = [
            &d.total,
            &g.total,
            &d.adv_a,
            &d.adv_b,
            &g.adv_a,
            &g.adv_b,
            &g.cycle_a,
            &g.cycle_b,
            &g.identity_a,
            &g.identity_b,
            &g.cam_a,
            &g.cam_b,
        ];
        Self(
            Tensor::cat(terms.map(|t| t.clone().inner()).to_vec(), 0),
            false,
        )
    }

    /// Marks the step as skipped (or not).
    pub fn skipped(mut self, skipped: bool) -> Self {
        self.1 = skipped;
        self
    }

    /// Whether an update of this step was skipped by the loss scaler.
    pub fn was_skipped(&self) -> bool {
        self.1
    }

    /// The mean of several replicas' losses (each the mean over its equal share of the batch),
    /// on `device`: the losses of the whole batch.
    pub fn mean(parts: Vec<Self>, device: &B::Device) -> Self {
        let n = parts.len();
        let skipped = parts.iter().any(|p| p.1);
        let sum = parts
            .into_iter()
            .map(|p| p.0.to_device(device))
            .reduce(|a, b| a + b)
            .expect("at least one replica");
        Self(sum.div_scalar(n as f32), skipped)
    }

    /// Reads the values back (waits for the device).
    pub fn read(self) -> StepLosses {
        let mut steps = read_losses(self.0);
        steps.swap_remove(0)
    }

    /// Reads the losses of several steps back at once: one transfer, one wait.
    pub fn read_all(pending: Vec<Self>) -> Vec<StepLosses> {
        if pending.is_empty() {
            return Vec::new();
        }
        read_losses(Tensor::cat(pending.into_iter().map(|l| l.0).collect(), 0))
    }
}

/// Splits a flat tensor of `12 * k` values into `k` steps' losses.
fn read_losses<B: Backend>(flat: Tensor<B, 1>) -> Vec<StepLosses> {
    // A read that fails reads as NaN, which stops the run rather than hiding a step.
    let n = flat.dims()[0];
    let values = flat
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap_or_else(|_| vec![f32::NAN; n]);
    values
        .chunks(LOSS_NAMES.len())
        .map(|c| StepLosses(c.to_vec()))
        .collect()
}

/// The first `n` samples of a batched generator output, and the rest.
fn split<B: Backend>(
    out: GeneratorOutput<B>,
    n: usize,
) -> (GeneratorOutput<B>, GeneratorOutput<B>) {
    let total = out.image.dims()[0];
    let part = |from: usize, len: usize| GeneratorOutput {
        image: out.image.clone().narrow(0, from, len),
        cam_logit: out.cam_logit.clone().narrow(0, from, len),
        heatmap: out.heatmap.clone().narrow(0, from, len),
    };
    (part(0, n), part(n, total - n))
}

/// Least-squares GAN loss of a discriminator output against `target`, on both the patch
/// logits and the CAM logits (the official `MSE_loss` pairs).
fn lsgan<B: Backend>(out: DiscriminatorOutput<B>, target: f32) -> Tensor<B, 1> {
    mse_to(out.logit, target) + mse_to(out.cam_logit, target)
}

/// Clamps every rho of a generator to [0, 1] (the official `Rho_clipper`), keeping the
/// parameters trainable leaves with their ids.
pub fn clip_rho<B: AutodiffBackend>(mut g: Generator<B>) -> Generator<B> {
    fn clamp<B: AutodiffBackend>(p: Param<Tensor<B, 4>>) -> Param<Tensor<B, 4>> {
        p.map(|t| {
            let trainable = t.is_require_grad();
            Tensor::from_inner(t.inner().clamp(0.0, 1.0)).set_require_grad(trainable)
        })
    }
    for block in &mut g.decoder_blocks {
        block.norm1.rho = clamp(block.norm1.rho.clone());
        block.norm2.rho = clamp(block.norm2.rho.clone());
    }
    for norm in &mut g.up_norm {
        norm.rho = clamp(norm.rho.clone());
    }
    g
}
