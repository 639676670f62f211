//! pytorch-fid's FID Inception with the weights of fixtures/eval/make_inception_reference.py's
//! formula, made again here bit for bit from `inception_keys.json` (each tensor's key, type,
//! shape, offset and scale) and written as a `torch.save` file.

use std::path::Path;

use serde_json::Value;

use super::torch_file::{self, Values};

/// Element `i` of tensor `t`: the formula of make_inception_reference.py's docstring.
fn value(t: u64, i: u64, offset: f32, scale: f32) -> f32 {
    let mut x = i
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((t + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    let u = (x >> 40) as f32 / (1u32 << 24) as f32;
    offset + (u - 0.5) * scale
}

/// Writes the weights file `keys` (inception_keys.json) describes to `path`.
pub fn write(keys: &Value, path: &Path) {
    let tensors: Vec<_> = keys["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(t, entry)| {
            let key = entry[0].as_str().unwrap().to_string();
            let shape: Vec<usize> = entry[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let n = shape.iter().product::<usize>() as u64;
            let values = match entry[1].as_str().unwrap() {
                "int64" => Values::I64(vec![0; n as usize]),
                "float32" => {
                    let offset = entry[3].as_f64().unwrap() as f32;
                    let scale = entry[4].as_f64().unwrap() as f32;
                    Values::F32((0..n).map(|i| value(t as u64, i, offset, scale)).collect())
                }
                other => panic!("{key}: type {other}"),
            };
            (key, shape, values)
        })
        .collect();
    torch_file::write(path, &tensors).unwrap();
}
