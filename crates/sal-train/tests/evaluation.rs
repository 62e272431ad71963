//! The evaluations against the trainer's own numbers: `eval::accuracy` of a run's last
//! checkpoint over the test split equals the test top-1, top-5 and loss its metrics.csv logged
//! for that epoch.

use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::tensor::Device;
use sal_train::data::{FashionMnist, ImageDataset, Split};
use sal_train::eval::accuracy;
use sal_train::inspect::{ModelWeights, SaliencyModel};
use sal_train::loader::{ImageLoader, LoaderMode};
use sal_train::metrics::read_metrics;
use sal_train::{ExperimentConfig, TrainOptions};
use std::path::Path;

#[test]
fn accuracy_of_the_last_checkpoint_equals_the_logged_test_metrics() {
    let out = tempfile::tempdir().unwrap();
    let data = FashionMnist::locate(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fashion-mnist"),
    )
    .expect("Fashion-MNIST: install the Debian package dataset-fashion-mnist");
    let text = format!(
        r#"
name = "eval-run"
epochs = 2
batch_size = 64
output_dir = "{out}"

[dataset]
name = "fashion-mnist"
path = "{data}"
train_limit = 512
test_limit = 300

[model]
architecture = "cifar-resnet18"
base_width = 4

[transform]
pad_to = 32

[optimizer]
lr = 0.05

[augmentation]
method = "cutmix"
prob = 1.0
"#,
        out = out.path().display(),
        data = data.display(),
    );
    let config = ExperimentConfig::parse(&text, Path::new("evaluation.rs"), &[]).unwrap();
    let report = sal_train::train(&config, &TrainOptions::default()).unwrap();
    let logged = read_metrics(&report.metrics_csv).unwrap().pop().unwrap();

    let device = Device::flex();
    let test_set = config.dataset.open(Split::Test).unwrap();
    let first = config.dataset.open(Split::Train).unwrap().load(0).unwrap();
    let loader = ImageLoader::new(
        test_set,
        config.sample_transform(&first, LoaderMode::Eval),
        config.batch_size,
        config.seed,
        LoaderMode::Eval,
        device.clone(),
    );
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
}
