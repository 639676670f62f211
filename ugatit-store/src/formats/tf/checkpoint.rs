//! Finding and reading a TF U-GAT-IT checkpoint: `--model` may be its folder (the `checkpoint`
//! text file names the newest), its prefix (`.../UGATIT.model-1000000`) or its `.index` file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ugatit_model::tf::{scope, TfConfig};
use ugatit_model::{Direction, StateDict};

use super::bundle::Bundle;
use crate::error::WeightsError;

/// The checkpoint prefix `path` names, if it looks like a TF checkpoint at all.
pub fn locate(path: &Path) -> Option<Result<PathBuf, WeightsError>> {
    let name = path.file_name()?.to_string_lossy().to_string();
    if name.ends_with(".meta") {
        return Some(Err(WeightsError::Unsupported {
            path: path.to_path_buf(),
            reason: "a .meta file holds only the graph; pass the checkpoint folder or the prefix \
                     (.../UGATIT.model-N) beside it"
                .into(),
        }));
    }
    if let Some(prefix) = name.strip_suffix(".index") {
        return Some(Ok(path.with_file_name(prefix)));
    }
    if let Some(i) = name.find(".data-") {
        return Some(Ok(path.with_file_name(&name[..i])));
    }
    if Path::new(&format!("{}.index", path.display())).is_file() {
        return Some(Ok(path.to_path_buf()));
    }
    let list = path.join("checkpoint");
    if path.is_dir() && list.is_file() {
        return Some(from_checkpoint_file(path, &list));
    }
    None
}

/// The newest checkpoint named by a folder's `checkpoint` file. The official code writes paths
/// relative to the training's working folder (or absolute ones from another machine); when the
/// named path does not resolve, its file name inside this folder is used.
fn from_checkpoint_file(dir: &Path, list: &Path) -> Result<PathBuf, WeightsError> {
    let text = std::fs::read_to_string(list).map_err(|e| WeightsError::io(list, e))?;
    let named = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("model_checkpoint_path:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .ok_or_else(|| WeightsError::corrupt(list, "no model_checkpoint_path line"))?;
    let named = PathBuf::from(named);
    let candidates = [
        if named.is_absolute() {
            named.clone()
        } else {
            dir.join(&named)
        },
        dir.join(named.file_name().unwrap_or_default()),
    ];
    candidates
        .into_iter()
        .find(|p| Path::new(&format!("{}.index", p.display())).is_file())
        .ok_or_else(|| {
            WeightsError::corrupt(
                list,
                format!(
                    "names {}, but no {}.index is in the folder",
                    named.display(),
                    named.display()
                ),
            )
        })
}

/// What a TF generator's shapes say.
fn infer(sd: &StateDict) -> Result<TfConfig, String> {
    let dims = |k: &str| sd.get(k).map(|t| t.shape.to_vec());
    let ch = match dims("conv.conv2d.kernel").as_deref() {
        Some([ch, 3, 7, 7]) => *ch,
        Some(other) => return Err(format!("conv/conv2d/kernel has shape {other:?}")),
        None => return Err("conv/conv2d/kernel".into()),
    };
    let n_res = (0..)
        .take_while(|i| sd.contains_key(&format!("resblock_{i}.res1.conv_0.conv2d.kernel")))
        .count();
    let mlp_in = match dims("MLP.linear_0.dense.kernel").as_deref() {
        Some([i, _]) => *i,
        _ => return Err("MLP/linear_0/dense/kernel".into()),
    };
    let c = 4 * ch;
    let (light, img_size) = if mlp_in == c {
        (true, None)
    } else {
        let side = ((mlp_in / c) as f64).sqrt().round() as usize;
        if side * side * c != mlp_in {
            return Err(format!("MLP/linear_0/dense/kernel has {mlp_in} inputs"));
        }
        (false, Some(4 * side))
    };
    Ok(TfConfig {
        ch,
        n_res,
        light,
        img_size,
    })
}

/// Reads the generator for `direction` (and nothing else) from the checkpoint at `prefix`.
pub fn read_generator(
    prefix: &Path,
    direction: Direction,
) -> Result<(TfConfig, StateDict), WeightsError> {
    let index = PathBuf::from(format!("{}.index", prefix.display()));
    let bundle = Bundle::open(prefix).map_err(|e| WeightsError::corrupt(&index, e))?;
    if bundle.entries.keys().any(|k| k.contains(".ATTRIBUTES")) {
        return Err(WeightsError::Unsupported {
            path: index,
            reason: "a TF2 object-based checkpoint (tf.train.Checkpoint); U-GAT-IT's official code writes \
                     TF1 name-based ones (tf.train.Saver)"
                .into(),
        });
    }
    let scope = scope(direction);
    let root = format!("{scope}/");
    let mut sd = StateDict::new();
    for name in bundle.entries.keys() {
        let Some(rest) = name.strip_prefix(&root) else {
            continue;
        };
        if rest.ends_with("/Adam") || rest.ends_with("/Adam_1") {
            continue;
        }
        let (shape, values) = bundle
            .read_f32(name)
            .map_err(|e| WeightsError::corrupt(prefix, e))?;
        let data = burn::tensor::TensorData::new(values, shape.clone());
        let data = if rest.ends_with("conv2d/kernel") && shape.len() == 4 {
            hwio_to_oihw(data, &shape)
        } else {
            data
        };
        sd.insert(rest.replace('/', "."), data);
    }
    let cfg = infer(&sd).map_err(|what| {
        let scopes: BTreeSet<&str> = bundle
            .entries
            .keys()
            .filter_map(|k| k.split('/').next())
            .collect();
        WeightsError::not_ugatit(
            prefix,
            format!(
                "not a U-GAT-IT TF checkpoint: no usable {scope}/{what} (it holds scopes: {})",
                scopes.into_iter().take(8).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    Ok((cfg, sd))
}

/// TF's `[kh, kw, in, out]` convolution kernel as `[out, in, kh, kw]`.
fn hwio_to_oihw(data: burn::tensor::TensorData, shape: &[usize]) -> burn::tensor::TensorData {
    let [kh, kw, cin, cout] = [shape[0], shape[1], shape[2], shape[3]];
    let v = data.into_vec::<f32>().unwrap_or_default();
    let mut out = vec![0f32; v.len()];
    for y in 0..kh {
        for x in 0..kw {
            for i in 0..cin {
                for o in 0..cout {
                    out[((o * cin + i) * kh + y) * kw + x] = v[((y * kw + x) * cin + i) * cout + o];
                }
            }
        }
    }
    burn::tensor::TensorData::new(out, [cout, cin, kh, kw])
}
