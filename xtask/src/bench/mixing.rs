//! `cargo xtask bench mixing`: every sal-core mixer per batch on burn's CPU backend (flex), and
//! timm's `Mixup` (batch mode, mixup and cutmix) on PyTorch CPU in the same run, at
//! 128x3x32x32 and 64x3x224x224.
//!
//! Both sides time one call on a fresh copy of the batch (copied outside the timer, so an
//! implementation may work in place, as timm does), covering the image mixing and the soft
//! targets; burn's side also waits for the device (`Device::sync`). The report gives the median
//! and the 10th-90th percentile range of the timed calls, the burn/timm ratios, and this bench's
//! targets: Mixup and CutMix no slower than timm; SaliencyMix's batch scope within 0.2 ms of
//! CutMix plus one detector call; its per-sample scope at 128x3x32x32 under 2 ms. Both sides use
//! the same number of threads: `RAYON_NUM_THREADS` if set (flex's rayon pool reads it), else
//! every core. Both run with glibc's allocator in its steady state (`measure::STEADY_MALLOC`)
//! unless `--default-malloc`.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Args;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sal_core::detector::{HostDetector, HostInput};
use sal_core::seed::step_rng;
use sal_core::{
    AugmentationConfig, BatchMixer, BoxScope, CutMixConfig, CutoutConfig, DetectorChoice,
    HybridMixConfig, KnownNormalization, MixBatch, MixupConfig, PairConfig, ResizeMixConfig,
    SalfMixConfig, SaliencyGraftingConfig, SaliencyMixConfig, spectral_residual,
};
use sal_saliency::{ImageView, StaticSaliency, compute_batch};
use serde::Deserialize;

use super::measure::{self, Summary, verdict};
use crate::pyenv::PyEnv;

/// The batch shapes: CIFAR-sized and ImageNet-sized.
const SHAPES: [[usize; 4]; 2] = [[128, 3, 32, 32], [64, 3, 224, 224]];
const CLASSES: usize = 10;
/// Seed of the random model-saliency stand-in.
const SALIENCY_SEED: u64 = 1;

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
    /// Keep glibc's default allocator settings instead of its steady state (both sides).
    #[arg(long)]
    default_malloc: bool,
}

impl MixingBench {
    /// Untimed and timed calls per case at `shape`: fewer for the large images.
    fn calls(&self, [_, _, h, _]: [usize; 4]) -> (usize, usize) {
        if h > 64 {
            (self.warmup.min(3), (self.iters / 10).max(10))
        } else {
            (self.warmup, self.iters)
        }
    }
}

/// Microseconds, in the unit that reads best.
fn human(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} us")
    }
}

/// `median (p10-p90)` of timings in microseconds.
fn show(s: &Summary) -> String {
    format!("{} ({}-{})", human(s.median), human(s.p10), human(s.p90))
}

/// One random batch: u8 pixels normalised with the CIFAR statistics (so a u8 detector's
/// de-normalisation recovers them), labels, and a model-saliency stand-in of any grid size.
struct Data {
    shape: [usize; 4],
    pixels: TensorData,
    u8_pixels: Vec<u8>,
    labels: Tensor<1, Int>,
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
        }
    }

    fn saliency(&self, rows: usize, cols: usize, device: &Device) -> Tensor<3> {
        let n = self.shape[0];
        let mut rng = StdRng::seed_from_u64(SALIENCY_SEED);
        let v: Vec<f32> = (0..n * rows * cols).map(|_| rng.random()).collect();
        Tensor::from_data(TensorData::new(v, [n, rows, cols]), device)
    }

    /// The batch as host images (u8, CHW), one view per sample.
    fn views(&self) -> Result<Vec<ImageView<'_>>> {
        let [_, c, h, w] = self.shape;
        Ok(self
            .u8_pixels
            .chunks(c * h * w)
            .map(|p| ImageView::chw_u8(p, c, h, w))
            .collect::<Result<_, _>>()?)
    }
}

/// Times `mixer` on fresh copies of the batch; returns each call's microseconds in call order
/// (call `i` uses the stream of step `i`, so two mixers' calls pair up by lambda).
fn time_mixer(
    mixer: &dyn BatchMixer,
    data: &Data,
    saliency: Option<Tensor<3>>,
    (warmup, iters): (usize, usize),
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

/// Times a closure (detector calls), in microseconds; its output is dropped inside the timer.
fn time_call<T, E>(
    (warmup, iters): (usize, usize),
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<Summary>
where
    anyhow::Error: From<E>,
{
    let mut us = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let start = Instant::now();
        drop(f()?);
        let elapsed = start.elapsed().as_secs_f64() * 1e6;
        if i >= warmup {
            us.push(elapsed);
        }
    }
    Ok(Summary::of(&us))
}

/// A report row: label, mixer, and the model-saliency grid it needs (if any).
type Row = (&'static str, Box<dyn BatchMixer>, Option<[usize; 2]>);

/// The mixers of the report, every one applied with probability 1.
fn mixers([_, _, h, w]: [usize; 4]) -> Result<Vec<Row>> {
    use AugmentationConfig as A;
    use BoxScope::{Batch, PerSample};
    use DetectorChoice::{FineGrained, SpectralResidualDevice};
    let cutmix = CutMixConfig {
        prob: 1.0,
        ..Default::default()
    };
    let saliencymix = |detector, scope| {
        A::SaliencyMix(SaliencyMixConfig {
            detector,
            scope,
            prob: 1.0,
            ..Default::default()
        })
    };
    let grafting = SaliencyGraftingConfig {
        with_original: false,
        ..Default::default()
    };
    let image_grid = Some([h, w]);
    let feature_grid = Some(if h >= 64 { [7, 7] } else { [8, 8] });
    let rows = [
        ("mixup", A::Mixup(MixupConfig::default()), None),
        ("cutmix", A::CutMix(cutmix.clone()), None),
        ("cutout", A::Cutout(CutoutConfig::default()), None),
        ("resizemix", A::ResizeMix(ResizeMixConfig::default()), None),
        (
            "saliencymix batch, fine-grained",
            saliencymix(FineGrained, Batch),
            None,
        ),
        (
            "saliencymix per-sample, fine-grained",
            saliencymix(FineGrained, PerSample),
            None,
        ),
        (
            "saliencymix batch, spectral-residual-device",
            saliencymix(SpectralResidualDevice, Batch),
            None,
        ),
        (
            "saliencymix per-sample, spectral-residual-device",
            saliencymix(SpectralResidualDevice, PerSample),
            None,
        ),
        ("salfmix", A::SalfMix(SalfMixConfig::default()), image_grid),
        (
            "hybridmix v3",
            A::HybridMix(HybridMixConfig::new(PairConfig::CutMix(cutmix))),
            image_grid,
        ),
        (
            "saliency-grafting",
            A::SaliencyGrafting(grafting),
            feature_grid,
        ),
    ];
    let norm = KnownNormalization::Cifar.normalization();
    rows.into_iter()
        .map(|(label, config, grid)| Ok((label, config.init(0, Some(&norm))?.into_mixer(), grid)))
        .collect()
}

/// timm's timings of one method at one shape, as `mixing_timm.py` prints them.
#[derive(Deserialize)]
struct TimmRow {
    method: String,
    shape: [usize; 4],
    us: Vec<f64>,
    torch: String,
    timm: String,
    threads: usize,
}

/// timm's side of the report: empty with `--no-peer`.
struct Timm(Vec<TimmRow>);

impl Timm {
    /// Runs `mixing_timm.py` over every shape and prints the peer's versions.
    fn time(args: &MixingBench, threads: usize) -> Result<Self> {
        if args.no_peer {
            return Ok(Self(Vec::new()));
        }
        let out = PyEnv::torch()?.run_script(
            include_str!("mixing_timm.py"),
            &[
                threads.to_string(),
                args.warmup.to_string(),
                args.iters.to_string(),
                serde_json::to_string(&SHAPES)?,
            ],
        )?;
        let rows = out
            .lines()
            .map(|l| serde_json::from_str::<TimmRow>(l).with_context(|| format!("peer line {l:?}")))
            .collect::<Result<Vec<_>>>()?;
        if let Some(row) = rows.first() {
            println!(
                "peer: torch {}, timm {}, {} threads",
                row.torch, row.timm, row.threads
            );
        }
        Ok(Self(rows))
    }

    /// timm's timings of `method` ("mixup" or "cutmix") at `shape`, if the peer ran.
    fn stats(&self, method: &str, shape: [usize; 4]) -> Option<Summary> {
        self.0
            .iter()
            .find(|r| r.method == method && r.shape == shape)
            .map(|r| Summary::of(&r.us))
    }
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
    let timm = Timm::time(&args, threads)?;
    for shape in SHAPES {
        bench_shape(shape, args.calls(shape), &timm, threads, &device)?;
    }
    println!("\nload average at end: {}", measure::load_average());
    Ok(())
}

/// The table and the target checks of one batch shape.
fn bench_shape(
    shape: [usize; 4],
    calls: (usize, usize),
    timm: &Timm,
    threads: usize,
    device: &Device,
) -> Result<()> {
    let [n, c, h, w] = shape;
    let data = Data::new(shape, device);
    println!(
        "\n## {n}x{c}x{h}x{w} ({} timed calls each, median (p10-p90))\n",
        calls.1
    );
    println!("| method | burn (flex) | timm | burn / timm |");
    println!("|---|---|---|---|");
    let mixers = time_mixers(&data, calls, timm, device)?;
    let detectors = Detectors::time(&data, calls, device)?;
    detectors.print(n);
    println!();
    print_saliencymix_targets(shape, &mixers, &detectors, threads);
    print_timm_targets(shape, &mixers, timm);
    println!(
        "spectral residual on the device vs the host detector over the batch: {} vs {} \
         (ratio {:.2})",
        human(detectors.sr_device.median),
        human(detectors.sr_host.median),
        detectors.sr_device.median / detectors.sr_host.median
    );
    Ok(())
}

/// Times every mixer, prints its row, and returns each mixer's call times by label.
fn time_mixers(
    data: &Data,
    calls: (usize, usize),
    timm: &Timm,
    device: &Device,
) -> Result<HashMap<&'static str, Vec<f64>>> {
    let mut times = HashMap::new();
    for (label, mixer, grid) in mixers(data.shape)? {
        let saliency = grid.map(|[r, c]| data.saliency(r, c, device));
        let us = time_mixer(mixer.as_ref(), data, saliency, calls, device)?;
        let stats = Summary::of(&us);
        times.insert(label, us);
        let peer = match label {
            "mixup" | "cutmix" => timm.stats(label, data.shape),
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
    Ok(times)
}

/// The detectors alone: one host call, the whole batch on the host (in parallel), the whole
/// batch on the device.
struct Detectors {
    fg_one: Summary,
    fg_host: Summary,
    sr_one: Summary,
    sr_host: Summary,
    sr_device: Summary,
}

impl Detectors {
    fn time(data: &Data, calls: (usize, usize), device: &Device) -> Result<Self> {
        let views = data.views()?;
        let first = &views[0];
        let fine = HostDetector::named("fine-grained", HostInput::U8)?;
        let fine = fine.detector.as_ref();
        let sr = sal_saliency::SpectralResidual::default();
        let u8_values: Vec<f32> = data.u8_pixels.iter().map(|&v| v as f32).collect();
        let u8_tensor = Tensor::<4>::from_data(TensorData::new(u8_values, data.shape), device);
        Ok(Self {
            fg_one: time_call(calls, || fine.compute(first))?,
            sr_one: time_call(calls, || sr.compute(first))?,
            sr_host: time_call(calls, || compute_batch(&sr, &views))?,
            fg_host: time_call(calls, || compute_batch(fine, &views))?,
            sr_device: time_call(calls, || -> Result<_> {
                let maps = spectral_residual(u8_tensor.clone());
                device.sync()?;
                Ok(maps)
            })?,
        })
    }

    fn print(&self, n: usize) {
        let rows = [
            ("fine-grained, 1 image (host)".to_string(), &self.fg_one),
            (
                format!("fine-grained, {n} images (host, parallel)"),
                &self.fg_host,
            ),
            (
                "spectral residual, 1 image (host)".to_string(),
                &self.sr_one,
            ),
            (
                format!("spectral residual, {n} images (host, parallel)"),
                &self.sr_host,
            ),
            (
                format!("spectral residual, {n} images (device, flex)"),
                &self.sr_device,
            ),
        ];
        for (label, stats) in rows {
            println!("| {label} | {} | - | - |", show(stats));
        }
    }
}

/// SaliencyMix's targets: the batch scope within 0.2 ms of CutMix plus one detector call, the
/// per-sample scope at 32x32 under 2 ms.
fn print_saliencymix_targets(
    [n, c, h, w]: [usize; 4],
    mixers: &HashMap<&'static str, Vec<f64>>,
    detectors: &Detectors,
    threads: usize,
) {
    let median = |label: &str| measure::median(&mixers[label]);
    // Call i of both mixers drew the same lambda (box size): compare call by call.
    let paired: Vec<f64> = mixers["saliencymix batch, fine-grained"]
        .iter()
        .zip(&mixers["cutmix"])
        .map(|(s, c)| s - c)
        .collect();
    let overhead = measure::median(&paired) - detectors.fg_one.median;
    println!(
        "SaliencyMix batch scope: {} vs CutMix {} plus one detector call {}; median paired \
         overhead beyond the detector call {} (target: within 0.2 ms) -> {}",
        human(median("saliencymix batch, fine-grained")),
        human(median("cutmix")),
        human(detectors.fg_one.median),
        human(overhead),
        verdict(overhead <= 200.0)
    );
    if h == 32 {
        let per_sample = median("saliencymix per-sample, fine-grained");
        println!(
            "SaliencyMix per-sample scope at {n}x{c}x{h}x{w}: {} on {threads} threads \
             (target: under 2 ms) -> {}",
            human(per_sample),
            verdict(per_sample < 2000.0)
        );
    }
}

/// Mixup's and CutMix's target: no slower than timm's (when the peer ran).
fn print_timm_targets(shape: [usize; 4], mixers: &HashMap<&'static str, Vec<f64>>, timm: &Timm) {
    for method in ["mixup", "cutmix"] {
        if let Some(p) = timm.stats(method, shape) {
            let ours = measure::median(&mixers[method]);
            println!(
                "{method}: burn {} vs timm {}: ratio {:.2} (target: <= 1) -> {}",
                human(ours),
                human(p.median),
                ours / p.median,
                verdict(ours <= p.median)
            );
        }
    }
}
