//! A whole training run on the wgpu backend (Mesa's software renderer on a CPU-only machine)
//! through the same `train()` the CLI uses, against the same config on flex: the same initial
//! weights (drawn on the host from the seed), the same data order and mixing, so the two
//! metrics.csv files agree to within what float differences between the backends accumulate
//! over the run. Evaluation (BatchNorm in inference mode) included.
#![cfg(feature = "wgpu")]

use sal_train::metrics::{EpochMetrics, read_metrics};
use sal_train::{BackendKind, ExperimentConfig, TrainOptions};
use std::path::Path;

/// Largest allowed |flex - wgpu| of a loss, and of a top-1/top-5 accuracy in points (one image
/// of the 128 test images is 0.78 points; of the 256 training images 0.39).
const LOSS_TOLERANCE: f64 = 2e-3;
const ACCURACY_TOLERANCE: f64 = 0.8;

fn run(method_table: &str, backend: BackendKind) -> Vec<EpochMetrics> {
    let out = tempfile::tempdir().unwrap();
    let data = sal_train::data::FashionMnist::locate(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fashion-mnist"),
    )
    .expect("Fashion-MNIST: install the Debian package dataset-fashion-mnist");
    let text = format!(
        r#"
name = "wgpu-run"
epochs = 2
batch_size = 32
output_dir = "{out}"

[dataset]
name = "fashion-mnist"
path = "{data}"
train_limit = 256
test_limit = 128

[model]
architecture = "cifar-resnet18"
base_width = 4

[optimizer]
lr = 0.05

{method_table}
"#,
        out = out.path().display(),
        data = data.display()
    );
    let config = ExperimentConfig::parse(&text, Path::new("wgpu_training.rs"), &[]).unwrap();
    let options = TrainOptions {
        backend: Some(backend),
        ..TrainOptions::default()
    };
    let report = sal_train::train(&config, &options).unwrap();
    read_metrics(&report.metrics_csv).unwrap()
}

fn assert_same_run(method_table: &str) {
    let flex = run(method_table, BackendKind::Cpu);
    let wgpu = run(method_table, BackendKind::Wgpu);
    assert_eq!(flex.len(), 2, "{method_table}");
    assert_eq!(wgpu.len(), 2, "{method_table}");
    for (f, g) in flex.iter().zip(&wgpu) {
        println!("{method_table}\n  flex {f:?}\n  wgpu {g:?}");
        for (what, a, b, tolerance) in [
            ("train loss", f.train_loss, g.train_loss, LOSS_TOLERANCE),
            ("test loss", f.test_loss, g.test_loss, LOSS_TOLERANCE),
            (
                "train top-1",
                f.train_top1,
                g.train_top1,
                ACCURACY_TOLERANCE,
            ),
            ("test top-1", f.test_top1, g.test_top1, ACCURACY_TOLERANCE),
            ("test top-5", f.test_top5, g.test_top5, ACCURACY_TOLERANCE),
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
    assert_same_run("[augmentation]\nmethod = \"cutmix\"\nprob = 1.0");
}

#[test]
fn a_saliencymix_run_with_the_device_detector_on_wgpu_matches_flex() {
    assert_same_run(
        "[augmentation]\nmethod = \"saliencymix\"\nprob = 1.0\ndetector = \"spectral-residual-device\"",
    );
}
