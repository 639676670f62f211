//! U-GAT-IT (Kim et al., ICLR 2020) in Burn: the networks of the paper, faithful to the official
//! UGATIT-pytorch code, and nothing else (no file formats, no I/O: those are `ugatit-store`'s).
//!
//! - Networks: [`Generator`] (full and light), [`Discriminator`] (global and local by depth),
//!   their blocks ([`norm`], [`cam`], [`spectral_norm`], [`resnet_block`],
//!   [`resnet_ada_iln_block`]), the six networks of a model ([`nets`]), the TensorFlow
//!   generator variant ([`tf`]) and the [`loss`]es.
//! - [`params`]: how each block reads and writes its tensors under the official
//!   `state_dict` keys, from and into an in-memory [`StateDict`].
//!
//! With the same weights and inputs the networks give the official code's outputs to float32
//! rounding; the storage crate's golden tests check this against fixtures made by the PyTorch
//! reference.

pub mod any_generator;
pub mod cam;
pub mod config;
pub mod discriminator;
pub mod generator;
pub mod init;
pub mod kernels;
mod key_error;
pub mod layers;
pub mod loss;
pub mod nets;
pub mod norm;
pub mod params;
pub mod precision;
pub mod resnet_ada_iln_block;
pub mod resnet_block;
pub mod spectral_norm;
pub mod tf;

pub use any_generator::{AnyGenerator, Variant};
pub use config::{ConfigError, ModelConfig};
pub use discriminator::{Discriminator, DiscriminatorOutput};
pub use generator::{Generator, GeneratorOutput};
pub use key_error::KeyError;
pub use nets::{Direction, Ugatit, NETWORK_NAMES};
pub use params::StateDict;
pub use precision::Precision;
pub use spectral_norm::Mode;

/// The CPU backend: burn's Flex (multi-threaded, SIMD).
pub type Cpu = burn::backend::Flex;
