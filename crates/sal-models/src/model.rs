//! The one model type the trainer holds, whatever the architecture.

use crate::layers::ClassifierHead;
use crate::params::Materializer;
use crate::preact_resnet::PreActResNet;
use crate::pyramidnet::PyramidNet;
use crate::regnet::RegNet;
use crate::resnet::ResNet;
use burn::module::Module;
use burn::tensor::Tensor;

/// A network of the ResNet family, built by [`ModelConfig::init`](crate::ModelConfig::init).
///
/// Every network is features (stem + residual stages, ending in the map the head sees) followed
/// by a head (global average pooling + linear), so [`features`](Self::features) and
/// [`head`](Self::head) split [`forward`](Self::forward) exactly, and
/// [`forward_with_features`](Self::forward_with_features) gives both from one pass.
// Variants differ in size (a few hundred bytes of module handles); boxing them would not pay
// off for values built once per model, and burn's Module derive does not see through `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    /// CIFAR and ImageNet post-activation ResNets.
    ResNet(ResNet),
    /// PreActResNets and Wide ResNets.
    PreActResNet(PreActResNet),
    /// PyramidNets.
    PyramidNet(PyramidNet),
    /// RegNetX-200MF.
    RegNet(RegNet),
}

impl Model {
    /// Logits.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.features(x))
    }

    /// The last conv stage's feature map as the head sees it: after that stage's final ReLU
    /// (ResNet) or after the network's final BN-ReLU (PreActResNet, Wide ResNet, PyramidNet).
    /// Saliency Grafting's saliency and CAM read this map.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, height, width]`
    /// - output: `[batch, feature_channels, h, w]` with `h = height / s`, `w = width / s` (rounded
    ///   up): `s = 8` for CIFAR ResNets, PreActResNets and CIFAR RegNets (32 -> 4), 4 for Wide
    ///   ResNets and PyramidNets (32 -> 8), 32 for ImageNet ResNets and RegNets (224 -> 7).
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::ResNet(net) => net.features(x),
            Self::PreActResNet(net) => net.features(x),
            Self::PyramidNet(net) => net.features(x),
            Self::RegNet(net) => net.features(x),
        }
    }

    /// Global average pooling + the linear classifier.
    ///
    /// # Shapes
    /// - `features`: `[batch, feature_channels, h, w]`
    /// - output: `[batch, num_classes]`
    pub fn head(&self, features: Tensor<4>) -> Tensor<2> {
        self.classifier().forward(features)
    }

    /// Logits and the feature map from ONE forward pass (the features are not recomputed).
    pub fn forward_with_features(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<4>) {
        let features = self.features(x);
        (self.head(features.clone()), features)
    }

    /// The classifier head (its linear layer's weight is what CAM weighs the features with).
    pub fn classifier(&self) -> &ClassifierHead {
        match self {
            Self::ResNet(net) => net.head(),
            Self::PreActResNet(net) => net.head(),
            Self::PyramidNet(net) => net.head(),
            Self::RegNet(net) => net.head(),
        }
    }

    /// Restarts the stream the dropout masks are drawn from (Wide ResNets; the other families
    /// have no dropout). The trainer calls it before every step with a seed derived from the
    /// run seed and the step, so masks are the same on every backend and after a resume.
    pub fn reseed_dropout(&self, seed: u64) {
        if let Self::PreActResNet(net) = self {
            net.reseed_dropout(seed);
        }
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classifier().num_classes()
    }

    /// Channels of the feature map.
    pub fn feature_channels(&self) -> usize {
        self.classifier().feature_channels()
    }

    pub(crate) fn materialize_parameters(&self) {
        self.visit(&mut Materializer);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Architecture, ModelConfig, ResNetDepth};
    use burn::tensor::{Device, Distribution, Tensor, Tolerance};

    /// The feature map's expected [channels, height, width] for a 32x32 input, derived from each
    /// family's layout independently of the code under test.
    fn expected_features(config: &ModelConfig) -> [usize; 3] {
        let w = config.effective_base_width();
        match config.architecture {
            Architecture::CifarResNet(d) | Architecture::PreActResNet(d) => {
                [8 * w * if d.is_bottleneck() { 4 } else { 1 }, 4, 4]
            }
            // 32 -> stem /2 -> max-pool /2 -> stages /1 /2 /2 /2 -> 1.
            Architecture::ResNet(d) => [8 * w * if d.is_bottleneck() { 4 } else { 1 }, 1, 1],
            Architecture::WideResNet { widen, .. } => [4 * w * widen, 8, 8],
            Architecture::PyramidNet {
                alpha, bottleneck, ..
            } => [(w + alpha) * if bottleneck { 4 } else { 1 }, 8, 8],
            Architecture::RegNetX200MF(crate::regnet::RegNetLayout::Cifar) => [368, 4, 4],
            Architecture::RegNetX200MF(crate::regnet::RegNetLayout::ImageNet) => [368, 1, 1],
        }
    }

    /// Every listed architecture at a small width: logits and feature shapes, and the
    /// features/head split reproducing `forward`.
    #[test]
    fn every_architecture_has_the_expected_shapes_and_split() {
        let device = Device::flex();
        for &architecture in Architecture::all() {
            let config = ModelConfig::new(architecture, 7)
                .with_base_width(architecture.test_width())
                .with_dropout(Some(0.0));
            let model = config.init(&device);
            let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
            let logits = model.forward(x.clone());
            assert_eq!(logits.dims(), [2, 7], "{architecture}");
            let (logits_one_pass, features) = model.forward_with_features(x.clone());
            let [c, h, w] = expected_features(&config);
            assert_eq!(features.dims(), [2, c, h, w], "{architecture}");
            assert_eq!(model.feature_channels(), c, "{architecture}");
            assert_eq!(model.num_classes(), 7);
            let split = model.head(model.features(x));
            let tolerance = Tolerance::<f32>::absolute(1e-5);
            logits
                .clone()
                .into_data()
                .assert_approx_eq::<f32>(&split.into_data(), tolerance);
            logits
                .into_data()
                .assert_approx_eq::<f32>(&logits_one_pass.into_data(), tolerance);
        }
    }

    /// `precision = "bf16"` trains every architecture of the zoo through the bf16 kernels
    /// (RegNet's grouped convolutions included): a forward and backward pass under
    /// `autocast(Bf16)` gives finite logits, a finite gradient for every trained parameter, and
    /// logits that are not the f32 pass's (the products did run in bf16).
    ///
    /// How near the f32 logits they are is not asserted: at a test width with 4 images,
    /// train-mode BatchNorm over a few values per channel makes these untrained networks
    /// chaotic. Rounding only the INPUT to bf16 moved the f32 logits by 0.2 % (RegNet) to
    /// 90 % (ResNet-101) of the largest logit, and the bf16 pass moved them 0.7x to more than
    /// 5x as far, depending on the random draws (measured 2026-12-06). The exactness of each
    /// bf16 pass is `kernels::conv`'s tests' job (grouped convolutions included); closeness in
    /// training is the trainer's bf16 test and the quickstart over three seeds
    /// (docs/benchmarks.md).
    #[test]
    fn every_architecture_trains_under_bf16_autocast() {
        use crate::{Precision, autocast, bf16_instructions};
        use burn::module::{Module, ModuleVisitor, Param};
        if bf16_instructions().is_none() {
            eprintln!("no bf16 instructions on this CPU: nothing to check");
            return;
        }
        struct Gradients<'a>(&'a burn::tensor::Gradients, Vec<f32>);
        impl ModuleVisitor for Gradients<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if param.is_require_grad() {
                    let grad = param
                        .val()
                        .grad(self.0)
                        .expect("a trained parameter's gradient");
                    self.1.push(grad.powf_scalar(2.0).sum().into_scalar());
                }
            }
        }
        let device = Device::flex().autodiff();
        for &architecture in Architecture::all() {
            let config = ModelConfig::new(architecture, 7)
                .with_base_width(architecture.test_width())
                .with_dropout(Some(0.0));
            let model = config.init(&device);
            let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Default, &device);
            let r = Tensor::<2>::random([4, 7], Distribution::Default, &device);
            let f32_logits: Vec<f32> = model.forward(x.clone()).into_data().try_to_vec().unwrap();
            let (bf16_logits, squared_gradients) = autocast(Precision::Bf16, || {
                let out = model.forward(x.clone());
                let grads = (out.clone() * r.clone()).sum().backward();
                let mut gradients = Gradients(&grads, Vec::new());
                model.visit(&mut gradients);
                (out.into_data().try_to_vec::<f32>().unwrap(), gradients.1)
            });
            assert!(bf16_logits.iter().all(|v| v.is_finite()), "{architecture}");
            assert!(!squared_gradients.is_empty(), "{architecture}");
            assert!(
                squared_gradients.iter().all(|v| v.is_finite()),
                "{architecture}"
            );
            assert_ne!(f32_logits, bf16_logits, "{architecture}: bf16 equals f32");
        }
    }

    /// PuzzleMix's Tiny-ImageNet PreActResNet: a stride-2 stem halves every map (64 -> 4 at
    /// the end instead of 8), with the same parameters; other families refuse the option.
    #[test]
    fn a_stride_two_stem_halves_the_maps_and_keeps_the_parameters() {
        let device = Device::flex();
        let plain = ModelConfig::new(Architecture::PreActResNet(ResNetDepth::D18), 200)
            .with_base_width(Some(4));
        let strided = plain.clone().with_stem_stride(Some(2));
        let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Default, &device);
        assert_eq!(
            plain.init(&device).features(x.clone()).dims(),
            [1, 32, 8, 8]
        );
        assert_eq!(strided.init(&device).features(x).dims(), [1, 32, 4, 4]);
        assert_eq!(
            plain.num_trainable_params().unwrap(),
            strided.num_trainable_params().unwrap()
        );
        let wrn = ModelConfig::new(
            Architecture::WideResNet {
                depth: 10,
                widen: 1,
            },
            10,
        )
        .with_stem_stride(Some(2));
        assert!(matches!(
            wrn.validate(),
            Err(crate::ModelError::StemStrideUnsupported { stride: 2, .. })
        ));
        assert_eq!(
            strided.with_stem_stride(Some(3)).validate(),
            Err(crate::ModelError::InvalidStemStride(3))
        );
    }

    #[test]
    fn other_input_channels_and_sizes_work() {
        let device = Device::flex();
        let config = ModelConfig::new(Architecture::PreActResNet(ResNetDepth::D18), 10)
            .with_in_channels(1)
            .with_base_width(Some(4));
        let model = config.init(&device);
        // Fashion-MNIST's 28x28: 28 -> 28, 14, 7, 4.
        let x = Tensor::<4>::random([3, 1, 28, 28], Distribution::Default, &device);
        assert_eq!(model.features(x).dims(), [3, 32, 4, 4]);
    }

    /// burn-0.22.md gotcha G1: freezing a clone of a never-used lazy model froze the original.
    /// `init` materialises, so the original still trains after a clone is frozen.
    #[test]
    fn init_materialises_so_a_frozen_clone_leaves_the_original_trainable() {
        use burn::module::Module;
        let device = Device::flex().autodiff();
        let model = ModelConfig::new(Architecture::CifarResNet(ResNetDepth::D18), 10)
            .with_base_width(Some(4))
            .init(&device);
        let frozen = model.clone().freeze();
        let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &device);
        assert!(!frozen.forward(x.clone()).is_require_grad());
        let loss = model.forward(x).sum();
        let grads = loss.backward();
        assert!(model.classifier().fc.weight.val().grad(&grads).is_some());
    }
    /// Checkpoints (the trainer's resume) go through the module record: a fresh model loading
    /// another's record computes the same logits (two inits draw different weights).
    #[test]
    fn a_record_restores_the_model() {
        use burn::module::Module;
        let device = Device::flex();
        let config = ModelConfig::new(Architecture::PreActResNet(ResNetDepth::D18), 10)
            .with_base_width(Some(4));
        let trained = config.init(&device);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
        let expected = trained.forward(x.clone()).into_data();
        let restored = config.init(&device).load_record(trained.into_record());
        restored
            .forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
    }
}

/// The same networks on burn's wgpu backend (on CI: Mesa's software drivers, lavapipe for
/// Vulkan and llvmpipe for GL, on the CPU) give the logits flex gives with the same weights.
#[cfg(all(test, feature = "wgpu"))]
mod wgpu_tests {
    use crate::ModelConfig;
    use burn::module::Module;
    use burn::tensor::{Device, Distribution, Tensor, Tolerance};

    #[test]
    fn wgpu_matches_flex() {
        let flex = Device::flex();
        let wgpu = crate::wgpu_device().expect(crate::WGPU_API_VAR);
        // One network per family, tiny: post-activation with max-pool, pre-activation with
        // dropout off, PyramidNet with pooled, zero-padded shortcuts, RegNet's grouped convs.
        for name in [
            "resnet18",
            "wrn-10-1",
            "pyramidnet20-a12-basic",
            "cifar-regnetx-200mf",
        ] {
            let config = ModelConfig::new(name.parse().unwrap(), 3)
                .with_base_width(Some(4))
                .with_dropout(Some(0.0));
            let model = config.init(&flex);
            let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &flex);
            let expected = model.forward(x.clone()).into_data();
            let on_wgpu = model.to_device(&wgpu);
            let got = on_wgpu.forward(x.to_device(&wgpu)).into_data();
            got.assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-4));
        }
    }
}
