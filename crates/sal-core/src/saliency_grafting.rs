//! Saliency Grafting (Park et al., AAAI 2022, §4; no code was released).
//!
//! Saliency is the channel-collapsed absolute feature map of the last conv stage,
//! `S = sum_c |A_c|` (§4.3), computed by the trainer from the forward pass and passed in.
//! Per mini-batch a grid scale is drawn and `S` is resampled to that grid (bilinear). For the
//! source `i = perm[j]` grafted onto destination `j` (the batch in its order):
//! `S' = softmax(z(S_i) / T)` over cells (eq. 3), `z` standardising each map to zero mean and
//! unit standard deviation so that `T` is unitless (the paper leaves the scale of `S` open); `S'' = 1[S' > sigma]` with `sigma =
//! threshold * mean(S')` (eq. 4; `threshold = 1` is the paper's `sigma_mean`, `0` makes it
//! saliency-agnostic, Figure 4); `p_B ~ Beta(alpha, alpha)` per batch; `M = Bern(p_B) ⊙ S''`
//! cell-wise i.i.d.; `x~ = M ⊙ x_i + (1 - M) ⊙ x_j` with `M` upsampled (nearest).
//! Calibrated label (eq. 5): `I_src = ||S_i ⊙ M|| / ||S_i||`, `I_dst = ||S_j ⊙ (1 - M)|| /
//! ||S_j||` (an importance is 0 when its full norm is 0), `lambda = I_src / (I_src + I_dst)`,
//! `M`'s area when both are 0; target `lambda * y_i + (1 - lambda) * y_j`.
//!
//! Ablations (paper Table 7): `selection = "top-k"` replaces the stochastic mask with the
//! deterministic top-k cells of Attentive CutMix; `labels = "area"` mixes labels by `M`'s area.
//!
//! The appendix with the authors' T, alpha, scale set and warm-up length is not available: the
//! defaults below are this project's choices, NOT the authors' confirmed values.

use burn::tensor::activation::softmax;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::device_ops::{index_tensor, resize_bilinear, select_samples};
use crate::mixer::{BatchMixer, MixBatch, MixOutput, SaliencyInput};
use crate::sampling::{SymmetricBeta, below, coin, permutation, probability, unit_floats};
use crate::targets::{LabelSmoothing, OwnWeight, mixed_targets, one_hot_targets};
use crate::trace::{MixTrace, Regions, Weights};
use crate::{ConfigError, MixError};

/// How the grafted cells are chosen (paper Table 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// Thresholded softmax times i.i.d. Bernoulli(p_B) (the method).
    Stochastic,
    /// The `top_k` most salient cells, deterministically (Attentive CutMix's rule).
    TopK,
}

/// How the label is mixed (paper Table 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelMixing {
    /// Saliency-calibrated, eq. (5) (the method).
    Saliency,
    /// The grafted area fraction.
    Area,
}

/// Which forward the feature-map saliency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureMapSource {
    /// The clean batch's own training forward, whose loss is trained on (`with_original`): the
    /// map costs nothing extra (§4.3, "terms already calculated in the learning process").
    /// Originals and grafted images then go through two forwards of N, each updating the
    /// BatchNorm statistics with its own half. Needs `with_original = true`.
    TrainingForward,
    /// A separate inference-mode forward of the clean batch through a frozen copy (no
    /// BatchNorm update, no parameter gradient); originals and grafted images then go through
    /// ONE forward of the 2N batch. Costs one inference forward of N beyond that step.
    FrozenPass,
}

/// `method = "saliency-grafting"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaliencyGraftingConfig {
    /// `p_B ~ Beta(alpha, alpha)`. Default 2.0 (project choice).
    pub alpha: f64,
    /// Softmax temperature `T`, in units of each map's standard deviation (the saliency is
    /// standardised per image before the softmax, so `T` does not depend on the network's
    /// activation scale). Default 2.0 (project choice; docs/methods.md shows the graft areas
    /// it gives on two networks).
    pub temperature: f64,
    /// `sigma` in units of the softmax mean (`1 / cells`). Default 1.0 (the paper's
    /// `sigma_mean`); 0 keeps every cell.
    pub threshold: f64,
    /// Grid scales relative to the feature map, one drawn per batch. Default [0.5, 1, 2]
    /// (project choice).
    pub grid_scales: Vec<f64>,
    /// Default "stochastic".
    pub selection: Selection,
    /// Cells taken by `selection = "top-k"`. Default 6 (Attentive CutMix's N).
    pub top_k: usize,
    /// Default "saliency".
    pub labels: LabelMixing,
    /// Epochs trained without augmentation first (§4.3). Default 5 (project choice).
    pub warmup_epochs: usize,
    /// Train on the original batch and the grafted batch together (§5: "we train the models
    /// with both original and augmented images"): the output holds 2N samples. Default true.
    pub with_original: bool,
    /// Where the saliency's feature map comes from. Default (unset): "training-forward" (the
    /// paper's §4.3) with `with_original = true`; "frozen-pass" with `with_original = false`,
    /// which trains on no originals.
    pub feature_map: Option<FeatureMapSource>,
    /// Probability to graft a batch. Default 1.0.
    pub prob: f64,
    /// Label smoothing eps. Default 0.
    pub label_smoothing: f64,
}

impl Default for SaliencyGraftingConfig {
    fn default() -> Self {
        Self {
            alpha: 2.0,
            temperature: 2.0,
            threshold: 1.0,
            grid_scales: vec![0.5, 1.0, 2.0],
            selection: Selection::Stochastic,
            top_k: 6,
            labels: LabelMixing::Saliency,
            warmup_epochs: 5,
            with_original: true,
            feature_map: None,
            prob: 1.0,
            label_smoothing: 0.0,
        }
    }
}

impl SaliencyGraftingConfig {
    /// `feature_map`, or its default for `with_original`.
    pub fn feature_map_source(&self) -> FeatureMapSource {
        self.feature_map.unwrap_or(if self.with_original {
            FeatureMapSource::TrainingForward
        } else {
            FeatureMapSource::FrozenPass
        })
    }

    pub fn init(&self) -> Result<SaliencyGrafting, ConfigError> {
        let positive = |field, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(ConfigError::Invalid {
                    field,
                    value: v.to_string(),
                    expected: "a positive, finite number",
                })
            }
        };
        positive("temperature", self.temperature)?;
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(ConfigError::Invalid {
                field: "threshold",
                value: self.threshold.to_string(),
                expected: "a non-negative number",
            });
        }
        if self.grid_scales.is_empty() {
            return Err(ConfigError::Invalid {
                field: "grid_scales",
                value: "[]".into(),
                expected: "at least one scale",
            });
        }
        for &s in &self.grid_scales {
            positive("grid_scales", s)?;
        }
        if self.selection == Selection::TopK && self.top_k == 0 {
            return Err(ConfigError::Invalid {
                field: "top_k",
                value: "0".into(),
                expected: "at least 1 cell",
            });
        }
        if self.feature_map_source() == FeatureMapSource::TrainingForward && !self.with_original {
            return Err(ConfigError::Invalid {
                field: "feature_map",
                value: "training-forward".into(),
                expected: "\"frozen-pass\" with `with_original = false` (no originals are \
                           trained on, so no training forward of them exists)",
            });
        }
        Ok(SaliencyGrafting {
            config: self.clone(),
            p_b: SymmetricBeta::new("alpha", self.alpha)?,
            prob: probability("prob", self.prob)?,
            smoothing: LabelSmoothing::new(self.label_smoothing)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct SaliencyGrafting {
    config: SaliencyGraftingConfig,
    p_b: SymmetricBeta,
    prob: f64,
    smoothing: LabelSmoothing,
}

/// Each row of `[N, P]` cell saliencies in units of its own standard deviation around its mean:
/// `(s - mean) / std`. The softmax of eq. (3) is shift-invariant, so this only rescales; it
/// makes the temperature unitless. The raw `S = sum_c |A_c|` grows with the network's
/// activation scale (tens to hundreds on a trained ResNet), which would make any fixed `T` a
/// near-argmax and graft one or two cells. A flat row (std 0) stays flat: no cell passes the
/// threshold.
fn standardised(s: Tensor<2>) -> Tensor<2> {
    let centred = s.clone() - s.mean_dim(1);
    let std = centred.clone().powi_scalar(2).mean_dim(1).sqrt();
    centred / std.clamp_min(1e-12)
}

/// Eq. (5): the weight of the SOURCE label per sample, from `[N, P]` saliencies of source and
/// destination and the mask (1 = cell from the source).
pub fn calibrated_source_weight(
    source: Tensor<2>,
    destination: Tensor<2>,
    mask: Tensor<2>,
) -> Tensor<1> {
    let [n, _] = mask.dims();
    let norm = |t: Tensor<2>| t.powi_scalar(2).sum_dim(1).sqrt().reshape([n]);
    let importance = |part: Tensor<1>, full: Tensor<1>| {
        let zero = full.clone().equal_elem(0.0);
        (part / full.mask_fill(zero.clone(), 1.0)).mask_fill(zero, 0.0)
    };
    let keep = mask.clone().neg().add_scalar(1.0);
    let i_src = importance(norm(source.clone() * mask.clone()), norm(source));
    let i_dst = importance(norm(destination.clone() * keep), norm(destination));
    let total = i_src.clone() + i_dst;
    let none = total.clone().equal_elem(0.0);
    let area = mask.mean_dim(1).reshape([n]);
    (i_src / total.mask_fill(none.clone(), 1.0)).mask_where(none, area)
}

impl BatchMixer for SaliencyGrafting {
    fn name(&self) -> &'static str {
        "saliency-grafting"
    }

    fn saliency_input(&self) -> SaliencyInput {
        match self.config.feature_map_source() {
            FeatureMapSource::TrainingForward => SaliencyInput::TrainingFeatureMap,
            FeatureMapSource::FrozenPass => SaliencyInput::FeatureMap,
        }
    }

    fn keeps_originals(&self) -> bool {
        self.config.with_original
    }

    fn mix(&self, mut batch: MixBatch, rng: &mut StdRng) -> Result<MixOutput, MixError> {
        let [n, c, h, w] = batch.checked_dims(self.name())?;
        if batch.epoch < self.config.warmup_epochs || !coin(rng, self.prob) {
            return Ok(batch.unchanged(self.name(), self.smoothing));
        }
        let features = batch.checked_saliency(self.name(), "the feature-map saliency", None)?;
        let [_, fh, fw] = features.dims();
        let device = batch.images.device();
        let scale = self.config.grid_scales[below(rng, self.config.grid_scales.len())];
        let (gh, gw) = (
            ((fh as f64 * scale).round() as usize).max(1),
            ((fw as f64 * scale).round() as usize).max(1),
        );
        let cells = gh * gw;
        // Bilinear, align_corners = false, through `resize_bilinear` (not `interpolate`, which
        // gets the borders wrong on wgpu's GL backend).
        let grid = resize_bilinear(features, [gh, gw]).reshape([n, cells]);
        let perm = permutation(rng, n);
        let index = index_tensor(&perm, &device);
        let source = grid.clone().select(0, index.clone());
        let mask = match self.config.selection {
            Selection::Stochastic => {
                let normalised = softmax(
                    standardised(source.clone()).div_scalar(self.config.temperature),
                    1,
                );
                let salient = normalised
                    .greater_elem(self.config.threshold / cells as f64)
                    .float();
                let p_b = self.p_b.sample(rng);
                let bernoulli: Vec<f32> = unit_floats(rng, n * cells)
                    .into_iter()
                    .map(|u| ((u as f64) < p_b) as u8 as f32)
                    .collect();
                salient * Tensor::from_data(TensorData::new(bernoulli, [n, cells]), &device)
            }
            Selection::TopK => {
                let k = self.config.top_k.min(cells);
                let (_, top) = source.clone().topk_with_indices(k, 1);
                Tensor::<2>::zeros([n, cells], &device).scatter(
                    1,
                    top,
                    Tensor::ones([n, k], &device),
                    burn::tensor::IndexingUpdateOp::Add,
                )
            }
        };
        let source_weight = match self.config.labels {
            LabelMixing::Saliency => calibrated_source_weight(source, grid, mask.clone()),
            LabelMixing::Area => mask.clone().mean_dim(1).reshape([n]),
        };
        let own = source_weight.neg().add_scalar(1.0);
        // The cell mask upsampled (nearest) to every channel, materialised at full size (a
        // contiguous mask keeps the masked select fast).
        let pixels = interpolate(
            mask.clone().reshape([n, 1, gh, gw]).repeat_dim(1, c),
            InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
        )
        .greater_elem(0.5);
        let sources = select_samples(batch.images.clone(), index.clone());
        let grafted = batch.images.clone().mask_where(pixels, sources);
        let soft = mixed_targets(
            batch.labels.clone(),
            index,
            &OwnWeight::PerSample(own.clone()),
            batch.num_classes,
            self.smoothing,
        );
        let (images, targets) = if self.config.with_original {
            (
                Tensor::cat(vec![batch.images, grafted], 0),
                Tensor::cat(
                    vec![
                        one_hot_targets(batch.labels, batch.num_classes, self.smoothing),
                        soft,
                    ],
                    0,
                ),
            )
        } else {
            (grafted, soft)
        };
        Ok(MixOutput {
            images,
            targets,
            trace: MixTrace {
                method: self.name(),
                applied: true,
                source_index: Some(perm),
                own_weight: Weights::Device(own),
                regions: Regions::GridMask(mask.reshape([n, gh, gw])),
                self_mix: None,
                originals_prepended: self.config.with_original,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::step_rng;
    use crate::testing::{
        assert_device_parity, devices, fixtures_dir, host_ints, host_vec, random_batch,
    };
    use crate::trace::SampleRegion;
    use burn::tensor::Device;
    use proptest::prelude::*;
    use serde_json::Value;

    #[test]
    fn calibrated_labels_match_the_200_fixture_cases_eq5() {
        let path = fixtures_dir().join("mixing/graft_cases.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json: Value = serde_json::from_str(&text).unwrap();
        let cases = json["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 200);
        let flat = |v: &Value| -> Vec<f32> {
            v.as_array()
                .unwrap()
                .iter()
                .flat_map(|row| {
                    row.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap() as f32)
                })
                .collect()
        };
        for device in devices() {
            // Batch the cases by grid size: one call per size.
            let mut sizes: Vec<(u64, u64)> = cases
                .iter()
                .map(|c| (c["h"].as_u64().unwrap(), c["w"].as_u64().unwrap()))
                .collect();
            sizes.sort();
            sizes.dedup();
            for (h, w) in sizes {
                let group: Vec<&Value> = cases
                    .iter()
                    .filter(|c| c["h"] == h && c["w"] == w)
                    .collect();
                let p = (h * w) as usize;
                let stack = |key: &str| {
                    let v: Vec<f32> = group.iter().flat_map(|c| flat(&c[key])).collect();
                    Tensor::<2>::from_data(TensorData::new(v, [group.len(), p]), &device)
                };
                let got = host_vec::<f64, 1>(calibrated_source_weight(
                    stack("s_src"),
                    stack("s_dst"),
                    stack("mask"),
                ));
                for (g, c) in got.iter().zip(&group) {
                    let expected = c["lambda_src_paper_eq5"].as_f64().unwrap();
                    assert!(
                        (g - expected).abs() <= 1e-6,
                        "{} ({h}x{w}): {g} vs {expected}",
                        c["kind"]
                    );
                }
            }
        }
    }

    fn features(n: usize, fh: usize, fw: usize, seed: u64, device: &Device) -> Tensor<3> {
        let mut rng = step_rng(seed, 5);
        let v: Vec<f32> = (0..n * fh * fw)
            .map(|_| rand::RngExt::random_range(&mut rng, 0.0f32..4.0))
            .collect();
        Tensor::from_data(TensorData::new(v, [n, fh, fw]), device)
    }

    fn mixer(config: SaliencyGraftingConfig) -> SaliencyGrafting {
        SaliencyGraftingConfig {
            warmup_epochs: 0,
            ..config
        }
        .init()
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn pixels_follow_the_mask_and_targets_sum_to_one(
            n in 1usize..5, c in 1usize..3, h in 1usize..14, w in 1usize..14,
            fh in 1usize..5, fw in 1usize..5, seed in 0u64..10_000,
            top_k in any::<bool>(), area in any::<bool>(), with_original in any::<bool>(),
        ) {
            let device = Device::flex();
            let batch = random_batch(n, c, h, w, 4, seed, &device).with_saliency(features(n, fh, fw, seed, &device));
            let config = SaliencyGraftingConfig {
                selection: if top_k { Selection::TopK } else { Selection::Stochastic },
                labels: if area { LabelMixing::Area } else { LabelMixing::Saliency },
                with_original,
                ..Default::default()
            };
            let x = host_vec::<f32, 4>(batch.images.clone());
            let labels = host_ints(batch.labels.clone());
            let out = mixer(config).mix(batch, &mut step_rng(seed, 6)).unwrap();
            let y = host_vec::<f32, 4>(out.images);
            let t = host_vec::<f32, 2>(out.targets);
            let offset = if with_original { n } else { 0 };
            prop_assert_eq!(y.len(), (n + offset) * c * h * w);
            if with_original {
                prop_assert_eq!(&y[..n * c * h * w], &x[..]);
            }
            for row in t.chunks(4) {
                prop_assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
            for (i, s) in out.trace.samples().iter().enumerate() {
                let src = s.source.unwrap();
                let SampleRegion::Grid { rows, cols, ref cells } = s.region else { panic!() };
                let grafted = cells.iter().filter(|&&b| b).count();
                if top_k {
                    prop_assert_eq!(grafted, 6.min(rows * cols));
                }
                if area {
                    prop_assert!((s.own_weight - (1.0 - grafted as f64 / (rows * cols) as f64)).abs() < 1e-6);
                }
                prop_assert!((0.0..=1.0 + 1e-6).contains(&s.own_weight));
                for ch in 0..c {
                    for r in 0..h {
                        for col in 0..w {
                            let from_source = s.region.covers(r, col, h, w);
                            let k = ch * h * w + r * w + col;
                            let want = if from_source { x[src * c * h * w + k] } else { x[i * c * h * w + k] };
                            prop_assert_eq!(y[(offset + i) * c * h * w + k], want);
                        }
                    }
                }
                let row = &t[(offset + i) * 4..(offset + i + 1) * 4];
                let expected = if labels[src] == labels[i] { 1.0 } else { s.own_weight };
                prop_assert!((row[labels[i] as usize] as f64 - expected).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn zero_threshold_keeps_every_cell_so_the_mask_rate_is_p_b() {
        // threshold 0 (Figure 4's saliency-agnostic end) with alpha large: p_B ~ 0.5, so about
        // half the cells are grafted. 40 batches x 4 x 64 cells; the mean of p_B over 40 draws
        // of Beta(200, 200) is 0.5 +- 0.004 and the Bernoulli noise adds +- 0.004: tolerance
        // 0.03, fixed seed.
        let device = Device::flex();
        let m = mixer(SaliencyGraftingConfig {
            threshold: 0.0,
            alpha: 200.0,
            grid_scales: vec![1.0],
            ..Default::default()
        });
        let (mut on, mut total) = (0usize, 0usize);
        for step in 0..40 {
            let batch = random_batch(4, 1, 8, 8, 3, step, &device)
                .with_saliency(features(4, 8, 8, step, &device));
            let out = m.mix(batch, &mut step_rng(2, step)).unwrap();
            for s in out.trace.samples() {
                let SampleRegion::Grid { cells, .. } = s.region else {
                    panic!()
                };
                on += cells.iter().filter(|&&b| b).count();
                total += cells.len();
            }
        }
        let rate = on as f64 / total as f64;
        assert!((rate - 0.5).abs() < 0.03, "rate {rate}");
    }

    #[test]
    fn the_feature_map_comes_from_the_training_forward_only_where_originals_train() {
        let input = |with_original, feature_map| {
            SaliencyGraftingConfig {
                with_original,
                feature_map,
                ..Default::default()
            }
            .init()
            .map(|m| m.saliency_input())
        };
        assert_eq!(
            input(true, None).unwrap(),
            SaliencyInput::TrainingFeatureMap
        );
        assert_eq!(input(false, None).unwrap(), SaliencyInput::FeatureMap);
        let frozen = Some(FeatureMapSource::FrozenPass);
        assert_eq!(input(true, frozen).unwrap(), SaliencyInput::FeatureMap);
        let err = input(false, Some(FeatureMapSource::TrainingForward))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("augmentation.feature_map") && err.contains("with_original"),
            "{err}"
        );
    }

    #[test]
    fn warm_up_epochs_leave_the_batch_clean() {
        let device = Device::flex();
        let m = SaliencyGraftingConfig::default().init().unwrap();
        let batch =
            random_batch(2, 1, 8, 8, 3, 0, &device).with_saliency(features(2, 4, 4, 0, &device));
        let out = m.mix(batch.clone(), &mut step_rng(0, 0)).unwrap();
        assert!(!out.trace.applied);
        assert_eq!(out.images.dims(), [2, 1, 8, 8]);
        let out = m.mix(batch.with_epoch(5), &mut step_rng(0, 0)).unwrap();
        assert!(out.trace.applied);
        assert_eq!(out.images.dims(), [4, 1, 8, 8]);
    }

    #[test]
    fn the_saliency_pass_runs_only_on_the_batches_it_grafts() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let m = mixer(SaliencyGraftingConfig {
            warmup_epochs: 2,
            prob: 0.5,
            ..Default::default()
        });
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let batch = random_batch(4, 1, 8, 8, 3, 0, &Device::flex()).with_saliency_pass(
            move |images: &Tensor<4>| {
                counted.fetch_add(1, Ordering::SeqCst);
                features(4, 4, 4, 0, &images.device())
            },
        );
        for epoch in 0..2 {
            let out = m
                .mix(batch.clone().with_epoch(epoch), &mut step_rng(0, 0))
                .unwrap();
            assert!(!out.trace.applied);
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "a pass in the warm-up epochs"
        );
        let mut applied = 0;
        for step in 0..20 {
            let out = m
                .mix(batch.clone().with_epoch(2), &mut step_rng(0, step))
                .unwrap();
            applied += out.trace.applied as usize;
        }
        assert!(
            (1..20).contains(&applied),
            "prob 0.5 grafted {applied} of 20"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            applied,
            "one pass per grafted batch"
        );
    }

    #[test]
    fn same_seed_same_output_on_flex_and_wgpu() {
        for selection in [Selection::Stochastic, Selection::TopK] {
            let m = mixer(SaliencyGraftingConfig {
                selection,
                with_original: false,
                ..Default::default()
            });
            assert_device_parity(&m, 3, 3, 8, 8, 4, Some((4, 4)));
        }
    }
}
