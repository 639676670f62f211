//! Official UGATIT-pytorch checkpoints: a `torch.save` of `{'genA2B', 'genB2A', 'disGA',
//! 'disGB', 'disLA', 'disLB'}` state dicts (what its `save()` writes), or one generator's bare
//! state dict. Read without Python by burn-store's pickle reader; spectral-norm
//! `weight_orig`, `weight_u` and `weight_v` are all imported.

use std::path::Path;

use burn_store::pytorch::PytorchReader;

use super::infer::infer_any;
use ugatit_model::StateDict;

use super::{Contents, LoadedTensors, SourceFormat};
use crate::error::WeightsError;

/// Reads an official `.pt` file and infers its architecture from the shapes.
pub fn read(path: &Path) -> Result<LoadedTensors, WeightsError> {
    let reader = PytorchReader::new(path)
        .map_err(|e| WeightsError::corrupt(path, format!("cannot read this PyTorch file ({e})")))?;
    let mut sd = StateDict::new();
    for (key, snapshot) in reader.into_tensors() {
        let data = snapshot.to_data().map_err(|e| {
            WeightsError::corrupt(path, format!("cannot read tensor {key} ({e:?})"))
        })?;
        sd.insert(key, data.convert::<f32>());
    }
    let inferred = infer_any(&sd).map_err(|reason| {
        let found: Vec<&String> = sd.keys().take(4).collect();
        WeightsError::not_ugatit(
            path,
            format!(
                "{reason}; the file holds {} tensor(s){}",
                sd.len(),
                if found.is_empty() {
                    String::new()
                } else {
                    format!(
                        " such as {}",
                        found
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        )
    })?;
    let (is_model, inferred) = inferred;
    Ok(LoadedTensors {
        path: path.to_path_buf(),
        format: SourceFormat::OfficialPytorch,
        format_version: None,
        contents: if is_model {
            Contents::Model(sd)
        } else {
            Contents::Generator(sd)
        },
        config: inferred.config,
        img_size_known: inferred.img_size_known,
        direction: None,
        step: None,
        skipped: Vec::new(),
        variant: Default::default(),
    })
}
