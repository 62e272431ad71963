//! SaliencyMix (Uddin et al., ICLR 2021), as in the official `SaliencyMix_CIFAR/saliencymix.py`:
//! CutMix with the random box centre replaced by the saliency peak of the
//! source image.
//!
//! With probability `prob` per batch: `lam ~ Beta(beta, beta)`, `perm = randperm(N)`, the
//! saliency map of ONE source image `x[perm[0]]`, its peak `argmax((map * 255) as u8)` (first
//! in row-major order), a box of sides `int(S * sqrt(1 - lam))` centred there and clipped, the
//! same box pasted from `x[perm]` into every image, `lam = 1 - area / (H * W)`
//! ([`BoxScope::Batch`], the released code). The paper describes a box per source image:
//! [`BoxScope::PerSample`]. The five mixing styles of the paper's §3.4 choose which extreme of
//! the source map the patch is cut around and where it lands in the target ([`MixingStyle`]).

use burn::tensor::{Int, Tensor};
use rand::rngs::StdRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::boxes::{BoxPair, anchored_pair, area_lambda, cut_size, device_boxes};
use crate::detector::{
    DetectorChoice, HostDetector, HostInput, Normalization, Peak, quantised_peak, to_u8_range,
};
use crate::device_ops::{
    box_areas, first_argmax, first_argmin, float_tensor, index_tensor, paste_box_pairs,
    paste_boxes, paste_shared_box, unravel,
};
use crate::mixer::{BatchMixer, MixBatch, MixOutput, SaliencyInput};
use crate::pair::{PairMix, PairMixer, Pairs, Pool, mix_permuted};
use crate::sampling::{SymmetricBeta, probability};
use crate::spectral_residual::spectral_residual;
use crate::targets::{LabelSmoothing, OwnWeight};
use crate::trace::{BoxPairs, Regions, Weights};
use crate::{ConfigError, MixError};

/// How many boxes a batch gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoxScope {
    /// One box for the whole batch, from the saliency of source image `x[perm[0]]`: the
    /// released code (default).
    Batch,
    /// A box per sample, from its own source image's saliency: the paper's description.
    PerSample,
}

/// The paper's §3.4 mixing styles: where the patch is cut in the source and where it lands in
/// the target. "Non-salient" is the least salient pixel (the map's first minimum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MixingStyle {
    /// Around the source's peak, pasted at the same place in the target (default, the paper's
    /// choice and the released code).
    SalientToCorresponding,
    /// Around the source's peak, pasted around the target's peak.
    SalientToSalient,
    /// Around the source's peak, pasted around the target's least salient pixel.
    SalientToNonSalient,
    /// Around the source's least salient pixel, pasted around the target's peak.
    NonSalientToSalient,
    /// Around the source's least salient pixel, pasted around the target's.
    NonSalientToNonSalient,
}

impl MixingStyle {
    /// (source anchor, target anchor; `None` = the source's position).
    fn peaks(self) -> (Peak, Option<Peak>) {
        match self {
            Self::SalientToCorresponding => (Peak::Max, None),
            Self::SalientToSalient => (Peak::Max, Some(Peak::Max)),
            Self::SalientToNonSalient => (Peak::Max, Some(Peak::Min)),
            Self::NonSalientToSalient => (Peak::Min, Some(Peak::Max)),
            Self::NonSalientToNonSalient => (Peak::Min, Some(Peak::Min)),
        }
    }
}

/// `method = "saliencymix"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaliencyMixConfig {
    /// `lam ~ Beta(beta, beta)`. Default 1.0 (the released code).
    pub beta: f64,
    /// Probability to mix a batch. Default 0.5 (the released CIFAR setting; ImageNet: 1.0).
    pub prob: f64,
    /// Default "fine-grained" (the u8 image; "fine-grained-paper-code" reproduces the released
    /// code's float input).
    pub detector: DetectorChoice,
    /// Default "batch" (the released code).
    pub scope: BoxScope,
    /// Default "salient-to-corresponding".
    pub style: MixingStyle,
    /// Dataset mean per channel in [0, 1] units, to de-normalise before a u8 detector. Default:
    /// the training data's normalisation, given by the trainer.
    pub mean: Option<Vec<f64>>,
    /// Dataset std per channel, as `mean`.
    pub std: Option<Vec<f64>>,
    /// Label smoothing eps. Default 0.
    pub label_smoothing: f64,
}

impl Default for SaliencyMixConfig {
    fn default() -> Self {
        Self {
            beta: 1.0,
            prob: 0.5,
            detector: DetectorChoice::FineGrained,
            scope: BoxScope::Batch,
            style: MixingStyle::SalientToCorresponding,
            mean: None,
            std: None,
            label_smoothing: 0.0,
        }
    }
}

impl SaliencyMixConfig {
    /// Builds the mixer. `dataset` is the training data's normalisation (used unless the
    /// config gives `mean` and `std`); a u8 detector needs one of the two.
    pub fn init(&self, dataset: Option<&Normalization>) -> Result<SaliencyMix, ConfigError> {
        // The paper-code fine-grained detector gets the normalised float image, as the released
        // code hands it to OpenCV; the other classic detectors the de-normalised u8 image.
        let host = |name, input| HostDetector::named(name, input).map(Source::Host);
        let source = match self.detector {
            DetectorChoice::FineGrained => host("fine-grained", HostInput::U8)?,
            DetectorChoice::FineGrainedPaperCode => {
                host("fine-grained-paper-code", HostInput::Normalised)?
            }
            DetectorChoice::SpectralResidual => host("spectral-residual", HostInput::U8)?,
            DetectorChoice::FrequencyTuned => host("frequency-tuned", HostInput::U8)?,
            DetectorChoice::SpectralResidualDevice => {
                Source::Device(DeviceSaliency::SpectralResidual)
            }
            DetectorChoice::Given => Source::Device(DeviceSaliency::Given),
        };
        let needs_u8 = match &source {
            Source::Host(d) => d.input == HostInput::U8,
            Source::Device(DeviceSaliency::SpectralResidual) => true,
            Source::Device(DeviceSaliency::Given) => false,
        };
        let normalization = match (&self.mean, &self.std) {
            (Some(mean), Some(std)) => Some(Normalization {
                mean: mean.clone(),
                std: std.clone(),
            }),
            (None, None) => dataset.cloned(),
            _ => {
                return Err(ConfigError::Missing {
                    field: "mean/std",
                    why: "give both the mean and the std, or neither",
                });
            }
        };
        if let Some(n) = &normalization {
            crate::detector::validate(n)?;
        } else if needs_u8 {
            return Err(ConfigError::Missing {
                field: "mean/std",
                why: "this detector reads the u8 image, so the normalisation must be undone",
            });
        }
        Ok(SaliencyMix {
            lambda: SymmetricBeta::new("beta", self.beta)?,
            prob: probability("prob", self.prob)?,
            smoothing: LabelSmoothing::new(self.label_smoothing)?,
            source,
            scope: self.scope,
            style: self.style,
            normalization,
        })
    }
}

const NAME: &str = "saliencymix";

/// Where the saliency maps come from.
#[derive(Debug)]
enum Source {
    /// A classic detector on images read back to the host.
    Host(HostDetector),
    /// Maps that are tensors on the batch's device already.
    Device(DeviceSaliency),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceSaliency {
    /// [`spectral_residual()`] of the de-normalised images.
    SpectralResidual,
    /// The caller's maps in [`MixBatch::saliency`], which describe the pool.
    Given,
}

#[derive(Debug)]
pub struct SaliencyMix {
    lambda: SymmetricBeta,
    prob: f64,
    smoothing: LabelSmoothing,
    source: Source,
    scope: BoxScope,
    style: MixingStyle,
    normalization: Option<Normalization>,
}

/// Box anchors `(row, col)` per box (one box for batch scope, N otherwise).
// One value per batch: a tensor handle is larger than a Vec, and boxing it buys nothing.
#[allow(clippy::large_enum_variant)]
enum Anchors {
    Host {
        source: Vec<(usize, usize)>,
        target: Vec<(usize, usize)>,
    },
    /// Flat pixel indices `[M]` on the device.
    Device {
        source: Tensor<1, Int>,
        target: Tensor<1, Int>,
    },
}

impl SaliencyMix {
    /// A SaliencyMix with any host detector (a custom [`sal_saliency::StaticSaliency`]).
    pub fn with_host_detector(
        config: &SaliencyMixConfig,
        detector: HostDetector,
        normalization: Option<Normalization>,
    ) -> Result<Self, ConfigError> {
        if detector.input == HostInput::U8 && normalization.is_none() {
            return Err(ConfigError::Missing {
                field: "mean/std",
                why: "this detector reads the u8 image, so the normalisation must be undone",
            });
        }
        Ok(Self {
            lambda: SymmetricBeta::new("beta", config.beta)?,
            prob: probability("prob", config.prob)?,
            smoothing: LabelSmoothing::new(config.label_smoothing)?,
            source: Source::Host(detector),
            scope: config.scope,
            style: config.style,
            normalization,
        })
    }

    /// The box anchors: the peaks of the maps of the pool images each sample takes its patch
    /// from (`pool[index[0]]` alone for batch scope) and, for the styles that need them, of the
    /// targets.
    fn anchors(&self, pairs: &Pairs<'_>) -> Result<Anchors, MixError> {
        match &self.source {
            Source::Host(detector) => self.host_anchors(detector, pairs),
            Source::Device(saliency) => self.device_anchors(*saliency, pairs),
        }
    }

    /// Anchors from a host detector: `(map * 255) as u8` peaks with the official code's
    /// first-extreme rule.
    fn host_anchors(
        &self,
        detector: &HostDetector,
        pairs: &Pairs<'_>,
    ) -> Result<Anchors, MixError> {
        let (source_peak, target_peak) = self.style.peaks();
        let batch = self.scope == BoxScope::Batch;
        let first = |t: &Tensor<4>, i: usize| t.clone().slice(i..i + 1);
        let norm = self.normalization.as_ref();
        let pool = pairs.pool_images();
        let pool_maps = if batch {
            detector.maps(first(&pool, pairs.source_index[0]), norm, NAME)?
        } else {
            detector.maps(pool, norm, NAME)?
        };
        let source: Vec<(usize, usize)> = if batch {
            vec![quantised_peak(&pool_maps[0], source_peak)]
        } else {
            pairs
                .source_index
                .par_iter()
                .map(|&j| quantised_peak(&pool_maps[j], source_peak))
                .collect()
        };
        let target = match target_peak {
            None => source.clone(),
            Some(peak) if batch => {
                let maps = detector.maps(first(&pairs.target, 0), norm, NAME)?;
                vec![quantised_peak(&maps[0], peak)]
            }
            Some(peak) => {
                // The pool's maps are the targets' maps when the pool is the batch itself.
                let maps = match pairs.pool {
                    Pool::Targets => pool_maps,
                    Pool::Images(_) => detector.maps(pairs.target.clone(), norm, NAME)?,
                };
                maps.par_iter().map(|m| quantised_peak(m, peak)).collect()
            }
        };
        Ok(Anchors::Host { source, target })
    }

    /// Anchors from maps on the device: flat indices of each map's first extreme.
    fn device_anchors(
        &self,
        saliency: DeviceSaliency,
        pairs: &Pairs<'_>,
    ) -> Result<Anchors, MixError> {
        let (source_peak, target_peak) = self.style.peaks();
        let batch = self.scope == BoxScope::Batch;
        let device = pairs.target.device();
        let peak_of = |values: Tensor<2>, peak: Peak| match peak {
            Peak::Max => first_argmax(values),
            Peak::Min => first_argmin(values),
        };
        let source_rows = if batch {
            index_tensor(&pairs.source_index[..1], &device)
        } else {
            index_tensor(pairs.source_index, &device)
        };
        let source_maps =
            self.device_maps(saliency, pairs, pairs.pool_images(), Some(source_rows))?;
        let source = peak_of(source_maps, source_peak);
        let target = match target_peak {
            None => source.clone(),
            Some(peak) => {
                if saliency == DeviceSaliency::Given && matches!(pairs.pool, Pool::Images(_)) {
                    return Err(MixError::MissingSaliency {
                        method: NAME,
                        what: "the targets' own saliency (given maps describe the pool)",
                    });
                }
                let rows = batch.then(|| index_tensor(&[0], &device));
                peak_of(
                    self.device_maps(saliency, pairs, pairs.target.clone(), rows)?,
                    peak,
                )
            }
        };
        Ok(Anchors::Device { source, target })
    }

    /// The saliency values `[K, H * W]` of `images[rows]` (all rows when `None`): the caller's
    /// maps, or the device spectral residual quantised as the official code does.
    fn device_maps(
        &self,
        saliency: DeviceSaliency,
        pairs: &Pairs<'_>,
        images: Tensor<4>,
        rows: Option<Tensor<1, Int>>,
    ) -> Result<Tensor<2>, MixError> {
        let [m, _, h, w] = images.dims();
        let maps = match saliency {
            DeviceSaliency::Given => {
                let maps = pairs.saliency.clone().ok_or(MixError::MissingSaliency {
                    method: NAME,
                    what: "a saliency map per image (detector = \"given\")",
                })?;
                let dims = maps.dims();
                if dims != [m, h, w] {
                    return Err(MixError::SaliencyShape {
                        method: NAME,
                        got: dims.to_vec(),
                        expected: format!("[{m}, {h}, {w}]"),
                    });
                }
                select_rows(maps, rows)
            }
            DeviceSaliency::SpectralResidual => {
                let norm = self.normalization.as_ref().expect("checked at init");
                let u8s = to_u8_range(norm, select_rows(images, rows), NAME)?;
                // The official code takes the peak of `(map * 255) as u8`.
                spectral_residual(u8s).mul_scalar(255.0).floor()
            }
        };
        let k = maps.dims()[0];
        Ok(maps.reshape([k, h * w]))
    }
}

/// `t[rows]` along the first axis, or all of `t`.
fn select_rows<const D: usize>(t: Tensor<D>, rows: Option<Tensor<1, Int>>) -> Tensor<D> {
    match rows {
        Some(rows) => t.select(0, rows),
        None => t,
    }
}

impl PairMixer for SaliencyMix {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prob(&self) -> f64 {
        self.prob
    }

    fn smoothing(&self) -> LabelSmoothing {
        self.smoothing
    }

    fn mix_pairs(&self, pairs: Pairs<'_>, rng: &mut StdRng) -> Result<PairMix, MixError> {
        let [n, _, h, w] = pairs.target.dims();
        let lam = self.lambda.sample(rng);
        let cut = cut_size(h, w, lam);
        let anchors = self.anchors(&pairs)?;
        let device = pairs.target.device();
        let index = || index_tensor(pairs.source_index, &device);
        let aligned = self.style == MixingStyle::SalientToCorresponding;
        Ok(match anchors {
            Anchors::Host { source, target } if source.len() == 1 => {
                let pair = anchored_pair(h, w, cut, source[0], target[0]);
                let lam = area_lambda(h, w, &pair.target);
                let pool = pairs.pool_images();
                PairMix {
                    images: paste_shared_box(pairs.target, pool, index(), pair),
                    own_weight: OwnWeight::Batch(lam),
                    weights: Weights::batch(lam, n),
                    regions: Regions::Boxes(BoxPairs::Host(vec![pair; n])),
                }
            }
            Anchors::Host { source, target } => {
                let boxes: Vec<BoxPair> = source
                    .iter()
                    .zip(&target)
                    .map(|(&s, &t)| anchored_pair(h, w, cut, s, t))
                    .collect();
                let lams: Vec<f64> = boxes.iter().map(|p| area_lambda(h, w, &p.target)).collect();
                let images = paste_box_pairs(pairs.target, pairs.pool, pairs.source_index, &boxes);
                let weights = float_tensor(lams.iter().map(|&l| l as f32).collect(), [n], &device);
                PairMix {
                    images,
                    own_weight: OwnWeight::PerSample(weights),
                    weights: Weights::Host(lams),
                    regions: Regions::Boxes(BoxPairs::Host(boxes)),
                }
            }
            Anchors::Device { source, target } => {
                let (source_rows, source_cols) = unravel(source, w);
                let (target_rows, target_cols) = unravel(target, w);
                let (sr, tr) = device_boxes::anchored_spans(source_rows, target_rows, cut.0, h);
                let (sc, tc) = device_boxes::anchored_spans(source_cols, target_cols, cut.1, w);
                let expand = |b: Tensor<2, Int>| b.expand([n, 4]);
                let source_boxes = expand(device_boxes::stack(&sr, &sc));
                let target_boxes = expand(device_boxes::stack(&tr, &tc));
                let pool = pairs.pool_images();
                let images = paste_boxes(
                    pairs.target,
                    pool,
                    Some(index()),
                    target_boxes.clone(),
                    source_boxes.clone(),
                    aligned,
                );
                // lam = 1 - area / (H * W), per sample, in f32 on the device.
                let own = box_areas(target_boxes.clone())
                    .div_scalar((h * w) as f64)
                    .neg()
                    .add_scalar(1.0);
                PairMix {
                    images,
                    own_weight: OwnWeight::PerSample(own.clone()),
                    weights: Weights::Device(own),
                    regions: Regions::Boxes(BoxPairs::Device {
                        source: source_boxes,
                        target: target_boxes,
                    }),
                }
            }
        })
    }
}

impl BatchMixer for SaliencyMix {
    fn name(&self) -> &'static str {
        NAME
    }

    fn mixes_given_partners(&self) -> bool {
        true
    }

    fn saliency_input(&self) -> SaliencyInput {
        match self.source {
            Source::Device(DeviceSaliency::Given) => SaliencyInput::Given,
            _ => SaliencyInput::None,
        }
    }

    fn mix(&self, batch: MixBatch, rng: &mut StdRng) -> Result<MixOutput, MixError> {
        mix_permuted(self, batch, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::centred_box;
    use crate::detector::KnownNormalization;
    use crate::seed::step_rng;
    use crate::testing::{assert_box_mix_properties, assert_device_parity, host_vec, random_batch};
    use crate::trace::SampleRegion;
    use burn::tensor::{Device, TensorData};
    use proptest::prelude::*;
    use sal_saliency::{ImageData, SaliencyError, SaliencyMap, StaticSaliency};

    /// A test detector whose map is the gray value itself (channel 0 of a u8 image, /255):
    /// its peak is the brightest pixel, first in row-major order.
    struct Brightness;

    impl StaticSaliency for Brightness {
        fn name(&self) -> &'static str {
            "brightness"
        }
        fn compute(
            &self,
            image: &sal_saliency::ImageView<'_>,
        ) -> Result<SaliencyMap, SaliencyError> {
            let (h, w) = (image.height(), image.width());
            let data = match image.data() {
                ImageData::U8(d) => d[..h * w].iter().map(|&v| v as f32 / 255.0).collect(),
                ImageData::F32(d) => d[..h * w].to_vec(),
            };
            Ok(SaliencyMap {
                height: h,
                width: w,
                data,
            })
        }
    }

    fn brightness(config: &SaliencyMixConfig, input: HostInput) -> SaliencyMix {
        let detector = HostDetector {
            detector: Box::new(Brightness),
            input,
        };
        SaliencyMix::with_host_detector(
            config,
            detector,
            Some(KnownNormalization::Cifar.normalization()),
        )
        .unwrap()
    }

    fn always(scope: BoxScope, style: MixingStyle) -> SaliencyMixConfig {
        SaliencyMixConfig {
            prob: 1.0,
            scope,
            style,
            ..Default::default()
        }
    }

    const STYLES: [MixingStyle; 5] = [
        MixingStyle::SalientToCorresponding,
        MixingStyle::SalientToSalient,
        MixingStyle::SalientToNonSalient,
        MixingStyle::NonSalientToSalient,
        MixingStyle::NonSalientToNonSalient,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        #[test]
        fn every_scope_and_style_pastes_equal_boxes_with_the_kept_fraction_as_lambda(
            n in 1usize..5, colour in any::<bool>(), h in 1usize..11, w in 1usize..11,
            seed in 0u64..10_000, style in 0usize..5, per_sample in any::<bool>(),
        ) {
            let c = if colour { 3 } else { 1 };
            let scope = if per_sample { BoxScope::PerSample } else { BoxScope::Batch };
            let device = Device::flex();
            let mixer = brightness(&always(scope, STYLES[style]), HostInput::Normalised);
            let batch = random_batch(n, c, h, w, 4, seed, &device);
            let out = BatchMixer::mix(&mixer, batch.clone(), &mut step_rng(seed, 2)).unwrap();
            assert_box_mix_properties(&batch, &out);
        }

        #[test]
        fn the_default_box_is_centred_on_the_source_peak(
            n in 1usize..5, h in 2usize..11, w in 2usize..11, seed in 0u64..10_000,
        ) {
            let device = Device::flex();
            let config = always(BoxScope::Batch, MixingStyle::SalientToCorresponding);
            let mixer = brightness(&config, HostInput::Normalised);
            let mut batch = random_batch(n, 1, h, w, 4, seed, &device);
            // Brightness maps in [0, 1), where `(map * 255) as u8` is a plain truncation.
            batch.images = batch.images.add_scalar(2.0).div_scalar(4.0);
            let x = host_vec::<f32, 4>(batch.images.clone());
            let out = BatchMixer::mix(&mixer, batch, &mut step_rng(seed, 2)).unwrap();
            let samples = out.trace.samples();
            let src = samples[0].source.unwrap();
            let image = &x[src * h * w..(src + 1) * h * w];
            // The brightest pixel (first of ties), as (map * 255) as u8 of the raw values.
            let codes: Vec<u8> = image.iter().map(|&v| (v * 255.0) as u8).collect();
            let max = *codes.iter().max().unwrap();
            let peak = codes.iter().position(|&v| v == max).unwrap();
            let SampleRegion::Paste(pair) = samples[0].region else { panic!() };
            // Replay the stream for lambda: coin, permutation, then lambda.
            let mut replay = step_rng(seed, 2);
            let _ = crate::sampling::coin(&mut replay, 1.0);
            let _ = crate::sampling::permutation(&mut replay, n);
            let lam = SymmetricBeta::new("beta", 1.0).unwrap().sample(&mut replay);
            prop_assert_eq!(pair.target, centred_box(h, w, cut_size(h, w, lam), (peak / w, peak % w)));
            for s in &samples {
                let SampleRegion::Paste(p) = s.region else { panic!() };
                prop_assert_eq!(p, pair);
            }
        }
    }

    #[test]
    fn batch_scope_uses_the_peak_of_the_first_source_image() {
        // One bright pixel per image at known places; the box must be centred on the bright
        // pixel of image perm[0] (exact official arithmetic via `centred_box`).
        let device = Device::flex();
        let (n, h, w) = (4, 16, 16);
        let spots = [(2usize, 3usize), (8, 8), (15, 0), (5, 12)];
        let mut pixels = vec![0.1f32; n * h * w];
        for (i, &(r, c)) in spots.iter().enumerate() {
            pixels[i * h * w + r * w + c] = 0.9;
        }
        let batch = MixBatch::new(
            Tensor::from_data(TensorData::new(pixels, [n, 1, h, w]), &device),
            index_tensor(&[0, 1, 2, 3], &device),
            4,
        );
        let mixer = brightness(
            &always(BoxScope::Batch, MixingStyle::SalientToCorresponding),
            HostInput::Normalised,
        );
        for step in 0..20 {
            let mut rng = step_rng(11, step);
            let out = BatchMixer::mix(&mixer, batch.clone(), &mut rng).unwrap();
            let samples = out.trace.samples();
            let peak = spots[samples[0].source.unwrap()];
            let SampleRegion::Paste(pair) = samples[0].region else {
                panic!()
            };
            // Recover the cut from the drawn lambda: replay the stream.
            let mut replay = step_rng(11, step);
            let _ = crate::sampling::coin(&mut replay, 1.0);
            let _ = crate::sampling::permutation(&mut replay, n);
            let lam = SymmetricBeta::new("beta", 1.0).unwrap().sample(&mut replay);
            assert_eq!(pair.target, centred_box(h, w, cut_size(h, w, lam), peak));
        }
    }

    #[test]
    fn device_and_given_paths_match_the_host_path_on_given_maps() {
        // The "given" path (device peaks, device boxes) must pick the same boxes as a host
        // detector returning the same maps, for every style and scope.
        let device = Device::flex();
        let (n, c, h, w) = (5, 1, 9, 12);
        for (k, style) in STYLES.into_iter().enumerate() {
            for scope in [BoxScope::Batch, BoxScope::PerSample] {
                let batch = random_batch(n, c, h, w, 3, k as u64, &device);
                // Brightness on the normalised input is the image itself; images in [0, 1) make
                // it a proper map.
                let maps = batch
                    .images
                    .clone()
                    .reshape([n, h, w])
                    .add_scalar(2.0)
                    .div_scalar(4.0);
                let host = brightness(&always(scope, style), HostInput::Normalised);
                let given = SaliencyMixConfig {
                    detector: DetectorChoice::Given,
                    ..always(scope, style)
                }
                .init(None)
                .unwrap();
                let host_batch =
                    MixBatch::new(maps.clone().reshape([n, 1, h, w]), batch.labels.clone(), 3);
                let a = BatchMixer::mix(&host, host_batch, &mut step_rng(1, k as u64)).unwrap();
                // The given path peaks on the raw values it gets: hand it the u8 codes the host
                // path quantises to, so both rules see the same numbers.
                let quantised = maps.clone().mul_scalar(255.0).floor();
                let given_batch =
                    MixBatch::new(maps.reshape([n, 1, h, w]), batch.labels.clone(), 3)
                        .with_saliency(quantised);
                let b = BatchMixer::mix(&given, given_batch, &mut step_rng(1, k as u64)).unwrap();
                let (sa, sb) = (a.trace.samples(), b.trace.samples());
                for (x, y) in sa.iter().zip(&sb) {
                    assert_eq!(x.source, y.source);
                    assert_eq!(x.region, y.region, "{style:?} {scope:?}");
                    assert!((x.own_weight - y.own_weight).abs() < 1e-6);
                }
                assert_eq!(host_vec::<f32, 4>(a.images), host_vec::<f32, 4>(b.images));
            }
        }
    }

    /// The 32x32 fixture images as a normalised batch (CHW), with their names.
    fn fixture_batch(device: &Device) -> (Vec<String>, MixBatch) {
        let dir = crate::testing::fixtures_dir().join("saliency");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("input_norm_f32.npy").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut chw = Vec::new();
        for name in &names {
            let (hwc, shape) = crate::testing::read_npy(&dir.join(name).join("input_norm_f32.npy"));
            assert_eq!(shape, vec![32, 32, 3]);
            for ch in 0..3 {
                chw.extend((0..1024).map(|p| hwc[p * 3 + ch]));
            }
        }
        let n = names.len();
        let labels: Vec<usize> = (0..n).collect();
        let batch = MixBatch::new(
            Tensor::from_data(TensorData::new(chw, [n, 3, 32, 32]), device),
            index_tensor(&labels, device),
            n,
        );
        (names, batch)
    }

    /// `index.json`'s `[row, col]` argmax of `(map * 255) as u8` for `map` of case `name`.
    fn fixture_peak(name: &str, map: &str) -> (usize, usize) {
        let path = crate::testing::fixtures_dir().join("saliency/index.json");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let case = json["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["case"] == name)
            .unwrap();
        let p = &case[map];
        (
            p[0].as_u64().unwrap() as usize,
            p[1].as_u64().unwrap() as usize,
        )
    }

    #[test]
    fn real_detectors_centre_each_box_on_the_opencv_peak_of_its_source() {
        // Per-sample scope: every sample's box is the official box around the OpenCV reference
        // peak of its own source image (u8 fine-grained, the released code's float path, and
        // spectral residual), with the lambda the stream drew.
        let device = Device::flex();
        let (names, batch) = fixture_batch(&device);
        let n = names.len();
        for (detector, map) in [
            (DetectorChoice::FineGrained, "fg_on_u8"),
            (DetectorChoice::FineGrainedPaperCode, "fg_on_norm_f32"),
            (DetectorChoice::SpectralResidual, "sr_on_u8"),
        ] {
            let config = SaliencyMixConfig {
                detector,
                ..always(BoxScope::PerSample, MixingStyle::SalientToCorresponding)
            };
            let mixer = config
                .init(Some(&KnownNormalization::Cifar.normalization()))
                .unwrap();
            let out = BatchMixer::mix(&mixer, batch.clone(), &mut step_rng(3, 0)).unwrap();
            let mut replay = step_rng(3, 0);
            let _ = crate::sampling::coin(&mut replay, 1.0);
            let _ = crate::sampling::permutation(&mut replay, n);
            let cut = cut_size(
                32,
                32,
                SymmetricBeta::new("beta", 1.0).unwrap().sample(&mut replay),
            );
            for s in out.trace.samples() {
                let source = &names[s.source.unwrap()];
                let SampleRegion::Paste(pair) = s.region else {
                    panic!()
                };
                let expected = centred_box(32, 32, cut, fixture_peak(source, map));
                assert_eq!(pair.target, expected, "{detector:?} on {source}");
            }
        }
    }

    #[test]
    fn u8_detectors_need_the_normalisation() {
        let detector = HostDetector {
            detector: Box::new(Brightness),
            input: HostInput::U8,
        };
        assert!(
            SaliencyMix::with_host_detector(&SaliencyMixConfig::default(), detector, None).is_err()
        );
        let config = SaliencyMixConfig {
            detector: DetectorChoice::SpectralResidualDevice,
            ..Default::default()
        };
        assert!(config.init(None).is_err());
        assert!(
            config
                .init(Some(&KnownNormalization::Cifar.normalization()))
                .is_ok()
        );
    }

    #[test]
    fn same_seed_same_output_on_flex_and_wgpu() {
        for scope in [BoxScope::Batch, BoxScope::PerSample] {
            for style in [
                MixingStyle::SalientToCorresponding,
                MixingStyle::NonSalientToSalient,
            ] {
                let config = SaliencyMixConfig {
                    detector: DetectorChoice::Given,
                    ..always(scope, style)
                };
                assert_device_parity(&config.init(None).unwrap(), 4, 3, 8, 7, 3, Some((8, 7)));
                let host = brightness(&always(scope, style), HostInput::U8);
                assert_device_parity(&host, 3, 3, 6, 6, 5, None);
            }
        }
    }
}
