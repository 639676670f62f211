//! Helpers shared by the integration tests: fixture paths and the references' golden values
//! (`expect.rs`, read on the CPU here).

#![allow(dead_code)]

pub mod expect;

use std::collections::HashMap;
use std::path::PathBuf;

use burn::prelude::*;
// Each test binary uses part of the kit.
#[allow(unused_imports)]
pub use expect::assert_close;
use ugatit_model::Cpu;

pub fn fixture(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(case)
}

/// Every tensor of a fixture case's `expect.safetensors`, as (shape, values).
pub fn expectations(case: &str) -> HashMap<String, expect::Expected> {
    expect::read_expectations(&fixture(case))
}

pub fn tensor<const D: usize>(e: &expect::Expected) -> Tensor<Cpu, D> {
    expect::tensor_on(e, &Default::default())
}
