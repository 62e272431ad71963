//! Experiment configuration: one TOML file per experiment, `--set key=value` overrides.
//!
//! Every table rejects unknown keys (`deny_unknown_fields`), so a typo is an error that names
//! the key and the file instead of a silently ignored setting. After parsing, [`ExperimentConfig::validate`]
//! checks the values that serde cannot (ranges, orderings, lengths), again naming the key.
//! The resolved config (defaults filled in) is written beside the run's results.

use crate::data::DatasetConfig;
use crate::schedule::ScheduleKind;
use crate::transform::TransformConfig;
use sal_models::ModelConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a config problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
    #[error("config file {path}: `{key}` {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// Which device family runs the experiment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn's `flex` CPU backend (always built).
    #[default]
    Cpu,
    /// WGPU: Vulkan, Metal, DX12 or GL GPUs of any vendor (cargo feature `wgpu`); the
    /// `SAL_WGPU_API` environment variable pins the graphics API (`sal_models::wgpu_device`).
    Wgpu,
    /// CUDA on NVIDIA GPUs (cargo feature `cuda`).
    Cuda,
}

/// Whether `precision` has kernels on `backend`: bf16 on the cpu (AMX / AVX512-BF16) and on
/// cuda, f16 on wgpu and cuda (half-precision shaders; whether a wgpu adapter has them is
/// checked when training starts). The error says what to use instead.
pub fn precision_on_backend(
    precision: sal_models::Precision,
    backend: BackendKind,
) -> Result<(), String> {
    use sal_models::Precision::{Bf16, F16};
    match (precision, backend) {
        (F16, BackendKind::Cpu) => Err("\"f16\" runs on the wgpu and cuda backends \
             (half-precision shaders); on the cpu use precision = \"bf16\""
            .into()),
        (Bf16, BackendKind::Wgpu) => Err("\"bf16\" has no wgpu kernels (WGSL has no bf16 \
             type): use precision = \"f16\" on wgpu, or \"fp32\""
            .into()),
        _ => Ok(()),
    }
}

impl BackendKind {
    /// The config's name of it.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }
}

/// The whole experiment. Top-level keys first, then one table per part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Names the run; the default output directory is `runs/<name>`.
    pub name: String,
    /// The one seed every random stream of the run derives from (see `sal_core::seed`).
    #[serde(default)]
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    /// Where the run writes its config, metrics, checkpoints and results.
    #[serde(default)]
    pub output_dir: Option<PathBuf>,
    #[serde(default)]
    pub backend: BackendKind,
    /// The precision of the model's convolutions: `"fp32"`; `"bf16"` (bf16 operands, f32 sums:
    /// PyTorch's CPU autocast, on the CPU's AMX or AVX512-BF16 units; bf16 kernels on cuda);
    /// `"f16"` (wgpu and cuda). docs/training.md, "Precision".
    #[serde(default)]
    pub precision: sal_models::Precision,
    pub dataset: DatasetConfig,
    /// The `[model]` table; classes and input channels default to the data set's.
    pub model: ModelConfig,
    #[serde(default)]
    pub transform: TransformConfig,
    /// The batch mixing method (`method = "none"` by default) and how many mixed copies of each
    /// batch a step trains on.
    #[serde(default)]
    pub augmentation: AugmentationTable,
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// How many devices train the run and how each step's `batch_size` (the global batch) is
    /// cut between them (docs/backends.md).
    #[serde(default)]
    pub distributed: crate::distributed::DistributedConfig,
    /// The pictures the trainer draws besides `curves.png`.
    #[serde(default)]
    pub pictures: PicturesConfig,
    /// The evaluation suite run when training ends (`cargo xtask eval`'s settings); no `[eval]`
    /// table: none is run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<crate::eval::EvalConfig>,
    /// The paper-table row this config reproduces and the paper's number for it
    /// (`cargo xtask reproduce`); none for other experiments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper: Option<crate::paper::PaperRow>,
}

/// The `[augmentation]` table: a method and its parameters (`sal_core::AugmentationConfig`,
/// tagged by `method`), and `k_times`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentationTable {
    /// Each training step trains on `k_times` independently mixed copies of its mini-batch,
    /// each with its own random stream (Saliency Grafting §5.2, Figure 3: "k independent
    /// augmented batches" with "the mixing ratio newly sampled for each"). The originals a
    /// method trains on beside its mixed images (Saliency Grafting's `with_original`) are
    /// trained on once. Default 1: one mixed batch per step.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub k_times: usize,
    #[serde(flatten)]
    pub method: sal_core::AugmentationConfig,
}

impl Default for AugmentationTable {
    /// `method = "none"`, one copy.
    fn default() -> Self {
        Self {
            k_times: 1,
            method: Default::default(),
        }
    }
}

/// The `[pictures]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PicturesConfig {
    /// Draw `mixed/epoch-<e>.png` in the run directory: the first mixed batch of every epoch
    /// (target, source, mixed image, soft label), as `cargo xtask visualize` draws it; with
    /// `method = "none"` the epoch's first batch as it trains. Default true.
    pub mixed_batches: bool,
    /// Rows (samples) of each mixed-batch picture. Default 8.
    pub rows: usize,
}

impl Default for PicturesConfig {
    fn default() -> Self {
        Self {
            mixed_batches: true,
            rows: 8,
        }
    }
}

fn one() -> usize {
    1
}

fn is_one(k: &usize) -> bool {
    *k == 1
}

/// The `[optimizer]` table: SGD with momentum and (coupled, PyTorch-style) weight decay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    pub lr: f64,
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default = "default_true")]
    pub nesterov: bool,
    #[serde(default)]
    pub weight_decay: f64,
}

/// The `[schedule]` table: PyTorch `MultiStepLR` with milestones in epochs, or
/// `CosineAnnealingLR` over the run (`kind = "cosine"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default, skip_serializing_if = "ScheduleKind::is_multi_step")]
    pub kind: ScheduleKind,
    #[serde(default)]
    pub milestones: Vec<usize>,
    #[serde(default = "default_gamma")]
    pub gamma: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::MultiStep,
            milestones: Vec::new(),
            gamma: default_gamma(),
        }
    }
}

fn default_momentum() -> f64 {
    0.9
}
fn default_true() -> bool {
    true
}
fn default_gamma() -> f64 {
    0.1
}

impl ExperimentConfig {
    /// Reads `path`, applies `overrides` (`key.path=value`, the value parsed as TOML and taken
    /// as a string if it is not valid TOML), deserialises and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, overrides)
    }

    /// [`load`](Self::load) on text already read; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let config: Self = if overrides.is_empty() {
            // Straight from the file, so errors point at its lines.
            toml::from_str(text).map_err(|e| parse_error(e.to_string()))?
        } else {
            let mut table: toml::Table =
                toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
            for arg in overrides {
                apply_override(&mut table, arg)?;
            }
            let merged = toml::to_string(&table).map_err(|e| parse_error(e.to_string()))?;
            toml::from_str(&merged)
                .map_err(|e| parse_error(format!("after the --set overrides: {e}")))?
        };
        config.validate(path)?;
        Ok(config)
    }

    /// [`precision_on_backend`] of this config's precision and backend.
    pub fn check_precision(&self) -> Result<(), String> {
        precision_on_backend(self.precision, self.backend)
    }

    /// Checks what the types cannot express.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty".into()));
        }
        if let Err(message) = self.check_precision() {
            return Err(invalid("precision", message));
        }
        if self.epochs == 0 {
            return Err(invalid("epochs", "must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "must be at least 1".into()));
        }
        if !(self.optimizer.lr > 0.0 && self.optimizer.lr.is_finite()) {
            return Err(invalid(
                "optimizer.lr",
                format!("must be > 0, got {}", self.optimizer.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.optimizer.momentum) {
            let m = self.optimizer.momentum;
            return Err(invalid(
                "optimizer.momentum",
                format!("must be in [0, 1), got {m}"),
            ));
        }
        if self.optimizer.nesterov && self.optimizer.momentum == 0.0 {
            return Err(invalid(
                "optimizer.nesterov",
                "needs optimizer.momentum > 0".into(),
            ));
        }
        if self.optimizer.weight_decay.is_nan() || self.optimizer.weight_decay < 0.0 {
            let wd = self.optimizer.weight_decay;
            return Err(invalid(
                "optimizer.weight_decay",
                format!("must be >= 0, got {wd}"),
            ));
        }
        if self.schedule.gamma.is_nan() || self.schedule.gamma <= 0.0 {
            let g = self.schedule.gamma;
            return Err(invalid("schedule.gamma", format!("must be > 0, got {g}")));
        }
        if self.schedule.kind == ScheduleKind::Cosine && !self.schedule.milestones.is_empty() {
            return Err(invalid(
                "schedule.milestones",
                "a cosine schedule has no milestones: remove them or the kind".into(),
            ));
        }
        if self.schedule.milestones.windows(2).any(|w| w[0] >= w[1]) {
            let m = &self.schedule.milestones;
            return Err(invalid(
                "schedule.milestones",
                format!("must increase strictly, got {m:?}"),
            ));
        }
        if self.dataset.train_limit == Some(0) || self.dataset.test_limit == Some(0) {
            return Err(invalid(
                "dataset.train_limit",
                "limits must be at least 1".into(),
            ));
        }
        let dataset = &self.dataset;
        if dataset.per_class_fraction.is_some() && dataset.per_class.is_some() {
            return Err(invalid(
                "dataset.per_class_fraction",
                "set it or dataset.per_class, not both".into(),
            ));
        }
        if let Some(f) = dataset.per_class_fraction
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(invalid(
                "dataset.per_class_fraction",
                format!("must be in (0, 1], got {f}"),
            ));
        }
        if dataset.per_class == Some(0) {
            return Err(invalid("dataset.per_class", "must be at least 1".into()));
        }
        let channels = self.in_channels();
        if let Some(ch) = self.model.in_channels
            && ch != self.dataset.name.channels()
        {
            let (n, d) = (self.dataset.name.channels(), self.dataset.name);
            return Err(invalid(
                "model.in_channels",
                format!("is {ch} but {d} images have {n}"),
            ));
        }
        if self.model.num_classes == Some(0) {
            return Err(invalid("model.num_classes", "must be at least 1".into()));
        }
        for (key, values) in [
            ("transform.mean", &self.transform.mean),
            ("transform.std", &self.transform.std),
        ] {
            if let Some(v) = values
                && v.len() != channels
            {
                return Err(invalid(
                    key,
                    format!("has {} values for {channels} channels", v.len()),
                ));
            }
        }
        if self.augmentation.k_times == 0 {
            return Err(invalid("augmentation.k_times", "must be at least 1".into()));
        }
        if self.augmentation.k_times > 1
            && matches!(
                self.augmentation.method,
                sal_core::AugmentationConfig::None(_)
            )
        {
            return Err(invalid(
                "augmentation.k_times",
                format!(
                    "= {} with method = \"none\": the copies would be the same batch; pick a \
                     mixing method",
                    self.augmentation.k_times
                ),
            ));
        }
        self.distributed
            .validate(self.batch_size, self.backend)
            .map_err(|(key, message)| invalid(key, message))?;
        if self.pictures.rows == 0 {
            return Err(invalid("pictures.rows", "must be at least 1".into()));
        }
        if let Some(eval) = &self.eval {
            eval.validate()
                .map_err(|(key, message)| invalid(key, message))?;
        }
        if let Some(paper) = &self.paper {
            paper
                .check(self.eval.as_ref())
                .map_err(|(key, message)| invalid(key, message))?;
        }
        match self.augmentation() {
            Err(e) => return Err(invalid("augmentation", e.to_string())),
            Ok(a) if a.saliency_input() == sal_core::SaliencyInput::Given => {
                return Err(invalid(
                    "augmentation.detector",
                    "= \"given\" needs a caller-supplied saliency map; in training pick a detector"
                        .into(),
                ));
            }
            Ok(a)
                if self.distributed.mix_partner == crate::distributed::MixPartner::Global
                    && !a.mixer().mixes_given_partners() =>
            {
                return Err(invalid(
                    "distributed.mix_partner",
                    format!(
                        "= \"global\" gives each image a partner from the whole global batch, \
                         which only the pair methods take (mixup, cutmix, resizemix, \
                         saliencymix); method = \"{}\" mixes within its batch: use \"part\"",
                        a.mixer().name()
                    ),
                ));
            }
            Ok(_) => {}
        }
        if let Some(jitter) = &self.transform.color_jitter {
            jitter
                .validate()
                .map_err(|(key, message)| invalid(key, message))?;
        }
        if let Some(std) = self.transform.lighting {
            if !(std >= 0.0 && std.is_finite()) {
                return Err(invalid(
                    "transform.lighting",
                    format!("must be >= 0, got {std}"),
                ));
            }
            if channels != 3 {
                return Err(invalid(
                    "transform.lighting",
                    format!(
                        "PCA lighting is for RGB images; {} has {channels} channel(s)",
                        self.dataset.name
                    ),
                ));
            }
        }
        if let Some(crop) = &self.transform.random_resized_crop {
            crop.validate()
                .map_err(|(key, message)| invalid(key, message))?;
            if self.transform.crop_padding > 0 {
                return Err(invalid(
                    "transform.random_resized_crop",
                    "is a crop of its own: set transform.crop_padding = 0 with it".into(),
                ));
            }
        }
        self.validate_size(path)?;
        if let Some(std) = &self.transform.std
            && std.iter().any(|&s| s.is_nan() || s <= 0.0)
        {
            return Err(invalid(
                "transform.std",
                format!("must be > 0, got {std:?}"),
            ));
        }
        Ok(())
    }

    /// `transform.size` and `transform.test_resize` (ImageNet's geometry): a positive size,
    /// a test resize at least as large, neither mixed with the fixed-size geometry's keys.
    fn validate_size(&self, path: &Path) -> Result<(), ConfigError> {
        let t = &self.transform;
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let Some(size) = t.size else {
            return match t.test_resize {
                Some(_) => Err(invalid(
                    "transform.test_resize",
                    "is the test geometry of transform.size: set transform.size too".into(),
                )),
                None => Ok(()),
            };
        };
        if size == 0 {
            return Err(invalid("transform.size", "must be at least 1".into()));
        }
        if let Some(resize) = t.test_resize
            && resize < size
        {
            return Err(invalid(
                "transform.test_resize",
                format!("must be at least transform.size ({size}) to centre-crop it, got {resize}"),
            ));
        }
        if t.pad_to.is_some() || t.crop_padding > 0 {
            let key = if t.pad_to.is_some() {
                "transform.pad_to"
            } else {
                "transform.crop_padding"
            };
            return Err(invalid(
                key,
                "is for data sets of one image size; transform.size resizes images of any \
                 size: use one or the other"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Input channels: the data set's.
    pub fn in_channels(&self) -> usize {
        self.dataset.name.channels()
    }

    /// The configured mixing method, its random streams keyed by the run's seed.
    pub fn augmentation(&self) -> Result<sal_core::Augmentation, sal_core::ConfigError> {
        self.augmentation
            .method
            .init(self.seed, Some(&self.normalization()))
    }

    /// The normalisation of the input images: `transform.mean`/`std`, else the data set's.
    pub fn normalization(&self) -> crate::transform::Normalization {
        let d = self.dataset.name.normalization();
        crate::transform::Normalization {
            mean: self.transform.mean.clone().unwrap_or(d.mean),
            std: self.transform.std.clone().unwrap_or(d.std),
        }
    }

    /// The per-sample transform for images shaped like `first`: training (random crop and
    /// flip as configured) or evaluation (padding and normalisation only).
    pub fn sample_transform(
        &self,
        first: &crate::data::ImageItem,
        mode: crate::loader::LoaderMode,
    ) -> crate::transform::SampleTransform {
        let config = match mode {
            crate::loader::LoaderMode::Train => self.transform.clone(),
            crate::loader::LoaderMode::Eval => TransformConfig {
                crop_padding: 0,
                hflip: false,
                ..self.transform.clone()
            },
        };
        crate::transform::SampleTransform::new(
            &config,
            first.channels,
            first.height,
            first.width,
            self.normalization(),
        )
    }

    /// The loader of `set` in `mode` as this experiment runs it: its batch size and seed, the
    /// transform for images shaped like `first`, batches on `device`; in training, each step's
    /// batch cut into the `[distributed]` layout's parts.
    pub fn loader(
        &self,
        set: std::sync::Arc<dyn crate::data::ImageDataset>,
        first: &crate::data::ImageItem,
        mode: crate::loader::LoaderMode,
        device: &burn::tensor::Device,
    ) -> crate::loader::ImageLoader {
        let loader = crate::loader::ImageLoader::new(
            set,
            self.sample_transform(first, mode),
            self.batch_size,
            self.seed,
            mode,
            device.clone(),
        );
        match (mode, self.distributed.mix_partner) {
            (crate::loader::LoaderMode::Eval, _) => loader,
            (crate::loader::LoaderMode::Train, crate::distributed::MixPartner::Part) => {
                loader.with_layout(self.distributed.layout())
            }
            (crate::loader::LoaderMode::Train, crate::distributed::MixPartner::Global) => loader
                .with_layout(self.distributed.layout())
                .with_global_partners(),
        }
    }

    /// The run directory: `output_dir`, or `runs/<name>`.
    pub fn output_dir(&self) -> PathBuf {
        self.output_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(&self.name))
    }

    /// Classes the model predicts: `model.num_classes`, else the data set format's, else the
    /// number the opened training set has (image folders).
    pub fn num_classes(&self, train_set_classes: usize) -> usize {
        self.model
            .num_classes
            .or(self.dataset.name.num_classes())
            .unwrap_or(train_set_classes)
    }

    /// The `[model]` table with the data set's class count (see [`Self::num_classes`]) and
    /// channels filled in.
    pub fn model_config(&self, num_classes: usize) -> ModelConfig {
        self.model
            .clone()
            .with_data_defaults(num_classes, self.in_channels())
    }

    /// The config as TOML, every default written out (saved beside the run's results).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("an ExperimentConfig always serialises")
    }
}

/// Sets `key.path=value` in `table`, creating missing tables on the way.
fn apply_override(table: &mut toml::Table, arg: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Override {
        arg: arg.to_string(),
        message,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| err("expected key=value".into()))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err(format!("`{key}` is not a valid key path")));
    }
    // The value as TOML (number, bool, array, quoted string), else as a bare string.
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let (last, parents) = parts.split_last().expect("split yields at least one part");
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| err(format!("`{}` is not a table", parts[..=depth].join("."))))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::PerClass;

    const GOOD: &str = r#"
name = "t"
epochs = 2
batch_size = 8

[dataset]
name = "fashion-mnist"

[model]
architecture = "cifar-resnet18"
base_width = 8

[optimizer]
lr = 0.1
weight_decay = 5e-4

[schedule]
milestones = [1]
"#;

    fn parse(text: &str, overrides: &[&str]) -> Result<ExperimentConfig, ConfigError> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        ExperimentConfig::parse(text, Path::new("exp.toml"), &o)
    }

    #[test]
    fn parses_and_fills_defaults_from_the_data_set() {
        let c = parse(GOOD, &[]).unwrap();
        assert_eq!(c.model.num_classes, None);
        assert_eq!(c.in_channels(), 1);
        assert!(c.optimizer.nesterov);
        assert_eq!(c.optimizer.momentum, 0.9);
        assert_eq!(c.output_dir(), PathBuf::from("runs/t"));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_file() {
        let text = GOOD.replace("weight_decay", "weight_dacay");
        let msg = parse(&text, &[]).unwrap_err().to_string();
        assert!(
            msg.contains("exp.toml") && msg.contains("weight_dacay"),
            "{msg}"
        );
        let msg = parse(&format!("typo = 1\n{GOOD}"), &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("typo"), "{msg}");
    }

    #[test]
    fn overrides_set_nested_keys_with_toml_values() {
        let c = parse(
            GOOD,
            &[
                "optimizer.lr=0.05",
                "epochs=3",
                "schedule.milestones=[1, 2]",
            ],
        )
        .unwrap();
        assert_eq!((c.optimizer.lr, c.epochs), (0.05, 3));
        assert_eq!(c.schedule.milestones, vec![1, 2]);
        let c = parse(GOOD, &["name=other run"]).unwrap();
        assert_eq!(c.name, "other run");
    }

    #[test]
    fn bad_overrides_are_errors_naming_the_argument() {
        let msg = parse(GOOD, &["epochs"]).unwrap_err().to_string();
        assert!(
            msg.contains("--set epochs") && msg.contains("key=value"),
            "{msg}"
        );
        let msg = parse(GOOD, &["epochs.x=1"]).unwrap_err().to_string();
        assert!(msg.contains("`epochs` is not a table"), "{msg}");
        let msg = parse(GOOD, &["optimizer.lrr=1"]).unwrap_err().to_string();
        assert!(msg.contains("lrr"), "{msg}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        for (o, key) in [
            ("epochs=0", "epochs"),
            ("optimizer.lr=-1", "optimizer.lr"),
            ("schedule.milestones=[3, 2]", "schedule.milestones"),
            ("schedule.kind=\"cosine\"", "schedule.milestones"),
            ("transform.mean=[0.1, 0.2]", "transform.mean"),
            ("model.in_channels=3", "model.in_channels"),
            ("dataset.per_class_fraction=0", "dataset.per_class_fraction"),
            (
                "dataset.per_class_fraction=1.5",
                "dataset.per_class_fraction",
            ),
            ("dataset.per_class=0", "dataset.per_class"),
            (
                "transform.random_resized_crop.scale=[0.5, 0.2]",
                "transform.random_resized_crop.scale",
            ),
        ] {
            let msg = parse(GOOD, &[o]).unwrap_err().to_string();
            assert!(msg.contains(key) && msg.contains("exp.toml"), "{o}: {msg}");
        }
    }

    #[test]
    fn random_resized_crop_parses_with_torchvision_defaults_and_excludes_crop_padding() {
        let c = parse(GOOD, &["transform.random_resized_crop={}"]).unwrap();
        let crop = c.transform.random_resized_crop.unwrap();
        assert_eq!(crop, crate::transform::RandomResizedCrop::default());
        assert_eq!(parse(&c.to_toml(), &[]).unwrap(), c);
        let both = [
            "transform.random_resized_crop={}",
            "transform.crop_padding=4",
        ];
        let msg = parse(GOOD, &both).unwrap_err().to_string();
        assert!(
            msg.contains("crop_padding") && msg.contains("exp.toml"),
            "{msg}"
        );
    }

    #[test]
    fn imagenet_size_parses_and_refuses_what_contradicts_it() {
        let c = parse(GOOD, &["transform.size=224", "transform.test_resize=256"]).unwrap();
        assert_eq!(
            (c.transform.size, c.transform.test_resize),
            (Some(224), Some(256))
        );
        assert_eq!(parse(&c.to_toml(), &[]).unwrap(), c);
        for (overrides, key) in [
            (&["transform.size=0"][..], "transform.size"),
            (
                &["transform.size=32", "transform.test_resize=31"],
                "transform.test_resize",
            ),
            (&["transform.test_resize=256"], "transform.test_resize"),
            (
                &["transform.size=224", "transform.pad_to=32"],
                "transform.pad_to",
            ),
            (
                &["transform.size=224", "transform.crop_padding=4"],
                "transform.crop_padding",
            ),
        ] {
            let msg = parse(GOOD, overrides).unwrap_err().to_string();
            assert!(
                msg.contains(key) && msg.contains("exp.toml"),
                "{overrides:?}: {msg}"
            );
        }
    }

    #[test]
    fn colour_jitter_and_lighting_parse_and_check_their_values() {
        let rgb = GOOD.replace("fashion-mnist", "cifar10");
        let c = parse(
            &rgb,
            &["transform.color_jitter={}", "transform.lighting=0.1"],
        )
        .unwrap();
        assert_eq!(
            c.transform.color_jitter,
            Some(crate::transform::ColorJitter::default())
        );
        assert_eq!(parse(&c.to_toml(), &[]).unwrap(), c);
        let msg = parse(GOOD, &["transform.lighting=0.1"])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("transform.lighting") && msg.contains("RGB"),
            "{msg}"
        );
        let msg = parse(&rgb, &["transform.color_jitter.contrast=-1"])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("transform.color_jitter.contrast"), "{msg}");
    }

    #[test]
    fn one_per_class_rule_at_most() {
        let both = ["dataset.per_class_fraction=0.1", "dataset.per_class=10"];
        let msg = parse(GOOD, &both).unwrap_err().to_string();
        assert!(
            msg.contains("not both") && msg.contains("exp.toml"),
            "{msg}"
        );
        let c = parse(GOOD, &["dataset.per_class=10"]).unwrap();
        assert_eq!(c.dataset.per_class(), Some(PerClass::Count(10)));
    }

    #[test]
    fn augmentation_tables_parse_and_bad_ones_name_the_key() {
        let c = parse(
            &format!("{GOOD}\n[augmentation]\nmethod = \"cutmix\"\nprob = 0.5\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.augmentation().unwrap().mixer().name(), "cutmix");
        let c = parse(GOOD, &["augmentation.method=saliencymix"]).unwrap();
        assert_eq!(c.augmentation().unwrap().mixer().name(), "saliencymix");
        let msg = parse(
            GOOD,
            &["augmentation.method=cutmix", "augmentation.probb=1"],
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("probb"), "{msg}");
        let msg = parse(GOOD, &["augmentation.method=cutmix", "augmentation.prob=2"])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("prob") && msg.contains("exp.toml"), "{msg}");
        let msg = parse(
            GOOD,
            &[
                "augmentation.method=saliencymix",
                "augmentation.detector=given",
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("given"), "{msg}");
    }

    #[test]
    fn k_times_pictures_and_eval_tables_parse_and_bad_values_name_the_key() {
        let c = parse(GOOD, &[]).unwrap();
        assert_eq!(c.augmentation.k_times, 1);
        assert_eq!(c.pictures, PicturesConfig::default());
        assert!(c.pictures.mixed_batches);
        assert_eq!(c.eval, None);
        let c = parse(
            &format!(
                "{GOOD}\n[augmentation]\nmethod = \"cutmix\"\nk_times = 3\nprob = 1\n\
                 [pictures]\nrows = 4\n[eval]\nocclusion = [0.5]\n"
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.augmentation.k_times, 3);
        assert_eq!(c.augmentation().unwrap().mixer().name(), "cutmix");
        assert_eq!((c.pictures.rows, c.pictures.mixed_batches), (4, true));
        let eval = c.eval.clone().unwrap();
        assert_eq!(eval.occlusion, vec![0.5]);
        assert_eq!(eval.fgsm_eps, crate::eval::EvalConfig::default().fgsm_eps);
        // The resolved config keeps them.
        assert_eq!(parse(&c.to_toml(), &[]).unwrap(), c);
        assert!(c.to_toml().contains("k_times = 3"), "{}", c.to_toml());
        // A method's own keys still reject typos beside k_times.
        let cutmix = ["augmentation.method=cutmix", "augmentation.k_times=2"];
        let msg = parse(GOOD, &[cutmix[0], cutmix[1], "augmentation.probb=1"])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("probb"), "{msg}");
        for (o, key) in [
            (
                vec![cutmix[0], "augmentation.k_times=0"],
                "augmentation.k_times",
            ),
            (
                vec!["augmentation.method=none", "augmentation.k_times=2"],
                "augmentation.k_times",
            ),
            (vec!["pictures.rows=0"], "pictures.rows"),
            (vec!["eval.fgsm_eps=[0.1, 2.0]"], "eval.fgsm_eps"),
            (vec!["eval.occlusion=[-0.5]"], "eval.occlusion"),
        ] {
            let msg = parse(GOOD, &o).unwrap_err().to_string();
            assert!(
                msg.contains(key) && msg.contains("exp.toml"),
                "{o:?}: {msg}"
            );
        }
        let msg = parse(GOOD, &["eval.cam_image=3"]).unwrap_err().to_string();
        assert!(msg.contains("cam_image"), "{msg}");
        let msg = parse(GOOD, &["pictures.mixed=false"])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("mixed"), "{msg}");
    }

    #[test]
    fn precision_is_fp32_by_default_and_each_half_type_where_it_has_kernels() {
        let c = parse(GOOD, &[]).unwrap();
        assert_eq!(c.precision, sal_models::Precision::Fp32);
        assert!(
            c.to_toml().contains("precision = \"fp32\""),
            "{}",
            c.to_toml()
        );
        let bf16 = parse(GOOD, &["precision=bf16"]).unwrap();
        assert_eq!(bf16.precision, sal_models::Precision::Bf16);
        assert_eq!(parse(&bf16.to_toml(), &[]).unwrap(), bf16);
        let msg = parse(GOOD, &["precision=fp8"]).unwrap_err().to_string();
        assert!(msg.contains("fp8") && msg.contains("exp.toml"), "{msg}");
        for (precision, backend) in [("bf16", "wgpu"), ("f16", "cpu")] {
            let sets = [
                format!("precision={precision}"),
                format!("backend={backend}"),
            ];
            let msg = parse(GOOD, &[&sets[0], &sets[1]]).unwrap_err().to_string();
            assert!(
                msg.contains("precision") && msg.contains(backend) && msg.contains("exp.toml"),
                "{msg}"
            );
        }
        // bf16 on cuda, f16 on wgpu and cuda: the kernels exist (an adapter's f16 shaders
        // are checked when training starts).
        for (precision, backend) in [("bf16", "cuda"), ("f16", "wgpu"), ("f16", "cuda")] {
            let sets = [
                format!("precision={precision}"),
                format!("backend={backend}"),
            ];
            assert!(parse(GOOD, &[&sets[0], &sets[1]]).is_ok(), "{sets:?}");
        }
    }

    #[test]
    fn unknown_architecture_is_an_error() {
        let msg = parse(GOOD, &["model.architecture=resnet9000"])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("resnet9000"), "{msg}");
    }

    #[test]
    fn the_resolved_config_round_trips() {
        let c = parse(GOOD, &[]).unwrap();
        let again = parse(&c.to_toml(), &[]).unwrap();
        assert_eq!(c, again);
    }

    /// The paper-table folders under `experiments/` and their rows, as docs/reproducing.md
    /// lists them.
    const PAPER_TABLES: &[(&str, usize)] = &[
        ("paper/saliencymix/table1", 48),
        ("paper/saliencymix/table2", 13),
        ("paper/saliencymix/table4", 5),
        ("paper/saliencymix/table5", 5),
        ("paper/saliencymix/figure3", 4),
        ("paper/saliencymix/figure4", 5),
        ("paper/salfmix/table4", 30),
        ("paper/salfmix/table5", 34),
        ("paper/salfmix/table6", 6),
        ("paper/salfmix/table7", 34),
        ("paper/salfmix/table9", 12),
        ("paper/salfmix/table10", 6),
        ("paper/saliency-grafting/table1", 15),
        ("paper/saliency-grafting/table2", 8),
        ("paper/saliency-grafting/table3", 6),
        ("paper/saliency-grafting/table5", 15),
        ("paper/saliency-grafting/table6", 9),
        ("paper/saliency-grafting/table7", 6),
        ("paper/saliency-grafting/figure3", 12),
    ];

    /// No config under `experiments/` can rot: each parses (unknown keys and invalid values
    /// are errors), builds its augmentation and its model (lazily on flex, without data), a
    /// paper-table row's model has the reference implementation's parameter count, and every
    /// paper table has the rows docs/reproducing.md says.
    #[test]
    fn every_shipped_experiment_config_builds_and_paper_models_have_reference_counts() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        let (mut seen, mut tables) = (0, std::collections::BTreeMap::<String, usize>::new());
        for path in walk(&dir) {
            let config = ExperimentConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            let at = path.display();
            config
                .augmentation()
                .unwrap_or_else(|e| panic!("{at}: [augmentation]: {e}"));
            let classes = config.num_classes(0);
            assert!(
                classes > 0,
                "{at}: state [model] num_classes, so the config can be checked without its data"
            );
            let model = config.model_config(classes);
            let count = model
                .num_trainable_params()
                .unwrap_or_else(|e| panic!("{at}: [model]: {e}"));
            let architecture = model.architecture.to_string();
            let reference = sal_models::reference_count(&architecture, classes);
            if let Some(paper) = &config.paper {
                let folder = path.parent().unwrap().strip_prefix(&dir).unwrap();
                *tables.entry(folder.display().to_string()).or_default() += 1;
                assert!(!paper.table.is_empty() && !paper.row.is_empty(), "{at}");
                // A value the paper shows only in a figure is absent, and the note says so.
                match paper.value {
                    Some(v) => assert!(v.is_finite() && v >= 0.0, "{at}"),
                    None => assert!(!paper.note.is_empty(), "{at}"),
                }
                let reference = reference.unwrap_or_else(|| {
                    panic!("{at}: no reference count for {architecture} at {classes} classes")
                });
                assert_eq!(count, reference, "{at}: {architecture}, {classes} classes");
            }
            seen += 1;
        }
        assert!(seen > 0, "no configs under {}", dir.display());
        let expected: std::collections::BTreeMap<String, usize> = PAPER_TABLES
            .iter()
            .map(|&(folder, rows)| (folder.to_string(), rows))
            .collect();
        assert_eq!(tables, expected, "paper-table folders and their rows");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
        out
    }
}
