//! Training U-GAT-IT: configs, data, the official training step, and runs with exact resume.

pub mod bench;
pub mod config;
pub mod data;
pub mod eval;
pub mod grads;
pub mod log;
pub mod loss_scale;
pub mod mirror;
pub mod parallel;
pub mod run;
pub mod sample;
pub mod schedule;
pub mod step;
pub mod toy_data;
pub mod trainer_state;
