//! The references' golden values (`expect.safetensors` of a fixture case: float32 tensors by
//! name), read as tensors of any backend, and the comparison every golden test makes. Shared by
//! the test kits of this crate and of ugatit-train (which includes this file by path), so both
//! read and compare the fixtures one way.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;

/// A reference tensor: shape and values.
pub type Expected = (Vec<usize>, Vec<f32>);

/// Every tensor of the `expect.safetensors` in `case_dir`.
pub fn read_expectations(case_dir: &Path) -> HashMap<String, Expected> {
    let path = case_dir.join("expect.safetensors");
    let buf = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&buf).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            let vals = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (k, (v.shape().to_vec(), vals))
        })
        .collect()
}

pub fn tensor_on<B: Backend, const D: usize>(e: &Expected, device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(
        burn::tensor::TensorData::new(e.1.clone(), e.0.clone()),
        device,
    )
}

/// Largest absolute difference (NaN counts as infinite); panics on a shape mismatch.
pub fn max_abs_diff<B: Backend, const D: usize>(got: Tensor<B, D>, want: &Expected) -> f32 {
    assert_eq!(got.dims().to_vec(), want.0, "shape");
    let got = got.into_data().convert::<f32>().into_vec::<f32>().unwrap();
    got.iter()
        .zip(&want.1)
        .map(|(a, b)| {
            let d = (a - b).abs();
            if d.is_nan() {
                f32::INFINITY
            } else {
                d
            }
        })
        .fold(0.0, f32::max)
}

/// Panics naming `what` unless `got` is within `tol` of `want` everywhere.
pub fn assert_close<B: Backend, const D: usize>(
    what: &str,
    got: Tensor<B, D>,
    want: &Expected,
    tol: f32,
) {
    let d = max_abs_diff(got, want);
    println!("{what}: max abs difference {d:e}");
    assert!(d <= tol, "{what}: max abs difference {d:e} exceeds {tol:e}");
}
