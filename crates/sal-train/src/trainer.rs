//! `train(config)`: from an experiment config to a trained model, metrics, checkpoints and
//! `results.json`, on burn-train's Learner.
//!
//! Run directory (`output_dir`, default `runs/<name>`):
//! - `config.toml`: the resolved config (defaults filled in);
//! - `metrics.csv`: one row per epoch (see `metrics.rs`), plot-ready;
//! - `curves.png`: train and test loss and top-1 per epoch, redrawn after every epoch;
//! - `results.json`: final and best test accuracy, throughput, parameter count;
//! - `checkpoint/{model,optim,scheduler}-<epoch>.bpk`: the last two epochs, written atomically;
//! - `experiment.log`, `train/`, `valid/`: burn-train's own logs.
//!
//! A killed run continues with `--resume` from its newest complete checkpoint; the data order,
//! augmentation and mixing of every later epoch are the same as in an uninterrupted run
//! (`sal_core::seed`), so only the interrupted epoch's work is redone.

use crate::backend::{self, BackendError};
use crate::checkpoint::{AtomicCheckpointer, latest_complete_epoch, write_atomically};
use crate::config::{BackendKind, ExperimentConfig, OptimizerConfig};
use crate::data::{DataError, Split};
use crate::loader::{ImageLoader, LoaderMode};
use crate::metrics::{EpochLog, EpochMetrics, RunReporter};
use crate::schedule::MultiStepLr;
use crate::step::Classifier;
use burn::optim::SgdConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::tensor::Device;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, TopKAccuracyMetric};
use burn::train::{Learner, SupervisedTraining};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Open(#[from] crate::data::OpenError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{dir} already holds a run (checkpoints up to epoch {epoch}): pass --resume to continue it, \
         or set another output_dir"
    )]
    RunExists { dir: PathBuf, epoch: usize },
    #[error(
        "{dir}/config.toml differs from this config in more than `epochs`/`backend`; \
         resuming would mix two experiments. Differences start at: {first_difference}"
    )]
    ConfigChanged {
        dir: PathBuf,
        first_difference: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("training failed: {0}")]
    Training(String),
}

/// How to run a config.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest complete checkpoint in the run directory.
    pub resume: bool,
    /// Overrides the config's `backend`.
    pub backend: Option<BackendKind>,
}

/// `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunResults {
    pub name: String,
    pub model: String,
    pub dataset: String,
    pub backend: BackendKind,
    pub num_parameters: usize,
    pub epochs: usize,
    /// Epochs this invocation trained (fewer than `epochs` after a resume).
    pub epochs_trained_now: usize,
    pub resumed_from_epoch: Option<usize>,
    pub final_epoch: Option<EpochMetrics>,
    /// `100 - test top-1` of the final epoch: the papers report top-1 error.
    pub final_test_top1_error: Option<f64>,
    pub best_test_top1: Option<f64>,
    pub best_epoch: Option<usize>,
    /// Wall time of this invocation, data loading included.
    pub wall_seconds: f64,
    /// Mean training throughput over the epochs this invocation trained.
    pub train_images_per_second: Option<f64>,
}

/// Where a finished run put its outputs.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub run_dir: PathBuf,
    pub metrics_csv: PathBuf,
    pub results_json: PathBuf,
    pub last_checkpoint: Option<PathBuf>,
    pub results: RunResults,
}

/// Trains `config`. Prints per-epoch summaries to stdout and progress bars to stderr.
pub fn train(config: &ExperimentConfig, options: &TrainOptions) -> Result<TrainReport, TrainError> {
    let started = Instant::now();
    let mut config = config.clone();
    if let Some(backend) = options.backend {
        config.backend = backend;
    }
    let run = RunDir::prepare(&config, options.resume)?;
    let device = backend::device(config.backend)?;
    device.seed(config.seed);
    let data = Data::open(&config, &device, run.resume_epoch.map_or(1, |e| e + 1))?;

    let model_config = config.model_config(data.num_classes);
    let (classifier, num_parameters) = classifier(&config, &model_config, &device)?;

    let log = EpochLog::default();
    let metrics_csv = run.dir.join("metrics.csv");
    let curves_png = run.dir.join("curves.png");
    let reporter = RunReporter::new(
        &metrics_csv,
        &curves_png,
        run.resume_epoch.unwrap_or(0),
        log.clone(),
    )
    .map_err(io_error(&metrics_csv))?;
    println!(
        "training {} ({} parameters) on {} ({} train / {} test images) for {} epochs on {:?}{}",
        config.model.architecture,
        num_parameters,
        config.dataset.name,
        data.train_len,
        data.test_len,
        config.epochs,
        config.backend,
        run.resume_epoch
            .map(|e| format!(", resuming after epoch {e}"))
            .unwrap_or_default()
    );

    fit(&config, &run, data, classifier, reporter)?;

    let epochs = log.lock().expect("epoch log lock").clone();
    let results = RunResults::new(
        &config,
        &model_config,
        num_parameters,
        run.resume_epoch,
        &epochs,
        started.elapsed().as_secs_f64(),
    );
    let results_json = run.dir.join("results.json");
    let text = serde_json::to_string_pretty(&results).expect("results serialise");
    write_atomically(&results_json, text.as_bytes()).map_err(io_error(&results_json))?;
    let checkpoint_dir = run.checkpoint_dir();
    let last_checkpoint = latest_complete_epoch(&checkpoint_dir)
        .map(|e| crate::checkpoint::checkpoint_path(&checkpoint_dir, "model", e));
    Ok(TrainReport {
        run_dir: run.dir,
        metrics_csv,
        results_json,
        last_checkpoint,
        results,
    })
}

/// The network (its parameters on the autodiff device, so the Learner's steps can
/// differentiate them) with the configured mixing around it, and its parameter count.
fn classifier(
    config: &ExperimentConfig,
    model_config: &sal_models::ModelConfig,
    device: &Device,
) -> Result<(Classifier, usize), TrainError> {
    let model = model_config
        .try_init(&device.clone().autodiff())
        .map_err(|e| TrainError::Invalid(format!("[model]: {e}")))?;
    let num_parameters = sal_models::num_trainable_params(&model);
    let augmentation = config
        .augmentation()
        .map_err(|e| TrainError::Invalid(format!("[augmentation]: {e}")))?;
    // Plain `none` (no label smoothing) skips the mixer: one-hot targets straight from labels.
    let plain = config.augmentation == sal_core::AugmentationConfig::default();
    Ok((
        Classifier::new(model, (!plain).then_some(augmentation)),
        num_parameters,
    ))
}

/// Runs burn-train's Learner over the remaining epochs: SGD, the MultiStep schedule, the
/// metrics the reporter shows, atomic checkpoints of the last two epochs.
fn fit(
    config: &ExperimentConfig,
    run: &RunDir,
    data: Data,
    classifier: Classifier,
    reporter: RunReporter,
) -> Result<(), TrainError> {
    let schedule = MultiStepLr::new(
        config.optimizer.lr,
        config.schedule.gamma,
        config.schedule.milestones.clone(),
        data.train.batches_per_epoch(),
    );
    let checkpoint_dir = run.checkpoint_dir();
    let mut training = SupervisedTraining::new(&run.dir, Arc::new(data.train), Arc::new(data.test))
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(AccuracyMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_valid_numeric(TopKAccuracyMetric::new(5))
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(2))
        .with_custom_checkpointers(
            AtomicCheckpointer::new(&checkpoint_dir, "model"),
            AtomicCheckpointer::new(&checkpoint_dir, "optim"),
            AtomicCheckpointer::new(&checkpoint_dir, "scheduler"),
        )
        .renderer(Box::new(reporter))
        .num_epochs(config.epochs);
    if let Some(epoch) = run.resume_epoch {
        training = training.checkpoint(epoch);
    }
    let result = training.launch(Learner::new(
        classifier,
        sgd(&config.optimizer).init(),
        schedule,
    ));
    match result.error {
        Some(error) => Err(TrainError::Training(error.to_string())),
        None => Ok(()),
    }
}

/// `TrainError::Io` for `path`.
fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_path_buf();
    move |source| TrainError::Io { path, source }
}

/// The run directory, and where in it training starts.
struct RunDir {
    dir: PathBuf,
    /// The newest complete checkpoint's epoch when resuming.
    resume_epoch: Option<usize>,
}

impl RunDir {
    /// Creates the run directory, decides whether (and from where) to resume, and writes the
    /// resolved config into it. A directory that already holds checkpoints is only resumed when
    /// asked to, and only for the same experiment.
    fn prepare(config: &ExperimentConfig, resume: bool) -> Result<Self, TrainError> {
        let dir = config.output_dir();
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let checkpoint_dir = dir.join("checkpoint");
        let resume_epoch = match (latest_complete_epoch(&checkpoint_dir), resume) {
            (Some(epoch), false) => return Err(TrainError::RunExists { dir, epoch }),
            (Some(epoch), true) => {
                check_same_experiment(&dir, config)?;
                Some(epoch)
            }
            (None, true) => {
                println!(
                    "no complete checkpoint in {}: starting from epoch 1",
                    checkpoint_dir.display()
                );
                None
            }
            (None, false) => None,
        };
        let config_path = dir.join("config.toml");
        write_atomically(&config_path, config.to_toml().as_bytes())
            .map_err(io_error(&config_path))?;
        Ok(Self { dir, resume_epoch })
    }

    fn checkpoint_dir(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }
}

/// The two splits, as loaders positioned at the first epoch to train.
struct Data {
    train: ImageLoader,
    test: ImageLoader,
    train_len: usize,
    test_len: usize,
    num_classes: usize,
}

impl Data {
    fn open(
        config: &ExperimentConfig,
        device: &Device,
        start_epoch: usize,
    ) -> Result<Self, TrainError> {
        let train_set = config.dataset.open(Split::Train)?;
        let test_set = config.dataset.open(Split::Test)?;
        let (train_len, test_len) = (train_set.len(), test_set.len());
        let num_classes = config.num_classes(train_set.num_classes());
        if train_set.num_classes() > num_classes {
            return Err(TrainError::Invalid(format!(
                "model.num_classes = {num_classes} but the training set has {} classes",
                train_set.num_classes()
            )));
        }
        let first = train_set.load(0)?;
        let loader = |set, mode| {
            let transform = config.sample_transform(&first, mode);
            let loader = ImageLoader::new(
                set,
                transform,
                config.batch_size,
                config.seed,
                mode,
                device.clone(),
            );
            loader.start_at_epoch(start_epoch);
            loader
        };
        Ok(Self {
            train: loader(train_set, LoaderMode::Train),
            test: loader(test_set, LoaderMode::Eval),
            train_len,
            test_len,
            num_classes,
        })
    }
}

/// SGD as the papers' PyTorch code configures it.
fn sgd(config: &OptimizerConfig) -> SgdConfig {
    let momentum = (config.momentum > 0.0).then_some(MomentumConfig {
        momentum: config.momentum,
        // burn defaults to 0.1; the papers' PyTorch SGD uses 0.
        dampening: 0.0,
        nesterov: config.nesterov,
    });
    let weight_decay =
        (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32));
    SgdConfig::new()
        .with_momentum(momentum)
        .with_weight_decay(weight_decay)
}

impl RunResults {
    /// The summary of a run from the epochs this invocation trained.
    fn new(
        config: &ExperimentConfig,
        model: &sal_models::ModelConfig,
        num_parameters: usize,
        resumed_from_epoch: Option<usize>,
        epochs: &[EpochMetrics],
        wall_seconds: f64,
    ) -> Self {
        let best = epochs
            .iter()
            .max_by(|a, b| a.test_top1.total_cmp(&b.test_top1));
        Self {
            name: config.name.clone(),
            model: model.architecture.to_string(),
            dataset: config.dataset.name.to_string(),
            backend: config.backend,
            num_parameters,
            epochs: config.epochs,
            epochs_trained_now: epochs.len(),
            resumed_from_epoch,
            final_epoch: epochs.last().cloned(),
            final_test_top1_error: epochs.last().map(|e| 100.0 - e.test_top1),
            best_test_top1: best.map(|b| b.test_top1),
            best_epoch: best.map(|b| b.epoch),
            wall_seconds,
            train_images_per_second: (!epochs.is_empty()).then(|| {
                let images: f64 = epochs
                    .iter()
                    .map(|e| e.train_images_per_second * e.train_seconds)
                    .sum();
                images / epochs.iter().map(|e| e.train_seconds).sum::<f64>()
            }),
        }
    }
}

/// Refuses to resume a run whose saved config differs from `config` in anything but the
/// number of epochs (extending a run is fine) and the backend (moving to a GPU is fine).
fn check_same_experiment(run_dir: &Path, config: &ExperimentConfig) -> Result<(), TrainError> {
    let path = run_dir.join("config.toml");
    let Ok(saved) = ExperimentConfig::load(&path, &[]) else {
        return Ok(()); // No (readable) saved config: nothing to compare with.
    };
    let normalise = |c: &ExperimentConfig| {
        let mut c = c.clone();
        c.epochs = 0;
        c.backend = BackendKind::Cpu;
        c.to_toml()
    };
    let (a, b) = (normalise(&saved), normalise(config));
    if a == b {
        return Ok(());
    }
    let first_difference = a
        .lines()
        .zip(b.lines())
        .find(|(x, y)| x != y)
        .map(|(x, y)| format!("saved `{x}`, now `{y}`"))
        .unwrap_or_else(|| "(one config has more lines)".into());
    Err(TrainError::ConfigChanged {
        dir: run_dir.to_path_buf(),
        first_difference,
    })
}
