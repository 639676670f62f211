//! The PyTorch and TensorFlow references' golden values (ugatit-store/tests/fixtures), read as
//! tensors of any backend with the storage crate's test kit (`expect.rs`), and compared as there.

use std::collections::HashMap;
use std::path::PathBuf;

#[path = "../../../ugatit-store/tests/common/expect.rs"]
mod expect;

// Each test binary uses part of the kit.
#[allow(unused_imports)]
pub use expect::{assert_close, tensor_on as tensor, Expected};

/// A golden case's folder (`full_96_ch4_r2`, `tf/light_64_ch8`), found as [`super::parity_case`]
/// finds its own, so a test binary carried to a GPU machine reads that checkout's fixtures.
pub fn case(name: &str) -> PathBuf {
    super::parity_case().join("..").join(name)
}

/// Every tensor of a case's `expect.safetensors`.
pub fn expectations(name: &str) -> HashMap<String, Expected> {
    expect::read_expectations(&case(name))
}
