//! The generator as an ONNX graph (opset 17), written without any ONNX library: burn 0.21
//! cannot export. The graph mirrors [`Generator::forward`] op by op; the weights are
//! initialisers (float32, or float16 / bfloat16 followed by a `Cast` to float32, so the file
//! halves and the arithmetic stays float32).
//!
//! Input: `input` `[N, 3, H, W]` in [-1, 1] with N dynamic; H = W = img_size for a full model
//! (its MLP sees every pixel), any multiples of 4 for a light one. Outputs: `image`
//! `[N, 3, H, W]` in [-1, 1], `cam_logit` `[N, 2]`, `heatmap` `[N, 1, H/4, W/4]`. (ONNX names
//! are single-assignment, so the input cannot also be called `image`.)

use std::path::Path;

use burn::prelude::*;

use ugatit_model::norm::EPS;
use ugatit_model::params::StateWriter;
use ugatit_model::{Generator, ModelConfig, StateDict};

use crate::atomic::write_atomic;
use crate::error::WeightsError;
use crate::formats::safetensors_file::StoreDtype;
use crate::proto::Message;

/// ONNX `TensorProto.DataType` codes.
pub(crate) const FLOAT: i64 = 1;
const INT64: i64 = 7;
const FLOAT16: i64 = 10;
const BFLOAT16: i64 = 16;
/// The opset the graph is written against.
pub const OPSET: i64 = 17;

pub(crate) enum Attr<'a> {
    Int(&'a str, i64),
    Ints(&'a str, &'a [i64]),
    Float(&'a str, f32),
    Str(&'a str, &'a str),
}

impl Attr<'_> {
    fn encode(&self) -> Message {
        let mut a = Message::new();
        match self {
            Attr::Int(name, v) => a.string(1, name).int(3, *v).int(20, 2),
            Attr::Float(name, v) => a.string(1, name).float(2, *v).int(20, 1),
            Attr::Str(name, v) => a.string(1, name).bytes(4, v.as_bytes()).int(20, 3),
            Attr::Ints(name, vs) => {
                a.string(1, name);
                for v in *vs {
                    a.int(8, *v);
                }
                a.int(20, 7)
            }
        };
        a
    }
}

pub(crate) struct Graph {
    nodes: Vec<Message>,
    initializers: Vec<Message>,
    dtype: StoreDtype,
    next: usize,
    /// Weights already added, by key: each is stored once however often it is used.
    weights: std::collections::HashMap<String, String>,
}

fn tensor_proto(name: &str, dims: &[usize], data_type: i64, raw: &[u8]) -> Message {
    let mut t = Message::new();
    for d in dims {
        t.int(1, *d as i64);
    }
    t.int(2, data_type).string(8, name).bytes(9, raw);
    t
}

impl Graph {
    pub(crate) fn new(dtype: StoreDtype) -> Self {
        Self {
            nodes: Vec::new(),
            initializers: Vec::new(),
            dtype,
            next: 0,
            weights: Default::default(),
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// Adds a node with one output and returns the output's name.
    pub(crate) fn op(&mut self, op_type: &str, inputs: &[&str], attrs: &[Attr]) -> String {
        let out = self.fresh(&op_type.to_ascii_lowercase());
        self.op_named(op_type, inputs, attrs, &out);
        out
    }

    pub(crate) fn op_named(&mut self, op_type: &str, inputs: &[&str], attrs: &[Attr], out: &str) {
        let mut n = Message::new();
        for i in inputs {
            n.string(1, i);
        }
        n.string(2, out).string(3, out).string(4, op_type);
        for a in attrs {
            n.message(5, &a.encode());
        }
        self.nodes.push(n);
    }

    /// A float32 constant (small shapes and values the graph needs, never converted).
    pub(crate) fn constant(&mut self, hint: &str, dims: &[usize], values: &[f32]) -> String {
        let name = self.fresh(hint);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers
            .push(tensor_proto(&name, dims, FLOAT, &raw));
        name
    }

    pub(crate) fn ints(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers
            .push(tensor_proto(&name, &[values.len()], INT64, &raw));
        name
    }

    /// A weight in the export's dtype, as a float32 value for the graph.
    fn weight(&mut self, key: &str, data: &burn::tensor::TensorData) -> String {
        if let Some(name) = self.weights.get(key) {
            return name.clone();
        }
        let dims = data.shape.to_vec();
        let code = match self.dtype {
            StoreDtype::F32 => FLOAT,
            StoreDtype::F16 => FLOAT16,
            StoreDtype::BF16 => BFLOAT16,
        };
        let raw = data.clone().convert_dtype(self.dtype.burn());
        self.initializers
            .push(tensor_proto(key, &dims, code, &raw.bytes));
        let name = if self.dtype == StoreDtype::F32 {
            key.to_string()
        } else {
            self.op("Cast", &[key], &[Attr::Int("to", FLOAT)])
        };
        self.weights.insert(key.to_string(), name.clone());
        name
    }
}

/// Reads weights by official key from the generator's state dict.
pub(crate) struct Weights<'a> {
    pub(crate) sd: &'a StateDict,
}

impl Weights<'_> {
    pub(crate) fn get(&self, g: &mut Graph, key: &str) -> String {
        match self.sd.get(key) {
            Some(d) => g.weight(key, d),
            None => unreachable!("the generator wrote no tensor {key}"),
        }
    }

    /// A `[out, in]` linear weight as the `[in, out]` matrix MatMul wants.
    fn linear(&self, g: &mut Graph, key: &str) -> String {
        let w = self.get(g, key);
        g.op("Transpose", &[&w], &[Attr::Ints("perm", &[1, 0])])
    }

    /// A `[1, C]` CAM weight as `[1, C, 1, 1]` for reweighting.
    fn channel_scale(&self, g: &mut Graph, key: &str, c: usize) -> String {
        let w = self.get(g, key);
        let shape = g.ints("shape", &[1, c as i64, 1, 1]);
        g.op("Reshape", &[&w, &shape], &[])
    }
}

pub(crate) fn reflect_pad(g: &mut Graph, x: &str, p: i64) -> String {
    let pads = g.ints("pads", &[0, 0, p, p, 0, 0, p, p]);
    g.op("Pad", &[x, &pads], &[Attr::Str("mode", "reflect")])
}

fn conv(g: &mut Graph, w: &Weights, x: &str, key: &str, k: i64, stride: i64, bias: bool) -> String {
    let wt = w.get(g, &format!("{key}.weight"));
    let mut inputs = vec![x.to_string(), wt];
    if bias {
        inputs.push(w.get(g, &format!("{key}.bias")));
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    g.op(
        "Conv",
        &refs,
        &[
            Attr::Ints("kernel_shape", &[k, k]),
            Attr::Ints("strides", &[stride, stride]),
            Attr::Ints("pads", &[0, 0, 0, 0]),
        ],
    )
}

/// `nn.InstanceNorm2d` without affine: ONNX InstanceNormalization with unit scale, zero bias.
fn instance_norm(g: &mut Graph, x: &str, c: usize) -> String {
    let ones = g.constant("ones", &[c], &vec![1.0; c]);
    let zeros = g.constant("zeros", &[c], &vec![0.0; c]);
    g.op(
        "InstanceNormalization",
        &[x, &ones, &zeros],
        &[Attr::Float("epsilon", EPS as f32)],
    )
}

/// `(x - mean) / sqrt(var + eps)` over `axes` (the trailing dimensions from `axes[0]`). The
/// PyTorch model's variance is unbiased, `mean((x - mean)^2) * n / (n - 1)`, with the group
/// size `n` read from the tensor's shape so a light model's graph takes any image size; the TF
/// model's is biased (`unbiased` false).
pub(crate) fn standardise(g: &mut Graph, x: &str, axes: &[i64], unbiased: bool) -> String {
    let keep = [Attr::Ints("axes", axes), Attr::Int("keepdims", 1)];
    let mean = g.op("ReduceMean", &[x], &keep);
    let d = g.op("Sub", &[x, &mean], &[]);
    let sq = g.op("Mul", &[&d, &d], &[]);
    let biased = g.op("ReduceMean", &[&sq], &keep);
    if !unbiased {
        let eps = g.constant("eps", &[], &[EPS as f32]);
        let var = g.op("Add", &[&biased, &eps], &[]);
        let std = g.op("Sqrt", &[&var], &[]);
        return g.op("Div", &[&d, &std], &[]);
    }
    let shape = g.op("Shape", &[x], &[]);
    let (start, end) = (g.ints("start", &[axes[0]]), g.ints("end", &[4]));
    let dims = g.op("Slice", &[&shape, &start, &end], &[]);
    let n = g.op("ReduceProd", &[&dims], &[Attr::Int("keepdims", 0)]);
    let n = g.op("Cast", &[&n], &[Attr::Int("to", FLOAT)]);
    let one = g.constant("one", &[], &[1.0]);
    let n_minus_one = g.op("Sub", &[&n, &one], &[]);
    let bessel = g.op("Div", &[&n, &n_minus_one], &[]);
    let var = g.op("Mul", &[&biased, &bessel], &[]);
    let eps = g.constant("eps", &[], &[EPS as f32]);
    let var = g.op("Add", &[&var, &eps], &[]);
    let std = g.op("Sqrt", &[&var], &[]);
    g.op("Div", &[&d, &std], &[])
}

/// The instance-layer mix of AdaILN and ILN with unbiased variances (paper eq. 1).
fn iln_mix(g: &mut Graph, w: &Weights, x: &str, rho_key: &str) -> String {
    let out_in = standardise(g, x, &[2, 3], true);
    let out_ln = standardise(g, x, &[1, 2, 3], true);
    let rho = w.get(g, rho_key);
    let one = g.constant("one", &[], &[1.0]);
    let one_minus = g.op("Sub", &[&one, &rho], &[]);
    let a = g.op("Mul", &[&out_in, &rho], &[]);
    let b = g.op("Mul", &[&out_ln, &one_minus], &[]);
    g.op("Add", &[&a, &b], &[])
}

/// The heatmap output: the channel sum of the attended features (`[N, 1, h, w]`).
pub(crate) fn heatmap_output(g: &mut Graph, h: &str) {
    let axes = g.ints("axes", &[1]);
    g.op_named(
        "ReduceSum",
        &[h, &axes],
        &[Attr::Int("keepdims", 1)],
        "heatmap",
    );
}

/// Nearest x2 upsampling as torch and TF1 do it: source index `floor(dst / 2)`.
pub(crate) fn upsample2(g: &mut Graph, h: &str) -> String {
    let scales = g.constant("scales", &[4], &[1.0, 1.0, 2.0, 2.0]);
    g.op(
        "Resize",
        &[h, "", &scales],
        &[
            Attr::Str("mode", "nearest"),
            Attr::Str("coordinate_transformation_mode", "asymmetric"),
            Attr::Str("nearest_mode", "floor"),
        ],
    )
}

/// Writes `generator` as an ONNX model.
pub fn write_generator<B: Backend>(
    path: &Path,
    generator: &Generator<B>,
    config: &ModelConfig,
    dtype: StoreDtype,
) -> Result<(), WeightsError> {
    let bytes = encode(generator, config, dtype);
    write_atomic(path, &bytes)
}

/// The serialised `ModelProto`.
pub fn encode<B: Backend>(
    generator: &Generator<B>,
    config: &ModelConfig,
    dtype: StoreDtype,
) -> Vec<u8> {
    let mut sd = StateDict::new();
    generator.save(&mut StateWriter::new(&mut sd));
    let w = Weights { sd: &sd };
    let mut g = Graph::new(dtype);
    let (s, ch, n_res) = (config.img_size, config.ch, config.n_res);
    let c = config.bottleneck_channels();

    // Encoder.
    let x = reflect_pad(&mut g, "input", 3);
    let x = conv(&mut g, &w, &x, "DownBlock.1", 7, 1, false);
    let x = instance_norm(&mut g, &x, ch);
    let mut h = g.op("Relu", &[&x], &[]);
    for (i, key) in ["DownBlock.5", "DownBlock.9"].iter().enumerate() {
        let x = reflect_pad(&mut g, &h, 1);
        let x = conv(&mut g, &w, &x, key, 3, 2, false);
        let x = instance_norm(&mut g, &x, ch << (i + 1));
        h = g.op("Relu", &[&x], &[]);
    }
    for i in 0..n_res {
        let key = |j| format!("DownBlock.{}.conv_block.{j}", 12 + i);
        let r = reflect_pad(&mut g, &h, 1);
        let r = conv(&mut g, &w, &r, &key(1), 3, 1, false);
        let r = instance_norm(&mut g, &r, c);
        let r = g.op("Relu", &[&r], &[]);
        let r = reflect_pad(&mut g, &r, 1);
        let r = conv(&mut g, &w, &r, &key(5), 3, 1, false);
        let r = instance_norm(&mut g, &r, c);
        h = g.op("Add", &[&h, &r], &[]);
    }

    // CAM.
    let gap = g.op(
        "ReduceMean",
        &[&h],
        &[Attr::Ints("axes", &[2, 3]), Attr::Int("keepdims", 0)],
    );
    let gmp = g.op(
        "ReduceMax",
        &[&h],
        &[Attr::Ints("axes", &[2, 3]), Attr::Int("keepdims", 0)],
    );
    let gap_w = w.linear(&mut g, "gap_fc.weight");
    let gmp_w = w.linear(&mut g, "gmp_fc.weight");
    let gap_logit = g.op("MatMul", &[&gap, &gap_w], &[]);
    let gmp_logit = g.op("MatMul", &[&gmp, &gmp_w], &[]);
    g.op_named(
        "Concat",
        &[&gap_logit, &gmp_logit],
        &[Attr::Int("axis", 1)],
        "cam_logit",
    );
    let gap_scale = w.channel_scale(&mut g, "gap_fc.weight", c);
    let gmp_scale = w.channel_scale(&mut g, "gmp_fc.weight", c);
    let a = g.op("Mul", &[&h, &gap_scale], &[]);
    let b = g.op("Mul", &[&h, &gmp_scale], &[]);
    let cat = g.op("Concat", &[&a, &b], &[Attr::Int("axis", 1)]);
    let x = conv(&mut g, &w, &cat, "conv1x1", 1, 1, true);
    let h = g.op("Relu", &[&x], &[]);
    heatmap_output(&mut g, &h);

    // Gamma and beta.
    let mut z = if config.light {
        g.op(
            "ReduceMean",
            &[&h],
            &[Attr::Ints("axes", &[2, 3]), Attr::Int("keepdims", 0)],
        )
    } else {
        g.op("Flatten", &[&h], &[Attr::Int("axis", 1)])
    };
    for key in ["FC.0.weight", "FC.2.weight"] {
        let m = w.linear(&mut g, key);
        let y = g.op("MatMul", &[&z, &m], &[]);
        z = g.op("Relu", &[&y], &[]);
    }
    let per_channel = g.ints("shape", &[-1, c as i64, 1, 1]);
    let affine = |g: &mut Graph, key: &str| {
        let m = w.linear(g, key);
        let y = g.op("MatMul", &[&z, &m], &[]);
        g.op("Reshape", &[&y, &per_channel], &[])
    };
    let gamma = affine(&mut g, "gamma.weight");
    let beta = affine(&mut g, "beta.weight");

    // Decoder.
    let mut h = h;
    for i in 1..=n_res {
        let key = |k: &str| format!("UpBlock1_{i}.{k}");
        let mut r = h.clone();
        for (j, (conv_key, norm_key)) in [("conv1", "norm1"), ("conv2", "norm2")].iter().enumerate()
        {
            let x = reflect_pad(&mut g, &r, 1);
            let x = conv(&mut g, &w, &x, &key(conv_key), 3, 1, false);
            let x = iln_mix(&mut g, &w, &x, &key(&format!("{norm_key}.rho")));
            let x = g.op("Mul", &[&x, &gamma], &[]);
            r = g.op("Add", &[&x, &beta], &[]);
            if j == 0 {
                r = g.op("Relu", &[&r], &[]);
            }
        }
        h = g.op("Add", &[&h, &r], &[]);
    }
    for (conv_key, norm_key) in [("UpBlock2.2", "UpBlock2.3"), ("UpBlock2.7", "UpBlock2.8")] {
        let up = upsample2(&mut g, &h);
        let x = reflect_pad(&mut g, &up, 1);
        let x = conv(&mut g, &w, &x, conv_key, 3, 1, false);
        let x = iln_mix(&mut g, &w, &x, &format!("{norm_key}.rho"));
        let gm = w.get(&mut g, &format!("{norm_key}.gamma"));
        let bt = w.get(&mut g, &format!("{norm_key}.beta"));
        let x = g.op("Mul", &[&x, &gm], &[]);
        let x = g.op("Add", &[&x, &bt], &[]);
        h = g.op("Relu", &[&x], &[]);
    }
    let x = reflect_pad(&mut g, &h, 3);
    let x = conv(&mut g, &w, &x, "UpBlock2.11", 7, 1, false);
    g.op_named("Tanh", &[&x], &[], "image");
    // A full model's MLP fixes the size; a light one takes any multiple of 4.
    let side = (!config.light).then_some(s);
    finish(g, side, side.map(|s| s / 4))
}

/// A dimension: fixed, or named (dynamic).
pub(crate) enum Dim {
    Fixed(usize),
    Named(&'static str),
}

fn value_info(name: &str, dims: &[Dim]) -> Message {
    let mut shape = Message::new();
    for d in dims {
        let mut dim = Message::new();
        match d {
            Dim::Fixed(v) => dim.int(1, *v as i64),
            Dim::Named(n) => dim.string(2, n),
        };
        shape.message(1, &dim);
    }
    let mut tensor = Message::new();
    tensor.int(1, FLOAT).message(2, &shape);
    let mut ty = Message::new();
    ty.message(1, &tensor);
    let mut v = Message::new();
    v.string(1, name).message(2, &ty);
    v
}

pub(crate) fn finish(g: Graph, side: Option<usize>, quarter: Option<usize>) -> Vec<u8> {
    use Dim::{Fixed, Named};
    let (h, w) = side.map_or((Named("H"), Named("W")), |s| (Fixed(s), Fixed(s)));
    let (h4, w4) = quarter.map_or((Named("H/4"), Named("W/4")), |q| (Fixed(q), Fixed(q)));
    let (h2, w2) = side.map_or((Named("H"), Named("W")), |s| (Fixed(s), Fixed(s)));
    let mut graph = Message::new();
    for n in &g.nodes {
        graph.message(1, n);
    }
    graph.string(2, "ugatit_generator");
    for t in &g.initializers {
        graph.message(5, t);
    }
    graph.message(11, &value_info("input", &[Named("N"), Fixed(3), h, w]));
    graph.message(12, &value_info("image", &[Named("N"), Fixed(3), h2, w2]));
    graph.message(12, &value_info("cam_logit", &[Named("N"), Fixed(2)]));
    graph.message(12, &value_info("heatmap", &[Named("N"), Fixed(1), h4, w4]));
    let mut opset = Message::new();
    opset.string(1, "").int(2, OPSET);
    let mut model = Message::new();
    model
        .int(1, 8)
        .string(2, "ugatit-rs")
        .string(3, env!("CARGO_PKG_VERSION"))
        .message(7, &graph)
        .message(8, &opset);
    model.0
}
