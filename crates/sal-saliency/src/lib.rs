//! Native Rust ports of OpenCV's saliency detectors (opencv_contrib `modules/saliency`, 4.10),
//! plus frequency-tuned saliency (Achanta et al. 2009).
//!
//! Every still-image detector implements [`StaticSaliency`]: it takes an [`ImageView`] (u8 or f32,
//! HWC or CHW, 1 or 3 channels, any size >= 1x1) and returns a [`SaliencyMap`] (f32, H x W).
//! [`compute_batch`] runs a detector over many images in parallel (rayon), keeping their order.
//! [`WangDudek`] is different in kind: a background subtractor that consumes a frame SEQUENCE.
//!
//! | detector | OpenCV class | reference | agreement with OpenCV 4.10 |
//! |---|---|---|---|
//! | [`FineGrained`] (`Intended`) | `StaticSaliencyFineGrained`, u8 input | Montabone & Soto 2010 | bit-exact |
//! | [`FineGrained`] (`PaperCode`) | same, f32 input (what SaliencyMix's code runs) | docs/saliency.md | bit-exact on x86-64 |
//! | [`SpectralResidual`] | `StaticSaliencySpectralResidual` | Hou & Zhang 2007 | <= 1e-6 |
//! | [`WangDudek`] (streaming) | `MotionSaliencyBinWangApr2014` | Wang & Dudek 2014 | exact masks |
//! | [`FrequencyTuned`] | none | Achanta et al. 2009 | no reference |
//!
//! Input conventions shared by the OpenCV ports: a 3-channel image's channel 0 is read as BLUE,
//! as OpenCV does (SaliencyMix hands OpenCV RGB arrays, so the reference outputs are computed
//! that way); an f32 image given to a u8 algorithm is read as intensities in [0, 1] and quantised
//! the way OpenCV's `convertTo(CV_8U, 255)` does. Each detector's docs say what it does with f32
//! and 1-channel input. `docs/saliency.md` has pictures of every detector.

// The only unsafe code is the CPU-feature dispatch in `simd.rs`, which allows it locally.
#![deny(unsafe_code)]

mod batch;
mod fine_grained;
mod frequency_tuned;
mod image;
mod imgproc;
mod map;
mod normalization;
pub mod npy;
mod simd;
mod spectral_residual;
mod wang_dudek;

pub use batch::compute_batch;
pub use fine_grained::{FineGrained, FineGrainedMode};
pub use frequency_tuned::{ChannelOrder, FrequencyTuned};
pub use image::{ImageData, ImageView, Layout};
pub use map::SaliencyMap;
pub use normalization::{KnownNormalization, Normalization, NormalizationError, Normalizer};
pub use spectral_residual::{PolarMath, SpectralResidual};
pub use wang_dudek::{ForegroundMask, WangDudek};

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
    /// Only 1- and 3-channel images are supported (or the detector needs a specific count).
    #[error("{channels} channels: only 1 (gray) or 3 (colour) are supported here")]
    Channels { channels: usize },
    /// The detector does not accept this element type (e.g. the paper-code fine-grained path
    /// needs f32).
    #[error("{detector} does not accept {dtype} input: {hint}")]
    Dtype {
        detector: &'static str,
        dtype: &'static str,
        hint: &'static str,
    },
    /// A frame handed to a streaming detector does not have the size it was created for.
    #[error(
        "frame is {height}x{width}, but the detector was created for {expected_height}x{expected_width}"
    )]
    FrameSize {
        height: usize,
        width: usize,
        expected_height: usize,
        expected_width: usize,
    },
    /// No still-image detector has this name (see [`static_detector`]).
    #[error(
        "unknown saliency method {name:?}; expected one of: fine-grained, \
         fine-grained-paper-code, spectral-residual, frequency-tuned"
    )]
    UnknownMethod { name: String },
}

/// A detector that turns one still image into a saliency map.
pub trait StaticSaliency: Send + Sync {
    /// Short name for logs and CLIs, e.g. `"fine-grained"`.
    fn name(&self) -> &'static str;
    /// Computes the saliency map of one image.
    fn compute(&self, image: &ImageView<'_>) -> Result<SaliencyMap, SaliencyError>;
}

/// The names [`static_detector`] accepts, in the order the CLI lists them.
pub const STATIC_METHODS: [&str; 4] = [
    "fine-grained",
    "fine-grained-paper-code",
    "spectral-residual",
    "frequency-tuned",
];

/// The still-image detector called `name` (one of [`STATIC_METHODS`]) with default settings.
pub fn static_detector(name: &str) -> Result<Box<dyn StaticSaliency>, SaliencyError> {
    Ok(match name {
        "fine-grained" => Box::new(FineGrained::new(FineGrainedMode::Intended)),
        "fine-grained-paper-code" => Box::new(FineGrained::new(FineGrainedMode::PaperCode)),
        "spectral-residual" => Box::new(SpectralResidual::default()),
        "frequency-tuned" => Box::new(FrequencyTuned::default()),
        _ => {
            return Err(SaliencyError::UnknownMethod {
                name: name.to_string(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_method_has_a_detector_with_that_name() {
        for name in STATIC_METHODS {
            assert_eq!(static_detector(name).unwrap().name(), name);
        }
        assert!(matches!(
            static_detector("itti"),
            Err(SaliencyError::UnknownMethod { .. })
        ));
    }
}
