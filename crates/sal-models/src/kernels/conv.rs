//! The models' convolutions: burn's `Conv2d` parameters, run through [`GemmConv`], a backend
//! extension whose flex implementation lowers forward and backward to im2col + GEMM
//! (`im2col`) instead of burn-flex's own paths.
//!
//! Why: on the CPU backend burn-flex 0.22's convolution backward (weight gradient as a
//! convolution with the output gradient as kernel, input gradient as a transposed convolution)
//! was far slower than PyTorch's and dominated a CIFAR ResNet-18 training step
//! (`docs/benchmarks.md`, Models, has the measurements). Every other backend (wgpu, CUDA) keeps
//! burn's own kernels: the trait's default bodies are burn's `conv2d` and its two backward
//! functions.
//!
//! The autodiff implementation records one node per convolution whose backward calls the
//! extension's two gradient functions on the inner backend, like burn-autodiff's own `conv2d`
//! node (it checkpoints the input and the weight; the column matrix is rebuilt, not stored).

#[allow(unsafe_code)] // the GEMM call and uninitialised outputs
mod im2col;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use crate::kernels::flex_slices::{contiguous, f32s, tensor};
use crate::kernels::precision::Products;

use im2col::ConvGeometry;

/// `conv.forward(x)` through [`GemmConv`] for the configurations the models use (no
/// dilation, explicit padding, no bias); anything else takes burn's `Conv2d::forward`.
///
/// A grouped convolution (RegNet's) is burn's own in f32. Under a reduced-precision
/// [`autocast`](crate::autocast) it runs as one [`GemmConv`] per group, on the group's input
/// channels and its filters, the outputs concatenated: the same convolution, its products in the
/// autocast's precision like every other (PyTorch's autocast covers grouped convolutions too),
/// its gradients through the slices' and the concatenation's own.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return conv.forward(x);
    };
    if conv.bias.is_some() || conv.dilation != [1, 1] {
        return conv.forward(x);
    }
    let options =
        ConvOptions::new_with_padding(conv.stride, [(top, bottom), (left, right)], [1, 1], 1);
    let gemm_conv = |x: Tensor<4>, weight: Tensor<4>| {
        Tensor::from_dispatch(<Dispatch as GemmConv>::gemm_conv2d(
            x.into_dispatch(),
            weight.into_dispatch(),
            options.clone(),
        ))
    };
    let weight = conv.weight.val();
    match conv.groups {
        1 => gemm_conv(x, weight),
        _ if crate::kernels::precision::current() == crate::Precision::Fp32 => conv.forward(x),
        groups => {
            let (inputs, filters) = (x.dims()[1] / groups, weight.dims()[0] / groups);
            let outputs = (0..groups)
                .map(|g| {
                    gemm_conv(
                        x.clone().narrow(1, g * inputs, inputs),
                        weight.clone().narrow(0, g * filters, filters),
                    )
                })
                .collect();
            Tensor::cat(outputs, 1)
        }
    }
}

/// A bias-free 2-D convolution and its two gradients as one backend extension, so a backend
/// can replace all three (flex does; the defaults are burn's own operations).
#[backend_extension(Flex, Autodiff, Cube: cfg(any(feature = "wgpu", feature = "cuda")))]
pub trait GemmConv: Backend {
    /// `conv2d(x, weight)` without bias.
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, options)
    }

    /// Gradient of [`GemmConv::gemm_conv2d`] with respect to `x`.
    fn gemm_conv2d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options)
    }

    /// Gradient of [`GemmConv::gemm_conv2d`] with respect to `weight`.
    fn gemm_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options)
    }
}

/// burn's own kernels; under a half-precision `autocast` the forward pass and the input
/// gradient run on operands cast to the half type (`Precision::gpu_dtype`), their results cast
/// back to f32, and the weight gradient stays f32 (burn's kernels sum in the element type:
/// `kernels::precision`).
#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl GemmConv for burn::backend::Cube {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        use burn::backend::ops::FloatTensorOps;
        match crate::kernels::precision::current().gpu_dtype() {
            None => Self::conv2d(x, weight, None, options),
            Some(half) => {
                let (x, weight) = (Self::float_cast(x, half), Self::float_cast(weight, half));
                let y = Self::conv2d(x, weight, None, options);
                Self::float_cast(y, burn::tensor::FloatDType::F32)
            }
        }
    }

    fn gemm_conv2d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        use burn::backend::ops::FloatTensorOps;
        match crate::kernels::precision::current().gpu_dtype() {
            None => Self::conv2d_x_backward(x, weight, output_grad, options),
            Some(half) => {
                let [x, weight, dy] = [x, weight, output_grad].map(|t| Self::float_cast(t, half));
                let dx = Self::conv2d_x_backward(x, weight, dy, options);
                Self::float_cast(dx, burn::tensor::FloatDType::F32)
            }
        }
    }
}

impl GemmConv for Flex {
    fn gemm_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        match geometry(&x, &weight, &options) {
            Some(g) => {
                let (x, weight) = (contiguous(x), contiguous(weight));
                let y = im2col::forward(&g, f32s(&x), f32s(&weight), Products::current());
                tensor(y, [g.batch, g.c_out, g.h_out, g.w_out])
            }
            None => Flex::conv2d(x, weight, None, options),
        }
    }

    fn gemm_conv2d_x_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let fallback = Flex::conv2d_x_backward;
        flex_backward(
            [x, weight, output_grad],
            options,
            fallback,
            |g, [_, w, dy], products| {
                let dx = im2col::input_grad(g, w, dy, products);
                tensor(dx, [g.batch, g.c_in, g.h, g.w])
            },
        )
    }

    fn gemm_conv2d_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let fallback = Flex::conv2d_weight_backward;
        flex_backward(
            [x, weight, output_grad],
            options,
            fallback,
            |g, [x, _, dy], products| {
                let [kh, kw] = g.kernel;
                let dw = im2col::weight_grad(g, x, dy, products);
                tensor(dw, [g.c_out, g.c_in, kh, kw])
            },
        )
    }
}

/// One of the gradients on flex: `kernel` over the `[x, weight, output_grad]` values, with
/// this thread's autocast products, when the GEMM lowering covers the convolution, burn-flex's
/// own `fallback` otherwise.
fn flex_backward(
    [x, weight, output_grad]: [FlexTensor; 3],
    options: ConvOptions<2>,
    fallback: fn(FlexTensor, FlexTensor, FlexTensor, ConvOptions<2>) -> FlexTensor,
    kernel: impl FnOnce(&ConvGeometry, [&[f32]; 3], Products) -> FlexTensor,
) -> FlexTensor {
    match geometry(&x, &weight, &options) {
        Some(g) if output_grad.dtype() == DType::F32 => {
            let tensors = [x, weight, output_grad].map(contiguous);
            let values = [&tensors[0], &tensors[1], &tensors[2]].map(f32s);
            kernel(&g, values, Products::current())
        }
        _ => fallback(x, weight, output_grad, options),
    }
}

/// The im2col geometry of an `f32` convolution without groups or dilation; `None` for
/// anything the GEMM lowering does not cover (burn's kernel runs instead).
fn geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<ConvGeometry> {
    let (xs, ws) = (x.shape(), weight.shape());
    if x.dtype() != DType::F32
        || weight.dtype() != DType::F32
        || xs.num_dims() != 4
        || ws.num_dims() != 4
    {
        return None;
    }
    let plain = options.groups == 1 && options.dilation == [1, 1];
    let [top, left] = options.padding_begin();
    let [bottom, right] = options.padding_end();
    let (h_pad, w_pad) = (xs[2] + top + bottom, xs[3] + left + right);
    let fits = ws[1] == xs[1] && h_pad >= ws[2] && w_pad >= ws[3];
    if !plain || !fits || xs.num_elements() == 0 || ws.num_elements() == 0 {
        return None;
    }
    Some(ConvGeometry {
        batch: xs[0],
        c_in: xs[1],
        h: xs[2],
        w: xs[3],
        c_out: ws[0],
        kernel: [ws[2], ws[3]],
        stride: options.stride,
        pad: [top, left],
        h_out: (h_pad - ws[2]) / options.stride[0] + 1,
        w_out: (w_pad - ws[3]) / options.stride[1] + 1,
    })
}

impl<B: Backend + GemmConv, C: CheckpointStrategy> GemmConv for Autodiff<B, C> {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match GemmConv2dBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let y =
                    B::gemm_conv2d(x.into_primitive(), weight.into_primitive(), options.clone());
                prep.finish((x_state, weight_state, options), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::gemm_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                options,
            )),
        }
    }
}

/// Backward step of [`GemmConv::gemm_conv2d`] under autodiff.
#[derive(Debug)]
struct GemmConv2dBackward;

impl<B: Backend + GemmConv> Backward<B, 2> for GemmConv2dBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        if let Some(node) = node_x {
            let dx =
                B::gemm_conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            grads.register::<B>(
                node.id,
                B::gemm_conv2d_weight_backward(x, weight, grad, options),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::conv2d;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::tensor::{Device, Distribution, Tensor, Tolerance};

    /// (input NCHW, out channels, kernel, stride, padding): the models' 3x3/1x1/7x7 convs,
    /// a many-sample block (4x4 maps) and asymmetric padding.
    fn cases() -> Vec<([usize; 4], usize, usize, usize, PaddingConfig2d)> {
        vec![
            ([2, 3, 9, 9], 4, 3, 1, PaddingConfig2d::Explicit(1, 1, 1, 1)),
            ([3, 4, 8, 7], 5, 3, 2, PaddingConfig2d::Explicit(1, 1, 1, 1)),
            ([2, 4, 8, 8], 6, 1, 2, PaddingConfig2d::Explicit(0, 0, 0, 0)),
            (
                [1, 3, 15, 15],
                4,
                7,
                2,
                PaddingConfig2d::Explicit(3, 3, 3, 3),
            ),
            (
                [24, 5, 4, 4],
                3,
                3,
                1,
                PaddingConfig2d::Explicit(1, 1, 1, 1),
            ),
            ([2, 2, 6, 5], 3, 3, 1, PaddingConfig2d::Explicit(1, 0, 2, 1)),
        ]
    }

    fn make_conv(
        c_in: usize,
        c_out: usize,
        k: usize,
        s: usize,
        p: &PaddingConfig2d,
        device: &Device,
    ) -> Conv2d {
        Conv2dConfig::new([c_in, c_out], [k, k])
            .with_stride([s, s])
            .with_padding(p.clone())
            .with_bias(false)
            .init(device)
    }

    #[test]
    fn forward_matches_burns_conv2d() {
        let device = Device::flex();
        for (shape, c_out, k, s, p) in cases() {
            let conv = make_conv(shape[1], c_out, k, s, &p, &device);
            let x = Tensor::<4>::random(shape, Distribution::Default, &device);
            let want = conv.forward(x.clone()).into_data();
            conv2d(&conv, x)
                .into_data()
                .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
        }
        // A non-contiguous input (a transposed view) is made contiguous first.
        let conv = make_conv(3, 4, 3, 1, &PaddingConfig2d::Explicit(1, 1, 1, 1), &device);
        let x = Tensor::<4>::random([2, 3, 7, 5], Distribution::Default, &device).swap_dims(2, 3);
        let want = conv.forward(x.clone()).into_data();
        conv2d(&conv, x)
            .into_data()
            .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
    }

    /// `y = forward(conv, x)` and the gradients of `sum(y * r)` with respect to `x` and the
    /// weight.
    fn passes(
        conv: &Conv2d,
        x: &Tensor<4>,
        r: &Tensor<4>,
        forward: impl Fn(&Conv2d, Tensor<4>) -> Tensor<4>,
    ) -> [burn::tensor::TensorData; 3] {
        let x = x.clone().require_grad();
        let y = forward(conv, x.clone());
        let grads = (y.clone() * r.clone()).sum().backward();
        let dx = x.grad(&grads).expect("input gradient").into_data();
        let weight = conv.weight.val();
        let dw = weight.grad(&grads).expect("weight gradient").into_data();
        [y.into_data(), dx, dw]
    }

    /// Case `case`'s convolution, a random input and a random upstream gradient on `device`.
    fn autocast_case(case: usize, device: &Device) -> (Conv2d, Tensor<4>, Tensor<4>) {
        let (shape, c_out, k, s, p) = cases().remove(case);
        let conv = make_conv(shape[1], c_out, k, s, &p, device);
        let x = Tensor::<4>::random(shape, Distribution::Default, device);
        let out_dims = conv.forward(x.clone()).dims();
        let r = Tensor::<4>::random(out_dims, Distribution::Default, device);
        (conv, x, r)
    }

    /// [`passes`] in f32 with the input, the weight and the upstream gradient each passed
    /// through `round` first (what a reduced-precision pass must equal).
    fn rounded_passes(
        conv: &Conv2d,
        x: &Tensor<4>,
        r: &Tensor<4>,
        round: fn(f32) -> f32,
    ) -> [burn::tensor::TensorData; 3] {
        rounded_passes_with(conv, x, r, round, conv2d)
    }

    /// [`rounded_passes`] through `forward`.
    fn rounded_passes_with(
        conv: &Conv2d,
        x: &Tensor<4>,
        r: &Tensor<4>,
        round: fn(f32) -> f32,
        forward: impl Fn(&Conv2d, Tensor<4>) -> Tensor<4>,
    ) -> [burn::tensor::TensorData; 3] {
        let rounded = |t: &Tensor<4>| {
            let values: Vec<f32> = t.clone().into_data().try_to_vec().expect("f32 values");
            let values: Vec<f32> = values.into_iter().map(round).collect();
            let data = burn::tensor::TensorData::new(values, t.dims());
            Tensor::<4>::from_data(data, &t.device())
        };
        let mut conv_r = conv.clone();
        conv_r.weight = burn::module::Param::from_tensor(rounded(&conv.weight.val()));
        passes(&conv_r, &rounded(x), &rounded(r), forward)
    }

    /// Input and weight gradients of `sum(conv(x) * r)` equal those of burn's own conv2d.
    fn assert_gradients_match(device: &Device) {
        for (shape, c_out, k, s, p) in cases() {
            let conv = make_conv(shape[1], c_out, k, s, &p, device);
            let x = Tensor::<4>::random(shape, Distribution::Default, device);
            let out_dims = conv.forward(x.clone()).dims();
            let r = Tensor::<4>::random(out_dims, Distribution::Default, device);
            let [_, want_dx, want_dw] = passes(&conv, &x, &r, |c, x| c.forward(x));
            let [_, dx, dw] = passes(&conv, &x, &r, conv2d);
            dx.assert_approx_eq::<f32>(&want_dx, Tolerance::rel_abs(1e-4, 1e-4));
            dw.assert_approx_eq::<f32>(&want_dw, Tolerance::rel_abs(1e-4, 1e-4));
        }
    }

    #[test]
    fn gradients_match_burns_conv2d() {
        assert_gradients_match(&Device::flex().autodiff());
    }

    /// Under `autocast(Bf16)` the forward pass and both gradients (run by autodiff's backward
    /// on this thread) multiply bf16-rounded operands: they equal the f32 passes on inputs,
    /// weights and output gradients rounded beforehand, and differ from the unrounded ones.
    #[test]
    fn autocast_bf16_rounds_the_operands_of_every_pass() {
        use crate::kernels::bf16_gemm::{from_bf16, to_bf16};
        use crate::kernels::precision::{Precision, autocast, bf16_instructions};
        if bf16_instructions().is_none() {
            eprintln!("no bf16 instructions on this CPU: nothing to check");
            return;
        }
        let (conv, x, r) = autocast_case(4, &Device::flex().autodiff());
        let got = autocast(Precision::Bf16, || passes(&conv, &x, &r, conv2d));
        let want = rounded_passes(&conv, &x, &r, |v| from_bf16(to_bf16(v)));
        assert_rounded_passes(&got, &want, &passes(&conv, &x, &r, conv2d));
    }

    /// Each reduced-precision pass equals the f32 pass on rounded operands (`want`) and differs
    /// from the unrounded one.
    fn assert_rounded_passes(
        got: &[burn::tensor::TensorData; 3],
        want: &[burn::tensor::TensorData; 3],
        unrounded: &[burn::tensor::TensorData; 3],
    ) {
        for ((got, want), unrounded) in got.iter().zip(want).zip(unrounded) {
            got.assert_approx_eq::<f32>(want, Tolerance::rel_abs(1e-5, 1e-5));
            let differs = got
                .iter::<f32>()
                .zip(unrounded.iter::<f32>())
                .any(|(a, b)| (a - b).abs() > 1e-4);
            assert!(differs, "the bf16 pass differs from the f32 one");
        }
    }

    /// A grouped convolution under `autocast(Bf16)` runs group by group through the bf16
    /// kernels: its passes equal burn's grouped convolution on bf16-rounded operands, and
    /// differ from the f32 ones; in f32 it is burn's own.
    #[test]
    fn a_grouped_convolution_under_bf16_autocast_multiplies_in_bf16() {
        use crate::kernels::bf16_gemm::{from_bf16, to_bf16};
        use crate::kernels::precision::{Precision, autocast, bf16_instructions};
        let device = Device::flex().autodiff();
        let conv = Conv2dConfig::new([6, 9], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_groups(3)
            .with_bias(false)
            .init(&device);
        let x = Tensor::<4>::random([2, 6, 7, 7], Distribution::Default, &device);
        let r = Tensor::<4>::random([2, 9, 4, 4], Distribution::Default, &device);
        let burns = |c: &Conv2d, x: Tensor<4>| c.forward(x);
        let f32_passes = passes(&conv, &x, &r, conv2d);
        for (got, want) in f32_passes.iter().zip(&passes(&conv, &x, &r, burns)) {
            got.assert_approx_eq::<f32>(want, Tolerance::rel_abs(1e-5, 1e-5));
        }
        if bf16_instructions().is_none() {
            eprintln!("no bf16 instructions on this CPU: the bf16 half is not checked");
            return;
        }
        let got = autocast(Precision::Bf16, || passes(&conv, &x, &r, conv2d));
        let want = rounded_passes_with(&conv, &x, &r, |v| from_bf16(to_bf16(v)), burns);
        assert_rounded_passes(&got, &want, &f32_passes);
    }

    /// `conv2d` and its two gradients called from many rayon tasks at once (each with its own
    /// graph) equal the same calls made one after another: a thread waiting inside one
    /// convolution's parallel GEMM may run another task's convolution.
    #[test]
    fn convolutions_run_from_many_rayon_tasks_at_once() {
        use burn::module::Param;
        use burn::tensor::TensorData;
        use rayon::prelude::*;

        let device = Device::flex().autodiff();
        let padding = PaddingConfig2d::Explicit(1, 1, 1, 1);
        let data = |shape: [usize; 4]| {
            Tensor::<4>::random(shape, Distribution::Default, &device).into_data()
        };
        let (x, weight, r) = (
            data([1, 64, 32, 32]),
            data([64, 64, 3, 3]),
            data([1, 64, 32, 32]),
        );
        let run = || {
            let mut conv = make_conv(64, 64, 3, 1, &padding, &device);
            conv.weight = Param::from_tensor(Tensor::from_data(weight.clone(), &device));
            let x = Tensor::<4>::from_data(x.clone(), &device).require_grad();
            let y = conv2d(&conv, x.clone());
            let r = Tensor::<4>::from_data(r.clone(), &device);
            let grads = (y.clone() * r).sum().backward();
            let values = |t: TensorData| t.try_to_vec::<f32>().expect("f32 values");
            [
                values(y.into_data()),
                values(x.grad(&grads).expect("input gradient").into_data()),
                values(
                    conv.weight
                        .val()
                        .grad(&grads)
                        .expect("weight gradient")
                        .into_data(),
                ),
            ]
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(8)
            .build()
            .expect("a thread pool");
        pool.install(|| {
            let want = run();
            for _ in 0..16 {
                let got: Vec<_> = (0..16).into_par_iter().map(|_| run()).collect();
                assert!(got.iter().all(|got| got == &want));
            }
        });
    }

    /// Under `autocast(F16)` on wgpu the forward pass and the input gradient equal the f32
    /// passes on f16-rounded operands (to f16's sums), the weight gradient the f32 one; on an
    /// adapter without f16 shaders there is nothing to run (the trainer refuses f16 there).
    #[cfg(feature = "wgpu")]
    #[test]
    fn autocast_f16_on_wgpu_rounds_the_forward_and_input_gradient_operands() {
        use crate::kernels::precision::{Precision, autocast};
        use burn::tensor::{FloatDType, f16};
        let device = crate::wgpu_device().expect(crate::WGPU_API_VAR);
        if !device.supports_dtype(FloatDType::F16) {
            eprintln!("this wgpu adapter has no f16 shaders: nothing to check");
            return;
        }
        let (conv, x, r) = autocast_case(0, &device.autodiff());
        let [y, dx, dw] = autocast(Precision::F16, || passes(&conv, &x, &r, conv2d));
        let [want_y, want_dx, _] = rounded_passes(&conv, &x, &r, |v| f16::from_f32(v).to_f32());
        let [f32_y, f32_dx, want_dw] = passes(&conv, &x, &r, conv2d);
        y.assert_approx_eq::<f32>(&want_y, Tolerance::rel_abs(1e-2, 1e-2));
        dx.assert_approx_eq::<f32>(&want_dx, Tolerance::rel_abs(1e-2, 1e-2));
        dw.assert_approx_eq::<f32>(&want_dw, Tolerance::rel_abs(1e-5, 1e-5));
        // And the half-precision passes ran: they differ from the f32 ones.
        for (half, full) in [(&y, &f32_y), (&dx, &f32_dx)] {
            let differs = half
                .iter::<f32>()
                .zip(full.iter::<f32>())
                .any(|(a, b)| (a - b).abs() > 1e-5);
            assert!(differs, "the f16 pass equals the f32 one");
        }
    }

    /// On wgpu the extension's default bodies (burn's own kernels) run under the same
    /// autodiff node.
    #[cfg(feature = "wgpu")]
    #[test]
    fn gradients_match_burns_conv2d_on_wgpu() {
        assert_gradients_match(&crate::wgpu_device().expect(crate::WGPU_API_VAR).autodiff());
    }
}
