//! Training U-GAT-IT: configs, data, the official training step, and runs with exact resume.

pub mod config;
pub mod data;
pub mod schedule;
pub mod step;
