//! A whole training run on the wgpu backend (Mesa's software renderer on a CPU-only machine)
//! through the same `train()` the CLI uses, against the same config on flex: the same initial
//! weights (drawn on the host from the seed), the same data order and mixing, so the two
//! metrics.csv files agree to within what float differences between the backends leave.
//! Evaluation (BatchNorm in inference mode), checkpoints and the second epoch included.
//!
//! # Why the run is two epochs of one batch at lr 0.01
//!
//! The backends compute the same thing in a different float order, so each op differs by
//! rounding (~1e-7 relative). That stays rounding through a forward pass, but not through
//! training: a ReLU whose input lies within rounding of zero passes its gradient on one
//! backend and blocks it on the other. Seen on a CIFAR ResNet-18 (width 4, batch 32): one such
//! element (pre-activation -2.9e-7 on flex, +9.0e-8 on wgpu) at the end of the last 8-channel
//! block changed that block's BN beta gradient by 1e-2 relative and every gradient below it by
//! ~3e-3, with burn's own ops on both backends as with ours; the layers above agreed to 1e-6.
//! (Fashion-MNIST's uniform background gives many positions one and the same pre-activation,
//! so there one rounding difference can flip a whole region at once.) SGD then amplifies the
//! gap step after step: on flex alone, moving half the initial weights by one ulp put per-step
//! losses 1e-2 to 8e-2 apart within 4 to 8 steps at lr 0.05 (momentum 0.9), as far apart as
//! flex and wgpu were. So no two backends agree closely over a longer run: this test's earlier
//! run (2 epochs of 8 batches at lr 0.05, seed 0) put flex and wgpu 11 points apart in epoch-1
//! test top-1 and 0.24 apart in epoch-2 test loss (CutMix), though both learned alike.
//!
//! With one batch per epoch the run makes two optimizer steps: the first sees identical
//! weights, so epoch 1 agrees to rounding; epoch 2 starts from weights one update apart. A
//! wgpu bug in the mixing, forward, backward, optimizer or evaluation shows beyond that: one
//! update at lr 0.01 moves the epoch-2 training loss by 1.2e-2 to 3.9e-2 (seeds 0 to 3, both
//! methods, against the same runs at lr 1e-6).
//!
//! Measured on GL/llvmpipe, seeds 0 to 47, both methods (192 epoch pairs): training losses at
//! most 6.6e-4 apart (epoch 1: 3e-6), test losses 4.4e-5; training top-1 and test top-5 never
//! differed, test top-1 once by one image (a near tie: an almost untrained network gives
//! almost equal logits; that epoch's losses agreed to 2e-6). On Vulkan/lavapipe (what CI
//! runs), seeds 0 to 15 (64 epoch pairs, 2026-12-06): training losses at most 3.8e-4 apart,
//! test losses 4.4e-5, no accuracy differed; the update moved every epoch-2 training loss by
//! at least 1.2e-2 (against the same run at lr 1e-6), 6x the tolerance. Tolerances: training
//! loss 2e-3 (3x the largest gap), test loss 5e-4 (11x), each accuracy one image (two flips in
//! one metric never happened, one once in 192). `measure_the_flex_wgpu_gaps` (ignored) repeats
//! the measurement, for a new adapter or a changed config.
//!
//! A run of "a few hundred images" does not give a tighter check. Measured on Vulkan/lavapipe,
//! 256 training images (8 steps an epoch) at lr 0.001, seeds 0 to 15: training losses up to
//! 4.9e-3 apart, test losses 7.9e-4, accuracies up to 3 images of 256 and 4 of 128 (top-5 near
//! ties), while training moved the epoch-2 training loss by as little as 1.6e-2 and the test
//! loss by 8.4e-5: a tolerance that passes the rounding would pass a wrong update too
//! (`WGPU_GAP_TRAIN_IMAGES=256 WGPU_GAP_LR=0.001 WGPU_GAP_SEEDS=16`).
#![cfg(feature = "wgpu")]

mod common;

use sal_train::metrics::{EpochMetrics, read_metrics};
use sal_train::{BackendKind, ExperimentConfig, TrainOptions};
use std::path::Path;

/// Images per batch; the training set is one batch, so every epoch is one optimizer step.
const BATCH_SIZE: usize = 32;
const TEST_IMAGES: usize = 128;
/// Largest allowed |flex - wgpu| of the epoch's training loss and of its test loss.
const TRAIN_LOSS_TOLERANCE: f64 = 2e-3;
const TEST_LOSS_TOLERANCE: f64 = 5e-4;

/// One image's worth of an accuracy over `images` images, in points (+ metrics.csv's rounding).
fn one_image(images: usize) -> f64 {
    100.0 / images as f64 + 1e-3
}

/// The run's shape: training images (a multiple of [`BATCH_SIZE`]) and learning rate.
#[derive(Clone, Copy)]
struct Shape {
    train_images: usize,
    lr: f64,
}

/// What the checks run: one batch, lr 0.01 (module docs).
const CHECKED: Shape = Shape {
    train_images: BATCH_SIZE,
    lr: 0.01,
};

fn run(method_table: &str, backend: BackendKind, seed: u64, shape: Shape) -> Vec<EpochMetrics> {
    let out = tempfile::tempdir().unwrap();
    let data = common::fashion_mnist();
    let text = format!(
        r#"
name = "wgpu-run"
seed = {seed}
epochs = 2
batch_size = {batch}
output_dir = "{out}"

[dataset]
name = "fashion-mnist"
path = "{data}"
train_limit = {train}
test_limit = {test}

[model]
architecture = "cifar-resnet18"
base_width = 4

[optimizer]
lr = {lr}

{method_table}
"#,
        out = out.path().display(),
        data = data.display(),
        batch = BATCH_SIZE,
        train = shape.train_images,
        lr = shape.lr,
        test = TEST_IMAGES,
    );
    let config = ExperimentConfig::parse(&text, Path::new("wgpu_training.rs"), &[]).unwrap();
    let options = TrainOptions {
        backend: Some(backend),
        ..TrainOptions::default()
    };
    let report = sal_train::train(&config, &options).unwrap();
    read_metrics(&report.metrics_csv).unwrap()
}

const CUTMIX: &str = "[augmentation]\nmethod = \"cutmix\"\nprob = 1.0";
const SALIENCYMIX: &str = "[augmentation]\nmethod = \"saliencymix\"\nprob = 1.0\n\
                           detector = \"spectral-residual-device\"";

fn assert_same_run(method_table: &str) {
    let flex = run(method_table, BackendKind::Cpu, 0, CHECKED);
    let wgpu = run(method_table, BackendKind::Wgpu, 0, CHECKED);
    assert_eq!(flex.len(), 2, "{method_table}");
    assert_eq!(wgpu.len(), 2, "{method_table}");
    let (train_image, test_image) = (one_image(BATCH_SIZE), one_image(TEST_IMAGES));
    for (f, g) in flex.iter().zip(&wgpu) {
        println!("{method_table}\n  flex {f:?}\n  wgpu {g:?}");
        for (what, a, b, tolerance) in [
            (
                "train loss",
                f.train_loss,
                g.train_loss,
                TRAIN_LOSS_TOLERANCE,
            ),
            ("test loss", f.test_loss, g.test_loss, TEST_LOSS_TOLERANCE),
            ("train top-1", f.train_top1, g.train_top1, train_image),
            ("test top-1", f.test_top1, g.test_top1, test_image),
            ("test top-5", f.test_top5, g.test_top5, test_image),
        ] {
            assert!(
                (a - b).abs() <= tolerance,
                "{method_table}: epoch {} {what}: flex {a}, wgpu {b}",
                f.epoch
            );
        }
        assert_eq!(f.lr, g.lr);
    }
}

#[test]
fn a_cutmix_run_on_wgpu_matches_the_same_run_on_flex() {
    assert_same_run(CUTMIX);
}

#[test]
fn a_saliencymix_run_with_the_device_detector_on_wgpu_matches_flex() {
    assert_same_run(SALIENCYMIX);
}

/// The measurement behind the tolerances (module docs): both runs for seeds `0..N`
/// (`WGPU_GAP_SEEDS`, default 48) and both methods, printing the largest flex-wgpu gap of each
/// metric and the least that training moved the epoch-2 losses. `WGPU_GAP_TRAIN_IMAGES` and
/// `WGPU_GAP_LR` measure another shape of run. Minutes on a CPU; rerun it on a new adapter
/// before trusting the tolerances there:
/// `cargo test --release -p sal-train --features wgpu --test wgpu_training -- --ignored
/// --nocapture`.
#[test]
#[ignore = "a measurement, not a check: minutes"]
fn measure_the_flex_wgpu_gaps() {
    let env = |name: &str| std::env::var(name).ok();
    let seeds: u64 = env("WGPU_GAP_SEEDS").map_or(48, |s| s.parse().unwrap());
    let shape = Shape {
        train_images: env("WGPU_GAP_TRAIN_IMAGES")
            .map_or(CHECKED.train_images, |s| s.parse().unwrap()),
        lr: env("WGPU_GAP_LR").map_or(CHECKED.lr, |s| s.parse().unwrap()),
    };
    let names = [
        "train loss",
        "test loss",
        "train top-1",
        "test top-1",
        "test top-5",
    ];
    let still = Shape { lr: 1e-6, ..shape };
    for (method, table) in [("cutmix", CUTMIX), ("saliencymix", SALIENCYMIX)] {
        // [epoch][metric]: the largest gap and the seed that gave it.
        let mut worst = [[(0f64, 0u64); 5]; 2];
        // The smallest move of the epoch-2 losses that training makes (against lr 1e-6): what
        // a wrong update must beat to show.
        let mut moved = [f64::INFINITY; 2];
        for seed in 0..seeds {
            let flex = run(table, BackendKind::Cpu, seed, shape);
            let wgpu = run(table, BackendKind::Wgpu, seed, shape);
            let unmoved = run(table, BackendKind::Cpu, seed, still);
            moved[0] = moved[0].min((flex[1].train_loss - unmoved[1].train_loss).abs());
            moved[1] = moved[1].min((flex[1].test_loss - unmoved[1].test_loss).abs());
            for (epoch, (f, g)) in flex.iter().zip(&wgpu).enumerate() {
                let gaps = [
                    f.train_loss - g.train_loss,
                    f.test_loss - g.test_loss,
                    f.train_top1 - g.train_top1,
                    f.test_top1 - g.test_top1,
                    f.test_top5 - g.test_top5,
                ];
                for (w, gap) in worst[epoch].iter_mut().zip(gaps) {
                    if gap.abs() > w.0 {
                        *w = (gap.abs(), seed);
                    }
                }
            }
        }
        println!(
            "{method}: training moved the epoch-2 train loss by at least {:.2e} and the test \
             loss by at least {:.2e}",
            moved[0], moved[1]
        );
        for (epoch, worst) in worst.iter().enumerate() {
            for (name, (gap, seed)) in names.iter().zip(worst) {
                println!(
                    "{method} epoch {}: {name} gap {gap:.2e} (seed {seed})",
                    epoch + 1
                );
            }
        }
    }
}
