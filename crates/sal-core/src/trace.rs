//! What a mixer did to a batch, for logs and pictures.
//!
//! The trace keeps what the mixer computed where it computed it: boxes drawn on the host stay
//! host values, per-sample quantities computed on the device (saliency peaks, calibrated
//! lambdas, grafting masks) stay tensors, so tracing costs no device-to-host read.
//! [`MixTrace::samples`] reads everything back into one [`SampleTrace`] per sample, enough
//! to draw a "target | source | mixed" picture with the region outlined (the sal-figures crate
//! draws it).

use burn::tensor::{Int, Tensor};

use crate::boxes::{BoxPair, PixelBox, boxes_to_host};

/// What one call of a mixer did.
#[derive(Debug, Clone)]
pub struct MixTrace {
    /// The method's config name, e.g. `"cutmix"`.
    pub method: &'static str,
    /// False when the application coin said no (or during warm-up): images and labels passed
    /// through unchanged.
    pub applied: bool,
    /// Sample `i` took its mixed-in content from input sample `source_index[i]` (a permutation
    /// for most methods; HybridMix's independent partners `z`). `None`: no other image is used.
    pub source_index: Option<Vec<usize>>,
    /// Weight of each sample's own label in its soft target (before label smoothing); the rest
    /// goes to the label of `source_index[i]`.
    pub own_weight: Weights,
    /// Where the pixels came from.
    pub regions: Regions,
    /// HybridMix only: the SalfMix step applied to the targets and to the partner pool first.
    pub self_mix: Option<Box<SelfMixTrace>>,
    /// Saliency Grafting trains on the original batch and the grafted batch together: when
    /// true, the output holds the N originals first and the N mixed samples after them, and
    /// this trace describes the mixed half.
    pub originals_prepended: bool,
}

/// Per-sample numbers, on the host or still on the device.
// One value per batch: a tensor handle is larger than a Vec, and boxing it buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Weights {
    Host(Vec<f64>),
    Device(Tensor<1>),
}

impl Weights {
    /// The same weight for `n` samples.
    pub fn batch(w: f64, n: usize) -> Self {
        Self::Host(vec![w; n])
    }

    /// The values on the host (reads the device tensor).
    pub fn to_vec(&self) -> Vec<f64> {
        match self {
            Self::Host(v) => v.clone(),
            Self::Device(t) => t
                .clone()
                .try_into_vec_as::<f64>()
                .expect("a float tensor reads as f64"),
        }
    }
}

/// Per-sample box pairs, on the host or still on the device (`[N, 4]` each).
// One value per batch: a tensor handle is larger than a Vec, and boxing it buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum BoxPairs {
    Host(Vec<BoxPair>),
    Device {
        source: Tensor<2, Int>,
        target: Tensor<2, Int>,
    },
}

impl BoxPairs {
    /// The pairs on the host (reads the device tensors).
    pub fn to_vec(&self) -> Vec<BoxPair> {
        match self {
            Self::Host(v) => v.clone(),
            Self::Device { source, target } => boxes_to_host(source)
                .into_iter()
                .zip(boxes_to_host(target))
                .map(|(source, target)| BoxPair { source, target })
                .collect(),
        }
    }
}

/// The regions a mixer changed.
// One value per batch: a tensor handle is larger than a Vec, and boxing it buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Regions {
    /// Nothing spatial (Mixup blends whole images; an unapplied call).
    None,
    /// Sample `i`'s `target` box received the pixels of the `source` box of its source image
    /// (CutMix, SaliencyMix; SalfMix inside the image itself).
    Boxes(BoxPairs),
    /// ResizeMix: the whole source image, resized into each sample's box.
    Resized(Vec<PixelBox>),
    /// Cutout: each sample's box was set to 0 (the dataset mean after normalisation).
    Holes(Vec<PixelBox>),
    /// Saliency Grafting: a cell grid per sample, `[N, gh, gw]`, 1 = cell grafted from the
    /// source; upsampled to the image with nearest-neighbour (`floor(y * gh / H)`).
    GridMask(Tensor<3>),
}

/// HybridMix's SalfMix step (paper Algorithm 2, lines 10-11).
#[derive(Debug, Clone)]
pub struct SelfMixTrace {
    /// The targets after SalfMix, `[N, C, H, W]`.
    pub targets: Tensor<4>,
    /// The partner pool after SalfMix, `[N, C, H, W]`; sample `i`'s partner is
    /// `pool[source_index[i]]`.
    pub pool: Tensor<4>,
    /// The patch moved inside each target (source box -> target box).
    pub target_patches: BoxPairs,
    /// The patch moved inside each pool image.
    pub pool_patches: BoxPairs,
}

/// Everything about one sample, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleTrace {
    /// The input sample its foreign content came from.
    pub source: Option<usize>,
    /// Weight of its own label (the rest belongs to `source`'s label).
    pub own_weight: f64,
    pub region: SampleRegion,
    /// HybridMix: the SalfMix patch moved inside the target before mixing.
    pub self_patch: Option<BoxPair>,
    /// HybridMix: the SalfMix patch moved inside the partner before mixing.
    pub source_self_patch: Option<BoxPair>,
}

/// The region of one sample.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleRegion {
    None,
    /// `source` box of the source image pasted at `target` (same image for SalfMix).
    Paste(BoxPair),
    /// Whole source image resized into this box.
    Resized(PixelBox),
    /// This box set to 0.
    Hole(PixelBox),
    /// Grid mask, row-major `rows x cols` cells, true = grafted from the source.
    Grid {
        rows: usize,
        cols: usize,
        cells: Vec<bool>,
    },
}

impl SampleRegion {
    /// True where pixel `(y, x)` of an `height x width` mixed image came from the source image
    /// (or, for SalfMix and Cutout, was overwritten).
    pub fn covers(&self, y: usize, x: usize, height: usize, width: usize) -> bool {
        match self {
            Self::None => false,
            Self::Paste(p) => p.target.contains(y, x),
            Self::Resized(b) | Self::Hole(b) => b.contains(y, x),
            Self::Grid { rows, cols, cells } => {
                cells[(y * rows / height) * cols + x * cols / width]
            }
        }
    }
}

impl MixTrace {
    /// A call that changed nothing.
    pub fn unapplied(method: &'static str, n: usize) -> Self {
        Self::within_images(method, false, n, Regions::None)
    }

    /// A method that edits each image on its own (Cutout, SalfMix): no partner, every sample
    /// keeps its whole label.
    pub fn within_images(method: &'static str, applied: bool, n: usize, regions: Regions) -> Self {
        Self {
            method,
            applied,
            source_index: None,
            own_weight: Weights::batch(1.0, n),
            regions,
            self_mix: None,
            originals_prepended: false,
        }
    }

    /// One host trace per mixed sample (reads device-resident parts).
    pub fn samples(&self) -> Vec<SampleTrace> {
        let weights = self.own_weight.to_vec();
        let n = weights.len();
        let regions: Vec<SampleRegion> = match &self.regions {
            Regions::None => vec![SampleRegion::None; n],
            Regions::Boxes(pairs) => pairs
                .to_vec()
                .into_iter()
                .map(SampleRegion::Paste)
                .collect(),
            Regions::Resized(b) => b.iter().copied().map(SampleRegion::Resized).collect(),
            Regions::Holes(b) => b.iter().copied().map(SampleRegion::Hole).collect(),
            Regions::GridMask(mask) => {
                let [_, rows, cols] = mask.dims();
                let cells: Vec<f32> = mask
                    .clone()
                    .try_into_vec_as::<f32>()
                    .expect("a float tensor reads as f32");
                cells
                    .chunks(rows * cols)
                    .map(|c| SampleRegion::Grid {
                        rows,
                        cols,
                        cells: c.iter().map(|&v| v > 0.5).collect(),
                    })
                    .collect()
            }
        };
        let (own_patch, pool_patch) = match &self.self_mix {
            Some(s) => (
                Some(s.target_patches.to_vec()),
                Some(s.pool_patches.to_vec()),
            ),
            None => (None, None),
        };
        (0..n)
            .map(|i| {
                let source = self.source_index.as_ref().map(|s| s[i]);
                SampleTrace {
                    source,
                    own_weight: weights[i],
                    region: regions[i].clone(),
                    self_patch: own_patch.as_ref().map(|p| p[i]),
                    source_self_patch: match (&pool_patch, source) {
                        (Some(p), Some(s)) => Some(p[s]),
                        _ => None,
                    },
                }
            })
            .collect()
    }
}
