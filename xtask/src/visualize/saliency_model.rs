//! The model behind the model-guided methods' saliency (SalfMix, HybridMix: input gradient;
//! Saliency Grafting: feature map): the config's trained checkpoint when its run has one, else a
//! freshly initialised network, and the pictures say which.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Int, Tensor};
use sal_core::SaliencyInput;
use sal_core::model_saliency::feature_map_saliency;
use sal_models::Model;
use sal_train::ExperimentConfig;
use sal_train::checkpoint::{checkpoint_path, latest_complete_epoch};
use sal_train::step::{Classifier, input_gradient};

/// Where the network's weights came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Weights {
    /// `<output_dir>/checkpoint/model-<epoch>.bpk`.
    Checkpoint { path: PathBuf, epoch: usize },
    /// No complete checkpoint in `looked_in`: initial weights from the config's seed.
    Untrained { looked_in: PathBuf },
}

impl Weights {
    /// One line for captions and stdout.
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

/// A network on an autodiff device, as the trainer holds it during a training step.
pub struct SaliencyModel {
    pub model: Model,
    pub weights: Weights,
}

impl SaliencyModel {
    /// The newest complete checkpoint of the config's run, else initial weights.
    pub fn load(config: &ExperimentConfig, num_classes: usize, device: &Device) -> Result<Self> {
        let model_config = config.model_config(num_classes);
        device.seed(config.seed);
        let model = model_config
            .try_init(device)
            .map_err(|e| anyhow::anyhow!("[model]: {e}"))?;
        let dir = config.output_dir().join("checkpoint");
        let Some(epoch) = latest_complete_epoch(&dir) else {
            return Ok(Self {
                model,
                weights: Weights::Untrained { looked_in: dir },
            });
        };
        let path = checkpoint_path(&dir, "model", epoch);
        let record = ModuleRecord::load(&path)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("reading checkpoint {}", path.display()))?;
        // The trainer checkpoints the whole Classifier (its only parameters are the model's).
        let classifier = Classifier::new(model, None)
            .try_load_record(record)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| {
                format!(
                    "checkpoint {} does not fit the config's [model] {}",
                    path.display(),
                    config.model.architecture
                )
            })?;
        Ok(Self {
            model: classifier.model,
            weights: Weights::Checkpoint { path, epoch },
        })
    }

    /// What `input` asks for, for the batch `images` (on this model's device) with `labels`.
    pub fn saliency(
        &self,
        input: SaliencyInput,
        images: &Tensor<4>,
        labels: &Tensor<1, Int>,
    ) -> Result<Option<Tensor<3>>> {
        Ok(match input {
            SaliencyInput::None => None,
            SaliencyInput::InputGradient => Some(input_gradient(&self.model, images, labels)),
            SaliencyInput::FeatureMap => {
                Some(feature_map_saliency(self.model.features(images.clone())))
            }
            SaliencyInput::Given => {
                bail!("detector = \"given\" needs a caller-supplied map: pick a detector")
            }
        })
    }
}
