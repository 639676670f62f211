//! Data-parallel training's sharding and averaging: two replicas on one device, each given one
//! image of a batch of 2, make the same update as one state given the whole batch (weights
//! after one and after two steps, every loss term), from the official checkpoint of the
//! step-parity fixture (ugatit-store/tests/fixtures/full_96_ch4_r2). On the CPU, and on the
//! device `UGATIT_TEST_DEVICE` names (the test command runs it on wgpu too).

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use ugatit_io::device::{run_autodiff_on, test_device, AutodiffWork};
use ugatit_io::DeviceChoice;
use ugatit_model::{ModelConfig, StateDict};
use ugatit_train::config::TrainConfig;
use ugatit_train::parallel::DataParallel;
use ugatit_train::schedule::lr_at;
use ugatit_train::step::{TrainState, LOSS_NAMES};

/// Largest relative difference allowed in any loss term between the two (2.5e-7 measured).
const LOSS_TOL: f64 = 1e-6;
/// Largest difference allowed between the two updates of all weights since the start, in L2
/// norm relative to the update's. Adam's first steps move a weight by about lr times the sign
/// of its gradient, so the few weights whose gradients are at rounding level (the two sum
/// their batch in a different order) move by lr either way: measured 4.4e-4 after one step and
/// 1.8e-3 after two, the largest single difference 1.9 lr.
const UPDATE_TOL: f64 = 1e-2;

fn state<B: AutodiffBackend>(device: &B::Device) -> (TrainState<B>, TrainConfig, ModelConfig) {
    let (model, loaded) = crate::common::parity_model::<B>(device);
    let cfg = TrainConfig {
        iterations: 4,
        batch_size: 2,
        augment: false,
        ..Default::default()
    };
    (TrainState::new(model, &cfg), cfg, loaded.config)
}

/// The difference of the updates `got - start` and `want - start` over every trained tensor,
/// in L2 norm relative to the norm of `want - start`, and the largest single difference.
fn update_difference(start: &StateDict, got: &StateDict, want: &StateDict) -> (f64, f64) {
    let (mut diff, mut norm, mut largest) = (0f64, 0f64, 0f64);
    for (key, w) in want {
        if key.ends_with("weight_u") || key.ends_with("weight_v") {
            continue;
        }
        let values = |sd: &StateDict| sd[key].to_vec::<f32>().unwrap();
        let (s, g, w) = (values(start), values(got), w.to_vec::<f32>().unwrap());
        for ((s, g), w) in s.iter().zip(&g).zip(&w) {
            let (dg, dw) = (f64::from(g - s), f64::from(w - s));
            diff += (dg - dw).powi(2);
            norm += dw.powi(2);
            largest = largest.max(f64::from((g - w).abs()));
        }
    }
    ((diff / norm).sqrt(), largest)
}

/// The largest difference of the spectral-norm vectors (which no optimiser touches).
fn vector_difference(got: &StateDict, want: &StateDict) -> f32 {
    want.iter()
        .filter(|(k, _)| k.ends_with("weight_u") || k.ends_with("weight_v"))
        .flat_map(|(k, w)| {
            let g = got[k].to_vec::<f32>().unwrap();
            let w = w.to_vec::<f32>().unwrap();
            g.iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .collect::<Vec<_>>()
        })
        .fold(0f32, f32::max)
}

#[test]
fn two_replicas_make_the_update_of_one_state_with_the_whole_batch() {
    run_autodiff_on(test_device(), TwoReplicas).unwrap_or_else(|e| panic!("{e}"));
}

struct TwoReplicas;

impl AutodiffWork for TwoReplicas {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: &B::Device, name: DeviceChoice) {
        two_replicas::<B>(device, name);
    }
}

fn two_replicas<B: AutodiffBackend>(device: &B::Device, name: DeviceChoice) {
    let (a1, b1) = (
        crate::common::parity_image::<B>("data/trainA/a.png", device),
        crate::common::parity_image::<B>("data/trainB/b.png", device),
    );
    // Two different images a domain: each replica sees one.
    let a = Tensor::cat(vec![a1.clone(), b1.clone().flip([3])], 0);
    let b = Tensor::cat(vec![b1, a1.flip([2])], 0);

    let (mut one, cfg, model_cfg) = state::<B>(device);
    let (main, _, _) = state::<B>(device);
    let mut two = DataParallel::new(main, &model_cfg, &[device.clone(), device.clone()]);
    assert!(DataParallel::<B>::check_batch(2, 3).is_err());
    let start = one.model().valid().to_state_dict();

    // One step on a GPU backend: lavapipe takes over a minute for one here, and a second checks
    // nothing of the device that the first does not.
    let steps = if name.is_gpu() { 1 } else { 2 };
    for step in 1..=steps {
        let lr = lr_at(step, &cfg);
        let want = one.step(a.clone(), b.clone(), lr);
        let got = two.step_on_device(a.clone(), b.clone(), lr).read();
        for name in LOSS_NAMES {
            let (g, w) = (f64::from(got.get(name)), f64::from(want.get(name)));
            let rel = ((g - w) / w).abs();
            println!("step {step} {name}: two replicas {g}, one state {w}, rel {rel:e}");
            assert!(rel <= LOSS_TOL, "step {step} {name}: {g} vs {w} ({rel:e})");
        }
        let (got_sd, want_sd) = (
            two.main.model().valid().to_state_dict(),
            one.model().valid().to_state_dict(),
        );
        let (rel, largest) = update_difference(&start, &got_sd, &want_sd);
        println!(
            "step {step}: updates differ by {rel:e} (L2, relative); largest weight difference \
             {largest:e} ({:.2} lr)",
            largest / lr
        );
        assert!(rel <= UPDATE_TOL, "step {step}: updates differ by {rel:e}");
        assert!(
            largest <= 2.5 * lr,
            "step {step}: a weight differs by {largest:e}"
        );
        let v = vector_difference(&got_sd, &want_sd);
        println!("step {step}: spectral-norm vectors within {v:e}");
        assert!(
            v <= 1e-6,
            "step {step}: spectral-norm vectors differ by {v:e}"
        );
    }
}
