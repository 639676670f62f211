//! Flat maps of tensors keyed by the official UGATIT-pytorch names, and the two directions
//! between them and our modules: [`ParamSource`] builds modules (from a map, or randomly
//! initialised), [`StateWriter`] flattens them back.
//!
//! Each block's `load` and `save` name its tensors exactly as the official `state_dict` does, so
//! "which official tensor fills this field" is answered in the block's own file.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Param, ParamId, RunningState};
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::init::{fnv1a, Init};
use crate::KeyError;

/// Tensors of one network (or of several, with `genA2B.`-style prefixes), in float32.
pub type StateDict = BTreeMap<String, TensorData>;

/// Where a module's parameters come from while it is being built.
pub struct ParamSource<'a, B: Backend> {
    origin: Origin<'a>,
    /// Network name, e.g. `genA2B`: scopes parameter ids and error messages.
    net: &'a str,
    /// Dotted prefix of the block being built, inside the network.
    path: String,
    device: B::Device,
}

enum Origin<'a> {
    Dict {
        tensors: &'a StateDict,
        used: &'a RefCell<BTreeSet<String>>,
    },
    Random {
        seed: u64,
    },
}

impl<B: Backend> Clone for ParamSource<'_, B> {
    fn clone(&self) -> Self {
        Self {
            origin: match &self.origin {
                Origin::Dict { tensors, used } => Origin::Dict { tensors, used },
                Origin::Random { seed } => Origin::Random { seed: *seed },
            },
            net: self.net,
            path: self.path.clone(),
            device: self.device.clone(),
        }
    }
}

impl<'a, B: Backend> ParamSource<'a, B> {
    /// Reads the tensors of network `net` from `tensors` (keys without the network prefix),
    /// recording each key it uses in `used`.
    pub fn from_dict(
        tensors: &'a StateDict,
        used: &'a RefCell<BTreeSet<String>>,
        net: &'a str,
        device: &B::Device,
    ) -> Self {
        Self {
            origin: Origin::Dict { tensors, used },
            net,
            path: String::new(),
            device: device.clone(),
        }
    }

    /// Initialises network `net` randomly, as PyTorch's default initialisers do.
    pub fn random(seed: u64, net: &'a str, device: &B::Device) -> Self {
        Self {
            origin: Origin::Random { seed },
            net,
            path: String::new(),
            device: device.clone(),
        }
    }

    /// The source for a sub-block (`DownBlock.1`, `UpBlock1_2`, ...).
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        let mut next = self.clone();
        next.path = self.key(&name.to_string());
        next
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }

    fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.path, name)
        }
    }

    /// Stable id from the network and key: the same parameter gets the same id however the
    /// module was built, so optimiser state saved with one run re-attaches in the next.
    fn id(&self, key: &str) -> ParamId {
        ParamId::from(fnv1a(&format!("{}.{}", self.net, key)))
    }

    fn lookup(&self, key: &str, shape: &[usize]) -> Result<Option<TensorData>, KeyError> {
        let Origin::Dict { tensors, used } = &self.origin else {
            return Ok(None);
        };
        let data = tensors.get(key).ok_or_else(|| KeyError::Missing {
            net: self.net.to_string(),
            key: key.to_string(),
        })?;
        if data.shape.as_slice() != shape {
            return Err(KeyError::Shape {
                net: self.net.to_string(),
                key: key.to_string(),
                found: data.shape.to_vec(),
                expected: shape.to_vec(),
            });
        }
        used.borrow_mut().insert(key.to_string());
        Ok(Some(data.clone()))
    }

    /// A trainable tensor of the given official shape.
    pub fn param<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        init: Init,
    ) -> Result<Param<Tensor<B, D>>, KeyError> {
        let key = self.key(name);
        let id = self.id(&key);
        match self.lookup(&key, &shape)? {
            Some(data) => Ok(Param::initialized(
                id,
                Tensor::from_data(data, &self.device).require_grad(),
            )),
            None => Ok(lazy_random(
                id,
                shape,
                init,
                self.seed_for(id),
                &self.device,
            )),
        }
    }

    /// A linear layer's weight: official layout `[out, in]`, kept as `[in, out]` so the forward
    /// pass is a plain `x @ w` without a transpose of the (possibly 268M-element) matrix.
    pub fn linear_weight(
        &self,
        name: &str,
        out: usize,
        inp: usize,
    ) -> Result<Param<Tensor<B, 2>>, KeyError> {
        let key = self.key(name);
        let id = self.id(&key);
        match self.lookup(&key, &[out, inp])? {
            Some(data) => {
                let t = transpose_data(data, out, inp);
                Ok(Param::initialized(
                    id,
                    Tensor::from_data(t, &self.device).require_grad(),
                ))
            }
            None => Ok(lazy_random(
                id,
                [inp, out],
                Init::torch_default(inp),
                self.seed_for(id),
                &self.device,
            )),
        }
    }

    /// A persistent, untrained vector (spectral norm's `u` and `v`).
    pub fn state(&self, name: &str, len: usize) -> Result<RunningState<Tensor<B, 1>>, KeyError> {
        let key = self.key(name);
        let id = self.id(&key);
        let data = match self.lookup(&key, &[len])? {
            Some(data) => data,
            None => TensorData::new(Init::UnitNormal.sample(len, self.seed_for(id)), [len]),
        };
        Ok(RunningState::with_id(
            id,
            Tensor::from_data(data, &self.device),
        ))
    }

    fn seed_for(&self, id: ParamId) -> u64 {
        match self.origin {
            Origin::Random { seed } => seed ^ id.val(),
            Origin::Dict { .. } => 0,
        }
    }
}

fn lazy_random<B: Backend, const D: usize>(
    id: ParamId,
    shape: [usize; D],
    init: Init,
    seed: u64,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::uninitialized(
        id,
        move |device: &B::Device, require_grad| {
            let n = shape.iter().product();
            let t = Tensor::from_data(TensorData::new(init.sample(n, seed), shape), device);
            if require_grad {
                t.require_grad()
            } else {
                t
            }
        },
        device.clone(),
        true,
        shape.into(),
    )
}

/// `[rows, cols]` row-major data transposed to `[cols, rows]`.
fn transpose_data(data: TensorData, rows: usize, cols: usize) -> TensorData {
    let v = data.convert::<f32>().into_vec::<f32>().unwrap_or_default();
    let mut t = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    TensorData::new(t, [cols, rows])
}

/// Checks that every tensor of `tensors` was used while building network `net`.
pub fn check_all_used(
    tensors: &StateDict,
    used: &RefCell<BTreeSet<String>>,
    net: &str,
) -> Result<(), KeyError> {
    let used = used.borrow();
    let extra: Vec<String> = tensors
        .keys()
        .filter(|k| !used.contains(*k))
        .cloned()
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(KeyError::Unexpected {
            net: net.to_string(),
            keys: extra,
        })
    }
}

/// Collects a module's tensors under their official names.
pub struct StateWriter<'a> {
    out: &'a mut StateDict,
    path: String,
}

impl<'a> StateWriter<'a> {
    pub fn new(out: &'a mut StateDict) -> Self {
        Self {
            out,
            path: String::new(),
        }
    }

    /// The writer for a sub-block.
    pub fn pp(&mut self, name: impl std::fmt::Display) -> StateWriter<'_> {
        let path = self.key(&name.to_string());
        StateWriter {
            out: self.out,
            path,
        }
    }

    fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.path, name)
        }
    }

    pub fn tensor<B: Backend, const D: usize>(&mut self, name: &str, t: Tensor<B, D>) {
        let key = self.key(name);
        self.out.insert(key, t.into_data().convert::<f32>());
    }

    /// Writes a `[in, out]` linear weight back in the official `[out, in]` layout.
    pub fn linear_weight<B: Backend>(&mut self, name: &str, w: Tensor<B, 2>) {
        self.tensor(name, w.transpose());
    }
}
