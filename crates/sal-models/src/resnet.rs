//! The post-activation ResNet (He et al., CVPR 2016) in its two layouts.
//!
//! - **CIFAR** (`cifar-resnet<depth>`): the SaliencyMix CIFAR code's `model/resnet.py`
//!   (kuangliu/pytorch-cifar): 3x3 stride-1 stem conv + BN + ReLU, no max-pool, stages of
//!   width w, 2w, 4w, 8w at strides 1, 2, 2, 2, so a 32x32 input ends at 4x4.
//!   Initialisation: PyTorch's defaults (that file initialises nothing itself).
//! - **ImageNet** (`resnet<depth>`): torchvision's `resnet.py` (v1.5: a bottleneck's stride sits
//!   on its 3x3 conv): 7x7 stride-2 stem conv + BN + ReLU + 3x3 stride-2 max-pool, same stages,
//!   so a 224x224 input ends at 7x7. Initialisation: torchvision's, He normal with fan-out for
//!   convs, BN weight 1 and bias 0, PyTorch's default for the classifier; `zero_init_residual`
//!   is off (torchvision's default).
//!
//! Both layouts share the blocks. A block's shortcut is identity, or a strided 1x1 conv + BN when
//! the stride or the channel count changes (torchvision's `downsample`, kuangliu's `shortcut`).

use crate::architecture::ResNetDepth;
use crate::kernels::{add_relu, batch_norm, batch_norm_relu, conv2d};
use crate::layers::{ClassifierHead, ConvInit, LinearBiasInit, batch_norm_layer, conv};
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

/// Which stem, and with it which reference layout and initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResNetLayout {
    /// 3x3 stride-1 stem, no max-pool, PyTorch default init (SaliencyMix CIFAR code).
    Cifar,
    /// 7x7 stride-2 stem, max-pool, He fan-out init (torchvision).
    ImageNet,
}

/// Stem conv + BN + ReLU, then the ImageNet layout's max-pool.
#[derive(Module, Debug)]
pub struct ResNetStem {
    conv: Conv2d,
    bn: BatchNorm,
    pool: Option<MaxPool2d>,
}

impl ResNetStem {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = batch_norm_relu(&self.bn, conv2d(&self.conv, x));
        match &self.pool {
            Some(pool) => pool.forward(x),
            None => x,
        }
    }
}

/// The projection shortcut: strided 1x1 conv + BN.
#[derive(Module, Debug)]
pub struct Projection {
    conv: Conv2d,
    bn: BatchNorm,
}

impl Projection {
    fn new(channels: [usize; 2], stride: usize, init: ConvInit, device: &Device) -> Self {
        Self {
            conv: conv(channels, 1, stride, init, device),
            bn: batch_norm_layer(channels[1], device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        batch_norm(&self.bn, conv2d(&self.conv, x))
    }
}

/// A projection where the shape changes, identity otherwise.
fn shortcut(
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    init: ConvInit,
    device: &Device,
) -> Option<Projection> {
    (stride != 1 || in_channels != out_channels)
        .then(|| Projection::new([in_channels, out_channels], stride, init, device))
}

/// `relu(residual + shortcut(x))`, the block's end, as one fused op.
fn add_shortcut_relu(
    residual: Tensor<4>,
    x: Tensor<4>,
    shortcut: &Option<Projection>,
) -> Tensor<4> {
    match shortcut {
        Some(projection) => add_relu(residual, projection.forward(x)),
        None => add_relu(residual, x),
    }
}

/// 3x3 (stride) - BN - ReLU - 3x3 - BN, + shortcut, ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    shortcut: Option<Projection>,
}

/// 1x1 - BN - ReLU - 3x3 (stride) - BN - ReLU - 1x1 (x4) - BN, + shortcut, ReLU.
#[derive(Module, Debug)]
pub struct Bottleneck {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Conv2d,
    bn3: BatchNorm,
    shortcut: Option<Projection>,
}

/// One residual block of either kind.
// Variants differ in size (a few hundred bytes of module handles); boxing them would not pay
// off for values built once per model, and burn's Module derive does not see through `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ResidualBlock {
    /// ResNet-18/34.
    Basic(BasicBlock),
    /// ResNet-50/101/152.
    Bottleneck(Bottleneck),
}

impl ResidualBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Basic(b) => {
                let out = batch_norm_relu(&b.bn1, conv2d(&b.conv1, x.clone()));
                let out = batch_norm(&b.bn2, conv2d(&b.conv2, out));
                add_shortcut_relu(out, x, &b.shortcut)
            }
            Self::Bottleneck(b) => {
                let out = batch_norm_relu(&b.bn1, conv2d(&b.conv1, x.clone()));
                let out = batch_norm_relu(&b.bn2, conv2d(&b.conv2, out));
                let out = batch_norm(&b.bn3, conv2d(&b.conv3, out));
                add_shortcut_relu(out, x, &b.shortcut)
            }
        }
    }
}

/// A post-activation ResNet, CIFAR or ImageNet layout (see the module docs).
#[derive(Module, Debug)]
pub struct ResNet {
    stem: ResNetStem,
    /// The four stages' blocks in order.
    blocks: Vec<ResidualBlock>,
    head: ClassifierHead,
}

impl ResNet {
    /// `width` is the stem's output and the first stage's width (64 in the references).
    pub(crate) fn new(
        layout: ResNetLayout,
        depth: ResNetDepth,
        in_channels: usize,
        width: usize,
        num_classes: usize,
        device: &Device,
    ) -> Self {
        let init = match layout {
            ResNetLayout::Cifar => ConvInit::PyTorchDefault,
            ResNetLayout::ImageNet => ConvInit::HeNormalFanOut,
        };
        let stem = match layout {
            ResNetLayout::Cifar => ResNetStem {
                conv: conv([in_channels, width], 3, 1, init, device),
                bn: batch_norm_layer(width, device),
                pool: None,
            },
            ResNetLayout::ImageNet => ResNetStem {
                conv: conv([in_channels, width], 7, 2, init, device),
                bn: batch_norm_layer(width, device),
                pool: Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            },
        };

        let expansion = if depth.is_bottleneck() { 4 } else { 1 };
        let mut blocks = Vec::new();
        let mut channels = width;
        for (stage, &count) in depth.blocks_per_stage().iter().enumerate() {
            let planes = width << stage;
            for index in 0..count {
                let stride = if stage > 0 && index == 0 { 2 } else { 1 };
                let out = planes * expansion;
                let block = if depth.is_bottleneck() {
                    ResidualBlock::Bottleneck(Bottleneck {
                        conv1: conv([channels, planes], 1, 1, init, device),
                        bn1: batch_norm_layer(planes, device),
                        conv2: conv([planes, planes], 3, stride, init, device),
                        bn2: batch_norm_layer(planes, device),
                        conv3: conv([planes, out], 1, 1, init, device),
                        bn3: batch_norm_layer(out, device),
                        shortcut: shortcut(channels, out, stride, init, device),
                    })
                } else {
                    ResidualBlock::Basic(BasicBlock {
                        conv1: conv([channels, planes], 3, stride, init, device),
                        bn1: batch_norm_layer(planes, device),
                        conv2: conv([planes, planes], 3, 1, init, device),
                        bn2: batch_norm_layer(planes, device),
                        shortcut: shortcut(channels, out, stride, init, device),
                    })
                };
                blocks.push(block);
                channels = out;
            }
        }
        let head = ClassifierHead::new(
            channels,
            num_classes,
            LinearBiasInit::PyTorchDefault,
            device,
        );
        Self { stem, blocks, head }
    }

    /// The last stage's output (after its final ReLU): `[batch, 8 * width * expansion, h, w]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.blocks
            .iter()
            .fold(self.stem.forward(x), |x, block| block.forward(x))
    }

    /// The classifier head.
    pub fn head(&self) -> &ClassifierHead {
        &self.head
    }
}
