//! `train(config)`: from an experiment config to a trained model, metrics, checkpoints and
//! `results.json`, on burn-train's Learner.
//!
//! Run directory (`output_dir`, default `runs/<name>`):
//! - `config.toml`: the resolved config (defaults filled in);
//! - `metrics.csv`: one row per epoch (see `record.rs`), plot-ready;
//! - `results.json`: final and best test accuracy, throughput, parameter count;
//! - `checkpoint/{model,optim,scheduler}-<epoch>.bpk`: the last two epochs, written atomically;
//! - `experiment.log`, `train/`, `valid/`: burn-train's own logs.
//!
//! A killed run continues with `--resume` from its newest complete checkpoint; the data order,
//! augmentation and mixing of every later epoch are the same as in an uninterrupted run
//! (`sal_core::seed`), so only the interrupted epoch's work is redone.

use crate::backend::{self, BackendError};
use crate::checkpoint::{AtomicCheckpointer, latest_complete_epoch, write_atomically};
use crate::config::{BackendKind, ExperimentConfig};
use crate::data::{DataError, Split};
use crate::loader::{ImageLoader, LoaderMode};
use crate::record::{EpochRecord, RunLog, RunRecorder};
use crate::schedule::MultiStepLr;
use crate::step::Classifier;
use burn::optim::SgdConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
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
    pub final_epoch: Option<EpochRecord>,
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
    let run_dir = config.output_dir();
    let checkpoint_dir = run_dir.join("checkpoint");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    };
    std::fs::create_dir_all(&run_dir).map_err(io(&run_dir))?;

    let resume_epoch = latest_complete_epoch(&checkpoint_dir);
    let resume_epoch = match (resume_epoch, options.resume) {
        (Some(epoch), false) => {
            return Err(TrainError::RunExists {
                dir: run_dir,
                epoch,
            });
        }
        (Some(epoch), true) => {
            check_same_experiment(&run_dir, &config)?;
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
    let config_path = run_dir.join("config.toml");
    write_atomically(&config_path, config.to_toml().as_bytes()).map_err(io(&config_path))?;

    let device = backend::device(config.backend)?;
    device.seed(config.seed);

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
    let transform = config.sample_transform(&first, LoaderMode::Train);
    let eval_transform = config.sample_transform(&first, LoaderMode::Eval);

    let train_loader = ImageLoader::new(
        train_set.clone(),
        transform,
        config.batch_size,
        config.seed,
        LoaderMode::Train,
        device.clone(),
    );
    let test_loader = ImageLoader::new(
        test_set,
        eval_transform,
        config.batch_size,
        config.seed,
        LoaderMode::Eval,
        device.clone(),
    );
    let start_epoch = resume_epoch.map_or(1, |e| e + 1);
    train_loader.start_at_epoch(start_epoch);
    test_loader.start_at_epoch(start_epoch);

    let model_config = config.model_config(num_classes);
    // Parameters live on the autodiff device so the Learner's steps can differentiate them.
    let model = model_config
        .try_init(&device.clone().autodiff())
        .map_err(|e| TrainError::Invalid(format!("[model]: {e}")))?;
    let num_parameters = sal_models::num_trainable_params(&model);
    let augmentation = config
        .augmentation()
        .map_err(|e| TrainError::Invalid(format!("[augmentation]: {e}")))?;
    // Plain `none` (no label smoothing) skips the mixer: one-hot targets straight from labels.
    let plain = config.augmentation == sal_core::AugmentationConfig::default();
    let classifier = Classifier::new(model, (!plain).then_some(augmentation));

    let momentum = (config.optimizer.momentum > 0.0).then_some(MomentumConfig {
        momentum: config.optimizer.momentum,
        // burn defaults to 0.1; the papers' PyTorch SGD uses 0.
        dampening: 0.0,
        nesterov: config.optimizer.nesterov,
    });
    let weight_decay = (config.optimizer.weight_decay > 0.0)
        .then(|| WeightDecayConfig::new(config.optimizer.weight_decay as f32));
    let optimizer = SgdConfig::new()
        .with_momentum(momentum)
        .with_weight_decay(weight_decay)
        .init();
    let schedule = MultiStepLr::new(
        config.optimizer.lr,
        config.schedule.gamma,
        config.schedule.milestones.clone(),
        train_loader.batches_per_epoch(),
    );

    let log = RunLog::default();
    let metrics_csv = run_dir.join("metrics.csv");
    let recorder = RunRecorder::new(&metrics_csv, resume_epoch.unwrap_or(0), log.clone())
        .map_err(io(&metrics_csv))?;
    println!(
        "training {} ({} parameters) on {} ({} train / {} test images) for {} epochs on {:?}{}",
        config.model.architecture,
        num_parameters,
        config.dataset.name,
        train_len,
        test_len,
        config.epochs,
        config.backend,
        resume_epoch
            .map(|e| format!(", resuming after epoch {e}"))
            .unwrap_or_default()
    );

    let mut training =
        SupervisedTraining::new(&run_dir, Arc::new(train_loader), Arc::new(test_loader))
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
            .renderer(Box::new(recorder))
            .num_epochs(config.epochs);
    if let Some(epoch) = resume_epoch {
        training = training.checkpoint(epoch);
    }
    let result = training.launch(Learner::new(classifier, optimizer, schedule));
    if let Some(error) = result.error {
        return Err(TrainError::Training(error.to_string()));
    }

    let epochs = log.lock().expect("run log lock").clone();
    let best = epochs
        .iter()
        .max_by(|a, b| a.test_top1.total_cmp(&b.test_top1));
    let results = RunResults {
        name: config.name.clone(),
        model: model_config.architecture.to_string(),
        dataset: config.dataset.name.to_string(),
        backend: config.backend,
        num_parameters,
        epochs: config.epochs,
        epochs_trained_now: epochs.len(),
        resumed_from_epoch: resume_epoch,
        final_epoch: epochs.last().cloned(),
        final_test_top1_error: epochs.last().map(|e| 100.0 - e.test_top1),
        best_test_top1: best.map(|b| b.test_top1),
        best_epoch: best.map(|b| b.epoch),
        wall_seconds: started.elapsed().as_secs_f64(),
        train_images_per_second: (!epochs.is_empty()).then(|| {
            let images: f64 = epochs
                .iter()
                .map(|e| e.train_images_per_second * e.train_seconds)
                .sum();
            images / epochs.iter().map(|e| e.train_seconds).sum::<f64>()
        }),
    };
    let results_json = run_dir.join("results.json");
    let text = serde_json::to_string_pretty(&results).expect("results serialise");
    write_atomically(&results_json, text.as_bytes()).map_err(io(&results_json))?;
    let last_checkpoint = latest_complete_epoch(&checkpoint_dir)
        .map(|e| crate::checkpoint::checkpoint_path(&checkpoint_dir, "model", e));
    Ok(TrainReport {
        run_dir,
        metrics_csv,
        results_json,
        last_checkpoint,
        results,
    })
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
