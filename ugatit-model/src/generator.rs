//! The U-GAT-IT generator (official `ResnetGenerator`), full and light.

use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::cam::Cam;
use crate::config::ModelConfig;
use crate::layers::{Conv, Linear};
use crate::norm::{instance_norm, Iln};
use crate::params::{ParamSource, StateWriter};
use crate::resnet_ada_iln_block::ResnetAdaIlnBlock;
use crate::resnet_block::ResnetBlock;
use crate::KeyError;

/// What the generator returns: the translated image, the CAM logits and the attention heatmap.
#[derive(Debug, Clone)]
pub struct GeneratorOutput<B: Backend> {
    /// `[batch, 3, H, W]` in [-1, 1].
    pub image: Tensor<B, 4>,
    /// `[batch, 2]`: the auxiliary classifier's average-pool and max-pool logits.
    pub cam_logit: Tensor<B, 2>,
    /// `[batch, 1, H/4, W/4]`.
    pub heatmap: Tensor<B, 4>,
}

/// Encoder, CAM, gamma/beta MLP and AdaILN decoder. Field comments give the official keys.
#[derive(Module, Debug)]
pub struct Generator<B: Backend> {
    /// `DownBlock.1`: reflect pad 3, 7x7 conv 3 -> ch, IN, ReLU.
    pub conv_in: Conv<B>,
    /// `DownBlock.5`, `DownBlock.9`: reflect pad 1, 3x3 stride-2 convs doubling the channels.
    pub down: Vec<Conv<B>>,
    /// `DownBlock.{12 + i}`.
    pub encoder_blocks: Vec<ResnetBlock<B>>,
    /// `gap_fc`, `gmp_fc`, `conv1x1`.
    pub cam: Cam<B>,
    /// `FC.0`, `FC.2`: the MLP (ReLU after each).
    pub fc: Vec<Linear<B>>,
    /// `gamma`, `beta`.
    pub gamma: Linear<B>,
    pub beta: Linear<B>,
    /// `UpBlock1_{i + 1}`.
    pub decoder_blocks: Vec<ResnetAdaIlnBlock<B>>,
    /// `UpBlock2.2`, `UpBlock2.7`: after nearest x2 upsampling and reflect pad 1, 3x3 convs
    /// halving the channels.
    pub up: Vec<Conv<B>>,
    /// `UpBlock2.3`, `UpBlock2.8`.
    pub up_norm: Vec<Iln<B>>,
    /// `UpBlock2.11`: reflect pad 3, 7x7 conv to RGB, tanh.
    pub conv_out: Conv<B>,
    pub light: bool,
}

/// Official `nn.Sequential` indices of the layers with weights.
const DOWN_KEYS: [usize; 2] = [5, 9];
const FIRST_ENCODER_BLOCK: usize = 12;
const FC_KEYS: [usize; 2] = [0, 2];
const UP_KEYS: [(usize, usize); 2] = [(2, 3), (7, 8)];

impl<B: Backend> Generator<B> {
    /// Builds the generator of `cfg` from `src` (a state dict or a random initialiser).
    pub fn load(src: &ParamSource<B>, cfg: &ModelConfig) -> Result<Self, KeyError> {
        let ch = cfg.ch;
        let c = cfg.bottleneck_channels();
        let down_block = src.pp("DownBlock");
        let up_block = src.pp("UpBlock2");
        Ok(Self {
            conv_in: Conv::load(&down_block.pp(1), [ch, 3, 7], 1, false)?,
            down: DOWN_KEYS
                .iter()
                .enumerate()
                .map(|(i, k)| Conv::load(&down_block.pp(k), [ch << (i + 1), ch << i, 3], 2, false))
                .collect::<Result<_, _>>()?,
            encoder_blocks: (0..cfg.n_res)
                .map(|i| ResnetBlock::load(&down_block.pp(FIRST_ENCODER_BLOCK + i), c))
                .collect::<Result<_, _>>()?,
            cam: Cam::load(src, c)?,
            fc: FC_KEYS
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let inp = if i == 0 { cfg.mlp_input() } else { c };
                    Linear::load(&src.pp("FC").pp(k), c, inp)
                })
                .collect::<Result<_, _>>()?,
            gamma: Linear::load(&src.pp("gamma"), c, c)?,
            beta: Linear::load(&src.pp("beta"), c, c)?,
            decoder_blocks: (0..cfg.n_res)
                .map(|i| ResnetAdaIlnBlock::load(&src.pp(format!("UpBlock1_{}", i + 1)), c))
                .collect::<Result<_, _>>()?,
            up: UP_KEYS
                .iter()
                .enumerate()
                .map(|(i, (k, _))| Conv::load(&up_block.pp(k), [c >> (i + 1), c >> i, 3], 1, false))
                .collect::<Result<_, _>>()?,
            up_norm: UP_KEYS
                .iter()
                .enumerate()
                .map(|(i, (_, k))| Iln::load(&up_block.pp(k), c >> (i + 1)))
                .collect::<Result<_, _>>()?,
            conv_out: Conv::load(&up_block.pp(11), [3, ch, 7], 1, false)?,
            light: cfg.light,
        })
    }

    /// Writes every tensor under its official key.
    pub fn save(&self, w: &mut StateWriter) {
        let mut down_block = w.pp("DownBlock");
        self.conv_in.save(&mut down_block.pp(1));
        for (conv, k) in self.down.iter().zip(DOWN_KEYS) {
            conv.save(&mut down_block.pp(k));
        }
        for (i, block) in self.encoder_blocks.iter().enumerate() {
            block.save(&mut down_block.pp(FIRST_ENCODER_BLOCK + i));
        }
        self.cam.save(w);
        for (fc, k) in self.fc.iter().zip(FC_KEYS) {
            fc.save(&mut w.pp("FC").pp(k));
        }
        self.gamma.save(&mut w.pp("gamma"));
        self.beta.save(&mut w.pp("beta"));
        for (i, block) in self.decoder_blocks.iter().enumerate() {
            block.save(&mut w.pp(format!("UpBlock1_{}", i + 1)));
        }
        let mut up_block = w.pp("UpBlock2");
        for ((conv, norm), (kc, kn)) in self.up.iter().zip(&self.up_norm).zip(UP_KEYS) {
            conv.save(&mut up_block.pp(kc));
            norm.save(&mut up_block.pp(kn));
        }
        self.conv_out.save(&mut up_block.pp(11));
    }

    /// Translates `[batch, 3, H, W]` images in [-1, 1]. H and W must be multiples of 4; a full
    /// generator also needs exactly the `img_size` it was built for (its MLP sees every pixel).
    pub fn forward(&self, x: Tensor<B, 4>) -> GeneratorOutput<B> {
        let mut h = relu(instance_norm(self.conv_in.forward_reflect(x, 3)));
        for conv in &self.down {
            h = relu(instance_norm(conv.forward_reflect(h, 1)));
        }
        for block in &self.encoder_blocks {
            h = block.forward(h);
        }
        let cam = self.cam.forward(h);
        let [b, c, hh, ww] = cam.features.dims();
        // Full mode flattens the whole map channel-first (torch's `x.view(B, -1)`); light mode
        // averages it over space first.
        let mut z = if self.light {
            cam.features.clone().mean_dims(&[2, 3]).reshape([b, c])
        } else {
            cam.features.clone().reshape([b, c * hh * ww])
        };
        for fc in &self.fc {
            z = relu(fc.forward(z));
        }
        let gamma = self.gamma.forward(z.clone());
        let beta = self.beta.forward(z);
        let mut h = cam.features;
        for block in &self.decoder_blocks {
            h = block.forward(h, gamma.clone(), beta.clone());
        }
        for (conv, norm) in self.up.iter().zip(&self.up_norm) {
            h = norm.forward_relu(conv.forward_upsample_reflect(h));
        }
        let image = self.conv_out.forward_reflect(h, 3).tanh();
        GeneratorOutput {
            image,
            cam_logit: cam.cam_logit,
            heatmap: cam.heatmap,
        }
    }
}
