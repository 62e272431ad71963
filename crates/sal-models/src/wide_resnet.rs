//! Wide ResNet WRN-d-k (Zagoruyko & Komodakis, BMVC 2016), as SaliencyMix vendors it from
//! xternalz/WideResNet-pytorch (`SaliencyMix_CIFAR/model/wide_resnet.py`).
//!
//! A pre-activation network ([`PreActResNet`]) with three stages of `n = (d - 4) / 6` basic
//! blocks of width 16k, 32k, 64k (strides 1, 2, 2) after a bare 3x3 stem conv of width 16,
//! dropout between each block's two convs (0.3 in SaliencyMix's CIFAR runs), the final BN-ReLU,
//! global pooling and the classifier. With `base_width` w the widths are w, wk, 2wk, 4wk.
//!
//! Initialisation, the file's own loop: convs N(0, 2/(k*k*out_channels)) (He, fan-out), BN
//! weight 1 and bias 0, linear bias 0 (its weight keeps PyTorch's default).

use crate::dropout::DropoutStream;
use crate::layers::{ConvInit, LinearBiasInit, conv};
use crate::preact_resnet::{PreActBlock, PreActResNet};
use burn::tensor::Device;

/// Builds WRN-`depth`-`widen`. The caller has checked `(depth - 4) % 6 == 0`.
pub(crate) fn wide_resnet(
    depth: usize,
    widen: usize,
    in_channels: usize,
    width: usize,
    num_classes: usize,
    dropout: f64,
    device: &Device,
) -> PreActResNet {
    let init = ConvInit::HeNormalFanOut;
    let stream = DropoutStream::default();
    let blocks_per_stage = (depth - 4) / 6;
    let mut blocks = Vec::new();
    let mut channels = width;
    for stage in 0..3 {
        let planes = (width * widen) << stage;
        for index in 0..blocks_per_stage {
            let stride = if stage > 0 && index == 0 { 2 } else { 1 };
            blocks.push(PreActBlock::basic(
                [channels, planes],
                stride,
                dropout,
                &stream,
                init,
                device,
            ));
            channels = planes;
        }
    }
    PreActResNet::assemble(
        conv([in_channels, width], 3, 1, init, device),
        blocks,
        channels,
        num_classes,
        LinearBiasInit::Zero,
        stream,
        device,
    )
}
