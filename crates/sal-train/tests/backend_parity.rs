//! The GPU code path, checked on every machine: the model's forward and backward on the wgpu
//! device (Mesa's lavapipe/llvmpipe on a CPU-only machine; the graphics API `SAL_WGPU_API`
//! names) must match flex within 1e-4 relative. Built only with `--features wgpu`; CI builds
//! and runs it that way, on Vulkan and on GL.
#![cfg(feature = "wgpu")]

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor};
use sal_models::{Architecture, ModelConfig};
use sal_train::step::soft_cross_entropy;

/// Every float parameter's gradient, in visiting order.
struct GradCollector<'a> {
    grads: &'a burn::tensor::Gradients,
    out: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for GradCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            let name = format!("{:?}{:?}", param.id, g.dims());
            self.out
                .push((name, g.into_data().try_to_vec::<f32>().unwrap()));
        }
    }
}

/// What one training step produced: logits, loss, and each parameter's gradient.
struct StepResult {
    logits: Vec<f32>,
    loss: f32,
    grads: Vec<(String, Vec<f32>)>,
}

/// max |a - b| / max |b|: the error relative to the tensor's scale.
fn relative_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Logits, loss and parameter gradients of one training step on `device`.
fn step(device: &Device, model: &sal_models::Model, x: &Tensor<4>, y: &Tensor<2>) -> StepResult {
    let model = model.clone().fork(device);
    let logits = model.forward(x.clone().to_device(device));
    let loss = soft_cross_entropy(logits.clone(), y.clone().to_device(device));
    let loss_value: f32 = loss.clone().into_scalar();
    let grads = loss.backward();
    let mut collector = GradCollector {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut collector);
    StepResult {
        logits: logits.into_data().try_to_vec().unwrap(),
        loss: loss_value,
        grads: collector.out,
    }
}

#[test]
fn cifar_resnet18_forward_and_backward_match_flex_on_wgpu() {
    let flex = Device::flex().autodiff();
    let wgpu = sal_models::wgpu_device()
        .expect(sal_models::WGPU_API_VAR)
        .autodiff();
    flex.seed(3);
    let config = ModelConfig::new("cifar-resnet18".parse::<Architecture>().unwrap(), 10)
        .with_base_width(Some(8));
    let model = config.init(&flex);
    let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &flex);
    let y = Tensor::<1, burn::tensor::Int>::from_ints([1, 7, 3, 1], &flex)
        .one_hot(10)
        .float();

    let StepResult {
        logits: logits_cpu,
        loss: loss_cpu,
        grads: grads_cpu,
    } = step(&flex, &model, &x, &y);
    let StepResult {
        logits: logits_gpu,
        loss: loss_gpu,
        grads: grads_gpu,
    } = step(&wgpu, &model, &x, &y);

    println!("wgpu device: {wgpu:?}");
    // Identical bits everywhere would mean both ran the same kernels (the same backend).
    assert_ne!(
        logits_gpu, logits_cpu,
        "wgpu results are bit-identical to flex: not a second backend?"
    );
    let e = relative_error(&logits_gpu, &logits_cpu);
    assert!(e <= 1e-4, "logits: relative error {e:e}");
    assert!(
        (loss_gpu - loss_cpu).abs() <= 1e-4 * loss_cpu.abs(),
        "loss {loss_gpu} vs {loss_cpu}"
    );
    assert_eq!(grads_cpu.len(), grads_gpu.len());
    assert!(grads_cpu.len() >= 60, "only {} gradients", grads_cpu.len());
    let mut worst = (0f32, String::new());
    for ((name, g_cpu), (_, g_gpu)) in grads_cpu.iter().zip(&grads_gpu) {
        let e = relative_error(g_gpu, g_cpu);
        if e > worst.0 {
            worst = (e, name.clone());
        }
    }
    println!("worst gradient relative error {:e} ({})", worst.0, worst.1);
    assert!(
        worst.0 <= 1e-4,
        "gradient {}: relative error {:e}",
        worst.1,
        worst.0
    );
}
