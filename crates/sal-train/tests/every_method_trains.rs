//! Every `[augmentation]` method runs through the real trainer (burn-train's Learner), including
//! the model-guided ones whose saliency the train step computes (input gradient for SalfMix and
//! HybridMix, the feature map for Saliency Grafting), and gives finite losses.

use sal_train::data::FashionMnist;
use sal_train::{ExperimentConfig, TrainOptions};
use std::path::Path;

fn train_with(method_table: &str) -> sal_train::RunResults {
    let out = tempfile::tempdir().unwrap();
    let data = FashionMnist::locate(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fashion-mnist"),
    )
    .expect("Fashion-MNIST: install the Debian package dataset-fashion-mnist");
    let text = format!(
        r#"
name = "method-test"
epochs = 2
batch_size = 16
output_dir = "{out}"

[dataset]
name = "fashion-mnist"
path = "{data}"
train_limit = 96
test_limit = 32

[model]
architecture = "cifar-resnet18"
base_width = 4

[transform]
pad_to = 32

[optimizer]
lr = 0.05

{method_table}
"#,
        out = out.path().display(),
        data = data.display()
    );
    let config = ExperimentConfig::parse(&text, Path::new("every_method_trains.rs"), &[]).unwrap();
    sal_train::train(&config, &TrainOptions::default())
        .unwrap()
        .results
}

#[test]
fn every_mixing_method_trains_through_the_learner() {
    for table in [
        "[augmentation]\nmethod = \"mixup\"",
        "[augmentation]\nmethod = \"cutout\"\nlength = 8",
        "[augmentation]\nmethod = \"cutmix\"\nprob = 1.0",
        "[augmentation]\nmethod = \"resizemix\"",
        "[augmentation]\nmethod = \"saliencymix\"\nprob = 1.0",
        "[augmentation]\nmethod = \"saliencymix\"\nprob = 1.0\ndetector = \"spectral-residual-device\"",
        "[augmentation]\nmethod = \"salfmix\"",
        "[augmentation]\nmethod = \"hybridmix\"\nwarmup_epochs = 0\n[augmentation.mix]\nmethod = \"cutmix\"",
        "[augmentation]\nmethod = \"saliency-grafting\"\nwarmup_epochs = 1",
        "[augmentation]\nmethod = \"none\"\nlabel_smoothing = 0.1",
    ] {
        let results = train_with(table);
        let last = results
            .final_epoch
            .unwrap_or_else(|| panic!("{table}: no epoch recorded"));
        assert_eq!(last.epoch, 2, "{table}");
        assert!(
            last.train_loss.is_finite() && last.test_loss.is_finite(),
            "{table}: {last:?}"
        );
        assert!((0.0..=100.0).contains(&last.test_top1), "{table}: {last:?}");
    }
}
