//! Tensors keyed by the official UGATIT-pytorch names, and the two directions between them and
//! our modules: [`ParamSource`] builds modules (from any [`TensorSource`]: an in-memory
//! [`StateDict`], or a file the storage crate reads tensor by tensor; or randomly initialised),
//! [`StateWriter`] flattens them back.
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

/// Where a network's tensors are read from, by official key (without the network prefix).
/// The model crate reads through this trait and does no I/O itself: the storage crate
/// implements it for files, so a module can be built straight from disk, one tensor at a time.
pub trait TensorSource {
    /// Every key the source holds, sorted.
    fn keys(&self) -> Vec<String>;
    /// The shape of `key`, if the source holds it.
    fn shape(&self, key: &str) -> Option<Vec<usize>>;
    /// The tensor `key` as float32 data in its stored layout.
    fn read(&self, key: &str) -> Result<TensorData, String>;
    /// The `[rows, cols]` tensor `key` as `[cols, rows]` float32 data. A file source may read
    /// it transposed block by block, never holding both layouts at once.
    fn read_transposed(&self, key: &str) -> Result<TensorData, String> {
        let data = self.read(key)?;
        match data.shape.as_slice() {
            &[rows, cols] => Ok(transpose_data(data, rows, cols)),
            other => Err(format!("expected a matrix, found shape {other:?}")),
        }
    }
}

impl TensorSource for StateDict {
    fn keys(&self) -> Vec<String> {
        BTreeMap::keys(self).cloned().collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.get(key).map(|t| t.shape.to_vec())
    }

    fn read(&self, key: &str) -> Result<TensorData, String> {
        self.get(key)
            .cloned()
            .ok_or_else(|| format!("no tensor {key}"))
    }
}

/// The tensors of `inner` whose keys start with `prefix`, with the prefix removed: one network
/// (`genA2B.`) of a source that holds several.
pub struct Prefixed<'a> {
    pub inner: &'a dyn TensorSource,
    pub prefix: String,
}

impl<'a> Prefixed<'a> {
    /// Network `name` of `inner` (keys `name.…`).
    pub fn network(inner: &'a dyn TensorSource, name: &str) -> Self {
        Self {
            inner,
            prefix: format!("{name}."),
        }
    }
}

impl TensorSource for Prefixed<'_> {
    fn keys(&self) -> Vec<String> {
        self.inner
            .keys()
            .into_iter()
            .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_string))
            .collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.inner.shape(&format!("{}{key}", self.prefix))
    }

    fn read(&self, key: &str) -> Result<TensorData, String> {
        self.inner.read(&format!("{}{key}", self.prefix))
    }

    fn read_transposed(&self, key: &str) -> Result<TensorData, String> {
        self.inner.read_transposed(&format!("{}{key}", self.prefix))
    }
}

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
        tensors: &'a dyn TensorSource,
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
                Origin::Dict { tensors, used } => Origin::Dict {
                    tensors: *tensors,
                    used,
                },
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
        tensors: &'a dyn TensorSource,
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

    /// Reads `key` (of official shape `shape`) from a dict source, transposed if asked; `None`
    /// for a random source.
    fn lookup(
        &self,
        key: &str,
        shape: &[usize],
        transposed: bool,
    ) -> Result<Option<TensorData>, KeyError> {
        let Origin::Dict { tensors, used } = &self.origin else {
            return Ok(None);
        };
        let found = tensors.shape(key).ok_or_else(|| KeyError::Missing {
            net: self.net.to_string(),
            key: key.to_string(),
        })?;
        if found.as_slice() != shape {
            return Err(KeyError::Shape {
                net: self.net.to_string(),
                key: key.to_string(),
                found,
                expected: shape.to_vec(),
            });
        }
        let data = if transposed {
            tensors.read_transposed(key)
        } else {
            tensors.read(key)
        }
        .map_err(|reason| KeyError::Unreadable {
            net: self.net.to_string(),
            key: key.to_string(),
            reason,
        })?;
        used.borrow_mut().insert(key.to_string());
        Ok(Some(data))
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
        match self.lookup(&key, &shape, false)? {
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
        match self.lookup(&key, &[out, inp], true)? {
            Some(data) => Ok(Param::initialized(
                id,
                Tensor::from_data(data, &self.device).require_grad(),
            )),
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
        let data = match self.lookup(&key, &[len], false)? {
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
    transpose_block(&v, rows, cols, 0, &mut t);
    TensorData::new(t, [cols, rows])
}

/// Writes the transpose of `block` (`rows` x `cols`, row-major: columns `first_col..` of a
/// `rows`-row matrix) into `out`, the `[total_cols, rows]` transposed matrix. Tiled, so both
/// sides are read and written a cache line at a time (an element loop over a 268M-element
/// `FC.0` weight is dominated by cache misses).
pub fn transpose_block(block: &[f32], rows: usize, cols: usize, first_col: usize, out: &mut [f32]) {
    const TILE: usize = 64;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for c in c0..(c0 + TILE).min(cols) {
                let dst = &mut out[(first_col + c) * rows..][..rows];
                for r in r0..(r0 + TILE).min(rows) {
                    dst[r] = block[r * cols + c];
                }
            }
        }
    }
}

/// Checks that every tensor of `tensors` was used while building network `net`.
pub fn check_all_used(
    tensors: &dyn TensorSource,
    used: &RefCell<BTreeSet<String>>,
    net: &str,
) -> Result<(), KeyError> {
    let used = used.borrow();
    let extra: Vec<String> = tensors
        .keys()
        .into_iter()
        .filter(|k| !used.contains(k))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_matrices_of_any_shape_blockwise() {
        for (rows, cols) in [(1, 1), (3, 200), (130, 7), (65, 129)] {
            let v: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let t = transpose_data(TensorData::new(v.clone(), [rows, cols]), rows, cols);
            assert_eq!(t.shape.to_vec(), [cols, rows]);
            let t = t.into_vec::<f32>().unwrap();
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(t[c * rows + r], v[r * cols + c]);
                }
            }
            // Column blocks written one at a time give the same matrix.
            let mut out = vec![0f32; rows * cols];
            for first in (0..cols).step_by(50) {
                let n = 50.min(cols - first);
                let block: Vec<f32> = (0..rows)
                    .flat_map(|r| v[r * cols + first..][..n].to_vec())
                    .collect();
                transpose_block(&block, rows, n, first, &mut out);
            }
            assert_eq!(out, t);
        }
    }
}
