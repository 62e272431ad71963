//! Evaluations of a trained classifier beyond the per-epoch test accuracy, as the papers'
//! tables use them (docs/training.md):
//! - [`accuracy`]: top-1 / top-5 accuracy and mean cross-entropy over a loader's batches, the
//!   numbers the trainer logs for the test split;
//! - [`fgsm`]: the Fast Gradient Sign Method (Goodfellow et al. 2015), the attack SaliencyMix
//!   Table 4 runs "similar to CutMix": one step of size `eps` along the sign of the input
//!   gradient of the cross-entropy, in pixel units ([0, 1]) before normalisation, clipped to the
//!   valid pixel range.
//!
//! - [`occlude_most_salient`]: Saliency Grafting Table 6's partial occlusion, the top-k % most
//!   salient regions removed before evaluating.
//!
//! Every function takes the model as the caller holds it; [`fgsm`] needs an autodiff device
//! (the input gradient) and works on a frozen copy, so it builds no parameter gradients and
//! leaves BatchNorm statistics alone.

use burn::module::Module;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};
use sal_core::model_saliency::feature_map_saliency;
use sal_figures::draw::denormalised;
use sal_figures::{CamSample, cam_grid};
use sal_models::Model;
use sal_models::class_activation_map_from_features;

use burn::data::dataloader::DataLoader;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::checkpoint::{latest_complete_epoch, write_atomically};
use crate::data::{ImageDataset, Split};
use crate::inspect::{ModelWeights, SaliencyModel};
use crate::loader::{ImageBatch, LoaderMode};
use crate::step::loss_input_gradient;
use crate::transform::{Normalization, SampleTransform};
use crate::{BackendKind, ExperimentConfig};

/// Top-1 / top-5 accuracy (%) and mean cross-entropy over a set of images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub images: usize,
    pub top1: f64,
    /// Top-5 (top-`classes` when there are fewer than 5 classes).
    pub top5: f64,
    pub loss: f64,
}

impl Accuracy {
    /// `100 - top1`: the papers report errors.
    pub fn top1_error(&self) -> f64 {
        100.0 - self.top1
    }
}

/// Running sums behind an [`Accuracy`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    images: usize,
    top1: usize,
    top5: usize,
    loss_sum: f64,
}

impl Tally {
    /// Adds a batch's logits `[N, K]` against its labels `[N]`.
    pub fn add(&mut self, logits: Tensor<2>, labels: Tensor<1, Int>) {
        let [n, classes] = logits.dims();
        let k = crate::metrics::top5_k(classes);
        let labels = labels.reshape([n, 1]);
        let nll = log_softmax(logits.clone(), 1)
            .gather(1, labels.clone())
            .neg()
            .sum();
        let (_, top) = logits.topk_with_indices(k, 1);
        let hits = top.equal(labels.repeat_dim(1, k)).int();
        let top1 = hits.clone().narrow(1, 0, 1).sum();
        let top5 = hits.sum();
        self.images += n;
        self.top1 += top1.into_scalar::<i64>() as usize;
        self.top5 += top5.into_scalar::<i64>() as usize;
        self.loss_sum += nll.into_scalar::<f32>() as f64;
    }

    pub fn accuracy(&self) -> Accuracy {
        let percent = |hits: usize| 100.0 * hits as f64 / self.images.max(1) as f64;
        Accuracy {
            images: self.images,
            top1: percent(self.top1),
            top5: percent(self.top5),
            loss: self.loss_sum / self.images.max(1) as f64,
        }
    }
}

/// [`Accuracy`] of `model` over `batches` (e.g. an [`crate::loader::ImageLoader`] in evaluation
/// mode; the model as given: on an inference device BatchNorm uses its running statistics, as
/// the trainer's test pass does). The first failed batch is the error.
pub fn accuracy<E>(
    model: &Model,
    batches: impl IntoIterator<Item = Result<ImageBatch, E>>,
) -> Result<Accuracy, E> {
    let mut tally = Tally::default();
    for batch in batches {
        let batch = batch?;
        tally.add(model.forward(batch.images), batch.labels);
    }
    Ok(tally.accuracy())
}

/// FGSM adversarial images of the normalised batch `images` `[N, C, H, W]` (labels `[N]`) under
/// `model` (on an autodiff device; a frozen copy is used): in pixel units `p = x * std + mean`,
/// `p' = clamp(p + eps * sign(dL/dp), 0, 1)`, returned normalised again. `eps` is in pixel
/// units (8/255 is CutMix's ImageNet setting). `sign(dL/dp) = sign(dL/dx)`: the normalisation
/// divides by a positive `std`.
pub fn fgsm(
    model: &Model,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    eps: f64,
    normalization: &Normalization,
) -> Tensor<4> {
    let frozen = model.clone().freeze();
    let [_, c, _, _] = images.dims();
    let device = images.device();
    let per_channel = |values: &[f64]| {
        let v: Vec<f32> = (0..c).map(|i| values[i % values.len()] as f32).collect();
        Tensor::<1>::from_floats(v.as_slice(), &device).reshape([1, c, 1, 1])
    };
    let (mean, std) = (
        per_channel(&normalization.mean),
        per_channel(&normalization.std),
    );
    let sign = loss_input_gradient(&frozen, &images, &labels).sign();
    let pixels = images.detach() * std.clone() + mean.clone();
    let attacked = (pixels + sign.mul_scalar(eps)).clamp(0.0, 1.0);
    (attacked - mean) / std
}

/// `images` `[N, C, H, W]` (normalised) with the `fraction` most salient regions of each image
/// removed (Saliency Grafting Table 6: "remove the top-k salient regions from the images then
/// evaluate"; k = 12.5 % and 25 % there). The paper's own saliency decides, under the evaluated
/// `model`: the cells of the last conv stage's feature map ranked by `S = sum_c |A_c|` (§4.3;
/// a 4x4 grid on a CIFAR ResNet at 32 px), `round(fraction * cells)` of them removed per image.
/// A removed region is set to 0 in normalised units, the data set's mean colour. The paper does
/// not say how it removes a region; this choice is the project's (docs/training.md).
pub fn occlude_most_salient(model: &Model, images: Tensor<4>, fraction: f64) -> Tensor<4> {
    let [n, c, h, w] = images.dims();
    let saliency = feature_map_saliency(model.features(images.clone()));
    let [_, fh, fw] = saliency.dims();
    let cells = fh * fw;
    let k = ((fraction * cells as f64).round() as usize).min(cells);
    if k == 0 {
        return images;
    }
    let device = images.device();
    let (_, top) = saliency.reshape([n, cells]).topk_with_indices(k, 1);
    let removed = Tensor::<2>::zeros([n, cells], &device).scatter(
        1,
        top,
        Tensor::ones([n, k], &device),
        IndexingUpdateOp::Add,
    );
    let pixels = interpolate(
        removed.reshape([n, 1, fh, fw]),
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
    )
    .greater_elem(0.5)
    .repeat_dim(1, c);
    images.mask_fill(pixels, 0.0)
}

/// The `[eval]` table of an experiment config: the evaluations `cargo xtask eval` runs, and the
/// trainer runs when training ends if the table is there.
///
/// ```toml
/// [eval]
/// fgsm_eps = [0.0313725]        # 8/255, CutMix's setting (SaliencyMix Table 4)
/// occlusion = [0.0, 0.125, 0.25] # Saliency Grafting Table 6
/// cam_images = 10
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// FGSM step sizes in pixel units, each in [0, 1].
    pub fgsm_eps: Vec<f64>,
    /// Occluded fractions of the most salient regions, each in [0, 1].
    pub occlusion: Vec<f64>,
    /// Test images in the CAM picture: the first of each class, up to this many (0: none).
    pub cam_images: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            // CutMix's FGSM setting (SaliencyMix Table 4 follows it): eps = 8/255.
            fgsm_eps: vec![8.0 / 255.0],
            // Saliency Grafting Table 6: 0, 12.5 and 25 %.
            occlusion: vec![0.0, 0.125, 0.25],
            cam_images: 10,
        }
    }
}

impl EvalConfig {
    /// The first value out of range, as the config key and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, values) in [
            ("eval.fgsm_eps", &self.fgsm_eps),
            ("eval.occlusion", &self.occlusion),
        ] {
            if let Some(v) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                return Err((key, format!("values must be in [0, 1], got {v}")));
            }
        }
        Ok(())
    }
}

/// What to evaluate a run with (`cargo xtask eval`, the end of training).
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// The checkpoint's epoch; `None`: the newest complete one.
    pub checkpoint: Option<usize>,
    /// Overrides the run's backend.
    pub backend: Option<BackendKind>,
    /// The evaluations; `None`: the run config's `[eval]` table, else [`EvalConfig::default`].
    pub suite: Option<EvalConfig>,
    /// `key=value` overrides of the run's saved config, as `train --set` takes them (e.g.
    /// `dataset.path=...` when the data moved).
    pub overrides: Vec<String>,
}

/// One evaluation's accuracy at one setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtSetting {
    /// `eps` for FGSM, the occluded fraction for occlusion.
    pub setting: f64,
    pub accuracy: Accuracy,
}

/// `eval.json`: a run's checkpoint on its test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub run: PathBuf,
    pub checkpoint: PathBuf,
    pub epoch: usize,
    pub clean: Accuracy,
    pub fgsm: Vec<AtSetting>,
    pub occlusion: Vec<AtSetting>,
    /// The CAM picture, if one was drawn.
    pub cam_png: Option<PathBuf>,
    /// The bar chart of every row's top-1.
    pub chart_png: PathBuf,
    pub seconds: f64,
}

impl EvalReport {
    /// The `eval.json` of the run in `run_dir` when it exists, parses, and evaluated epoch
    /// `epoch` (a report of an earlier checkpoint is not the final model's).
    pub fn read_final(run_dir: &Path, epoch: usize) -> Option<Self> {
        let text = std::fs::read_to_string(run_dir.join("eval.json")).ok()?;
        serde_json::from_str::<Self>(&text)
            .ok()
            .filter(|report| report.epoch == epoch)
    }

    /// The report as the command line prints it: a header line, then a Markdown table of
    /// every evaluation's top-1, top-1 error, top-5 and loss.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} at epoch {} ({} test images, {:.1} s)\n\n\
             | evaluation | top-1 % | top-1 error % | top-5 % | loss |\n|---|---|---|---|---|\n",
            self.checkpoint.display(),
            self.epoch,
            self.clean.images,
            self.seconds
        );
        let mut row = |name: String, a: &Accuracy| {
            out += &format!(
                "| {name} | {:.2} | {:.2} | {:.2} | {:.4} |\n",
                a.top1,
                a.top1_error(),
                a.top5,
                a.loss
            );
        };
        row("clean".into(), &self.clean);
        for AtSetting { setting, accuracy } in &self.fgsm {
            row(
                format!("FGSM eps {setting:.4} ({:.1}/255)", setting * 255.0),
                accuracy,
            );
        }
        for AtSetting { setting, accuracy } in &self.occlusion {
            row(
                format!("top {:.1} % salient regions occluded", setting * 100.0),
                accuracy,
            );
        }
        out
    }
}

/// Why a run could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{}: not a run directory (no config.toml in it)", .0.display())]
    NoRun(PathBuf),
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    #[error("{}: no complete checkpoint to evaluate (train the run first)", .0.display())]
    NoCheckpoint(PathBuf),
    #[error(transparent)]
    Model(#[from] crate::inspect::InspectError),
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    #[error(transparent)]
    Open(#[from] crate::data::OpenError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error("reading the test split: {0}")]
    Batch(String),
    #[error("`{key}`: {message}")]
    Setting { key: &'static str, message: String },
    #[error("drawing the CAM picture: {0}")]
    Figure(String),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Evaluates the run in `run_dir` (its saved `config.toml` and a checkpoint) on its test
/// split: clean accuracy, FGSM at each `eps`, occlusion at each fraction; writes `eval.json`
/// into the run directory (atomically) and returns it.
pub fn evaluate_run(run_dir: &Path, options: &EvalOptions) -> Result<EvalReport, EvalError> {
    let started = std::time::Instant::now();
    if let Some(suite) = &options.suite {
        suite
            .validate()
            .map_err(|(key, message)| EvalError::Setting { key, message })?;
    }
    let config_path = run_dir.join("config.toml");
    if !config_path.is_file() {
        return Err(EvalError::NoRun(run_dir.to_path_buf()));
    }
    let config = ExperimentConfig::load(&config_path, &options.overrides)?;
    // The run's precision, as it trained (`sal_models::autocast`).
    let precision = config.precision;
    sal_models::autocast(precision, || {
        evaluate_config(run_dir, options, config, started)
    })
}

/// [`evaluate_run`] once the run's config is read (`started`: when the call began).
fn evaluate_config(
    run_dir: &Path,
    options: &EvalOptions,
    mut config: ExperimentConfig,
    started: std::time::Instant,
) -> Result<EvalReport, EvalError> {
    let suite = options
        .suite
        .clone()
        .or_else(|| config.eval.clone())
        .unwrap_or_default();
    // The run may have been moved since it trained: its checkpoints are beside its config.
    config.output_dir = Some(run_dir.to_path_buf());
    let device = crate::backend::device(options.backend.unwrap_or(config.backend))?.autodiff();
    let test_set = config.dataset.open(Split::Test)?;
    let cam_set = test_set.clone();
    let first = config.dataset.open(Split::Train)?.load(0)?;
    let num_classes = config.num_classes(test_set.num_classes());
    let epoch = match options.checkpoint {
        Some(epoch) => epoch,
        None => latest_complete_epoch(&run_dir.join("checkpoint"))
            .ok_or_else(|| EvalError::NoCheckpoint(run_dir.join("checkpoint")))?,
    };
    let loaded = SaliencyModel::load_epoch(&config, num_classes, &device, epoch)?;
    let ModelWeights::Checkpoint { path, .. } = loaded.weights else {
        unreachable!("load_epoch loads a checkpoint")
    };
    // Inference BatchNorm, no parameter gradients; FGSM still gets its input gradient.
    let model = loaded.model.freeze();
    let normalization = config.normalization();
    let loader = config.loader(test_set, &first, LoaderMode::Eval, &device);
    let over_test_split = |f: &dyn Fn(ImageBatch) -> ImageBatch| -> Result<Accuracy, EvalError> {
        let mut tally = Tally::default();
        for batch in loader.iter() {
            let batch = f(batch.map_err(|e| EvalError::Batch(e.to_string()))?);
            let logits = model.forward(batch.images.detach());
            tally.add(logits, batch.labels);
        }
        Ok(tally.accuracy())
    };
    let clean = over_test_split(&|batch| batch)?;
    let mut fgsm_results = Vec::new();
    for &eps in &suite.fgsm_eps {
        let accuracy = over_test_split(&|batch| ImageBatch {
            images: fgsm(
                &model,
                batch.images,
                batch.labels.clone(),
                eps,
                &normalization,
            ),
            ..batch
        })?;
        fgsm_results.push(AtSetting {
            setting: eps,
            accuracy,
        });
    }
    let mut occlusion = Vec::new();
    for &fraction in &suite.occlusion {
        let accuracy = over_test_split(&|batch| ImageBatch {
            images: occlude_most_salient(&model, batch.images, fraction),
            ..batch
        })?;
        occlusion.push(AtSetting {
            setting: fraction,
            accuracy,
        });
    }
    let cam_png = if suite.cam_images > 0 {
        let out = run_dir.join("cam.png");
        let transform = config.sample_transform(&first, LoaderMode::Eval);
        let caption = vec![format!(
            "{}: class activation maps of the checkpoint of epoch {epoch} on test images",
            run_dir.display()
        )];
        let picture = cam_picture(
            &model,
            cam_set.as_ref(),
            &transform,
            suite.cam_images,
            caption,
        )?;
        sal_figures::write_png(&picture, &out).map_err(|e| EvalError::Figure(e.to_string()))?;
        Some(out)
    } else {
        None
    };
    let chart_png = run_dir.join("eval.png");
    let mut bars = vec![("clean".to_string(), clean.top1)];
    bars.extend(fgsm_results.iter().map(|r| {
        (
            format!("FGSM {:.1}/255", r.setting * 255.0),
            r.accuracy.top1,
        )
    }));
    bars.extend(
        occlusion
            .iter()
            .map(|r| (format!("occl. {:.1}%", r.setting * 100.0), r.accuracy.top1)),
    );
    let title = format!("test top-1 (%), checkpoint of epoch {epoch}");
    let chart = sal_figures::percent_bars(&title, &bars, (160 + 160 * bars.len() as u32, 420))
        .map_err(|e| EvalError::Figure(e.to_string()))?;
    sal_figures::write_png(&chart, &chart_png).map_err(|e| EvalError::Figure(e.to_string()))?;
    let report = EvalReport {
        run: run_dir.to_path_buf(),
        checkpoint: path,
        epoch,
        clean,
        fgsm: fgsm_results,
        occlusion,
        cam_png,
        chart_png,
        seconds: started.elapsed().as_secs_f64(),
    };
    let out = run_dir.join("eval.json");
    let json = serde_json::to_string_pretty(&report).expect("the report serialises");
    write_atomically(&out, json.as_bytes()).map_err(|source| EvalError::Write {
        path: out.clone(),
        source,
    })?;
    Ok(report)
}

/// The CAM picture of the first test image of each class, up to `count` images: the image,
/// the CAM of the predicted class over it (`sal_models::cam`), true and predicted class.
fn cam_picture(
    model: &Model,
    set: &dyn ImageDataset,
    transform: &SampleTransform,
    count: usize,
    caption: Vec<String>,
) -> Result<image::RgbImage, EvalError> {
    let mut seen = vec![false; set.num_classes()];
    let mut items = Vec::new();
    for index in 0..set.len() {
        if items.len() == count {
            break;
        }
        let label = set.label(index)?;
        if !std::mem::replace(&mut seen[label], true) {
            items.push(set.load(index)?);
        }
    }
    let (c, h, w) = (transform.channels, transform.height, transform.width);
    let per = transform.sample_len();
    let pixels = transform
        .apply_all(&items, None::<&mut rand::rngs::StdRng>)
        .map_err(EvalError::Figure)?;
    let n = items.len();
    let device = model.devices()[0].clone();
    let images = Tensor::<4>::from_data(TensorData::new(pixels.clone(), [n, c, h, w]), &device);
    let (logits, features) = model.forward_with_features(images);
    let probabilities: Vec<f32> = softmax(logits, 1)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| EvalError::Figure(format!("{e:?}")))?;
    let classes = probabilities.len() / n;
    let predicted: Vec<usize> = probabilities
        .chunks(classes)
        .map(|row| {
            (0..classes)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .expect("at least one class")
        })
        .collect();
    let cams = class_activation_map_from_features(model, features, &predicted, [h, w])
        .map_err(|e| EvalError::Figure(e.to_string()))?
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| EvalError::Figure(format!("{e:?}")))?;
    let names = set.class_names();
    let name = |class: usize| {
        names
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string())
    };
    let samples: Vec<CamSample> = (0..n)
        .map(|i| CamSample {
            image: denormalised(
                &pixels[i * per..(i + 1) * per],
                [c, h, w],
                &transform.normalization,
            ),
            cam: cams[i * h * w..(i + 1) * h * w].to_vec(),
            truth: name(items[i].label),
            predicted: name(predicted[i]),
            confidence: probabilities[i * classes + predicted[i]],
        })
        .collect();
    let factor = (128 / h.max(w)).max(1);
    cam_grid(&samples, caption, factor).map_err(|e| EvalError::Figure(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData};
    use sal_models::{Architecture, ModelConfig};

    #[test]
    fn the_tally_counts_top1_top5_and_the_mean_loss() {
        let device = Device::flex();
        // 2 images, 6 classes. Row 0: label 0 is the argmax. Row 1: label 5 is 6th of 6.
        let logits = Tensor::<2>::from_data(
            TensorData::new(
                vec![
                    5.0f32, 1.0, 0.0, 0.0, 0.0, 0.0, //
                    6.0, 5.0, 4.0, 3.0, 2.0, 1.0,
                ],
                [2, 6],
            ),
            &device,
        );
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 5], [2]), &device);
        let mut tally = Tally::default();
        tally.add(logits.clone(), labels.clone());
        let acc = tally.accuracy();
        assert_eq!(acc.images, 2);
        assert_eq!((acc.top1, acc.top5), (50.0, 50.0));
        let lse = |row: &[f64]| row.iter().map(|v| v.exp()).sum::<f64>().ln();
        let expected = ((lse(&[5.0, 1.0, 0.0, 0.0, 0.0, 0.0]) - 5.0)
            + (lse(&[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]) - 1.0))
            / 2.0;
        assert!(
            (acc.loss - expected).abs() < 1e-5,
            "{} vs {expected}",
            acc.loss
        );
        // A second batch adds up: label 1 of row 1 is in its top 5.
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 1], [2]), &device);
        tally.add(logits, labels);
        let acc = tally.accuracy();
        assert_eq!((acc.images, acc.top1, acc.top5), (4, 25.0, 75.0));
    }

    #[test]
    fn occlusion_removes_the_most_salient_cells_of_the_feature_map() {
        let device = Device::flex();
        device.seed(4);
        let model = ModelConfig::new("cifar-resnet18".parse::<Architecture>().unwrap(), 4)
            .with_base_width(Some(4))
            .init(&device);
        let (n, side) = (2, 32);
        let images =
            Tensor::<4>::random([n, 3, side, side], Distribution::Normal(0.5, 1.0), &device);
        let unchanged = occlude_most_salient(&model, images.clone(), 0.0);
        assert_eq!(
            unchanged.into_data().try_to_vec::<f32>().unwrap(),
            images.clone().into_data().try_to_vec::<f32>().unwrap()
        );
        // The 4x4 map of a 32 px input: 25 % is 4 cells of 8x8 pixels per image.
        let saliency = feature_map_saliency(model.features(images.clone()))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let out = occlude_most_salient(&model, images, 0.25)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for i in 0..n {
            let cell_removed = |cell: usize| {
                let (r, c) = (cell / 4, cell % 4);
                (0..3).all(|ch| {
                    (0..8).all(|y| {
                        (0..8).all(|x| {
                            let at = ((i * 3 + ch) * side + r * 8 + y) * side + c * 8 + x;
                            out[at] == 0.0
                        })
                    })
                })
            };
            let removed: Vec<usize> = (0..16).filter(|&cell| cell_removed(cell)).collect();
            assert_eq!(removed.len(), 4, "image {i}: removed cells {removed:?}");
            let s = &saliency[i * 16..(i + 1) * 16];
            let least_removed = removed.iter().map(|&c| s[c]).fold(f32::MAX, f32::min);
            let most_kept = (0..16)
                .filter(|c| !removed.contains(c))
                .map(|c| s[c])
                .fold(f32::MIN, f32::max);
            assert!(
                least_removed >= most_kept,
                "image {i}: a kept cell ({most_kept}) is more salient than a removed one \
                 ({least_removed})"
            );
        }
    }

    #[test]
    fn fgsm_moves_every_pixel_by_eps_along_the_gradient_sign_within_the_pixel_range() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let model = ModelConfig::new("cifar-resnet18".parse::<Architecture>().unwrap(), 4)
            .with_base_width(Some(4))
            .init(&device);
        let norm = Normalization {
            mean: vec![0.5, 0.4, 0.3],
            std: vec![0.25, 0.2, 0.3],
        };
        let n = 3;
        let pixels = Tensor::<4>::random([n, 3, 16, 16], Distribution::Uniform(0.0, 1.0), &device);
        let mean = Tensor::<1>::from_floats([0.5f32, 0.4, 0.3], &device).reshape([1, 3, 1, 1]);
        let std = Tensor::<1>::from_floats([0.25f32, 0.2, 0.3], &device).reshape([1, 3, 1, 1]);
        let images = (pixels.clone() - mean.clone()) / std.clone();
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 2, 3], [n]), &device);
        let eps = 8.0 / 255.0;
        let adversarial = fgsm(&model, images.clone(), labels.clone(), eps, &norm);
        let back = (adversarial.clone() * std + mean)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let before = pixels.into_data().try_to_vec::<f32>().unwrap();
        let mut moved = 0;
        for (a, b) in back.iter().zip(&before) {
            assert!((-1e-6..=1.0 + 1e-6).contains(a), "pixel {a} outside [0, 1]");
            let step = (a - b).abs();
            let clipped = *a <= 1e-6 || *a >= 1.0 - 1e-6;
            assert!(
                (step - eps as f32).abs() < 1e-5 || clipped || step < 1e-6,
                "a pixel moved by {step}, not eps {eps}"
            );
            moved += ((step - eps as f32).abs() < 1e-5) as usize;
        }
        assert!(moved > before.len() / 2, "only {moved} pixels moved");
        // The step raises the loss (first order), and eps = 0 changes nothing.
        let loss = |x: Tensor<4>| {
            let logits = model.clone().freeze().forward(x);
            log_softmax(logits, 1)
                .gather(1, labels.clone().reshape([n, 1]))
                .neg()
                .mean()
                .into_scalar::<f32>()
        };
        assert!(loss(adversarial) > loss(images.clone()));
        let same = fgsm(&model, images.clone(), labels.clone(), 0.0, &norm);
        let diff = (same - images).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "eps 0 moved the batch by {diff}");
    }
}
