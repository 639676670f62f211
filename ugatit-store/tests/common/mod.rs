//! Helpers shared by the integration tests: fixture paths and reading the reference's
//! `expect.safetensors`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use burn::prelude::*;
use ugatit_model::Cpu;

pub fn fixture(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(case)
}

/// Every tensor of a reference `expect.safetensors`, as (shape, values).
pub fn expectations(case: &str) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let buf = std::fs::read(fixture(case).join("expect.safetensors")).unwrap();
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

pub fn tensor<const D: usize>(e: &(Vec<usize>, Vec<f32>)) -> Tensor<Cpu, D> {
    Tensor::from_data(
        burn::tensor::TensorData::new(e.1.clone(), e.0.clone()),
        &Default::default(),
    )
}

/// Largest absolute difference; panics on a shape mismatch.
pub fn max_abs_diff<const D: usize>(got: Tensor<Cpu, D>, want: &(Vec<usize>, Vec<f32>)) -> f32 {
    assert_eq!(got.dims().to_vec(), want.0, "shape");
    let got = got.into_data().into_vec::<f32>().unwrap();
    got.iter()
        .zip(&want.1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

pub fn assert_close<const D: usize>(
    what: &str,
    got: Tensor<Cpu, D>,
    want: &(Vec<usize>, Vec<f32>),
    tol: f32,
) {
    let d = max_abs_diff(got, want);
    assert!(d <= tol, "{what}: max abs difference {d:e} exceeds {tol:e}");
}
