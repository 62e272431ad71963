//! `[distributed]` through the trainer, on burn-train's own multi-device strategy.
//!
//! Two devices (`devices = 2`: burn-train's `MultiDevice` over the flex device twice, one
//! thread each) must train what one device trains with the same global batch cut into the same
//! two parts and accumulated (`accumulation = 2`): each step the same images in the same parts
//! (the loader's `StepLayout`), the same mixing stream per part, the parts' weighted gradients
//! added before one update. The parameters then follow the same path; what may differ is the
//! order of floating-point sums and the BatchNorm running statistics, which burn-train's
//! multi-device strategy averages over the devices where one device updates them part after
//! part. So the training loss and accuracy match closely and the test metrics (read with the
//! running statistics) loosely.

mod common;

use sal_train::{ExperimentConfig, TrainError, TrainOptions};
use std::path::Path;

/// CutMix on 256 Fashion-MNIST images, global batch 32, with the `[distributed]` keys given.
fn config(out: &Path, distributed: &str, batch_size: usize, epochs: usize) -> ExperimentConfig {
    let head = format!("name = \"multi-device\"\nepochs = {epochs}\nbatch_size = {batch_size}");
    let tables = format!("[augmentation]\nmethod = \"cutmix\"\n\n[distributed]\n{distributed}");
    let text = common::tiny_config(&head, out, "train_limit = 256\ntest_limit = 128", &tables);
    ExperimentConfig::parse(&text, Path::new("multi_device.rs"), &[]).unwrap()
}

/// metrics.csv's columns by name, every epoch.
fn column(run: &Path, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| l.split(',').nth(at).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn two_devices_train_what_one_device_accumulating_the_same_parts_trains() {
    let dir = tempfile::tempdir().unwrap();
    let (two, one) = (dir.path().join("two"), dir.path().join("one"));
    let sharded = dir.path().join("sharded");
    let options = TrainOptions::default();
    sal_train::train(&config(&two, "devices = 2", 32, 3), &options).unwrap();
    sal_train::train(&config(&one, "accumulation = 2", 32, 3), &options).unwrap();
    // The optimizer applied on the device owning each parameter (burn's `OptimSharded`).
    let on_both = "devices = 2\noptimizer = \"sharded\"";
    sal_train::train(&config(&sharded, on_both, 32, 3), &options).unwrap();
    // Partners drawn across the global batch: the same on both layouts too.
    let global = "mix_partner = \"global\"";
    let (two_global, one_global) = (dir.path().join("two-global"), dir.path().join("one-global"));
    let on_two = format!("devices = 2\n{global}");
    sal_train::train(&config(&two_global, &on_two, 32, 3), &options).unwrap();
    let on_one = format!("accumulation = 2\n{global}");
    sal_train::train(&config(&one_global, &on_one, 32, 3), &options).unwrap();

    let saved = std::fs::read_to_string(two.join("config.toml")).unwrap();
    assert!(saved.contains("[distributed]\ndevices = 2"), "{saved}");

    // Training loss and accuracy, averaged over every image of each epoch.
    let (loss_two, loss_one) = (column(&two, "train_loss"), column(&one, "train_loss"));
    let (top1_two, top1_one) = (column(&two, "train_top1"), column(&one, "train_top1"));
    assert_eq!(loss_two.len(), 3);
    for epoch in 0..3 {
        let (a, b) = (loss_two[epoch], loss_one[epoch]);
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "epoch {}: train loss {a} on two devices, {b} on one",
            epoch + 1
        );
        // One image of 256 changing its argmax moves the top-1 by 0.39 points.
        let (a, b) = (top1_two[epoch], top1_one[epoch]);
        assert!(
            (a - b).abs() <= 0.8,
            "epoch {}: top-1 {a} vs {b}",
            epoch + 1
        );
    }
    // It learns (chance is 10 %).
    assert!(top1_two[2] > 30.0, "{top1_two:?}");
    // The parameters followed the same path: equal (bit for bit when measured, 2026-12-06;
    // the tolerance leaves room for a backend whose sums depend on thread timing), while the
    // running statistics, merged differently, are not.
    assert_same_parameters(&tensors(&two), &tensors(&one));
    assert_same_parameters(&tensors(&sharded), &tensors(&one));
    assert_same_parameters(&tensors(&two_global), &tensors(&one_global));
    // ... and another run than the partners within each part.
    let (a, b) = (tensors(&two_global), tensors(&two));
    assert!(a.iter().zip(&b).any(|(x, y)| x.0 && x.1 != y.1));
}

fn assert_same_parameters(a: &[(bool, Vec<f32>)], b: &[(bool, Vec<f32>)]) {
    assert_eq!(a.len(), b.len());
    let (mut statistics_differ, mut compared) = (false, 0);
    for (i, ((trainable, x), (_, y))) in a.iter().zip(b).enumerate() {
        let diff = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        let scale = y.iter().map(|q| q.abs()).fold(0f32, f32::max);
        if *trainable {
            assert!(
                diff <= 1e-5 * scale.max(1.0),
                "parameter tensor {i}: differs by {diff}"
            );
            compared += 1;
        } else {
            statistics_differ |= diff > 0.0;
        }
    }
    assert!(
        statistics_differ,
        "the running statistics should differ (see the module docs)"
    );
    // CIFAR ResNet-18: 20 convolutions and BatchNorms with 2 tensors each, the linear head's 2.
    assert_eq!(compared, 62);
}

/// Every float tensor of the run's epoch-3 checkpoint, in visiting order, with whether it is
/// trained (the BatchNorm running statistics are not).
fn tensors(run: &Path) -> Vec<(bool, Vec<f32>)> {
    tensors_at(run, 3)
}

fn tensors_at(run: &Path, epoch: usize) -> Vec<(bool, Vec<f32>)> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::{Device, Tensor};
    struct Collect(Vec<(bool, Vec<f32>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().try_to_vec::<f32>().unwrap();
            self.0.push((param.is_require_grad(), values));
        }
    }
    let config = config(run, "", 32, epoch);
    let device = Device::flex().autodiff();
    let model = sal_train::inspect::SaliencyModel::load_epoch(&config, 10, &device, epoch).unwrap();
    let mut collect = Collect(Vec::new());
    model.model.visit(&mut collect);
    collect.0
}

/// The same on wgpu (Mesa's lavapipe here: one adapter, so the two devices are the default
/// adapter twice, two threads submitting to one queue), for two epochs: the wgpu path of the
/// strategy, its gradient moves and sums, on the GPU backend's kernels.
#[cfg(feature = "wgpu")]
#[test]
fn two_wgpu_devices_train_what_one_wgpu_device_accumulating_trains() {
    let dir = tempfile::tempdir().unwrap();
    let (two, one) = (dir.path().join("two"), dir.path().join("one"));
    let options = TrainOptions {
        backend: Some(sal_train::BackendKind::Wgpu),
        ..TrainOptions::default()
    };
    sal_train::train(&config(&two, "devices = 2", 32, 2), &options).unwrap();
    sal_train::train(&config(&one, "accumulation = 2", 32, 2), &options).unwrap();
    assert_same_parameters(&tensors_at(&two, 2), &tensors_at(&one, 2));
}

#[test]
fn a_run_resumes_on_another_device_count_only_with_the_same_global_batch() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    sal_train::train(
        &config(&run, "devices = 2", 32, 1),
        &TrainOptions::default(),
    )
    .unwrap();
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    // Another global batch would be another experiment: refused, naming the key.
    let error = sal_train::train(&config(&run, "devices = 2", 16, 2), &resume).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, TrainError::ConfigChanged { .. }),
        "{message}"
    );
    assert!(message.contains("batch_size"), "{message}");
    // The same global batch on one device continues the run.
    let report = sal_train::train(&config(&run, "devices = 1", 32, 2), &resume).unwrap();
    assert_eq!(report.results.resumed_from_epoch, Some(1));
    assert_eq!(column(&run, "train_loss").len(), 2);
}

/// The message of the config error a `[distributed]` table (with `tables` before it) gives.
fn config_error(name: &str, batch_size: usize, tables: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let head = format!("name = \"{name}\"\nepochs = 1\nbatch_size = {batch_size}");
    let text = common::tiny_config(&head, dir.path(), "", tables);
    let path = format!("{name}.toml");
    let error = ExperimentConfig::parse(&text, Path::new(&path), &[]).unwrap_err();
    error.to_string()
}

#[test]
fn a_strategy_the_backend_cannot_run_is_refused_before_training() {
    let ddp = config_error("ddp", 32, "[distributed]\ndevices = 2\nstrategy = \"ddp\"");
    assert!(
        ddp.starts_with("config file ddp.toml: `distributed.strategy`"),
        "{ddp}"
    );
    assert!(ddp.contains("only on cuda"), "{ddp}");
    let salfmix = config_error(
        "salfmix",
        32,
        "[augmentation]\nmethod = \"salfmix\"\n\n[distributed]\ndevices = 2\nmix_partner = \"global\"",
    );
    assert!(salfmix.contains("`distributed.mix_partner`"), "{salfmix}");
    assert!(salfmix.contains("method = \"salfmix\""), "{salfmix}");
    let uneven = config_error("uneven", 30, "[distributed]\ndevices = 4");
    assert!(
        uneven.contains("`batch_size` = 30 is the global batch"),
        "{uneven}"
    );
}
