//! The model as burn-train's Learner sees it: one training step and one evaluation step, both
//! with soft-target cross-entropy, so a mixing method only has to produce soft targets.

use crate::loader::ImageBatch;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use sal_models::Model;

/// Cross-entropy against soft targets: `mean_n( -sum_k y[n,k] * log_softmax(z)[n,k] )`.
/// With one-hot targets it equals the usual cross-entropy; with `lam*y_a + (1-lam)*y_b` it
/// equals `lam*CE(y_a) + (1-lam)*CE(y_b)`, the loss of the mixing papers' code.
///
/// # Shapes
/// - logits `[N, K]`, targets `[N, K]` (rows sum to 1) -> `[1]`
pub fn soft_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    (targets * log_softmax(logits, 1)).sum_dim(1).mean().neg()
}

/// A classifier under training: the network plus the per-batch work around it.
#[derive(Module, Debug)]
pub struct Classifier {
    pub model: Model,
}

impl Classifier {
    /// Logits and loss of a batch with its plain one-hot targets.
    fn forward_plain(&self, batch: &ImageBatch) -> (Tensor<2>, Tensor<1>) {
        let logits = self.model.forward(batch.images.clone());
        let [_, classes] = logits.dims();
        let targets = batch.labels.clone().one_hot(classes).float();
        let loss = soft_cross_entropy(logits.clone(), targets);
        (logits, loss)
    }
}

impl TrainStep for Classifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let (logits, loss) = self.forward_plain(&batch);
        let grads = loss.backward();
        TrainOutput::new(
            self,
            grads,
            ClassificationOutput::new(loss, logits, batch.labels),
        )
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
