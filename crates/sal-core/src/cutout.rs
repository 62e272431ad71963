//! Cutout (DeVries & Taylor 2017), as in uoguelph-mlrg/Cutout `util/cutout.py`:
//! per sample, one square hole of side `length` centred anywhere (borders included), clipped,
//! set to 0 after normalisation (= the dataset mean); labels unchanged.
//!
//! `placement = "least-salient"` is SalfMix Table 9's "Cutout with a saliency map": the hole
//! drops the least salient region instead of a random one. The saliency is SalfMix's (the
//! current model's input gradient, pooled to its grid); the paper does not say how the hole is
//! placed on that cell: here it is centred on the cell's centre (this project's choice).

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::boxes::{PixelBox, boxes_to_device, centred_box};
use crate::device_ops::box_mask;
use crate::device_ops::first_argmin;
use crate::mixer::{BatchMixer, MixBatch, MixOutput, SaliencyInput};
use crate::salfmix::SaliencyGrid;
use crate::sampling::{below, coin, probability};
use crate::targets::{LabelSmoothing, one_hot_targets};
use crate::trace::{MixTrace, Regions};
use crate::{ConfigError, MixError};

/// `method = "cutout"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CutoutConfig {
    /// Side of the hole in pixels. Default 16 (CIFAR-10; the reference uses 8 for CIFAR-100,
    /// 20 for SVHN). An odd length gives a side of `2 * (length / 2)`, as in the reference.
    pub length: usize,
    /// Probability to cut each sample. Default 1.0 (the reference cuts every image).
    pub prob: f64,
    /// Where the hole goes. Default `"random"` (the reference).
    pub placement: HolePlacement,
    /// With `placement = "least-salient"`: SalfMix's pooled grid side. Default `H / 8`.
    pub grid: Option<usize>,
    /// Label smoothing eps. Default 0.
    pub label_smoothing: f64,
}

/// Where Cutout's hole goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HolePlacement {
    /// Centred anywhere, uniformly (the reference).
    #[default]
    Random,
    /// Centred on the least salient cell of SalfMix's grid of the model's input gradient
    /// (SalfMix Table 9).
    LeastSalient,
}

impl Default for CutoutConfig {
    fn default() -> Self {
        Self {
            length: 16,
            prob: 1.0,
            placement: HolePlacement::Random,
            grid: None,
            label_smoothing: 0.0,
        }
    }
}

impl CutoutConfig {
    pub fn init(&self) -> Result<Cutout, ConfigError> {
        if self.grid == Some(0) {
            return Err(ConfigError::Invalid {
                field: "grid",
                value: "0".into(),
                expected: "a grid side of at least 1",
            });
        }
        Ok(Cutout {
            length: self.length,
            prob: probability("prob", self.prob)?,
            placement: self.placement,
            grid: self.grid,
            smoothing: LabelSmoothing::new(self.label_smoothing)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Cutout {
    length: usize,
    prob: f64,
    placement: HolePlacement,
    grid: Option<usize>,
    smoothing: LabelSmoothing,
}

impl Cutout {
    /// Each sample's least salient cell centre `(row, column)` in pixels.
    fn least_salient_centres(&self, batch: &mut MixBatch) -> Result<Vec<(usize, usize)>, MixError> {
        let [_, _, h, w] = batch.checked_dims(self.name())?;
        let saliency =
            batch.checked_saliency(self.name(), "the input-gradient saliency", Some([h, w]))?;
        let grid = SaliencyGrid::pool(saliency, self.grid, self.name())?;
        let least: Vec<i64> = first_argmin(grid.cells)
            .try_into_vec_as::<i64>()
            .expect("an int tensor reads as i64");
        let (kh, kw) = grid.cell;
        Ok(least
            .into_iter()
            .map(|cell| {
                let (row, col) = (cell as usize / grid.columns, cell as usize % grid.columns);
                (row * kh + kh / 2, col * kw + kw / 2)
            })
            .collect())
    }
}

impl BatchMixer for Cutout {
    fn name(&self) -> &'static str {
        "cutout"
    }

    fn saliency_input(&self) -> SaliencyInput {
        match self.placement {
            HolePlacement::Random => SaliencyInput::None,
            HolePlacement::LeastSalient => SaliencyInput::InputGradient,
        }
    }

    fn mix(&self, mut batch: MixBatch, rng: &mut StdRng) -> Result<MixOutput, MixError> {
        let [n, c, h, w] = batch.checked_dims(self.name())?;
        let least_salient = match self.placement {
            HolePlacement::Random => None,
            HolePlacement::LeastSalient => Some(self.least_salient_centres(&mut batch)?),
        };
        let holes: Vec<PixelBox> = (0..n)
            .map(|i| {
                if coin(rng, self.prob) {
                    // `y = np.random.randint(h); x = np.random.randint(w)`.
                    let centre = match &least_salient {
                        Some(centres) => centres[i],
                        None => (below(rng, h), below(rng, w)),
                    };
                    centred_box(h, w, (self.length, self.length), centre)
                } else {
                    PixelBox::default()
                }
            })
            .collect();
        let applied = holes.iter().any(|b| !b.is_empty());
        let device = batch.images.device();
        let images = if applied {
            let mask = box_mask(boxes_to_device(&holes, &device), c, h, w);
            batch.images.mask_fill(mask, 0.0)
        } else {
            batch.images
        };
        Ok(MixOutput {
            images,
            targets: one_hot_targets(batch.labels, batch.num_classes, self.smoothing),
            trace: MixTrace::within_images(self.name(), applied, n, Regions::Holes(holes)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::step_rng;
    use crate::testing::{assert_centres_uniform, assert_device_parity, host_vec, random_batch};
    use crate::trace::SampleRegion;
    use burn::tensor::{Tensor, TensorData};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn holes_are_zero_and_everything_else_is_untouched(
            n in 1usize..5, c in 1usize..4, h in 1usize..12, w in 1usize..12,
            length in 0usize..14, seed in 0u64..10_000,
        ) {
            let device = burn::tensor::Device::flex();
            let batch = random_batch(n, c, h, w, 3, seed, &device);
            let x = host_vec::<f32, 4>(batch.images.clone());
            let mixer = CutoutConfig { length, ..Default::default() }.init().unwrap();
            let out = mixer.mix(batch, &mut step_rng(seed, 0)).unwrap();
            let y = host_vec::<f32, 4>(out.images);
            for (i, s) in out.trace.samples().iter().enumerate() {
                let SampleRegion::Hole(b) = s.region else { panic!("no hole record") };
                prop_assert!(b.height() <= 2 * (length / 2) && b.width() <= 2 * (length / 2));
                for k in 0..c * h * w {
                    let (r, col) = ((k / w) % h, k % w);
                    let expected = if b.contains(r, col) { 0.0 } else { x[i * c * h * w + k] };
                    prop_assert_eq!(y[i * c * h * w + k], expected);
                }
            }
            for row in host_vec::<f32, 2>(out.targets).chunks(3) {
                prop_assert_eq!(row.iter().sum::<f32>(), 1.0);
            }
        }
    }

    #[test]
    fn least_salient_placement_centres_each_hole_on_its_least_salient_cell() {
        // 16x16 images, a 2x2 grid of 8x8 cells: sample 0's least salient cell is the
        // bottom-right one, sample 1's the top-left one.
        let device = burn::tensor::Device::flex();
        let batch = random_batch(2, 1, 16, 16, 3, 4, &device);
        let mut map = vec![1.0f32; 2 * 16 * 16];
        for y in 8..16 {
            for x in 8..16 {
                map[y * 16 + x] = 0.1;
            }
        }
        for y in 0..8 {
            for x in 0..8 {
                map[256 + y * 16 + x] = 0.1;
            }
        }
        let saliency = Tensor::from_data(TensorData::new(map, [2, 16, 16]), &device);
        let mixer = CutoutConfig {
            length: 4,
            placement: HolePlacement::LeastSalient,
            grid: Some(2),
            ..Default::default()
        }
        .init()
        .unwrap();
        assert_eq!(mixer.saliency_input(), SaliencyInput::InputGradient);
        let out = mixer
            .mix(batch.clone().with_saliency(saliency), &mut step_rng(1, 0))
            .unwrap();
        let holes: Vec<_> = out
            .trace
            .samples()
            .iter()
            .map(|s| match s.region {
                SampleRegion::Hole(b) => b,
                ref other => panic!("{other:?}"),
            })
            .collect();
        // Cells' centres (12, 12) and (4, 4), holes of side 4 around them.
        let sides = |b: &PixelBox| (b.r1, b.c1, b.r2, b.c2);
        assert_eq!(sides(&holes[0]), (10, 10, 14, 14));
        assert_eq!(sides(&holes[1]), (2, 2, 6, 6));
        // Without the map it is an error naming what is missing.
        let err = mixer
            .mix(batch, &mut step_rng(1, 0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("saliency"), "{err}");
    }

    #[test]
    fn per_sample_rate_and_centre_uniformity() {
        // prob 0.3 per sample over 64 x 60 samples: cut count ~ Binomial(3840, 0.3), sd 28.4;
        // tolerance 5 sd, fixed seed.
        let mixer = CutoutConfig {
            length: 8,
            prob: 0.3,
            ..Default::default()
        }
        .init()
        .unwrap();
        let batch = random_batch(64, 1, 29, 33, 3, 1, &burn::tensor::Device::flex());
        let mut holes = Vec::new();
        for step in 0..60 {
            let out = mixer.mix(batch.clone(), &mut step_rng(5, step)).unwrap();
            if let Regions::Holes(h) = out.trace.regions {
                holes.extend(h.into_iter().filter(|b| !b.is_empty()));
            }
        }
        assert!(
            (holes.len() as f64 - 1152.0).abs() < 5.0 * 28.4,
            "cut {}",
            holes.len()
        );
        assert_centres_uniform(&holes, 29, 33);
    }

    #[test]
    fn same_seed_same_output_on_flex_and_wgpu() {
        let mixer = CutoutConfig {
            length: 4,
            ..Default::default()
        }
        .init()
        .unwrap();
        assert_device_parity(&mixer, 3, 3, 7, 9, 2, None);
    }
}
