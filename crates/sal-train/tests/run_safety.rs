//! Ways a long run goes wrong, each stopped early with an error that says what and where: a
//! diverging loss (the last good checkpoint kept), an unwritable output location (found
//! before any data is read), a mixing parameter the images cannot take (found before the first
//! step).

mod common;

use sal_train::{ExperimentConfig, TrainError, TrainOptions};
use std::path::Path;

/// A small Fashion-MNIST config writing to `out`, with `extra` TOML appended.
fn config(out: &Path, data: &Path, extra: &str) -> ExperimentConfig {
    let text = format!(
        r#"
name = "safety-test"
epochs = 3
batch_size = 32
output_dir = "{out}"

[dataset]
name = "fashion-mnist"
path = "{data}"
train_limit = 256
test_limit = 64

[model]
architecture = "cifar-resnet18"
base_width = 4

[optimizer]
lr = 0.05

{extra}
"#,
        out = out.display(),
        data = data.display()
    );
    ExperimentConfig::parse(&text, Path::new("run_safety.rs"), &[]).unwrap()
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // Epoch 1 trains normally; from epoch 2 on the learning rate is 5e10.
    let config = config(
        &run,
        &common::fashion_mnist(),
        "[schedule]\nmilestones = [1]\ngamma = 1e12",
    );
    let error = sal_train::train(&config, &TrainOptions::default()).unwrap_err();
    let TrainError::Diverged {
        epoch,
        iteration,
        steps_per_epoch,
        loss,
        ..
    } = &error
    else {
        panic!("expected a divergence, got: {error}");
    };
    assert_eq!(*epoch, 2, "{error}");
    assert!((1..=*steps_per_epoch).contains(iteration), "{error}");
    assert!(!loss.is_finite());
    let message = error.to_string();
    assert!(message.contains("epoch 2, step"), "{message}");
    assert!(message.contains("epoch 1) is kept"), "{message}");

    // Epoch 1's checkpoint is there and whole; no diverged epoch was saved or recorded.
    let checkpoint = run.join("checkpoint");
    assert_eq!(
        sal_train::checkpoint::latest_complete_epoch(&checkpoint),
        Some(1)
    );
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "only epoch 1's row:\n{csv}");
    assert!(!csv.contains("NaN") && !csv.contains("inf"), "{csv}");
}

#[test]
fn an_unwritable_output_location_fails_before_any_data_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where a directory has to be: no permission bits involved, so this fails
    // for root too. The data path does not exist: reading it would fail differently.
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let missing_data = dir.path().join("no-data-here");

    let run = blocker.join("run");
    let error =
        sal_train::train(&config(&run, &missing_data, ""), &TrainOptions::default()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, TrainError::Io { .. }), "{message}");
    assert!(message.contains(&run.display().to_string()), "{message}");
    assert!(message.contains("cannot write"), "{message}");

    // The run directory is fine, its checkpoint directory is not.
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("checkpoint"), b"").unwrap();
    let error =
        sal_train::train(&config(&run, &missing_data, ""), &TrainOptions::default()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&run.join("checkpoint").display().to_string()),
        "{message}"
    );
}

#[test]
fn a_mixing_parameter_the_images_cannot_take_fails_before_training_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // 28x28 Fashion-MNIST with a 64x64 SalfMix grid: the pooling kernel would be 0 pixels.
    let config = config(
        &run,
        &common::fashion_mnist(),
        "[augmentation]\nmethod = \"salfmix\"\ngrid = 64",
    );
    let error = sal_train::train(&config, &TrainOptions::default()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, TrainError::Invalid(_)), "{message}");
    assert!(message.contains("augmentation.grid"), "{message}");
    assert!(message.contains("salfmix"), "{message}");
    assert!(
        !run.join("metrics.csv").exists(),
        "training started: {message}"
    );
}
