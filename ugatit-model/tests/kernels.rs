//! Golden tests of our CPU kernels against burn's composed ops on the same backend, with random
//! data: forward outputs and every gradient, for each shape family of the official networks.

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Distribution;
use ugatit_model::kernels::Fast;
use ugatit_model::layers::{conv, reflect_conv, reflect_pad, upsample_reflect_conv};
use ugatit_model::norm::{
    instance_layer_mix, instance_layer_mix_composed, instance_norm, instance_norm_composed,
    norm_affine,
};
use ugatit_model::Cpu;

type Ad = Autodiff<Cpu>;

/// One reflect-padded convolution: input `[batch, c_in, h, w]`, `c_out` filters `k x k`.
#[derive(Debug, Clone, Copy)]
struct Case {
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    bias: bool,
}

const fn case(
    [batch, c_in, h, w]: [usize; 4],
    [c_out, k, stride, pad]: [usize; 4],
    bias: bool,
) -> Case {
    Case {
        batch,
        c_in,
        h,
        w,
        c_out,
        k,
        stride,
        pad,
        bias,
    }
}

/// Scaled-down versions of every padded convolution of the generator and discriminators, with
/// odd sizes, batch 2, fewer than 4 channels and several im2col tiles; stride-1 cases with fewer
/// outputs than inputs take the input gradient by correlation, the others by col2im; 3x3
/// stride-1 pad-1 cases run Winograd F(2x2, 3x3).
const CASES: [Case; 16] = [
    // Generator DownBlock.1: reflect pad 3, 7x7, 3 -> ch.
    case([1, 3, 21, 19], [8, 7, 1, 3], false),
    // UpBlock2.11: reflect pad 3, 7x7, ch -> 3; batch 2.
    case([2, 8, 17, 16], [3, 7, 1, 3], false),
    // DownBlock.5/9: 3x3 stride 2, odd input.
    case([2, 4, 15, 13], [8, 3, 2, 1], false),
    // Residual blocks and upsampling: 3x3 stride 1.
    case([2, 16, 12, 12], [16, 3, 1, 1], false),
    // Discriminator model.1: 4x4 stride 2 with bias, odd input, 3 channels in.
    case([2, 3, 17, 16], [8, 4, 2, 1], true),
    // The last model layer: 4x4 stride 1 with bias.
    case([1, 8, 7, 7], [16, 4, 1, 1], true),
    // The final conv to one channel, no bias; tiny odd map.
    case([2, 16, 6, 5], [1, 4, 1, 1], false),
    // Several im2col tiles, stride 1 and stride 2.
    case([2, 64, 40, 40], [8, 7, 1, 3], false),
    case([1, 128, 66, 65], [4, 4, 2, 1], true),
    // Channels below 4 on both sides.
    case([1, 2, 5, 6], [3, 3, 1, 1], true),
    // Maps so small that some kernel offsets read only mirrored pixels.
    case([2, 2, 2, 2], [3, 4, 1, 1], true),
    case([1, 3, 2, 3], [2, 3, 2, 1], false),
    case([2, 4, 2, 3], [2, 3, 1, 1], true),
    // Winograd F(2x2, 3x3): odd height and width (a dropped tile row and column), several
    // blocks of tiles a sample, more outputs than inputs and fewer.
    case([2, 5, 9, 7], [6, 3, 1, 1], true),
    case([2, 256, 34, 33], [64, 3, 1, 1], false),
    case([1, 96, 23, 30], [160, 3, 1, 1], true),
];

fn data<const D: usize>(t: Tensor<Cpu, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().expect("f32 tensor")
}

/// `max |a - b| / max |b|` (over at least 1).
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
    let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    err / scale
}

fn check(name: &str, what: &str, c: &Case, fast: Vec<f32>, reference: Vec<f32>) {
    let e = rel_err(&fast, &reference);
    assert!(e < 1e-5, "{name} {what} {c:?}: relative error {e}");
}

struct Inputs<B: Backend> {
    x: Tensor<B, 4>,
    w: Tensor<B, 4>,
    b: Option<Tensor<B, 1>>,
    /// Weights of the scalar loss `sum(y * r)`, so every output gets its own gradient.
    r: Tensor<B, 4>,
}

fn inputs(c: &Case, device: &burn::backend::flex::FlexDevice) -> Inputs<Cpu> {
    let u = Distribution::Uniform(-1.0, 1.0);
    let out_h = (c.h + 2 * c.pad - c.k) / c.stride + 1;
    let out_w = (c.w + 2 * c.pad - c.k) / c.stride + 1;
    Inputs {
        x: Tensor::random([c.batch, c.c_in, c.h, c.w], u, device),
        w: Tensor::random([c.c_out, c.c_in, c.k, c.k], u, device),
        b: c.bias.then(|| Tensor::random([c.c_out], u, device)),
        r: Tensor::random([c.batch, c.c_out, out_h, out_w], u, device),
    }
}

fn composed<B: Backend>(i: &Inputs<B>, c: &Case) -> Tensor<B, 4> {
    conv(
        reflect_pad(i.x.clone(), c.pad),
        i.w.clone(),
        i.b.clone(),
        c.stride,
    )
}

fn fused<B: Backend>(i: &Inputs<B>, c: &Case) -> Tensor<B, 4> {
    reflect_conv(i.x.clone(), i.w.clone(), i.b.clone(), c.stride, c.pad)
}

/// The tests below compare the fused kernel only if these backends dispatch to it.
#[test]
fn cpu_backends_run_our_kernels() {
    assert_eq!(Fast::of::<Cpu>(), Some(Fast::Flex));
    assert_eq!(Fast::of::<Ad>(), Some(Fast::AutodiffFlex));
}

#[test]
fn reflect_conv_forward_matches_pad_then_conv() {
    let device = Default::default();
    for c in &CASES {
        let i = inputs(c, &device);
        check("forward", "y", c, data(fused(&i, c)), data(composed(&i, c)));
    }
}

/// Output and the gradients of `sum(y * r)` for the parameters marked in `grad` (x, w, b).
fn with_grads(
    i: &Inputs<Cpu>,
    c: &Case,
    grad: [bool; 3],
    f: fn(&Inputs<Ad>, &Case) -> Tensor<Ad, 4>,
) -> WithGrads {
    let track = |t: Tensor<Cpu, 4>, g: bool| {
        let t = Tensor::<Ad, 4>::from_inner(t);
        if g {
            t.require_grad()
        } else {
            t
        }
    };
    let ad = Inputs {
        x: track(i.x.clone(), grad[0]),
        w: track(i.w.clone(), grad[1]),
        b: i.b.clone().map(|b| {
            let b = Tensor::<Ad, 1>::from_inner(b);
            if grad[2] {
                b.require_grad()
            } else {
                b
            }
        }),
        r: Tensor::from_inner(i.r.clone()),
    };
    let y = f(&ad, c);
    let grads = (y.clone() * ad.r.clone()).sum().backward();
    let gx = ad.x.grad(&grads).map(data);
    let gw = ad.w.grad(&grads).map(data);
    let gb = ad.b.as_ref().and_then(|b| b.grad(&grads)).map(data);
    (data(y.inner()), [gx, gw, gb])
}

type WithGrads = (Vec<f32>, [Option<Vec<f32>>; 3]);

/// The output and the x, w and b gradients of both paths agree (b's only where there is a bias).
fn check_all(name: &str, c: &Case, (y_fast, g_fast): WithGrads, (y_ref, g_ref): WithGrads) {
    check(name, "y", c, y_fast, y_ref);
    for ((what, f), r) in ["dx", "dw", "db"].iter().zip(g_fast).zip(g_ref) {
        match (f, r) {
            (Some(f), Some(r)) => check(name, what, c, f, r),
            (None, None) => assert!(!c.bias && *what == "db"),
            _ => panic!("{what} {c:?}: a gradient on one path only"),
        }
    }
}

#[test]
fn reflect_conv_gradients_match_pad_then_conv() {
    let device = Default::default();
    let all = [true, true, true];
    for c in &CASES {
        let i = inputs(c, &device);
        let (y_fast, g_fast) = with_grads(&i, c, all, fused::<Ad>);
        let (y_ref, g_ref) = with_grads(&i, c, all, composed::<Ad>);
        check_all("autodiff", c, (y_fast, g_fast), (y_ref, g_ref));
    }
}

/// The backward keeps only what it needs: with the weight frozen (the generator step through a
/// discriminator) or the input constant (an image), the other gradient is still exact.
#[test]
fn reflect_conv_partial_gradients() {
    let device = Default::default();
    for c in [&CASES[2], &CASES[4], &CASES[8]] {
        let i = inputs(c, &device);
        for grad in [[true, false, false], [false, true, true]] {
            let (_, g_fast) = with_grads(&i, c, grad, fused::<Ad>);
            let (_, g_ref) = with_grads(&i, c, grad, composed::<Ad>);
            for ((what, f), r) in ["dx", "dw", "db"].iter().zip(g_fast).zip(g_ref) {
                match (f, r) {
                    (Some(f), Some(r)) => check("partial", what, c, f, r),
                    (None, None) => {}
                    _ => panic!("{what} {c:?} {grad:?}: a gradient on one path only"),
                }
            }
        }
    }
}

/// Input shapes of the norm tests: odd sizes, batch 2, channels below 4.
const NORM_SHAPES: [[usize; 4]; 4] = [[2, 5, 7, 9], [1, 3, 64, 64], [2, 16, 4, 4], [1, 64, 33, 31]];

/// Random input with a per-channel offset of several standard deviations, so single-pass
/// statistics would show any cancellation.
fn norm_input(shape: [usize; 4], device: &burn::backend::flex::FlexDevice) -> Tensor<Cpu, 4> {
    let u = Distribution::Uniform(-1.0, 1.0);
    let offset = Tensor::<Cpu, 4>::random(
        [shape[0], shape[1], 1, 1],
        Distribution::Uniform(-8.0, 8.0),
        device,
    );
    Tensor::random(shape, u, device) + offset
}

type Unary = fn(Tensor<Ad, 4>, Tensor<Ad, 4>) -> Tensor<Ad, 4>;

/// Output and the gradients of `sum(y * r)` with respect to `x` and `rho`.
fn norm_grads(
    x: &Tensor<Cpu, 4>,
    rho: &Tensor<Cpu, 4>,
    r: &Tensor<Cpu, 4>,
    f: Unary,
) -> [Vec<f32>; 3] {
    let xa = Tensor::<Ad, 4>::from_inner(x.clone()).require_grad();
    let rhoa = Tensor::<Ad, 4>::from_inner(rho.clone()).require_grad();
    let y = f(xa.clone(), rhoa.clone());
    let grads = (y.clone() * Tensor::from_inner(r.clone())).sum().backward();
    let drho = rhoa.grad(&grads).map_or_else(Vec::new, data);
    [
        data(y.inner()),
        data(xa.grad(&grads).expect("x gradient")),
        drho,
    ]
}

fn check_norm(name: &str, shape: [usize; 4], fast: [Vec<f32>; 3], reference: [Vec<f32>; 3]) {
    for ((what, f), r) in ["y", "dx", "drho"].iter().zip(fast).zip(reference) {
        let e = rel_err(&f, &r);
        assert!(e < 1e-5, "{name} {what} {shape:?}: relative error {e}");
    }
}

#[test]
fn instance_norm_matches_composed() {
    let device = Default::default();
    for shape in NORM_SHAPES {
        let x = norm_input(shape, &device);
        let e = rel_err(
            &data(instance_norm(x.clone())),
            &data(instance_norm_composed(x.clone())),
        );
        assert!(
            e < 1e-5,
            "instance_norm forward {shape:?}: relative error {e}"
        );
        let r = Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), &device);
        let rho = Tensor::zeros([1, shape[1], 1, 1], &device);
        let fast = norm_grads(&x, &rho, &r, |x, _| instance_norm(x));
        let reference = norm_grads(&x, &rho, &r, |x, _| instance_norm_composed(x));
        check_norm("instance_norm", shape, fast, reference);
    }
}

#[test]
fn instance_layer_mix_matches_composed() {
    let device = Default::default();
    for shape in NORM_SHAPES {
        let x = norm_input(shape, &device);
        let rho = Tensor::random(
            [1, shape[1], 1, 1],
            Distribution::Uniform(0.0, 1.0),
            &device,
        );
        let e = rel_err(
            &data(instance_layer_mix(x.clone(), rho.clone())),
            &data(instance_layer_mix_composed(x.clone(), rho.clone())),
        );
        assert!(
            e < 1e-5,
            "instance_layer_mix forward {shape:?}: relative error {e}"
        );
        let r = Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), &device);
        let fast = norm_grads(&x, &rho, &r, instance_layer_mix);
        let reference = norm_grads(&x, &rho, &r, instance_layer_mix_composed);
        check_norm("instance_layer_mix", shape, fast, reference);
    }
}

/// AdaILN / ILN with scale, shift and ReLU as separate burn ops around the mix kernel (itself
/// checked against burn's ops above): the same forward values, so the ReLU masks agree.
fn affine_then_relu(
    x: Tensor<Ad, 4>,
    rho: Tensor<Ad, 4>,
    gamma: Tensor<Ad, 2>,
    beta: Tensor<Ad, 2>,
    relu_after: bool,
) -> Tensor<Ad, 4> {
    let [gb, c] = gamma.dims();
    let y = instance_layer_mix(x, rho) * gamma.reshape([gb, c, 1, 1]) + beta.reshape([gb, c, 1, 1]);
    if relu_after {
        relu(y)
    } else {
        y
    }
}

type Affine = fn(Tensor<Ad, 4>, Tensor<Ad, 4>, Tensor<Ad, 2>, Tensor<Ad, 2>, bool) -> Tensor<Ad, 4>;

/// Output and the gradients of `sum(y * r)` for x, rho, gamma and beta.
fn affine_grads(
    inputs: &[Tensor<Cpu, 4>; 3],
    gamma_beta: &[Tensor<Cpu, 2>; 2],
    relu_after: bool,
    f: Affine,
) -> [Vec<f32>; 5] {
    let [x, rho, r] = inputs
        .clone()
        .map(|t| Tensor::<Ad, 4>::from_inner(t).require_grad());
    let [gamma, beta] = gamma_beta
        .clone()
        .map(|t| Tensor::<Ad, 2>::from_inner(t).require_grad());
    let y = f(
        x.clone(),
        rho.clone(),
        gamma.clone(),
        beta.clone(),
        relu_after,
    );
    let grads = (y.clone() * r.detach()).sum().backward();
    [
        data(y.inner()),
        data(x.grad(&grads).expect("x gradient")),
        data(rho.grad(&grads).expect("rho gradient")),
        data(gamma.grad(&grads).expect("gamma gradient")),
        data(beta.grad(&grads).expect("beta gradient")),
    ]
}

#[test]
fn norm_affine_matches_separate_ops() {
    let device = Default::default();
    let u = Distribution::Uniform(-1.0, 1.0);
    for shape in NORM_SHAPES {
        let [b, c, _, _] = shape;
        let x = norm_input(shape, &device);
        let rho = Tensor::random([1, c, 1, 1], Distribution::Uniform(0.0, 1.0), &device);
        let r = Tensor::random(shape, u, &device);
        // AdaILN's per-sample gamma and beta, and ILN's shared ones.
        for rows in [b, 1] {
            let gamma_beta = [
                Tensor::random([rows, c], Distribution::Uniform(-1.5, 1.5), &device),
                Tensor::random([rows, c], u, &device),
            ];
            for relu_after in [true, false] {
                let inputs = [x.clone(), rho.clone(), r.clone()];
                let fast = affine_grads(&inputs, &gamma_beta, relu_after, norm_affine);
                let reference = affine_grads(&inputs, &gamma_beta, relu_after, affine_then_relu);
                assert_eq!(
                    fast[0], reference[0],
                    "the forward is the same f32 arithmetic"
                );
                for ((what, f), r) in ["y", "dx", "drho", "dgamma", "dbeta"]
                    .iter()
                    .zip(fast)
                    .zip(reference)
                {
                    let e = rel_err(&f, &r);
                    assert!(
                        e < 1e-5,
                        "norm_affine {what} {shape:?} gamma rows {rows} relu {relu_after}: relative error {e}"
                    );
                }
            }
        }
    }
}

/// Inputs of an upsampling block's convolution: `x` at `c.h x c.w`, read twice as large.
fn up_inputs(c: &Case, device: &burn::backend::flex::FlexDevice) -> Inputs<Cpu> {
    let u = Distribution::Uniform(-1.0, 1.0);
    Inputs {
        x: Tensor::random([c.batch, c.c_in, c.h, c.w], u, device),
        w: Tensor::random([c.c_out, c.c_in, 3, 3], u, device),
        b: c.bias.then(|| Tensor::random([c.c_out], u, device)),
        r: Tensor::random([c.batch, c.c_out, 2 * c.h, 2 * c.w], u, device),
    }
}

fn up_fused<B: Backend>(i: &Inputs<B>, _: &Case) -> Tensor<B, 4> {
    upsample_reflect_conv(i.x.clone(), i.w.clone(), i.b.clone())
}

/// burn's nearest `interpolate`, pad and convolution: `nn.Upsample(scale_factor=2)`,
/// `nn.ReflectionPad2d(1)`, `nn.Conv2d(k=3)`.
fn up_composed<B: Backend>(i: &Inputs<B>, _: &Case) -> Tensor<B, 4> {
    let [_, _, h, w] = i.x.dims();
    let nearest = InterpolateOptions::new(InterpolateMode::Nearest);
    let up = interpolate(i.x.clone(), [2 * h, 2 * w], nearest);
    conv(reflect_pad(up, 1), i.w.clone(), i.b.clone(), 1)
}

#[test]
fn upsample_reflect_conv_matches_interpolate_pad_then_conv() {
    let device = Default::default();
    // Odd sizes, batch 2, more and fewer filters than channels, a tile block boundary (40x40
    // read as 80x80 with 64 channels: two blocks of tile rows), with and without bias.
    let cases = [
        case([2, 5, 7, 9], [4, 3, 1, 1], true),
        case([1, 3, 5, 3], [7, 3, 1, 1], false),
        case([1, 64, 40, 40], [8, 3, 1, 1], false),
    ];
    let all = [true, true, true];
    for c in &cases {
        let i = up_inputs(c, &device);
        check(
            "upsample forward",
            "y",
            c,
            data(up_fused(&i, c)),
            data(up_composed(&i, c)),
        );
        let (y_fast, g_fast) = with_grads(&i, c, all, up_fused::<Ad>);
        let (y_ref, g_ref) = with_grads(&i, c, all, up_composed::<Ad>);
        check_all("upsample autodiff", c, (y_fast, g_fast), (y_ref, g_ref));
    }
}
