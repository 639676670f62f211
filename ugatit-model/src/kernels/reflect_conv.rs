//! Reflection-padded square convolution, fused: `conv2d(ReflectionPad2d(pad)(x), weight, bias,
//! stride)` as every padded convolution of the official generator and discriminator computes
//! it, without building the padded copy.
//!
//! Forward: per sample, tiles of output rows are unfolded (im2col) straight from the unpadded
//! input, each padded position reading its mirror pixel, and multiplied by the `[out, in * k *
//! k]` weight with `gemm`. Backward: the weight gradient is `dY x im2col(X)^T` summed over
//! tiles and samples, the input gradient `W^T x dY` folded back (col2im) through the same
//! reflection, so a padded position adds into the pixel it mirrors (the gradient of
//! `ReflectionPad2d`), and the bias gradient is the sum of `dY`.

use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, TensorData, TensorMetadata};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::NodeId;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::matmul::{matmul, MatMut, MatRef};
use super::winograd;

/// Stride and reflection padding (on all four sides) of a square convolution, and the factor
/// of a nearest-neighbour upsampling of the input before both (1: none; 2: the official
/// `nn.Upsample(scale_factor=2)` of the up-sampling blocks, 3x3 stride-1 pad-1 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReflectConvOptions {
    pub stride: usize,
    pub pad: usize,
    pub upsample: usize,
}

/// Sizes of one reflect-padded convolution of `[batch, c_in, h, w]` by `[c_out, c_in, k, k]`;
/// with `up > 1` the stored input is `[batch, c_in, h / up, w / up]`, read upsampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub up: usize,
    pub c_out: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeometry {
    /// # Panics
    /// As `nn.ReflectionPad2d` and `conv2d` refuse them: a padding not smaller than the input, a
    /// kernel larger than the padded input, a zero stride or mismatched channels.
    pub fn new(x: [usize; 4], weight: [usize; 4], opts: ReflectConvOptions) -> Self {
        let [batch, c_in, h, w] = x;
        let up = opts.upsample;
        assert!(up > 0, "reflect_conv: zero upsampling factor");
        let (h, w) = (h * up, w * up);
        let [c_out, c_in_w, k, k2] = weight;
        assert!(k == k2, "reflect_conv: square kernels only, got {k}x{k2}");
        assert!(
            c_in == c_in_w,
            "reflect_conv: input has {c_in} channels, weight {c_in_w}"
        );
        assert!(opts.stride > 0, "reflect_conv: zero stride");
        assert!(
            opts.pad < h && opts.pad < w,
            "reflect_conv: padding {} needs an input larger than {h}x{w}",
            opts.pad
        );
        assert!(
            k <= h + 2 * opts.pad && k <= w + 2 * opts.pad,
            "reflect_conv: kernel {k} larger than the padded {h}x{w} input"
        );
        assert!(
            up == 1 || (k == 3 && opts.stride == 1 && opts.pad == 1),
            "reflect_conv: upsampling is fused only into 3x3 stride-1 pad-1 convolutions"
        );
        Self {
            batch,
            c_in,
            h,
            w,
            up,
            c_out,
            k,
            stride: opts.stride,
            pad: opts.pad,
        }
    }

    /// Pixels of one stored input plane (`h / up` by `w / up`).
    pub fn in_plane(&self) -> usize {
        (self.h / self.up) * (self.w / self.up)
    }

    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }

    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }

    /// Rows of the unfolded input: `c_in * k * k`, the weight's row length.
    fn col_rows(&self) -> usize {
        self.c_in * self.k * self.k
    }
}

/// Output rows unfolded at once: about 4 MB of im2col, enough for gemm to run at full speed
/// while the unfolded tile stays in cache.
const TILE_ELEMS: usize = 1 << 20;

/// `nn.ReflectionPad2d`'s source of padded coordinate `i` (from `-pad`): mirrored about the
/// edge pixel, which is not repeated.
pub(super) fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let r = if i < 0 {
        -i
    } else if i >= n {
        2 * (n - 1) - i
    } else {
        i
    };
    r as usize
}

/// What a padded position reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Padding {
    /// Its mirror pixel (`nn.ReflectionPad2d`): the convolutions of the networks.
    Reflect,
    /// Zero: only the input gradient's full correlation ([`input_grad_by_correlation`]).
    Zero,
}

/// Where each kernel offset reads along one axis: `src[kk * out + o]` is the input coordinate
/// of output `o` at kernel offset `kk` (`None`: a zero), and `inner[kk]` the range of outputs
/// that read the input unpadded, at `o * stride + kk - pad`.
struct AxisMap {
    src: Vec<Option<usize>>,
    inner: Vec<(usize, usize)>,
}

impl AxisMap {
    fn new(n: usize, out: usize, k: usize, stride: usize, pad: usize, mode: Padding) -> Self {
        let mut src = Vec::with_capacity(k * out);
        let mut inner = Vec::with_capacity(k);
        for kk in 0..k {
            let at = |o: usize| (o * stride + kk) as isize - pad as isize;
            src.extend((0..out).map(|o| match mode {
                Padding::Reflect => Some(reflect(at(o), n)),
                Padding::Zero => usize::try_from(at(o)).ok().filter(|&i| i < n),
            }));
            let inside = |o: &usize| (0..n as isize).contains(&at(*o));
            let lo = (0..out).find(inside).unwrap_or(out);
            let hi = (lo..out).rfind(inside).map_or(lo, |o| o + 1);
            inner.push((lo, hi));
        }
        Self { src, inner }
    }
}

impl AxisMap {
    /// The input coordinate of the first unmirrored output `lo` (0 when there is none).
    fn start(&self, kk: usize, lo: usize, hi: usize, g: &ConvGeometry) -> usize {
        if lo < hi {
            lo * g.stride + kk - g.pad
        } else {
            0
        }
    }
}

/// The padding of one convolution, row and column maps.
struct Plan {
    g: ConvGeometry,
    rows: AxisMap,
    cols: AxisMap,
    tile_rows: usize,
}

impl Plan {
    fn new(g: ConvGeometry, mode: Padding) -> Self {
        let (out_h, out_w) = (g.out_h(), g.out_w());
        Self {
            rows: AxisMap::new(g.h, out_h, g.k, g.stride, g.pad, mode),
            cols: AxisMap::new(g.w, out_w, g.k, g.stride, g.pad, mode),
            tile_rows: (TILE_ELEMS / (g.col_rows() * out_w).max(1)).clamp(1, out_h),
            g,
        }
    }

    /// Output-row tiles `[r0, r1)`.
    fn tiles(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let out_h = self.g.out_h();
        (0..out_h)
            .step_by(self.tile_rows)
            .map(move |r0| (r0, (r0 + self.tile_rows).min(out_h)))
    }

    /// Unfolds output rows `[r0, r1)` of sample `x` (`[c_in, h, w]`) into `col`
    /// (`[c_in * k * k, (r1 - r0) * out_w]`), each padded position read from its mirror (or
    /// zero).
    fn im2col(&self, x: &[f32], (r0, r1): (usize, usize), col: &mut [f32]) {
        let g = &self.g;
        let (out_h, out_w, k) = (g.out_h(), g.out_w(), g.k);
        let n = (r1 - r0) * out_w;
        col.par_chunks_mut(k * k * n)
            .zip(x.par_chunks(g.h * g.w))
            .for_each(|(col_c, plane)| {
                for kh in 0..k {
                    for kw in 0..k {
                        let map = &self.cols.src[kw * out_w..][..out_w];
                        let (lo, hi) = self.cols.inner[kw];
                        let start = self.cols.start(kw, lo, hi, g);
                        let dst = &mut col_c[(kh * k + kw) * n..][..n];
                        for (d, oh) in dst.chunks_exact_mut(out_w).zip(r0..r1) {
                            let Some(row) = self.rows.src[kh * out_h + oh] else {
                                d.fill(0.0);
                                continue;
                            };
                            let src = &plane[row * g.w..][..g.w];
                            for o in (0..lo).chain(hi..out_w) {
                                d[o] = map[o].map_or(0.0, |i| src[i]);
                            }
                            let d = &mut d[lo..hi];
                            if g.stride == 1 {
                                d.copy_from_slice(&src[start..start + d.len()]);
                            } else {
                                for (v, s) in
                                    d.iter_mut().zip(src[start..].iter().step_by(g.stride))
                                {
                                    *v = *s;
                                }
                            }
                        }
                    }
                }
            });
    }

    /// The adjoint of [`Plan::im2col`]: adds `col` into `dx` (`[c_in, h, w]`), each padded
    /// position into the pixel it mirrors.
    fn col2im(&self, col: &[f32], (r0, r1): (usize, usize), dx: &mut [f32]) {
        let g = &self.g;
        let (out_h, out_w, k) = (g.out_h(), g.out_w(), g.k);
        let n = (r1 - r0) * out_w;
        dx.par_chunks_mut(g.h * g.w)
            .zip(col.par_chunks(k * k * n))
            .for_each(|(plane, col_c)| {
                for kh in 0..k {
                    for kw in 0..k {
                        let map = &self.cols.src[kw * out_w..][..out_w];
                        let (lo, hi) = self.cols.inner[kw];
                        let start = self.cols.start(kw, lo, hi, g);
                        let src = &col_c[(kh * k + kw) * n..][..n];
                        for (s, oh) in src.chunks_exact(out_w).zip(r0..r1) {
                            let Some(row) = self.rows.src[kh * out_h + oh] else {
                                continue;
                            };
                            let d = &mut plane[row * g.w..][..g.w];
                            for o in (0..lo).chain(hi..out_w) {
                                if let Some(i) = map[o] {
                                    d[i] += s[o];
                                }
                            }
                            let s = &s[lo..hi];
                            if g.stride == 1 {
                                for (v, s) in d[start..start + s.len()].iter_mut().zip(s) {
                                    *v += *s;
                                }
                            } else {
                                for (v, s) in d[start..].iter_mut().step_by(g.stride).zip(s) {
                                    *v += *s;
                                }
                            }
                        }
                    }
                }
            });
    }
}

/// The forward pass on f32 slices in PyTorch layouts: `x` `[batch, c_in, h, w]`, `weight`
/// `[c_out, c_in, k, k]`, `bias` `[c_out]`; returns `[batch, c_out, out_h, out_w]`.
/// The 3x3 stride-1 convolutions go to [`winograd`](super::winograd).
pub fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: ConvGeometry) -> Vec<f32> {
    if winograd::applies(&g) {
        return winograd::forward(x, weight, bias, g);
    }
    forward_planned(&Plan::new(g, Padding::Reflect), x, weight, bias)
}

fn forward_planned(plan: &Plan, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let g = plan.g;
    let (kdim, out_hw, out_w) = (g.col_rows(), g.out_h() * g.out_w(), g.out_w());
    let mut y = vec![0.0; g.batch * g.c_out * out_hw];
    let mut col = vec![0.0; kdim * plan.tile_rows * out_w];
    let w = MatRef {
        data: weight,
        rows: g.c_out,
        cols: kdim,
        rs: kdim,
        cs: 1,
    };
    for (xb, yb) in x
        .chunks_exact(g.c_in * g.h * g.w)
        .zip(y.chunks_exact_mut(g.c_out * out_hw))
    {
        for tile in plan.tiles() {
            let n = (tile.1 - tile.0) * out_w;
            let col = &mut col[..kdim * n];
            plan.im2col(xb, tile, col);
            let dst = MatMut {
                data: &mut yb[tile.0 * out_w..],
                rows: g.c_out,
                cols: n,
                rs: out_hw,
                cs: 1,
            };
            let rhs = MatRef {
                data: col,
                rows: kdim,
                cols: n,
                rs: n,
                cs: 1,
            };
            matmul(dst, w, rhs, false);
        }
    }
    if let Some(bias) = bias {
        y.par_chunks_mut(out_hw)
            .enumerate()
            .for_each(|(i, plane)| plane.iter_mut().for_each(|v| *v += bias[i % g.c_out]));
    }
    y
}

/// The input and weight gradients (each only when asked for) from the output gradient `dy`.
/// `x` is needed only for the weight gradient, `weight` only for the input gradient. The 3x3
/// stride-1 convolutions go to [`winograd`](super::winograd).
pub fn backward(
    x: Option<&[f32]>,
    weight: Option<&[f32]>,
    dy: &[f32],
    g: ConvGeometry,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    if winograd::applies(&g) {
        return winograd::backward(x, weight, dy, g);
    }
    let plan = Plan::new(g, Padding::Reflect);
    let (kdim, out_hw, out_w) = (g.col_rows(), g.out_h() * g.out_w(), g.out_w());
    let in_len = g.c_in * g.h * g.w;
    let tile_len = kdim * plan.tile_rows * out_w;
    let by_correlation = g.stride == 1 && g.c_out < g.c_in;
    let mut dx = weight.map(|w| {
        if by_correlation {
            input_grad_by_correlation(w, dy, g)
        } else {
            vec![0.0; g.batch * in_len]
        }
    });
    let weight = weight.filter(|_| !by_correlation);
    let mut dw = x.map(|_| vec![0.0; g.c_out * kdim]);
    let mut col = vec![0.0; tile_len];
    for (b, dyb) in dy.chunks_exact(g.c_out * out_hw).enumerate() {
        for tile in plan.tiles() {
            let n = (tile.1 - tile.0) * out_w;
            let col = &mut col[..kdim * n];
            let dy_tile = MatRef {
                data: &dyb[tile.0 * out_w..],
                rows: g.c_out,
                cols: n,
                rs: out_hw,
                cs: 1,
            };
            if let (Some(x), Some(dw)) = (x, dw.as_mut()) {
                plan.im2col(&x[b * in_len..][..in_len], tile, col);
                let dst = MatMut {
                    data: dw,
                    rows: g.c_out,
                    cols: kdim,
                    rs: kdim,
                    cs: 1,
                };
                let col_t = MatRef {
                    data: col,
                    rows: n,
                    cols: kdim,
                    rs: 1,
                    cs: n,
                };
                matmul(dst, dy_tile, col_t, true);
            }
            if let (Some(weight), Some(dx)) = (weight, dx.as_mut()) {
                let w_t = MatRef {
                    data: weight,
                    rows: kdim,
                    cols: g.c_out,
                    rs: 1,
                    cs: kdim,
                };
                let dst = MatMut {
                    data: col,
                    rows: kdim,
                    cols: n,
                    rs: n,
                    cs: 1,
                };
                matmul(dst, w_t, dy_tile, false);
                plan.col2im(col, tile, &mut dx[b * in_len..][..in_len]);
            }
        }
    }
    (dx, dw)
}

/// The input gradient of a stride-1 convolution as a convolution of `dy`: `dy` zero-padded by
/// `k - 1` and correlated with the flipped, transposed weight is the gradient of the padded
/// input, whose border is then folded onto the pixels it mirrors. Cheaper than col2im when
/// `c_out < c_in`: the unfolded `dy` has `c_out * k * k` rows, col2im's `c_in * k * k`.
fn input_grad_by_correlation(weight: &[f32], dy: &[f32], g: ConvGeometry) -> Vec<f32> {
    let (k, p) = (g.k, g.pad);
    let mut flipped = vec![0.0; weight.len()];
    for (i, v) in flipped.iter_mut().enumerate() {
        let (b, a, o, c) = (
            i % k,
            i / k % k,
            i / (k * k) % g.c_out,
            i / (k * k * g.c_out),
        );
        *v = weight[((o * g.c_in + c) * k + (k - 1 - a)) * k + (k - 1 - b)];
    }
    let full = ConvGeometry {
        batch: g.batch,
        c_in: g.c_out,
        h: g.out_h(),
        w: g.out_w(),
        up: 1,
        c_out: g.c_in,
        k,
        stride: 1,
        pad: k - 1,
    };
    let padded = forward_planned(&Plan::new(full, Padding::Zero), dy, &flipped, None);
    let (hp, wp) = (g.h + 2 * p, g.w + 2 * p);
    let rows: Vec<usize> = (0..hp)
        .map(|i| reflect(i as isize - p as isize, g.h))
        .collect();
    let cols: Vec<usize> = (0..wp)
        .map(|j| reflect(j as isize - p as isize, g.w))
        .collect();
    let mut dx = vec![0.0; g.batch * g.c_in * g.h * g.w];
    dx.par_chunks_mut(g.h * g.w)
        .zip(padded.par_chunks(hp * wp))
        .for_each(|(plane, src)| {
            for (s, &r) in src.chunks_exact(wp).zip(&rows) {
                let d = &mut plane[r * g.w..][..g.w];
                for (v, &c) in s.iter().zip(&cols) {
                    d[c] += v;
                }
            }
        });
    dx
}

/// The bias gradient: `dy` (`[batch, c_out, ...]`) summed over samples and pixels.
pub fn bias_grad(dy: &[f32], batch: usize, c_out: usize) -> Vec<f32> {
    let plane = dy.len() / (batch * c_out).max(1);
    (0..c_out)
        .into_par_iter()
        .map(|o| {
            (0..batch)
                .map(|b| dy[(b * c_out + o) * plane..][..plane].iter().sum::<f32>())
                .sum()
        })
        .collect()
}

/// The f32 contents of a Flex tensor in row-major order (a copy only if it is a strided view).
fn contiguous(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

fn flex(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

fn geometry(x: &FlexTensor, weight: &FlexTensor, opts: ReflectConvOptions) -> ConvGeometry {
    assert!(
        x.dtype() == DType::F32 && weight.dtype() == DType::F32,
        "reflect_conv: the fused kernel computes in f32"
    );
    ConvGeometry::new(dims4(x), dims4(weight), opts)
}

pub(super) fn flex_reflect_conv(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    opts: ReflectConvOptions,
) -> FlexTensor {
    let g = geometry(&x, &weight, opts);
    let (x, weight) = (contiguous(&x), contiguous(&weight));
    let bias = bias.map(|b| contiguous(&b));
    let y = forward(
        x.storage(),
        weight.storage(),
        bias.as_ref().map(|b| b.storage()),
        g,
    );
    flex(y, [g.batch, g.c_out, g.out_h(), g.out_w()])
}

/// What the backward pass keeps: the unpadded input only if the weight needs its gradient, the
/// weight only if the input does (never the padded input, which is never built).
#[derive(Debug, Clone)]
struct SavedConv {
    x: Option<FlexTensor>,
    weight: Option<FlexTensor>,
    g: ConvGeometry,
}

impl SavedConv {
    /// Registers the input and weight gradients of `dy` for the parents that want them.
    fn backward(
        self,
        [node_x, node_w]: [Option<NodeId>; 2],
        dy: &FlexTensor,
        grads: &mut Gradients,
    ) {
        let x = self.x.as_ref().map(contiguous);
        let weight = self.weight.as_ref().map(contiguous);
        let (dx, dw) = backward(
            x.as_ref().filter(|_| node_w.is_some()).map(|t| t.storage()),
            weight
                .as_ref()
                .filter(|_| node_x.is_some())
                .map(|t| t.storage()),
            dy.storage(),
            self.g,
        );
        let g = self.g;
        if let (Some(node), Some(dx)) = (node_x, dx) {
            let stored = [g.batch, g.c_in, g.h / g.up, g.w / g.up];
            grads.register::<Flex>(node, flex(dx, stored));
        }
        if let (Some(node), Some(dw)) = (node_w, dw) {
            grads.register::<Flex>(node, flex(dw, [g.c_out, g.c_in, g.k, g.k]));
        }
    }
}

#[derive(Debug)]
struct ReflectConvNoBias;

#[derive(Debug)]
struct ReflectConvWithBias;

impl Backward<Flex, 2> for ReflectConvNoBias {
    type State = SavedConv;

    fn backward(self, ops: Ops<SavedConv, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let ids = ops.parents.map(|node| node.map(|n| n.id));
        ops.state.backward(ids, &dy, grads);
    }
}

impl Backward<Flex, 3> for ReflectConvWithBias {
    type State = SavedConv;

    fn backward(self, ops: Ops<SavedConv, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let [node_x, node_w, node_b] = ops.parents;
        let g = ops.state.g;
        ops.state
            .backward([node_x.map(|n| n.id), node_w.map(|n| n.id)], &dy, grads);
        if let Some(node) = node_b {
            let db = bias_grad(dy.storage(), g.batch, g.c_out);
            grads.register::<Flex>(node.id, flex(db, [g.c_out]));
        }
    }
}

pub(super) fn autodiff_reflect_conv(
    x: FloatTensor<Autodiff<Flex>>,
    weight: FloatTensor<Autodiff<Flex>>,
    bias: Option<FloatTensor<Autodiff<Flex>>>,
    opts: ReflectConvOptions,
) -> FloatTensor<Autodiff<Flex>> {
    let g = geometry(&x.primitive, &weight.primitive, opts);
    let wants = |t: &FloatTensor<Autodiff<Flex>>| t.node.clone_if_require_grad().is_some();
    let saved = SavedConv {
        x: wants(&weight).then(|| x.primitive.clone()),
        weight: wants(&x).then(|| weight.primitive.clone()),
        g,
    };
    let run = |b: Option<FlexTensor>| {
        flex_reflect_conv(x.primitive.clone(), weight.primitive.clone(), b, opts)
    };
    match bias {
        None => match ReflectConvNoBias
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(saved, run(None)),
            OpsKind::UnTracked(prep) => prep.finish(run(None)),
        },
        Some(bias) => match ReflectConvWithBias
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone(), bias.node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(saved, run(Some(bias.primitive))),
            OpsKind::UnTracked(prep) => prep.finish(run(Some(bias.primitive))),
        },
    }
}
