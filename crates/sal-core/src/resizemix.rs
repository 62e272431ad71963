//! ResizeMix (Qin et al. 2020), as in OpenMixup `augments/resizemix.py`:
//! `tau ~ U(scope)`, a box of sides `int(S * tau)` with a uniformly random centre, clipped as in
//! CutMix; the WHOLE shuffled image is resized into the box; `lam = 1 - area / (H * W)`.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::boxes::{area_lambda, centred_box, scaled_size};
use crate::device_ops::{index_tensor, select_samples};
use crate::mixer::{BatchMixer, MixBatch, MixOutput};
use crate::pair::{PairMix, PairMixer, Pairs, mix_permuted};
use crate::sampling::{below, probability, uniform};
use crate::targets::{LabelSmoothing, OwnWeight};
use crate::trace::{Regions, Weights};
use crate::{ConfigError, MixError};

/// How the source image is resized into the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resize {
    /// `F.interpolate(mode="nearest")`: OpenMixup's default.
    Nearest,
    /// Bilinear, half-pixel centres (`align_corners=False`).
    Bilinear,
}

/// `method = "resizemix"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResizeMixConfig {
    /// `tau ~ U(scope[0], scope[1])`, the box side as a fraction of the image side.
    /// Default [0.1, 0.8] (the paper's and OpenMixup's).
    pub scope: [f64; 2],
    /// Default "nearest".
    pub interpolation: Resize,
    /// Probability to mix a batch. Default 1.0 (OpenMixup).
    pub prob: f64,
    /// Label smoothing eps. Default 0.
    pub label_smoothing: f64,
}

impl Default for ResizeMixConfig {
    fn default() -> Self {
        Self {
            scope: [0.1, 0.8],
            interpolation: Resize::Nearest,
            prob: 1.0,
            label_smoothing: 0.0,
        }
    }
}

impl ResizeMixConfig {
    pub fn init(&self) -> Result<ResizeMix, ConfigError> {
        let [lo, hi] = self.scope;
        if !(0.0 <= lo && lo <= hi && hi <= 1.0) {
            return Err(ConfigError::Invalid {
                field: "scope",
                value: format!("{:?}", self.scope),
                expected: "[lo, hi] with 0 <= lo <= hi <= 1",
            });
        }
        Ok(ResizeMix {
            scope: self.scope,
            interpolation: self.interpolation,
            prob: probability("prob", self.prob)?,
            smoothing: LabelSmoothing::new(self.label_smoothing)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ResizeMix {
    scope: [f64; 2],
    interpolation: Resize,
    prob: f64,
    smoothing: LabelSmoothing,
}

impl PairMixer for ResizeMix {
    fn name(&self) -> &'static str {
        "resizemix"
    }

    fn prob(&self) -> f64 {
        self.prob
    }

    fn smoothing(&self) -> LabelSmoothing {
        self.smoothing
    }

    fn mix_pairs(&self, pairs: Pairs<'_>, rng: &mut StdRng) -> Result<PairMix, MixError> {
        let [n, c, h, w] = pairs.target.dims();
        let tau = uniform(rng, self.scope[0], self.scope[1]);
        let centre = (below(rng, h), below(rng, w));
        let b = centred_box(h, w, scaled_size(h, w, tau), centre);
        let images = if b.is_empty() {
            pairs.target
        } else {
            let index = index_tensor(pairs.source_index, &pairs.target.device());
            let mode = match self.interpolation {
                Resize::Nearest => InterpolateMode::Nearest,
                Resize::Bilinear => InterpolateMode::Bilinear,
            };
            let options = InterpolateOptions::new(mode)
                .with_align_corners(false)
                .with_output_size([b.height(), b.width()]);
            let resized = interpolate(select_samples(pairs.pool_images(), index), options);
            pairs
                .target
                .slice_assign([0..n, 0..c, b.r1..b.r2, b.c1..b.c2], resized)
        };
        let lam = area_lambda(h, w, &b);
        Ok(PairMix {
            images,
            own_weight: OwnWeight::Batch(lam),
            weights: Weights::batch(lam, n),
            regions: Regions::Resized(vec![b; n]),
        })
    }
}

impl BatchMixer for ResizeMix {
    fn name(&self) -> &'static str {
        "resizemix"
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
    use crate::testing::{assert_centres_uniform, assert_device_parity, host_vec, random_batch};
    use crate::trace::SampleRegion;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn the_box_holds_the_nearest_resized_source_and_lambda_is_the_kept_fraction(
            n in 1usize..5, c in 1usize..3, h in 1usize..12, w in 1usize..12, seed in 0u64..10_000,
        ) {
            let device = burn::tensor::Device::flex();
            let batch = random_batch(n, c, h, w, 4, seed, &device);
            let x = host_vec::<f32, 4>(batch.images.clone());
            let mixer = ResizeMixConfig::default().init().unwrap();
            let out = mixer.mix(batch, &mut step_rng(seed, 0)).unwrap();
            let y = host_vec::<f32, 4>(out.images);
            let per = c * h * w;
            for (i, s) in out.trace.samples().iter().enumerate() {
                let SampleRegion::Resized(b) = s.region else { panic!("no box") };
                let src = s.source.unwrap();
                prop_assert!((s.own_weight - (1.0 - b.area() as f64 / (h * w) as f64)).abs() < 1e-12);
                for ch in 0..c {
                    for r in 0..h {
                        for col in 0..w {
                            let got = y[i * per + ch * h * w + r * w + col];
                            let want = if b.contains(r, col) {
                                // torch/OpenCV legacy nearest: floor(dst * in / out).
                                let sr = (r - b.r1) * h / b.height();
                                let sc = (col - b.c1) * w / b.width();
                                x[src * per + ch * h * w + sr * w + sc]
                            } else {
                                x[i * per + ch * h * w + r * w + col]
                            };
                            prop_assert_eq!(got, want);
                        }
                    }
                }
            }
            for row in host_vec::<f32, 2>(out.targets).chunks(4) {
                prop_assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn box_centres_are_uniform() {
        let mixer = ResizeMixConfig::default().init().unwrap();
        let batch = random_batch(1, 1, 27, 40, 3, 1, &burn::tensor::Device::flex());
        let boxes: Vec<_> = (0..2000)
            .map(|step| {
                let out = mixer.mix(batch.clone(), &mut step_rng(8, step)).unwrap();
                match out.trace.regions {
                    Regions::Resized(b) => b[0],
                    _ => unreachable!("resizemix traces boxes"),
                }
            })
            .collect();
        assert_centres_uniform(&boxes, 27, 40);
    }

    #[test]
    fn same_seed_same_output_on_flex_and_wgpu() {
        for interpolation in [Resize::Nearest, Resize::Bilinear] {
            let mixer = ResizeMixConfig {
                interpolation,
                ..Default::default()
            }
            .init()
            .unwrap();
            assert_device_parity(&mixer, 3, 2, 9, 8, 4, None);
        }
    }
}
