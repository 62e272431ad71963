//! The evaluations against the trainer's own numbers: `eval::accuracy` of a run's last
//! checkpoint over the test split equals the test top-1, top-5 and loss its metrics.csv logged
//! for that epoch, and so does `evaluate_run`'s clean row; its bad inputs are errors naming
//! what is wrong.

use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::tensor::Device;
mod common;

use sal_train::data::{ImageDataset, Split};
use sal_train::eval::{EvalConfig, EvalOptions, EvalReport, accuracy, evaluate_run};
use sal_train::inspect::{ModelWeights, SaliencyModel};
use sal_train::loader::LoaderMode;
use sal_train::metrics::read_metrics;
use sal_train::{ExperimentConfig, TrainOptions};
use std::path::Path;

#[test]
fn accuracy_of_the_last_checkpoint_equals_the_logged_test_metrics() {
    let out = tempfile::tempdir().unwrap();
    let text = common::tiny_config(
        "name = \"eval-run\"\nepochs = 2\nbatch_size = 64",
        out.path(),
        "train_limit = 512\ntest_limit = 300",
        "[augmentation]\nmethod = \"cutmix\"\nprob = 1.0",
    );
    let config = ExperimentConfig::parse(&text, Path::new("evaluation.rs"), &[]).unwrap();
    let report = sal_train::train(&config, &TrainOptions::default()).unwrap();
    let logged = read_metrics(&report.metrics_csv).unwrap().pop().unwrap();

    let device = Device::flex();
    let test_set = config.dataset.open(Split::Test).unwrap();
    let first = config.dataset.open(Split::Train).unwrap().load(0).unwrap();
    let loader = config.loader(test_set, &first, LoaderMode::Eval, &device);
    let model = SaliencyModel::load(&config, 10, &device.clone().autodiff()).unwrap();
    assert_eq!(
        model.weights,
        ModelWeights::Checkpoint {
            path: config.output_dir().join("checkpoint/model-2.bpk"),
            epoch: 2
        }
    );
    let measured = accuracy(&model.model.valid(), loader.iter()).unwrap();
    assert_eq!(measured.images, 300);
    // metrics.csv prints accuracies (%) with 4 decimals, losses with 6; one image is 0.33 %.
    for (what, ours, theirs, tolerance) in [
        ("top-1", measured.top1, logged.test_top1, 1e-3),
        ("top-5", measured.top5, logged.test_top5, 1e-3),
        ("loss", measured.loss, logged.test_loss, 1e-5),
    ] {
        assert!(
            (ours - theirs).abs() < tolerance,
            "test {what}: eval {ours}, metrics.csv {theirs}"
        );
    }

    // The whole evaluation of the run directory: clean = logged; eps 0 and occluding nothing
    // change nothing; a large step and half the regions occluded cost accuracy; eval.json holds it.
    let options = EvalOptions {
        suite: Some(EvalConfig {
            fgsm_eps: vec![0.0, 0.25],
            occlusion: vec![0.0, 0.5],
            ..EvalConfig::default()
        }),
        ..EvalOptions::default()
    };
    let report = evaluate_run(&report.run_dir, &options).unwrap();
    assert_eq!(report.epoch, 2);
    // The same numbers (the loss to rounding: evaluated through a frozen autodiff copy here).
    assert_eq!(
        (report.clean.top1, report.clean.top5),
        (measured.top1, measured.top5)
    );
    assert!(
        (report.clean.loss - measured.loss).abs() < 1e-5,
        "{report:?}"
    );
    assert_eq!(report.fgsm[0].accuracy.top1, measured.top1);
    assert_eq!(report.occlusion[0].accuracy.top1, measured.top1);
    assert!(report.fgsm[1].accuracy.loss > measured.loss, "{report:?}");
    assert!(
        report.occlusion[1].accuracy.top1 != measured.top1
            || report.occlusion[1].accuracy.loss != measured.loss
    );
    let saved: EvalReport =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("eval.json")).unwrap())
            .unwrap();
    assert_eq!(saved, report);
    assert!(image::open(&report.chart_png).is_ok(), "the bar chart");
    // The CAM picture: a PNG of the first test image of each class (10 rows).
    let cam = image::open(report.cam_png.as_ref().expect("a CAM picture"))
        .unwrap()
        .to_rgb8();
    assert!(cam.height() > 10 * 28, "{} x {}", cam.width(), cam.height());

    // Bad input: the error says what and where.
    let error =
        |dir: &Path, options: &EvalOptions| evaluate_run(dir, options).unwrap_err().to_string();
    let empty = tempfile::tempdir().unwrap();
    let message = error(empty.path(), &EvalOptions::default());
    assert!(
        message.contains("no config.toml") && message.contains(&empty.path().display().to_string()),
        "{message}"
    );
    let missing = EvalOptions {
        checkpoint: Some(9),
        ..EvalOptions::default()
    };
    let message = error(out.path(), &missing);
    assert!(message.contains("model-9.bpk"), "{message}");
    // A config changed into another model: the checkpoint does not fit, and the error says so.
    let wider = EvalOptions {
        overrides: vec!["model.base_width=8".into()],
        ..EvalOptions::default()
    };
    let message = error(out.path(), &wider);
    assert!(
        message.contains("model-2.bpk") && message.contains("does not fit"),
        "{message}"
    );
    let typo = EvalOptions {
        overrides: vec!["eval.occlusions=[0.5]".into()],
        ..EvalOptions::default()
    };
    let message = error(out.path(), &typo);
    assert!(message.contains("occlusions"), "{message}");
    let bad_eps = EvalOptions {
        suite: Some(EvalConfig {
            fgsm_eps: vec![2.0],
            ..EvalConfig::default()
        }),
        ..EvalOptions::default()
    };
    let message = error(out.path(), &bad_eps);
    assert!(
        message.contains("eval.fgsm_eps") && message.contains('2'),
        "{message}"
    );
}
