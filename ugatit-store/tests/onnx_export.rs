//! ONNX exports: the official `onnx.checker` accepts them and onnxruntime computes what our
//! generator computes (within 1e-4), for batch 1 and 3, full and light, f32, both the PyTorch
//! and the TensorFlow variants; f16 close to f32.
//! Needs python3 with `onnx` and `onnxruntime` (scripts/test.sh installs them).

mod common;

use std::path::Path;

use burn::prelude::*;
use common::fixture;
use ugatit_model::{Cpu, Direction};
use ugatit_store::export::{export_generator, ExportFormat, StoreDtype};
use ugatit_store::load_generator;

/// Writes f32 values as raw little-endian bytes.
fn write_raw(path: &Path, t: Tensor<Cpu, 4>) {
    let v = t.into_data().into_vec::<f32>().unwrap();
    std::fs::write(
        path,
        v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();
}

const RUN: &str = r#"
import sys, numpy as np, onnx, onnxruntime as ort
path, inp, want, shape, tol = sys.argv[1], sys.argv[2], sys.argv[3], [int(v) for v in sys.argv[4].split(",")], float(sys.argv[5])
model = onnx.load(path)
onnx.checker.check_model(model, full_check=True)
assert model.opset_import[0].version >= 17
x = np.fromfile(inp, dtype="<f4").reshape(shape)
image, cam, heat = ort.InferenceSession(path).run(["image", "cam_logit", "heatmap"], {"input": x})
ours = np.fromfile(want, dtype="<f4").reshape(image.shape)
d = float(np.abs(image - ours).max())
print("max abs difference", d)
assert d <= tol, d
assert cam.shape == (shape[0], 2) and heat.shape == (shape[0], 1, shape[2] // 4, shape[3] // 4)
"#;

fn check(case: &str, side: usize, dtype: StoreDtype, tol: f32) {
    check_model(&fixture(case).join("official.pt"), case, side, dtype, tol);
}

fn check_model(model: &Path, case: &str, side: usize, dtype: StoreDtype, tol: f32) {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("g.onnx");
    export_generator(model, Direction::A2B, &onnx, ExportFormat::Onnx, dtype).unwrap();
    let g = load_generator::<Cpu>(model, Direction::A2B, &Default::default()).unwrap();
    for batch in [1, 3] {
        let x = Tensor::<Cpu, 4>::random(
            [batch, 3, side, side],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &Default::default(),
        );
        let (inp, want) = (dir.path().join("x.bin"), dir.path().join("y.bin"));
        write_raw(&inp, x.clone());
        write_raw(&want, g.generator.forward(x).image);
        let out = std::process::Command::new("python3")
            .args(["-c", RUN])
            .args([&onnx, &inp, &want])
            .arg(format!("{batch},3,{side},{side}"))
            .arg(tol.to_string())
            .output()
            .expect("python3 with onnx and onnxruntime (scripts/test.sh installs them)");
        assert!(
            out.status.success(),
            "{case} batch {batch}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
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
