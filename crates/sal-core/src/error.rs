//! What can go wrong when a mixer is configured or called.

use sal_saliency::SaliencyError;

/// A bad `[augmentation]` value, found when the mixer is built (before training starts).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A value outside its allowed range.
    #[error("augmentation.{field} = {value}: expected {expected}")]
    Invalid {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A value the method needs and neither the config nor the caller gave.
    #[error("augmentation.{field} is required here: {why}")]
    Missing {
        field: &'static str,
        why: &'static str,
    },
}

/// A batch the mixer cannot work on.
#[derive(Debug, thiserror::Error)]
pub enum MixError {
    #[error("{method}: the batch is empty")]
    EmptyBatch { method: &'static str },
    #[error("{method}: {labels} labels for {images} images")]
    LabelCount {
        method: &'static str,
        labels: usize,
        images: usize,
    },
    #[error("{method}: num_classes must be at least 1")]
    NoClasses { method: &'static str },
    #[error(
        "{method}: the given partners have shape {partners:?} with {labels} labels, expected \
         the batch's {expected:?}"
    )]
    PartnerShape {
        method: &'static str,
        partners: Vec<usize>,
        labels: usize,
        expected: Vec<usize>,
    },
    #[error(
        "{method} needs {what} in MixBatch::saliency as an [N, H, W] tensor, and none was given"
    )]
    MissingSaliency {
        method: &'static str,
        what: &'static str,
    },
    #[error("{method}: the saliency tensor has shape {got:?}, expected {expected}")]
    SaliencyShape {
        method: &'static str,
        got: Vec<usize>,
        expected: String,
    },
    #[error(
        "{method}: the images have {channels} channels but the normalisation has {stats} \
         means/stds"
    )]
    Normalization {
        method: &'static str,
        channels: usize,
        stats: usize,
    },
    #[error("{method}: {height}x{width} images are too small: {why}")]
    TooSmall {
        method: &'static str,
        height: usize,
        width: usize,
        why: &'static str,
    },
    #[error("{method}: the {detector} saliency detector failed: {source}")]
    Detector {
        method: &'static str,
        detector: &'static str,
        #[source]
        source: SaliencyError,
    },
}
