//! `train(config)`: from an experiment config to a trained model, metrics, checkpoints and
//! `results.json`, on burn-train's Learner.
//!
//! Run directory (`output_dir`, default `runs/<name>`):
//! - `config.toml`: the resolved config (defaults filled in);
//! - `metrics.csv`: one row per epoch (see `metrics.rs`), plot-ready;
//! - `curves.png`: train and test loss and top-1 and the learning rate per epoch, redrawn after
//!   every epoch;
//! - `mixed/epoch-<e>.png`: the first mixed batch of every epoch (`[pictures]`, on by default;
//!   `crate::pictures`);
//! - `results.json`: final, best and last-10-mean test error, throughput, parameter count;
//! - `eval.json`, `eval.png`, `cam.png`: the `[eval]` suite on the final checkpoint, when the
//!   config has an `[eval]` table (`crate::eval`);
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
use crate::eval::{EvalError, EvalOptions, EvalReport, evaluate_run};
use crate::loader::ImageBatch;
use crate::loader::{ImageLoader, LoaderMode};
use crate::metrics::{
    DivergenceGuard, EpochLog, EpochMetrics, RunReporter, best_epoch, last_epochs_mean_error,
    read_metrics, top5_k,
};
use crate::pictures::MixedPictures;
use crate::schedule::{MultiStepLr, ScheduleKind};
use crate::step::Classifier;
use burn::module::Module;
use burn::optim::SgdConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::tensor::{Device, Tensor, TensorData};
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, TopKAccuracyMetric};
use burn::train::{Learner, SupervisedTraining};
use serde::{Deserialize, Serialize};
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
        "{dir}/config.toml differs from this config in more than `epochs`, `backend`, \
         `[distributed]`, `[pictures]`, `[eval]` or `[paper]`; resuming would mix two \
         experiments. Differences start at: {first_difference}"
    )]
    ConfigChanged {
        dir: PathBuf,
        first_difference: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the training loss became {loss} at epoch {epoch}, step {iteration} of {steps_per_epoch}: \
         the run diverged and stopped. {kept}"
    )]
    Diverged {
        epoch: usize,
        iteration: usize,
        steps_per_epoch: usize,
        loss: f64,
        /// What the run directory holds to go on from.
        kept: String,
    },
    #[error("training failed: {0}")]
    Training(String),
    #[error("the [eval] suite after training: {0}")]
    Eval(#[source] Box<EvalError>),
}

/// How to run a config.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest complete checkpoint in the run directory.
    pub resume: bool,
    /// Overrides the config's `backend`.
    pub backend: Option<BackendKind>,
    /// The commit the calling binary was built from (`-dirty` when its code differed from
    /// it), recorded in `results.json`; `None`: not known. Binaries stamp it at build time
    /// (`xtask/build.rs`): read when a run ends, git would name the checkout as it is then,
    /// which is not the code that trained once the checkout has moved on.
    pub code_commit: Option<String>,
}

/// Epochs averaged for `RunResults::last10_mean_test_top1_error`.
pub const LAST_EPOCHS_MEAN: usize = 10;

/// `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    pub name: String,
    pub model: String,
    /// The `[augmentation]` method.
    pub method: String,
    pub seed: u64,
    /// The commit of the code that trained (`TrainOptions::code_commit`), `-dirty` when the
    /// code had uncommitted changes; `None` where it is not known (a caller that gave none, a
    /// build outside a git checkout, or results rebuilt from `metrics.csv` later).
    pub git_commit: Option<String>,
    pub dataset: String,
    /// Images of the training split the run trains on (after `train_limit` and a
    /// `per_class` / `per_class_fraction` subset), and of the test split.
    #[serde(default)]
    pub train_images: usize,
    #[serde(default)]
    pub test_images: usize,
    pub backend: BackendKind,
    pub num_parameters: usize,
    pub epochs: usize,
    /// Epochs this invocation trained (fewer than `epochs` after a resume).
    pub epochs_trained_now: usize,
    pub resumed_from_epoch: Option<usize>,
    /// The last epoch in `metrics.csv` (a resumed run's earlier epochs included).
    pub final_epoch: Option<EpochMetrics>,
    /// `100 - test top-1` of the final epoch: the papers report top-1 error.
    pub final_test_top1_error: Option<f64>,
    /// Over every epoch of the run, not only this invocation's.
    pub best_test_top1: Option<f64>,
    pub best_epoch: Option<usize>,
    /// `100 - best_test_top1`; its mean over seeds is the "averaged best" error of Saliency
    /// Grafting's Tables 1-3.
    #[serde(default)]
    pub best_test_top1_error: Option<f64>,
    /// Mean test top-1 error of the last [`LAST_EPOCHS_MEAN`] epochs (all of them in a shorter
    /// run): the "last-10 mean" of the same tables.
    #[serde(default)]
    pub last10_mean_test_top1_error: Option<f64>,
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
    /// The `[eval]` suite's report, when the config has one and it ran.
    pub eval: Option<EvalReport>,
}

/// Trains `config`. Prints per-epoch summaries to stdout and progress bars to stderr.
pub fn train(config: &ExperimentConfig, options: &TrainOptions) -> Result<TrainReport, TrainError> {
    let started = Instant::now();
    let mut config = config.clone();
    if let Some(backend) = options.backend {
        config.backend = backend;
    }
    config
        .check_precision()
        .map_err(|message| TrainError::Invalid(format!("precision: {message}")))?;
    config
        .distributed
        .validate(config.batch_size, config.backend)
        .map_err(|(key, message)| TrainError::Invalid(format!("{key}: {message}")))?;
    if config.precision == sal_models::Precision::Bf16 && config.backend == BackendKind::Cpu {
        match sal_models::bf16_instructions() {
            Some(isa) => {
                println!("precision bf16: convolutions multiply bf16 on {isa}, sum in f32")
            }
            None => println!(
                "precision bf16: this CPU has neither AMX nor AVX512-BF16, so the convolutions \
                 multiply in f32 (the run trains as fp32 would)"
            ),
        }
    }
    let run = RunDir::prepare(&config, options.resume)?;
    if let Some(report) = run.finished(&config)? {
        return evaluate(&config, report, true);
    }
    let devices = backend::devices(config.backend, config.distributed.devices)?;
    let device = devices[0].clone();
    if let Some(half) = config.precision.gpu_dtype()
        && config.backend != BackendKind::Cpu
        && !device.supports_dtype(half)
    {
        return Err(TrainError::Invalid(format!(
            "precision = \"{}\": this {} device has no {half:?} kernels (on wgpu: the adapter \
             lacks f16 shaders, wgpu's SHADER_F16); use precision = \"fp32\"",
            config.precision.name(),
            config.backend.name(),
        )));
    }
    let data = Data::open(&config, &device, run.resume_epoch.map_or(1, |e| e + 1))?;
    if data.train_len < config.distributed.devices {
        return Err(TrainError::Invalid(format!(
            "distributed.devices = {} but the training set has only {} images",
            config.distributed.devices, data.train_len
        )));
    }

    let model_config = config.model_config(data.num_classes);
    let (mut classifier, num_parameters) = classifier(&config, &model_config, &device)?;
    check_mixing(&classifier, &data, &device)?;
    if config.pictures.mixed_batches {
        let pictures = MixedPictures::new(&config, &run.dir, data.class_names.clone());
        classifier = classifier.with_pictures(pictures);
    }

    let log = EpochLog::default();
    let reporter = RunReporter::new(
        &run.metrics_csv(),
        &run.dir.join("curves.png"),
        run.resume_epoch.unwrap_or(0),
        log.clone(),
    )
    .map_err(io_error(&run.metrics_csv()))?;
    println!(
        "training {} ({} parameters) on {} ({} train / {} test images) for {} epochs on {:?}{}{}",
        config.model.architecture,
        num_parameters,
        config.dataset.name,
        data.train_len,
        data.test_len,
        config.epochs,
        config.backend,
        config
            .distributed
            .describe()
            .map(|d| format!(", {d}, global batch {}", config.batch_size))
            .unwrap_or_default(),
        run.resume_epoch
            .map(|e| format!(", resuming after epoch {e}"))
            .unwrap_or_default()
    );

    let images = (data.train_len, data.test_len);
    fit(&config, &run, data, classifier, devices, reporter)?;

    let trained_now = log.lock().expect("epoch log lock").clone();
    let all_epochs = read_metrics(&run.metrics_csv()).map_err(io_error(&run.metrics_csv()))?;
    let mut results = RunResults::new(
        &config,
        &model_config,
        num_parameters,
        run.resume_epoch,
        &all_epochs,
        &trained_now,
        started.elapsed().as_secs_f64(),
    );
    (results.train_images, results.test_images) = images;
    results.git_commit = options.code_commit.clone();
    let report = run.report(results)?;
    evaluate(&config, report, false)
}

/// Runs the config's `[eval]` suite on the run's final checkpoint (on the training backend),
/// prints its table and adds it to the report; without an `[eval]` table the report is
/// returned as it is. `if_missing`: only when the run has no `eval.json` yet.
fn evaluate(
    config: &ExperimentConfig,
    mut report: TrainReport,
    if_missing: bool,
) -> Result<TrainReport, TrainError> {
    let Some(suite) = &config.eval else {
        return Ok(report);
    };
    if if_missing && report.run_dir.join("eval.json").is_file() {
        return Ok(report);
    }
    println!("evaluating the final checkpoint ([eval])");
    let options = EvalOptions {
        checkpoint: None,
        backend: Some(config.backend),
        suite: Some(suite.clone()),
        overrides: Vec::new(),
    };
    let eval =
        evaluate_run(&report.run_dir, &options).map_err(|e| TrainError::Eval(Box::new(e)))?;
    println!("{}", eval.table());
    report.eval = Some(eval);
    Ok(report)
}

/// The network (its parameters on the autodiff device, so the Learner's steps can
/// differentiate them) with the configured mixing around it, and its parameter count.
///
/// The initial weights are drawn on the host (flex) from the run's seed and then moved to the
/// training device, so one config starts from the same weights on every backend.
fn classifier(
    config: &ExperimentConfig,
    model_config: &sal_models::ModelConfig,
    device: &Device,
) -> Result<(Classifier, usize), TrainError> {
    let model = initial_model(model_config, config.seed, &device.clone().autodiff())
        .map_err(|e| TrainError::Invalid(format!("[model]: {e}")))?;
    let num_parameters = sal_models::num_trainable_params(&model);
    let classifier = Classifier::for_experiment(config, model)
        .map_err(|e| TrainError::Invalid(format!("[augmentation]: {e}")))?;
    Ok((classifier, num_parameters))
}

/// The initial weights of `model_config` for `seed`, on `device`: drawn on the host (flex) and
/// moved, so one seed gives the same weights on every backend. The host's random stream is one
/// per process: the seeding and the draws hold a lock, so that runs started at once on several
/// threads (tests, a sweep in one process) each get their own seed's weights.
pub fn initial_model(
    model_config: &sal_models::ModelConfig,
    seed: u64,
    device: &Device,
) -> Result<sal_models::Model, sal_models::ModelError> {
    static HOST_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let host = Device::flex();
    let model = {
        let _draws = HOST_RNG
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        host.seed(seed);
        model_config.try_init(&host.autodiff())?
    };
    Ok(model.fork(device))
}

/// Mixes a small batch of the data's shape through the configured method before training, so
/// that a value the method can only check against the images (a SalfMix grid larger than the
/// image, say) stops the run now, with the config key, rather than at its first step.
fn check_mixing(classifier: &Classifier, data: &Data, device: &Device) -> Result<(), TrainError> {
    let Some(augmentation) = &classifier.augmentation else {
        return Ok(());
    };
    let [c, h, w] = data.sample_shape;
    let n = 4;
    let device = &device.clone().autodiff();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % data.num_classes as i64).collect();
    // Fixed values, not `Tensor::random`: the device's random stream is shared by the whole
    // process, and a draw here must not reach into another run's weights (`initial_model`).
    let pixels: Vec<f32> = (0..n * c * h * w)
        .map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0)
        .collect();
    // A method with warm-up epochs or a probability below 1 may leave a batch alone; past
    // every warm-up, a few steps' draws find one it mixes.
    for step in 0..8 {
        let batch = ImageBatch::new(
            Tensor::from_data(TensorData::new(pixels.clone(), [n, c, h, w]), device),
            Tensor::from_data(TensorData::new(labels.clone(), [n]), device),
            usize::MAX / 2,
            step,
        );
        let out = classifier.mix(augmentation, batch).map_err(|e| {
            TrainError::Invalid(format!(
                "[augmentation] method = \"{}\" cannot mix {c}x{h}x{w} images: {e}",
                augmentation.mixer().name()
            ))
        })?;
        if out.trace.applied {
            break;
        }
    }
    Ok(())
}

/// Runs burn-train's Learner over the remaining epochs on `devices` with the `[distributed]`
/// strategy: SGD, the schedule (counting optimizer steps, one per global batch), the metrics
/// the reporter shows, atomic checkpoints of the last two epochs.
fn fit(
    config: &ExperimentConfig,
    run: &RunDir,
    data: Data,
    classifier: Classifier,
    devices: Vec<Device>,
    reporter: RunReporter,
) -> Result<(), TrainError> {
    let steps_per_epoch = data.train.steps_per_epoch();
    let schedule = match config.schedule.kind {
        ScheduleKind::MultiStep => MultiStepLr::new(
            config.optimizer.lr,
            config.schedule.gamma,
            config.schedule.milestones.clone(),
            steps_per_epoch,
        ),
        ScheduleKind::Cosine => {
            MultiStepLr::cosine(config.optimizer.lr, config.epochs, steps_per_epoch)
        }
    };
    let checkpoint_dir = run.checkpoint_dir();
    // burn-train counts a divergence's iteration in batches, one per part of a step.
    let batches_per_epoch = data.train.batches_per_epoch();
    let mut training = SupervisedTraining::new(&run.dir, Arc::new(data.train), Arc::new(data.test))
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(AccuracyMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_valid_numeric(TopKAccuracyMetric::new(top5_k(data.num_classes)))
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(2))
        .with_custom_checkpointers(
            AtomicCheckpointer::new(&checkpoint_dir, "model"),
            AtomicCheckpointer::new(&checkpoint_dir, "optim"),
            AtomicCheckpointer::new(&checkpoint_dir, "scheduler"),
        )
        .num_epochs(config.epochs)
        .with_training_strategy(config.distributed.execution_strategy(devices).into());
    if config.distributed.accumulation > 1 {
        training = training.grads_accumulation(config.distributed.accumulation);
    }
    let guard = DivergenceGuard::new(training.interrupter());
    training = training.renderer(Box::new(reporter.with_guard(guard.clone())));
    if let Some(epoch) = run.resume_epoch {
        training = training.checkpoint(epoch);
    }
    let result = training.launch(Learner::new(
        classifier,
        sgd(&config.optimizer).init(),
        schedule,
    ));
    if let Some(d) = guard.divergence() {
        let kept = match latest_complete_epoch(&checkpoint_dir) {
            Some(epoch) => format!(
                "The last good checkpoint (epoch {epoch}) is kept in {}; lower optimizer.lr (or \
                 check the data) and resume with --resume",
                checkpoint_dir.display()
            ),
            None => "No epoch finished, so no checkpoint was written.".to_string(),
        };
        return Err(TrainError::Diverged {
            epoch: d.epoch,
            iteration: d.iteration,
            steps_per_epoch: batches_per_epoch,
            loss: d.loss,
            kept,
        });
    }
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

/// Whether a run whose newest complete checkpoint is `resume_epoch` has trained all of
/// `config`'s epochs.
fn trained_all(resume_epoch: Option<usize>, config: &ExperimentConfig) -> bool {
    resume_epoch.is_some_and(|epoch| epoch >= config.epochs)
}

impl RunDir {
    /// Creates the run directory, decides whether (and from where) to resume, and writes the
    /// resolved config into it (unless the run has finished). A directory that already holds
    /// checkpoints is only resumed when asked to, and only for the same experiment.
    /// Both directories are created and written to here, before any data is read, so an
    /// unwritable location fails at once with its path.
    fn prepare(config: &ExperimentConfig, resume: bool) -> Result<Self, TrainError> {
        let dir = config.output_dir();
        let checkpoint_dir = dir.join("checkpoint");
        for d in [&dir, &checkpoint_dir] {
            check_writable(d)?;
        }
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
        // A finished run keeps the config it was trained with as it is: a later build would
        // write it anew (keys added since, with their defaults), changing the run's record.
        if !trained_all(resume_epoch, config) {
            let config_path = dir.join("config.toml");
            write_atomically(&config_path, config.to_toml().as_bytes())
                .map_err(io_error(&config_path))?;
        }
        Ok(Self { dir, resume_epoch })
    }

    fn checkpoint_dir(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    fn metrics_csv(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }

    fn results_json(&self) -> PathBuf {
        self.dir.join("results.json")
    }

    /// When resuming a run that already trained every epoch: its report, left as it is (or
    /// rebuilt from `metrics.csv` if the run was killed before writing `results.json`).
    fn finished(&self, config: &ExperimentConfig) -> Result<Option<TrainReport>, TrainError> {
        if !trained_all(self.resume_epoch, config) {
            return Ok(None);
        }
        println!(
            "{} already finished its {} epochs: nothing to train",
            self.dir.display(),
            config.epochs
        );
        let path = self.results_json();
        let saved = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<RunResults>(&text).ok());
        let results = match saved {
            Some(results) => results,
            None => {
                let epochs =
                    read_metrics(&self.metrics_csv()).map_err(io_error(&self.metrics_csv()))?;
                let model = config.model_config(config.model.num_classes.unwrap_or(0));
                let parameters = model.num_trainable_params().unwrap_or(0);
                let results = RunResults::new(
                    config,
                    &model,
                    parameters,
                    self.resume_epoch,
                    &epochs,
                    &[],
                    0.0,
                );
                return self.report(results).map(Some);
            }
        };
        Ok(Some(self.report_as_is(results)))
    }

    /// Writes `results.json` and returns the run's report.
    fn report(&self, results: RunResults) -> Result<TrainReport, TrainError> {
        let path = self.results_json();
        let text = serde_json::to_string_pretty(&results).expect("results serialise");
        write_atomically(&path, text.as_bytes()).map_err(io_error(&path))?;
        Ok(self.report_as_is(results))
    }

    fn report_as_is(&self, results: RunResults) -> TrainReport {
        let checkpoint_dir = self.checkpoint_dir();
        TrainReport {
            run_dir: self.dir.clone(),
            metrics_csv: self.metrics_csv(),
            results_json: self.results_json(),
            last_checkpoint: latest_complete_epoch(&checkpoint_dir)
                .map(|e| crate::checkpoint::checkpoint_path(&checkpoint_dir, "model", e)),
            results,
            eval: None,
        }
    }
}

/// Creates `dir` and writes (then removes) a file in it.
fn check_writable(dir: &Path) -> Result<(), TrainError> {
    let unwritable = |source: std::io::Error| TrainError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::new(
            source.kind(),
            format!("the run cannot write here ({source})"),
        ),
    };
    std::fs::create_dir_all(dir).map_err(unwritable)?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(unwritable)?;
    std::fs::remove_file(&probe).map_err(unwritable)
}

/// The two splits, as loaders positioned at the first epoch to train.
struct Data {
    train: ImageLoader,
    test: ImageLoader,
    train_len: usize,
    test_len: usize,
    num_classes: usize,
    class_names: Vec<String>,
    /// `[C, H, W]` of a training sample after the transform.
    sample_shape: [usize; 3],
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
        // Labels are indices into each split's own class list (an image folder's sorted
        // sub-folders): a class missing from one split would shift every label after it.
        if test_set.class_names() != train_set.class_names() {
            let (train, test) = (train_set.class_names(), test_set.class_names());
            let differ = match train.iter().zip(test).position(|(a, b)| a != b) {
                Some(i) => format!(
                    "class {i} is {:?} in one and {:?} in the other",
                    train[i], test[i]
                ),
                None => format!(
                    "{} classes for training, {} for testing",
                    train.len(),
                    test.len()
                ),
            };
            return Err(TrainError::Invalid(format!(
                "{}: the training and test splits have different classes ({differ}); each split \
                 needs the same class folders",
                config.dataset.path().display()
            )));
        }
        let first = train_set.load(0)?;
        let class_names = train_set.class_names().to_vec();
        let shape = config.sample_transform(&first, LoaderMode::Train);
        let sample_shape = [shape.channels, shape.height, shape.width];
        let loader = |set, mode| {
            let loader = config.loader(set, &first, mode, device);
            loader.start_at_epoch(start_epoch);
            loader
        };
        Ok(Self {
            train: loader(train_set, LoaderMode::Train),
            test: loader(test_set, LoaderMode::Eval),
            train_len,
            test_len,
            num_classes,
            class_names,
            sample_shape,
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
    /// The summary of a run: `epochs` are all of its epochs so far (`metrics.csv`),
    /// `trained_now` the ones this invocation trained (its throughput).
    fn new(
        config: &ExperimentConfig,
        model: &sal_models::ModelConfig,
        num_parameters: usize,
        resumed_from_epoch: Option<usize>,
        epochs: &[EpochMetrics],
        trained_now: &[EpochMetrics],
        wall_seconds: f64,
    ) -> Self {
        let best = best_epoch(epochs);
        Self {
            name: config.name.clone(),
            model: model.architecture.to_string(),
            method: config.augmentation.method.method_name().to_string(),
            seed: config.seed,
            git_commit: None,
            dataset: config.dataset.name.to_string(),
            // Known once the data is open (`train`); 0 until then.
            train_images: 0,
            test_images: 0,
            backend: config.backend,
            num_parameters,
            epochs: config.epochs,
            epochs_trained_now: trained_now.len(),
            resumed_from_epoch,
            final_epoch: epochs.last().cloned(),
            final_test_top1_error: epochs.last().map(|e| 100.0 - e.test_top1),
            best_test_top1: best.map(|b| b.test_top1),
            best_epoch: best.map(|b| b.epoch),
            best_test_top1_error: best.map(|b| 100.0 - b.test_top1),
            last10_mean_test_top1_error: last_epochs_mean_error(epochs, LAST_EPOCHS_MEAN),
            wall_seconds,
            train_images_per_second: (!trained_now.is_empty()).then(|| {
                let images: f64 = trained_now
                    .iter()
                    .map(|e| e.train_images_per_second * e.train_seconds)
                    .sum();
                images / trained_now.iter().map(|e| e.train_seconds).sum::<f64>()
            }),
        }
    }
}

/// Refuses to resume a run whose saved config differs from `config` in anything but the
/// number of epochs (extending a run is fine), the backend (moving to a GPU is fine) and the
/// tables that do not change the training (`[pictures]`, `[eval]`, `[paper]`).
fn check_same_experiment(run_dir: &Path, config: &ExperimentConfig) -> Result<(), TrainError> {
    let path = run_dir.join("config.toml");
    let Ok(saved) = ExperimentConfig::load(&path, &[]) else {
        return Ok(()); // No (readable) saved config: nothing to compare with.
    };
    // What does not change the training may change: epochs (extend a run), backend, the
    // devices and micro-batches the global batch is cut into (`batch_size` is the global
    // batch: a different one is refused), the pictures drawn, the evaluations run at the end
    // and the paper's numbers.
    let normalise = |c: &ExperimentConfig| {
        let mut c = c.clone();
        c.epochs = 0;
        c.backend = BackendKind::Cpu;
        c.distributed = Default::default();
        c.pictures = Default::default();
        c.eval = None;
        c.paper = None;
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
