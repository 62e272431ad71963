//! RegNetX-200MF (Radosavovic et al., "Designing Network Design Spaces", CVPR 2020), the
//! "RegNet-200M" of SalfMix Table 6, as yhhhli/RegNet-Pytorch builds it (the code SalfMix names
//! for its settings; its ImageNet model is pycls's, its CIFAR model changes only two strides).
//!
//! - Widths and depths come from the RegNet design space: `w_a = 36.44`, `w_0 = 24`,
//!   `w_m = 2.49`, 13 blocks, group width 8, bottleneck ratio 1 ([`RegNetParams::stages`],
//!   `generate_regnet` + `get_stages_from_blocks` + `adjust_ws_gs_comp` of the reference):
//!   stages of 24, 56, 152, 368 channels with 1, 1, 4, 7 blocks.
//! - Stem: 3x3 conv to 32 channels + BN + ReLU; stride 2 on ImageNet (`regnetx-200mf`), 1 on
//!   CIFAR (`cifar-regnetx-200mf`, whose first stage also keeps stride 1: "the input size for the
//!   last stage won't become too small").
//! - Block (X block, `ResBottleneckBlock`): 1x1 - BN - ReLU - 3x3 grouped (stride) - BN - ReLU -
//!   1x1 - BN, plus the shortcut (a 1x1 projection + BN where the width or stride changes),
//!   then ReLU.
//! - Head: global average pooling + linear.
//!
//! Initialisation, the reference's: convs N(0, 2/(k*k*out_channels)) (grouped convs too: the
//! fan-out is not divided by the groups), BN weight 1 and bias 0 except the last BN of each
//! block's branch (weight 0, `final_bn`), the classifier N(0, 0.01) with a zero bias.
//! With `base_width` w the stem has w channels (the stages keep their widths).
//!
//! Parameter counts: 2,684,792 at 1000 classes (torchvision's published `regnet_x_200mf`
//! count, the same network), 2,319,482 at 10 (yhhhli's "2.31 M"), 2,352,692 at 100 (SalfMix's
//! "2.3 M").

use crate::kernels::{add_relu, batch_norm, batch_norm_relu, conv2d};
use crate::layers::{ClassifierHead, ConvInit, LinearBiasInit, batch_norm_layer, conv};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

/// A point of the RegNet design space (pycls's `REGNET` config keys).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegNetParams {
    /// Slope of the linear widths, `WA`.
    pub w_a: f64,
    /// Initial width, `W0`.
    pub w_0: usize,
    /// Width multiplier between stages, `WM`.
    pub w_m: f64,
    /// Blocks in total, `DEPTH`.
    pub depth: usize,
    /// Channels per group of the 3x3 convs, `GROUP_W`.
    pub group_width: usize,
}

/// RegNetX-200MF (pycls `RegNetX-200MF_dds_8gpu.yaml`, yhhhli's `regnet_200M_config`).
pub const REGNETX_200MF: RegNetParams = RegNetParams {
    w_a: 36.44,
    w_0: 24,
    w_m: 2.49,
    depth: 13,
    group_width: 8,
};

/// Widths are quantised to multiples of this (`q = 8`).
const QUANTUM: f64 = 8.0;

/// One stage: its width, number of blocks and group width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegNetStage {
    pub width: usize,
    pub blocks: usize,
    pub group_width: usize,
}

impl RegNetParams {
    /// The stages, as the reference derives them (numpy's `round` is half to even).
    pub fn stages(&self) -> Vec<RegNetStage> {
        let w_0 = self.w_0 as f64;
        // generate_regnet: linear widths, snapped to the nearest power of w_m, quantised.
        let widths: Vec<usize> = (0..self.depth)
            .map(|i| {
                let continuous = i as f64 * self.w_a + w_0;
                let k = ((continuous / w_0).ln() / self.w_m.ln()).round_ties_even();
                let w = w_0 * self.w_m.powf(k);
                ((w / QUANTUM).round_ties_even() * QUANTUM) as usize
            })
            .collect();
        // get_stages_from_blocks: runs of equal widths.
        let mut stages: Vec<RegNetStage> = Vec::new();
        for w in widths {
            match stages.last_mut() {
                Some(stage) if stage.width == w => stage.blocks += 1,
                _ => stages.push(RegNetStage {
                    width: w,
                    blocks: 1,
                    group_width: self.group_width,
                }),
            }
        }
        // adjust_ws_gs_comp with bottleneck ratio 1: a group is at most the width, and the
        // width a multiple of the group.
        for stage in &mut stages {
            stage.group_width = stage.group_width.min(stage.width);
            stage.width = ((stage.width as f64 / stage.group_width as f64).round_ties_even()
                * stage.group_width as f64) as usize;
        }
        stages
    }
}

/// The stem's and first stage's stride: the ImageNet layout halves the input twice more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegNetLayout {
    /// pycls / torchvision: stride 2 in the stem and in every stage (224 -> 7).
    ImageNet,
    /// yhhhli's CIFAR model: stride 1 in the stem and the first stage (32 -> 4).
    Cifar,
}

/// The X block: the bottleneck branch with a grouped 3x3, and its shortcut.
#[derive(Module, Debug)]
pub struct XBlock {
    a: Conv2d,
    a_bn: BatchNorm,
    b: Conv2d,
    b_bn: BatchNorm,
    c: Conv2d,
    c_bn: BatchNorm,
    /// 1x1 projection + BN where the width or the stride changes.
    projection: Option<(Conv2d, BatchNorm)>,
}

impl XBlock {
    fn new(input: usize, stage: RegNetStage, stride: usize, device: &Device) -> Self {
        let (width, init) = (stage.width, ConvInit::HeNormalFanOut);
        let mut c_bn = batch_norm_layer(width, device);
        c_bn.gamma = Initializer::Zeros.init([width], device);
        let projection = (input != width || stride != 1).then(|| {
            (
                conv([input, width], 1, stride, init, device),
                batch_norm_layer(width, device),
            )
        });
        Self {
            a: conv([input, width], 1, 1, init, device),
            a_bn: batch_norm_layer(width, device),
            b: grouped_conv(width, width / stage.group_width, stride, device),
            b_bn: batch_norm_layer(width, device),
            c: conv([width, width], 1, 1, init, device),
            c_bn,
            projection,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = batch_norm_relu(&self.a_bn, conv2d(&self.a, x.clone()));
        let out = batch_norm_relu(&self.b_bn, conv2d(&self.b, out));
        let out = batch_norm(&self.c_bn, conv2d(&self.c, out));
        let shortcut = match &self.projection {
            Some((proj, bn)) => batch_norm(bn, conv2d(proj, x)),
            None => x,
        };
        add_relu(shortcut, out)
    }
}

/// A 3x3 grouped convolution with the reference's N(0, 2/(9*out_channels)): burn's Kaiming
/// initialiser divides the fan-out by the groups, the reference does not.
fn grouped_conv(channels: usize, groups: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([channels, channels], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_groups(groups)
        .with_bias(false)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: (2.0 / (9 * channels) as f64).sqrt(),
        })
        .init(device)
}

/// A RegNetX (see the module docs).
#[derive(Module, Debug)]
pub struct RegNet {
    stem_conv: Conv2d,
    stem_bn: BatchNorm,
    blocks: Vec<XBlock>,
    head: ClassifierHead,
}

impl RegNet {
    pub(crate) fn new(
        params: RegNetParams,
        layout: RegNetLayout,
        in_channels: usize,
        width: usize,
        num_classes: usize,
        device: &Device,
    ) -> Self {
        let stem_stride = match layout {
            RegNetLayout::ImageNet => 2,
            RegNetLayout::Cifar => 1,
        };
        let mut blocks = Vec::new();
        let mut input = width;
        for (i, stage) in params.stages().into_iter().enumerate() {
            let stride = if i == 0 { stem_stride } else { 2 };
            for b in 0..stage.blocks {
                blocks.push(XBlock::new(
                    input,
                    stage,
                    if b == 0 { stride } else { 1 },
                    device,
                ));
                input = stage.width;
            }
        }
        let mut head = ClassifierHead::new(input, num_classes, LinearBiasInit::Zero, device);
        head.fc.weight = Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        }
        .init([input, num_classes], device);
        Self {
            stem_conv: conv(
                [in_channels, width],
                3,
                stem_stride,
                ConvInit::HeNormalFanOut,
                device,
            ),
            stem_bn: batch_norm_layer(width, device),
            blocks,
            head,
        }
    }

    /// The last stage's output, which the head pools.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        let x = batch_norm_relu(&self.stem_bn, conv2d(&self.stem_conv, x));
        self.blocks.iter().fold(x, |x, block| block.forward(x))
    }

    /// The classifier head.
    pub fn head(&self) -> &ClassifierHead {
        &self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;

    #[test]
    fn the_design_space_gives_regnetx_200mf_stages() {
        let stages = REGNETX_200MF.stages();
        let widths: Vec<usize> = stages.iter().map(|s| s.width).collect();
        let blocks: Vec<usize> = stages.iter().map(|s| s.blocks).collect();
        // torchvision's regnet_x_200mf and pycls's RegNetX-200MF: [24, 56, 152, 368], [1, 1, 4, 7].
        assert_eq!(widths, [24, 56, 152, 368]);
        assert_eq!(blocks, [1, 1, 4, 7]);
        assert!(stages.iter().all(|s| s.group_width == 8));
    }

    fn values(p: &Param<Tensor<1>>) -> Vec<f32> {
        p.val().into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn initialisation_follows_the_reference() {
        let device = Device::flex();
        let net = RegNet::new(REGNETX_200MF, RegNetLayout::Cifar, 3, 32, 10, &device);
        let block = &net.blocks[3];
        assert!(values(&block.c_bn.gamma).iter().all(|&g| g == 0.0));
        assert!(values(&block.b_bn.gamma).iter().all(|&g| g == 1.0));
        // The grouped 3x3 of a 152-channel stage: std sqrt(2 / (9 * 152)), not x sqrt(19).
        let w: Vec<f32> = block
            .b
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(block.b.weight.dims(), [152, 8, 3, 3]);
        let n = w.len() as f32;
        let std = (w.iter().map(|v| v * v).sum::<f32>() / n).sqrt();
        let expected = (2.0f32 / (9.0 * 152.0)).sqrt();
        assert!((std / expected - 1.0).abs() < 0.05, "{std} vs {expected}");
        let fc: Vec<f32> = net
            .head
            .fc
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let fc_std = (fc.iter().map(|v| v * v).sum::<f32>() / fc.len() as f32).sqrt();
        assert!((fc_std / 0.01 - 1.0).abs() < 0.1, "{fc_std}");
        assert!(
            values(net.head.fc.bias.as_ref().unwrap())
                .iter()
                .all(|&b| b == 0.0)
        );
    }

    #[test]
    fn layouts_reduce_32_pixels_to_4_or_1() {
        let device = Device::flex();
        for (layout, side) in [(RegNetLayout::Cifar, 4), (RegNetLayout::ImageNet, 1)] {
            let net = RegNet::new(REGNETX_200MF, layout, 3, 8, 5, &device);
            let x = Tensor::<4>::zeros([1, 3, 32, 32], &device);
            assert_eq!(net.features(x).dims(), [1, 368, side, side], "{layout:?}");
        }
    }
}
