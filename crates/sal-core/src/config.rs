//! The `[augmentation]` table of an experiment config and the mixer it builds.
//!
//! ```toml
//! [augmentation]
//! method = "saliencymix"   # none | mixup | cutout | cutmix | resizemix | saliencymix
//!                          # | salfmix | hybridmix | saliency-grafting
//! prob = 0.5               # method parameters; unknown keys are errors
//! detector = "fine-grained"
//! ```
//!
//! The built [`Augmentation`] owns the run's seed; [`Augmentation::mix`] derives the random
//! stream of each training step from `(seed, step)`, so a resumed run mixes step `s` exactly as
//! the uninterrupted run did.

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::cutmix::CutMixConfig;
use crate::cutout::CutoutConfig;
use crate::detector::Normalization;
use crate::hybridmix::{HybridMixConfig, PairConfig};
use crate::mixer::{BatchMixer, MixBatch, MixOutput, SaliencyInput};
use crate::mixup::MixupConfig;
use crate::resizemix::ResizeMixConfig;
use crate::salfmix::SalfMixConfig;
use crate::saliency_grafting::SaliencyGraftingConfig;
use crate::saliencymix::SaliencyMixConfig;
use crate::seed::{part_rng, step_rng};
use crate::targets::LabelSmoothing;
use crate::{ConfigError, MixError};

/// `method = "none"`: the batch passes through with one-hot targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoMixingConfig {
    /// Label smoothing eps. Default 0.
    pub label_smoothing: f64,
}

/// One augmentation method and its parameters (TOML `[augmentation]`, tagged by `method`).
/// Every parameter has a documented default; unknown keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum AugmentationConfig {
    #[serde(rename = "none")]
    None(NoMixingConfig),
    #[serde(rename = "mixup")]
    Mixup(MixupConfig),
    #[serde(rename = "cutout")]
    Cutout(CutoutConfig),
    #[serde(rename = "cutmix")]
    CutMix(CutMixConfig),
    #[serde(rename = "resizemix")]
    ResizeMix(ResizeMixConfig),
    #[serde(rename = "saliencymix")]
    SaliencyMix(SaliencyMixConfig),
    #[serde(rename = "salfmix")]
    SalfMix(SalfMixConfig),
    #[serde(rename = "hybridmix")]
    HybridMix(HybridMixConfig),
    #[serde(rename = "saliency-grafting")]
    SaliencyGrafting(SaliencyGraftingConfig),
}

impl Default for AugmentationConfig {
    fn default() -> Self {
        Self::None(NoMixingConfig::default())
    }
}

impl AugmentationConfig {
    /// Every `method` name, in the order of the enum.
    pub const METHODS: [&'static str; 9] = [
        "none",
        "mixup",
        "cutout",
        "cutmix",
        "resizemix",
        "saliencymix",
        "salfmix",
        "hybridmix",
        "saliency-grafting",
    ];

    /// The methods that mix: every name of [`Self::METHODS`] but the first, `none`.
    pub const MIXING_METHODS: &'static [&'static str] = Self::METHODS.split_at(1).1;

    /// The `method` name of the TOML table, e.g. `"saliency-grafting"`.
    pub fn method_name(&self) -> &'static str {
        match self {
            Self::None(_) => "none",
            Self::Mixup(_) => "mixup",
            Self::Cutout(_) => "cutout",
            Self::CutMix(_) => "cutmix",
            Self::ResizeMix(_) => "resizemix",
            Self::SaliencyMix(_) => "saliencymix",
            Self::SalfMix(_) => "salfmix",
            Self::HybridMix(_) => "hybridmix",
            Self::SaliencyGrafting(_) => "saliency-grafting",
        }
    }

    /// The name the papers use; HybridMix's names its version (v1: `T_t` = Mixup, v2:
    /// SaliencyMix, v3: CutMix).
    pub fn display_name(&self) -> &'static str {
        match self {
            Self::None(_) => "No mixing",
            Self::Mixup(_) => "Mixup",
            Self::Cutout(_) => "Cutout",
            Self::CutMix(_) => "CutMix",
            Self::ResizeMix(_) => "ResizeMix",
            Self::SaliencyMix(_) => "SaliencyMix",
            Self::SalfMix(_) => "SalfMix",
            Self::HybridMix(c) => match c.mix {
                PairConfig::Mixup(_) => "HybridMix v1 (SalfMix + Mixup)",
                PairConfig::SaliencyMix(_) => "HybridMix v2 (SalfMix + SaliencyMix)",
                PairConfig::CutMix(_) => "HybridMix v3 (SalfMix + CutMix)",
            },
            Self::SaliencyGrafting(_) => "Saliency Grafting",
        }
    }

    /// Epochs the method leaves the batch clean before it starts mixing (0 for most).
    pub fn warmup_epochs(&self) -> usize {
        match self {
            Self::HybridMix(c) => c.warmup_epochs,
            Self::SaliencyGrafting(c) => c.warmup_epochs,
            _ => 0,
        }
    }

    /// The method's parameters at their defaults, `None` for an unknown name. HybridMix's
    /// required `T_t` is SaliencyMix at its defaults (v2), as [`Self::required_keys`] gives it.
    pub fn defaults(method: &str) -> Option<Self> {
        Some(match method {
            "none" => Self::None(NoMixingConfig::default()),
            "mixup" => Self::Mixup(MixupConfig::default()),
            "cutout" => Self::Cutout(CutoutConfig::default()),
            "cutmix" => Self::CutMix(CutMixConfig::default()),
            "resizemix" => Self::ResizeMix(ResizeMixConfig::default()),
            "saliencymix" => Self::SaliencyMix(SaliencyMixConfig::default()),
            "salfmix" => Self::SalfMix(SalfMixConfig::default()),
            "hybridmix" => Self::HybridMix(HybridMixConfig::new(PairConfig::SaliencyMix(
                SaliencyMixConfig::default(),
            ))),
            "saliency-grafting" => Self::SaliencyGrafting(SaliencyGraftingConfig::default()),
            _ => return None,
        })
    }

    /// The keys (dotted, below `[augmentation]`) a table of `method` must give besides
    /// `method`, with the values [`Self::defaults`] takes: HybridMix's `mix.method`.
    pub fn required_keys(method: &str) -> &'static [(&'static str, &'static str)] {
        match method {
            "hybridmix" => &[("mix.method", "saliencymix")],
            _ => &[],
        }
    }

    /// The key (dotted, below `[augmentation]`) of the probability to mix a batch: `prob`, or
    /// HybridMix's `mix.prob` (its `T_t`'s); `None` for `none`.
    pub fn prob_key(&self) -> Option<&'static str> {
        match self {
            Self::None(_) => None,
            Self::HybridMix(_) => Some("mix.prob"),
            _ => Some("prob"),
        }
    }

    /// Builds the mixer. `seed` is the run's seed; `dataset` the normalisation of the training
    /// images (SaliencyMix's u8 detectors need it to undo the normalisation).
    pub fn init(
        &self,
        seed: u64,
        dataset: Option<&Normalization>,
    ) -> Result<Augmentation, ConfigError> {
        let mixer: Box<dyn BatchMixer> = match self {
            Self::None(c) => Box::new(NoMixing {
                smoothing: LabelSmoothing::new(c.label_smoothing)?,
            }),
            Self::Mixup(c) => Box::new(c.init()?),
            Self::Cutout(c) => Box::new(c.init()?),
            Self::CutMix(c) => Box::new(c.init()?),
            Self::ResizeMix(c) => Box::new(c.init()?),
            Self::SaliencyMix(c) => Box::new(c.init(dataset)?),
            Self::SalfMix(c) => Box::new(c.init()?),
            Self::HybridMix(c) => Box::new(c.init(dataset)?),
            Self::SaliencyGrafting(c) => Box::new(c.init()?),
        };
        Ok(Augmentation { mixer, seed })
    }
}

/// The identity "mixer" of `method = "none"`.
#[derive(Debug, Clone)]
pub struct NoMixing {
    smoothing: LabelSmoothing,
}

impl BatchMixer for NoMixing {
    fn name(&self) -> &'static str {
        "none"
    }

    fn mix(&self, batch: MixBatch, _rng: &mut StdRng) -> Result<MixOutput, MixError> {
        batch.checked_dims(self.name())?;
        Ok(batch.unchanged(self.name(), self.smoothing))
    }
}

/// A configured mixer with its run seed.
#[derive(Debug)]
pub struct Augmentation {
    mixer: Box<dyn BatchMixer>,
    seed: u64,
}

impl Augmentation {
    /// Mixes the batch of training step `step` (global, counted from 0 over the whole run).
    pub fn mix(&self, batch: MixBatch, step: u64) -> Result<MixOutput, MixError> {
        self.mixer.mix(batch, &mut self.rng_for_step(step))
    }

    /// Mixes copy `copy` of step `step`'s batch, for a step that trains on several
    /// independently mixed copies of one batch (`k_times`): each copy draws its own stream
    /// ([`crate::seed::copy_rng`]); copy 0 is [`Self::mix`].
    pub fn mix_copy(&self, batch: MixBatch, step: u64, copy: u64) -> Result<MixOutput, MixError> {
        self.mix_part(batch, step, 0, copy)
    }

    /// Mixes copy `copy` of part `part` of step `step`'s global batch, for a step whose batch is
    /// cut into parts that mix on their own (one per device or accumulated micro-batch): each
    /// part draws its own stream ([`part_rng`]); part 0 is [`Self::mix_copy`].
    pub fn mix_part(
        &self,
        batch: MixBatch,
        step: u64,
        part: u64,
        copy: u64,
    ) -> Result<MixOutput, MixError> {
        self.mixer
            .mix(batch, &mut part_rng(self.seed, step, part, copy))
    }

    /// The random stream of step `step`.
    pub fn rng_for_step(&self, step: u64) -> StdRng {
        step_rng(self.seed, step)
    }

    /// What the trainer must put in [`MixBatch::saliency`].
    pub fn saliency_input(&self) -> SaliencyInput {
        self.mixer.saliency_input()
    }

    pub fn mixer(&self) -> &dyn BatchMixer {
        self.mixer.as_ref()
    }

    /// The mixer alone, for callers that manage their own random streams.
    pub fn into_mixer(self) -> Box<dyn BatchMixer> {
        self.mixer
    }

    pub fn name(&self) -> &'static str {
        self.mixer.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::DetectorChoice;
    use crate::hybridmix::PairConfig;
    use crate::saliencymix::{BoxScope, MixingStyle};
    use crate::testing::{host_vec, random_batch};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Experiment {
        augmentation: AugmentationConfig,
    }

    fn parse(text: &str) -> Result<AugmentationConfig, toml::de::Error> {
        toml::from_str::<Experiment>(text).map(|e| e.augmentation)
    }

    #[test]
    fn toml_tables_name_the_method_and_fill_defaults() {
        let c = parse("[augmentation]\nmethod = \"saliencymix\"\nscope = \"per-sample\"\nstyle = \"salient-to-salient\"\ndetector = \"spectral-residual-device\"\n").unwrap();
        assert_eq!(
            c,
            AugmentationConfig::SaliencyMix(SaliencyMixConfig {
                scope: BoxScope::PerSample,
                style: MixingStyle::SalientToSalient,
                detector: DetectorChoice::SpectralResidualDevice,
                ..Default::default()
            })
        );
        assert_eq!(
            parse("[augmentation]\nmethod = \"none\"\n").unwrap(),
            AugmentationConfig::default()
        );
        let h = parse("[augmentation]\nmethod = \"hybridmix\"\npatch_ratio = 0.25\n[augmentation.mix]\nmethod = \"cutmix\"\nprob = 1.0\n").unwrap();
        let AugmentationConfig::HybridMix(h) = h else {
            panic!("{h:?}")
        };
        assert_eq!(h.patch_ratio, 0.25);
        assert_eq!(
            h.mix,
            PairConfig::CutMix(CutMixConfig {
                prob: 1.0,
                ..Default::default()
            })
        );
        for method in [
            "mixup",
            "cutout",
            "cutmix",
            "resizemix",
            "salfmix",
            "saliency-grafting",
        ] {
            let c = parse(&format!("[augmentation]\nmethod = \"{method}\"\n")).unwrap();
            assert!(c.init(0, None).is_ok(), "{method}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e =
            parse("[augmentation]\nmethod = \"cutmix\"\nbeta = 1.0\nalpha = 2.0\n").unwrap_err();
        assert!(e.to_string().contains("alpha"), "{e}");
        assert!(parse("[augmentation]\nmethod = \"puzzlemix\"\n").is_err());
        assert!(parse("[augmentation]\nmethod = \"none\"\nprob = 1.0\n").is_err());
        assert!(
            parse("[augmentation]\nmethod = \"hybridmix\"\n").is_err(),
            "mix is required"
        );
        let bad = parse("[augmentation]\nmethod = \"mixup\"\nprob = 1.5\n").unwrap();
        assert_eq!(
            bad.init(0, None).unwrap_err(),
            ConfigError::Invalid {
                field: "prob",
                value: "1.5".into(),
                expected: "a probability in [0, 1]"
            }
        );
    }

    #[test]
    fn every_method_has_its_name_defaults_and_metadata() {
        assert_eq!(AugmentationConfig::METHODS[0], "none");
        assert_eq!(AugmentationConfig::MIXING_METHODS.len(), 8);
        for method in AugmentationConfig::METHODS {
            let defaults = AugmentationConfig::defaults(method).unwrap();
            assert_eq!(defaults.method_name(), method);
            // The defaults are what a table of the method and its required keys parses to.
            let mut text = format!("[augmentation]\nmethod = \"{method}\"\n");
            for (key, value) in AugmentationConfig::required_keys(method) {
                let (table, key) = key.split_once('.').unwrap();
                text.push_str(&format!("[augmentation.{table}]\n{key} = \"{value}\"\n"));
            }
            assert_eq!(parse(&text).unwrap(), defaults, "{method}");
            // SaliencyMix's u8 detectors need the data set's normalisation.
            let cifar = crate::KnownNormalization::Cifar.normalization();
            assert!(defaults.init(0, Some(&cifar)).is_ok(), "{method}");
            // Without its required keys a table does not parse.
            if !AugmentationConfig::required_keys(method).is_empty() {
                assert!(parse(&format!("[augmentation]\nmethod = \"{method}\"\n")).is_err());
            }
            // The prob key names a parameter of the method's table (HybridMix's in the `mix`
            // table, which `text` ends with).
            if let Some(key) = defaults.prob_key() {
                let set = match key.rsplit_once('.') {
                    Some((_, leaf)) => format!("{text}{leaf} = 0.25\n"),
                    None => format!("[augmentation]\nmethod = \"{method}\"\n{key} = 0.25\n"),
                };
                let c = parse(&set).unwrap_or_else(|e| panic!("{method}: {e}"));
                assert_ne!(c, defaults, "{method}: {key}");
            } else {
                assert_eq!(method, "none");
            }
        }
        assert!(AugmentationConfig::defaults("puzzlemix").is_none());
    }

    #[test]
    fn display_names_are_the_papers_and_warmups_the_configured() {
        let names: Vec<&str> = AugmentationConfig::METHODS
            .iter()
            .map(|m| AugmentationConfig::defaults(m).unwrap().display_name())
            .collect();
        assert_eq!(
            names,
            [
                "No mixing",
                "Mixup",
                "Cutout",
                "CutMix",
                "ResizeMix",
                "SaliencyMix",
                "SalfMix",
                "HybridMix v2 (SalfMix + SaliencyMix)",
                "Saliency Grafting",
            ]
        );
        let hybrid = |mix| AugmentationConfig::HybridMix(HybridMixConfig::new(mix));
        assert_eq!(
            hybrid(PairConfig::Mixup(MixupConfig::default())).display_name(),
            "HybridMix v1 (SalfMix + Mixup)"
        );
        assert_eq!(
            hybrid(PairConfig::CutMix(CutMixConfig::default())).display_name(),
            "HybridMix v3 (SalfMix + CutMix)"
        );
        let warmups: Vec<usize> = AugmentationConfig::METHODS
            .iter()
            .map(|m| AugmentationConfig::defaults(m).unwrap().warmup_epochs())
            .collect();
        assert_eq!(warmups, [0, 0, 0, 0, 0, 0, 0, 1, 5]);
        let c =
            parse("[augmentation]\nmethod = \"saliency-grafting\"\nwarmup_epochs = 20\n").unwrap();
        assert_eq!(c.warmup_epochs(), 20);
    }

    #[test]
    fn the_same_step_mixes_the_same_way() {
        let aug = parse("[augmentation]\nmethod = \"cutmix\"\nprob = 1.0\n")
            .unwrap()
            .init(7, None)
            .unwrap();
        let batch = random_batch(4, 3, 8, 8, 5, 0, &burn::tensor::Device::flex());
        let a = aug.mix(batch.clone(), 12).unwrap();
        let b = aug.mix(batch.clone(), 12).unwrap();
        let c = aug.mix(batch, 13).unwrap();
        assert_eq!(
            host_vec::<f32, 4>(a.images.clone()),
            host_vec::<f32, 4>(b.images)
        );
        assert_eq!(a.trace.samples(), b.trace.samples());
        assert_ne!(a.trace.samples(), c.trace.samples());
    }
}
