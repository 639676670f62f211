//! The TF generator variant as an ONNX graph, built with the same writer as the PyTorch one
//! ([`super::onnx`]) and mirroring [`ugatit_model::tf::TfGenerator::forward`] op by op.

use std::path::Path;

use ugatit_model::norm::EPS;
use ugatit_model::{ModelConfig, StateDict};

use super::onnx::{
    finish, heatmap_output, reflect_pad, standardise, upsample2, Attr, Graph, Weights,
};
use super::onnx_file::{self, Written, INLINE_LIMIT};
use crate::error::WeightsError;
use crate::formats::safetensors_file::StoreDtype;
use crate::proto::onnx::ModelProto;

/// A TF convolution: `SCOPE.conv2d.kernel` (OIHW here) and `.bias`, no padding.
fn conv(g: &mut Graph, w: &Weights, x: &str, scope: &str, k: i64, stride: i64) -> String {
    let kernel = w.get(g, &format!("{scope}.conv2d.kernel"));
    let bias = w.get(g, &format!("{scope}.conv2d.bias"));
    g.op(
        "Conv",
        &[x, &kernel, &bias],
        &[
            Attr::Ints("kernel_shape", &[k, k]),
            Attr::Ints("strides", &[stride, stride]),
            Attr::Ints("pads", &[0, 0, 0, 0]),
        ],
    )
}

/// A `[C]` parameter as `[1, C, 1, 1]`.
fn per_channel(g: &mut Graph, w: &Weights, key: &str) -> String {
    let v = w.get(g, key);
    let shape = g.ints("shape", &[1, -1, 1, 1]);
    g.op("Reshape", &[&v, &shape], &[])
}

/// `tf.contrib.layers.instance_norm`: ONNX InstanceNormalization with its gamma and beta.
fn instance_norm(g: &mut Graph, w: &Weights, x: &str, scope: &str) -> String {
    let gamma = w.get(g, &format!("{scope}.gamma"));
    let beta = w.get(g, &format!("{scope}.beta"));
    g.op(
        "InstanceNormalization",
        &[x, &gamma, &beta],
        &[Attr::Float("epsilon", EPS as f32)],
    )
}

/// `rho * IN(x) + (1 - rho) * LN(x)` with biased variances; `rho` `[1, C, 1, 1]`.
fn mix(g: &mut Graph, x: &str, rho: &str) -> String {
    let out_in = standardise(g, x, &[2, 3], false);
    let out_ln = standardise(g, x, &[1, 2, 3], false);
    let one = g.constant("one", &[], &[1.0]);
    let one_minus = g.op("Sub", &[&one, rho], &[]);
    let a = g.op("Mul", &[&out_in, rho], &[]);
    let b = g.op("Mul", &[&out_ln, &one_minus], &[]);
    g.op("Add", &[&a, &b], &[])
}

fn dense(g: &mut Graph, w: &Weights, x: &str, scope: &str) -> String {
    let kernel = w.get(g, &format!("{scope}.kernel"));
    let bias = w.get(g, &format!("{scope}.bias"));
    let y = g.op("MatMul", &[x, &kernel], &[]);
    g.op("Add", &[&y, &bias], &[])
}

/// Writes the TF generator whose tensors are `sd` (TF names, `.`-separated, kernels OIHW), with
/// external data above protobuf's size limit.
pub fn write_generator(
    path: &Path,
    sd: &StateDict,
    config: &ModelConfig,
    dtype: StoreDtype,
) -> Result<Written, WeightsError> {
    onnx_file::write(path, model(sd, config, dtype), INLINE_LIMIT)
}

/// The `ModelProto` of a TF generator, weights inline.
pub fn model(sd: &StateDict, config: &ModelConfig, dtype: StoreDtype) -> ModelProto {
    let w = Weights { sd };
    let mut g = Graph::new(dtype);
    let keep = |axes: &'static [i64]| [Attr::Ints("axes", axes), Attr::Int("keepdims", 0)];

    let x = reflect_pad(&mut g, "input", 3);
    let x = conv(&mut g, &w, &x, "conv", 7, 1);
    let x = instance_norm(&mut g, &w, &x, "ins_norm");
    let mut h = g.op("Relu", &[&x], &[]);
    for i in 0..2 {
        // The official `conv` pads 1 before and 0 after for a stride-2 3x3 kernel.
        let pads = g.ints("pads", &[0, 0, 1, 1, 0, 0, 0, 0]);
        let x = g.op("Pad", &[&h, &pads], &[Attr::Str("mode", "reflect")]);
        let x = conv(&mut g, &w, &x, &format!("conv_{i}"), 3, 2);
        let x = instance_norm(&mut g, &w, &x, &format!("ins_norm_{i}"));
        h = g.op("Relu", &[&x], &[]);
    }
    for i in 0..config.n_res {
        let res = |j| format!("resblock_{i}.res{j}");
        let r = reflect_pad(&mut g, &h, 1);
        let r = conv(&mut g, &w, &r, &format!("{}.conv_0", res(1)), 3, 1);
        let r = instance_norm(&mut g, &w, &r, &format!("{}.instance_norm", res(1)));
        let r = g.op("Relu", &[&r], &[]);
        let r = reflect_pad(&mut g, &r, 1);
        let r = conv(&mut g, &w, &r, &format!("{}.conv_0", res(2)), 3, 1);
        let r = instance_norm(&mut g, &w, &r, &format!("{}.instance_norm", res(2)));
        h = g.op("Add", &[&h, &r], &[]);
    }

    // CAM: one dense layer for both pooled vectors; maps reweighted by kernel + bias.
    let gap = g.op("ReduceMean", &[&h], &keep(&[2, 3]));
    let gmp = g.op("ReduceMax", &[&h], &keep(&[2, 3]));
    let gap_logit = dense(&mut g, &w, &gap, "CAM_logit");
    let gmp_logit = dense(&mut g, &w, &gmp, "CAM_logit");
    g.op_named(
        "Concat",
        &[&gap_logit, &gmp_logit],
        &[Attr::Int("axis", 1)],
        "cam_logit",
    );
    let kernel = w.get(&mut g, "CAM_logit.kernel");
    let bias = w.get(&mut g, "CAM_logit.bias");
    let weight = g.op("Add", &[&kernel, &bias], &[]);
    let shape = g.ints("shape", &[1, -1, 1, 1]);
    let weight = g.op("Reshape", &[&weight, &shape], &[]);
    let x = g.op("Mul", &[&h, &weight], &[]);
    let cat = g.op("Concat", &[&x, &x], &[Attr::Int("axis", 1)]);
    let x = conv(&mut g, &w, &cat, "conv_1x1", 1, 1);
    let h = g.op("Relu", &[&x], &[]);
    heatmap_output(&mut g, &h);

    // MLP: TF flattens NHWC.
    let mut z = if config.light {
        g.op("ReduceMean", &[&h], &keep(&[2, 3]))
    } else {
        let nhwc = g.op("Transpose", &[&h], &[Attr::Ints("perm", &[0, 2, 3, 1])]);
        g.op("Flatten", &[&nhwc], &[Attr::Int("axis", 1)])
    };
    for i in 0..2 {
        let y = dense(&mut g, &w, &z, &format!("MLP.linear_{i}.dense"));
        z = g.op("Relu", &[&y], &[]);
    }
    let c = (4 * config.ch) as i64;
    let per_sample = g.ints("shape", &[-1, c, 1, 1]);
    let gamma = dense(&mut g, &w, &z, "MLP.gamma.dense");
    let gamma = g.op("Reshape", &[&gamma, &per_sample], &[]);
    let beta = dense(&mut g, &w, &z, "MLP.beta.dense");
    let beta = g.op("Reshape", &[&beta, &per_sample], &[]);

    let mut h = h;
    for i in 0..config.n_res {
        let mut r = h.clone();
        for j in 1..=2 {
            let scope = format!("adaptive_resblock{i}.res{j}");
            let x = reflect_pad(&mut g, &r, 1);
            let x = conv(&mut g, &w, &x, &format!("{scope}.conv_0"), 3, 1);
            // Smoothing: rho is used as clip(rho - 0.1, 0, 1).
            let rho = per_channel(&mut g, &w, &format!("{scope}.instance_layer_norm.rho"));
            let tenth = g.constant("tenth", &[], &[0.1]);
            let rho = g.op("Sub", &[&rho, &tenth], &[]);
            let (lo, hi) = (
                g.constant("zero", &[], &[0.0]),
                g.constant("one", &[], &[1.0]),
            );
            let rho = g.op("Clip", &[&rho, &lo, &hi], &[]);
            let x = mix(&mut g, &x, &rho);
            let x = g.op("Mul", &[&x, &gamma], &[]);
            r = g.op("Add", &[&x, &beta], &[]);
            if j == 1 {
                r = g.op("Relu", &[&r], &[]);
            }
        }
        h = g.op("Add", &[&h, &r], &[]);
    }
    for i in 0..2 {
        let up = upsample2(&mut g, &h);
        let x = reflect_pad(&mut g, &up, 1);
        let x = conv(&mut g, &w, &x, &format!("up_conv_{i}"), 3, 1);
        let scope = format!("layer_ins_norm_{i}");
        let rho = per_channel(&mut g, &w, &format!("{scope}.rho"));
        let x = mix(&mut g, &x, &rho);
        let gm = per_channel(&mut g, &w, &format!("{scope}.gamma"));
        let bt = per_channel(&mut g, &w, &format!("{scope}.beta"));
        let x = g.op("Mul", &[&x, &gm], &[]);
        let x = g.op("Add", &[&x, &bt], &[]);
        h = g.op("Relu", &[&x], &[]);
    }
    let x = reflect_pad(&mut g, &h, 3);
    let x = conv(&mut g, &w, &x, "G_logit", 7, 1);
    g.op_named("Tanh", &[&x], &[], "image");
    let side = (!config.light).then_some(config.img_size);
    finish(g, side, side.map(|s| s / 4))
}
