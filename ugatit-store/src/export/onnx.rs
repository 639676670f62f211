//! The generator as an ONNX graph (opset 17), built as [`crate::proto::onnx`] messages: burn
//! 0.21 cannot export. The graph mirrors [`Generator::forward`] op by op; the weights are
//! initialisers (float32, or float16 / bfloat16 followed by a `Cast` to float32, so the file
//! halves and the arithmetic stays float32). [`super::onnx_file`] writes the model, moving the
//! weights to an external-data file when it would pass protobuf's 2 GiB limit.
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

use super::onnx_file::{self, Written, INLINE_LIMIT};
use crate::error::WeightsError;
use crate::formats::safetensors_file::StoreDtype;
use crate::proto::onnx::tensor_shape_proto::{Dimension, Value as DimValue};
use crate::proto::onnx::{
    type_proto, AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The opset the graph is written against.
pub const OPSET: i64 = 17;
/// The IR version that goes with [`OPSET`] (onnx's versioning table).
const IR_VERSION: i64 = 8;
/// `Cast`'s `to` attribute: float32.
const TO_FLOAT: i64 = DataType::Float as i64;

pub(crate) enum Attr<'a> {
    Int(&'a str, i64),
    Ints(&'a str, &'a [i64]),
    Float(&'a str, f32),
    Str(&'a str, &'a str),
}

impl Attr<'_> {
    fn proto(&self) -> AttributeProto {
        let (name, ty) = match self {
            Attr::Int(name, _) => (name, AttributeType::Int),
            Attr::Ints(name, _) => (name, AttributeType::Ints),
            Attr::Float(name, _) => (name, AttributeType::Float),
            Attr::Str(name, _) => (name, AttributeType::String),
        };
        let mut a = AttributeProto {
            name: name.to_string(),
            r#type: Some(ty as i32),
            ..Default::default()
        };
        match self {
            Attr::Int(_, v) => a.i = Some(*v),
            Attr::Ints(_, vs) => a.ints = vs.to_vec(),
            Attr::Float(_, v) => a.f = Some(*v),
            Attr::Str(_, v) => a.s = Some(v.as_bytes().to_vec()),
        }
        a
    }
}

pub(crate) struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    dtype: StoreDtype,
    next: usize,
    /// Weights already added, by key: each is stored once however often it is used.
    weights: std::collections::HashMap<String, String>,
}

fn tensor_proto(name: &str, dims: &[usize], data_type: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type as i32,
        name: name.to_string(),
        raw_data: raw,
        ..Default::default()
    }
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
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|i| i.to_string()).collect(),
            output: vec![out.to_string()],
            name: out.to_string(),
            op_type: op_type.to_string(),
            attribute: attrs.iter().map(Attr::proto).collect(),
        });
    }

    /// A float32 constant (small shapes and values the graph needs, never converted).
    pub(crate) fn constant(&mut self, hint: &str, dims: &[usize], values: &[f32]) -> String {
        let name = self.fresh(hint);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers
            .push(tensor_proto(&name, dims, DataType::Float, raw));
        name
    }

    pub(crate) fn ints(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers
            .push(tensor_proto(&name, &[values.len()], DataType::Int64, raw));
        name
    }

    /// A weight in the export's dtype, as a float32 value for the graph.
    fn weight(&mut self, key: &str, data: &burn::tensor::TensorData) -> String {
        if let Some(name) = self.weights.get(key) {
            return name.clone();
        }
        let dims = data.shape.to_vec();
        let code = match self.dtype {
            StoreDtype::F32 => DataType::Float,
            StoreDtype::F16 => DataType::Float16,
            StoreDtype::BF16 => DataType::Bfloat16,
        };
        let raw = data.clone().convert_dtype(self.dtype.burn());
        self.initializers
            .push(tensor_proto(key, &dims, code, raw.bytes.to_vec()));
        let name = if self.dtype == StoreDtype::F32 {
            key.to_string()
        } else {
            self.op("Cast", &[key], &[Attr::Int("to", TO_FLOAT)])
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
    let n = g.op("Cast", &[&n], &[Attr::Int("to", TO_FLOAT)]);
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

/// Writes `generator` as an ONNX model (with external data above protobuf's size limit).
pub fn write_generator<B: Backend>(
    path: &Path,
    generator: &Generator<B>,
    config: &ModelConfig,
    dtype: StoreDtype,
) -> Result<Written, WeightsError> {
    onnx_file::write(path, model(generator, config, dtype), INLINE_LIMIT)
}

/// The generator's `ModelProto`, weights inline.
pub fn model<B: Backend>(
    generator: &Generator<B>,
    config: &ModelConfig,
    dtype: StoreDtype,
) -> ModelProto {
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

fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => DimValue::DimValue(*v as i64),
                Dim::Named(n) => DimValue::DimParam(n.to_string()),
            }),
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: DataType::Float as i32,
        shape: Some(TensorShapeProto { dim }),
    };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
        }),
    }
}

/// The model around the graph `g`: `side` fixes the image size (a full model), `quarter` the
/// heatmap's; `None` leaves them dynamic (`H`, `W`).
pub(crate) fn finish(g: Graph, side: Option<usize>, quarter: Option<usize>) -> ModelProto {
    use Dim::{Fixed, Named};
    let hw = || side.map_or([Named("H"), Named("W")], |s| [Fixed(s), Fixed(s)]);
    let [h, w] = hw();
    let [h2, w2] = hw();
    let (h4, w4) = quarter.map_or((Named("H/4"), Named("W/4")), |q| (Fixed(q), Fixed(q)));
    let graph = GraphProto {
        node: g.nodes,
        name: "ugatit_generator".into(),
        initializer: g.initializers,
        input: vec![value_info("input", &[Named("N"), Fixed(3), h, w])],
        output: vec![
            value_info("image", &[Named("N"), Fixed(3), h2, w2]),
            value_info("cam_logit", &[Named("N"), Fixed(2)]),
            value_info("heatmap", &[Named("N"), Fixed(1), h4, w4]),
        ],
    };
    ModelProto {
        ir_version: IR_VERSION,
        producer_name: "ugatit-rs".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    }
}
