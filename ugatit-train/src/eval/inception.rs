//! The Inception-v3 of the standard FID implementation, pytorch-fid's `InceptionV3([3])`: the
//! network TensorFlow's FID code used (`inception-2015-12-05`, ported to PyTorch by
//! pytorch-fid), up to the 2048-d global average pool ("pool3") that FID and KID compare.
//!
//! Its input, as pytorch-fid's: images in [0, 1] (`ToTensor()` of 8-bit RGB), resized to 299 x
//! 299 bilinearly (`F.interpolate`, `align_corners=False`, no antialiasing), then scaled to
//! [-1, 1]. The weights come from pytorch-fid's file ([`super::weights`]); the mixed blocks are
//! in [`super::inception_blocks`].

use std::path::Path;

use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::TensorData;
use image::RgbImage;

use super::features::Features;
use super::inception_blocks::{max_pool_reduce, BlockA, BlockB, BlockC, BlockD, BlockE, EPool};
use super::weights::{ConvBn, Weights};
use super::EvalError;

/// The length of a feature vector (pool3).
pub const FEATURE_DIM: usize = 2048;
/// The side the network's input is resized to.
pub const INPUT_SIZE: usize = 299;
/// The name of pytorch-fid's weights file.
pub const WEIGHTS_FILE: &str = "pt_inception-2015-12-05-6726825d.pth";
/// Where pytorch-fid publishes it.
pub const WEIGHTS_URL: &str = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";

/// pytorch-fid's FID Inception, to pool3.
#[derive(Debug)]
pub struct FidInception<B: Backend> {
    /// `Conv2d_1a_3x3`, `2a`, `2b` (then a max pool), `3b_1x1`, `4a_3x3` (then a max pool).
    stem: [ConvBn<B>; 5],
    mixed_5: [BlockA<B>; 3],
    mixed_6a: BlockB<B>,
    mixed_6: [BlockC<B>; 4],
    mixed_7a: BlockD<B>,
    mixed_7b: BlockE<B>,
    mixed_7c: BlockE<B>,
    device: B::Device,
}

impl<B: Backend> FidInception<B> {
    /// Loads pytorch-fid's weights file (`pt_inception-2015-12-05-6726825d.pth`). Keys it holds
    /// beyond pool3 (`fc`, `num_batches_tracked`) are not read.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self, EvalError> {
        let w = Weights::read(path)?;
        let conv =
            |name: &str, ch, kernel, stride, same| w.conv(name, ch, kernel, stride, same, device);
        let a = |name: &str, cin, pool| BlockA::load(&w, name, cin, pool, device);
        let c = |name: &str, c7| BlockC::load(&w, name, c7, device);
        Ok(Self {
            stem: [
                conv("Conv2d_1a_3x3", [3, 32], [3, 3], 2, false)?,
                conv("Conv2d_2a_3x3", [32, 32], [3, 3], 1, false)?,
                conv("Conv2d_2b_3x3", [32, 64], [3, 3], 1, true)?,
                conv("Conv2d_3b_1x1", [64, 80], [1, 1], 1, false)?,
                conv("Conv2d_4a_3x3", [80, 192], [3, 3], 1, false)?,
            ],
            mixed_5: [
                a("Mixed_5b", 192, 32)?,
                a("Mixed_5c", 256, 64)?,
                a("Mixed_5d", 288, 64)?,
            ],
            mixed_6a: BlockB::load(&w, "Mixed_6a", 288, device)?,
            mixed_6: [
                c("Mixed_6b", 128)?,
                c("Mixed_6c", 160)?,
                c("Mixed_6d", 160)?,
                c("Mixed_6e", 192)?,
            ],
            mixed_7a: BlockD::load(&w, "Mixed_7a", device)?,
            mixed_7b: BlockE::load(&w, "Mixed_7b", 1280, EPool::Average, device)?,
            mixed_7c: BlockE::load(&w, "Mixed_7c", 2048, EPool::Max, device)?,
            device: device.clone(),
        })
    }

    /// `[batch, 3, h, w]` in [0, 1] (any size) to the pool3 features `[batch, 2048]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = interpolate(
            x,
            [INPUT_SIZE, INPUT_SIZE],
            InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false),
        );
        let x = x.mul_scalar(2.0).sub_scalar(1.0);
        let [c1a, c2a, c2b, c3b, c4a] = &self.stem;
        let x = max_pool_reduce(c2b.forward(c2a.forward(c1a.forward(x))));
        let mut x = max_pool_reduce(c4a.forward(c3b.forward(x)));
        for block in &self.mixed_5 {
            x = block.forward(x);
        }
        x = self.mixed_6a.forward(x);
        for block in &self.mixed_6 {
            x = block.forward(x);
        }
        let x = self
            .mixed_7c
            .forward(self.mixed_7b.forward(self.mixed_7a.forward(x)));
        let [n, c, h, w] = x.dims();
        x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
    }

    /// The features of 8-bit RGB images, in order, `batch` at a time (consecutive images of one
    /// size share a forward pass).
    pub fn features(&self, images: &[RgbImage], batch: usize) -> Features {
        let mut out = Features::empty(FEATURE_DIM);
        let mut start = 0;
        while start < images.len() {
            let dims = images[start].dimensions();
            let mut end = start + 1;
            while end < images.len()
                && end - start < batch.max(1)
                && images[end].dimensions() == dims
            {
                end += 1;
            }
            let (w, h) = (dims.0 as usize, dims.1 as usize);
            let mut planar = Vec::with_capacity((end - start) * 3 * w * h);
            for image in &images[start..end] {
                push_unit_planar(image, &mut planar);
            }
            let x = Tensor::<B, 4>::from_data(
                TensorData::new(planar, [end - start, 3, h, w]),
                &self.device,
            );
            let rows = self.forward(x).into_data().convert::<f32>();
            out.extend(rows.as_slice::<f32>().unwrap_or_default());
            start = end;
        }
        out
    }
}

/// Interleaved 8-bit RGB as channel-first values in [0, 1], as torchvision's `ToTensor()`.
fn push_unit_planar(image: &RgbImage, out: &mut Vec<f32>) {
    let raw = image.as_raw();
    for c in 0..3 {
        out.extend(raw.iter().skip(c).step_by(3).map(|&v| f32::from(v) / 255.0));
    }
}
