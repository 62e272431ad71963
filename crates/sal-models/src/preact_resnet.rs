//! Pre-activation ResNets (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016):
//! the SalfMix/HybridMix networks, and the skeleton the Wide ResNet reuses.
//!
//! Layout (`preact-resnet<depth>`), the CIFAR layout of kuangliu/pytorch-cifar
//! `models/preact_resnet.py`: a bare 3x3 stride-1 stem conv (no BN or ReLU: each block starts
//! with its own BN-ReLU), stages of width w, 2w, 4w, 8w at strides 1, 2, 2, 2, then the extra
//! BN-ReLU after the last addition that He et al. 2016 add for pre-activation nets (§4.1, "an
//! extra activation right after the last elementwise addition"), global pooling and the linear
//! classifier. kuangliu's file leaves that final BN-ReLU out (1,024 parameters fewer for
//! PreActResNet-18); the paper's version also gives CAM and Saliency Grafting a normalised,
//! non-negative feature map.
//!
//! Blocks: BN-ReLU first; when the shape changes the shortcut is a strided 1x1 conv (no BN) on
//! that pre-activated input, otherwise the raw input. Initialisation: PyTorch's defaults, as in
//! kuangliu's file (no SalfMix code was released).

use crate::architecture::ResNetDepth;
use crate::dropout::{DropoutStream, HostDropout};
use crate::kernels::{batch_norm_relu, conv2d};
use crate::layers::{ClassifierHead, ConvInit, LinearBiasInit, batch_norm_layer, conv};
use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

/// BN-ReLU - 3x3 (stride) - BN-ReLU - (dropout) - 3x3, + shortcut.
///
/// With dropout this is exactly the Wide ResNet block (xternalz `BasicBlock`): its
/// `convShortcut` exists iff the channel count changes, which in a WRN is also where the stride
/// changes, so the shortcut rule here gives the same network.
#[derive(Module, Debug)]
pub struct PreActBasicBlock {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    dropout: Option<HostDropout>,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

/// BN-ReLU - 1x1 - BN-ReLU - 3x3 (stride) - BN-ReLU - 1x1 (x4), + shortcut.
#[derive(Module, Debug)]
pub struct PreActBottleneck {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    bn3: BatchNorm,
    conv3: Conv2d,
    shortcut: Option<Conv2d>,
}

/// One pre-activation block of either kind.
// Variants differ in size (a few hundred bytes of module handles); boxing them would not pay
// off for values built once per model, and burn's Module derive does not see through `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum PreActBlock {
    /// PreActResNet-18/34 and every Wide ResNet.
    Basic(PreActBasicBlock),
    /// PreActResNet-50/101/152.
    Bottleneck(PreActBottleneck),
}

fn projection(
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    init: ConvInit,
    device: &Device,
) -> Option<Conv2d> {
    (stride != 1 || in_channels != out_channels)
        .then(|| conv([in_channels, out_channels], 1, stride, init, device))
}

impl PreActBlock {
    /// A basic block; `dropout > 0` adds the Wide ResNet's dropout, drawing from `stream`.
    pub(crate) fn basic(
        channels: [usize; 2],
        stride: usize,
        dropout: f64,
        stream: &DropoutStream,
        init: ConvInit,
        device: &Device,
    ) -> Self {
        let [input, planes] = channels;
        Self::Basic(PreActBasicBlock {
            bn1: batch_norm_layer(input, device),
            conv1: conv([input, planes], 3, stride, init, device),
            bn2: batch_norm_layer(planes, device),
            dropout: (dropout > 0.0).then(|| HostDropout::new(dropout, stream.clone())),
            conv2: conv([planes, planes], 3, 1, init, device),
            shortcut: projection(input, planes, stride, init, device),
        })
    }

    fn bottleneck(channels: [usize; 2], stride: usize, init: ConvInit, device: &Device) -> Self {
        let [input, planes] = channels;
        let out = planes * 4;
        Self::Bottleneck(PreActBottleneck {
            bn1: batch_norm_layer(input, device),
            conv1: conv([input, planes], 1, 1, init, device),
            bn2: batch_norm_layer(planes, device),
            conv2: conv([planes, planes], 3, stride, init, device),
            bn3: batch_norm_layer(planes, device),
            conv3: conv([planes, out], 1, 1, init, device),
            shortcut: projection(input, out, stride, init, device),
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Basic(b) => {
                let pre = batch_norm_relu(&b.bn1, x.clone());
                let skip = shortcut_of(&b.shortcut, pre.clone(), x);
                let out = batch_norm_relu(&b.bn2, conv2d(&b.conv1, pre));
                let out = match &b.dropout {
                    Some(dropout) => dropout.forward(out),
                    None => out,
                };
                conv2d(&b.conv2, out) + skip
            }
            Self::Bottleneck(b) => {
                let pre = batch_norm_relu(&b.bn1, x.clone());
                let skip = shortcut_of(&b.shortcut, pre.clone(), x);
                let out = batch_norm_relu(&b.bn2, conv2d(&b.conv1, pre));
                let out = batch_norm_relu(&b.bn3, conv2d(&b.conv2, out));
                conv2d(&b.conv3, out) + skip
            }
        }
    }
}

/// The projection of the pre-activated input, or the raw input itself.
fn shortcut_of(shortcut: &Option<Conv2d>, pre: Tensor<4>, x: Tensor<4>) -> Tensor<4> {
    match shortcut {
        Some(conv) => conv2d(conv, pre),
        None => x,
    }
}

/// A pre-activation network: bare stem conv, pre-activation blocks, final BN-ReLU, head.
/// Built for PreActResNets and, with dropout and three stages, for Wide ResNets.
#[derive(Module, Debug)]
pub struct PreActResNet {
    stem: Conv2d,
    blocks: Vec<PreActBlock>,
    final_bn: BatchNorm,
    head: ClassifierHead,
    /// The stream the blocks' dropout layers draw from (Wide ResNets).
    #[module(skip)]
    dropout: DropoutStream,
}

impl PreActResNet {
    /// PreActResNet-`depth`; `width` is the stem's output and the first stage's width (64);
    /// `stem_stride` 1 (CIFAR) or 2 (PuzzleMix's Tiny-ImageNet layout).
    pub(crate) fn new(
        depth: ResNetDepth,
        in_channels: usize,
        width: usize,
        num_classes: usize,
        stem_stride: usize,
        device: &Device,
    ) -> Self {
        let init = ConvInit::PyTorchDefault;
        let stream = DropoutStream::default();
        let expansion = if depth.is_bottleneck() { 4 } else { 1 };
        let mut blocks = Vec::new();
        let mut channels = width;
        for (stage, &count) in depth.blocks_per_stage().iter().enumerate() {
            let planes = width << stage;
            for index in 0..count {
                let stride = if stage > 0 && index == 0 { 2 } else { 1 };
                blocks.push(if depth.is_bottleneck() {
                    PreActBlock::bottleneck([channels, planes], stride, init, device)
                } else {
                    PreActBlock::basic([channels, planes], stride, 0.0, &stream, init, device)
                });
                channels = planes * expansion;
            }
        }
        Self::assemble(
            conv([in_channels, width], 3, stem_stride, init, device),
            blocks,
            channels,
            num_classes,
            LinearBiasInit::PyTorchDefault,
            stream,
            device,
        )
    }

    /// Adds the final BN-ReLU and the head to a stem and blocks ending in `channels` channels.
    pub(crate) fn assemble(
        stem: Conv2d,
        blocks: Vec<PreActBlock>,
        channels: usize,
        num_classes: usize,
        bias: LinearBiasInit,
        dropout: DropoutStream,
        device: &Device,
    ) -> Self {
        Self {
            stem,
            blocks,
            final_bn: batch_norm_layer(channels, device),
            head: ClassifierHead::new(channels, num_classes, bias, device),
            dropout,
        }
    }

    /// Restarts the dropout masks' stream from `seed` (see [`crate::dropout`]).
    pub fn reseed_dropout(&self, seed: u64) {
        self.dropout.reseed(seed);
    }

    /// The last stage after the final BN-ReLU, which is what the head pools.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self
            .blocks
            .iter()
            .fold(conv2d(&self.stem, x), |x, block| block.forward(x));
        batch_norm_relu(&self.final_bn, x)
    }

    /// The classifier head.
    pub fn head(&self) -> &ClassifierHead {
        &self.head
    }
}
