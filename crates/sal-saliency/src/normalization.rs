//! The per-channel normalisation of training images, defined once: the constants of the data
//! sets and of the papers' training scripts, torchvision's formula, and its inverse.
//!
//! It lives beside the detectors because SaliencyMix's saliency depends on it: the released
//! code hands OpenCV the *normalised* float image (the paper-code input, docs/saliency.md), and
//! the intended u8 input has to be recovered from a normalised batch by inverting it.

/// `x = (v / 255 - mean) / std` per channel, `mean` and `std` in [0, 1] units as torchvision's
/// `Normalize` takes them. Channel order is the image's (R, G, B for colour).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// The normalisations the papers' recipes and the data sets use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum KnownNormalization {
    /// CIFAR-10/100 in the SaliencyMix, CutMix and Cutout code: mean (125.3, 123.0, 113.9)/255,
    /// std (63.0, 62.1, 66.7)/255.
    Cifar,
    /// ImageNet (torchvision; SaliencyMix's ImageNet script, Tiny-ImageNet recipes): mean
    /// (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    Imagenet,
    /// Fashion-MNIST's own training-set pixel mean and standard deviation (a test in sal-train
    /// measures them on the data).
    FashionMnist,
    /// MNIST's usual constants (the PyTorch examples'): mean 0.1307, std 0.3081.
    Mnist,
}

impl KnownNormalization {
    pub fn normalization(self) -> Normalization {
        let (mean, std): (Vec<f64>, Vec<f64>) = match self {
            Self::Cifar => (
                [125.3, 123.0, 113.9].iter().map(|v| v / 255.0).collect(),
                [63.0, 62.1, 66.7].iter().map(|v| v / 255.0).collect(),
            ),
            Self::Imagenet => (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225]),
            Self::FashionMnist => (vec![0.2860], vec![0.3530]),
            Self::Mnist => (vec![0.1307], vec![0.3081]),
        };
        Normalization { mean, std }
    }
}

/// Why a mean/std pair cannot normalise.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "mean {mean:?} / std {std:?}: expected equally long, non-empty lists with finite means and \
     positive finite stds"
)]
pub struct NormalizationError {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Normalization {
    /// Number of channels it applies to.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    pub fn validate(&self) -> Result<(), NormalizationError> {
        let ok = !self.mean.is_empty()
            && self.mean.len() == self.std.len()
            && self.std.iter().all(|s| s.is_finite() && *s > 0.0)
            && self.mean.iter().all(|m| m.is_finite());
        if ok {
            Ok(())
        } else {
            Err(NormalizationError {
                mean: self.mean.clone(),
                std: self.std.clone(),
            })
        }
    }

    /// The forward formula with its constants rounded to f32 once, for per-pixel use.
    pub fn normalizer(&self) -> Normalizer {
        Normalizer {
            mean: self.mean.iter().map(|&m| m as f32).collect(),
            std: self.std.iter().map(|&s| s as f32).collect(),
        }
    }

    /// An interleaved (HWC, or gray) u8 image normalised, same layout.
    pub fn normalise_interleaved(&self, pixels: &[u8], channels: usize) -> Vec<f32> {
        let n = self.normalizer();
        pixels
            .iter()
            .enumerate()
            .map(|(i, &v)| n.apply(v, i % channels))
            .collect()
    }

    /// The inverse on host values, fused with the cast: `round((x * std + mean) * 255)` clamped
    /// to [0, 255] per channel, for planar values (`[M, C, H, W]` flattened, `channels` planes
    /// of `plane` values per image). Exact whenever `x` came from [`Normalizer::apply`]: the u8
    /// image a normalised batch was made from. Computed as `x * (255 std) + 255 mean` in f32,
    /// rounded half to even, as sal-core's device version of it does.
    pub fn to_u8_planar(&self, values: &[f32], channels: usize, plane: usize) -> Vec<u8> {
        // Adding 2^23 to a float in [0, 256) rounds it to an integer, half to even (the FPU's
        // rounding mode, as `round_ties_even`), and leaves that integer in the low mantissa
        // bits: reading them is the cast, and the loop vectorises where `as u8` does not.
        const ROUND: f32 = 8_388_608.0;
        let (scale, shift) = self.inverse_f32();
        let mut out = vec![0u8; values.len()];
        for (k, (src, dst)) in values.chunks(plane).zip(out.chunks_mut(plane)).enumerate() {
            let (s, m) = (scale[k % channels], shift[k % channels]);
            for (x, y) in src.iter().zip(dst.iter_mut()) {
                *y = ((x * s + m).clamp(0.0, 255.0) + ROUND).to_bits() as u8;
            }
        }
        out
    }

    /// `(255 std, 255 mean)` per channel in f32: the inverse as one multiply-add, shared by the
    /// host ([`Self::to_u8_planar`]) and device versions so both round identically.
    pub fn inverse_f32(&self) -> (Vec<f32>, Vec<f32>) {
        (
            self.std.iter().map(|s| (s * 255.0) as f32).collect(),
            self.mean.iter().map(|m| (m * 255.0) as f32).collect(),
        )
    }
}

/// [`Normalization`]'s formula with f32 constants: `(v as f32 / 255 - mean) / std`, two correctly
/// rounded f32 operations exactly as torchvision's `ToTensor` + `Normalize` compute it, so that
/// de-normalising and rounding gives the u8 value back.
#[derive(Debug, Clone)]
pub struct Normalizer {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Normalizer {
    #[inline]
    pub fn apply(&self, value: u8, channel: usize) -> f32 {
        self.apply_f32(value as f32, channel)
    }

    /// [`Self::apply`] of a value between two u8 levels (an interpolated pixel), in 0..=255.
    #[inline]
    pub fn apply_f32(&self, value: f32, channel: usize) -> f32 {
        (value / 255.0 - self.mean[channel]) / self.std[channel]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forward_formula_is_torchvision_s() {
        let got = KnownNormalization::Imagenet
            .normalization()
            .normalise_interleaved(&[0, 255, 128], 3);
        let want = [
            (0.0 - 0.485f32) / 0.229,
            (1.0 - 0.456f32) / 0.224,
            (128.0 / 255.0 - 0.406f32) / 0.225,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn the_inverse_recovers_every_u8_value() {
        for which in [
            KnownNormalization::Cifar,
            KnownNormalization::Imagenet,
            KnownNormalization::FashionMnist,
            KnownNormalization::Mnist,
        ] {
            let norm = which.normalization();
            let c = norm.channels();
            let n = norm.normalizer();
            let planar: Vec<f32> = (0..c)
                .flat_map(|ch| (0..=255u8).map(move |v| (ch, v)))
                .map(|(ch, v)| n.apply(v, ch))
                .collect();
            let back = norm.to_u8_planar(&planar, c, 256);
            let want: Vec<u8> = (0..c).flat_map(|_| 0..=255u8).collect();
            assert_eq!(back, want, "{which:?}");
        }
    }

    #[test]
    fn bad_statistics_are_rejected() {
        let bad = |mean: Vec<f64>, std: Vec<f64>| Normalization { mean, std }.validate().is_err();
        assert!(bad(vec![], vec![]));
        assert!(bad(vec![0.5], vec![0.5, 0.5]));
        assert!(bad(vec![0.5], vec![0.0]));
        assert!(bad(vec![f64::NAN], vec![0.5]));
        assert!(!bad(vec![0.5], vec![0.25]));
    }
}
