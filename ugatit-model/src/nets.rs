//! The six networks of a U-GAT-IT model, under their official checkpoint names.

use std::cell::RefCell;
use std::collections::BTreeSet;

use burn::prelude::*;

use crate::config::ModelConfig;
use crate::discriminator::Discriminator;
use crate::generator::Generator;
use crate::params::{check_all_used, ParamSource, StateDict, StateWriter, TensorSource};
use crate::KeyError;

/// Translation direction; `A2B` is the official `genA2B` (selfie to anime in selfie2anime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    A2B,
    B2A,
}

impl Direction {
    /// The official name of the generator for this direction.
    pub fn generator_name(self) -> &'static str {
        match self {
            Direction::A2B => "genA2B",
            Direction::B2A => "genB2A",
        }
    }

    /// `a2b` or `b2a`, as on the command line and in file metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::A2B => "a2b",
            Direction::B2A => "b2a",
        }
    }
}

impl std::str::FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "a2b" => Ok(Direction::A2B),
            "b2a" => Ok(Direction::B2A),
            _ => Err(format!("unknown direction {s:?}: use a2b or b2a")),
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Official names of the six networks, in the order the official checkpoint lists them.
pub const NETWORK_NAMES: [&str; 6] = ["genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB"];

/// Both generators and the four discriminators (global and local for each domain).
#[derive(Module, Debug)]
pub struct Ugatit<B: Backend> {
    pub gen_a2b: Generator<B>,
    pub gen_b2a: Generator<B>,
    pub dis_ga: Discriminator<B>,
    pub dis_gb: Discriminator<B>,
    pub dis_la: Discriminator<B>,
    pub dis_lb: Discriminator<B>,
}

impl<B: Backend> Ugatit<B> {
    /// A freshly initialised model (PyTorch's default initialisers), reproducible from `seed`
    /// on every device.
    pub fn init(cfg: &ModelConfig, seed: u64, device: &B::Device) -> Self {
        let random = |net| ParamSource::random(seed, net, device);
        // Random sources have no keys to miss, so building cannot fail.
        let build = || -> Result<Self, KeyError> {
            Ok(Self {
                gen_a2b: Generator::load(&random("genA2B"), cfg)?,
                gen_b2a: Generator::load(&random("genB2A"), cfg)?,
                dis_ga: Discriminator::load(&random("disGA"), cfg.ch, cfg.n_dis_global)?,
                dis_gb: Discriminator::load(&random("disGB"), cfg.ch, cfg.n_dis_global)?,
                dis_la: Discriminator::load(&random("disLA"), cfg.ch, cfg.n_dis_local)?,
                dis_lb: Discriminator::load(&random("disLB"), cfg.ch, cfg.n_dis_local)?,
            })
        };
        match build() {
            Ok(m) => m,
            Err(e) => unreachable!("random initialisation looked up a key: {e}"),
        }
    }

    /// Builds all six networks from a state dict keyed `genA2B.DownBlock.1.weight`, ...
    pub fn from_state_dict(
        cfg: &ModelConfig,
        sd: &StateDict,
        device: &B::Device,
    ) -> Result<Self, KeyError> {
        let nets = split_networks(sd)?;
        let part = |name: &str| nets.get(name).cloned().unwrap_or_default();
        Ok(Self {
            gen_a2b: generator_from(cfg, &part("genA2B"), "genA2B", device)?,
            gen_b2a: generator_from(cfg, &part("genB2A"), "genB2A", device)?,
            dis_ga: discriminator_from(cfg.ch, cfg.n_dis_global, &part("disGA"), "disGA", device)?,
            dis_gb: discriminator_from(cfg.ch, cfg.n_dis_global, &part("disGB"), "disGB", device)?,
            dis_la: discriminator_from(cfg.ch, cfg.n_dis_local, &part("disLA"), "disLA", device)?,
            dis_lb: discriminator_from(cfg.ch, cfg.n_dis_local, &part("disLB"), "disLB", device)?,
        })
    }

    /// Every tensor, keyed as in an official checkpoint (`genA2B.DownBlock.1.weight`, ...),
    /// spectral-norm vectors included.
    pub fn to_state_dict(&self) -> StateDict {
        let mut sd = StateDict::new();
        let mut w = StateWriter::new(&mut sd);
        self.gen_a2b.save(&mut w.pp("genA2B"));
        self.gen_b2a.save(&mut w.pp("genB2A"));
        self.dis_ga.save(&mut w.pp("disGA"));
        self.dis_gb.save(&mut w.pp("disGB"));
        self.dis_la.save(&mut w.pp("disLA"));
        self.dis_lb.save(&mut w.pp("disLB"));
        sd
    }

    /// The generator for `direction`.
    pub fn generator(&self, direction: Direction) -> &Generator<B> {
        match direction {
            Direction::A2B => &self.gen_a2b,
            Direction::B2A => &self.gen_b2a,
        }
    }
}

/// Splits `genA2B.x.y` keys into one map per network; a key of no known network is unexpected.
pub fn split_networks(
    sd: &StateDict,
) -> Result<std::collections::BTreeMap<String, StateDict>, KeyError> {
    let mut nets: std::collections::BTreeMap<String, StateDict> = Default::default();
    let mut stray = Vec::new();
    for (k, v) in sd {
        match k.split_once('.') {
            Some((net, rest)) if NETWORK_NAMES.contains(&net) => {
                nets.entry(net.to_string())
                    .or_default()
                    .insert(rest.to_string(), v.clone());
            }
            _ => stray.push(k.clone()),
        }
    }
    if stray.is_empty() {
        Ok(nets)
    } else {
        Err(KeyError::Unexpected {
            net: "the checkpoint".into(),
            keys: stray,
        })
    }
}

/// Builds a generator from its own tensors (keys without the `genA2B.` prefix); `net` names it
/// in errors and scopes its parameter ids.
pub fn generator_from<B: Backend>(
    cfg: &ModelConfig,
    sd: &dyn TensorSource,
    net: &str,
    device: &B::Device,
) -> Result<Generator<B>, KeyError> {
    let used = RefCell::new(BTreeSet::new());
    let g = Generator::load(&ParamSource::from_dict(sd, &used, net, device), cfg)?;
    check_all_used(sd, &used, net)?;
    Ok(g)
}

/// Builds a discriminator of `n_layers` from its own tensors.
pub fn discriminator_from<B: Backend>(
    ch: usize,
    n_layers: usize,
    sd: &dyn TensorSource,
    net: &str,
    device: &B::Device,
) -> Result<Discriminator<B>, KeyError> {
    let used = RefCell::new(BTreeSet::new());
    let d = Discriminator::load(
        &ParamSource::from_dict(sd, &used, net, device),
        ch,
        n_layers,
    )?;
    check_all_used(sd, &used, net)?;
    Ok(d)
}

/// Number of trainable values in `module`: every parameter except the spectral-norm vectors
/// (the official counts). Reads shapes only, so it does not initialise lazy parameters.
pub fn trainable_params<B: Backend, M: Module<B>>(module: &M) -> usize {
    struct Counter {
        path: Vec<String>,
        total: usize,
    }
    impl<B: Backend> burn::module::ModuleVisitor<B> for Counter {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            // `SpectralNorm`'s `u` and `v` live in the module named `sn`.
            if !self.path.iter().any(|p| p == "sn") {
                self.total += param.lazy_shape().num_elements();
            }
        }
    }
    let mut counter = Counter {
        path: Vec::new(),
        total: 0,
    };
    module.visit(&mut counter);
    counter.total
}

/// The tensors of network `name` from a prefixed state dict, without the prefix.
pub fn network(sd: &StateDict, name: &str) -> StateDict {
    let prefix = format!("{name}.");
    sd.iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}
