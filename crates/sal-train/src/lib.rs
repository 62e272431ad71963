//! Training and evaluation for saliency-guided augmentation: data, the trainer, metrics.
//!
//! Data flow of one training step (docs/architecture.md): files -> [`data`] readers -> per-sample
//! [`transform`] on the [`loader`]'s worker threads -> a batch on the device -> mixing (sal-core)
//! -> model (sal-models) -> [`step::soft_cross_entropy`] -> backward -> SGD -> [`metrics`]
//! and [`checkpoint`]s.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | the experiment TOML: parsing, `--set` overrides, validation |
//! | [`data`] | the `[dataset]` table, per-data-set defaults, readers: IDX, CIFAR binary, image folders |
//! | [`transform`] | per-sample pad / random crop / flip / normalise |
//! | [`loader`] | deterministic parallel prefetching batches for burn-train |
//! | [`step`] | the Learner's train and evaluation steps, soft-target cross-entropy |
//! | [`eval`] | evaluations of a trained model: top-1 / top-5, FGSM, occlusion, CAMs; `[eval]` |
//! | [`schedule`] | MultiStep learning rate in epochs |
//! | [`metrics`] | progress bars, epoch summaries, `metrics.csv` |
//! | [`paper`] | the `[paper]` table: the paper's number for a paper-table config |
//! | [`reproduce`] | paper tables as folders of configs: rows, status, runs, results.md |
//! | [`study`] | a study's configs over seeds: errors, time per epoch, Welch's t-tests |
//! | [`inspect`] | sample batches and the run's model, for pictures of its mixing |
//! | [`pictures`] | the figure of a mixed batch; the trainer's `mixed/epoch-<e>.png` |
//! | [`checkpoint`] | atomic checkpoint files, resume discovery |
//! | [`backend`] | CPU / WGPU / CUDA device selection |
//! | [`distributed`] | `[distributed]`: devices, burn-train's execution strategy, accumulation |
//! | [`trainer`] | `train(config)` |

#![forbid(unsafe_code)]

pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod distributed;
pub mod eval;
pub mod inspect;
pub mod loader;
pub mod metrics;
pub mod paper;
pub mod pictures;
pub mod reproduce;
pub mod schedule;
pub mod step;
pub mod study;
pub mod trainer;
pub mod transform;

pub use config::{BackendKind, ConfigError, ExperimentConfig};
pub use trainer::{RunResults, TrainError, TrainOptions, TrainReport, train};
