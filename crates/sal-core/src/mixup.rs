//! Mixup (Zhang et al. 2018), as in facebookresearch/mixup-cifar10 `mixup_data`:
//! `lam ~ Beta(alpha, alpha)` per batch, `x = lam * x + (1 - lam) * x[perm]`, target likewise.

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::device_ops::blend_samples;
use crate::mixer::{BatchMixer, MixBatch, MixOutput};
use crate::pair::{PairMix, PairMixer, Pairs, mix_permuted};
use crate::sampling::{SymmetricBeta, probability};
use crate::targets::{LabelSmoothing, OwnWeight};
use crate::trace::{Regions, Weights};
use crate::{ConfigError, MixError};

/// `method = "mixup"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixupConfig {
    /// `lam ~ Beta(alpha, alpha)`. Default 1.0 (the reference's CIFAR setting).
    pub alpha: f64,
    /// Probability to mix a batch. Default 1.0 (the reference mixes every batch).
    pub prob: f64,
    /// Label smoothing eps. Default 0.
    pub label_smoothing: f64,
}

impl Default for MixupConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            prob: 1.0,
            label_smoothing: 0.0,
        }
    }
}

impl MixupConfig {
    pub fn init(&self) -> Result<Mixup, ConfigError> {
        Ok(Mixup {
            lambda: SymmetricBeta::new("alpha", self.alpha)?,
            prob: probability("prob", self.prob)?,
            smoothing: LabelSmoothing::new(self.label_smoothing)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Mixup {
    lambda: SymmetricBeta,
    prob: f64,
    smoothing: LabelSmoothing,
}

impl PairMixer for Mixup {
    fn name(&self) -> &'static str {
        "mixup"
    }

    fn prob(&self) -> f64 {
        self.prob
    }

    fn smoothing(&self) -> LabelSmoothing {
        self.smoothing
    }

    fn mix_pairs(&self, pairs: Pairs<'_>, rng: &mut StdRng) -> Result<PairMix, MixError> {
        let lam = self.lambda.sample(rng);
        let images = blend_samples(pairs.target, pairs.pool, pairs.source_index, lam);
        Ok(PairMix {
            images,
            own_weight: OwnWeight::Batch(lam),
            weights: Weights::batch(lam, pairs.source_index.len()),
            regions: Regions::None,
        })
    }
}

impl BatchMixer for Mixup {
    fn name(&self) -> &'static str {
        "mixup"
    }

    fn mixes_given_partners(&self) -> bool {
        true
    }

    fn mix(&self, batch: MixBatch, rng: &mut StdRng) -> Result<MixOutput, MixError> {
        mix_permuted(self, batch, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::step_rng;
    use crate::testing::{assert_device_parity, host_vec, random_batch};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn mixup_blends_each_pixel_with_its_partner_and_targets_sum_to_one(
            n in 1usize..6, c in 1usize..4, h in 1usize..9, w in 1usize..9, seed in 0u64..1000,
        ) {
            let device = burn::tensor::Device::flex();
            let batch = random_batch(n, c, h, w, 5, seed, &device);
            let x = host_vec::<f32, 4>(batch.images.clone());
            let mixer = MixupConfig::default().init().unwrap();
            let out = BatchMixer::mix(&mixer, batch, &mut step_rng(seed, 0)).unwrap();
            let perm = out.trace.source_index.clone().unwrap();
            let lam = out.trace.own_weight.to_vec();
            let y = host_vec::<f32, 4>(out.images);
            let per = c * h * w;
            for i in 0..n {
                for k in 0..per {
                    let expected = x[i * per + k] * lam[i] as f32
                        + x[perm[i] * per + k] * (1.0 - lam[i]) as f32;
                    prop_assert!((y[i * per + k] - expected).abs() < 1e-5);
                }
            }
            for row in host_vec::<f32, 2>(out.targets).chunks(5) {
                prop_assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn given_partners_replace_the_permutation() {
        let device = burn::tensor::Device::flex();
        let (n, per) = (4, 2 * 3 * 3);
        let batch = random_batch(n, 2, 3, 3, 5, 1, &device);
        let others = random_batch(n, 2, 3, 3, 5, 2, &device);
        let (x, p) = (
            host_vec::<f32, 4>(batch.images.clone()),
            host_vec::<f32, 4>(others.images.clone()),
        );
        let (labels, partner_labels) = (
            crate::testing::host_ints(batch.labels.clone()),
            crate::testing::host_ints(others.labels.clone()),
        );
        let partners = crate::Partners {
            images: others.images.clone(),
            labels: others.labels.clone(),
        };
        let mixer = MixupConfig::default().init().unwrap();
        assert!(mixer.mixes_given_partners());
        let out = BatchMixer::mix(
            &mixer,
            batch.clone().with_partners(partners),
            &mut step_rng(3, 0),
        )
        .unwrap();
        assert_eq!(out.trace.source_index, Some((0..n).collect()));
        let lam = out.trace.own_weight.to_vec();
        let (y, targets) = (
            host_vec::<f32, 4>(out.images),
            host_vec::<f32, 2>(out.targets),
        );
        for i in 0..n {
            let l = lam[i] as f32;
            for k in 0..per {
                let expected = x[i * per + k] * l + p[i * per + k] * (1.0 - l);
                assert!((y[i * per + k] - expected).abs() < 1e-5);
            }
            let row = &targets[i * 5..(i + 1) * 5];
            let mut expected = [0f32; 5];
            expected[labels[i] as usize] += l;
            expected[partner_labels[i] as usize] += 1.0 - l;
            for (a, b) in row.iter().zip(expected) {
                assert!((a - b).abs() < 1e-6, "{row:?} vs {expected:?}");
            }
        }
        // Partners that do not match the batch are an error naming the method.
        let short = crate::Partners {
            images: others.images.narrow(0, 0, 2),
            labels: others.labels.narrow(0, 0, 2),
        };
        let error =
            BatchMixer::mix(&mixer, batch.with_partners(short), &mut step_rng(3, 0)).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("mixup: the given partners have shape [2, 2, 3, 3]"),
            "{error}"
        );
    }

    #[test]
    fn same_seed_same_output_on_flex_and_wgpu() {
        let mixer = MixupConfig::default().init().unwrap();
        assert_device_parity(&mixer, 4, 3, 5, 6, 7, None);
    }
}
