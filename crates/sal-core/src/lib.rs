//! Mixing augmentations as backend-agnostic burn tensor ops with soft targets.
//!
//! Every method implements [`BatchMixer`]: it takes a [`MixBatch`] (normalised images
//! `[N, C, H, W]` and hard labels on the training device, plus model-derived saliency where the
//! method needs it) and an explicit random stream, and returns a [`MixOutput`]: mixed images,
//! soft targets (`N x classes`, rows summing to 1) and a [`MixTrace`] of what it did (lambda
//! per sample, boxes or masks, the source of each sample) for logs and pictures.
//!
//! The pixel mixing runs on the batch's device (CPU flex, WGPU, CUDA); only SaliencyMix's
//! classic host detectors read images back. [`spectral_residual()`] computes SaliencyMix's
//! saliency on the device for the whole batch instead.
//!
//! | method | file | reference |
//! |---|---|---|
//! | [`Mixup`] | `mixup.rs` | Zhang et al. 2018, facebookresearch/mixup-cifar10 |
//! | [`Cutout`] | `cutout.rs` | DeVries & Taylor 2017, uoguelph-mlrg/Cutout |
//! | [`CutMix`] | `cutmix.rs` | Yun et al. 2019, clovaai/CutMix-PyTorch |
//! | [`ResizeMix`] | `resizemix.rs` | Qin et al. 2020, OpenMixup |
//! | [`SaliencyMix`] | `saliencymix.rs` | Uddin et al. 2021, SaliencyMix/SaliencyMix |
//! | [`SalfMix`] | `salfmix.rs` | Choi et al. 2022, Algorithm 1 |
//! | [`HybridMix`] v1/v2/v3 | `hybridmix.rs` | Choi et al. 2022, Algorithm 2 |
//! | [`SaliencyGrafting`] | `saliency_grafting.rs` | Park et al. 2022, §4 |
//!
//! Shared pieces live once: box arithmetic ([`boxes`]), random draws ([`sampling`]) from the
//! run's seeded streams ([`seed`], which also seeds the data pipeline), soft
//! targets ([`targets`]), device pixel ops ([`device_ops`]), the pair-op skeleton of two-image
//! methods ([`pair`]), saliency sources ([`detector`]). [`AugmentationConfig`] is the
//! `[augmentation]` config table; it builds an [`Augmentation`] that derives each training
//! step's random stream from the run seed.

#![forbid(unsafe_code)]

pub mod boxes;
pub mod config;
pub mod cutmix;
pub mod cutout;
pub mod detector;
pub mod device_ops;
mod error;
pub mod hybridmix;
pub mod mixer;
pub mod mixup;
pub mod model_saliency;
pub mod pair;
pub mod resizemix;
pub mod salfmix;
pub mod saliency_grafting;
pub mod saliencymix;
pub mod sampling;
pub mod seed;
pub mod spectral_residual;
pub mod targets;
#[cfg(test)]
mod testing;
pub mod trace;

pub use config::{Augmentation, AugmentationConfig};
pub use cutmix::{CutMix, CutMixConfig};
pub use cutout::{Cutout, CutoutConfig};
pub use detector::{DetectorChoice, KnownNormalization, Normalization};
pub use error::{ConfigError, MixError};
pub use hybridmix::{HybridMix, HybridMixConfig, PairConfig};
pub use mixer::{BatchMixer, MixBatch, MixOutput, Partners, Saliency, SaliencyInput, SaliencyPass};
pub use mixup::{Mixup, MixupConfig};
pub use resizemix::{ResizeMix, ResizeMixConfig};
pub use salfmix::{SalfMix, SalfMixConfig};
pub use saliency_grafting::{FeatureMapSource, SaliencyGrafting, SaliencyGraftingConfig};
pub use saliencymix::{BoxScope, MixingStyle, SaliencyMix, SaliencyMixConfig};
pub use spectral_residual::spectral_residual;
pub use trace::{MixTrace, SampleRegion, SampleTrace};
