//! The models' batch norms: burn's `BatchNorm` module (its parameters, running statistics and
//! train/inference switch, unchanged), computed through [`FusedBatchNorm`], a backend extension
//! whose flex implementation makes two passes each way (`per_channel`) instead of burn's
//! generic transposes and elementwise chains. Other backends keep burn's operations (the
//! trait's default bodies). Same role and structure as [`super::conv`].

#[allow(unsafe_code)] // uninitialised outputs
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
use burn::tensor::Tensor;

use crate::kernels::flex_slices::{contiguous, f32s, tensor};

use per_channel::Planes;

/// `bn.forward(x)` with the same semantics (batch statistics and a running-statistics update
/// when the device records gradients and the layer's training flag is on, running statistics
/// otherwise), computed through [`FusedBatchNorm`].
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    apply(bn, x, Activation::Identity)
}

/// `relu(bn.forward(x))` in one pass each way on flex (the pre-activation networks' and the
/// post-activation blocks' first half).
pub fn batch_norm_relu(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    apply(bn, x, Activation::Relu)
}

fn apply(bn: &BatchNorm, x: Tensor<4>, activation: Activation) -> Tensor<4> {
    let d = |t: Tensor<1>| t.into_dispatch();
    let device = x.device();
    if !(device.is_autodiff() && bn.training.is_enabled()) {
        return Tensor::from_dispatch(Dispatch::fused_batch_norm(
            x.into_dispatch(),
            d(bn.gamma.val()),
            d(bn.beta.val()),
            d(bn.running_mean.value().to_device(&device)),
            d(bn.running_var.value().to_device(&device)),
            bn.epsilon,
            activation,
        ));
    }
    let (output, mean, variance) = Dispatch::fused_batch_norm_train(
        x.into_dispatch(),
        d(bn.gamma.val()),
        d(bn.beta.val()),
        bn.epsilon,
        activation,
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

/// What [`FusedBatchNorm`] applies to the normalised values, in the same pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Nothing: the batch norm's output as is.
    Identity,
    /// burn's `relu`: `max(·, 0)`, NaN kept.
    Relu,
}

impl Activation {
    /// The activation of `y` by burn's operation on `B`.
    fn apply<B: Backend>(self, y: FloatTensor<B>) -> FloatTensor<B> {
        match self {
            Self::Identity => y,
            Self::Relu => B::relu(y),
        }
    }

    /// The gradient reaching the activation's input, by burn's operation on `B`: `output_grad`
    /// where `output` (the activation's output) is positive or NaN for the ReLU.
    fn backward<B: Backend>(
        self,
        output: FloatTensor<B>,
        output_grad: FloatTensor<B>,
    ) -> FloatTensor<B> {
        match self {
            Self::Identity => output_grad,
            Self::Relu => B::relu_backward(output, output_grad),
        }
    }
}

/// Batch norm with given statistics, and the training-mode forward and backward, each with an
/// [`Activation`] on the output, as one backend extension (flex replaces all three; the
/// defaults are burn's operations).
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait FusedBatchNorm: Backend {
    /// `gamma · (x - mean) / sqrt(variance + epsilon) + beta`, per channel (axis 1), then the
    /// activation.
    fn fused_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        activation: Activation,
    ) -> FloatTensor<Self> {
        activation.apply::<Self>(Self::batch_norm(x, gamma, beta, mean, variance, epsilon))
    }

    /// Normalises with the batch's statistics, then the activation:
    /// `(output, mean, biased variance)`.
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        activation: Activation,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let result = Self::batch_norm_train(x, gamma, beta, epsilon);
        let output = activation.apply::<Self>(result.output);
        (output, result.mean, result.variance)
    }

    /// Gradients of [`FusedBatchNorm::fused_batch_norm_train`] with respect to `(x, gamma,
    /// beta)`. With [`Activation::Relu`], `output` is the forward's output (the ReLU's mask);
    /// with [`Activation::Identity`] it is not read.
    #[allow(clippy::too_many_arguments)]
    fn fused_batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        output_grad: FloatTensor<Self>,
        output: FloatTensor<Self>,
        activation: Activation,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let output_grad = activation.backward::<Self>(output, output_grad);
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
        activation: Activation,
    ) -> FlexTensor {
        let Some(p) = planes(&x, &[&gamma, &beta, &mean, &variance]) else {
            let y = Flex::batch_norm(x, gamma, beta, mean, variance, epsilon);
            return activation.apply::<Flex>(y);
        };
        let shape = x.shape();
        let [x, gamma, beta, mean, variance] = [x, gamma, beta, mean, variance].map(contiguous);
        let [x, gamma, beta, mean, variance] = [&x, &gamma, &beta, &mean, &variance].map(f32s);
        let y = per_channel::forward(p, x, gamma, beta, mean, variance, epsilon, activation);
        tensor(y, shape)
    }

    fn fused_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        activation: Activation,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let Some(p) = planes(&x, &[&gamma, &beta]) else {
            let result = Flex::batch_norm_train(x, gamma, beta, epsilon);
            let output = activation.apply::<Flex>(result.output);
            return (output, result.mean, result.variance);
        };
        let shape = x.shape();
        let [x, gamma, beta] = [x, gamma, beta].map(contiguous);
        let [x, gamma, beta] = [&x, &gamma, &beta].map(f32s);
        let (y, mean, var) = per_channel::forward_train(p, x, gamma, beta, epsilon, activation);
        let vector = |v: Vec<f32>| tensor(v, [p.channels]);
        (tensor(y, shape), vector(mean), vector(var))
    }

    fn fused_batch_norm_train_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        output_grad: FlexTensor,
        output: FlexTensor,
        activation: Activation,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let relu = activation == Activation::Relu;
        let fits = |t: &FlexTensor| t.shape() == x.shape() && t.dtype() == DType::F32;
        let tensors_fit = fits(&output_grad) && (!relu || fits(&output));
        let planes = planes(&x, &[&gamma, &mean, &variance]).filter(|_| tensors_fit);
        let Some(p) = planes else {
            let output_grad = activation.backward::<Flex>(output, output_grad);
            let grads =
                Flex::batch_norm_train_backward(x, gamma, mean, variance, epsilon, output_grad);
            return (grads.x_grad, grads.gamma_grad, grads.beta_grad);
        };
        let shape = x.shape();
        let [x, gamma, mean, variance, dy] =
            [x, gamma, mean, variance, output_grad].map(contiguous);
        let output = relu.then(|| contiguous(output));
        let relu_output = output.as_ref().map(f32s);
        let [x, gamma, mean, variance, dy] = [&x, &gamma, &mean, &variance, &dy].map(f32s);
        let (dx, dgamma, dbeta) =
            per_channel::backward(p, x, gamma, mean, variance, epsilon, dy, relu_output);
        let vector = |v: Vec<f32>| tensor(v, [p.channels]);
        (tensor(dx, shape), vector(dgamma), vector(dbeta))
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

impl<B: Backend + FusedBatchNorm, C: CheckpointStrategy> FusedBatchNorm for Autodiff<B, C> {
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        activation: Activation,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // As burn-autodiff's own batch_norm_train node: the input and gamma are checkpointed,
        // the batch statistics ride along in the state, and they come back untracked. With the
        // ReLU the output rides along too: its sign is the ReLU's gradient mask (the next
        // layer keeps the same buffer alive as its input anyway).
        let prep = FusedBatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let forward = |x: FloatTensor<Self>, gamma: FloatTensor<Self>| {
            let (x, gamma, beta) = (
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
            );
            B::fused_batch_norm_train(x, gamma, beta, epsilon, activation)
        };
        let (output, mean, variance) = match prep {
            OpsKind::Tracked(mut prep) => {
                let (x_state, gamma_state) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
                let (y, mean, variance) = forward(x, gamma);
                let state = BatchNormState {
                    x: x_state,
                    gamma: gamma_state,
                    mean: mean.clone(),
                    variance: variance.clone(),
                    epsilon,
                    relu_output: (activation == Activation::Relu).then(|| y.clone()),
                };
                (prep.finish(state, y), mean, variance)
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, variance) = forward(x, gamma);
                (prep.finish(y), mean, variance)
            }
        };
        (
            output,
            FloatTensor::<Self>::new(mean),
            FloatTensor::<Self>::new(variance),
        )
    }
}

/// What the backward step of [`FusedBatchNorm::fused_batch_norm_train`] keeps.
#[derive(Clone, Debug)]
struct BatchNormState<T> {
    x: NodeId,
    gamma: NodeId,
    mean: T,
    variance: T,
    epsilon: f64,
    /// The output, when the op applied the ReLU.
    relu_output: Option<T>,
}

/// Backward step of [`FusedBatchNorm::fused_batch_norm_train`] under autodiff.
#[derive(Debug)]
struct FusedBatchNormBackward;

impl<B: Backend + FusedBatchNorm> Backward<B, 3> for FusedBatchNormBackward {
    type State = BatchNormState<FloatTensor<B>>;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(s.x);
        let gamma = checkpointer.retrieve_node_output::<FloatTensor<B>>(s.gamma);
        let (activation, output) = match s.relu_output {
            Some(output) => (Activation::Relu, output),
            // Without the ReLU the output is not read; the gradient stands in for it.
            None => (Activation::Identity, grad.clone()),
        };
        let (dx, dgamma, dbeta) = B::fused_batch_norm_train_backward(
            x, gamma, s.mean, s.variance, s.epsilon, grad, output, activation,
        );
        for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{batch_norm, batch_norm_relu};
    use crate::kernels::relu::assert_same_specials;
    use burn::module::{Param, RunningState};
    use burn::nn::{BatchNorm, BatchNormConfig};
    use burn::tensor::activation::relu;
    use burn::tensor::{Device, Distribution, Tensor, TensorData, Tolerance};

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

    /// Ours (with or without the fused ReLU) and burn's module followed by `relu`.
    fn both(relu_too: bool) -> [fn(&BatchNorm, Tensor<4>) -> Tensor<4>; 2] {
        if relu_too {
            [batch_norm_relu, |bn, x| relu(bn.forward(x))]
        } else {
            [batch_norm, |bn, x| bn.forward(x)]
        }
    }

    #[test]
    fn inference_matches_burns_batch_norm() {
        let device = Device::flex();
        for relu_too in [false, true] {
            let [ours, burns] = both(relu_too);
            let bn = random_bn(5, &device)();
            let x = Tensor::<4>::random([3, 5, 4, 6], Distribution::Normal(0.5, 3.0), &device);
            let want = burns(&bn, x.clone()).into_data();
            ours(&bn, x)
                .into_data()
                .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
        }
    }

    /// Output, running statistics and the gradients of x, gamma and beta equal burn's, with
    /// and without the fused ReLU.
    fn assert_training_matches(device: &Device) {
        let shapes = [[4, 3, 5, 5], [16, 6, 2, 2], [2, 4, 1, 1]];
        for (shape, relu_too) in shapes.into_iter().flat_map(|s| [(s, false), (s, true)]) {
            let make_bn = random_bn(shape[1], device);
            let x = Tensor::<4>::random(shape, Distribution::Normal(3.0, 2.0), device);
            let r = Tensor::<4>::random(shape, Distribution::Default, device);
            let run = |forward: fn(&BatchNorm, Tensor<4>) -> Tensor<4>| {
                let bn = make_bn();
                let x = x.clone().require_grad();
                let y = forward(&bn, x.clone());
                let grads = (y.clone() * r.clone()).sum().backward();
                let grad = |t: Tensor<1>| t.grad(&grads).expect("gradient").into_data();
                [
                    y.into_data(),
                    x.grad(&grads).expect("input gradient").into_data(),
                    grad(bn.gamma.val()),
                    grad(bn.beta.val()),
                    bn.running_mean.value().into_data(),
                    bn.running_var.value().into_data(),
                ]
            };
            let [ours, burns] = both(relu_too);
            let (want, got) = (run(burns), run(ours));
            for (got, want) in got.iter().zip(&want) {
                // burn reduces in f32 through transposes, we in f64 lanes: they differ in the
                // last digits (up to ~1e-3 relative on small gradients).
                got.assert_approx_eq::<f32>(want, Tolerance::rel_abs(2e-3, 1e-4));
            }
        }
    }

    #[test]
    fn training_matches_burns_batch_norm() {
        assert_training_matches(&Device::flex().autodiff());
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn training_matches_burns_batch_norm_on_wgpu() {
        assert_training_matches(&crate::wgpu_device().expect(crate::WGPU_API_VAR).autodiff());
    }

    /// NaN and ±inf inputs through ours and burn's module (+ `relu`), with and without the
    /// fused ReLU: NaN and infinities where burn has them, the finite values close; on an
    /// autodiff device (training) the gradients and running statistics too.
    ///
    /// In training a NaN or an infinity makes its channel's statistics NaN, so the whole
    /// channel's output is NaN; the ReLU's gradient still passes there (burn's
    /// `relu_backward` keeps it at NaN outputs), which gives a finite beta gradient: that is
    /// what tells a gate that zeroes NaN outputs apart. In inference only the element is hit.
    fn assert_specials_match(device: &Device) {
        let training = device.is_autodiff();
        // Channel 0 holds a NaN, channel 1 +inf, channel 2 -inf, channel 3 only finite values
        // (and ±0).
        let shape = [2, 4, 3, 3];
        let x: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|i| {
                let (sample, channel, pixel) = (i / 36, i / 9 % 4, i % 9);
                let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0];
                match (sample, pixel) {
                    (1, 4) => special[channel],
                    (0, 2) => 0.0,
                    _ => (i as f32 * 0.37).sin() * 2.0,
                }
            })
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(x, shape), device);
        let r = Tensor::<4>::random(shape, Distribution::Default, device);
        for relu_too in [false, true] {
            let make_bn = random_bn(shape[1], device);
            let run = |forward: fn(&BatchNorm, Tensor<4>) -> Tensor<4>| {
                let bn = make_bn();
                if !training {
                    return vec![forward(&bn, x.clone()).into_data()];
                }
                let x = x.clone().require_grad();
                let y = forward(&bn, x.clone());
                let grads = (y.clone() * r.clone()).sum().backward();
                let grad = |t: Tensor<1>| t.grad(&grads).expect("gradient").into_data();
                vec![
                    y.into_data(),
                    x.grad(&grads).expect("input gradient").into_data(),
                    grad(bn.gamma.val()),
                    grad(bn.beta.val()),
                    bn.running_mean.value().into_data(),
                    bn.running_var.value().into_data(),
                ]
            };
            let [ours, burns] = both(relu_too);
            let (want, got) = (run(burns), run(ours));
            let y = want[0].try_to_vec::<f32>().expect("f32 values");
            let nan = y.iter().filter(|v| v.is_nan()).count();
            let expected_nan = if training { 3 * 18 } else { 1 };
            assert_eq!(nan, expected_nan, "NaN outputs (relu {relu_too})");
            if training {
                let dbeta = want[3].try_to_vec::<f32>().expect("f32 values");
                assert!(
                    dbeta.iter().all(|v| v.is_finite()),
                    "beta gradient {dbeta:?}"
                );
            }
            let names = [
                "output",
                "dx",
                "dgamma",
                "dbeta",
                "running mean",
                "running var",
            ];
            for (what, (got, want)) in names.into_iter().zip(got.iter().zip(&want)) {
                let what = format!("{what} (relu {relu_too})");
                // As in `assert_training_matches`: f64 reductions against burn's f32 ones.
                assert_same_specials(got, want, 2e-3, &what);
            }
        }
    }

    #[test]
    fn nan_and_inf_propagate_as_burns_batch_norm() {
        assert_specials_match(&Device::flex());
        assert_specials_match(&Device::flex().autodiff());
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn nan_and_inf_propagate_as_burns_batch_norm_on_wgpu() {
        let device = crate::wgpu_device().expect(crate::WGPU_API_VAR);
        assert_specials_match(&device);
        assert_specials_match(&device.autodiff());
    }
}
