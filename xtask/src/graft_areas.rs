//! `cargo xtask graft-areas`: how much of each image Saliency Grafting grafts under a model.
//!
//! ```text
//! cargo xtask graft-areas --config F [--set key=value]... [--samples N] [--steps S]
//! ```
//!
//! Mixes `--samples` training images (after the training transform) as one batch at steps
//! `0..S` of the config's seed, with the config's `[augmentation]` parameters if it names
//! Saliency Grafting (else the defaults; `--set augmentation.temperature=...` overrides), past
//! the warm-up, with the saliency of the config's run checkpoint (or an untrained model, said so).
//! Prints the grafted fraction of each image per grid size: quantiles and the share of grafts
//! that are empty or cover the whole image. docs/methods.md shows what the default gives.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use clap::Args;
use sal_core::trace::Regions;
use sal_core::{AugmentationConfig, MixBatch, SaliencyGraftingConfig};
use sal_train::ExperimentConfig;
use sal_train::inspect::{SaliencyModel, SampleBatch};

#[derive(Args)]
pub struct GraftAreasArgs {
    /// Experiment config (TOML): data set, transform, model and its run directory.
    #[arg(long)]
    config: PathBuf,
    /// Override a config value, e.g. `--set augmentation.temperature=0.5` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    samples: usize,
    /// Batches (training steps) mixed.
    #[arg(long, default_value_t = 30)]
    steps: u64,
}

pub fn run(args: GraftAreasArgs) -> Result<()> {
    ensure!(args.samples >= 2, "--samples must be at least 2");
    ensure!(args.steps >= 1, "--steps must be at least 1");
    let mut config = ExperimentConfig::load(&args.config, &[])?;
    if !matches!(
        config.augmentation.method,
        AugmentationConfig::SaliencyGrafting(_)
    ) {
        config.augmentation.method =
            AugmentationConfig::SaliencyGrafting(SaliencyGraftingConfig::default());
    }
    let text = config.to_toml();
    let config = ExperimentConfig::parse(&text, &args.config, &args.overrides)?;
    let AugmentationConfig::SaliencyGrafting(grafting) = &config.augmentation.method else {
        anyhow::bail!("--set changed augmentation.method: this command measures saliency-grafting");
    };
    crate::data::ensure_available(&config.dataset)?;
    let device = Device::flex().autodiff();
    let samples = SampleBatch::load(&config, args.samples, &device)?;
    let model = SaliencyModel::load(&config, samples.num_classes, &device)?;
    let augmentation = config.augmentation()?;
    println!(
        "{}",
        model
            .weights
            .describe(&config.model.architecture.to_string())
    );
    println!(
        "saliency-grafting: temperature {}, threshold {}, alpha {}, grid scales {:?}; {} images x {} steps",
        grafting.temperature,
        grafting.threshold,
        grafting.alpha,
        grafting.grid_scales,
        samples.len(),
        args.steps
    );
    let saliency = model
        .saliency(
            augmentation.saliency_input(),
            &samples.images,
            &samples.labels,
        )?
        .context("saliency-grafting takes the model's feature map")?;
    // Grafted fraction of each image, by grid (rows x cols).
    let mut areas: std::collections::BTreeMap<(usize, usize), Vec<f64>> = Default::default();
    for step in 0..args.steps {
        let batch = MixBatch::new(
            samples.images.clone(),
            samples.labels.clone(),
            samples.num_classes,
        )
        .with_epoch(grafting.warmup_epochs)
        .with_saliency(saliency.clone());
        let out = augmentation.mix(batch, step)?;
        let Regions::GridMask(mask) = out.trace.regions else {
            continue; // The batch lost the `prob` draw.
        };
        let [n, rows, cols] = mask.dims();
        let cells: Vec<f32> = mask.into_data().try_to_vec().context("a float mask")?;
        let grid = areas.entry((rows, cols)).or_default();
        grid.extend(
            cells
                .chunks(rows * cols)
                .take(n)
                .map(|c| c.iter().map(|&v| v as f64).sum::<f64>() / (rows * cols) as f64),
        );
    }
    println!("grid     images  empty   whole   p10    p25    median p75    p90    mean");
    for ((rows, cols), mut a) in areas {
        a.sort_by(f64::total_cmp);
        let share = |f: &dyn Fn(f64) -> bool| {
            100.0 * a.iter().filter(|&&x| f(x)).count() as f64 / a.len() as f64
        };
        let q = |p: f64| a[((a.len() - 1) as f64 * p).round() as usize];
        println!(
            "{:<8} {:>6}  {:>5.1}%  {:>5.1}%  {:.3}  {:.3}  {:.3}  {:.3}  {:.3}  {:.3}",
            format!("{rows}x{cols}"),
            a.len(),
            share(&|x| x == 0.0),
            share(&|x| x == 1.0),
            q(0.1),
            q(0.25),
            q(0.5),
            q(0.75),
            q(0.9),
            a.iter().sum::<f64>() / a.len() as f64
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: &str, samples: usize, steps: u64) -> GraftAreasArgs {
        GraftAreasArgs {
            config: PathBuf::from(config),
            overrides: Vec::new(),
            samples,
            steps,
        }
    }

    #[test]
    fn bad_arguments_are_errors_naming_them() {
        let quickstart = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../experiments/quickstart.toml"
        );
        let error = run(args(quickstart, 1, 5)).unwrap_err().to_string();
        assert!(error.contains("--samples"), "{error}");
        let error = run(args(quickstart, 8, 0)).unwrap_err().to_string();
        assert!(error.contains("--steps"), "{error}");
        let error = format!("{:#}", run(args("no/such/config.toml", 8, 5)).unwrap_err());
        assert!(error.contains("no/such/config.toml"), "{error}");
        let mut other = args(quickstart, 8, 5);
        other.overrides = vec!["augmentation.method=\"cutmix\"".into()];
        let error = run(other).unwrap_err().to_string();
        assert!(error.contains("augmentation"), "{error}");
    }
}
