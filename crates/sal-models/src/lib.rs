//! The ResNet family (and SalfMix's RegNetX-200MF) of the SaliencyMix, SalfMix/HybridMix and Saliency Grafting papers, in
//! burn, built to match the reference implementations layer for layer and parameter for
//! parameter (`docs/models.md` lists each network with its source and count).
//!
//! Models:
//!
//! - [`Architecture`]: the names (`cifar-resnet18`, `resnet50`, `preact-resnet18`,
//!   `wrn-28-10`, `pyramidnet200-a240`, ...).
//! - [`ModelConfig`] (the trainer's `[model]` table) builds a [`Model`].
//! - [`Model`]: `forward`, and the `features` / `head` split with `forward_with_features`
//!   for methods that read the last feature map (Saliency Grafting, CAM).
//! - One file per family: [`resnet`] (CIFAR and ImageNet ResNets), [`preact_resnet`],
//!   `wide_resnet` (built from pre-activation blocks), [`pyramidnet`], [`regnet`].
//! - [`class_activation_map`]: Zhou et al. 2016 CAM at input resolution.
//! - [`num_trainable_params`]: the papers' parameter count; [`reference_count`]: the reference
//!   implementations' counts (`reference::REFERENCE_COUNTS`).
//!
//! [`kernels`]: how the models run. Every model applies its layers through a burn backend
//! extension with its own CPU (flex) kernels and autodiff node, burn's kernels on other
//! backends (`docs/models.md`, "How the models run"):
//!
//! - [`conv2d`] ([`GemmConv`]: im2col + GEMM);
//! - [`batch_norm()`] and [`batch_norm_relu`] ([`FusedBatchNorm`]: two passes each way);
//! - [`add_relu`] ([`AddRelu`]: a post-activation block's end).
//!
//! With the `wgpu` feature, `wgpu_device` is the wgpu device on the graphics API the
//! `SAL_WGPU_API` environment variable names (the trainer's and every parity test's).

#![deny(unsafe_code)]

#[cfg(feature = "wgpu")]
mod adapter;
mod architecture;
mod cam;
mod config;
pub mod dropout;
mod layers;
mod model;
mod params;
pub mod preact_resnet;
pub mod pyramidnet;
pub mod reference;
pub mod regnet;
pub mod resnet;
mod wide_resnet;

pub mod kernels;

#[cfg(feature = "wgpu")]
pub use adapter::{
    WGPU_API_VAR, WgpuApiError, parse_wgpu_api, wgpu_api, wgpu_device, wgpu_device_on,
};
pub use architecture::{Architecture, ArchitectureError, ResNetDepth};
pub use cam::{class_activation_map, class_activation_map_from_features};
pub use config::{ModelConfig, ModelError};
pub use layers::ClassifierHead;
pub use model::Model;
pub use params::num_trainable_params;
pub use reference::reference_count;

pub use kernels::{
    AddRelu, FusedBatchNorm, GemmConv, Precision, add_relu, autocast, batch_norm, batch_norm_relu,
    bf16_instructions, conv2d,
};
