//! `relu(residual + shortcut)`, the end of every post-activation residual block, as one op:
//! one parallel pass forward and one backward on flex, where burn-flex runs the add and the
//! ReLU as separate passes (its ReLU on one thread). Other backends keep burn's two operations
//! (the trait's default bodies). Same structure as [`super::conv`].

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, FloatTensorOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::Tensor;

use crate::kernels::flex_slices::{contiguous, f32s, tensor};
use crate::kernels::relu::{relu, relu_gate};
use rayon::prelude::*;

use crate::kernels::uninit::{assume_init, uninit};

/// `relu(lhs + rhs)` through [`AddRelu`].
pub fn add_relu(lhs: Tensor<4>, rhs: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(Dispatch::add_relu(lhs.into_dispatch(), rhs.into_dispatch()))
}

/// `relu(lhs + rhs)` and its gradient as a backend extension.
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait AddRelu: Backend {
    /// `relu(lhs + rhs)`, same shapes: NaN stays NaN (burn's `relu`).
    fn add_relu(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::relu(Self::float_add(lhs, rhs))
    }

    /// The gradient reaching both inputs: `output_grad` where `output` is positive or NaN,
    /// else 0 (burn's `relu_backward`).
    fn add_relu_backward(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::relu_backward(output, output_grad)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl AddRelu for burn::backend::Cube {}

/// Elements per parallel task: large enough to amortise scheduling, small enough to balance.
const CHUNK: usize = 1 << 16;

impl AddRelu for Flex {
    fn add_relu(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor {
        zip_map(
            lhs,
            rhs,
            |a, b| relu(a + b),
            |lhs, rhs| Flex::relu(Flex::float_add(lhs, rhs)),
        )
    }

    fn add_relu_backward(output: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        zip_map(output, output_grad, relu_gate, Flex::relu_backward)
    }
}

/// `f(a, b)` element by element over two `f32` tensors of one shape, in parallel; burn's own
/// operation (`fallback`) for anything else.
fn zip_map(
    a: FlexTensor,
    b: FlexTensor,
    f: impl Fn(f32, f32) -> f32 + Sync,
    fallback: impl FnOnce(FlexTensor, FlexTensor) -> FlexTensor,
) -> FlexTensor {
    if a.dtype() != DType::F32 || b.dtype() != DType::F32 || a.shape() != b.shape() {
        return fallback(a, b);
    }
    let shape = a.shape();
    let (a, b) = (contiguous(a), contiguous(b));
    let (a, b) = (f32s(&a), f32s(&b));
    let mut out = uninit(a.len());
    assert_eq!(b.len(), a.len(), "operand lengths");
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(out, (a, b))| {
            for (out, (a, b)) in out.iter_mut().zip(a.iter().zip(b)) {
                out.write(f(*a, *b));
            }
        });
    // SAFETY: `a` and `b` are as long as `out` (`uninit(a.len())` and the assert above), so
    // the zipped chunks cover `out`, and each is written whole.
    tensor(unsafe { assume_init(out) }, shape)
}

impl<B: Backend + AddRelu, C: CheckpointStrategy> AddRelu for Autodiff<B, C> {
    fn add_relu(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        // The output is the state: its sign is the gradient mask for both inputs.
        match AddReluBackward
            .prepare::<C>([lhs.node(), rhs.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::add_relu(lhs.into_primitive(), rhs.into_primitive());
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::add_relu(lhs.into_primitive(), rhs.into_primitive()))
            }
        }
    }
}

/// Backward step of [`AddRelu::add_relu`] under autodiff.
#[derive(Debug)]
struct AddReluBackward;

impl<B: Backend + AddRelu> Backward<B, 2> for AddReluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_lhs, node_rhs] = ops.parents;
        let grad = B::add_relu_backward(ops.state, grads.consume::<B>(&ops.node));
        match (node_lhs, node_rhs) {
            (Some(lhs), Some(rhs)) => {
                grads.register::<B>(lhs.id, grad.clone());
                grads.register::<B>(rhs.id, grad);
            }
            (Some(node), None) | (None, Some(node)) => grads.register::<B>(node.id, grad),
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::add_relu;
    use crate::kernels::relu::assert_same_specials;
    use burn::tensor::activation::relu;
    use burn::tensor::{Device, Distribution, Tensor, TensorData, Tolerance};

    fn assert_matches_add_then_relu(device: &Device) {
        // 2x3x300x300 spans several parallel chunks; one operand untracked.
        for (shape, track_rhs) in [([2, 3, 4, 5], true), ([2, 3, 300, 300], false)] {
            let a = Tensor::<4>::random(shape, Distribution::Default, device) - 0.5;
            let b = Tensor::<4>::random(shape, Distribution::Default, device) - 0.5;
            let r = Tensor::<4>::random(shape, Distribution::Default, device);
            let run = |ours: bool| {
                let (a, b) = (a.clone().require_grad(), b.clone());
                let b = if track_rhs { b.require_grad() } else { b };
                let y = if ours {
                    add_relu(a.clone(), b.clone())
                } else {
                    relu(a.clone() + b.clone())
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                let db = b.grad(&grads).map(|g| g.into_data());
                (
                    y.into_data(),
                    a.grad(&grads).expect("lhs gradient").into_data(),
                    db,
                )
            };
            let (want, got) = (run(false), run(true));
            let tolerance = Tolerance::<f32>::absolute(1e-6);
            got.0.assert_approx_eq::<f32>(&want.0, tolerance);
            got.1.assert_approx_eq::<f32>(&want.1, tolerance);
            assert_eq!(got.2.is_some(), track_rhs);
            if let (Some(got), Some(want)) = (got.2, want.2) {
                got.assert_approx_eq::<f32>(&want, tolerance);
            }
        }
    }

    #[test]
    fn matches_add_then_relu() {
        assert_matches_add_then_relu(&Device::flex().autodiff());
        // Inference: plain device.
        let device = Device::flex();
        let a = Tensor::<4>::random([2, 2, 3, 3], Distribution::Default, &device) - 0.5;
        let b = Tensor::<4>::random([2, 2, 3, 3], Distribution::Default, &device) - 0.5;
        add_relu(a.clone(), b.clone())
            .into_data()
            .assert_approx_eq::<f32>(&relu(a + b).into_data(), Tolerance::absolute(1e-6));
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn matches_add_then_relu_on_wgpu() {
        assert_matches_add_then_relu(&crate::wgpu_device().expect(crate::WGPU_API_VAR).autodiff());
    }

    /// NaN, ±inf, ±0 and overflowing sums through ours and through burn's `relu(lhs + rhs)`:
    /// the same output and, on an autodiff device, the same gradients (NaN gradients
    /// included, which the ReLU zeroes where its output is not positive), bit for bit.
    fn assert_specials_match(device: &Device) {
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            f32::MAX,
            -2.5,
            1.5,
        ];
        let k = specials.len();
        let shape = [2, 3, 4, 5];
        let len = shape.iter().product::<usize>();
        let values = |f: &dyn Fn(usize) -> f32| {
            let v: Vec<f32> = (0..len).map(f).collect();
            Tensor::<4>::from_data(TensorData::new(v, shape), device)
        };
        // Every pair of specials occurs (`i` and `i / k` run through all of them).
        let a = values(&|i| specials[i % k]);
        let b = values(&|i| specials[(i / k) % k]);
        let r = values(&|i| {
            if i % 7 == 0 {
                f32::NAN
            } else {
                0.25 + i as f32
            }
        });
        let track = |t: &Tensor<4>| {
            if device.is_autodiff() {
                t.clone().require_grad()
            } else {
                t.clone()
            }
        };
        let run = |ours: bool| {
            let (a, b) = (track(&a), track(&b));
            let y = if ours {
                add_relu(a.clone(), b.clone())
            } else {
                relu(a.clone() + b.clone())
            };
            if !device.is_autodiff() {
                return vec![y.into_data()];
            }
            let grads = (y.clone() * r.clone()).sum().backward();
            let grad = |t: Tensor<4>| t.grad(&grads).expect("gradient").into_data();
            vec![y.clone().into_data(), grad(a), grad(b)]
        };
        let (want, got) = (run(false), run(true));
        let nan = want[0].iter::<f32>().filter(|v| v.is_nan()).count();
        assert!(nan > k, "the output has NaN ({nan})");
        for (what, (got, want)) in ["output", "lhs gradient", "rhs gradient"]
            .into_iter()
            .zip(got.iter().zip(&want))
        {
            assert_same_specials(got, want, 0.0, what);
        }
    }

    #[test]
    fn nan_and_inf_propagate_as_burns_relu() {
        assert_specials_match(&Device::flex());
        assert_specials_match(&Device::flex().autodiff());
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn nan_and_inf_propagate_as_burns_relu_on_wgpu() {
        let device = crate::wgpu_device().expect(crate::WGPU_API_VAR);
        assert_specials_match(&device);
        assert_specials_match(&device.autodiff());
    }
}
