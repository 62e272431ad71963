//! `cargo xtask eval --run runs/<name> [--checkpoint N] [--eps E,...] [--occlusion F,...]
//! [--backend cpu|wgpu|cuda]`: a trained run's checkpoint on its test split (clean top-1/top-5,
//! FGSM, occlusion of the most salient regions), printed and written to `<run>/eval.json`
//! (`sal_train::eval`, docs/training.md).

use crate::allocator;
use anyhow::{Context, Result};
use clap::Args;
use sal_train::BackendKind;
use sal_train::eval::{AtSetting, EvalOptions, evaluate_run};
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// The run directory (what `train` wrote: config.toml, checkpoint/), e.g. runs/quickstart.
    #[arg(long)]
    run: PathBuf,
    /// Epoch of the checkpoint to evaluate; default: the newest complete one.
    #[arg(long)]
    checkpoint: Option<usize>,
    /// FGSM step sizes in pixel units, [0, 1]; default 8/255 (CutMix's setting).
    #[arg(long, value_delimiter = ',')]
    eps: Vec<f64>,
    /// Occluded fractions of the most salient regions, [0, 1]; default 0, 0.125, 0.25
    /// (Saliency Grafting Table 6).
    #[arg(long, value_delimiter = ',')]
    occlusion: Vec<f64>,
    /// Device family; overrides the run's `backend`.
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Test images in the CAM picture (cam.png): the first of each class, up to this many; 0
    /// draws none.
    #[arg(long, default_value_t = 10)]
    cam_images: usize,
}

pub fn run(args: EvalArgs) -> Result<()> {
    allocator::use_steady_settings();
    let defaults = EvalOptions::default();
    let options = EvalOptions {
        checkpoint: args.checkpoint,
        fgsm_eps: if args.eps.is_empty() {
            defaults.fgsm_eps
        } else {
            args.eps
        },
        occlusion: if args.occlusion.is_empty() {
            defaults.occlusion
        } else {
            args.occlusion
        },
        backend: args.backend,
        cam_images: args.cam_images,
    };
    let report = evaluate_run(&args.run, &options)
        .with_context(|| format!("evaluating {}", args.run.display()))?;
    println!(
        "{} at epoch {} ({} test images, {:.1} s)\n",
        report.checkpoint.display(),
        report.epoch,
        report.clean.images,
        report.seconds
    );
    println!("| evaluation | top-1 % | top-1 error % | top-5 % | loss |");
    println!("|---|---|---|---|---|");
    let row = |name: String, a: &sal_train::eval::Accuracy| {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.4} |",
            a.top1,
            a.top1_error(),
            a.top5,
            a.loss
        );
    };
    row("clean".into(), &report.clean);
    for AtSetting { setting, accuracy } in &report.fgsm {
        row(
            format!("FGSM eps {setting:.4} ({:.1}/255)", setting * 255.0),
            accuracy,
        );
    }
    for AtSetting { setting, accuracy } in &report.occlusion {
        row(
            format!("top {:.1} % salient regions occluded", setting * 100.0),
            accuracy,
        );
    }
    println!("\nwritten: {}", args.run.join("eval.json").display());
    println!("         {}", report.chart_png.display());
    if let Some(png) = &report.cam_png {
        println!("         {}", png.display());
    }
    Ok(())
}
