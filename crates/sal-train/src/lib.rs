//! Training and evaluation for saliency-guided augmentation: data, the trainer, metrics.
//!
//! Data flow of one training step (../../DESIGN.md): files -> [`data`] readers -> per-sample
//! [`transform`] on the [`loader`]'s worker threads -> a batch on the device -> mixing (sal-core)
//! -> model (sal-models) -> [`step::soft_cross_entropy`] -> backward -> SGD -> [`record`]ed
//! metrics and [`checkpoint`]s.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | the experiment TOML: parsing, `--set` overrides, validation |
//! | [`dataset`] | the `[dataset]` table and per-data-set defaults |
//! | [`data`] | readers: IDX, CIFAR binary, image folders; Fashion-MNIST fetching |
//! | [`transform`] | per-sample pad / random crop / flip / normalise |
//! | [`loader`] | deterministic parallel prefetching batches for burn-train |
//! | [`seed`] | the independent random streams of a run |
//! | [`step`] | the Learner's train and evaluation steps, soft-target cross-entropy |
//! | [`schedule`] | MultiStep learning rate in epochs |
//! | [`record`] | progress bars, epoch summaries, `metrics.csv` |
//! | [`checkpoint`] | atomic checkpoint files, resume discovery |
//! | [`backend`] | CPU / WGPU / CUDA device selection |
//! | [`trainer`] | `train(config)` |

pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod dataset;
pub mod inspect;
pub mod loader;
pub mod record;
pub mod schedule;
pub mod seed;
pub mod step;
pub mod trainer;
pub mod transform;

pub use config::{BackendKind, ConfigError, ExperimentConfig};
pub use trainer::{RunResults, TrainError, TrainOptions, TrainReport, train};
