//! Every `[augmentation]` method runs through the real trainer (burn-train's Learner), including
//! the model-guided ones whose saliency the train step computes (input gradient for SalfMix and
//! HybridMix, the feature map for Saliency Grafting): the training step really mixes (images
//! differ from the clean batch; soft targets where the method mixes labels), and the loss falls.

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
mod common;

use sal_train::loader::ImageBatch;
use sal_train::step::Classifier;
use sal_train::{ExperimentConfig, TrainOptions};
use std::path::Path;

fn config_with(method_table: &str, out: &Path) -> ExperimentConfig {
    let text = common::tiny_config(
        "name = \"method-test\"\nepochs = 3\nbatch_size = 16",
        out,
        "train_limit = 192\ntest_limit = 32",
        method_table,
    );
    ExperimentConfig::parse(&text, Path::new("every_method_trains.rs"), &[]).unwrap()
}

/// What the training step's mixing does to one batch of the method (1x32x32, the config's
/// padded Fashion-MNIST), past every warm-up.
fn assert_the_step_mixes(config: &ExperimentConfig, mixes_labels: bool) {
    let device = Device::flex().autodiff();
    let model = config.model_config(10).init(&device);
    let classifier = Classifier::new(model, Some(config.augmentation().unwrap()));
    let augmentation = classifier.augmentation.clone().unwrap();
    let n = 8;
    let images = Tensor::<4>::random([n, 1, 32, 32], Distribution::Default, &device);
    let labels =
        Tensor::<1, Int>::from_data(TensorData::new((0..n as i64).collect(), [n]), &device);
    let out = (0..16)
        .map(|step| {
            let batch = ImageBatch::new(images.clone(), labels.clone(), 100, step);
            classifier.mix(&augmentation, batch).unwrap()
        })
        .find(|out| out.trace.applied)
        .unwrap_or_else(|| {
            panic!(
                "{}: no batch mixed in 16 steps",
                config.augmentation.method.method_name()
            )
        });
    let method = config.augmentation.method.method_name();
    let mixed = out.images.clone().narrow(0, out.images.dims()[0] - n, n);
    let changed: f32 = (mixed - images.clone()).abs().sum().into_scalar();
    assert!(changed > 0.0, "{method}: the images are the clean batch");
    let largest: Vec<f32> = out
        .targets
        .clone()
        .max_dim(1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let soft = largest.iter().any(|&w| w < 0.999);
    assert_eq!(soft, mixes_labels, "{method}: target weights {largest:?}");
}

#[test]
fn every_mixing_method_mixes_and_learns_through_the_learner() {
    // (table, whether the method mixes labels)
    for (table, mixes_labels) in [
        ("[augmentation]\nmethod = \"mixup\"", true),
        ("[augmentation]\nmethod = \"cutout\"\nlength = 8", false),
        (
            "[augmentation]\nmethod = \"cutout\"\nlength = 8\nplacement = \"least-salient\"",
            false,
        ),
        ("[augmentation]\nmethod = \"cutmix\"\nprob = 1.0", true),
        ("[augmentation]\nmethod = \"resizemix\"", true),
        ("[augmentation]\nmethod = \"saliencymix\"\nprob = 1.0", true),
        (
            "[augmentation]\nmethod = \"saliencymix\"\nprob = 1.0\ndetector = \"spectral-residual-device\"",
            true,
        ),
        ("[augmentation]\nmethod = \"salfmix\"", false),
        (
            "[augmentation]\nmethod = \"hybridmix\"\nwarmup_epochs = 0\n[augmentation.mix]\nmethod = \"cutmix\"",
            true,
        ),
        (
            "[augmentation]\nmethod = \"saliency-grafting\"\nwarmup_epochs = 1",
            true,
        ),
    ] {
        let out = tempfile::tempdir().unwrap();
        let config = config_with(table, out.path());
        assert_the_step_mixes(&config, mixes_labels);
        train_and_check(&config, table);
    }
}

#[test]
fn label_smoothing_without_mixing_trains_through_the_learner() {
    let out = tempfile::tempdir().unwrap();
    let table = "[augmentation]\nmethod = \"none\"\nlabel_smoothing = 0.1";
    train_and_check(&config_with(table, out.path()), table);
}

/// Trains `config` and checks every epoch is recorded with finite losses and that the training
/// loss fell from the first epoch to the last.
fn train_and_check(config: &ExperimentConfig, table: &str) {
    let results = sal_train::train(config, &TrainOptions::default())
        .unwrap()
        .results;
    let epochs =
        sal_train::metrics::read_metrics(&config.output_dir().join("metrics.csv")).unwrap();
    assert_eq!(epochs.len(), 3, "{table}");
    assert_eq!(
        results.final_epoch.as_ref().map(|e| e.epoch),
        Some(3),
        "{table}"
    );
    for e in &epochs {
        assert!(
            e.train_loss.is_finite() && e.test_loss.is_finite(),
            "{table}: {e:?}"
        );
    }
    assert!(
        epochs[2].train_loss < epochs[0].train_loss,
        "{table}: the training loss did not fall: {epochs:?}"
    );
}
