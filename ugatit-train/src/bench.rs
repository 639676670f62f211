//! `ugatit-train bench`: the median time of one generator forward (batch 1) or one full
//! training step, as `shared/reference/bench_torch.py` measures PyTorch, printed as the same
//! JSON fields so the two compare line by line.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Distribution;
use serde::Serialize;
use ugatit_model::Ugatit;

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
    pub median_s: f64,
    pub min_s: f64,
    pub peak_rss_mb: f64,
}

/// Times `repeat` runs after one warm-up run.
pub fn run<B: AutodiffBackend>(
    cfg: &Config,
    what: Work,
    repeat: usize,
    device: &B::Device,
    device_name: &str,
) -> Report {
    let s = cfg.model.img_size;
    let image = || Tensor::<B, 4>::random([1, 3, s, s], Distribution::Uniform(-1.0, 1.0), device);
    let model = Ugatit::<B>::init(&cfg.model, cfg.train.seed, device);
    let mut times = Vec::with_capacity(repeat);
    match what {
        Work::Forward => {
            let g = model.gen_a2b.valid();
            let x = image().inner();
            for i in 0..=repeat {
                let t = Instant::now();
                // Reading the result back waits for the device.
                let _ = g.forward(x.clone()).image.into_data();
                if i > 0 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
        }
        Work::Step => {
            let mut state = TrainState::new(model, &cfg.train);
            let (a, b) = (image(), image());
            for i in 0..=repeat {
                let t = Instant::now();
                // The step reads its losses back, which waits for the device.
                state.step(a.clone(), b.clone(), cfg.train.lr);
                if i > 0 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
        }
    }
    times.sort_by(f64::total_cmp);
    Report {
        what,
        size: s,
        ch: cfg.model.ch,
        n_res: cfg.model.n_res,
        light: cfg.model.light,
        device: device_name.to_string(),
        median_s: times[times.len() / 2],
        min_s: times[0],
        peak_rss_mb: peak_rss_mb(),
    }
}

/// The process's peak resident memory (VmHWM), where /proc tells it.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
