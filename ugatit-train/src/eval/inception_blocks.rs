//! The mixed blocks of the FID Inception-v3, as pytorch-fid builds them: torchvision's
//! `InceptionB` and `InceptionD`, and pytorch-fid's `FIDInceptionA`, `FIDInceptionC`,
//! `FIDInceptionE_1` and `FIDInceptionE_2`, which reproduce TensorFlow's graph: their pooling
//! branch averages without counting the zero padding, and `Mixed_7c`'s max-pools instead.
//! Every branch's layers and the order of the concatenation are torchvision's.

use burn::prelude::*;
use burn::tensor::module::{avg_pool2d, max_pool2d};

use super::weights::{ConvBn, Weights};
use super::EvalError;

/// 3x3 average pool, stride 1, padding 1, padded zeros not counted (TensorFlow's `SAME`).
fn avg_pool_same<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    avg_pool2d(x, [3, 3], [1, 1], [1, 1], false, false)
}

/// 3x3 max pool, stride 2, no padding (the grid reductions and the stem).
pub(super) fn max_pool_reduce<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    max_pool2d(x, [3, 3], [2, 2], [0, 0], [1, 1], false)
}

/// Builds the `BasicConv2d` layers of one block, named `block.branch`.
struct Layers<'a, B: Backend> {
    weights: &'a Weights,
    block: &'a str,
    device: &'a B::Device,
}

impl<B: Backend> Layers<'_, B> {
    /// A stride-1 layer padded to keep the size.
    fn same(
        &self,
        branch: &str,
        ch: [usize; 2],
        kernel: [usize; 2],
    ) -> Result<ConvBn<B>, EvalError> {
        let name = format!("{}.{branch}", self.block);
        self.weights.conv(&name, ch, kernel, 1, true, self.device)
    }

    /// A 3x3, stride-2, unpadded layer (the grid reductions).
    fn reduce(&self, branch: &str, ch: [usize; 2]) -> Result<ConvBn<B>, EvalError> {
        let name = format!("{}.{branch}", self.block);
        self.weights.conv(&name, ch, [3, 3], 2, false, self.device)
    }
}

/// `Mixed_5b`, `5c`, `5d`: `FIDInceptionA(in, pool_features)`, `in` to `224 + pool_features`.
#[derive(Debug)]
pub(super) struct BlockA<B: Backend> {
    branch1x1: ConvBn<B>,
    branch5x5: [ConvBn<B>; 2],
    branch3x3dbl: [ConvBn<B>; 3],
    branch_pool: ConvBn<B>,
}

impl<B: Backend> BlockA<B> {
    pub(super) fn load(
        w: &Weights,
        block: &str,
        cin: usize,
        pool: usize,
        device: &B::Device,
    ) -> Result<Self, EvalError> {
        let l = Layers {
            weights: w,
            block,
            device,
        };
        Ok(Self {
            branch1x1: l.same("branch1x1", [cin, 64], [1, 1])?,
            branch5x5: [
                l.same("branch5x5_1", [cin, 48], [1, 1])?,
                l.same("branch5x5_2", [48, 64], [5, 5])?,
            ],
            branch3x3dbl: [
                l.same("branch3x3dbl_1", [cin, 64], [1, 1])?,
                l.same("branch3x3dbl_2", [64, 96], [3, 3])?,
                l.same("branch3x3dbl_3", [96, 96], [3, 3])?,
            ],
            branch_pool: l.same("branch_pool", [cin, pool], [1, 1])?,
        })
    }

    pub(super) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        Tensor::cat(
            vec![
                self.branch1x1.forward(x.clone()),
                chain(&self.branch5x5, x.clone()),
                chain(&self.branch3x3dbl, x.clone()),
                self.branch_pool.forward(avg_pool_same(x)),
            ],
            1,
        )
    }
}

/// `Mixed_6a`: torchvision's `InceptionB(288)`, 288 to 768 channels at half the size.
#[derive(Debug)]
pub(super) struct BlockB<B: Backend> {
    branch3x3: ConvBn<B>,
    branch3x3dbl: [ConvBn<B>; 3],
}

impl<B: Backend> BlockB<B> {
    pub(super) fn load(
        w: &Weights,
        block: &str,
        cin: usize,
        device: &B::Device,
    ) -> Result<Self, EvalError> {
        let l = Layers {
            weights: w,
            block,
            device,
        };
        Ok(Self {
            branch3x3: l.reduce("branch3x3", [cin, 384])?,
            branch3x3dbl: [
                l.same("branch3x3dbl_1", [cin, 64], [1, 1])?,
                l.same("branch3x3dbl_2", [64, 96], [3, 3])?,
                l.reduce("branch3x3dbl_3", [96, 96])?,
            ],
        })
    }

    pub(super) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        Tensor::cat(
            vec![
                self.branch3x3.forward(x.clone()),
                chain(&self.branch3x3dbl, x.clone()),
                max_pool_reduce(x),
            ],
            1,
        )
    }
}

/// `Mixed_6b` to `6e`: `FIDInceptionC(768, channels_7x7)`, 768 to 768 channels; the 7x7
/// convolutions factored into 1x7 and 7x1.
#[derive(Debug)]
pub(super) struct BlockC<B: Backend> {
    branch1x1: ConvBn<B>,
    branch7x7: [ConvBn<B>; 3],
    branch7x7dbl: [ConvBn<B>; 5],
    branch_pool: ConvBn<B>,
}

impl<B: Backend> BlockC<B> {
    pub(super) fn load(
        w: &Weights,
        block: &str,
        c7: usize,
        device: &B::Device,
    ) -> Result<Self, EvalError> {
        let l = Layers {
            weights: w,
            block,
            device,
        };
        let (row, col) = ([1, 7], [7, 1]);
        Ok(Self {
            branch1x1: l.same("branch1x1", [768, 192], [1, 1])?,
            branch7x7: [
                l.same("branch7x7_1", [768, c7], [1, 1])?,
                l.same("branch7x7_2", [c7, c7], row)?,
                l.same("branch7x7_3", [c7, 192], col)?,
            ],
            branch7x7dbl: [
                l.same("branch7x7dbl_1", [768, c7], [1, 1])?,
                l.same("branch7x7dbl_2", [c7, c7], col)?,
                l.same("branch7x7dbl_3", [c7, c7], row)?,
                l.same("branch7x7dbl_4", [c7, c7], col)?,
                l.same("branch7x7dbl_5", [c7, 192], row)?,
            ],
            branch_pool: l.same("branch_pool", [768, 192], [1, 1])?,
        })
    }

    pub(super) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        Tensor::cat(
            vec![
                self.branch1x1.forward(x.clone()),
                chain(&self.branch7x7, x.clone()),
                chain(&self.branch7x7dbl, x.clone()),
                self.branch_pool.forward(avg_pool_same(x)),
            ],
            1,
        )
    }
}

/// `Mixed_7a`: torchvision's `InceptionD(768)`, 768 to 1280 channels at half the size.
#[derive(Debug)]
pub(super) struct BlockD<B: Backend> {
    branch3x3: [ConvBn<B>; 2],
    branch7x7x3: [ConvBn<B>; 4],
}

impl<B: Backend> BlockD<B> {
    pub(super) fn load(w: &Weights, block: &str, device: &B::Device) -> Result<Self, EvalError> {
        let l = Layers {
            weights: w,
            block,
            device,
        };
        Ok(Self {
            branch3x3: [
                l.same("branch3x3_1", [768, 192], [1, 1])?,
                l.reduce("branch3x3_2", [192, 320])?,
            ],
            branch7x7x3: [
                l.same("branch7x7x3_1", [768, 192], [1, 1])?,
                l.same("branch7x7x3_2", [192, 192], [1, 7])?,
                l.same("branch7x7x3_3", [192, 192], [7, 1])?,
                l.reduce("branch7x7x3_4", [192, 192])?,
            ],
        })
    }

    pub(super) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        Tensor::cat(
            vec![
                chain(&self.branch3x3, x.clone()),
                chain(&self.branch7x7x3, x.clone()),
                max_pool_reduce(x),
            ],
            1,
        )
    }
}

/// How an E block pools in its last branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EPool {
    /// `FIDInceptionE_1` (`Mixed_7b`): average, padded zeros not counted.
    Average,
    /// `FIDInceptionE_2` (`Mixed_7c`): max, 3x3 stride 1 padding 1 (TensorFlow's graph has a
    /// max pool here, so pytorch-fid keeps it).
    Max,
}

/// `Mixed_7b` and `7c`: `FIDInceptionE_1(1280)` and `FIDInceptionE_2(2048)`, to 2048 channels;
/// the 3x3 branches split into parallel 1x3 and 3x1 convolutions.
#[derive(Debug)]
pub(super) struct BlockE<B: Backend> {
    branch1x1: ConvBn<B>,
    branch3x3_1: ConvBn<B>,
    branch3x3_2: [ConvBn<B>; 2],
    branch3x3dbl: [ConvBn<B>; 2],
    branch3x3dbl_3: [ConvBn<B>; 2],
    branch_pool: ConvBn<B>,
    pool: EPool,
}

impl<B: Backend> BlockE<B> {
    pub(super) fn load(
        w: &Weights,
        block: &str,
        cin: usize,
        pool: EPool,
        device: &B::Device,
    ) -> Result<Self, EvalError> {
        let l = Layers {
            weights: w,
            block,
            device,
        };
        let (row, col) = ([1, 3], [3, 1]);
        Ok(Self {
            branch1x1: l.same("branch1x1", [cin, 320], [1, 1])?,
            branch3x3_1: l.same("branch3x3_1", [cin, 384], [1, 1])?,
            branch3x3_2: [
                l.same("branch3x3_2a", [384, 384], row)?,
                l.same("branch3x3_2b", [384, 384], col)?,
            ],
            branch3x3dbl: [
                l.same("branch3x3dbl_1", [cin, 448], [1, 1])?,
                l.same("branch3x3dbl_2", [448, 384], [3, 3])?,
            ],
            branch3x3dbl_3: [
                l.same("branch3x3dbl_3a", [384, 384], row)?,
                l.same("branch3x3dbl_3b", [384, 384], col)?,
            ],
            branch_pool: l.same("branch_pool", [cin, 192], [1, 1])?,
            pool,
        })
    }

    pub(super) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let split = |pair: &[ConvBn<B>; 2], t: Tensor<B, 4>| {
            Tensor::cat(vec![pair[0].forward(t.clone()), pair[1].forward(t)], 1)
        };
        let b3 = self.branch3x3_1.forward(x.clone());
        let dbl = chain(&self.branch3x3dbl, x.clone());
        let pooled = match self.pool {
            EPool::Average => avg_pool_same(x.clone()),
            EPool::Max => max_pool2d(x.clone(), [3, 3], [1, 1], [1, 1], [1, 1], false),
        };
        Tensor::cat(
            vec![
                self.branch1x1.forward(x),
                split(&self.branch3x3_2, b3),
                split(&self.branch3x3dbl_3, dbl),
                self.branch_pool.forward(pooled),
            ],
            1,
        )
    }
}

/// Layers applied one after the other.
fn chain<B: Backend>(layers: &[ConvBn<B>], x: Tensor<B, 4>) -> Tensor<B, 4> {
    layers.iter().fold(x, |x, l| l.forward(x))
}
