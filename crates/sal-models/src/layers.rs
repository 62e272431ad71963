//! Pieces every family shares: bias-free convolutions with the reference initialisations,
//! batch norm, and the global-average-pool + linear classifier head.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

/// How a family's reference code initialises its convolution weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvInit {
    /// PyTorch's `nn.Conv2d` default, `kaiming_uniform_(a=sqrt(5))`: U(-b, b) with
    /// b = 1/sqrt(fan_in). The SaliencyMix CIFAR ResNet and kuangliu's PreActResNet keep it.
    PyTorchDefault,
    /// He et al. 2015 normal with fan-out, N(0, 2/(k*k*out_channels)): torchvision's
    /// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, and the hand-written
    /// `normal_(0, sqrt(2/n))` of the Wide ResNet and PyramidNet code.
    HeNormalFanOut,
}

impl ConvInit {
    fn initializer(self) -> Initializer {
        match self {
            // burn's KaimingUniform bound is sqrt(3) * gain / sqrt(fan_in); gain 1/sqrt(3)
            // gives PyTorch's 1/sqrt(fan_in).
            Self::PyTorchDefault => Initializer::KaimingUniform {
                gain: 1.0 / 3f64.sqrt(),
                fan_out_only: false,
            },
            Self::HeNormalFanOut => Initializer::KaimingNormal {
                gain: 2f64.sqrt(),
                fan_out_only: true,
            },
        }
    }
}

/// A bias-free `kernel x kernel` convolution with "same" padding `kernel / 2`, as every
/// reference network here builds them (`bias=False`, `padding=1` for 3x3, 3 for 7x7, 0 for 1x1).
pub(crate) fn conv(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    init: ConvInit,
    device: &Device,
) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(init.initializer())
        .init(device)
}

/// `nn.BatchNorm2d(channels)` with PyTorch's defaults (eps 1e-5, momentum 0.1, weight 1,
/// bias 0), which every reference network keeps or sets explicitly.
pub(crate) fn batch_norm_layer(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

/// How the classifier's bias starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinearBiasInit {
    /// PyTorch's `nn.Linear` default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), like the weight.
    PyTorchDefault,
    /// Zero, as the Wide ResNet code sets it.
    Zero,
}

/// Global average pooling followed by the linear classifier: the head every family shares.
///
/// The reference code pools with a fixed `avg_pool2d(4)` (CIFAR ResNets), `AvgPool2d(8)`
/// (WRN, PyramidNet) or `AvgPool2d(7)` (ImageNet): on the input sizes they were written for
/// that kernel covers the whole final map, so global pooling computes the same thing, and also
/// works on other input sizes (64x64 Tiny-ImageNet) where the fixed kernels would break.
#[derive(Module, Debug)]
pub struct ClassifierHead {
    /// `[feature_channels, num_classes]` weight (burn's row layout) and bias.
    pub fc: Linear,
}

impl ClassifierHead {
    /// The weight is PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) in every family.
    pub(crate) fn new(
        feature_channels: usize,
        num_classes: usize,
        bias: LinearBiasInit,
        device: &Device,
    ) -> Self {
        // LinearConfig's default initializer is PyTorch's, for weight and bias alike.
        let mut fc = LinearConfig::new(feature_channels, num_classes).init(device);
        if bias == LinearBiasInit::Zero {
            fc.bias = Some(Initializer::Zeros.init([num_classes], device));
        }
        Self { fc }
    }

    /// # Shapes
    /// - `features`: `[batch, channels, height, width]`
    /// - output: `[batch, num_classes]`
    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        let [batch, channels, height, width] = features.dims();
        let pooled = features
            .reshape([batch, channels, height * width])
            .mean_dim(2)
            .reshape([batch, channels]);
        self.fc.forward(pooled)
    }

    /// Number of classes the head predicts.
    pub fn num_classes(&self) -> usize {
        self.fc.weight.lazy_shape().dims::<2>()[1]
    }

    /// Number of feature channels the head pools.
    pub fn feature_channels(&self) -> usize {
        self.fc.weight.lazy_shape().dims::<2>()[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(conv: &Conv2d) -> Vec<f32> {
        conv.weight.val().into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn pytorch_default_conv_init_is_uniform_within_one_over_sqrt_fan_in() {
        let device = Device::flex();
        let w = weights(&conv([64, 64], 3, 1, ConvInit::PyTorchDefault, &device));
        let bound = 1.0 / (64.0f32 * 9.0).sqrt();
        let max = w.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            max <= bound && max > 0.99 * bound,
            "max {max}, bound {bound}"
        );
    }

    #[test]
    fn he_fan_out_conv_init_has_std_sqrt_two_over_fan_out() {
        let device = Device::flex();
        // fan-out = 9 * 128 differs from fan-in = 9 * 32, so the test tells them apart.
        let w = weights(&conv([32, 128], 3, 1, ConvInit::HeNormalFanOut, &device));
        let n = w.len() as f32;
        let mean = w.iter().sum::<f32>() / n;
        let std = (w.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n).sqrt();
        let expected = (2.0f32 / (9.0 * 128.0)).sqrt();
        assert!(
            (std / expected - 1.0).abs() < 0.03,
            "std {std}, expected {expected}"
        );
    }

    #[test]
    fn convs_have_no_bias_and_keep_the_size() {
        let device = Device::flex();
        let c = conv([3, 8], 7, 2, ConvInit::HeNormalFanOut, &device);
        assert!(c.bias.is_none());
        let x = Tensor::<4>::zeros([1, 3, 224, 224], &device);
        assert_eq!(c.forward(x).dims(), [1, 8, 112, 112]);
    }

    #[test]
    fn zero_bias_head_starts_at_zero() {
        let device = Device::flex();
        let head = ClassifierHead::new(16, 4, LinearBiasInit::Zero, &device);
        let bias = head.fc.bias.as_ref().unwrap().val().into_data();
        assert_eq!(bias.try_to_vec::<f32>().unwrap(), vec![0.0; 4]);
        assert_eq!((head.feature_channels(), head.num_classes()), (16, 4));
    }
}
