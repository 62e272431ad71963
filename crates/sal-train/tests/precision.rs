//! `precision = "bf16"` through the trainer: a run trains with the bf16 kernels (on a CPU that
//! has them; elsewhere the products are f32 and the run equals its fp32 twin), its directory
//! records the precision, a resume in the other precision is refused, and a GPU backend is a
//! clear error.

mod common;

use sal_train::{BackendKind, ExperimentConfig, TrainError, TrainOptions};
use std::path::Path;

fn config(out: &Path, precision: &str, epochs: usize) -> ExperimentConfig {
    let head = format!(
        "name = \"precision-test\"\nepochs = {epochs}\nbatch_size = 32\nprecision = \"{precision}\""
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
    assert!((bf16_top1 - fp32_top1).abs() < 15.0, "{bf16_top1} vs {fp32_top1}");
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
fn bf16_on_a_gpu_backend_is_an_error_naming_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let options = TrainOptions {
        backend: Some(BackendKind::Wgpu),
        ..TrainOptions::default()
    };
    let error = sal_train::train(&config(&run, "bf16", 1), &options).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, TrainError::Invalid(_)), "{message}");
    assert!(
        message.contains("precision") && message.contains("wgpu"),
        "{message}"
    );
    assert!(
        !run.join("metrics.csv").exists(),
        "training started: {message}"
    );
}
