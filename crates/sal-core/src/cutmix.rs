//! CutMix (Yun et al. 2019), as in clovaai/CutMix-PyTorch `train.py`: with
//! probability `prob` per batch, `lam ~ Beta(beta, beta)`, `perm = randperm(N)`, one box of sides
//! `int(S * sqrt(1 - lam))` centred uniformly over the image and clipped, `x[:, :, box] =
//! x[perm][:, :, box]`, `lam = 1 - area / (H * W)`, target `lam * y + (1 - lam) * y[perm]`.

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::boxes::{BoxPair, area_lambda, centred_box, cut_size};
use crate::device_ops::{index_tensor, paste_shared_box};
use crate::mixer::{BatchMixer, MixBatch, MixOutput};
use crate::pair::{PairMix, PairMixer, Pairs, mix_permuted};
use crate::sampling::{SymmetricBeta, below, probability};
use crate::targets::{LabelSmoothing, OwnWeight};
use crate::trace::{BoxPairs, Regions, Weights};
use crate::{ConfigError, MixError};

/// `method = "cutmix"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CutMixConfig {
    /// `lam ~ Beta(beta, beta)`. Default 1.0 (the reference's setting).
    pub beta: f64,
    /// Probability to mix a batch. Default 0.5 (the reference's CIFAR setting; ImageNet: 1.0).
    pub prob: f64,
    /// Label smoothing eps. Default 0.
    pub label_smoothing: f64,
}

impl Default for CutMixConfig {
    fn default() -> Self {
        Self {
            beta: 1.0,
            prob: 0.5,
            label_smoothing: 0.0,
        }
    }
}

impl CutMixConfig {
    pub fn init(&self) -> Result<CutMix, ConfigError> {
        Ok(CutMix {
            lambda: SymmetricBeta::new("beta", self.beta)?,
            prob: probability("prob", self.prob)?,
            smoothing: LabelSmoothing::new(self.label_smoothing)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct CutMix {
    lambda: SymmetricBeta,
    prob: f64,
    smoothing: LabelSmoothing,
}

impl PairMixer for CutMix {
    fn name(&self) -> &'static str {
        "cutmix"
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
        // `rand_bbox`: the centre is uniform over the whole image, borders included.
        let centre = (below(rng, h), below(rng, w));
        let b = centred_box(h, w, cut_size(h, w, lam), centre);
        let index = index_tensor(pairs.source_index, &pairs.target.device());
        let pool = pairs.pool_images();
        let images = paste_shared_box(pairs.target, pool, index, BoxPair::same(b));
        let lam = area_lambda(h, w, &b);
        Ok(PairMix {
            images,
            own_weight: OwnWeight::Batch(lam),
            weights: Weights::batch(lam, n),
            regions: Regions::Boxes(BoxPairs::Host(vec![BoxPair::same(b); n])),
        })
    }
}

impl BatchMixer for CutMix {
    fn name(&self) -> &'static str {
        "cutmix"
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
    use crate::testing::{
        assert_box_mix_properties, assert_centres_uniform, assert_device_parity, random_batch,
    };
    use proptest::prelude::*;

    fn always() -> CutMix {
        CutMixConfig {
            prob: 1.0,
            ..Default::default()
        }
        .init()
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn every_pixel_comes_from_target_or_source_and_lambda_is_the_kept_fraction(
            n in 1usize..6, c in 1usize..4, h in 1usize..12, w in 1usize..12, seed in 0u64..10_000,
        ) {
            let device = burn::tensor::Device::flex();
            let batch = random_batch(n, c, h, w, 4, seed, &device);
            let out = BatchMixer::mix(&always(), batch.clone(), &mut step_rng(seed, 1)).unwrap();
            assert_box_mix_properties(&batch, &out);
        }
    }

    #[test]
    fn application_rate_and_centre_uniformity() {
        // prob 0.5 over 3000 batches: applied ~ Binomial(3000, 0.5), sd 27.4; tolerance 5 sd,
        // fixed seed. Box centres: see `assert_centres_uniform`.
        let mixer = CutMixConfig::default().init().unwrap();
        let device = burn::tensor::Device::flex();
        let batch = random_batch(1, 1, 31, 24, 3, 9, &device);
        let mut boxes = Vec::new();
        for step in 0..3000 {
            let out = BatchMixer::mix(&mixer, batch.clone(), &mut step_rng(3, step)).unwrap();
            if let Regions::Boxes(BoxPairs::Host(p)) = &out.trace.regions {
                boxes.push(p[0].target);
            }
        }
        assert!(
            (boxes.len() as f64 - 1500.0).abs() < 5.0 * 27.4,
            "applied {}",
            boxes.len()
        );
        assert_centres_uniform(&boxes, 31, 24);
    }

    #[test]
    fn same_seed_same_output_on_flex_and_wgpu() {
        assert_device_parity(&always(), 4, 3, 8, 6, 5, None);
    }
}
