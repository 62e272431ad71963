//! Pictures of a run's mixing: the figure of one mixed batch (target, source, mixed image, soft
//! label; `sal_figures::mixed_batch`), as `cargo xtask visualize` draws it for a chosen batch
//! and as the trainer writes it for the first mixed batch of every epoch
//! (`mixed/epoch-<e>.png`, [`MixedPictures`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::{Int, Tensor};
use sal_core::MixOutput;
use sal_figures::mixed_batch::{self, Caption, MixedBatch};
use sal_figures::{Figure, FigureError};

use crate::ExperimentConfig;
use crate::config::AugmentationTable;
use crate::transform::Normalization;

/// The `[augmentation]` table's parameters as `key = value` pairs, nested tables dotted,
/// `method` left out, in the order of the TOML table (`k_times` first when it is not 1).
pub fn augmentation_parameters(table: &AugmentationTable) -> String {
    fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (key, value) in table {
            let key = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(t) => flatten(&key, t, out),
                _ if key == "method" => {}
                v => out.push(format!("{key} = {v}")),
            }
        }
    }
    let table = toml::Table::try_from(table).expect("an augmentation table serialises");
    let mut pairs = Vec::new();
    flatten("", &table, &mut pairs);
    pairs.join(", ")
}

/// The first caption lines of a picture of `config`'s mixing: the method by its paper name and
/// config name, the data set and seed, then its `[augmentation]` parameters.
pub fn title(config: &ExperimentConfig) -> Vec<String> {
    let augmentation = &config.augmentation;
    vec![
        format!(
            "{}: method = \"{}\", {}, seed {}",
            augmentation.method.display_name(),
            augmentation.method.method_name(),
            config.dataset.name,
            config.seed
        ),
        format!("[augmentation] {}", augmentation_parameters(augmentation)),
    ]
}

/// What a mixed-batch picture shows besides the batch.
#[derive(Debug, Clone, Copy)]
pub struct Legend<'a> {
    /// The samples' classes, one per row.
    pub labels: &'a [usize],
    /// Class names (a class without one shows as `class <k>`).
    pub class_names: &'a [String],
    /// What the images were normalised with.
    pub normalization: &'a Normalization,
}

/// The figure of `out`, the mixer's output for the batch `inputs` (`[N, C, H, W]`, normalised),
/// its first `rows` samples (all with `None`).
pub fn mixed_batch_figure(
    inputs: &Tensor<4>,
    out: &MixOutput,
    rows: Option<usize>,
    legend: Legend<'_>,
    caption: Caption,
) -> Result<Figure, FigureError> {
    let mut mixed = MixedBatch::read(inputs, out)?;
    if let Some(rows) = rows {
        mixed.keep_first(rows);
    }
    let labels = &legend.labels[..mixed.len().min(legend.labels.len())];
    mixed_batch::figure(
        &mixed,
        labels,
        legend.class_names,
        legend.normalization,
        caption,
    )
}

/// The trainer's pictures of its mixing: `<run>/mixed/epoch-<e>.png`, the first mixed batch of
/// every epoch (copy 0 with `k_times`; a batch the method leaves alone, in a warm-up epoch or on
/// a `prob` miss, is not drawn), its first rows, drawn during the training step from what the
/// step mixed (the saliency included: the model being trained, as the step saw it). With
/// `method = "none"` the first batch of the epoch is drawn as it trains: after the transform,
/// hard labels. A picture that cannot be drawn or written is a warning: it never stops
/// training.
#[derive(Debug)]
pub struct MixedPictures {
    dir: PathBuf,
    title: Vec<String>,
    class_names: Vec<String>,
    normalization: Normalization,
    rows: usize,
    /// The latest epoch drawn (0: none).
    drawn: AtomicUsize,
}

impl MixedPictures {
    /// Pictures of `config`'s run into `<run_dir>/mixed/`, the classes named `class_names`.
    pub fn new(config: &ExperimentConfig, run_dir: &Path, class_names: Vec<String>) -> Self {
        Self {
            dir: run_dir.join("mixed"),
            title: title(config),
            class_names,
            normalization: config.normalization(),
            rows: config.pictures.rows,
            drawn: AtomicUsize::new(0),
        }
    }

    /// The picture of `epoch` (1-based).
    pub fn path(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("epoch-{epoch}.png"))
    }

    /// True while `epoch` has no picture yet.
    pub fn due(&self, epoch: usize) -> bool {
        self.drawn.load(Ordering::Relaxed) < epoch
    }

    /// Draws `out`, the mixing of the clean batch `images` / `labels` at `step` of `epoch`, and
    /// writes it (through a temporary file: a kill leaves no half picture), if the epoch has no
    /// picture yet and the batch was mixed (or the method is `none`).
    pub fn write(
        &self,
        epoch: usize,
        step: u64,
        images: &Tensor<4>,
        labels: &Tensor<1, Int>,
        out: &MixOutput,
    ) {
        let shown = out.trace.applied || out.trace.method == "none";
        if !shown || self.drawn.fetch_max(epoch, Ordering::Relaxed) >= epoch {
            return;
        }
        let drawn = || -> Result<(), FigureError> {
            let n = images.dims()[0];
            let labels: Vec<usize> = labels
                .clone()
                .try_into_vec_as::<i64>()
                .map_err(|e| FigureError::Tensor {
                    what: "the labels",
                    message: e.to_string(),
                })?
                .into_iter()
                .map(|l| l as usize)
                .collect();
            let mut caption = Caption {
                title: self.title.clone(),
                notes: Vec::new(),
            };
            let (what, how) = if out.trace.method == "none" {
                ("batch", "as the step trains on it")
            } else {
                ("mixed batch", "as the step mixed it")
            };
            caption.title.push(format!(
                "The first {what} of epoch {epoch} (training step {step}) {how}: its first {} \
                 of {n} images.",
                self.rows.min(n)
            ));
            let legend = Legend {
                labels: &labels,
                class_names: &self.class_names,
                normalization: &self.normalization,
            };
            let figure = mixed_batch_figure(images, out, Some(self.rows), legend, caption)?;
            let path = self.path(epoch);
            let create = |source| FigureError::Create {
                path: self.dir.clone(),
                source,
            };
            std::fs::create_dir_all(&self.dir).map_err(create)?;
            let tmp = path.with_extension("png.tmp");
            sal_figures::write_png(&figure.render(), &tmp)?;
            std::fs::rename(&tmp, &path).map_err(|source| FigureError::Create { path, source })
        };
        if let Err(e) = drawn() {
            eprintln!(
                "warning: no picture {} of the mixed batch: {e}",
                self.path(epoch).display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_listed_flat() {
        let text = "name = \"x\"\nepochs = 1\nbatch_size = 8\n[dataset]\nname = \"fashion-mnist\"\n\
                    [model]\narchitecture = \"cifar-resnet18\"\n[optimizer]\nlr = 0.1\n";
        let c = ExperimentConfig::parse(
            text,
            Path::new("x.toml"),
            &[
                "augmentation.method=hybridmix".into(),
                "augmentation.patch_ratio=0.25".into(),
                "augmentation.mix.method=saliencymix".into(),
                "augmentation.mix.prob=1.0".into(),
            ],
        )
        .unwrap();
        let text = augmentation_parameters(&c.augmentation);
        assert!(text.contains("patch_ratio = 0.25"), "{text}");
        assert!(text.contains("mix.detector = \"fine-grained\""), "{text}");
        assert!(text.contains("mix.prob = 1.0"), "{text}");
        assert!(text.contains("mix.method = \"saliencymix\""), "{text}");
        assert!(!text.contains("hybridmix"), "{text}");
        assert!(!text.contains("k_times"), "{text}");
        let mut k = c.augmentation.clone();
        k.k_times = 3;
        assert!(augmentation_parameters(&k).starts_with("k_times = 3"));
    }
}
