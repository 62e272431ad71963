//! The model as burn-train's Learner sees it: one training step (mixing, forward, soft-target
//! cross-entropy, backward) and one evaluation step.
//!
//! The mixing methods live in sal-core and know no model; what they need from the model is
//! computed here (docs/architecture.md):
//! - SalfMix / HybridMix: the input gradient of the cross-entropy on the clean batch, from an
//!   extra forward and backward pass of the current model (SalfMix paper eq. 3);
//! - Saliency Grafting: the last conv stage's feature map of the forward pass on the clean
//!   batch (paper §4.3), whose logits are reused for the originals when the method trains on
//!   original and grafted images together.

use crate::loader::ImageBatch;
use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use sal_core::model_saliency::{feature_map_saliency, input_gradient_saliency};
use sal_core::targets::{LabelSmoothing, one_hot_targets};
use sal_core::{Augmentation, MixBatch, SaliencyInput};
use sal_models::Model;
use std::sync::Arc;

/// Cross-entropy against soft targets: `mean_n( -sum_k y[n,k] * log_softmax(z)[n,k] )`.
/// With one-hot targets it equals the usual cross-entropy; with `lam*y_a + (1-lam)*y_b` it
/// equals `lam*CE(y_a) + (1-lam)*CE(y_b)`, the loss of the mixing papers' code.
///
/// # Shapes
/// - logits `[N, K]`, targets `[N, K]` (rows sum to 1) -> `[1]`
pub fn soft_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    (targets * log_softmax(logits, 1)).sum_dim(1).mean().neg()
}

/// SalfMix's saliency (paper eq. 3): `max_c |dL/dx|` of `images` under `model`, `L` the
/// cross-entropy with the true `labels`, from an extra forward and backward pass. `images` must
/// be on an autodiff device; the model's BatchNorm runs as it is set (training mode updates the
/// running statistics, as any forward pass during training does).
///
/// # Shapes
/// - images `[N, C, H, W]`, labels `[N]` -> `[N, H, W]`
pub fn input_gradient(model: &Model, images: &Tensor<4>, labels: &Tensor<1, Int>) -> Tensor<3> {
    let images = images.clone().detach().require_grad();
    let logits = model.forward(images.clone());
    let loss = soft_cross_entropy(logits.clone(), one_hot(labels, &logits));
    let grads = loss.backward();
    let gradient = images
        .grad(&grads)
        .expect("the input was marked require_grad");
    input_gradient_saliency(gradient)
}

/// A classifier under training: the network plus the batch mixing around it.
#[derive(Module, Debug)]
pub struct Classifier {
    pub model: Model,
    /// The `[augmentation]` method; `None` trains on the clean batch. Not a parameter: not
    /// saved in checkpoints (it is rebuilt from the config).
    #[module(skip)]
    pub augmentation: Option<Arc<Augmentation>>,
}

impl Classifier {
    pub fn new(model: Model, augmentation: Option<Augmentation>) -> Self {
        Self {
            model,
            augmentation: augmentation.map(Arc::new),
        }
    }

    /// Logits and loss of a batch with its plain one-hot targets.
    fn forward_plain(&self, batch: &ImageBatch) -> (Tensor<2>, Tensor<1>) {
        let logits = self.model.forward(batch.images.clone());
        let loss = soft_cross_entropy(logits.clone(), one_hot(&batch.labels, &logits));
        (logits, loss)
    }

    /// The training step's logits, soft targets and the labels accuracy is logged against.
    fn mixed_forward(&self, augmentation: &Augmentation, batch: ImageBatch) -> Mixed {
        let num_classes = self.model.num_classes();
        let mut mix_batch = MixBatch::new(batch.images.clone(), batch.labels.clone(), num_classes)
            .with_epoch(batch.epoch - 1);
        // Saliency Grafting reads the feature map of the clean forward pass; keep its logits.
        let mut clean_logits = None;
        match augmentation.saliency_input() {
            SaliencyInput::None | SaliencyInput::Given => {}
            SaliencyInput::InputGradient => {
                mix_batch = mix_batch.with_saliency(input_gradient(
                    &self.model,
                    &batch.images,
                    &batch.labels,
                ));
            }
            SaliencyInput::FeatureMap => {
                let (logits, features) = self.model.forward_with_features(batch.images.clone());
                mix_batch = mix_batch.with_saliency(feature_map_saliency(features));
                clean_logits = Some(logits);
            }
        }
        let out = augmentation
            .mix(mix_batch, batch.step)
            .unwrap_or_else(|e| panic!("mixing failed at step {}: {e}", batch.step));
        let n = batch.labels.dims()[0];
        let logits = match (out.trace.originals_prepended, clean_logits) {
            // The first N outputs are the clean batch, whose logits the feature pass computed.
            (true, Some(clean)) => {
                let mixed = out.images.clone().narrow(0, n, n);
                Tensor::cat(vec![clean, self.model.forward(mixed)], 0)
            }
            _ => self.model.forward(out.images.clone()),
        };
        // Accuracy is logged against the batch's own labels, as the papers' code does; extra
        // (mixed) samples count against their dominant label.
        let labels = if logits.dims()[0] == n {
            batch.labels
        } else {
            let extra = out
                .targets
                .clone()
                .narrow(0, n, logits.dims()[0] - n)
                .argmax(1);
            Tensor::cat(vec![batch.labels, extra.flatten(0, 1)], 0)
        };
        Mixed {
            logits,
            targets: out.targets,
            labels,
        }
    }
}

struct Mixed {
    logits: Tensor<2>,
    targets: Tensor<2>,
    labels: Tensor<1, Int>,
}

/// One-hot targets for `labels`, as wide as `logits`, built on the device (burn's `one_hot`
/// reads the labels back to the host to range-check them, a sync point per call).
fn one_hot(labels: &Tensor<1, Int>, logits: &Tensor<2>) -> Tensor<2> {
    let [_, classes] = logits.dims();
    one_hot_targets(labels.clone(), classes, LabelSmoothing::default())
}

impl TrainStep for Classifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let (logits, loss, labels) = match &self.augmentation {
            None => {
                let (logits, loss) = self.forward_plain(&batch);
                (logits, loss, batch.labels)
            }
            Some(augmentation) => {
                let m = self.mixed_forward(augmentation, batch);
                let loss = soft_cross_entropy(m.logits.clone(), m.targets);
                (m.logits, loss, m.labels)
            }
        };
        let grads = loss.backward();
        TrainOutput::new(self, grads, ClassificationOutput::new(loss, logits, labels))
    }
}

impl InferenceStep for Classifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        let (logits, loss) = self.forward_plain(&batch);
        ClassificationOutput::new(loss, logits, batch.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn soft_cross_entropy_is_the_lambda_weighted_sum_of_hard_losses() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![2.0f32, -1.0, 0.5, 0.1, 0.2, 3.0], [2, 3]),
            &device,
        );
        let onehot = |rows: [[f32; 3]; 2]| {
            Tensor::<2>::from_data(TensorData::new(rows.concat(), [2, 3]), &device)
        };
        let ya = onehot([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]);
        let yb = onehot([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]);
        let lam = 0.3f32;
        let mixed = ya.clone() * lam + yb.clone() * (1.0 - lam);
        let got: f32 = soft_cross_entropy(logits.clone(), mixed).into_scalar();
        let la: f32 = soft_cross_entropy(logits.clone(), ya).into_scalar();
        let lb: f32 = soft_cross_entropy(logits.clone(), yb).into_scalar();
        assert!((got - (lam * la + (1.0 - lam) * lb)).abs() < 1e-6);
        // Hand value of the first row's hard loss: logsumexp(2, -1, 0.5) - 2.
        let row0 = ((2f32).exp() + (-1f32).exp() + (0.5f32).exp()).ln() - 2.0;
        let row1 = ((0.1f32).exp() + (0.2f32).exp() + (3f32).exp()).ln() - 3.0;
        assert!((la - (row0 + row1) / 2.0).abs() < 1e-6);
    }
}
