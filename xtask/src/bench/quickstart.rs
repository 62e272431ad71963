//! `cargo xtask bench quickstart`: the quickstart (`experiments/quickstart.toml`) end to end,
//! burn's trainer beside the PyTorch loop a user would write for the same job.
//!
//! burn's side is `sal_train::train` itself on the quickstart's config, cut to one epoch over
//! the first `--images` training images (its loader, augmentation, burn-train's loop, optimizer)
//! and timed by the trainer's own figure (the epoch's images over its training seconds, the
//! `img/s` of `metrics.csv`). PyTorch's side (`quickstart_torch.py`) is the best case for
//! PyTorch: a lean in-memory loop over the same images, with the same padding, crops, flips,
//! normalisation, network (the parameter counts are checked) and optimizer, the augmentation
//! vectorised over the batch and no DataLoader. Each precision of `--precisions` runs on both
//! sides: bf16 is `precision = "bf16"` for burn and `torch.autocast(dtype=torch.bfloat16)`,
//! plain and with `channels_last`, for PyTorch. Every side trains a fresh model once per
//! round; rounds alternate which side goes first. Results: docs/benchmarks.md.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use sal_core::AugmentationConfig;
use sal_models::{Architecture, Precision};
use sal_train::data::Split;
use sal_train::{BackendKind, ExperimentConfig};
use serde::{Deserialize, Serialize};

use super::measure;
use super::models::{TorchVariant, parse_precision};
use crate::pyenv::{PyEnv, workspace_root};

/// Options of `cargo xtask bench quickstart`.
#[derive(Args)]
pub struct QuickstartBench {
    /// Training images per timed epoch: the first N of the training split, a multiple of the
    /// quickstart's batch (64).
    #[arg(long, default_value_t = 6400)]
    images: usize,
    /// Rounds: each trains every side once, from a fresh model; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Threads for both sides (RAYON_NUM_THREADS for burn, torch.set_num_threads).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The precisions to time, comma-separated: fp32, bf16.
    #[arg(long, value_delimiter = ',', value_parser = parse_precision, default_value = "fp32,bf16")]
    precisions: Vec<Precision>,
    /// Time burn only (no Python environment needed).
    #[arg(long)]
    burn_only: bool,
}

/// One epoch of one side.
struct Epoch {
    seconds: f64,
    /// The mean training loss of the epoch: both sides should learn alike.
    mean_loss: f64,
}

/// A row of the report: a side and its epochs over the rounds.
struct Side {
    name: String,
    precision: Precision,
    epochs: Vec<Epoch>,
}

impl Side {
    fn images_per_second(&self, images: usize) -> f64 {
        images as f64 / measure::median(&self.seconds())
    }

    fn seconds(&self) -> Vec<f64> {
        self.epochs.iter().map(|e| e.seconds).collect()
    }
}

/// What the PyTorch peer's loop mirrors of the quickstart, handed to it as one JSON object.
#[derive(Serialize)]
struct TorchJob {
    pixels: PathBuf,
    labels: PathBuf,
    images: usize,
    height: usize,
    width: usize,
    channels: usize,
    classes: usize,
    block: &'static str,
    blocks: Vec<usize>,
    width_base: usize,
    batch: usize,
    pad_to: Option<usize>,
    crop_padding: usize,
    hflip: bool,
    mean: Vec<f64>,
    std: Vec<f64>,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    threads: usize,
    seed: u64,
}

/// One run of the peer: the job in one precision and memory format.
#[derive(Serialize)]
struct TorchRun<'a> {
    #[serde(flatten)]
    job: &'a TorchJob,
    precision: String,
    memory_format: String,
}

/// What `quickstart_torch.py` prints.
#[derive(Deserialize)]
struct TorchEpoch {
    torch: String,
    threads: usize,
    params: usize,
    images: usize,
    seconds: f64,
    mean_loss: f64,
}

pub fn run(args: QuickstartBench) -> Result<()> {
    ensure!(
        args.rounds > 0 && args.threads > 0 && !args.precisions.is_empty(),
        "rounds, threads and precisions must not be zero or empty"
    );
    for &precision in &args.precisions {
        if let Err(message) = sal_train::config::precision_on_backend(precision, BackendKind::Cpu) {
            bail!("--precisions {}: {message}", precision.name());
        }
    }
    let config_path = workspace_root().join("experiments/quickstart.toml");
    let config = ExperimentConfig::load(&config_path, &[])?;
    let config = one_epoch(&config, args.images)
        .with_context(|| format!("benchmarking {}", config_path.display()))?;
    // The quickstart as `cargo xtask train` runs it (glibc's steady allocator settings), for
    // both sides; rayon sizes its pool from the environment when it first starts.
    let mut env = vec![(measure::THREADS_ENV, args.threads.to_string())];
    env.extend(measure::malloc_env(true));
    if measure::rerun_with_env(&env)? {
        return Ok(());
    }
    crate::data::ensure_available(&config.dataset)?;
    let scratch = workspace_root().join("target/bench-quickstart");
    fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let job = (!args.burn_only)
        .then(|| torch_job(&config, &scratch, args.threads))
        .transpose()?;

    println!(
        "{} ({} width {}), {} images of {}, batch {}, one epoch per side and round, median of {} rounds, {} threads",
        config_path.display(),
        config.model.architecture,
        config.model.base_width.unwrap_or(64),
        args.images,
        config.dataset.name,
        config.batch_size,
        args.rounds,
        args.threads
    );
    println!("allocator (both sides): {}", measure::malloc_settings());
    if job.is_some() {
        measure::warn_if_busy();
    }
    println!(
        "load average before: {} ({} cores)",
        measure::load_average(),
        measure::cores()
    );
    let mut burn: Vec<Side> = args
        .precisions
        .iter()
        .map(|&precision| Side {
            name: burn_name(precision),
            precision,
            epochs: Vec::new(),
        })
        .collect();
    let variants: Vec<TorchVariant> = match &job {
        None => Vec::new(),
        Some(_) => args
            .precisions
            .iter()
            .flat_map(|&p| TorchVariant::beside(p, BackendKind::Cpu))
            .collect(),
    };
    let mut torch: Vec<Option<Side>> = variants.iter().map(|_| None).collect();
    for round in 1..=args.rounds {
        let torch_first = round % 2 == 0;
        for torch_turn in [torch_first, !torch_first] {
            if !torch_turn {
                for side in &mut burn {
                    eprintln!("round {round}: training burn {} ...", side.precision.name());
                    let dir = scratch.join(format!("run-{}", side.precision.name()));
                    side.epochs.push(burn_epoch(&config, side.precision, &dir)?);
                }
                continue;
            }
            let Some(job) = &job else { continue };
            for (variant, side) in variants.iter().zip(&mut torch) {
                eprintln!("round {round}: training PyTorch {} ...", variant.label());
                let (name, epoch) = torch_epoch(job, &config, variant)?;
                side.get_or_insert_with(|| Side {
                    name,
                    precision: variant.precision,
                    epochs: Vec::new(),
                })
                .epochs
                .push(epoch);
            }
        }
    }
    let load_after = measure::load_average();
    let torch: Vec<Side> = torch.into_iter().flatten().collect();
    print_report(args.images, &burn, &torch);
    println!("load average after: {load_after}");
    fs::remove_dir_all(&scratch).ok();
    Ok(())
}

/// The quickstart cut to one epoch over its first `images` training images, no evaluation
/// suite, a few test images (the epoch's validation is not timed). Refuses a quickstart the
/// PyTorch peer does not mirror.
fn one_epoch(config: &ExperimentConfig, images: usize) -> Result<ExperimentConfig> {
    let batch = config.batch_size;
    ensure!(
        images > 0 && images.is_multiple_of(batch),
        "--images {images}: must be a positive multiple of the batch size ({batch})"
    );
    ensure!(
        matches!(config.augmentation.method, AugmentationConfig::None(_))
            && config.augmentation.k_times == 1,
        "the PyTorch peer trains without a mixing method; the config has `{}`",
        config.augmentation.method.method_name()
    );
    let t = &config.transform;
    ensure!(
        t.size.is_none()
            && t.random_resized_crop.is_none()
            && t.color_jitter.is_none()
            && t.lighting.is_none(),
        "the PyTorch peer mirrors pad_to, crop_padding and hflip only"
    );
    ensure!(
        matches!(config.model.architecture, Architecture::CifarResNet(_)),
        "the PyTorch peer builds CIFAR ResNets only; the config has `{}`",
        config.model.architecture
    );
    let mut config = config.clone();
    config.epochs = 1;
    config.eval = None;
    config.dataset.train_limit = Some(images);
    config.dataset.test_limit = Some(batch);
    Ok(config)
}

fn burn_name(precision: Precision) -> String {
    match precision {
        Precision::Bf16 => format!(
            "burn trainer bf16 ({})",
            sal_models::bf16_instructions().unwrap_or("f32: no bf16 units")
        ),
        p => format!("burn trainer {}", p.name()),
    }
}

/// Trains one epoch with burn's trainer in a fresh run directory and returns its figures.
fn burn_epoch(config: &ExperimentConfig, precision: Precision, dir: &Path) -> Result<Epoch> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let mut config = config.clone();
    config.precision = precision;
    config.output_dir = Some(dir.to_path_buf());
    let options = crate::train::options(false, None);
    let report = sal_train::train(&config, &options)?;
    let epoch = report
        .results
        .final_epoch
        .context("the trainer recorded no epoch")?;
    Ok(Epoch {
        seconds: epoch.train_seconds,
        mean_loss: epoch.train_loss,
    })
}

/// Writes the run's training images (as the trainer opens them: the configured prefix) for the
/// PyTorch peer, and what its loop mirrors.
fn torch_job(config: &ExperimentConfig, scratch: &Path, threads: usize) -> Result<TorchJob> {
    let set = config.dataset.open(Split::Train)?;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    let first = set.load(0)?;
    let (height, width, channels) = (first.height, first.width, first.channels);
    for index in 0..set.len() {
        let item = set.load(index)?;
        ensure!(
            (item.height, item.width, item.channels) == (height, width, channels),
            "image {index} is {}x{}x{}, the first {height}x{width}x{channels}: the PyTorch \
             peer needs one size",
            item.height,
            item.width,
            item.channels
        );
        pixels.extend_from_slice(&item.pixels);
        labels.push(u8::try_from(item.label).context("the PyTorch peer takes labels < 256")?);
    }
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf> {
        let path = scratch.join(name);
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let Architecture::CifarResNet(depth) = config.model.architecture else {
        unreachable!("one_epoch checked the architecture");
    };
    let normalization = config.normalization();
    let o = &config.optimizer;
    Ok(TorchJob {
        pixels: write("pixels.u8", &pixels)?,
        labels: write("labels.u8", &labels)?,
        images: set.len(),
        height,
        width,
        channels,
        classes: set.num_classes(),
        block: if depth.is_bottleneck() {
            "bottleneck"
        } else {
            "basic"
        },
        blocks: depth.blocks_per_stage().to_vec(),
        width_base: config.model.base_width.unwrap_or(64),
        batch: config.batch_size,
        pad_to: config.transform.pad_to,
        crop_padding: config.transform.crop_padding,
        hflip: config.transform.hflip,
        mean: normalization.mean,
        std: normalization.std,
        lr: o.lr,
        momentum: o.momentum,
        nesterov: o.nesterov,
        weight_decay: o.weight_decay,
        threads,
        seed: config.seed,
    })
}

/// Runs the PyTorch peer's epoch once in `variant` and checks it built the same network.
fn torch_epoch(
    job: &TorchJob,
    config: &ExperimentConfig,
    variant: &TorchVariant,
) -> Result<(String, Epoch)> {
    let [precision, memory_format] = variant.args();
    let run = TorchRun {
        job,
        precision,
        memory_format,
    };
    let out = PyEnv::torch()?.run_script(
        &super::with_torch_resnet(include_str!("quickstart_torch.py")),
        &[serde_json::to_string(&run)?],
    )?;
    let epoch: TorchEpoch = serde_json::from_str(out.trim())
        .with_context(|| format!("parsing the PyTorch peer's report: {out}"))?;
    let mut model = config.model.clone();
    model.num_classes = Some(job.classes);
    model.in_channels = Some(job.channels);
    let ours = model.num_trainable_params()?;
    ensure!(
        epoch.params == ours,
        "the PyTorch model has {} parameters, burn's {ours}: not the same network",
        epoch.params
    );
    ensure!(
        epoch.images == job.images,
        "the PyTorch peer trained {} images, not {}",
        epoch.images,
        job.images
    );
    let name = format!(
        "PyTorch {} {} ({} thr)",
        epoch.torch,
        variant.label(),
        epoch.threads
    );
    Ok((
        name,
        Epoch {
            seconds: epoch.seconds,
            mean_loss: epoch.mean_loss,
        },
    ))
}

/// The table of every side, then burn's ratio to PyTorch in each precision (to its fastest
/// configuration where it has several).
fn print_report(images: usize, burn: &[Side], torch: &[Side]) {
    let w = burn
        .iter()
        .chain(torch)
        .map(|side| side.name.len())
        .max()
        .unwrap_or(0)
        .max(30);
    println!();
    println!(
        "{:<w$} {:>22} {:>8} {:>15}",
        "", "epoch s (min-max)", "img/s", "mean train loss"
    );
    for side in burn.iter().chain(torch) {
        let s = measure::Summary::of(&side.seconds());
        let losses: Vec<f64> = side.epochs.iter().map(|e| e.mean_loss).collect();
        println!(
            "{:<w$} {:>22} {:>8.1} {:>15.4}",
            side.name,
            format!("{:.2} ({:.2}-{:.2})", s.median, s.min, s.max),
            side.images_per_second(images),
            measure::median(&losses)
        );
    }
    for ours in burn {
        let best = torch
            .iter()
            .filter(|t| t.precision == ours.precision)
            .max_by(|a, b| {
                a.images_per_second(images)
                    .total_cmp(&b.images_per_second(images))
            });
        if let Some(best) = best {
            println!(
                "ratio {} / {}: {:.2}x",
                ours.name,
                best.name,
                ours.images_per_second(images) / best.images_per_second(images)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quickstart() -> ExperimentConfig {
        ExperimentConfig::load(&workspace_root().join("experiments/quickstart.toml"), &[]).unwrap()
    }

    #[test]
    fn the_timed_run_is_one_epoch_over_the_first_images_without_the_suite() {
        let config = one_epoch(&quickstart(), 640).unwrap();
        assert_eq!(config.epochs, 1);
        assert!(config.eval.is_none());
        assert_eq!(config.dataset.train_limit, Some(640));
        assert_eq!(config.dataset.test_limit, Some(config.batch_size));
        // What the PyTorch peer mirrors stays the quickstart's.
        let original = quickstart();
        assert_eq!(config.transform, original.transform);
        assert_eq!(config.model, original.model);
        assert_eq!(config.batch_size, original.batch_size);
    }

    #[test]
    fn what_the_peer_cannot_mirror_is_refused_by_name() {
        let error = one_epoch(&quickstart(), 100).unwrap_err().to_string();
        assert!(
            error.contains("--images 100") && error.contains("(64)"),
            "{error}"
        );
        let mut mixing = quickstart();
        mixing.augmentation.method = AugmentationConfig::CutMix(Default::default());
        let error = one_epoch(&mixing, 640).unwrap_err().to_string();
        assert!(error.contains("`cutmix`"), "{error}");
        let mut resnet = quickstart();
        resnet.model.architecture = "resnet18".parse().unwrap();
        let error = one_epoch(&resnet, 640).unwrap_err().to_string();
        assert!(error.contains("CIFAR ResNets only"), "{error}");
    }
}
