//! U-GAT-IT (Kim et al., ICLR 2020) in Burn, faithful to the official UGATIT-pytorch code, and
//! every way its weights are stored.
//!
//! - Networks: [`Generator`] (full and light), [`Discriminator`] (global and local by depth),
//!   their blocks ([`norm`], [`cam`], [`spectral_norm`], [`resnet_block`],
//!   [`resnet_ada_iln_block`]) and the [`loss`]es.
//! - Storage: [`weights`] (official `.pt`, our safetensors files, shape inference),
//!   [`checkpoint`] (run folders, atomic checkpoints) and [`export`].
//!
//! With the same weights and inputs the networks give the official code's outputs to float32
//! rounding; the tests check this against fixtures made by the PyTorch reference.

pub mod any_generator;
pub mod cam;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod discriminator;
pub mod export;
pub mod generator;
pub mod init;
pub mod layers;
pub mod loss;
pub mod nets;
pub mod norm;
pub mod onnx;
pub mod pixels;
pub mod proto;
pub mod remote;
pub mod resnet_ada_iln_block;
pub mod resnet_block;
pub mod spectral_norm;
pub mod tf;
pub mod weights;

pub use config::{ConfigError, ModelConfig};
pub use device::DeviceChoice;
pub use discriminator::{Discriminator, DiscriminatorOutput};
pub use generator::{Generator, GeneratorOutput};
pub use nets::{Direction, Ugatit, NETWORK_NAMES};
pub use spectral_norm::Mode;
pub use weights::{load_generator, load_model, read_tensors, LoadedGenerator, WeightsError};

/// The CPU backend: burn's Flex (multi-threaded, SIMD).
pub type Cpu = burn::backend::Flex;
