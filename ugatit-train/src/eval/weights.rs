//! pytorch-fid's Inception weights file (`pt_inception-2015-12-05-6726825d.pth`, a `torch.save`
//! of the state dict of its `fid_inception_v3()`), read with burn-store's pickle reader, and its
//! `BasicConv2d` layers (convolution without bias, BatchNorm with eps 0.001, ReLU) built from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::TensorData;
use burn_store::pytorch::PytorchReader;

use super::inception::WEIGHTS_URL;
use super::EvalError;

/// torchvision's `BasicConv2d` BatchNorm epsilon (TensorFlow's Inception value).
const BN_EPS: f64 = 0.001;

/// The tensors of a weights file, by state-dict key.
pub(super) struct Weights {
    path: PathBuf,
    tensors: HashMap<String, TensorData>,
}

impl Weights {
    pub(super) fn read(path: &Path) -> Result<Self, EvalError> {
        let bad = |message: String| EvalError::Weights {
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(bad(format!(
                "no such file: download pytorch-fid's Inception weights from {WEIGHTS_URL}"
            )));
        }
        let reader = PytorchReader::new(path)
            .map_err(|e| bad(format!("cannot read this PyTorch file ({e})")))?;
        let mut tensors = HashMap::new();
        for (key, snapshot) in reader.into_tensors() {
            let data = snapshot
                .to_data()
                .map_err(|e| bad(format!("cannot read tensor {key} ({e:?})")))?;
            tensors.insert(key, data);
        }
        let weights = Self {
            path: path.to_path_buf(),
            tensors,
        };
        // torchvision's ImageNet Inception has the same layer names but other weights and 1000
        // classes; FID and KID are only comparable with the FID network's 1008-class weights.
        if let Some(fc) = weights.tensors.get("fc.weight") {
            if fc.shape.first() == Some(&1000) {
                return Err(weights.error("fc.weight", "has 1000 classes: this is torchvision's ImageNet Inception, not pytorch-fid's FID Inception (1008 classes)".into()));
            }
        }
        Ok(weights)
    }

    fn error(&self, key: &str, problem: String) -> EvalError {
        EvalError::Weights {
            path: self.path.clone(),
            message: format!("{key} {problem}"),
        }
    }

    /// Tensor `key` as f64 values, checked against `shape`.
    fn values(&self, key: &str, shape: &[usize]) -> Result<Vec<f64>, EvalError> {
        let data = self.tensors.get(key).ok_or_else(|| {
            self.error(
                key,
                "is missing: not pytorch-fid's FID Inception weights".into(),
            )
        })?;
        if data.shape.as_slice() != shape {
            return Err(self.error(
                key,
                format!("has shape {:?}, expected {shape:?}", data.shape),
            ));
        }
        let values = data
            .clone()
            .convert::<f64>()
            .into_vec::<f64>()
            .map_err(|e| self.error(key, format!("cannot be read ({e:?})")))?;
        Ok(values)
    }

    /// torchvision's `BasicConv2d` `name` (`name.conv`, `name.bn`): `in_ch` to `out_ch`
    /// channels with a `kernel` (height, width) and `stride`; `same` pads by half the kernel
    /// (torchvision's `padding=1`, `(0, 3)`...), otherwise no padding.
    pub(super) fn conv<B: Backend>(
        &self,
        name: &str,
        [in_ch, out_ch]: [usize; 2],
        [kh, kw]: [usize; 2],
        stride: usize,
        same: bool,
        device: &B::Device,
    ) -> Result<ConvBn<B>, EvalError> {
        let w = self.values(&format!("{name}.conv.weight"), &[out_ch, in_ch, kh, kw])?;
        let bn = |p: &str| self.values(&format!("{name}.bn.{p}"), &[out_ch]);
        let (gamma, beta, mean, var) = (
            bn("weight")?,
            bn("bias")?,
            bn("running_mean")?,
            bn("running_var")?,
        );
        // Inference BatchNorm is an affine map per output channel: folded into the
        // convolution (in f64) as scale and bias.
        let per_out = in_ch * kh * kw;
        let mut weight = Vec::with_capacity(w.len());
        let mut bias = Vec::with_capacity(out_ch);
        for o in 0..out_ch {
            let scale = gamma[o] / (var[o] + BN_EPS).sqrt();
            weight.extend(
                w[o * per_out..(o + 1) * per_out]
                    .iter()
                    .map(|v| (v * scale) as f32),
            );
            bias.push((beta[o] - mean[o] * scale) as f32);
        }
        let padding = if same { [kh / 2, kw / 2] } else { [0, 0] };
        Ok(ConvBn {
            weight: Tensor::from_data(TensorData::new(weight, [out_ch, in_ch, kh, kw]), device),
            bias: Tensor::from_data(TensorData::new(bias, [out_ch]), device),
            options: ConvOptions::new([stride, stride], padding, [1, 1], 1),
        })
    }
}

/// A `BasicConv2d` with its BatchNorm folded in.
#[derive(Debug)]
pub(super) struct ConvBn<B: Backend> {
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    options: ConvOptions<2>,
}

impl<B: Backend> ConvBn<B> {
    /// `[batch, in, h, w]` to `[batch, out, h', w']`: convolution, BatchNorm, ReLU.
    pub(super) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        burn::tensor::activation::relu(conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            self.options.clone(),
        ))
    }
}
