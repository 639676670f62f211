//! Parity with the PyTorch reference (`shared/reference/make_case.py`, see
//! tests/fixtures/README.md): official-format checkpoints loaded from `.pt`, every network's
//! outputs, and the spectral-norm vectors after training-mode forwards.

mod common;

use common::{assert_close, expectations, fixture, tensor};
use ugatit_model::{Cpu, Direction, Mode, ModelConfig};
use ugatit_store::load_model;
use ugatit_store::SourceFormat;

const OUTPUT_TOL: f32 = 1e-4;
const SN_VECTOR_TOL: f32 = 1e-6;

fn check_case(case: &str) {
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(case).join("case.json")).unwrap())
            .unwrap();
    let device = Default::default();
    let (model, loaded) = load_model::<Cpu>(&fixture(case).join("official.pt"), &device).unwrap();
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

    let ex = expectations(case);
    for (tag, dir, input) in [
        ("a2b", Direction::A2B, "A"),
        ("b2a", Direction::B2A, "B"),
        ("batch.a2b", Direction::A2B, "batch.A"),
        ("batch.b2a", Direction::B2A, "batch.B"),
    ] {
        let out = model.generator(dir).forward(tensor(&ex[input]));
        assert_close(
            &format!("{case} {tag}.image"),
            out.image,
            &ex[&format!("{tag}.image")],
            OUTPUT_TOL,
        );
        assert_close(
            &format!("{case} {tag}.cam_logit"),
            out.cam_logit,
            &ex[&format!("{tag}.cam_logit")],
            OUTPUT_TOL,
        );
        assert_close(
            &format!("{case} {tag}.heatmap"),
            out.heatmap,
            &ex[&format!("{tag}.heatmap")],
            OUTPUT_TOL,
        );
    }

    for (name, dis, input) in [
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
            let out = dis.forward(tensor(&ex[input]), mode);
            let key = |k: &str| format!("{name}.{tag}.{k}");
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
        if let Some(rest) = k.strip_prefix("dis").and_then(|_| k.split_once(".after.")) {
            let (net, key) = rest;
            let got = &sd[&format!("{net}.{key}")];
            let got = tensor::<1>(&(got.shape.to_vec(), got.to_vec::<f32>().unwrap()));
            assert_close(k, got, want, SN_VECTOR_TOL);
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

#[test]
fn full_model_matches_reference() {
    check_case("full_96_ch4_r2");
}

#[test]
fn light_model_with_other_discriminator_depths_matches_reference() {
    check_case("light_128_ch8_r3");
}
