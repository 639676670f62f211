//! `ugatit-train bench`: the median time of one generator forward (batch 1) or one full
//! training step, as `shared/reference/bench_torch.py` measures PyTorch, printed as the same
//! JSON fields so the two compare line by line. Peak memory is the process's RSS: burn 0.21
//! has no peak GPU memory figure (cubecl's client reports only the current pool usage), so on
//! a GPU `scripts/gpu-check.sh` samples nvidia-smi while it runs.

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Distribution;
use serde::Serialize;
use ugatit_io::timing::{peak_rss_mb, time_runs, warmup_runs};
use ugatit_io::DeviceChoice;
use ugatit_model::{Precision, Ugatit};

use crate::config::Config;
use crate::step::TrainState;

/// What to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Work {
    /// One generator forward on a single image, without autograd.
    Forward,
    /// One full training iteration (D update, G update) on single images.
    Step,
}

/// One benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub what: Work,
    pub size: usize,
    pub ch: usize,
    pub n_res: usize,
    pub light: bool,
    pub device: String,
    /// The compute type of convolutions and linear layers (`train.precision`).
    pub precision: Precision,
    pub median_s: f64,
    pub min_s: f64,
    pub peak_rss_mb: f64,
}

/// Times `repeat` runs after the warm-up runs.
pub fn run<B: AutodiffBackend>(
    cfg: &Config,
    what: Work,
    repeat: usize,
    device: &B::Device,
    device_name: DeviceChoice,
) -> Report {
    let s = cfg.model.img_size;
    let image = || Tensor::<B, 4>::random([1, 3, s, s], Distribution::Uniform(-1.0, 1.0), device);
    let model = Ugatit::<B>::init(&cfg.model, cfg.train.seed, device);
    let warmup = warmup_runs(device_name);
    let timing = match what {
        Work::Forward => {
            let g = model.gen_a2b.valid();
            let x = image().inner();
            let _precision = cfg.train.precision.enter();
            // Reading the result back waits for the device.
            time_runs(warmup, repeat, || {
                let _ = g.forward(x.clone()).image.into_data();
            })
        }
        Work::Step => {
            let mut state = TrainState::new(model, &cfg.train);
            let (a, b) = (image(), image());
            // The step reads its losses back, which waits for the device.
            time_runs(warmup, repeat, || {
                state.step(a.clone(), b.clone(), cfg.train.lr);
            })
        }
    };
    Report {
        what,
        size: s,
        ch: cfg.model.ch,
        n_res: cfg.model.n_res,
        light: cfg.model.light,
        device: device_name.to_string(),
        precision: cfg.train.precision,
        median_s: timing.median_s,
        min_s: timing.min_s,
        peak_rss_mb: peak_rss_mb(),
    }
}
