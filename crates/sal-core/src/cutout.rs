//! Cutout (DeVries & Taylor 2017), as in uoguelph-mlrg/Cutout `util/cutout.py`:
//! per sample, one square hole of side `length` centred anywhere (borders included), clipped,
//! set to 0 after normalisation (= the dataset mean); labels unchanged.

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::boxes::{PixelBox, boxes_to_device, centred_box};
use crate::device_ops::box_mask;
use crate::mixer::{BatchMixer, MixBatch, MixOutput};
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
    /// Label smoothing eps. Default 0.
    pub label_smoothing: f64,
}

impl Default for CutoutConfig {
    fn default() -> Self {
        Self {
            length: 16,
            prob: 1.0,
            label_smoothing: 0.0,
        }
    }
}

impl CutoutConfig {
    pub fn init(&self) -> Result<Cutout, ConfigError> {
        Ok(Cutout {
            length: self.length,
            prob: probability("prob", self.prob)?,
            smoothing: LabelSmoothing::new(self.label_smoothing)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Cutout {
    length: usize,
    prob: f64,
    smoothing: LabelSmoothing,
}

impl BatchMixer for Cutout {
    fn name(&self) -> &'static str {
        "cutout"
    }

    fn mix(&self, batch: MixBatch, rng: &mut StdRng) -> Result<MixOutput, MixError> {
        let [n, c, h, w] = batch.checked_dims(self.name())?;
        let holes: Vec<PixelBox> = (0..n)
            .map(|_| {
                if coin(rng, self.prob) {
                    // `y = np.random.randint(h); x = np.random.randint(w)`.
                    let centre = (below(rng, h), below(rng, w));
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
