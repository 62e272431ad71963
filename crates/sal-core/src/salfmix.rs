//! SalfMix (Choi et al. 2022, §4.3, Algorithm 1; no code was released):
//! per sample, the most salient patch of the image is copied onto its least salient patch;
//! the label is unchanged.
//!
//! Saliency is `M[i, j] = max_c |dL/dx[c, i, j]|` from the current model (eq. 3), computed by
//! the trainer and passed in. `M` is average-pooled to an `n x n` grid (kernel = stride =
//! `floor(H / n)`, no padding), giving the argmax cell `R_m` and the argmin cell `R_l` (first in
//! row-major order). `P_m` is a uniformly random `o x o` square containing `R_m` (`o =
//! floor(W * r)`), clamped inside the image; `P_l` likewise around `R_l`; `x[P_l] = x[P_m]`.
//! For `H != W` each axis uses its own side (`floor(H * r)` rows, `floor(W * r)` columns); when
//! the patch is smaller than the cell it is placed uniformly inside the cell instead.

use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::boxes::device_boxes::{Spans, stack};
use crate::device_ops::{first_argmax, first_argmin, float_tensor, paste_boxes, unravel};
use crate::mixer::{BatchMixer, MixBatch, MixOutput, SaliencyInput};
use crate::sampling::{coin, probability, unit_floats};
use crate::targets::{LabelSmoothing, one_hot_targets};
use crate::trace::{BoxPairs, MixTrace, Regions};
use crate::{ConfigError, MixError};

/// `method = "salfmix"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SalfMixConfig {
    /// `n`, the pooled grid side. Default: `H / 8` (the paper's 4 for 32 px, 8 for 64 px).
    pub grid: Option<usize>,
    /// `r`, the patch side as a fraction of the image side. Default 0.3 (the paper's).
    pub patch_ratio: f64,
    /// Probability to self-mix each sample. Default 1.0 (every sample).
    pub prob: f64,
    /// Label smoothing eps. Default 0.
    pub label_smoothing: f64,
}

impl Default for SalfMixConfig {
    fn default() -> Self {
        Self {
            grid: None,
            patch_ratio: 0.3,
            prob: 1.0,
            label_smoothing: 0.0,
        }
    }
}

impl SalfMixConfig {
    pub fn init(&self) -> Result<SalfMix, ConfigError> {
        if self.grid == Some(0) {
            return Err(ConfigError::Invalid {
                field: "grid",
                value: "0".into(),
                expected: "a grid side of at least 1",
            });
        }
        if !(0.0..=1.0).contains(&self.patch_ratio) {
            return Err(ConfigError::Invalid {
                field: "patch_ratio",
                value: self.patch_ratio.to_string(),
                expected: "a fraction in [0, 1]",
            });
        }
        Ok(SalfMix {
            grid: self.grid,
            patch_ratio: self.patch_ratio,
            prob: probability("prob", self.prob)?,
            smoothing: LabelSmoothing::new(self.label_smoothing)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct SalfMix {
    grid: Option<usize>,
    patch_ratio: f64,
    prob: f64,
    smoothing: LabelSmoothing,
}

impl SalfMix {
    /// Self-mixes every sample with probability `prob`: returns the images and the patches
    /// (`source` = `P_m`, `target` = `P_l`; empty for samples left alone).
    pub(crate) fn self_mix(
        &self,
        images: Tensor<4>,
        saliency: Tensor<3>,
        prob: f64,
        rng: &mut StdRng,
    ) -> Result<(Tensor<4>, BoxPairs, bool), MixError> {
        let [n, _, h, w] = images.dims();
        let device = images.device();
        let SaliencyGrid {
            cells,
            cell: (kh, kw),
            columns: gw,
        } = SaliencyGrid::pool(saliency, self.grid, "salfmix")?;
        let applied: Vec<bool> = (0..n).map(|_| coin(rng, prob)).collect();
        let any = applied.iter().any(|&a| a);
        let u = unit_floats(rng, 4 * n);
        let (most_row, most_col) = unravel(first_argmax(cells.clone()), gw);
        let (least_row, least_col) = unravel(first_argmin(cells), gw);
        // Patch sides; 0 for samples left alone, so their boxes are empty.
        let (oh, ow) = (
            (h as f64 * self.patch_ratio) as usize,
            (w as f64 * self.patch_ratio) as usize,
        );
        let on = applied_tensor(&applied, &device);
        let uniform = float_tensor(u, [4, n], &device);
        let u_at = |k: usize| uniform.clone().slice([k..k + 1, 0..n]).reshape([n]);
        let place = |cell: Tensor<1, Int>, k: usize, o: usize, size: usize, draw: Tensor<1>| {
            patch_span(cell.mul_scalar(k as i64), k, o, size, draw, on.clone())
        };
        let most = stack(
            &place(most_row, kh, oh, h, u_at(0)),
            &place(most_col, kw, ow, w, u_at(1)),
        );
        let least = stack(
            &place(least_row, kh, oh, h, u_at(2)),
            &place(least_col, kw, ow, w, u_at(3)),
        );
        let mixed = if any && oh > 0 && ow > 0 {
            paste_boxes(
                images.clone(),
                images,
                None,
                least.clone(),
                most.clone(),
                false,
            )
        } else {
            images
        };
        Ok((
            mixed,
            BoxPairs::Device {
                source: most,
                target: least,
            },
            any,
        ))
    }
}

/// A saliency map average-pooled to SalfMix's grid (§4.2): kernel = stride = `floor(size /
/// grid)`, no padding; `grid` defaults to `H / 8` (the paper's 4 for 32 px, 8 for 64 px).
/// Shared with Cutout's least-salient placement (SalfMix Table 9).
pub(crate) struct SaliencyGrid {
    /// `[N, rows * columns]`, row-major.
    pub cells: Tensor<2>,
    /// One cell's size in pixels, `(rows, columns)`.
    pub cell: (usize, usize),
    pub columns: usize,
}

impl SaliencyGrid {
    pub(crate) fn pool(
        saliency: Tensor<3>,
        grid: Option<usize>,
        method: &'static str,
    ) -> Result<Self, MixError> {
        let [n, h, w] = saliency.dims();
        let grid = grid.unwrap_or((h / 8).max(1));
        let (kh, kw) = (h / grid, w / grid);
        if kh == 0 || kw == 0 {
            return Err(MixError::TooSmall {
                method,
                height: h,
                width: w,
                why: "the pooling kernel floor(size / grid) is 0; lower `augmentation.grid`",
            });
        }
        let pooled = avg_pool2d(
            saliency.reshape([n, 1, h, w]),
            AvgPoolOptions::new([kh, kw]),
        );
        let [_, _, gh, gw] = pooled.dims();
        Ok(Self {
            cells: pooled.reshape([n, gh * gw]),
            cell: (kh, kw),
            columns: gw,
        })
    }
}

fn applied_tensor(applied: &[bool], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = applied.iter().map(|&a| a as i64).collect();
    Tensor::from_data(TensorData::new(v, [applied.len()]), device)
}

/// A uniformly random span of length `o` (times `on`, 0 or 1) that contains the cell
/// `[start, start + k)` when `o >= k`, or lies inside it when `o < k`, clamped to `[0, size]`:
/// `lo + floor(u * (hi - lo + 1))` over the allowed starts `lo..=hi`.
fn patch_span(
    start: Tensor<1, Int>,
    k: usize,
    o: usize,
    size: usize,
    u: Tensor<1>,
    on: Tensor<1, Int>,
) -> Spans {
    let other = start.clone().add_scalar(k as i64 - o as i64);
    let lo = start.clone().min_pair(other.clone()).clamp_min(0);
    let hi = start.max_pair(other).clamp_max((size - o) as i64);
    let count = (hi.clone() - lo.clone()).add_scalar(1).float();
    let offset = (u * count).floor().int();
    let first = (lo + offset).min_pair(hi);
    Spans {
        end: first.clone() + on.mul_scalar(o as i64),
        start: first,
    }
}

impl BatchMixer for SalfMix {
    fn name(&self) -> &'static str {
        "salfmix"
    }

    fn saliency_input(&self) -> SaliencyInput {
        SaliencyInput::InputGradient
    }

    fn mix(&self, mut batch: MixBatch, rng: &mut StdRng) -> Result<MixOutput, MixError> {
        let [n, _, h, w] = batch.checked_dims(self.name())?;
        let saliency =
            batch.checked_saliency(self.name(), "the input-gradient saliency", Some([h, w]))?;
        let (images, patches, applied) = self.self_mix(batch.images, saliency, self.prob, rng)?;
        Ok(MixOutput {
            images,
            targets: one_hot_targets(batch.labels, batch.num_classes, self.smoothing),
            trace: MixTrace::within_images(self.name(), applied, n, Regions::Boxes(patches)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::PixelBox;
    use crate::seed::step_rng;
    use crate::testing::{assert_box_mix_properties, assert_device_parity, random_batch};
    use crate::trace::{SampleRegion, Weights};
    use burn::tensor::Device;
    use proptest::prelude::*;

    fn saliency(values: Vec<f32>, n: usize, h: usize, w: usize) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, [n, h, w]), &Device::flex())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        #[test]
        fn patches_move_the_most_salient_cell_onto_the_least_salient_one(
            n in 1usize..4, c in 1usize..4, h in 4usize..20, w in 4usize..20,
            grid in 1usize..5, ratio in 0.0f64..1.0, seed in 0u64..10_000,
        ) {
            let device = Device::flex();
            let batch = random_batch(n, c, h, w, 3, seed, &device);
            let mut rng = step_rng(seed, 3);
            let sal: Vec<f32> = (0..n * h * w).map(|_| rand::RngExt::random::<f32>(&mut rng)).collect();
            let batch = batch.with_saliency(saliency(sal.clone(), n, h, w));
            let mixer = SalfMixConfig { grid: Some(grid), patch_ratio: ratio, ..Default::default() }.init().unwrap();
            let out = mixer.mix(batch.clone(), &mut step_rng(seed, 4)).unwrap();
            // Pixel provenance, equal box sizes and an own-label weight of 1 (labels unchanged):
            // the generic box check with the image itself as the source.
            let samples = out.trace.samples();
            let (kh, kw) = (h / grid, w / grid);
            let (gh, gw) = (h / kh, w / kw);
            let (oh, ow) = ((h as f64 * ratio) as usize, (w as f64 * ratio) as usize);
            for (i, s) in samples.iter().enumerate() {
                let SampleRegion::Paste(p) = s.region else { panic!() };
                prop_assert_eq!((p.source.height(), p.source.width()), (oh, ow));
                prop_assert_eq!((p.target.height(), p.target.width()), (oh, ow));
                // Pooled cells on the host.
                let cell = |gr: usize, gc: usize| {
                    let mut sum = 0f32;
                    for r in gr * kh..(gr + 1) * kh {
                        for cc in gc * kw..(gc + 1) * kw {
                            sum += sal[i * h * w + r * w + cc];
                        }
                    }
                    sum / (kh * kw) as f32
                };
                let cells: Vec<f32> = (0..gh * gw).map(|j| cell(j / gw, j % gw)).collect();
                let argmax = (0..cells.len()).fold(0, |b, j| if cells[j] > cells[b] { j } else { b });
                let argmin = (0..cells.len()).fold(0, |b, j| if cells[j] < cells[b] { j } else { b });
                let region = |j: usize| PixelBox::new((j / gw) * kh, (j % gw) * kw, (j / gw + 1) * kh, (j % gw + 1) * kw);
                let relation = |patch: PixelBox, cell: PixelBox| {
                    // o >= k: the patch contains the cell; o < k: it lies inside the cell.
                    let rows = if oh >= kh { patch.r1 <= cell.r1 && cell.r2 <= patch.r2 } else { cell.r1 <= patch.r1 && patch.r2 <= cell.r2 };
                    let cols = if ow >= kw { patch.c1 <= cell.c1 && cell.c2 <= patch.c2 } else { cell.c1 <= patch.c1 && patch.c2 <= cell.c2 };
                    rows && cols
                };
                // Skip near-ties, where the device's summation order may pick another cell.
                let gap = |best: usize, sign: f32| cells.iter().enumerate()
                    .filter(|&(j, _)| j != best)
                    .map(|(_, v)| sign * (cells[best] - v))
                    .fold(f32::INFINITY, f32::min);
                if oh > 0 && ow > 0 && gap(argmax, 1.0) > 1e-5 && gap(argmin, -1.0) > 1e-5 {
                    prop_assert!(relation(p.source, region(argmax)), "P_m {:?} vs R_m {:?}", p.source, region(argmax));
                    prop_assert!(relation(p.target, region(argmin)), "P_l {:?} vs R_l {:?}", p.target, region(argmin));
                }
                prop_assert!(p.source.r2 <= h && p.source.c2 <= w && p.target.r2 <= h && p.target.c2 <= w);
            }
            // Generic provenance check: inside P_l the pixels of P_m, elsewhere unchanged.
            let mut same = out.clone();
            same.trace.own_weight = Weights::Host(samples.iter().map(|s| {
                let SampleRegion::Paste(p) = s.region else { unreachable!() };
                1.0 - p.target.area() as f64 / (h * w) as f64
            }).collect());
            assert_box_mix_properties(&batch, &same);
            prop_assert!(out.trace.own_weight.to_vec().iter().all(|&v| v == 1.0));
        }
    }

    #[test]
    fn placements_cover_every_allowed_start_uniformly() {
        // A 12x12 image, grid 3 (cells of 4), patch 0.5 -> 6: P_m must contain the hot cell
        // (1, 1) = rows 4..8, so its top is one of 2, 3, 4 with probability 1/3 each.
        // 3000 draws: count ~ Binomial(3000, 1/3), sd 25.8; tolerance 5 sd, fixed seed.
        let (h, w) = (12, 12);
        let mut sal = vec![0.5f32; h * w];
        for r in 4..8 {
            for c in 4..8 {
                sal[r * w + c] = 1.0;
            }
        }
        sal[0] = 0.0;
        let mixer = SalfMixConfig {
            grid: Some(3),
            patch_ratio: 0.5,
            ..Default::default()
        }
        .init()
        .unwrap();
        let batch =
            random_batch(1, 1, h, w, 2, 0, &Device::flex()).with_saliency(saliency(sal, 1, h, w));
        let mut tops = [0usize; 3];
        for step in 0..3000 {
            let out = mixer.mix(batch.clone(), &mut step_rng(4, step)).unwrap();
            let SampleRegion::Paste(p) = out.trace.samples()[0].region else {
                panic!()
            };
            tops[p.source.r1 - 2] += 1;
            assert_eq!(
                p.target.r1, 0,
                "P_l holds the cold corner cell and is clamped at 0"
            );
        }
        for count in tops {
            assert!((count as f64 - 1000.0).abs() < 5.0 * 25.8, "tops {tops:?}");
        }
    }

    #[test]
    fn samples_are_self_mixed_at_the_configured_rate() {
        // prob 0.3 per sample, 32 samples x 100 batches: count ~ Binomial(3200, 0.3), sd 25.9;
        // tolerance 5 sd, fixed seed.
        let mixer = SalfMixConfig {
            prob: 0.3,
            ..Default::default()
        }
        .init()
        .unwrap();
        let (n, h, w) = (32, 16, 16);
        let sal: Vec<f32> = (0..n * h * w).map(|i| (i % 17) as f32).collect();
        let batch =
            random_batch(n, 1, h, w, 2, 0, &Device::flex()).with_saliency(saliency(sal, n, h, w));
        let mut mixed = 0;
        for step in 0..100 {
            let out = mixer.mix(batch.clone(), &mut step_rng(6, step)).unwrap();
            for s in out.trace.samples() {
                let SampleRegion::Paste(p) = s.region else {
                    panic!()
                };
                mixed += usize::from(!p.target.is_empty());
            }
        }
        assert!(
            (mixed as f64 - 960.0).abs() < 5.0 * 25.9,
            "{mixed} of 3200 self-mixed"
        );
    }

    #[test]
    fn missing_or_misshapen_saliency_is_an_error() {
        let mixer = SalfMixConfig::default().init().unwrap();
        let batch = random_batch(2, 3, 8, 8, 2, 0, &Device::flex());
        assert!(matches!(
            mixer.mix(batch.clone(), &mut step_rng(0, 0)),
            Err(MixError::MissingSaliency { .. })
        ));
        let bad = batch.with_saliency(saliency(vec![0.0; 2 * 8 * 7], 2, 8, 7));
        assert!(matches!(
            mixer.mix(bad, &mut step_rng(0, 0)),
            Err(MixError::SaliencyShape { .. })
        ));
        assert!(
            SalfMixConfig {
                grid: Some(0),
                ..Default::default()
            }
            .init()
            .is_err()
        );
    }

    #[test]
    fn same_seed_same_output_on_flex_and_wgpu() {
        let mixer = SalfMixConfig {
            prob: 0.7,
            ..Default::default()
        }
        .init()
        .unwrap();
        assert_device_parity(&mixer, 4, 3, 16, 12, 6, Some((16, 12)));
    }
}
