//! Parity with the official code on any backend: the networks' outputs against the PyTorch and
//! TensorFlow references ([`forwards`]), four official training steps ([`steps`]), and
//! data-parallel replicas against one state ([`replicas`]). One test binary, run on the device
//! `UGATIT_TEST_DEVICE` names: the CPU by default; the test command runs it again with
//! `UGATIT_KERNELS=off` (Flex with burn's composed ops, the ones a GPU runs) and in the wgpu
//! build on Mesa's software Vulkan device; `scripts/gpu-check.sh` runs it on CUDA.

#[path = "../common/mod.rs"]
mod common;
mod forwards;
mod replicas;
mod steps;
