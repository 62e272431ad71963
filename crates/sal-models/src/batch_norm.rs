//! The models' batch norms: burn's `BatchNorm` module (its parameters, running statistics and
//! train/inference switch, unchanged), computed through [`FusedBatchNorm`], a backend extension
//! whose flex implementation makes two passes each way ([`per_channel`]) instead of burn's
//! generic transposes and elementwise chains. Other backends keep burn's operations (the
//! trait's default bodies). Same role and structure as [`crate::conv`].

mod per_channel;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::BatchNorm;
use burn::tensor::{Tensor, TensorData};

use per_channel::Planes;

/// `bn.forward(x)` with the same semantics (batch statistics and a running-statistics update
/// when the device records gradients and the layer's training flag is on, running statistics
/// otherwise), computed through [`FusedBatchNorm`].
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let d = |t: Tensor<1>| t.into_dispatch();
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        let device = x.device();
        return Tensor::from_dispatch(Dispatch::fused_batch_norm(
            x.into_dispatch(),
            d(bn.gamma.val()),
            d(bn.beta.val()),
            d(bn.running_mean.value().to_device(&device)),
            d(bn.running_var.value().to_device(&device)),
            bn.epsilon,
        ));
    }
    let device = x.device();
    let (output, mean, variance) = Dispatch::fused_batch_norm_train(
        x.into_dispatch(),
        d(bn.gamma.val()),
        d(bn.beta.val()),
        bn.epsilon,
    );
    let (mean, variance) = (
        Tensor::<1>::from_dispatch(mean),
        Tensor::<1>::from_dispatch(variance),
    );
    // burn-nn's update, term for term: running = (1 - momentum)·running + momentum·batch.
    let update = |running: Tensor<1>, batch: Tensor<1>| {
        running
            .to_device(&device)
            .mul_scalar(1.0 - bn.momentum)
            .add(batch.detach().mul_scalar(bn.momentum))
            .detach()
    };
    bn.running_mean
        .update(update(bn.running_mean.value_sync(), mean));
    bn.running_var
        .update(update(bn.running_var.value_sync(), variance));
    Tensor::from_dispatch(output)
}

/// Batch norm with given statistics, and the training-mode forward and backward, as one
/// backend extension (flex replaces all three; the defaults are burn's operations).
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait FusedBatchNorm: Backend {
    /// `gamma · (x - mean) / sqrt(variance + epsilon) + beta`, per channel (axis 1).
    fn fused_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        Self::batch_norm(x, gamma, beta, mean, variance, epsilon)
    }

    /// Normalises with the batch's statistics: `(output, mean, biased variance)`.
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let result = Self::batch_norm_train(x, gamma, beta, epsilon);
        (result.output, result.mean, result.variance)
    }

    /// Gradients of [`FusedBatchNorm::fused_batch_norm_train`]: `(x, gamma, beta)`.
    fn fused_batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let grads = Self::batch_norm_train_backward(x, gamma, mean, variance, epsilon, output_grad);
        (grads.x_grad, grads.gamma_grad, grads.beta_grad)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl FusedBatchNorm for burn::backend::Cube {}

impl FusedBatchNorm for Flex {
    fn fused_batch_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        let vectors = [&gamma, &beta, &mean, &variance];
        let Some(p) = planes(&x, &vectors) else {
            return Flex::batch_norm(x, gamma, beta, mean, variance, epsilon);
        };
        let shape = x.shape();
        let [x, gamma, beta, mean, variance] = [x, gamma, beta, mean, variance].map(contiguous);
        let y = per_channel::forward(
            p,
            f32s(&x),
            f32s(&gamma),
            f32s(&beta),
            f32s(&mean),
            f32s(&variance),
            epsilon,
        );
        FlexTensor::from_data(TensorData::new(y, shape))
    }

    fn fused_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let Some(p) = planes(&x, &[&gamma, &beta]) else {
            let result = Flex::batch_norm_train(x, gamma, beta, epsilon);
            return (result.output, result.mean, result.variance);
        };
        let shape = x.shape();
        let [x, gamma, beta] = [x, gamma, beta].map(contiguous);
        let (y, mean, var) =
            per_channel::forward_train(p, f32s(&x), f32s(&gamma), f32s(&beta), epsilon);
        let vector = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, [p.channels]));
        (
            FlexTensor::from_data(TensorData::new(y, shape)),
            vector(mean),
            vector(var),
        )
    }

    fn fused_batch_norm_train_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        output_grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let same_shape = output_grad.shape() == x.shape() && output_grad.dtype() == DType::F32;
        let planes = planes(&x, &[&gamma, &mean, &variance]).filter(|_| same_shape);
        let Some(p) = planes else {
            let grads =
                Flex::batch_norm_train_backward(x, gamma, mean, variance, epsilon, output_grad);
            return (grads.x_grad, grads.gamma_grad, grads.beta_grad);
        };
        let shape = x.shape();
        let [x, gamma, mean, variance, dy] =
            [x, gamma, mean, variance, output_grad].map(contiguous);
        let (dx, dgamma, dbeta) = per_channel::backward(
            p,
            f32s(&x),
            f32s(&gamma),
            f32s(&mean),
            f32s(&variance),
            epsilon,
            f32s(&dy),
        );
        let vector = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, [p.channels]));
        (
            FlexTensor::from_data(TensorData::new(dx, shape)),
            vector(dgamma),
            vector(dbeta),
        )
    }
}

/// The plane layout of an `f32` input of rank >= 2 with `[channels]`-long `f32` per-channel
/// vectors; `None` for anything else (burn's operations run instead).
fn planes(x: &FlexTensor, per_channel: &[&FlexTensor]) -> Option<Planes> {
    let shape = x.shape();
    if x.dtype() != DType::F32 || shape.num_dims() < 2 || shape.num_elements() == 0 {
        return None;
    }
    let channels = shape[1];
    let vectors_fit = per_channel
        .iter()
        .all(|v| v.dtype() == DType::F32 && v.shape().num_elements() == channels);
    vectors_fit.then(|| Planes {
        batch: shape[0],
        channels,
        pixels: shape.num_elements() / (shape[0] * channels),
    })
}

fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("an f32 tensor made contiguous by `contiguous`")
}

impl<B: Backend + FusedBatchNorm, C: CheckpointStrategy> FusedBatchNorm for Autodiff<B, C> {
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // As burn-autodiff's own batch_norm_train node: the input and gamma are checkpointed,
        // the batch statistics ride along in the state, and they come back untracked.
        let prep = FusedBatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let statistics = |mean, variance| {
            (
                FloatTensor::<Self>::new(mean),
                FloatTensor::<Self>::new(variance),
            )
        };
        match prep {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let (y, mean, variance) = B::fused_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                let state = (
                    x_state,
                    gamma_state,
                    mean.clone(),
                    variance.clone(),
                    epsilon,
                );
                let (mean, variance) = statistics(mean, variance);
                (prep.finish(state, y), mean, variance)
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, variance) = B::fused_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                let (mean, variance) = statistics(mean, variance);
                (prep.finish(y), mean, variance)
            }
        }
    }
}

/// Backward step of [`FusedBatchNorm::fused_batch_norm_train`] under autodiff.
#[derive(Debug)]
struct FusedBatchNormBackward;

impl<B: Backend + FusedBatchNorm> Backward<B, 3> for FusedBatchNormBackward {
    type State = (NodeId, NodeId, FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, mean, variance, epsilon) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let gamma = checkpointer.retrieve_node_output::<FloatTensor<B>>(gamma_state);
        let (dx, dgamma, dbeta) =
            B::fused_batch_norm_train_backward(x, gamma, mean, variance, epsilon, grad);
        for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::batch_norm;
    use burn::module::{Param, RunningState};
    use burn::nn::{BatchNorm, BatchNormConfig};
    use burn::tensor::{Device, Distribution, Tensor, Tolerance};

    /// A batch norm with random affine parameters and running statistics: two calls with
    /// the same seed tensors give independent layers (clones would share running state).
    fn random_bn(channels: usize, device: &Device) -> impl Fn() -> BatchNorm {
        let random =
            |low, high| Tensor::<1>::random([channels], Distribution::Uniform(low, high), device);
        let (gamma, beta) = (random(0.5, 1.5), random(-0.5, 0.5));
        let (mean, var) = (random(-1.0, 1.0), random(0.5, 2.0));
        let device = device.clone();
        move || {
            let mut bn = BatchNormConfig::new(channels).init(&device);
            bn.gamma = Param::from_tensor(gamma.clone());
            bn.beta = Param::from_tensor(beta.clone());
            bn.running_mean = RunningState::new(mean.clone());
            bn.running_var = RunningState::new(var.clone());
            bn
        }
    }

    #[test]
    fn inference_matches_burns_batch_norm() {
        let device = Device::flex();
        let bn = random_bn(5, &device)();
        let x = Tensor::<4>::random([3, 5, 4, 6], Distribution::Normal(0.5, 3.0), &device);
        let want = bn.forward(x.clone()).into_data();
        batch_norm(&bn, x)
            .into_data()
            .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
    }

    /// Output, running statistics and the gradients of x, gamma and beta equal burn's.
    fn assert_training_matches(device: &Device) {
        let shapes = [[4, 3, 5, 5], [16, 6, 2, 2], [2, 4, 1, 1]];
        for shape in shapes {
            let make_bn = random_bn(shape[1], device);
            let x = Tensor::<4>::random(shape, Distribution::Normal(3.0, 2.0), device);
            let r = Tensor::<4>::random(shape, Distribution::Default, device);
            let run = |ours: bool| {
                let bn = make_bn();
                let x = x.clone().require_grad();
                let y = if ours {
                    batch_norm(&bn, x.clone())
                } else {
                    bn.forward(x.clone())
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                let grad = |t: Tensor<1>| t.grad(&grads).expect("gradient").into_data();
                (
                    y.into_data(),
                    x.grad(&grads).expect("input gradient").into_data(),
                    grad(bn.gamma.val()),
                    grad(bn.beta.val()),
                    bn.running_mean.value().into_data(),
                    bn.running_var.value().into_data(),
                )
            };
            let want = run(false);
            let got = run(true);
            let tolerance = Tolerance::<f32>::absolute(1e-4);
            got.0.assert_approx_eq::<f32>(&want.0, tolerance);
            got.1.assert_approx_eq::<f32>(&want.1, tolerance);
            got.2.assert_approx_eq::<f32>(&want.2, tolerance);
            got.3.assert_approx_eq::<f32>(&want.3, tolerance);
            got.4.assert_approx_eq::<f32>(&want.4, tolerance);
            got.5.assert_approx_eq::<f32>(&want.5, tolerance);
        }
    }

    #[test]
    fn training_matches_burns_batch_norm() {
        assert_training_matches(&Device::flex().autodiff());
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn training_matches_burns_batch_norm_on_wgpu() {
        use burn::tensor::DeviceKind;
        assert_training_matches(&Device::wgpu(DeviceKind::DefaultDevice).autodiff());
    }
}
