//! `cargo xtask train --config F [--backend cpu|wgpu|cuda] [--devices N] [--resume]
//! [--set key=value]...`

use crate::allocator;
use anyhow::{Context, Result};
use clap::Args;
use sal_train::{BackendKind, ExperimentConfig, TrainOptions};
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// Experiment config (TOML), e.g. experiments/quickstart.toml.
    #[arg(long)]
    config: PathBuf,
    /// Device family; overrides the config's `backend`.
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Devices to train on, data-parallel; overrides `[distributed] devices` (the config's
    /// `batch_size` stays the global batch). docs/backends.md.
    #[arg(long, value_name = "N")]
    devices: Option<usize>,
    /// Continue the run in the config's output directory from its newest complete checkpoint.
    #[arg(long)]
    resume: bool,
    /// Override a config value, e.g. `--set optimizer.lr=0.05 --set epochs=3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// How this binary trains: `results.json` names the commit it was built from (`build.rs`).
pub fn options(resume: bool, backend: Option<BackendKind>) -> TrainOptions {
    TrainOptions {
        resume,
        backend,
        code_commit: option_env!("SAL_BUILD_COMMIT").map(str::to_string),
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    allocator::use_steady_settings();
    let mut overrides = args.overrides;
    if let Some(n) = args.devices {
        overrides.push(format!("distributed.devices={n}"));
    }
    let config = ExperimentConfig::load(&args.config, &overrides)?;
    crate::data::ensure_available(&config.dataset)?;
    let options = options(args.resume, args.backend);
    let report = sal_train::train(&config, &options)
        .with_context(|| format!("training {}", args.config.display()))?;
    let r = &report.results;
    println!();
    if let Some(last) = &r.final_epoch {
        println!(
            "final test top-1 {:.2}% (error {:.2}%)  top-5 {:.2}%  (best {:.2}% at epoch {})",
            last.test_top1,
            100.0 - last.test_top1,
            last.test_top5,
            r.best_test_top1.unwrap_or(f64::NAN),
            r.best_epoch.unwrap_or(0)
        );
    }
    println!(
        "wall time {:.0} s, training throughput {:.1} img/s",
        r.wall_seconds,
        r.train_images_per_second.unwrap_or(f64::NAN)
    );
    println!("metrics (plot-ready CSV): {}", report.metrics_csv.display());
    println!(
        "results:                  {}",
        report.results_json.display()
    );
    if let Some(checkpoint) = &report.last_checkpoint {
        println!("checkpoint:               {}", checkpoint.display());
    }
    Ok(())
}
