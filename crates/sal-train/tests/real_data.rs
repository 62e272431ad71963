//! Training on real Fashion-MNIST must learn: a tiny model trained for a few hundred steps
//! beats a test accuracy that an untrained model (10 classes: ~10%) cannot reach.
//!
//! Needs the Debian package `dataset-fashion-mnist` (CI installs it) or the files under
//! `datasets/fashion-mnist/`; the trainer fetches them itself.

use sal_train::{ExperimentConfig, TrainOptions};
use std::path::Path;

#[test]
fn a_tiny_resnet_learns_fashion_mnist_in_a_few_hundred_steps() {
    let out = tempfile::tempdir().unwrap();
    let datasets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fashion-mnist");
    // 300 steps of batch 32 (9,600 images, one epoch), evaluated on 2,000 test images.
    let text = format!(
        r#"
name = "real-data-test"
seed = 1
epochs = 1
batch_size = 32
output_dir = "{out}"

[dataset]
name = "fashion-mnist"
path = "{data}"
train_limit = 9600
test_limit = 2000

[model]
architecture = "cifar-resnet18"
base_width = 8

[transform]
pad_to = 32

[optimizer]
lr = 0.02
weight_decay = 5e-4
"#,
        out = out.path().display(),
        data = datasets.display()
    );
    let config = ExperimentConfig::parse(&text, Path::new("real_data.rs"), &[]).unwrap();
    let report = sal_train::train(&config, &TrainOptions::default()).unwrap();
    let last = report.results.final_epoch.expect("one epoch recorded");
    println!("test top-1 after 300 steps: {:.2}%", last.test_top1);
    assert!(
        last.test_top1 >= 75.0,
        "test top-1 {:.2}% < 75%",
        last.test_top1
    );
    let csv = std::fs::read_to_string(&report.metrics_csv).unwrap();
    assert_eq!(csv.lines().count(), 2, "header + one epoch:\n{csv}");
    assert!(report.last_checkpoint.is_some());
}
