//! Median times of the padded convolutions of a 256x256 U-GAT-IT (ch 64) on the CPU backend,
//! burn's composed pad + conv2d ("old") against our fused kernel ("new"), forward alone and
//! forward + backward; then the same for the norms at the bottleneck (`1x256x64x64`).
//!
//! `cargo run --release -p ugatit-model --example kernel_bench -- [--repeat N] [--op NAME]...`

use std::time::Instant;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::Distribution;
use ugatit_model::layers::{conv, reflect_conv, reflect_pad};
use ugatit_model::norm::{
    instance_layer_mix, instance_layer_mix_composed, instance_norm, instance_norm_composed,
};
use ugatit_model::Cpu;

type Ad = Autodiff<Cpu>;

/// Name, input `[c_in, h, w]` (batch 1), `[c_out, k, stride, pad]`, bias, input needs a gradient.
type Op = (&'static str, [usize; 3], [usize; 4], bool, bool);

const OPS: [Op; 10] = [
    (
        "g.conv_in k7 3->64 @256",
        [3, 256, 256],
        [64, 7, 1, 3],
        false,
        false,
    ),
    (
        "g.down1 k3s2 64->128 @256",
        [64, 256, 256],
        [128, 3, 2, 1],
        false,
        true,
    ),
    (
        "g.down2 k3s2 128->256 @128",
        [128, 128, 128],
        [256, 3, 2, 1],
        false,
        true,
    ),
    (
        "g.res k3 256->256 @64",
        [256, 64, 64],
        [256, 3, 1, 1],
        false,
        true,
    ),
    (
        "g.up1 k3 256->128 @128",
        [256, 128, 128],
        [128, 3, 1, 1],
        false,
        true,
    ),
    (
        "g.up2 k3 128->64 @256",
        [128, 256, 256],
        [64, 3, 1, 1],
        false,
        true,
    ),
    (
        "g.conv_out k7 64->3 @256",
        [64, 256, 256],
        [3, 7, 1, 3],
        false,
        true,
    ),
    (
        "d.model1 k4s2 3->64 @256",
        [3, 256, 256],
        [64, 4, 2, 1],
        true,
        true,
    ),
    (
        "d.model k4s1 256->512 @32",
        [256, 32, 32],
        [512, 4, 1, 1],
        true,
        true,
    ),
    (
        "d.conv k4s1 512->1 @31",
        [512, 31, 31],
        [1, 4, 1, 1],
        false,
        true,
    ),
];

fn median_ms(repeat: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..repeat)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn run<B: Backend>(
    fused: bool,
    x: Tensor<B, 4>,
    w: Tensor<B, 4>,
    b: Option<Tensor<B, 1>>,
    op: &Op,
) -> Tensor<B, 4> {
    let [_, _, stride, pad] = op.2;
    if fused {
        reflect_conv(x, w, b, stride, pad)
    } else {
        conv(reflect_pad(x, pad), w, b, stride)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 5;
    let mut only = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--repeat", Some(n)) => repeat = n.parse().unwrap_or(repeat),
            ("--op", Some(name)) => only.push(name.clone()),
            _ => {
                eprintln!("usage: kernel_bench [--repeat N] [--op NAME]...");
                std::process::exit(2);
            }
        }
    }
    let device = Default::default();
    let u = Distribution::Uniform(-1.0, 1.0);
    println!(
        "{:<30} {:>9} {:>9} {:>12} {:>12}",
        "op (ms, median)", "fwd old", "fwd new", "fwd+bwd old", "fwd+bwd new"
    );
    for op in OPS
        .iter()
        .filter(|op| only.is_empty() || only.iter().any(|o| op.0.contains(o.as_str())))
    {
        let [c_in, h, w] = op.1;
        let [c_out, k, _, _] = op.2;
        let x = Tensor::<Cpu, 4>::random([1, c_in, h, w], u, &device);
        let wt = Tensor::<Cpu, 4>::random([c_out, c_in, k, k], u, &device);
        let b = op.3.then(|| Tensor::<Cpu, 1>::random([c_out], u, &device));
        let fwd = |fused| {
            median_ms(repeat, || {
                let _ = run(fused, x.clone(), wt.clone(), b.clone(), op).into_data();
            })
        };
        let fwd_bwd = |fused| {
            median_ms(repeat, || {
                let xa = Tensor::<Ad, 4>::from_inner(x.clone());
                let xa = if op.4 { xa.require_grad() } else { xa };
                let wa = Tensor::<Ad, 4>::from_inner(wt.clone()).require_grad();
                let ba = b
                    .clone()
                    .map(|b| Tensor::<Ad, 1>::from_inner(b).require_grad());
                let grads = run(fused, xa, wa.clone(), ba, op).sum().backward();
                let _ = wa.grad(&grads).map(|g| g.into_data());
            })
        };
        let (fo, fne) = (fwd(false), fwd(true));
        let (bo, bn) = (fwd_bwd(false), fwd_bwd(true));
        println!("{:<30} {fo:>9.1} {fne:>9.1} {bo:>12.1} {bn:>12.1}", op.0);
    }
    let x = Tensor::<Cpu, 4>::random([1, 256, 64, 64], u, &device);
    let rho = Tensor::<Cpu, 4>::random([1, 256, 1, 1], Distribution::Uniform(0.0, 1.0), &device);
    type Norm = fn(Tensor<Ad, 4>, Tensor<Ad, 4>) -> Tensor<Ad, 4>;
    let norms: [(&str, Norm, Norm); 2] = [
        (
            "instance_norm 256@64",
            |x, _| instance_norm(x),
            |x, _| instance_norm_composed(x),
        ),
        (
            "adaILN mix 256@64",
            instance_layer_mix,
            instance_layer_mix_composed,
        ),
    ];
    for (name, new, old) in norms {
        if !(only.is_empty() || only.iter().any(|o| name.contains(o.as_str()))) {
            continue;
        }
        let fwd = |f: Norm| {
            median_ms(repeat, || {
                let _ = f(
                    Tensor::from_inner(x.clone()),
                    Tensor::from_inner(rho.clone()),
                )
                .into_data();
            })
        };
        let fwd_bwd = |f: Norm| {
            median_ms(repeat, || {
                let xa = Tensor::<Ad, 4>::from_inner(x.clone()).require_grad();
                let ra = Tensor::<Ad, 4>::from_inner(rho.clone()).require_grad();
                let grads = f(xa.clone(), ra).sum().backward();
                let _ = xa.grad(&grads).map(|g| g.into_data());
            })
        };
        let (fo, fne) = (fwd(old), fwd(new));
        let (bo, bn) = (fwd_bwd(old), fwd_bwd(new));
        println!("{name:<30} {fo:>9.1} {fne:>9.1} {bo:>12.1} {bn:>12.1}");
    }
}
