//! PyramidNet (Han, Kim & Kim, "Deep Pyramidal Residual Networks", CVPR 2017), CIFAR layout,
//! exactly as CutMix's `pyramidnet.py` (from dyhan0920/PyramidNet-PyTorch) builds it; CutMix,
//! Saliency Grafting (PyramidNet-200, alpha 240) and SalfMix (PyramidNet-110, alpha 64) train it.
//!
//! - Stem: 3x3 conv to 16 channels + BN (no ReLU).
//! - Three stages of n blocks (n = (depth-2)/9 bottleneck, (depth-2)/6 basic) at strides 1, 2,
//!   2. The width grows additively by `alpha / (3n)` per block; the reference keeps the running
//!   width as a float and rounds it with Python's `round` (ties to even) at every block, which
//!   [`f64::round_ties_even`] reproduces, so channel counts (and parameter counts) are exact.
//! - Blocks start with BN without ReLU (Han et al. §3.2): basic BN-3x3-BN-ReLU-3x3-BN,
//!   bottleneck BN-1x1-BN-ReLU-3x3-BN-ReLU-1x1(x4)-BN.
//! - Shortcut: identity, 2x2 average pooling (ceil mode) where the stride is 2, and zero-padded
//!   channels where the block widens (no projection conv).
//! - Final BN-ReLU, global average pooling (the reference's `AvgPool2d(8)` on the 8x8 map), linear.
//!
//! Initialisation, the file's own loop: convs N(0, 2/(k*k*out_channels)), BN weight 1 and bias
//! 0, the classifier PyTorch's default. With `base_width` w the stem has w channels and the
//! widths grow from w to w + alpha.

use crate::kernels::{batch_norm, batch_norm_relu, conv2d};
use crate::layers::{ClassifierHead, ConvInit, LinearBiasInit, batch_norm_layer, conv};
use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::tensor::{Device, Tensor};

/// BN - 3x3 (stride) - BN - ReLU - 3x3 - BN.
#[derive(Module, Debug)]
pub struct PyramidBasicBlock {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    bn3: BatchNorm,
}

/// BN - 1x1 - BN - ReLU - 3x3 (stride) - BN - ReLU - 1x1 (x4) - BN.
#[derive(Module, Debug)]
pub struct PyramidBottleneck {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    bn3: BatchNorm,
    conv3: Conv2d,
    bn4: BatchNorm,
}

/// The residual branch of a pyramidal block.
// Variants differ in size (a few hundred bytes of module handles); boxing them would not pay
// off for values built once per model, and burn's Module derive does not see through `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum PyramidResidual {
    /// Basic blocks (`-basic` names).
    Basic(PyramidBasicBlock),
    /// Bottleneck blocks (CutMix's default).
    Bottleneck(PyramidBottleneck),
}

/// A residual branch plus the parameter-free shortcut.
#[derive(Module, Debug)]
pub struct PyramidBlock {
    residual: PyramidResidual,
    /// 2x2 average pooling (ceil mode) on the shortcut of a stride-2 block.
    downsample: Option<AvgPool2d>,
}

impl PyramidBlock {
    fn new(bottleneck: bool, input: usize, planes: usize, stride: usize, device: &Device) -> Self {
        let init = ConvInit::HeNormalFanOut;
        let residual = if bottleneck {
            PyramidResidual::Bottleneck(PyramidBottleneck {
                bn1: batch_norm_layer(input, device),
                conv1: conv([input, planes], 1, 1, init, device),
                bn2: batch_norm_layer(planes, device),
                conv2: conv([planes, planes], 3, stride, init, device),
                bn3: batch_norm_layer(planes, device),
                conv3: conv([planes, planes * 4], 1, 1, init, device),
                bn4: batch_norm_layer(planes * 4, device),
            })
        } else {
            PyramidResidual::Basic(PyramidBasicBlock {
                bn1: batch_norm_layer(input, device),
                conv1: conv([input, planes], 3, stride, init, device),
                bn2: batch_norm_layer(planes, device),
                conv2: conv([planes, planes], 3, 1, init, device),
                bn3: batch_norm_layer(planes, device),
            })
        };
        let downsample = (stride != 1).then(|| {
            AvgPool2dConfig::new([2, 2])
                .with_strides([2, 2])
                .with_ceil_mode(true)
                .init()
        });
        Self {
            residual,
            downsample,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = match &self.residual {
            PyramidResidual::Basic(b) => {
                let out = conv2d(&b.conv1, batch_norm(&b.bn1, x.clone()));
                let out = conv2d(&b.conv2, batch_norm_relu(&b.bn2, out));
                batch_norm(&b.bn3, out)
            }
            PyramidResidual::Bottleneck(b) => {
                let out = conv2d(&b.conv1, batch_norm(&b.bn1, x.clone()));
                let out = conv2d(&b.conv2, batch_norm_relu(&b.bn2, out));
                let out = conv2d(&b.conv3, batch_norm_relu(&b.bn3, out));
                batch_norm(&b.bn4, out)
            }
        };
        let shortcut = match &self.downsample {
            Some(pool) => pool.forward(x),
            None => x,
        };
        add_zero_padded(out, shortcut)
    }
}

/// `out + cat(shortcut, zeros)` along channels, computed without materialising the zeros: the
/// shortcut is added to the first channels only and the rest pass through.
fn add_zero_padded(out: Tensor<4>, shortcut: Tensor<4>) -> Tensor<4> {
    let [batch, out_channels, height, width] = out.dims();
    let shortcut_channels = shortcut.dims()[1];
    if shortcut_channels == out_channels {
        return out + shortcut;
    }
    let head = out
        .clone()
        .slice([0..batch, 0..shortcut_channels, 0..height, 0..width])
        + shortcut;
    let tail = out.slice([
        0..batch,
        shortcut_channels..out_channels,
        0..height,
        0..width,
    ]);
    Tensor::cat(vec![head, tail], 1)
}

/// A CIFAR PyramidNet (see the module docs).
#[derive(Module, Debug)]
pub struct PyramidNet {
    stem_conv: Conv2d,
    stem_bn: BatchNorm,
    blocks: Vec<PyramidBlock>,
    final_bn: BatchNorm,
    head: ClassifierHead,
}

impl PyramidNet {
    /// PyramidNet-`depth` with total widening `alpha`. The caller has checked the depth.
    pub(crate) fn new(
        depth: usize,
        alpha: usize,
        bottleneck: bool,
        in_channels: usize,
        width: usize,
        num_classes: usize,
        device: &Device,
    ) -> Self {
        let (per_block, expansion) = if bottleneck { (9, 4) } else { (6, 1) };
        let n = (depth - 2) / per_block;
        // Variable names follow `pyramidal_make_layer` so the float arithmetic can be compared
        // line by line: `featuremap_dim` is the running float width.
        let addrate = alpha as f64 / (3 * n) as f64;
        let round = |w: f64| w.round_ties_even() as usize;
        let mut input_featuremap_dim = width;
        let mut featuremap_dim = width as f64;
        let mut blocks = Vec::new();
        for stage in 0..3 {
            let stride = if stage == 0 { 1 } else { 2 };
            featuremap_dim += addrate;
            blocks.push(PyramidBlock::new(
                bottleneck,
                input_featuremap_dim,
                round(featuremap_dim),
                stride,
                device,
            ));
            for _ in 1..n {
                let temp_featuremap_dim = featuremap_dim + addrate;
                blocks.push(PyramidBlock::new(
                    bottleneck,
                    round(featuremap_dim) * expansion,
                    round(temp_featuremap_dim),
                    1,
                    device,
                ));
                featuremap_dim = temp_featuremap_dim;
            }
            input_featuremap_dim = round(featuremap_dim) * expansion;
        }
        Self {
            stem_conv: conv([in_channels, width], 3, 1, ConvInit::HeNormalFanOut, device),
            stem_bn: batch_norm_layer(width, device),
            blocks,
            final_bn: batch_norm_layer(input_featuremap_dim, device),
            head: ClassifierHead::new(
                input_featuremap_dim,
                num_classes,
                LinearBiasInit::PyTorchDefault,
                device,
            ),
        }
    }

    /// The last stage after the final BN-ReLU, which is what the head pools.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        let x = batch_norm(&self.stem_bn, conv2d(&self.stem_conv, x));
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        batch_norm_relu(&self.final_bn, x)
    }

    /// The classifier head.
    pub fn head(&self) -> &ClassifierHead {
        &self.head
    }
}
