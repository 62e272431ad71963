//! Where SaliencyMix's saliency comes from, and how its peaks are read.
//!
//! Classic detectors (sal-saliency) run on the host: these are the only places in sal-core that
//! read images back from the device. The official SaliencyMix code hands OpenCV the
//! NORMALISED float image ([`DetectorChoice::FineGrainedPaperCode`]); the intended input is the
//! un-normalised u8 image, which needs the dataset's mean and std to undo the normalisation
//! (`round((x * std + mean) * 255)`, clamped). Peaks are taken on `(map * 255) as u8` with the
//! first-maximum rule, as the official code does (docs/saliency.md).

use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use sal_saliency::{ImageView, SaliencyMap, StaticSaliency};
use serde::{Deserialize, Serialize};

use crate::{ConfigError, MixError};

/// The `detector` of SaliencyMix's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorChoice {
    /// OpenCV `StaticSaliencyFineGrained` on the de-normalised u8 image: what the released code
    /// means to compute (default).
    FineGrained,
    /// The released code exactly: FineGrained on the normalised float image, with OpenCV's
    /// byte reinterpretation (a near-random peak; docs/saliency.md).
    FineGrainedPaperCode,
    /// OpenCV `StaticSaliencySpectralResidual` on the host, u8 input.
    SpectralResidual,
    /// The same spectral residual written as tensor ops on the batch's device
    /// ([`crate::spectral_residual()`]): no host round trip at all.
    SpectralResidualDevice,
    /// Frequency-tuned saliency (Achanta et al. 2009) on the host, u8 input.
    FrequencyTuned,
    /// A caller-given `[N, H, W]` saliency tensor in [`crate::MixBatch::saliency`]; peaks on its
    /// raw values.
    Given,
}

pub use sal_saliency::{KnownNormalization, Normalization};

/// [`Normalization::to_u8_planar`] as tensor ops on the batch's device: the u8 image (as f32
/// values) a normalised batch was made from. The same f32 multiply-add and round-half-to-even as
/// the host version, so both give the same bytes.
pub fn to_u8_range(
    normalization: &Normalization,
    images: Tensor<4>,
    method: &'static str,
) -> Result<Tensor<4>, MixError> {
    let [_, c, _, _] = images.dims();
    check_channels(normalization, c, method)?;
    let device = images.device();
    let (scale, shift) = normalization.inverse_f32();
    let column = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [1, c, 1, 1]), &device);
    Ok((images * column(scale) + column(shift))
        .round()
        .clamp(0.0, 255.0))
}

fn check_channels(
    normalization: &Normalization,
    channels: usize,
    method: &'static str,
) -> Result<(), MixError> {
    if channels == normalization.channels() {
        Ok(())
    } else {
        Err(MixError::Normalization {
            method,
            channels,
            stats: normalization.channels(),
        })
    }
}

/// Checks a configured normalisation, as a config error of the `mean`/`std` keys.
pub(crate) fn validate(normalization: &Normalization) -> Result<(), ConfigError> {
    normalization.validate().map_err(|e| ConfigError::Invalid {
        field: "mean/std",
        value: format!("{:?} / {:?}", e.mean, e.std),
        expected: "equally long, non-empty lists with finite means and positive stds",
    })
}

/// What a host detector is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostInput {
    /// The de-normalised u8 image (CHW).
    U8,
    /// The normalised float image as it is (CHW), like the released SaliencyMix code.
    Normalised,
}

/// A classic detector and its input, run on images read from the device.
pub struct HostDetector {
    pub detector: Box<dyn StaticSaliency>,
    pub input: HostInput,
}

impl std::fmt::Debug for HostDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostDetector")
            .field("detector", &self.detector.name())
            .field("input", &self.input)
            .finish()
    }
}

impl HostDetector {
    /// The sal-saliency detector `name` (`"fine-grained"`, `"fine-grained-paper-code"`,
    /// `"spectral-residual"`, `"frequency-tuned"`) with default settings.
    pub fn named(name: &str, input: HostInput) -> Result<Self, ConfigError> {
        let detector = sal_saliency::static_detector(name).map_err(|_| ConfigError::Invalid {
            field: "detector",
            value: name.into(),
            expected: "a detector sal-saliency provides",
        })?;
        Ok(Self { detector, input })
    }

    /// Saliency maps of `images` (`[M, C, H, W]`), computed in parallel on the host. For
    /// [`HostInput::U8`] the images are de-normalised on the device first.
    pub fn maps(
        &self,
        images: Tensor<4>,
        normalization: Option<&Normalization>,
        method: &'static str,
    ) -> Result<Vec<SaliencyMap>, MixError> {
        let [m, c, h, w] = images.dims();
        let per = c * h * w;
        let detector_error = |source| MixError::Detector {
            method,
            detector: self.detector.name(),
            source,
        };
        match self.input {
            HostInput::U8 => {
                let norm = normalization.expect("checked when the mixer was built");
                check_channels(norm, c, method)?;
                let values = read(images);
                // Each worker de-normalises its own image, so the conversion runs in parallel too.
                (0..m)
                    .into_par_iter()
                    .map(|i| {
                        let bytes = norm.to_u8_planar(&values[i * per..(i + 1) * per], c, h * w);
                        let view = ImageView::chw_u8(&bytes, c, h, w).map_err(detector_error)?;
                        self.detector.compute(&view).map_err(detector_error)
                    })
                    .collect()
            }
            HostInput::Normalised => {
                let values: Vec<f32> = read(images);
                (0..m)
                    .into_par_iter()
                    .map(|i| {
                        let view = ImageView::chw_f32(&values[i * per..(i + 1) * per], c, h, w)
                            .map_err(detector_error)?;
                        self.detector.compute(&view).map_err(detector_error)
                    })
                    .collect()
            }
        }
    }
}

fn read(t: Tensor<4>) -> Vec<f32> {
    t.try_into_vec_as::<f32>()
        .expect("a float tensor reads as f32")
}

/// Which extreme of a map anchors a box (SaliencyMix paper §3.4: "non-salient" is the least
/// important pixel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peak {
    Max,
    Min,
}

/// `(row, col)` of the first max / min of `(map * 255) as u8`, the official code's
/// `np.argmax(sal_u8)` (sal-saliency's [`SaliencyMap::to_u8_codes`] does the quantisation).
pub fn quantised_peak(map: &SaliencyMap, peak: Peak) -> (usize, usize) {
    match peak {
        Peak::Max => map.argmax_u8(),
        Peak::Min => {
            let codes = map.to_u8_codes();
            let mut best = 0;
            for (i, &k) in codes.iter().enumerate() {
                if k < codes[best] {
                    best = i;
                }
            }
            (best / map.width, best % map.width)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{devices, host_vec};

    #[test]
    fn quantised_peaks_take_the_first_code() {
        // 0.9990, 0.9995 and 0.9980 all quantise to 254: the first wins, although the float
        // maximum is the second.
        let ties = SaliencyMap {
            height: 1,
            width: 4,
            data: vec![0.5, 0.9990, 0.9995, 0.9980],
        };
        assert_eq!(quantised_peak(&ties, Peak::Max), (0, 1));
        let map = SaliencyMap {
            height: 2,
            width: 3,
            data: vec![0.5, 0.9999, 1.0, 0.003, 0.001, 0.2],
        };
        assert_eq!(quantised_peak(&map, Peak::Max), (0, 2));
        // 0.003 and 0.001 both quantise to 0: the first zero code is the minimum.
        assert_eq!(quantised_peak(&map, Peak::Min), (1, 0));
    }

    #[test]
    fn device_de_normalisation_recovers_the_u8_image_as_the_host_one_does() {
        let norm = KnownNormalization::Cifar.normalization();
        let normalizer = norm.normalizer();
        let v: Vec<u8> = (0..=255u8).step_by(5).collect();
        let n = v.len();
        for device in devices() {
            let x: Vec<f32> = (0..3)
                .flat_map(|c| v.iter().map(move |&b| (c, b)))
                .map(|(c, b)| normalizer.apply(b, c))
                .collect();
            let t = Tensor::from_data(TensorData::new(x, [1, 3, 1, n]), &device);
            let host = norm.to_u8_planar(&host_vec::<f32, 4>(t.clone()), 3, n);
            let back = host_vec::<f32, 4>(to_u8_range(&norm, t, "test").unwrap());
            let expected: Vec<f32> = (0..3).flat_map(|_| v.iter().map(|&b| b as f32)).collect();
            assert_eq!(back, expected);
            assert_eq!(host.iter().map(|&b| b as f32).collect::<Vec<_>>(), expected);
        }
    }
}
