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
use ugatit_model::{Discriminator, DiscriminatorOutput, Generator, Mode, Ugatit};

use crate::config::TrainConfig;

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

/// The networks and both Adam optimisers.
pub struct TrainState<B: AutodiffBackend> {
    pub gens: Generators<B>,
    pub dis: Discriminators<B>,
    pub optim_g: AdamFor<Generators<B>, B>,
    pub optim_d: AdamFor<Discriminators<B>, B>,
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
    /// rate `lr`. Every discriminator runs three training-mode forwards (real and fake in the D
    /// step, fake in the G step), so its spectral-norm vectors advance three times, as in the
    /// official code.
    pub fn step(&mut self, a: Tensor<B, 4>, b: Tensor<B, 4>, lr: f64) -> StepLosses {
        let c = self.cfg.clone();

        // Discriminators (eq. 6 and 8): translations without gradient to the generators.
        let gens = self.gens.valid();
        let fake_a2b = Tensor::from_inner(gens.a2b.forward(a.clone().inner()).image);
        let fake_b2a = Tensor::from_inner(gens.b2a.forward(b.clone().inner()).image);
        let d = &self.dis;
        let d_adv = |dis: &Discriminator<B>, real: &Tensor<B, 4>, fake: &Tensor<B, 4>| {
            let r = dis.forward(real.clone(), Mode::Train);
            let f = dis.forward(fake.clone(), Mode::Train);
            lsgan(r, 1.0) + lsgan(f, 0.0)
        };
        let d_adv_a = d_adv(&d.ga, &a, &fake_b2a) + d_adv(&d.la, &a, &fake_b2a);
        let d_adv_b = d_adv(&d.gb, &b, &fake_a2b) + d_adv(&d.lb, &b, &fake_a2b);
        let d_loss = (d_adv_a.clone() + d_adv_b.clone()) * c.adv_weight;
        let grads = GradientsParams::from_grads(d_loss.backward(), &self.dis);
        self.dis = self.optim_d.step(lr, self.dis.clone(), grads);

        // Generators (eq. 6-9): the updated discriminators judge, but are not trained here.
        let g = &self.gens;
        let dis = self.dis.clone().no_grad();
        let a2b = g.a2b.forward(a.clone());
        let b2a = g.b2a.forward(b.clone());
        let a2b2a = g.b2a.forward(a2b.image.clone());
        let b2a2b = g.a2b.forward(b2a.image.clone());
        let a2a = g.b2a.forward(a.clone());
        let b2b = g.a2b.forward(b.clone());
        let g_adv = |global: &Discriminator<B>, local: &Discriminator<B>, fake: &Tensor<B, 4>| {
            lsgan(global.forward(fake.clone(), Mode::Train), 1.0)
                + lsgan(local.forward(fake.clone(), Mode::Train), 1.0)
        };
        let g_adv_a = g_adv(&dis.ga, &dis.la, &b2a.image);
        let g_adv_b = g_adv(&dis.gb, &dis.lb, &a2b.image);
        let g_cycle_a = l1(a2b2a.image, a.clone());
        let g_cycle_b = l1(b2a2b.image, b.clone());
        let g_identity_a = l1(a2a.image, a);
        let g_identity_b = l1(b2b.image, b);
        // CAM loss (eq. 8): the translation's source-domain logits say "other domain", the
        // identity's say "own domain".
        let g_cam_a =
            bce_with_logits_to(b2a.cam_logit, 1.0) + bce_with_logits_to(a2a.cam_logit, 0.0);
        let g_cam_b =
            bce_with_logits_to(a2b.cam_logit, 1.0) + bce_with_logits_to(b2b.cam_logit, 0.0);
        let weighted =
            |adv: &Tensor<B, 1>, cyc: &Tensor<B, 1>, idt: &Tensor<B, 1>, cam: &Tensor<B, 1>| {
                adv.clone() * c.adv_weight
                    + cyc.clone() * c.cycle_weight
                    + idt.clone() * c.identity_weight
                    + cam.clone() * c.cam_weight
            };
        let g_loss = weighted(&g_adv_a, &g_cycle_a, &g_identity_a, &g_cam_a)
            + weighted(&g_adv_b, &g_cycle_b, &g_identity_b, &g_cam_b);
        let grads = GradientsParams::from_grads(g_loss.backward(), &self.gens);
        let gens = self.optim_g.step(lr, self.gens.clone(), grads);
        self.gens = Generators {
            a2b: clip_rho(gens.a2b),
            b2a: clip_rho(gens.b2a),
        };

        let values = Tensor::cat(
            [
                d_loss,
                g_loss,
                d_adv_a,
                d_adv_b,
                g_adv_a,
                g_adv_b,
                g_cycle_a,
                g_cycle_b,
                g_identity_a,
                g_identity_b,
                g_cam_a,
                g_cam_b,
            ]
            .into_iter()
            .map(|t| t.detach())
            .collect(),
            0,
        );
        StepLosses(
            values
                .into_data()
                .convert::<f32>()
                .into_vec()
                .unwrap_or_default(),
        )
    }
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
