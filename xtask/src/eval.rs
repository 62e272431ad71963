//! `cargo xtask eval --run runs/<name> [--checkpoint N] [--eps E,...] [--occlusion F,...]
//! [--cam-images N] [--set key=value]... [--backend cpu|wgpu|cuda]`: a trained run's checkpoint
//! on its test split (clean top-1/top-5, FGSM, occlusion of the most salient regions, CAMs),
//! printed and written to `<run>/eval.json`, `eval.png`, `cam.png` (`sal_train::eval`,
//! docs/evaluation.md). Its settings: the run's `[eval]` table, else the defaults; each flag
//! replaces its value.

use crate::allocator;
use anyhow::{Context, Result};
use clap::Args;
use sal_train::BackendKind;
use sal_train::eval::{EvalOptions, evaluate_run};
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// The run directory (what `train` wrote: config.toml, checkpoint/), e.g. runs/quickstart.
    #[arg(long)]
    run: PathBuf,
    /// Epoch of the checkpoint to evaluate; default: the newest complete one.
    #[arg(long)]
    checkpoint: Option<usize>,
    /// FGSM step sizes in pixel units, [0, 1]; default: the run's `[eval] fgsm_eps`, else 8/255
    /// (CutMix's setting).
    #[arg(long, value_delimiter = ',')]
    eps: Vec<f64>,
    /// Occluded fractions of the most salient regions, [0, 1]; default: the run's
    /// `[eval] occlusion`, else 0, 0.125, 0.25 (Saliency Grafting Table 6).
    #[arg(long, value_delimiter = ',')]
    occlusion: Vec<f64>,
    /// Override a value of the run's saved config, as `train --set` does (repeatable), e.g.
    /// `--set dataset.path=/data/fashion-mnist` when the data moved, or
    /// `--set eval.occlusion=[0.5]`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Device family; overrides the run's `backend`.
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Test images in the CAM picture (cam.png): the first of each class, up to this many; 0
    /// draws none. Default: the run's `[eval] cam_images`, else 10.
    #[arg(long)]
    cam_images: Option<usize>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    allocator::use_steady_settings();
    // Each flag given replaces one value of the run's `[eval]` table (created with the
    // defaults if the run has none), as a `--set` would.
    let list = |values: &[f64]| {
        let items: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        format!("[{}]", items.join(", "))
    };
    let mut overrides = args.overrides;
    if !args.eps.is_empty() {
        overrides.push(format!("eval.fgsm_eps={}", list(&args.eps)));
    }
    if !args.occlusion.is_empty() {
        overrides.push(format!("eval.occlusion={}", list(&args.occlusion)));
    }
    if let Some(n) = args.cam_images {
        overrides.push(format!("eval.cam_images={n}"));
    }
    let options = EvalOptions {
        checkpoint: args.checkpoint,
        backend: args.backend,
        suite: None,
        overrides,
    };
    let report = evaluate_run(&args.run, &options)
        .with_context(|| format!("evaluating {}", args.run.display()))?;
    println!("{}", report.table());
    println!("written: {}", args.run.join("eval.json").display());
    println!("         {}", report.chart_png.display());
    if let Some(png) = &report.cam_png {
        println!("         {}", png.display());
    }
    Ok(())
}
