//! `cargo xtask visualize`: pictures of a mixing method on real data, like the papers' figures.
//!
//! ```text
//! cargo xtask visualize --method <name> --config F --output grid.png
//!                       [--set key=value]... [--samples N] [--seed S]
//! cargo xtask visualize --method all --config F --output folder/   # folder/<method>.png each
//! ```
//!
//! Each row shows a training image (target), the image its foreign content comes from (source),
//! the mixed image and its soft label (the target's class first). Regions are outlined: cyan
//! where pixels are read, red where they are written (HybridMix's SalfMix patches: green and
//! orange); Saliency Grafting's grafted cells are outlined as a mask. The caption names the
//! method, its `[augmentation]` parameters, and what the picture changed:
//! - the method: when the config's `[augmentation]` has the same method, its parameters are
//!   used, else the method's defaults (HybridMix's `T_t` defaults to SaliencyMix, v2);
//!   `--set augmentation.<key>=<value>` overrides either, as in `train`;
//! - the mixing always applies (`prob = 1`) unless `--set` gives the prob;
//! - warm-up epochs are over (the batch is mixed as in the first epoch after them);
//! - model-guided methods (SalfMix, HybridMix, Saliency Grafting) take their saliency from the
//!   config's run checkpoint (`<output_dir>/checkpoint/model-<N>.bpk`, newest complete epoch) or,
//!   without one, from an untrained model, and say which.
//!
//! The images are the config's training set after its training transform (pad, crop, flip,
//! normalise), one per class as far as the classes go, chosen with the seed (default: the
//! config's), which also seeds the mixing (step 0 of that seed's stream).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;
use clap::Args;
use sal_core::{AugmentationConfig, MixBatch, SaliencyInput};
use sal_figures::Figure;
use sal_figures::mixed_batch::Caption;
use sal_train::ExperimentConfig;
use sal_train::inspect::{SaliencyModel, SampleBatch};
use sal_train::pictures::{self, Legend, mixed_batch_figure};

#[derive(Args)]
pub struct VisualizeArgs {
    /// mixup, cutout, cutmix, resizemix, saliencymix, salfmix, hybridmix, saliency-grafting, or
    /// all (one PNG per method into the --output folder).
    #[arg(long)]
    method: String,
    /// Experiment config (TOML): data set, transform, model, and `[augmentation]` parameters.
    #[arg(long)]
    config: PathBuf,
    /// The PNG to write; with `--method all` an existing folder that receives `<method>.png`.
    #[arg(long)]
    output: PathBuf,
    /// Override a config value, e.g. `--set augmentation.mix.method=cutmix` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Rows of the picture: images mixed as one batch.
    #[arg(long, default_value_t = 6)]
    samples: usize,
    /// Seed of the image choice and of the mixing; default: the config's `seed`.
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: VisualizeArgs) -> Result<()> {
    let jobs = plan(&args)?;
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read config file {}", args.config.display()))?;
    let pictures = jobs
        .iter()
        .map(|(method, _)| {
            PictureConfig::new(&text, &args.config, method, &args.overrides, args.seed)
        })
        .collect::<Result<Vec<_>>>()?;
    // Only `[augmentation]` differs between the pictures: data and model come from the first.
    let base = &pictures[0].experiment;
    crate::data::ensure_available(&base.dataset)?;
    let device = Device::flex().autodiff();
    let samples = SampleBatch::load(base, args.samples, &device)?;
    let needs_model = pictures.iter().any(|p| {
        p.experiment
            .augmentation()
            .is_ok_and(|a| a.saliency_input() != SaliencyInput::None)
    });
    let model = if needs_model {
        let model = SaliencyModel::load(base, samples.num_classes, &device)?;
        println!(
            "{}",
            model.weights.describe(&base.model.architecture.to_string())
        );
        Some(model)
    } else {
        None
    };
    for (picture, (_, output)) in pictures.iter().zip(&jobs) {
        let figure = picture.render(&samples, model.as_ref())?;
        sal_figures::write_png(&figure.render(), output)?;
        println!("{}: {}", picture.method, output.display());
    }
    Ok(())
}

/// Checks the arguments and pairs each method to render with its output file.
fn plan(args: &VisualizeArgs) -> Result<Vec<(&'static str, PathBuf)>> {
    const METHODS: &[&str] = AugmentationConfig::MIXING_METHODS;
    ensure!(args.samples >= 1, "--samples must be at least 1");
    if args.method == "all" {
        ensure!(
            args.output.is_dir(),
            "--output {}: with --method all this must be an existing folder (one PNG per \
             method goes into it)",
            args.output.display()
        );
        return Ok(METHODS
            .iter()
            .map(|m| (*m, args.output.join(format!("{m}.png"))))
            .collect());
    }
    let Some(method) = METHODS.iter().find(|m| **m == args.method) else {
        bail!(
            "unknown method `{}`: expected one of {}, or all",
            args.method,
            METHODS.join(", ")
        );
    };
    ensure!(
        args.output.extension().is_some_and(|e| e == "png"),
        "--output {}: the picture is a PNG, name it <something>.png",
        args.output.display()
    );
    let parent = args
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure!(
        parent.is_dir(),
        "--output {}: the folder {} does not exist",
        args.output.display(),
        parent.display()
    );
    Ok(vec![(*method, args.output.clone())])
}

/// One method's experiment config, set up for a picture.
#[derive(Debug)]
struct PictureConfig {
    method: &'static str,
    experiment: ExperimentConfig,
    /// True when the picture set the mixing probability to 1 (the user did not set it).
    prob_forced: bool,
}

impl PictureConfig {
    /// `text` (the config file at `path`) with its `[augmentation]` table kept when it names
    /// `method`, else replaced by `method`'s defaults; prob set to 1 unless `overrides` set it;
    /// then `overrides`; `seed` replaces the config's.
    fn new(
        text: &str,
        path: &Path,
        method: &'static str,
        overrides: &[String],
        seed: Option<u64>,
    ) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text)
            .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
        let defaults = AugmentationConfig::defaults(method)
            .with_context(|| format!("unknown method `{method}`"))?;
        let configured = table
            .get("augmentation")
            .and_then(|a| a.get("method"))
            .and_then(|m| m.as_str());
        // Set before the user's overrides, which may change them.
        let mut all = Vec::with_capacity(overrides.len() + 2);
        if configured != Some(method) {
            let mut augmentation = toml::Table::new();
            augmentation.insert("method".into(), method.into());
            table.insert("augmentation".into(), augmentation.into());
            all.extend(
                AugmentationConfig::required_keys(method)
                    .iter()
                    .map(|(key, value)| format!("augmentation.{key}=\"{value}\"")),
            );
        }
        let prob_key = defaults.prob_key().map(|k| format!("augmentation.{k}"));
        let user_sets_prob = overrides.iter().any(|o| {
            o.split_once('=')
                .is_some_and(|(k, _)| Some(k.trim()) == prob_key.as_deref())
        });
        let prob_forced = prob_key.is_some() && !user_sets_prob;
        if let Some(key) = prob_key.as_ref().filter(|_| prob_forced) {
            all.push(format!("{key}=1.0"));
        }
        all.extend(overrides.iter().cloned());
        let text = toml::to_string(&table).expect("a parsed TOML table serialises");
        let mut experiment = ExperimentConfig::parse(&text, path, &all)?;
        if let Some(seed) = seed {
            experiment.seed = seed;
        }
        Ok(Self {
            method,
            experiment,
            prob_forced,
        })
    }

    /// Mixes the samples as one training batch and lays out the figure.
    fn render(&self, samples: &SampleBatch, model: Option<&SaliencyModel>) -> Result<Figure> {
        let experiment = &self.experiment;
        let augmentation = experiment
            .augmentation()
            .with_context(|| format!("[augmentation] of method {}", self.method))?;
        let mut batch = MixBatch::new(
            samples.images.clone(),
            samples.labels.clone(),
            samples.num_classes,
        )
        .with_epoch(experiment.augmentation.method.warmup_epochs());
        let input = augmentation.saliency_input();
        let mut title = pictures::title(experiment);
        if self.prob_forced {
            title.push(
                "The mixing is forced to apply (prob = 1) for this picture; training uses the \
                 configured prob."
                    .into(),
            );
        }
        let mut notes = Vec::new();
        if input != SaliencyInput::None {
            let model = model.expect("a model is loaded for every model-guided method");
            if let Some(saliency) = model.saliency(input, &samples.images, &samples.labels)? {
                batch = batch.with_saliency(saliency);
            }
            notes.push(
                model
                    .weights
                    .describe(&experiment.model.architecture.to_string()),
            );
        }
        let out = augmentation
            .mix(batch, 0)
            .with_context(|| format!("mixing with {}", self.method))?;
        let legend = Legend {
            labels: &samples.labels_host,
            class_names: &samples.class_names,
            normalization: &samples.normalization,
        };
        Ok(mixed_batch_figure(
            &samples.images,
            &out,
            None,
            legend,
            Caption { title, notes },
        )?)
    }
}

#[cfg(test)]
mod tests;
