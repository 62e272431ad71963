//! `precision = "bf16"` through the trainer: a run trains with the bf16 kernels (on a CPU that
//! has them; elsewhere the products are f32 and the run equals its fp32 twin), its directory
//! records the precision, a resume in the other precision is refused, and a GPU backend is a
//! clear error.

mod common;

use sal_train::{BackendKind, ExperimentConfig, TrainError, TrainOptions};
use std::path::Path;

fn config(out: &Path, precision: &str, epochs: usize) -> ExperimentConfig {
    config_on(out, precision, epochs, "cpu")
}

/// The config on `backend` (a combination the config accepts; `TrainOptions::backend` then
/// moves it).
fn config_on(out: &Path, precision: &str, epochs: usize, backend: &str) -> ExperimentConfig {
    let head = format!(
        "name = \"precision-test\"\nepochs = {epochs}\nbatch_size = 32\n\
         precision = \"{precision}\"\nbackend = \"{backend}\""
    );
    let text = common::tiny_config(&head, out, "train_limit = 512\ntest_limit = 256", "");
    ExperimentConfig::parse(&text, Path::new("precision.rs"), &[]).unwrap()
}

fn metrics(run: &Path) -> Vec<Vec<String>> {
    // Every column but the timings (train_seconds onwards).
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(7).map(str::to_string).collect())
        .collect()
}

#[test]
fn a_bf16_run_trains_records_its_precision_and_resumes_only_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let (bf16_run, fp32_run) = (dir.path().join("bf16"), dir.path().join("fp32"));
    let options = TrainOptions::default();
    let report = sal_train::train(&config(&bf16_run, "bf16", 2), &options).unwrap();
    let twin = sal_train::train(&config(&fp32_run, "fp32", 2), &options).unwrap();

    // It learns (10 classes: chance is 10 %; the training top-1, as the test split's after 16
    // steps still swings with the batch-norm statistics), about as well as fp32 ...
    let top1 = |r: &sal_train::TrainReport| r.results.final_epoch.as_ref().unwrap().train_top1;
    let (bf16_top1, fp32_top1) = (top1(&report), top1(&twin));
    assert!(bf16_top1 > 40.0, "bf16 run's training top-1 {bf16_top1} %");
    assert!(
        (bf16_top1 - fp32_top1).abs() < 15.0,
        "{bf16_top1} vs {fp32_top1}"
    );
    // ... through the bf16 products where the CPU has them: the same seed, data and steps,
    // different numbers; without them the two runs are the same run.
    let (bf16, fp32) = (metrics(&bf16_run), metrics(&fp32_run));
    match sal_models::bf16_instructions() {
        Some(isa) => assert_ne!(bf16, fp32, "bf16 on {isa} trained exactly as fp32"),
        None => assert_eq!(bf16, fp32),
    }

    let saved = std::fs::read_to_string(bf16_run.join("config.toml")).unwrap();
    assert!(saved.contains("precision = \"bf16\""), "{saved}");

    // Extending the run in fp32 would mix two experiments: refused, naming the key.
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let error = sal_train::train(&config(&bf16_run, "fp32", 3), &resume).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, TrainError::ConfigChanged { .. }),
        "{message}"
    );
    assert!(message.contains("precision"), "{message}");
    // In bf16 it continues.
    let extended = sal_train::train(&config(&bf16_run, "bf16", 3), &resume).unwrap();
    assert_eq!(extended.results.resumed_from_epoch, Some(2));
    assert_eq!(metrics(&bf16_run).len(), 3);
}

#[test]
fn a_precision_without_kernels_on_the_backend_is_an_error_naming_it() {
    // Each config is valid as written (bf16 on the cpu, f16 on wgpu); `--backend` moves it.
    for (precision, written, backend) in [
        ("bf16", "cpu", BackendKind::Wgpu),
        ("f16", "wgpu", BackendKind::Cpu),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let options = TrainOptions {
            backend: Some(backend),
            ..TrainOptions::default()
        };
        let config = config_on(&run, precision, 1, written);
        let error = sal_train::train(&config, &options).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, TrainError::Invalid(_)), "{message}");
        assert!(
            message.contains(precision) && message.contains(backend.name()),
            "{message}"
        );
        assert!(!run.exists(), "a run directory was made: {message}");
    }
}

/// f16 on wgpu: where the adapter has f16 shaders (Mesa's lavapipe here has) a run trains;
/// where it has none the trainer says so before the first step.
#[cfg(feature = "wgpu")]
#[test]
fn f16_on_wgpu_trains_or_says_the_adapter_has_no_f16_shaders() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let options = TrainOptions {
        backend: Some(BackendKind::Wgpu),
        ..TrainOptions::default()
    };
    let device = sal_train::backend::device(BackendKind::Wgpu).expect("a wgpu device");
    let result = sal_train::train(&config_on(&run, "f16", 1, "wgpu"), &options);
    if device.supports_dtype(burn::tensor::FloatDType::F16) {
        let report = result.expect("an f16 run on an adapter with f16 shaders");
        assert_eq!(report.results.epochs_trained_now, 1);
    } else {
        let message = result.unwrap_err().to_string();
        assert!(
            message.contains("f16") && message.contains("SHADER_F16"),
            "{message}"
        );
        assert!(
            !run.join("metrics.csv").exists(),
            "training started: {message}"
        );
    }
}
