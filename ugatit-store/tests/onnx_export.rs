//! ONNX exports: the official `onnx.checker` accepts them and onnxruntime computes what our
//! generator computes, image, CAM logits and heatmap alike (within 1e-4 of the output's scale),
//! for batch 1 and 3, full and light, f32, both the PyTorch and the TensorFlow variants; f16
//! close to f32; the PyTorch reference's own outputs (the fixtures' `expect.safetensors`); and a
//! model whose weights were moved to external data computes exactly what the inline one does.
//! Needs python3 with `onnx` and `onnxruntime` (scripts/test.sh installs them).

mod common;

use std::path::Path;

use burn::prelude::*;
use common::{expectations, fixture};
use prost::Message;
use ugatit_model::{AnyGenerator, Cpu, Direction};
use ugatit_store::export::onnx_file::{self, INLINE_LIMIT};
use ugatit_store::export::{export_generator, onnx, ExportFormat, StoreDtype};
use ugatit_store::load_generator;
use ugatit_store::proto::onnx::{DataLocation, ModelProto};

/// A shape and its float32 values.
type Array = (Vec<usize>, Vec<f32>);

fn array<const D: usize>(t: Tensor<Cpu, D>) -> Array {
    (t.dims().to_vec(), t.into_data().into_vec::<f32>().unwrap())
}

/// Runs each model in onnxruntime (after `onnx.checker`) on `input` and compares `image`,
/// `cam_logit` and `heatmap` with `want`: shapes exactly, values within `tol` times the largest
/// wanted magnitude (at least 1). Several models must also agree with each other exactly.
const RUN: &str = r#"
import json, sys, numpy as np, onnx, onnxruntime as ort
spec = json.loads(sys.argv[1])
def load(a):
    return np.fromfile(a["path"], dtype="<f4").reshape(a["shape"])
x = load(spec["input"])
first = None
for path in spec["models"]:
    onnx.checker.check_model(path, full_check=True)
    assert onnx.load(path, load_external_data=False).opset_import[0].version >= 17
    names = ["image", "cam_logit", "heatmap"]
    got = dict(zip(names, ort.InferenceSession(path).run(names, {"input": x})))
    for name in names:
        want = load(spec["want"][name])
        assert got[name].shape == want.shape, (path, name, got[name].shape, want.shape)
        d = float(np.abs(got[name] - want).max()) / max(1.0, float(np.abs(want).max()))
        print(path, name, "max difference relative to the scale", d)
        assert d <= spec["tol"], (path, name, d)
    if first is None:
        first = got
    for name in names:
        assert np.array_equal(got[name], first[name]), (path, name, "differs from", spec["models"][0])
"#;

fn run_onnx(what: &str, models: &[&Path], input: &Array, want: [&Array; 3], tol: f32) {
    let dir = tempfile::tempdir().unwrap();
    let save = |name: &str, (shape, values): &Array| {
        let path = dir.path().join(format!("{name}.bin"));
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&path, bytes).unwrap();
        serde_json::json!({ "path": path, "shape": shape })
    };
    let spec = serde_json::json!({
        "models": models,
        "input": save("input", input),
        "want": {
            "image": save("image", want[0]),
            "cam_logit": save("cam_logit", want[1]),
            "heatmap": save("heatmap", want[2]),
        },
        "tol": tol,
    });
    let out = std::process::Command::new("python3")
        .args(["-c", RUN, &spec.to_string()])
        .output()
        .expect("python3 with onnx and onnxruntime (scripts/test.sh installs them)");
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check(case: &str, side: usize, dtype: StoreDtype, tol: f32) {
    check_model(&fixture(case).join("official.pt"), case, side, dtype, tol);
}

/// Exports `model`'s A->B generator and compares onnxruntime with our forward on random inputs.
fn check_model(model: &Path, case: &str, side: usize, dtype: StoreDtype, tol: f32) {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("g.onnx");
    let done = export_generator(model, Direction::A2B, &onnx, ExportFormat::Onnx, dtype).unwrap();
    assert_eq!(done.external_data, None);
    assert_eq!(done.bytes, std::fs::metadata(&onnx).unwrap().len());
    let g = load_generator::<Cpu>(model, Direction::A2B, &Default::default()).unwrap();
    for batch in [1, 3] {
        let x = Tensor::<Cpu, 4>::random(
            [batch, 3, side, side],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &Default::default(),
        );
        let out = g.generator.forward(x.clone());
        let want = [
            &array(out.image),
            &array(out.cam_logit),
            &array(out.heatmap),
        ];
        let what = format!("{case} batch {batch}");
        run_onnx(&what, &[&onnx], &array(x), want, tol);
    }
}

#[test]
fn full_model_runs_in_onnxruntime_as_in_burn() {
    check("full_96_ch4_r2", 96, StoreDtype::F32, 1e-4);
}

#[test]
fn light_model_runs_at_another_size() {
    // A light official .pt does not fix img_size (256 assumed); the graph takes any size.
    check("light_128_ch8_r3", 64, StoreDtype::F32, 1e-4);
}

#[test]
fn f16_weights_stay_close() {
    check("full_96_ch4_r2", 96, StoreDtype::F16, 2e-2);
}

#[test]
fn tensorflow_variant_generators_export_too() {
    for case in ["full_64_ch8", "light_64_ch8"] {
        let model = fixture("tf").join(case).join("checkpoint");
        check_model(&model, case, 64, StoreDtype::F32, 1e-4);
    }
}

#[test]
fn onnxruntime_matches_the_pytorch_reference() {
    for case in ["full_96_ch4_r2", "light_128_ch8_r3"] {
        let dir = tempfile::tempdir().unwrap();
        let onnx = dir.path().join("g.onnx");
        let model = fixture(case).join("official.pt");
        export_generator(
            &model,
            Direction::A2B,
            &onnx,
            ExportFormat::Onnx,
            StoreDtype::F32,
        )
        .unwrap();
        let ex = expectations(case);
        let want = ["image", "cam_logit", "heatmap"].map(|k| &ex[&format!("batch.a2b.{k}")]);
        run_onnx(case, &[&onnx], &ex["batch.A"], want, 1e-4);
    }
}

#[test]
fn weights_past_the_size_limit_go_to_external_data() {
    let case = "full_96_ch4_r2";
    let loaded = load_generator::<Cpu>(
        &fixture(case).join("official.pt"),
        Direction::A2B,
        &Default::default(),
    )
    .unwrap();
    let AnyGenerator::Pytorch(g) = &loaded.generator else {
        panic!("{case} is a PyTorch model")
    };
    let dir = tempfile::tempdir().unwrap();
    let (inline, split) = (
        dir.path().join("inline.onnx"),
        dir.path().join("split.onnx"),
    );
    let model = onnx::model(g, &loaded.config, StoreDtype::F32);
    let whole = onnx_file::write(&inline, model.clone(), INLINE_LIMIT).unwrap();
    assert_eq!(whole.external_data, None);
    // A limit below the model's size forces what a full model at img_size >= ~364 needs.
    let written = onnx_file::write(&split, model, 1 << 16).unwrap();
    let data = dir.path().join("split.onnx.data");
    assert_eq!(written.external_data.as_deref(), Some(data.as_path()));

    let file = std::fs::read(&split).unwrap();
    let data_len = std::fs::metadata(&data).unwrap().len();
    assert_eq!(written.bytes, file.len() as u64 + data_len);
    assert!(file.len() < 1 << 16, "{} bytes left inline", file.len());
    let read = ModelProto::decode(file.as_slice()).unwrap();
    let moved = read.graph.unwrap().initializer;
    let moved: Vec<_> = moved
        .iter()
        .filter(|t| t.data_location == DataLocation::External as i32)
        .collect();
    assert!(moved.iter().any(|t| t.name == "FC.0.weight"));
    for t in moved {
        let offset = t.external_data.iter().find(|e| e.key == "offset").unwrap();
        assert_eq!(offset.value.parse::<u64>().unwrap() % 4096, 0, "{}", t.name);
    }

    let x = Tensor::<Cpu, 4>::random(
        [2, 3, 96, 96],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &Default::default(),
    );
    let out = g.forward(x.clone());
    let want = [
        &array(out.image),
        &array(out.cam_logit),
        &array(out.heatmap),
    ];
    run_onnx(case, &[&inline, &split], &array(x), want, 1e-4);
}
