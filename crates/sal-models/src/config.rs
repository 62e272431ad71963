//! What a config file says about the model, and building the model from it.

use crate::architecture::{Architecture, ArchitectureError};
use crate::model::Model;
use crate::params::num_trainable_params;
use crate::preact_resnet::PreActResNet;
use crate::pyramidnet::PyramidNet;
use crate::regnet::{REGNETX_200MF, RegNet};
use crate::resnet::{ResNet, ResNetLayout};
use crate::wide_resnet::wide_resnet;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The model part of an experiment config: the trainer's `[model]` table, and what builds a
/// [`Model`].
///
/// ```toml
/// [model]
/// architecture = "wrn-28-10"   # any name `cargo xtask models` prints
/// num_classes = 100            # optional in an experiment: the data set's by default
/// in_channels = 3              # optional: the data set's in an experiment, else 3
/// base_width = 16              # optional, default: the reference width (see below)
/// dropout = 0.3                # optional, default: the reference dropout (see below)
/// stem_stride = 2              # optional, PreActResNets only, default 1
/// ```
///
/// This is a burn [`Config`](burn::config::Config) with the builder methods the derive would
/// generate (`new`, `with_*`), written by hand for two things the derive does not do: omitted
/// optional keys take their defaults when deserialising (the derive requires `in_channels`), and
/// unknown keys are errors (a typo such as `dropuot` must not silently train without dropout).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Which network.
    pub architecture: Architecture,
    /// Number of classes of the classifier (10 for CIFAR-10, 100, 200, 1000, ...). May be left
    /// out of an experiment's `[model]` table, whose data set then gives it
    /// ([`Self::with_data_defaults`]); a model cannot be built without it.
    #[serde(default)]
    pub num_classes: Option<usize>,
    /// Input channels: 3 for RGB, 1 for Fashion-MNIST. `None`: the data set's in an
    /// experiment, [`DEFAULT_IN_CHANNELS`] otherwise.
    #[serde(default)]
    pub in_channels: Option<usize>,
    /// The stem's output channels, which every other width scales with. `None` (default) = the
    /// reference width, [`Architecture::default_base_width`]: 64 for the ResNets and
    /// PreActResNets (stages w, 2w, 4w, 8w), 16 for Wide ResNets (stages wk, 2wk, 4wk) and
    /// PyramidNets (widths growing from w to w + alpha). A smaller width gives a faster
    /// network of the same shape, for tests and CPU runs.
    #[serde(default)]
    pub base_width: Option<usize>,
    /// Dropout probability between the two convs of each Wide ResNet block, in [0, 1).
    /// `None` (default) = the reference, [`Architecture::default_dropout`] (0.3 for Wide
    /// ResNets, 0 for the others). The other families have no dropout in their reference code,
    /// so a non-zero value for them is an error rather than an invented placement.
    #[serde(default)]
    pub dropout: Option<f64>,
    /// The PreActResNet stem conv's stride: 1 (default, the CIFAR layout) or 2, which
    /// PuzzleMix's code uses on 64x64 Tiny-ImageNet (`main.py`: `stride = 2` for
    /// `tiny-imagenet-200`), so Saliency Grafting's Tiny-ImageNet tables (3, 6) train the
    /// network at a quarter of the compute with a 4x4 last feature map. Parameters are the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stem_stride: Option<usize>,
}

/// Input channels when neither the config nor a data set says: RGB.
pub const DEFAULT_IN_CHANNELS: usize = 3;

impl burn::config::Config for ModelConfig {}

/// A model config that cannot be built, or a CAM request that does not fit the model.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum ModelError {
    /// The architecture's free parameters are invalid.
    #[error(transparent)]
    Architecture(#[from] ArchitectureError),
    /// `num_classes` is not set (an experiment's data set sets it).
    #[error("num_classes is not set")]
    ClassesUnset,
    /// `num_classes` is 0.
    #[error("num_classes must be at least 1")]
    NoClasses,
    /// `in_channels` is 0.
    #[error("in_channels must be at least 1")]
    NoInputChannels,
    /// `base_width` is 0.
    #[error("base_width must be at least 1")]
    ZeroWidth,
    /// `dropout` is not a probability in [0, 1).
    #[error("dropout must be in [0, 1), got {0}")]
    InvalidDropout(f64),
    /// Non-zero dropout for a family without dropout in its reference code.
    #[error(
        "`{architecture}` has no dropout in its reference implementation (got {dropout}); only Wide ResNets take one"
    )]
    DropoutUnsupported {
        /// The architecture.
        architecture: Architecture,
        /// The dropout asked for.
        dropout: f64,
    },
    /// `stem_stride` is neither 1 nor 2.
    #[error("stem_stride must be 1 or 2, got {0}")]
    InvalidStemStride(usize),
    /// A stem stride for a family whose reference code has no such option.
    #[error(
        "`{architecture}` takes no stem_stride (got {stride}); only PreActResNets do (PuzzleMix's Tiny-ImageNet layout)"
    )]
    StemStrideUnsupported {
        /// The architecture.
        architecture: Architecture,
        /// The stride asked for.
        stride: usize,
    },
    /// A CAM was asked for with a class list whose length is not the batch size.
    #[error("CAM: {classes} class indices given for a batch of {batch}")]
    ClassCount {
        /// Number of class indices given.
        classes: usize,
        /// Number of images in the batch.
        batch: usize,
    },
    /// A CAM was asked for a class the classifier does not have.
    #[error("CAM: class {class} out of range for a {num_classes}-class model")]
    ClassOutOfRange {
        /// The class index given.
        class: usize,
        /// The model's number of classes.
        num_classes: usize,
    },
}

impl ModelConfig {
    /// A config for `architecture` with `num_classes` classes and every other field at its
    /// default.
    pub fn new(architecture: Architecture, num_classes: usize) -> Self {
        Self {
            architecture,
            num_classes: Some(num_classes),
            in_channels: None,
            base_width: None,
            dropout: None,
            stem_stride: None,
        }
    }

    /// Sets [`stem_stride`](Self::stem_stride).
    pub fn with_stem_stride(mut self, stem_stride: Option<usize>) -> Self {
        self.stem_stride = stem_stride;
        self
    }

    /// Sets [`in_channels`](Self::in_channels).
    pub fn with_in_channels(mut self, in_channels: usize) -> Self {
        self.in_channels = Some(in_channels);
        self
    }

    /// Fills what the config left to the data set: its class count and image channels. Values
    /// the config gives are kept.
    pub fn with_data_defaults(mut self, num_classes: usize, in_channels: usize) -> Self {
        self.num_classes = self.num_classes.or(Some(num_classes));
        self.in_channels = self.in_channels.or(Some(in_channels));
        self
    }

    /// The input channels actually used: `in_channels` or [`DEFAULT_IN_CHANNELS`].
    pub fn effective_in_channels(&self) -> usize {
        self.in_channels.unwrap_or(DEFAULT_IN_CHANNELS)
    }

    /// Sets [`base_width`](Self::base_width).
    pub fn with_base_width(mut self, base_width: Option<usize>) -> Self {
        self.base_width = base_width;
        self
    }

    /// Sets [`dropout`](Self::dropout).
    pub fn with_dropout(mut self, dropout: Option<f64>) -> Self {
        self.dropout = dropout;
        self
    }

    /// The width actually used: `base_width` or the architecture's reference width.
    pub fn effective_base_width(&self) -> usize {
        self.base_width
            .unwrap_or_else(|| self.architecture.default_base_width())
    }

    /// The dropout actually used: `dropout` or the architecture's reference dropout.
    pub fn effective_dropout(&self) -> f64 {
        self.dropout
            .unwrap_or_else(|| self.architecture.default_dropout())
    }

    /// Checks every field; [`try_init`](Self::try_init) and [`init`](Self::init) call it.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.architecture.validate()?;
        match self.num_classes {
            None => return Err(ModelError::ClassesUnset),
            Some(0) => return Err(ModelError::NoClasses),
            Some(_) => {}
        }
        if self.effective_in_channels() == 0 {
            return Err(ModelError::NoInputChannels);
        }
        if self.effective_base_width() == 0 {
            return Err(ModelError::ZeroWidth);
        }
        let dropout = self.effective_dropout();
        if !(0.0..1.0).contains(&dropout) {
            return Err(ModelError::InvalidDropout(dropout));
        }
        if dropout > 0.0 && !matches!(self.architecture, Architecture::WideResNet { .. }) {
            return Err(ModelError::DropoutUnsupported {
                architecture: self.architecture,
                dropout,
            });
        }
        match (self.stem_stride, self.architecture) {
            (None | Some(1), _) => {}
            (Some(2), Architecture::PreActResNet(_)) => {}
            (Some(stride), Architecture::PreActResNet(_)) => {
                return Err(ModelError::InvalidStemStride(stride));
            }
            (Some(stride), architecture) => {
                return Err(ModelError::StemStrideUnsupported {
                    architecture,
                    stride,
                });
            }
        }
        Ok(())
    }

    /// Builds the model on `device` with its parameters **materialised**: burn creates
    /// parameters lazily (they are drawn on first use), and a lazy model that is cloned and the
    /// clone frozen or moved can lose its gradient tracking or initialise the two copies
    /// differently (burn issue #5040). So every parameter is
    /// initialised here, before the caller can clone it, by visiting each one once. Seed the
    /// device (`device.seed(..)`) first for reproducible weights.
    pub fn try_init(&self, device: &Device) -> Result<Model, ModelError> {
        let model = self.build_lazy(device)?;
        model.materialize_parameters();
        Ok(model)
    }

    /// [`try_init`](Self::try_init) for a config already validated.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails; call it (or `try_init`) on configs from users.
    pub fn init(&self, device: &Device) -> Model {
        self.try_init(device)
            .unwrap_or_else(|err| panic!("invalid model config: {err}"))
    }

    /// Number of trainable parameters (BatchNorm running statistics excluded), computed from
    /// the parameter shapes alone: nothing is allocated or drawn, so this is instant even for
    /// ResNet-152.
    pub fn num_trainable_params(&self) -> Result<usize, ModelError> {
        let model = self.build_lazy(&Device::flex())?;
        Ok(num_trainable_params(&model))
    }

    /// The model with lazy (not yet drawn) parameters.
    fn build_lazy(&self, device: &Device) -> Result<Model, ModelError> {
        self.validate()?;
        let (channels, width) = (self.effective_in_channels(), self.effective_base_width());
        let classes = self.num_classes.ok_or(ModelError::ClassesUnset)?;
        Ok(match self.architecture {
            Architecture::CifarResNet(depth) => Model::ResNet(ResNet::new(
                ResNetLayout::Cifar,
                depth,
                channels,
                width,
                classes,
                device,
            )),
            Architecture::ResNet(depth) => Model::ResNet(ResNet::new(
                ResNetLayout::ImageNet,
                depth,
                channels,
                width,
                classes,
                device,
            )),
            Architecture::PreActResNet(depth) => Model::PreActResNet(PreActResNet::new(
                depth,
                channels,
                width,
                classes,
                self.stem_stride.unwrap_or(1),
                device,
            )),
            Architecture::WideResNet { depth, widen } => Model::PreActResNet(wide_resnet(
                depth,
                widen,
                channels,
                width,
                classes,
                self.effective_dropout(),
                device,
            )),
            Architecture::PyramidNet {
                depth,
                alpha,
                bottleneck,
            } => Model::PyramidNet(PyramidNet::new(
                depth, alpha, bottleneck, channels, width, classes, device,
            )),
            Architecture::RegNetX200MF(layout) => Model::RegNet(RegNet::new(
                REGNETX_200MF,
                layout,
                channels,
                width,
                classes,
                device,
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(name: &str, classes: usize) -> usize {
        let architecture: Architecture = name.parse().unwrap();
        ModelConfig::new(architecture, classes)
            .num_trainable_params()
            .unwrap()
    }

    /// Every network of `crate::reference::REFERENCE_COUNTS` has its reference count.
    #[test]
    fn parameter_counts_equal_the_reference_implementations() {
        for r in crate::reference::REFERENCE_COUNTS {
            assert_eq!(
                count(r.architecture, r.classes),
                r.parameters,
                "{}, {} classes",
                r.architecture,
                r.classes
            );
        }
        assert_eq!(crate::reference_count("wrn-28-10", 100), Some(36_536_884));
        assert_eq!(crate::reference_count("wrn-28-10", 7), None);
    }

    /// SalfMix's paper (§5.1) rounds PreActResNet-18/50/101 to 11 M, 24 M and 43 M; the exact
    /// figures (in millions at 10 classes) are kuangliu's `preact_resnet.py` counted in PyTorch
    /// plus the final BN(512 or 2048) of He et al. 2016 (kuangliu's file alone gives 42.50 M for
    /// the 101).
    #[test]
    fn preact_counts_round_to_the_papers_millions() {
        for (name, millions) in [
            ("preact-resnet18", 11.17),
            ("preact-resnet34", 21.28),
            ("preact-resnet50", 23.51),
            ("preact-resnet101", 42.51),
            ("preact-resnet152", 58.15),
        ] {
            let n = count(name, 10);
            assert_eq!(
                format!("{:.2}", n as f64 / 1e6),
                format!("{millions:.2}"),
                "{name}"
            );
        }
    }

    #[test]
    fn width_and_channels_scale_the_count_as_expected() {
        let base = ModelConfig::new("cifar-resnet18".parse().unwrap(), 10);
        // One input channel removes 2 * 64 * 3 * 3 stem weights.
        let gray = base.clone().with_in_channels(1);
        assert_eq!(
            base.num_trainable_params().unwrap() - gray.num_trainable_params().unwrap(),
            2 * 64 * 9
        );
        // Convolutions scale with width squared: half width is about a quarter.
        let half = base.clone().with_base_width(Some(32));
        let ratio = half.num_trainable_params().unwrap() as f64
            / base.num_trainable_params().unwrap() as f64;
        assert!((0.24..0.26).contains(&ratio), "{ratio}");
    }

    #[test]
    fn invalid_configs_are_typed_errors() {
        let cifar = || ModelConfig::new("cifar-resnet18".parse().unwrap(), 10);
        let wrn = || ModelConfig::new("wrn-28-10".parse().unwrap(), 10);
        assert_eq!(
            ModelConfig::new("cifar-resnet18".parse().unwrap(), 0).validate(),
            Err(ModelError::NoClasses)
        );
        let unset: ModelConfig = toml::from_str("architecture = \"cifar-resnet18\"").unwrap();
        assert_eq!(unset.validate(), Err(ModelError::ClassesUnset));
        assert_eq!(unset.clone().with_data_defaults(10, 1).validate(), Ok(()));
        assert_eq!(
            cifar().with_in_channels(0).validate(),
            Err(ModelError::NoInputChannels)
        );
        assert_eq!(
            cifar().with_base_width(Some(0)).validate(),
            Err(ModelError::ZeroWidth)
        );
        assert_eq!(
            wrn().with_dropout(Some(1.0)).validate(),
            Err(ModelError::InvalidDropout(1.0))
        );
        assert!(matches!(
            wrn().with_dropout(Some(f64::NAN)).validate(),
            Err(ModelError::InvalidDropout(_))
        ));
        assert!(matches!(
            cifar().with_dropout(Some(0.2)).validate(),
            Err(ModelError::DropoutUnsupported { .. })
        ));
        assert_eq!(cifar().with_dropout(Some(0.0)).validate(), Ok(()));
        let bad_wrn = ModelConfig::new(
            Architecture::WideResNet {
                depth: 27,
                widen: 10,
            },
            10,
        );
        assert!(matches!(
            bad_wrn.try_init(&Device::flex()),
            Err(ModelError::Architecture(_))
        ));
    }

    #[test]
    fn reference_defaults_fill_unset_fields() {
        let wrn = ModelConfig::new("wrn-28-10".parse().unwrap(), 100);
        assert_eq!(
            (wrn.effective_base_width(), wrn.effective_dropout()),
            (16, 0.3)
        );
        let resnet = ModelConfig::new("resnet50".parse().unwrap(), 1000);
        assert_eq!(
            (resnet.effective_base_width(), resnet.effective_dropout()),
            (64, 0.0)
        );
        let pyramid = ModelConfig::new("pyramidnet200-a240".parse().unwrap(), 100);
        assert_eq!(pyramid.effective_base_width(), 16);
    }

    /// The trainer embeds this as its `[model]` table.
    #[test]
    fn toml_model_table_round_trips_with_defaults_and_rejects_unknown_keys() {
        let minimal: ModelConfig =
            toml::from_str("architecture = \"wrn-28-10\"\nnum_classes = 100\n").unwrap();
        assert_eq!(minimal, ModelConfig::new("wrn-28-10".parse().unwrap(), 100));
        let full = ModelConfig::new("preact-resnet18".parse().unwrap(), 10)
            .with_in_channels(1)
            .with_base_width(Some(16))
            .with_dropout(Some(0.0));
        let text = toml::to_string(&full).unwrap();
        assert!(
            text.contains("architecture = \"preact-resnet18\""),
            "{text}"
        );
        assert_eq!(toml::from_str::<ModelConfig>(&text).unwrap(), full);

        let typo = toml::from_str::<ModelConfig>(
            "architecture = \"wrn-28-10\"\nnum_classes = 100\ndropuot = 0.0\n",
        );
        assert!(typo.unwrap_err().to_string().contains("dropuot"));
        let unknown = toml::from_str::<ModelConfig>("architecture = \"vgg\"\nnum_classes = 1\n");
        assert!(unknown.unwrap_err().to_string().contains("cifar-resnet18"));
    }

    #[test]
    fn data_defaults_fill_only_what_the_config_left_out() {
        let left_out: ModelConfig = toml::from_str("architecture = \"cifar-resnet18\"").unwrap();
        let filled = left_out.with_data_defaults(10, 1);
        assert_eq!(
            (filled.num_classes, filled.in_channels),
            (Some(10), Some(1))
        );
        let given = ModelConfig::new("cifar-resnet18".parse().unwrap(), 100).with_in_channels(3);
        let kept = given.clone().with_data_defaults(10, 1);
        assert_eq!(kept, given);
    }
}
