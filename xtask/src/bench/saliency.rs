//! `cargo xtask bench saliency`: the Rust detectors against OpenCV 4.10 (opencv-contrib-python
//! in a virtual environment the bench creates) on the same real images, in the same run.
//!
//! - Per image: the median time of one call at 32x32 and 224x224, single-threaded on both sides
//!   (Rust calls the detector on the main thread, which never spawns threads; OpenCV runs with
//!   `cv2.setNumThreads(1)` and is timed through its Python binding, the way SaliencyMix calls
//!   it). The report checks this bench's targets: OpenCV time / Rust time at least 2 for the
//!   fine-grained detector, at least 1 for spectral residual.
//! - Batch throughput on all cores: Rust's `compute_batch` (rayon, one worker per core) against
//!   OpenCV in a Python thread pool of one thread per core (the binding releases the GIL).
//! - Before timing, both sides' maps are compared (fine-grained: bit for bit; spectral residual:
//!   max |diff| <= 1e-6), on the timed images and on generated images of other sizes and channel
//!   counts, plus Wang & Dudek's motion masks on a generated sequence: a speed comparison of
//!   different outputs would be meaningless.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use sal_saliency::npy::{self, NpyArray, NpyData};
use sal_saliency::{
    ImageView, Normalization, StaticSaliency, WangDudek, compute_batch, static_detector,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::measure;
use crate::pyenv::{PyEnv, workspace_root};

const METHODS: [&str; 2] = ["fine-grained", "spectral-residual"];
const SIZES: [usize; 2] = [32, 224];
/// This bench's targets, per method: OpenCV time / Rust time per image at least this.
const TARGETS: [f64; 2] = [2.0, 1.0];

/// Options of `cargo xtask bench saliency`.
#[derive(Args)]
pub struct SaliencyBench {
    /// Timed calls per 32x32 image (after one warm-up call).
    #[arg(long, default_value_t = 400)]
    repeats32: usize,
    /// Timed calls per 224x224 image.
    #[arg(long, default_value_t = 50)]
    repeats224: usize,
    /// Images per batch at 32x32 (224x224 batches are a sixteenth of it).
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Timed batches per configuration (the median is reported).
    #[arg(long, default_value_t = 5)]
    batch_runs: usize,
    /// Run both sides with glibc's allocator in its steady state (no trimming, large mmap
    /// threshold) instead of its defaults.
    #[arg(long)]
    steady_malloc: bool,
}

impl SaliencyBench {
    fn check(&self) -> Result<()> {
        ensure!(
            self.repeats32 > 0 && self.repeats224 > 0 && self.batch > 0 && self.batch_runs > 0,
            "--repeats32, --repeats224, --batch and --batch-runs must be positive"
        );
        Ok(())
    }

    fn repeats(&self, size: usize) -> usize {
        if size == 32 {
            self.repeats32
        } else {
            self.repeats224
        }
    }

    fn batch_len(&self, size: usize) -> usize {
        if size == 32 {
            self.batch
        } else {
            (self.batch / 16).max(1)
        }
    }
}

/// The real photos and CIFAR images of `tests/fixtures/saliency` at one size (the synthetic
/// `edge_*` cases are left out of the timing).
struct Images {
    size: usize,
    paths: Vec<PathBuf>,
    pixels: Vec<Vec<u8>>,
}

impl Images {
    fn views(&self) -> Vec<ImageView<'_>> {
        self.pixels
            .iter()
            .map(|p| ImageView::hwc_u8(p, self.size, self.size, 3).expect("fixture image"))
            .collect()
    }
}

fn load_images(size: usize) -> Result<Images> {
    let root = workspace_root().join("tests/fixtures/saliency");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("listing {} (the test fixtures)", root.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    cases.sort();
    let mut images = Images {
        size,
        paths: Vec::new(),
        pixels: Vec::new(),
    };
    for case in cases {
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("edge_") || !name.ends_with(&format!("_{size}")) {
            continue;
        }
        let path = case.join("input_u8.npy");
        let a = npy::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let NpyData::U8(px) = a.data else {
            bail!("{}: expected uint8", path.display());
        };
        ensure!(
            a.shape == [size, size, 3],
            "{}: unexpected shape",
            path.display()
        );
        images.paths.push(path);
        images.pixels.push(px);
    }
    ensure!(
        !images.paths.is_empty(),
        "no {size}x{size} images in {}",
        root.display()
    );
    Ok(images)
}

/// Median of one call over every image, `repeats` calls each, after one warm-up call per image.
fn median_per_image(detector: &dyn StaticSaliency, views: &[ImageView<'_>], repeats: usize) -> f64 {
    let mut times = Vec::with_capacity(views.len() * repeats);
    for v in views {
        std::hint::black_box(detector.compute(v).expect("fixture image"));
        for _ in 0..repeats {
            let t = Instant::now();
            std::hint::black_box(detector.compute(v).expect("fixture image"));
            times.push(t.elapsed().as_secs_f64());
        }
    }
    measure::median(&times)
}

/// Images per second of `compute_batch` on a batch of `len` images (cycling through `views`).
fn batch_throughput(
    detector: &dyn StaticSaliency,
    views: &[ImageView<'_>],
    len: usize,
    runs: usize,
) -> f64 {
    let batch: Vec<ImageView<'_>> = views.iter().cycle().take(len).copied().collect();
    std::hint::black_box(compute_batch(detector, &batch).expect("fixture images"));
    let times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(compute_batch(detector, &batch).expect("fixture images"));
            t.elapsed().as_secs_f64()
        })
        .collect();
    len as f64 / measure::median(&times)
}

/// What `saliency_opencv.py` prints: its version, its batch threads, and per `method/size` the
/// median seconds of one call and the batch throughput in images per second.
#[derive(Deserialize)]
struct OpenCv {
    opencv: String,
    threads: usize,
    single: HashMap<String, f64>,
    batch: HashMap<String, f64>,
}

impl OpenCv {
    fn single(&self, method: &str, size: usize) -> Result<f64> {
        let key = format!("{method}/{size}");
        self.single
            .get(&key)
            .copied()
            .with_context(|| format!("OpenCV printed no timing for {key}"))
    }

    fn batch(&self, method: &str, size: usize) -> Result<f64> {
        let key = format!("{method}/{size}");
        self.batch
            .get(&key)
            .copied()
            .with_context(|| format!("OpenCV printed no batch throughput for {key}"))
    }
}

/// Where the bench writes: OpenCV's maps of the timed images, and the agreement-check cases.
struct Dirs {
    out: PathBuf,
    check: PathBuf,
}

pub fn run(args: SaliencyBench) -> Result<()> {
    args.check()?;
    if measure::rerun_with_env(&measure::malloc_env(args.steady_malloc))? {
        return Ok(());
    }
    let images: Vec<Images> = SIZES
        .iter()
        .map(|&s| load_images(s))
        .collect::<Result<_>>()?;
    let out = workspace_root().join("target/bench-saliency");
    let dirs = Dirs {
        check: out.join("check"),
        out,
    };
    std::fs::create_dir_all(&dirs.out)
        .with_context(|| format!("creating {}", dirs.out.display()))?;
    let check_images = write_check_cases(&dirs.check)?;

    eprintln!("timing OpenCV ...");
    let opencv = time_opencv(&args, &images, &dirs, check_images)?;
    eprintln!("checking that the outputs agree ...");
    for im in &images {
        agree(&dirs.out, im)?;
    }
    agree_on_check_cases(&dirs.check, check_images)?;

    eprintln!("timing Rust ...");
    println!(
        "\nSaliency detectors: Rust sal-saliency vs OpenCV {} (opencv-contrib-python), same images",
        opencv.opencv
    );
    println!("allocator (both sides): {}", measure::malloc_settings());
    print_per_image(&args, &images, &opencv)?;
    print_batches(&args, &images, &opencv)?;
    println!(
        "\n{} logical cores. Timings on a shared machine are noisy: repeat the run and compare.",
        measure::cores()
    );
    Ok(())
}

/// Runs the OpenCV side on the same images and check cases; it saves its maps under `dirs`.
fn time_opencv(
    args: &SaliencyBench,
    images: &[Images],
    dirs: &Dirs,
    check_images: usize,
) -> Result<OpenCv> {
    let sizes: serde_json::Map<String, Value> = images
        .iter()
        .map(|im| {
            let spec = json!({
                "paths": im.paths,
                "repeats": args.repeats(im.size),
                "batch": args.batch_len(im.size),
            });
            (im.size.to_string(), spec)
        })
        .collect();
    let config = json!({
        "sizes": sizes,
        "methods": METHODS,
        "out_dir": dirs.out,
        "batch_runs": args.batch_runs,
        "check": { "dir": dirs.check, "images": check_images },
    });
    let out =
        PyEnv::opencv()?.run_script(include_str!("saliency_opencv.py"), &[config.to_string()])?;
    serde_json::from_str(out.trim()).context("parsing the OpenCV script's output")
}

/// Times each detector per image, single-threaded, and prints it beside OpenCV's time and the
/// target.
fn print_per_image(args: &SaliencyBench, images: &[Images], opencv: &OpenCv) -> Result<()> {
    println!(
        "Per image, single-threaded (Rust: one thread; OpenCV: cv2.setNumThreads(1)), median:"
    );
    println!(
        "{:<19} {:>8} {:>11} {:>11} {:>9} {:>8}",
        "method", "size", "Rust ms", "OpenCV ms", "speed-up", "target"
    );
    for (method, target) in METHODS.iter().zip(TARGETS) {
        let detector = static_detector(method)?;
        for im in images {
            let rust = median_per_image(detector.as_ref(), &im.views(), args.repeats(im.size));
            let cv = opencv.single(method, im.size)?;
            let ratio = cv / rust;
            println!(
                "{:<19} {:>8} {:>11.4} {:>11.4} {:>8.2}x {:>5}{:.0}x {}",
                method,
                format!("{0}x{0}", im.size),
                rust * 1e3,
                cv * 1e3,
                ratio,
                ">=",
                target,
                if ratio >= target { "met" } else { "MISSED" }
            );
        }
    }
    Ok(())
}

/// Times each detector's batch throughput on all cores and prints it beside OpenCV's.
fn print_batches(args: &SaliencyBench, images: &[Images], opencv: &OpenCv) -> Result<()> {
    println!(
        "\nBatch throughput on all cores (Rust: compute_batch, {} rayon threads; OpenCV: {} Python threads):",
        measure::threads(),
        opencv.threads
    );
    println!(
        "{:<19} {:>8} {:>7} {:>13} {:>13} {:>8}",
        "method", "size", "batch", "Rust img/s", "OpenCV img/s", "ratio"
    );
    for method in METHODS {
        let detector = static_detector(method)?;
        for im in images {
            let len = args.batch_len(im.size);
            let rust = batch_throughput(detector.as_ref(), &im.views(), len, args.batch_runs);
            let cv = opencv.batch(method, im.size)?;
            println!(
                "{:<19} {:>8} {:>7} {:>13.0} {:>13.0} {:>7.2}x",
                method,
                format!("{0}x{0}", im.size),
                len,
                rust,
                cv,
                rust / cv
            );
        }
    }
    Ok(())
}

/// Compares OpenCV's saved maps with the Rust maps of the same images.
fn agree(out_dir: &Path, im: &Images) -> Result<()> {
    for method in METHODS {
        let detector = static_detector(method)?;
        let mut worst = 0f32;
        for (i, view) in im.views().iter().enumerate() {
            let path = out_dir.join(format!("{method}_{}_{i}.npy", im.size));
            let cv = npy::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let NpyData::F32(cv) = cv.data else {
                bail!("{}: expected float32", path.display());
            };
            let ours = detector.compute(view)?;
            let diff = max_abs_diff(&ours.data, &cv);
            worst = worst.max(diff);
            let allowed = if method == "fine-grained" { 0.0 } else { 1e-6 };
            ensure!(
                ours.data.len() == cv.len() && diff <= allowed,
                "{method} differs from OpenCV on {} (max |diff| {diff:e})",
                im.paths[i].display()
            );
        }
        eprintln!(
            "  {method} {0}x{0}: {1} images, max |diff| vs OpenCV {worst:e}",
            im.size,
            im.paths.len()
        );
    }
    Ok(())
}

/// Sizes and channel counts the fixtures do not cover, including degenerate ones.
const CHECK_SIZES: [(usize, usize); 10] = [
    (1, 1),
    (1, 7),
    (7, 1),
    (3, 5),
    (31, 33),
    (64, 64),
    (100, 37),
    (17, 500),
    (300, 200),
    (600, 400),
];

/// A fixed pseudo-random byte sequence (64-bit LCG), so every run checks the same images.
fn lcg_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

/// Writes the agreement-check inputs under `dir`: the images of [`write_check_images`] and the
/// sequence of [`write_check_frames`]. Returns the number of images.
fn write_check_cases(dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let images = write_check_images(dir)?;
    write_check_frames(dir)?;
    Ok(images)
}

/// For each of [`CHECK_SIZES`], 1- and 3-channel images, noisy and smooth (`img_{i}.npy`, and
/// `imgf_{i}.npy` normalised as the paper-code path expects). Returns the number of images.
fn write_check_images(dir: &Path) -> Result<usize> {
    let mut i = 0;
    for (h, w) in CHECK_SIZES {
        for channels in [1usize, 3] {
            for smooth in [false, true] {
                let mut px = lcg_bytes(i as u64 + 1, h * w * channels);
                if smooth {
                    px = smoothed(&px, channels);
                }
                let shape = if channels == 1 {
                    vec![h, w]
                } else {
                    vec![h, w, 3]
                };
                let normalised = Normalization {
                    mean: vec![0.45; channels],
                    std: vec![0.25; channels],
                }
                .normalise_interleaved(&px, channels);
                npy::write(
                    dir.join(format!("img_{i}.npy")),
                    &NpyArray::new(shape.clone(), NpyData::U8(px))?,
                )?;
                npy::write(
                    dir.join(format!("imgf_{i}.npy")),
                    &NpyArray::new(shape, NpyData::F32(normalised))?,
                )?;
                i += 1;
            }
        }
    }
    Ok(i)
}

/// Each value averaged over a 9-pixel run of the same channel: smooth, photo-like ramps. (Within
/// the first 4 pixels the run starts at the buffer's first value, whatever its channel.)
fn smoothed(px: &[u8], channels: usize) -> Vec<u8> {
    (0..px.len())
        .map(|k| {
            let lo = k.saturating_sub(4 * channels);
            let taps: Vec<u32> = px[lo..(k + 4 * channels + 1).min(px.len())]
                .iter()
                .step_by(channels)
                .map(|&v| v as u32)
                .collect();
            (taps.iter().sum::<u32>() / taps.len() as u32) as u8
        })
        .collect()
}

/// A 300-frame grey sequence (`frames.npy`) with a moving square, noise and a brightness step,
/// for Wang & Dudek.
fn write_check_frames(dir: &Path) -> Result<()> {
    let (t, h, w) = (300, 37, 50);
    let background = lcg_bytes(99, h * w);
    let noise = lcg_bytes(7, t * h * w);
    let mut frames = Vec::with_capacity(t * h * w);
    for f in 0..t {
        let (r0, c0) = (5 + (f / 40) % 20, (f * 7 / 10) % (w - 6));
        for y in 0..h {
            for x in 0..w {
                let base = if (r0..r0 + 6).contains(&y) && (c0..c0 + 6).contains(&x) {
                    230
                } else {
                    background[y * w + x] as i32 / 2 + 60 + if f > 150 { 25 } else { 0 }
                };
                let n = noise[(f * h + y) * w + x] as i32 % 7 - 3;
                frames.push((base + n).clamp(0, 255) as u8);
            }
        }
    }
    npy::write(
        dir.join("frames.npy"),
        &NpyArray::new(vec![t, h, w], NpyData::U8(frames))?,
    )?;
    Ok(())
}

/// Reads `name` from the check directory.
fn read_check(dir: &Path, name: &str) -> Result<NpyArray> {
    let path = dir.join(name);
    npy::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// Compares the Rust outputs on the check cases with OpenCV's: fine-grained (both paths) and
/// Wang & Dudek bit for bit, spectral residual to 1e-6.
fn agree_on_check_cases(dir: &Path, images: usize) -> Result<()> {
    let sr_worst = agree_on_check_images(dir, images)?;
    let [t, h, w] = agree_on_check_frames(dir)?;
    eprintln!(
        "  {images} odd-size check images (1x1 to 600x400, 1 and 3 channels): fine-grained and \
         paper-code bit-exact, spectral residual max |diff| {sr_worst:e}; wang-dudek: {t} frames \
         of {h}x{w} bit-exact"
    );
    Ok(())
}

/// The static detectors on the check images; returns spectral residual's largest difference.
fn agree_on_check_images(dir: &Path, images: usize) -> Result<f32> {
    let mut sr_worst = 0f32;
    for i in 0..images {
        let input = read_check(dir, &format!("img_{i}.npy"))?;
        let normalised = read_check(dir, &format!("imgf_{i}.npy"))?;
        let (h, w) = (input.shape[0], input.shape[1]);
        let c = input.shape.get(2).copied().unwrap_or(1);
        let (NpyData::U8(px), NpyData::F32(pf)) = (&input.data, &normalised.data) else {
            bail!("check image {i}: unexpected dtypes");
        };
        let u8_view = ImageView::hwc_u8(px, h, w, c)?;
        let f32_view = ImageView::hwc_f32(pf, h, w, c)?;
        for (method, view, file, tolerance) in [
            ("fine-grained", &u8_view, "cv_fg", 0.0),
            ("fine-grained-paper-code", &f32_view, "cv_fgp", 0.0),
            ("spectral-residual", &u8_view, "cv_sr", 1e-6),
        ] {
            let ours = static_detector(method)?.compute(view)?;
            let NpyData::F32(cv) = read_check(dir, &format!("{file}_{i}.npy"))?.data else {
                bail!("{file}_{i}.npy: expected float32");
            };
            let diff = max_abs_diff(&ours.data, &cv);
            ensure!(
                ours.data.len() == cv.len() && diff <= tolerance,
                "{method} differs from OpenCV on a {h}x{w}x{c} check image (max |diff| {diff:e})"
            );
            if method == "spectral-residual" {
                sr_worst = sr_worst.max(diff);
            }
        }
    }
    Ok(sr_worst)
}

/// Wang & Dudek's masks on the check sequence, frame by frame; returns its shape.
fn agree_on_check_frames(dir: &Path) -> Result<[usize; 3]> {
    let frames = read_check(dir, "frames.npy")?;
    let NpyData::U8(cv_masks) = read_check(dir, "cv_wd.npy")?.data else {
        bail!("cv_wd.npy: expected uint8");
    };
    let (NpyData::U8(px), &[t, h, w]) = (&frames.data, &frames.shape[..]) else {
        bail!("frames.npy: expected T x H x W uint8");
    };
    let mut detector = WangDudek::new(h, w)?;
    for f in 0..t {
        let mask = detector.push(&ImageView::hwc_u8(&px[f * h * w..][..h * w], h, w, 1)?)?;
        ensure!(
            mask.data == cv_masks[f * h * w..][..h * w],
            "wang-dudek differs from OpenCV at frame {f} of the check sequence"
        );
    }
    Ok([t, h, w])
}

/// The largest `|a - b|` over two maps' values.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_averages_a_run_of_the_same_channel() {
        assert_eq!(smoothed(&[0, 9, 0, 9, 0, 9], 1), vec![3, 4, 4, 4, 4, 5]);
        // Two channels: past the first window, each averages its own channel only.
        let px: Vec<u8> = [100, 0].repeat(10);
        let out = smoothed(&px, 2);
        assert!(out[8..].chunks(2).all(|p| p == [100, 0]));
    }

    #[test]
    fn lcg_bytes_are_fixed() {
        assert_eq!(lcg_bytes(1, 4), lcg_bytes(1, 4));
        assert_ne!(lcg_bytes(1, 4), lcg_bytes(2, 4));
    }
}
