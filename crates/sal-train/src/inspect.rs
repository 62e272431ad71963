//! What pictures of a run's mixing need from the data and the run, for `cargo xtask visualize`
//! and for pictures the trainer draws: a batch of real training images after the training
//! transform ([`SampleBatch`]), the model behind the model-guided methods' saliency
//! ([`SaliencyModel`]: the run's newest complete checkpoint, else initial weights). The
//! figures themselves are [`crate::pictures`]'.

use std::path::PathBuf;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sal_core::SaliencyInput;
use sal_models::Model;

use crate::ExperimentConfig;
use crate::checkpoint::{checkpoint_path, latest_complete_epoch};
use crate::data::{DataError, ImageItem, OpenError, Split};
use crate::loader::LoaderMode;
use crate::step::{Classifier, saliency_pass};
use crate::transform::Normalization;

/// Why the images or the model of a picture could not be had.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("opening the {dataset} training set: {source}")]
    Open {
        dataset: String,
        #[source]
        source: Box<OpenError>,
    },
    #[error("the {0} training set is empty")]
    EmptyTrainingSet(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{dataset}: {message}")]
    Transform { dataset: String, message: String },
    #[error("[model]: {0}")]
    Model(String),
    #[error("reading checkpoint {}: {message}", path.display())]
    ReadCheckpoint { path: PathBuf, message: String },
    #[error(
        "checkpoint {} does not fit the config's [model] {architecture}: {message}",
        path.display()
    )]
    CheckpointMismatch {
        path: PathBuf,
        architecture: String,
        message: String,
    },
    #[error("detector = \"given\" needs a caller-supplied map: pick a detector")]
    GivenSaliency,
}

/// A batch of real training images, one per class while classes last, after the training
/// transform (pad, crop, flip, normalise).
pub struct SampleBatch {
    /// `[N, C, H, W]` normalised, on the device it was loaded for.
    pub images: Tensor<4>,
    pub labels: Tensor<1, Int>,
    pub labels_host: Vec<usize>,
    pub num_classes: usize,
    pub class_names: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// The normalisation the images went through.
    pub normalization: Normalization,
}

impl SampleBatch {
    /// `n` images of the config's training set (within its `train_limit`), chosen with the
    /// config's seed: distinct classes first, any image after enough misses. The same seed's
    /// stream then draws the training transform's random crops and flips.
    pub fn load(
        config: &ExperimentConfig,
        n: usize,
        device: &Device,
    ) -> Result<Self, InspectError> {
        let name = config.dataset.name.to_string();
        let set = config
            .dataset
            .open(Split::Train)
            .map_err(|source| InspectError::Open {
                dataset: name.clone(),
                source: Box::new(source),
            })?;
        let len = set.len();
        let limit = config.dataset.train_limit.map_or(len, |l| l.min(len));
        if limit == 0 || n == 0 {
            return Err(InspectError::EmptyTrainingSet(name));
        }
        let num_classes = config.num_classes(set.num_classes());
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut chosen: Vec<ImageItem> = Vec::with_capacity(n);
        for attempt in 0.. {
            if chosen.len() == n {
                break;
            }
            let item = set.load(sal_core::sampling::below(&mut rng, limit))?;
            let seen = chosen.iter().any(|c| c.label == item.label);
            if !seen || attempt >= 50 * n {
                chosen.push(item);
            }
        }
        let transform = config.sample_transform(&chosen[0], LoaderMode::Train);
        let pixels = transform
            .apply_all(&chosen, Some(&mut rng))
            .map_err(|message| InspectError::Transform {
                dataset: name.clone(),
                message,
            })?;
        let (c, h, w) = (transform.channels, transform.height, transform.width);
        let labels_host: Vec<usize> = chosen.iter().map(|i| i.label).collect();
        let label_values: Vec<i64> = labels_host.iter().map(|&l| l as i64).collect();
        Ok(Self {
            images: Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device),
            labels: Tensor::from_data(TensorData::new(label_values, [n]), device),
            labels_host,
            num_classes,
            class_names: set.class_names().to_vec(),
            channels: c,
            height: h,
            width: w,
            normalization: transform.normalization.clone(),
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels_host.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels_host.is_empty()
    }
}

/// Where a [`SaliencyModel`]'s weights came from.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelWeights {
    /// `<output_dir>/checkpoint/model-<epoch>.bpk`.
    Checkpoint { path: PathBuf, epoch: usize },
    /// No complete checkpoint in `looked_in`: initial weights from the config's seed.
    Untrained { looked_in: PathBuf },
}

impl ModelWeights {
    /// One line for captions and logs.
    pub fn describe(&self, architecture: &str) -> String {
        match self {
            Self::Checkpoint { path, epoch } => format!(
                "saliency from the trained {architecture} of {} (epoch {epoch})",
                path.display()
            ),
            Self::Untrained { looked_in } => format!(
                "saliency from an UNTRAINED {architecture} (no checkpoint in {}): it shows \
                 the mechanics, not what a trained model attends to.",
                looked_in.display()
            ),
        }
    }
}

/// The network behind the model-guided methods' saliency (SalfMix, HybridMix: input gradient;
/// Saliency Grafting: feature map), on an autodiff device as the trainer holds it during a
/// training step.
pub struct SaliencyModel {
    pub model: Model,
    pub weights: ModelWeights,
}

impl SaliencyModel {
    /// The newest complete checkpoint of the config's run, else initial weights from its seed.
    pub fn load(
        config: &ExperimentConfig,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self, InspectError> {
        let model = Self::initial(config, num_classes, device)?;
        let dir = config.output_dir().join("checkpoint");
        let Some(epoch) = latest_complete_epoch(&dir) else {
            return Ok(Self {
                model,
                weights: ModelWeights::Untrained { looked_in: dir },
            });
        };
        Self::checkpoint(config, model, epoch)
    }

    /// The config's run at its checkpoint of `epoch` (1-based).
    pub fn load_epoch(
        config: &ExperimentConfig,
        num_classes: usize,
        device: &Device,
        epoch: usize,
    ) -> Result<Self, InspectError> {
        Self::checkpoint(config, Self::initial(config, num_classes, device)?, epoch)
    }

    /// The config's model with the run's initial weights.
    fn initial(
        config: &ExperimentConfig,
        num_classes: usize,
        device: &Device,
    ) -> Result<Model, InspectError> {
        crate::trainer::initial_model(&config.model_config(num_classes), config.seed, device)
            .map_err(|e| InspectError::Model(e.to_string()))
    }

    /// `model` with the weights of the run's checkpoint of `epoch`.
    fn checkpoint(
        config: &ExperimentConfig,
        model: Model,
        epoch: usize,
    ) -> Result<Self, InspectError> {
        let path = checkpoint_path(&config.output_dir().join("checkpoint"), "model", epoch);
        if !path.is_file() {
            return Err(InspectError::ReadCheckpoint {
                message: "no such file".into(),
                path,
            });
        }
        let record = ModuleRecord::load(&path).map_err(|e| InspectError::ReadCheckpoint {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // The trainer checkpoints the whole Classifier (its only parameters are the model's).
        let classifier = Classifier::new(model, None)
            .try_load_record(record)
            .map_err(|e| InspectError::CheckpointMismatch {
                path: path.clone(),
                architecture: config.model.architecture.to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            model: classifier.model,
            weights: ModelWeights::Checkpoint { path, epoch },
        })
    }

    /// What `input` asks for, for the batch `images` (on this model's device) with `labels`:
    /// the training step's own saliency pass ([`saliency_pass`]).
    pub fn saliency(
        &self,
        input: SaliencyInput,
        images: &Tensor<4>,
        labels: &Tensor<1, Int>,
    ) -> Result<Option<Tensor<3>>, InspectError> {
        if input == SaliencyInput::Given {
            return Err(InspectError::GivenSaliency);
        }
        Ok(saliency_pass(&self.model, input, labels).map(|pass| pass(images)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::data::fashion_mnist_dir;

    /// The quickstart config narrowed for tests (seed 3, batch 8, width 4), its run directory
    /// `run_dir`, then `overrides`.
    fn config(run_dir: &Path, overrides: &[&str]) -> ExperimentConfig {
        let quickstart =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/quickstart.toml");
        let mut all = vec![
            "seed=3".to_string(),
            "batch_size=8".to_string(),
            "model.base_width=4".to_string(),
            format!("output_dir=\"{}\"", run_dir.display()),
            format!("dataset.path=\"{}\"", fashion_mnist_dir().display()),
        ];
        all.extend(overrides.iter().map(|s| s.to_string()));
        ExperimentConfig::load(&quickstart, &all).unwrap()
    }

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn samples_are_one_per_class_after_the_training_transform() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), &[]);
        let samples = SampleBatch::load(&c, 5, &Device::flex()).unwrap();
        let classes: std::collections::HashSet<_> = samples.labels_host.iter().collect();
        assert_eq!(classes.len(), 5);
        assert_eq!(samples.len(), 5);
        assert_eq!(
            (samples.channels, samples.height, samples.width),
            (1, 32, 32)
        );
        assert_eq!(samples.images.dims(), [5, 1, 32, 32]);
        assert_eq!(samples.num_classes, 10);
        assert_eq!(samples.class_names[0], "T-shirt/top");
        assert_eq!(samples.normalization, c.normalization());
        // The same seed picks the same images and crops.
        let again = SampleBatch::load(&c, 5, &Device::flex()).unwrap();
        assert_eq!(again.labels_host, samples.labels_host);
        assert_eq!(host(again.images), host(samples.images));
        // More samples than classes: the rest repeat classes.
        let many = SampleBatch::load(&c, 12, &Device::flex()).unwrap();
        assert_eq!(many.len(), 12);
        assert!(SampleBatch::load(&c, 0, &Device::flex()).is_err());
    }

    #[test]
    fn the_runs_checkpoint_is_loaded_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let first = config(&run, &[]);
        let device = Device::flex().autodiff();

        let fresh = SaliencyModel::load(&first, 10, &device).unwrap();
        assert!(matches!(fresh.weights, ModelWeights::Untrained { .. }));
        assert!(fresh.weights.describe("m").contains("UNTRAINED"));

        // A checkpoint as the trainer writes it: the Classifier's record, epoch 2 complete.
        let checkpoint = first.output_dir().join("checkpoint");
        std::fs::create_dir_all(&checkpoint).unwrap();
        device.seed(99);
        let trained = first.model_config(10).init(&device);
        let probe = Tensor::<4>::ones([1, 1, 32, 32], &device);
        let expected = host(trained.forward(probe.clone()));
        Classifier::new(trained, None)
            .into_record()
            .save(checkpoint.join("model-2.bpk"))
            .unwrap();
        for record in ["optim-2.bpk", "scheduler-2.bpk"] {
            std::fs::write(checkpoint.join(record), b"x").unwrap();
        }
        let loaded = SaliencyModel::load(&first, 10, &device).unwrap();
        assert_eq!(
            loaded.weights,
            ModelWeights::Checkpoint {
                path: checkpoint.join("model-2.bpk"),
                epoch: 2
            }
        );
        assert!(loaded.weights.describe("m").contains("epoch 2"));
        assert_eq!(host(loaded.model.forward(probe)), expected);

        // A checkpoint of another architecture is refused, naming the file.
        let other = config(&run, &["model.base_width=8"]);
        let msg = SaliencyModel::load(&other, 10, &device)
            .err()
            .unwrap()
            .to_string();
        assert!(
            msg.contains("model-2.bpk") && msg.contains("does not fit"),
            "{msg}"
        );
    }
}
