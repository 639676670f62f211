//! KID and FID during training (`[eval]`): every `eval.every` steps each generator translates
//! the first `eval.images` test images of its source domain, scored against the other domain's
//! test images as `ugatit-train eval` scores them (see [`crate::eval`]). The real images'
//! features are computed once, at the start.

use std::path::Path;

use anyhow::Result;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use image::RgbImage;

use crate::config::Config;
use crate::eval::{scores, translate_images, Features, FidInception, KidOptions, TestImages};
use crate::step::Generators;

/// Images a forward pass.
const BATCH: usize = 8;

/// The evaluation of a run: nothing unless `eval.every` and `eval.features` are set.
pub(super) struct Evaluation<B: AutodiffBackend> {
    every: u64,
    loaded: Option<Loaded<B>>,
}

struct Loaded<B: AutodiffBackend> {
    net: FidInception<B::InnerBackend>,
    kid: KidOptions,
    /// Test images of domains A and B at the model's size, and their features.
    a: (Vec<RgbImage>, Features),
    b: (Vec<RgbImage>, Features),
    device: B::Device,
}

impl<B: AutodiffBackend> Evaluation<B> {
    /// Loads the feature network and the test images under `root`, and computes the real
    /// images' features.
    pub(super) fn load(root: &Path, cfg: &Config, device: &B::Device) -> Result<Self> {
        let e = &cfg.eval;
        let (every, Some(weights)) = (e.every, e.features.as_deref().filter(|_| e.every > 0))
        else {
            return Ok(Self {
                every: 0,
                loaded: None,
            });
        };
        let net = FidInception::<B::InnerBackend>::load(weights, device)?;
        let size = cfg.model.img_size as u32;
        let domain = |folder: &str| -> Result<(Vec<RgbImage>, Features)> {
            let set = TestImages::read(&root.join(folder), size, Some(e.images))?;
            for s in &set.skipped {
                eprintln!("warning: eval: {s}");
            }
            let features = net.features(&set.images, BATCH);
            Ok((set.images, features))
        };
        let (a, b) = (domain("testA")?, domain("testB")?);
        Ok(Self {
            every,
            loaded: Some(Loaded {
                kid: KidOptions {
                    subsets: e.kid_subsets,
                    max_subset_size: e.kid_subset_size,
                    seed: cfg.train.seed,
                },
                net,
                a,
                b,
                device: device.clone(),
            }),
        })
    }

    /// Whether step `step` evaluates.
    pub(super) fn due(&self, step: u64) -> bool {
        self.loaded.is_some() && step.is_multiple_of(self.every)
    }

    /// KID x100 and FID of both generators: `kid_a2b`, `fid_a2b`, `kid_b2a`, `fid_b2a`.
    pub(super) fn run(&self, gens: &Generators<B>) -> Result<Vec<(&'static str, f64)>> {
        let Some(l) = &self.loaded else {
            return Ok(Vec::new());
        };
        let gens = gens.valid();
        let mut values = Vec::new();
        for (g, (source, _), (_, real), names) in [
            (&gens.a2b, &l.a, &l.b, ["kid_a2b", "fid_a2b"]),
            (&gens.b2a, &l.b, &l.a, ["kid_b2a", "fid_b2a"]),
        ] {
            let fake = translate_images(|x| g.forward(x).image, source, BATCH, &l.device);
            let s = scores(&l.net.features(&fake, BATCH), real, &l.kid)?;
            values.extend([(names[0], s.kid_x100.mean), (names[1], s.fid)]);
        }
        Ok(values)
    }
}
