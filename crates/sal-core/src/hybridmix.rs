//! HybridMix (Choi et al. 2022, §4.4, Algorithm 2; no code was released):
//! `x~, y~ = T_t(SalfMix(x_d), y_d, SalfMix(x_z), y_z)` for every sample `d` with a partner `z`
//! drawn uniformly from the batch (Algorithm 2 line 8: independent draws, not a permutation),
//! where `T_t` is Mixup (v1), SaliencyMix (v2) or CutMix (v3) (paper Table 2). The first
//! `warmup_epochs` epochs (1 in Algorithm 2: "if e > 1") train on the clean batch.
//!
//! The per-sample loop of Algorithm 2 runs batched: SalfMix is applied to every target and,
//! with fresh randomness, to every image of a partner pool, so `SalfMix(x_z)` is drawn
//! independently of `SalfMix(x_d)`; `T_t` then mixes the batch once with its own batch-level
//! parameters (lambda, box), as the released code of all three `T_t` does. Both SalfMix steps
//! use the same input-gradient saliency `M` of the clean batch (`MixBatch::saliency`).

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::cutmix::CutMixConfig;
use crate::detector::{DetectorChoice, Normalization};
use crate::device_ops::index_tensor;
use crate::mixer::{BatchMixer, MixBatch, MixOutput, SaliencyInput};
use crate::mixup::MixupConfig;
use crate::pair::{PairMixer, Pairs, Pool};
use crate::salfmix::{SalfMix, SalfMixConfig};
use crate::saliencymix::SaliencyMixConfig;
use crate::sampling::{coin, independent_indices};
use crate::targets::{mixed_targets, one_hot_targets};
use crate::trace::{MixTrace, Regions, SelfMixTrace, Weights};
use crate::{ConfigError, MixError};

/// `T_t`, the two-image method, with its own parameters: TOML `[augmentation.mix]` with
/// `method = "mixup"` (v1), `"saliencymix"` (v2) or `"cutmix"` (v3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum PairConfig {
    #[serde(rename = "mixup")]
    Mixup(MixupConfig),
    #[serde(rename = "saliencymix")]
    SaliencyMix(SaliencyMixConfig),
    #[serde(rename = "cutmix")]
    CutMix(CutMixConfig),
}

/// `method = "hybridmix"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridMixConfig {
    /// `T_t` (required). Its `prob` is the probability to mix a batch; its label smoothing
    /// applies.
    pub mix: PairConfig,
    /// SalfMix's pooled grid side `n`. Default: `H / 8` (4 for 32 px, 8 for 64 px).
    #[serde(default)]
    pub grid: Option<usize>,
    /// SalfMix's patch ratio `r`. Default 0.3.
    #[serde(default = "default_patch_ratio")]
    pub patch_ratio: f64,
    /// Epochs trained on the clean batch first. Default 1 (Algorithm 2: from epoch 2 on).
    #[serde(default = "default_warmup")]
    pub warmup_epochs: usize,
}

fn default_patch_ratio() -> f64 {
    0.3
}

fn default_warmup() -> usize {
    1
}

impl HybridMixConfig {
    /// HybridMix with `T_t` given, other fields at their defaults.
    pub fn new(mix: PairConfig) -> Self {
        Self {
            mix,
            grid: None,
            patch_ratio: default_patch_ratio(),
            warmup_epochs: default_warmup(),
        }
    }

    /// `dataset` is the training data's normalisation (v2's SaliencyMix needs it for u8
    /// detectors).
    pub fn init(&self, dataset: Option<&Normalization>) -> Result<HybridMix, ConfigError> {
        let mix: Box<dyn PairMixer> = match &self.mix {
            PairConfig::Mixup(c) => Box::new(c.init()?),
            PairConfig::CutMix(c) => Box::new(c.init()?),
            PairConfig::SaliencyMix(c) => {
                if c.detector == DetectorChoice::Given {
                    return Err(ConfigError::Invalid {
                        field: "mix.detector",
                        value: "given".into(),
                        expected: "a detector that sees the SalfMix-ed images (not \"given\")",
                    });
                }
                Box::new(c.init(dataset)?)
            }
        };
        let salfmix = SalfMixConfig {
            grid: self.grid,
            patch_ratio: self.patch_ratio,
            ..Default::default()
        }
        .init()?;
        Ok(HybridMix {
            mix,
            salfmix,
            warmup_epochs: self.warmup_epochs,
        })
    }
}

#[derive(Debug)]
pub struct HybridMix {
    mix: Box<dyn PairMixer>,
    salfmix: SalfMix,
    warmup_epochs: usize,
}

impl BatchMixer for HybridMix {
    fn name(&self) -> &'static str {
        "hybridmix"
    }

    fn saliency_input(&self) -> SaliencyInput {
        SaliencyInput::InputGradient
    }

    fn mix(&self, mut batch: MixBatch, rng: &mut StdRng) -> Result<MixOutput, MixError> {
        let [n, _, h, w] = batch.checked_dims(self.name())?;
        let smoothing = self.mix.smoothing();
        if batch.epoch < self.warmup_epochs {
            return Ok(batch.unchanged(self.name(), smoothing));
        }
        let saliency =
            batch.checked_saliency(self.name(), "the input-gradient saliency", Some([h, w]))?;
        let (targets, target_patches, _) =
            self.salfmix
                .self_mix(batch.images.clone(), saliency.clone(), 1.0, rng)?;
        if !coin(rng, self.mix.prob()) {
            return Ok(MixOutput {
                images: targets.clone(),
                targets: one_hot_targets(batch.labels, batch.num_classes, smoothing),
                trace: MixTrace {
                    method: self.name(),
                    applied: true,
                    source_index: None,
                    own_weight: Weights::batch(1.0, n),
                    regions: Regions::None,
                    self_mix: Some(Box::new(SelfMixTrace {
                        pool: targets.clone(),
                        targets,
                        pool_patches: target_patches.clone(),
                        target_patches,
                    })),
                    originals_prepended: false,
                },
            });
        }
        let partners = independent_indices(rng, n);
        let (pool, pool_patches, _) = self.salfmix.self_mix(batch.images, saliency, 1.0, rng)?;
        let mixed = self.mix.mix_pairs(
            Pairs {
                target: targets.clone(),
                pool: Pool::Images(pool.clone()),
                source_index: &partners,
                saliency: None,
            },
            rng,
        )?;
        let device = batch.labels.device();
        let soft = mixed_targets(
            batch.labels,
            index_tensor(&partners, &device),
            &mixed.own_weight,
            batch.num_classes,
            smoothing,
        );
        Ok(MixOutput {
            images: mixed.images,
            targets: soft,
            trace: MixTrace {
                method: self.name(),
                applied: true,
                source_index: Some(partners),
                own_weight: mixed.weights,
                regions: mixed.regions,
                self_mix: Some(Box::new(SelfMixTrace {
                    targets,
                    pool,
                    target_patches,
                    pool_patches,
                })),
                originals_prepended: false,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::BoxPair;
    use crate::detector::KnownNormalization;
    use crate::seed::step_rng;
    use crate::testing::{assert_device_parity, host_ints, host_vec, random_batch};
    use crate::trace::SampleRegion;
    use burn::tensor::{Device, Tensor, TensorData};
    use proptest::prelude::*;

    fn with_saliency(batch: MixBatch, seed: u64) -> MixBatch {
        let [n, _, h, w] = batch.images.dims();
        let mut rng = step_rng(seed, 99);
        let s: Vec<f32> = (0..n * h * w)
            .map(|_| rand::RngExt::random::<f32>(&mut rng))
            .collect();
        let device = batch.images.device();
        batch.with_saliency(Tensor::from_data(TensorData::new(s, [n, h, w]), &device))
    }

    fn v3() -> HybridMix {
        HybridMixConfig::new(PairConfig::CutMix(CutMixConfig {
            prob: 1.0,
            ..Default::default()
        }))
        .init(None)
        .unwrap()
    }

    /// The value of pixel (ch, r, col) of image `i` after SalfMix with patch `p`.
    fn self_mixed(
        x: &[f32],
        i: usize,
        ch: usize,
        r: usize,
        col: usize,
        p: BoxPair,
        dims: [usize; 3],
    ) -> f32 {
        let [c, h, w] = dims;
        let (r, col) = if p.target.contains(r, col) {
            (
                r - p.target.r1 + p.source.r1,
                col - p.target.c1 + p.source.c1,
            )
        } else {
            (r, col)
        };
        x[i * c * h * w + ch * h * w + r * w + col]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn v3_pastes_the_self_mixed_partner_into_the_self_mixed_target(
            n in 1usize..5, c in 1usize..3, h in 8usize..17, w in 8usize..17, seed in 0u64..10_000,
        ) {
            let device = Device::flex();
            let batch = with_saliency(random_batch(n, c, h, w, 4, seed, &device), seed).with_epoch(1);
            let x = host_vec::<f32, 4>(batch.images.clone());
            let labels = host_ints(batch.labels.clone());
            let out = v3().mix(batch, &mut step_rng(seed, 0)).unwrap();
            let y = host_vec::<f32, 4>(out.images);
            let t = host_vec::<f32, 2>(out.targets);
            for (i, s) in out.trace.samples().iter().enumerate() {
                let z = s.source.unwrap();
                let SampleRegion::Paste(cut) = s.region else { panic!() };
                let (own, other) = (s.self_patch.unwrap(), s.source_self_patch.unwrap());
                for ch in 0..c {
                    for r in 0..h {
                        for col in 0..w {
                            let want = if cut.target.contains(r, col) {
                                self_mixed(&x, z, ch, r, col, other, [c, h, w])
                            } else {
                                self_mixed(&x, i, ch, r, col, own, [c, h, w])
                            };
                            prop_assert_eq!(y[i * c * h * w + ch * h * w + r * w + col], want);
                        }
                    }
                }
                let kept = 1.0 - cut.target.area() as f64 / (h * w) as f64;
                prop_assert!((s.own_weight - kept).abs() < 1e-9);
                let row = &t[i * 4..(i + 1) * 4];
                prop_assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                let expected = if labels[z] == labels[i] { 1.0 } else { kept };
                prop_assert!((row[labels[i] as usize] as f64 - expected).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn the_first_epoch_is_clean_and_partners_are_independent_draws() {
        let device = Device::flex();
        let batch = with_saliency(random_batch(6, 3, 16, 16, 5, 1, &device), 1);
        let out = v3().mix(batch.clone(), &mut step_rng(0, 0)).unwrap();
        assert!(!out.trace.applied);
        assert_eq!(
            host_vec::<f32, 4>(out.images),
            host_vec::<f32, 4>(batch.images.clone())
        );
        // Over many steps some partner lists repeat an index (a permutation never does).
        let repeats = (0..50)
            .filter(|&s| {
                let out = v3()
                    .mix(batch.clone().with_epoch(1), &mut step_rng(1, s))
                    .unwrap();
                let mut z = out.trace.source_index.unwrap();
                z.sort();
                z.windows(2).any(|p| p[0] == p[1])
            })
            .count();
        assert!(
            repeats > 40,
            "{repeats}/50 partner lists had a repeat (expected ~98%)"
        );
    }

    #[test]
    fn every_version_runs_the_same_on_flex_and_wgpu() {
        let versions = [
            PairConfig::Mixup(MixupConfig::default()),
            PairConfig::CutMix(CutMixConfig {
                prob: 1.0,
                ..Default::default()
            }),
            PairConfig::SaliencyMix(SaliencyMixConfig {
                prob: 1.0,
                detector: DetectorChoice::SpectralResidualDevice,
                ..Default::default()
            }),
        ];
        for mix in versions {
            let mut config = HybridMixConfig::new(mix);
            config.warmup_epochs = 0;
            let mixer = config
                .init(Some(&KnownNormalization::Cifar.normalization()))
                .unwrap();
            assert_device_parity(&mixer, 3, 3, 16, 16, 2, Some((16, 16)));
        }
    }
}
