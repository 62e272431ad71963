//! `cargo xtask bench mixing`: every sal-core mixer per batch on burn's CPU backend (flex), and
//! timm's `Mixup` (batch mode, mixup and cutmix) on PyTorch CPU in the same run, at
//! 128x3x32x32 and 64x3x224x224.
//!
//! Both sides time one call on a fresh copy of the batch (copied outside the timer, so an
//! implementation may work in place, as timm does), covering the image mixing and the soft
//! targets; burn's side also waits for the device (`Device::sync`). The report gives the median
//! and the 10th-90th percentile range of the timed calls, the burn/timm ratios, and the
//! SaliencyMix budget checks of the issue: batch scope within 0.2 ms of CutMix plus one detector
//! call; per-sample scope at 128x32x32 under 2 ms. Both sides use the same number of threads:
//! `RAYON_NUM_THREADS` if set (flex's rayon pool reads it), else every core.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Args;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sal_core::detector::{HostDetector, HostInput};
use sal_core::sampling::step_rng;
use sal_core::{
    AugmentationConfig, BatchMixer, BoxScope, CutMixConfig, CutoutConfig, DetectorChoice,
    HybridMixConfig, KnownNormalization, MixBatch, MixupConfig, PairConfig, ResizeMixConfig,
    SalfMixConfig, SaliencyGraftingConfig, SaliencyMixConfig, spectral_residual,
};
use sal_saliency::{ImageView, StaticSaliency, compute_batch};
use serde::Deserialize;

use super::measure::{self, Summary};
use crate::pyenv::PyEnv;

/// The batch shapes of the issue: CIFAR-sized and ImageNet-sized.
const SHAPES: [[usize; 4]; 2] = [[128, 3, 32, 32], [64, 3, 224, 224]];
const CLASSES: usize = 10;

/// Options of `cargo xtask bench mixing`.
#[derive(Args)]
pub struct MixingBench {
    /// Timed calls per case at 32x32; the 224x224 cases run a tenth as many (at least 10).
    #[arg(long, default_value_t = 200)]
    iters: usize,
    /// Untimed calls before timing each case.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Skip timm (PyTorch) and time only the Rust side.
    #[arg(long)]
    no_peer: bool,
    /// Keep glibc's default allocator settings (see `measure::STEADY_MALLOC`).
    #[arg(long)]
    default_malloc: bool,
}

/// `median (p10-p90)` of timings in microseconds.
fn show(s: &Summary) -> String {
    format!("{} ({}-{})", human(s.median), human(s.p10), human(s.p90))
}

fn human(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} us")
    }
}

/// One random batch: u8 pixels normalised with the CIFAR statistics (so a u8 detector's
/// de-normalisation recovers them), labels, and a model-saliency stand-in of any grid size.
struct Data {
    shape: [usize; 4],
    pixels: TensorData,
    u8_pixels: Vec<u8>,
    labels: Tensor<1, Int>,
    rng_seed: u64,
}

impl Data {
    fn new(shape: [usize; 4], device: &Device) -> Self {
        let [n, c, h, w] = shape;
        let mut rng = StdRng::seed_from_u64(shape.iter().product::<usize>() as u64);
        let u8_pixels: Vec<u8> = (0..n * c * h * w).map(|_| rng.random()).collect();
        let normalizer = KnownNormalization::Cifar.normalization().normalizer();
        let plane = h * w;
        let pixels: Vec<f32> = u8_pixels
            .iter()
            .enumerate()
            .map(|(i, &v)| normalizer.apply(v, (i / plane) % c))
            .collect();
        let labels: Vec<i64> = (0..n)
            .map(|_| rng.random_range(0..CLASSES as i64))
            .collect();
        Self {
            shape,
            pixels: TensorData::new(pixels, shape),
            u8_pixels,
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
            rng_seed: 1,
        }
    }

    fn saliency(&self, rows: usize, cols: usize, device: &Device) -> Tensor<3> {
        let n = self.shape[0];
        let mut rng = StdRng::seed_from_u64(self.rng_seed);
        let v: Vec<f32> = (0..n * rows * cols).map(|_| rng.random()).collect();
        Tensor::from_data(TensorData::new(v, [n, rows, cols]), device)
    }
}

/// Times `mixer` on fresh copies of the batch; returns each call's microseconds in call order
/// (call `i` uses the stream of step `i`, so two mixers' calls pair up by lambda).
fn time_mixer(
    mixer: &dyn BatchMixer,
    data: &Data,
    saliency: Option<Tensor<3>>,
    warmup: usize,
    iters: usize,
    device: &Device,
) -> Result<Vec<f64>> {
    let mut us = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let images = Tensor::from_data(data.pixels.clone(), device);
        let mut batch = MixBatch::new(images, data.labels.clone(), CLASSES).with_epoch(1000);
        if let Some(s) = &saliency {
            batch = batch.with_saliency(s.clone());
        }
        let mut rng = step_rng(0, i as u64);
        device.sync().context("waiting for the device")?;
        let start = Instant::now();
        let out = mixer
            .mix(batch, &mut rng)
            .with_context(|| format!("{} failed", mixer.name()))?;
        device.sync().context("waiting for the device")?;
        let elapsed = start.elapsed().as_secs_f64() * 1e6;
        drop(out);
        if i >= warmup {
            us.push(elapsed);
        }
    }
    Ok(us)
}

/// Times a closure (detector calls).
fn time_call(warmup: usize, iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<Summary> {
    let mut us = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let start = Instant::now();
        f()?;
        let elapsed = start.elapsed().as_secs_f64() * 1e6;
        if i >= warmup {
            us.push(elapsed);
        }
    }
    Ok(Summary::of(&us))
}

/// A report row: label, mixer, and the model-saliency grid it needs (if any).
type Row = (&'static str, Box<dyn BatchMixer>, Option<[usize; 2]>);

/// The mixers of the report.
fn mixers([_, _, h, w]: [usize; 4]) -> Result<Vec<Row>> {
    let norm = KnownNormalization::Cifar.normalization();
    let always = |c: SaliencyMixConfig| SaliencyMixConfig { prob: 1.0, ..c };
    let sm = |detector, scope| {
        always(SaliencyMixConfig {
            detector,
            scope,
            ..Default::default()
        })
    };
    let feature_grid = if h >= 64 { [7, 7] } else { [8, 8] };
    let aug = |c: AugmentationConfig| -> Result<Box<dyn BatchMixer>> {
        Ok(c.init(0, Some(&norm))?.into_mixer())
    };
    Ok(vec![
        (
            "mixup",
            aug(AugmentationConfig::Mixup(MixupConfig::default()))?,
            None,
        ),
        (
            "cutmix",
            aug(AugmentationConfig::CutMix(CutMixConfig {
                prob: 1.0,
                ..Default::default()
            }))?,
            None,
        ),
        (
            "cutout",
            aug(AugmentationConfig::Cutout(CutoutConfig::default()))?,
            None,
        ),
        (
            "resizemix",
            aug(AugmentationConfig::ResizeMix(ResizeMixConfig::default()))?,
            None,
        ),
        (
            "saliencymix batch, fine-grained",
            aug(AugmentationConfig::SaliencyMix(sm(
                DetectorChoice::FineGrained,
                BoxScope::Batch,
            )))?,
            None,
        ),
        (
            "saliencymix per-sample, fine-grained",
            aug(AugmentationConfig::SaliencyMix(sm(
                DetectorChoice::FineGrained,
                BoxScope::PerSample,
            )))?,
            None,
        ),
        (
            "saliencymix batch, spectral-residual-device",
            aug(AugmentationConfig::SaliencyMix(sm(
                DetectorChoice::SpectralResidualDevice,
                BoxScope::Batch,
            )))?,
            None,
        ),
        (
            "saliencymix per-sample, spectral-residual-device",
            aug(AugmentationConfig::SaliencyMix(sm(
                DetectorChoice::SpectralResidualDevice,
                BoxScope::PerSample,
            )))?,
            None,
        ),
        (
            "salfmix",
            aug(AugmentationConfig::SalfMix(SalfMixConfig::default()))?,
            Some([h, w]),
        ),
        (
            "hybridmix v3",
            aug(AugmentationConfig::HybridMix(HybridMixConfig::new(
                PairConfig::CutMix(CutMixConfig {
                    prob: 1.0,
                    ..Default::default()
                }),
            )))?,
            Some([h, w]),
        ),
        (
            "saliency-grafting",
            aug(AugmentationConfig::SaliencyGrafting(
                SaliencyGraftingConfig {
                    with_original: false,
                    ..Default::default()
                },
            ))?,
            Some(feature_grid),
        ),
    ])
}

#[derive(Deserialize)]
struct TimmRow {
    method: String,
    shape: [usize; 4],
    us: Vec<f64>,
    torch: String,
    timm: String,
    threads: usize,
}

pub fn run(args: MixingBench) -> Result<()> {
    ensure!(args.iters > 0, "--iters must be positive");
    if measure::rerun_with_env(&measure::malloc_env(!args.default_malloc))? {
        return Ok(());
    }
    let device = Device::flex();
    let threads = measure::threads();
    println!("# Mixing benchmark: burn flex vs timm Mixup on PyTorch CPU, {threads} threads");
    println!("allocator (both sides): {}", measure::malloc_settings());
    println!("load average at start: {}", measure::load_average());

    let timm = if args.no_peer {
        Vec::new()
    } else {
        let env = PyEnv::torch()?;
        let out = env.run_script(
            include_str!("mixing_timm.py"),
            &[
                threads.to_string(),
                args.warmup.to_string(),
                args.iters.to_string(),
                serde_json::to_string(&SHAPES)?,
            ],
        )?;
        out.lines()
            .map(|l| serde_json::from_str::<TimmRow>(l).with_context(|| format!("peer line {l:?}")))
            .collect::<Result<Vec<_>>>()?
    };
    if let Some(row) = timm.first() {
        println!(
            "peer: torch {}, timm {}, {} threads",
            row.torch, row.timm, row.threads
        );
    }
    let timm_stats = |method: &str, shape: [usize; 4]| {
        timm.iter()
            .find(|r| r.method == method && r.shape == shape)
            .map(|r| Summary::of(&r.us))
    };

    for shape in SHAPES {
        let [n, c, h, w] = shape;
        let iters = if h > 64 {
            (args.iters / 10).max(10)
        } else {
            args.iters
        };
        let warmup = if h > 64 {
            args.warmup.min(3)
        } else {
            args.warmup
        };
        let data = Data::new(shape, &device);
        println!("\n## {n}x{c}x{h}x{w} ({iters} timed calls each, median (p10-p90))\n");
        println!("| method | burn (flex) | timm | burn / timm |");
        println!("|---|---|---|---|");
        let mut calls = std::collections::HashMap::new();
        for (label, mixer, grid) in mixers(shape)? {
            let saliency = grid.map(|[r, c]| data.saliency(r, c, &device));
            let us = time_mixer(mixer.as_ref(), &data, saliency, warmup, iters, &device)?;
            let stats = Summary::of(&us);
            calls.insert(label, us);
            let peer = match label {
                "mixup" | "cutmix" => timm_stats(label, shape),
                _ => None,
            };
            match peer {
                Some(p) => println!(
                    "| {label} | {} | {} | {:.2} |",
                    show(&stats),
                    show(&p),
                    stats.median / p.median
                ),
                None => println!("| {label} | {} | - | - |", show(&stats)),
            }
        }

        // Detectors alone: one host call, the whole batch on the host, the whole batch on the
        // device.
        let per = c * h * w;
        let first = ImageView::chw_u8(&data.u8_pixels[..per], c, h, w)?;
        let fine = HostDetector::named("fine-grained", HostInput::U8)?;
        let fg_one = time_call(warmup, iters, || {
            fine.detector.compute(&first)?;
            Ok(())
        })?;
        let views: Vec<ImageView<'_>> = data
            .u8_pixels
            .chunks(per)
            .map(|p| ImageView::chw_u8(p, c, h, w))
            .collect::<Result<_, _>>()?;
        let sr = sal_saliency::SpectralResidual::default();
        let sr_one = time_call(warmup, iters, || {
            sr.compute(&first)?;
            Ok(())
        })?;
        let sr_host = time_call(warmup, iters, || {
            compute_batch(&sr, &views)?;
            Ok(())
        })?;
        let fg_host = time_call(warmup, iters, || {
            compute_batch(fine.detector.as_ref(), &views)?;
            Ok(())
        })?;
        let u8_values: Vec<f32> = data.u8_pixels.iter().map(|&v| v as f32).collect();
        let u8_tensor = Tensor::<4>::from_data(TensorData::new(u8_values, shape), &device);
        let sr_device = time_call(warmup, iters, || {
            let maps = spectral_residual(u8_tensor.clone());
            device.sync()?;
            drop(maps);
            Ok(())
        })?;
        println!(
            "| fine-grained, 1 image (host) | {} | - | - |",
            show(&fg_one)
        );
        println!(
            "| fine-grained, {n} images (host, parallel) | {} | - | - |",
            show(&fg_host)
        );
        println!(
            "| spectral residual, 1 image (host) | {} | - | - |",
            show(&sr_one)
        );
        println!(
            "| spectral residual, {n} images (host, parallel) | {} | - | - |",
            show(&sr_host)
        );
        println!(
            "| spectral residual, {n} images (device, flex) | {} | - | - |",
            show(&sr_device)
        );

        println!();
        let median = |label: &str| measure::median(&calls[label]);
        // Call i of both mixers drew the same lambda (box size): compare call by call.
        let paired: Vec<f64> = calls["saliencymix batch, fine-grained"]
            .iter()
            .zip(&calls["cutmix"])
            .map(|(s, c)| s - c)
            .collect();
        let overhead = measure::median(&paired) - fg_one.median;
        println!(
            "SaliencyMix batch scope: {} vs CutMix {} plus one detector call {}; median paired \
             overhead beyond the detector call {} (target: within 0.2 ms) -> {}",
            human(median("saliencymix batch, fine-grained")),
            human(median("cutmix")),
            human(fg_one.median),
            human(overhead),
            if overhead <= 200.0 { "met" } else { "MISSED" }
        );
        if h == 32 {
            let per_sample = median("saliencymix per-sample, fine-grained");
            println!(
                "SaliencyMix per-sample scope at {n}x{c}x{h}x{w}: {} on {threads} threads \
                 (target: under 2 ms) -> {}",
                human(per_sample),
                if per_sample < 2000.0 { "met" } else { "MISSED" }
            );
        }
        for method in ["mixup", "cutmix"] {
            if let Some(p) = timm_stats(method, shape) {
                let ours = median(method);
                println!(
                    "{method}: burn {} vs timm {}: ratio {:.2} (target: <= 1) -> {}",
                    human(ours),
                    human(p.median),
                    ours / p.median,
                    if ours <= p.median { "met" } else { "MISSED" }
                );
            }
        }
        println!(
            "spectral residual on the device vs the host detector over the batch: {} vs {} \
             (ratio {:.2})",
            human(sr_device.median),
            human(sr_host.median),
            sr_device.median / sr_host.median
        );
    }
    println!("\nload average at end: {}", measure::load_average());
    Ok(())
}
