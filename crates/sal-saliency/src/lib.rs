//! Native Rust ports of OpenCV's saliency detectors (opencv_contrib `modules/saliency`), plus
//! frequency-tuned saliency (Achanta et al. 2009).
//!
//! Every still-image detector implements [`StaticSaliency`]: it takes an [`ImageView`] (u8 or f32,
//! HWC or CHW, 1 or 3 channels, any size >= 1x1) and returns a [`SaliencyMap`] (f32, H x W).
//! [`compute_batch`] runs a detector over many images in parallel.
//!
//! | detector | OpenCV class | reference |
//! |---|---|---|
//! | [`FineGrained`] | `StaticSaliencyFineGrained` | Montabone & Soto 2010 |
//! | [`SpectralResidual`] | `StaticSaliencySpectralResidual` | Hou & Zhang 2007 |
//! | [`WangDudek`] (streaming) | `MotionSaliencyBinWangApr2014` | Wang & Dudek 2014 |
//! | [`FrequencyTuned`] | none | Achanta et al. 2009 |

mod image;
mod map;

pub use image::{ImageData, ImageView, Layout};
pub use map::SaliencyMap;

/// What can go wrong when a detector is handed an image.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SaliencyError {
    /// The buffer length does not match height x width x channels.
    #[error("image buffer holds {len} values, but {height}x{width}x{channels} needs {expected}")]
    BufferSize {
        len: usize,
        height: usize,
        width: usize,
        channels: usize,
        expected: usize,
    },
    /// Height or width is zero.
    #[error("image must be at least 1x1, got {height}x{width}")]
    Empty { height: usize, width: usize },
    /// Only 1- and 3-channel images are supported.
    #[error("{channels} channels: only 1 (gray) or 3 (colour) are supported")]
    Channels { channels: usize },
    /// The detector does not accept this element type (e.g. the paper-code fine-grained path
    /// needs f32).
    #[error("{detector} does not accept {dtype} input: {hint}")]
    Dtype {
        detector: &'static str,
        dtype: &'static str,
        hint: &'static str,
    },
}

/// A detector that turns one still image into a saliency map.
pub trait StaticSaliency: Send + Sync {
    /// Short name for logs and CLIs, e.g. `"fine-grained"`.
    fn name(&self) -> &'static str;
    /// Computes the saliency map of one image.
    fn compute(&self, image: &ImageView<'_>) -> Result<SaliencyMap, SaliencyError>;
}
