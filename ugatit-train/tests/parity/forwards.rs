//! The networks against the references, on the device `UGATIT_TEST_DEVICE` names (the CPU by
//! default; the test command runs this binary again with `UGATIT_KERNELS=off`, so Flex runs
//! burn's composed ops, and in the wgpu build on Mesa's software Vulkan device, and
//! `scripts/gpu-check.sh` on CUDA): official-format checkpoints loaded from `.pt`, every
//! generator output in both directions and for a batch, the discriminators in eval mode and
//! over two training-mode forwards with their spectral-norm vectors after them (PyTorch
//! reference, `shared/reference/make_case.py`), and the TensorFlow generators (the official TF
//! code). Fixtures and the commands that made them: ugatit-store/tests/fixtures/README.md.

use std::collections::HashMap;

use crate::common::reference::{assert_close, case, expectations, tensor, Expected};
use burn::prelude::*;
use ugatit_io::device::{run_on, test_device, DeviceWork};
use ugatit_model::{Direction, GeneratorOutput, Mode, ModelConfig, Variant};
use ugatit_store::{load_generator, load_model, SourceFormat};

/// The same on every backend (measured on wgpu/lavapipe: see the README's backends table).
const OUTPUT_TOL: f32 = 1e-4;
const SN_VECTOR_TOL: f32 = 1e-6;

/// A golden case, run on the test device's backend.
enum Golden {
    Pytorch(&'static str),
    Tf,
}

impl DeviceWork for Golden {
    type Output = ();
    fn run<B: Backend>(self, device: &B::Device) {
        match self {
            Golden::Pytorch(name) => pytorch_case::<B>(name, device),
            Golden::Tf => tf_cases::<B>(device),
        }
    }
}

fn pytorch_case<B: Backend>(name: &str, device: &B::Device) {
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(case(name).join("case.json")).unwrap())
            .unwrap();
    let (model, loaded) = load_model::<B>(&case(name).join("official.pt"), device).unwrap();
    assert_eq!(loaded.format, SourceFormat::OfficialPytorch);
    let want = ModelConfig {
        img_size: info["size"].as_u64().unwrap() as usize,
        ch: info["ch"].as_u64().unwrap() as usize,
        n_res: info["n_res"].as_u64().unwrap() as usize,
        light: info["light"].as_bool().unwrap(),
        n_dis_global: info["n_dis_global"].as_u64().unwrap() as usize,
        n_dis_local: info["n_dis_local"].as_u64().unwrap() as usize,
    };
    // A light generator's shapes do not fix img_size; the rest is inferred exactly.
    assert_eq!(
        ModelConfig {
            img_size: want.img_size,
            ..loaded.config.clone()
        },
        want
    );
    assert_eq!(loaded.img_size_known, !want.light);

    let ex = expectations(name);
    let input = |key: &str| tensor::<B, 4>(&ex[key], device);
    for (tag, dir, key) in [
        ("a2b", Direction::A2B, "A"),
        ("b2a", Direction::B2A, "B"),
        ("batch.a2b", Direction::A2B, "batch.A"),
        ("batch.b2a", Direction::B2A, "batch.B"),
    ] {
        let out = model.generator(dir).forward(input(key));
        assert_generator_output(name, tag, out, &ex);
    }

    for (net, dis, key) in [
        ("disGA", &model.dis_ga, "A"),
        ("disLA", &model.dis_la, "A"),
        ("disGB", &model.dis_gb, "B"),
        ("disLB", &model.dis_lb, "B"),
    ] {
        for (tag, mode) in [
            ("eval", Mode::Eval),
            ("train1", Mode::Train),
            ("train2", Mode::Train),
        ] {
            let out = dis.forward(input(key), mode);
            let key = |k: &str| format!("{net}.{tag}.{k}");
            assert_close(&key("logit"), out.logit, &ex[&key("logit")], OUTPUT_TOL);
            assert_close(
                &key("cam_logit"),
                out.cam_logit,
                &ex[&key("cam_logit")],
                OUTPUT_TOL,
            );
            assert_close(
                &key("heatmap"),
                out.heatmap,
                &ex[&key("heatmap")],
                OUTPUT_TOL,
            );
        }
    }
    // The vectors after two power iterations, read back through the state dict.
    let sd = model.to_state_dict();
    let mut checked = 0;
    for (k, want) in &ex {
        if let Some((net, key)) = k.strip_prefix("dis").and_then(|_| k.split_once(".after.")) {
            let got = &sd[&format!("{net}.{key}")];
            let got = (got.shape.to_vec(), got.to_vec::<f32>().unwrap());
            assert_close(k, tensor::<B, 1>(&got, device), want, SN_VECTOR_TOL);
            checked += 1;
        }
    }
    let n_sn = 2 * (want.n_dis_global + want.n_dis_local + 4);
    assert_eq!(
        checked,
        2 * n_sn,
        "every u and v of the four discriminators"
    );
}

/// The official TF generators, from the checkpoint folder, a prefix and an `.index` file.
fn tf_cases<B: Backend>(device: &B::Device) {
    for (name, path) in [
        ("full_64_ch8", "checkpoint"),
        ("light_64_ch8", "checkpoint/UGATIT.model-1000"),
        ("light_64_ch8", "checkpoint/UGATIT.model-1000.index"),
    ] {
        let ex = expectations(&format!("tf/{name}"));
        let model = case("tf").join(name).join(path);
        for (dir, tag) in [(Direction::A2B, "a2b"), (Direction::B2A, "b2a")] {
            let g = load_generator::<B>(&model, dir, device).unwrap();
            assert_eq!(g.generator.variant(), Variant::Tf);
            let out = g.generator.forward(tensor(&ex["input"], device));
            assert_generator_output(&format!("tf {name}"), tag, out, &ex);
        }
    }
}

/// The image, CAM logits and heatmap of `case`'s `tag` (`a2b`, `batch.b2a`) output.
fn assert_generator_output<B: Backend>(
    case: &str,
    tag: &str,
    out: GeneratorOutput<B>,
    ex: &HashMap<String, Expected>,
) {
    let key = |k: &str| format!("{tag}.{k}");
    let what = |k: &str| format!("{case} {tag}.{k}");
    assert_close(&what("image"), out.image, &ex[&key("image")], OUTPUT_TOL);
    assert_close(
        &what("cam_logit"),
        out.cam_logit,
        &ex[&key("cam_logit")],
        OUTPUT_TOL,
    );
    assert_close(
        &what("heatmap"),
        out.heatmap,
        &ex[&key("heatmap")],
        OUTPUT_TOL,
    );
}

fn on_test_device(golden: Golden) {
    run_on(test_device(), golden).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn full_model_matches_reference() {
    on_test_device(Golden::Pytorch("full_96_ch4_r2"));
}

#[test]
fn light_model_with_other_discriminator_depths_matches_reference() {
    on_test_device(Golden::Pytorch("light_128_ch8_r3"));
}

#[test]
fn tf_generators_match_the_official_tf_outputs() {
    on_test_device(Golden::Tf);
}
