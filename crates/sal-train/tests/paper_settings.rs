//! The papers' training settings work from a config, end to end through the trainer: a
//! data-scarce subset (`[dataset] per_class`, Saliency Grafting Table 5), K independently mixed
//! copies of each batch (`[augmentation] k_times`, Figure 3), the `[eval]` suite after training,
//! the pictures every run draws (curves.png, mixed/epoch-<e>.png), and ImageNet's geometry
//! (`[transform] size`: images of any size, SaliencyMix Table 2).

use burn::tensor::Device;
use burn::train::TrainStep;
mod common;

use sal_train::loader::ImageBatch;
use sal_train::metrics::read_metrics;
use sal_train::step::Classifier;
use sal_train::{ExperimentConfig, TrainOptions};
use std::path::Path;

fn config(out: &Path) -> ExperimentConfig {
    let tables = r#"
[augmentation]
method = "saliency-grafting"
warmup_epochs = 0
prob = 1.0
k_times = 3

[pictures]
rows = 5

[eval]
fgsm_eps = [0.0, 0.1]
occlusion = [0.0, 0.25]
cam_images = 3
"#;
    let text = common::tiny_config(
        "name = \"paper-settings\"\nepochs = 2\nbatch_size = 32",
        out,
        "per_class = 12\ntest_limit = 200",
        tables,
    );
    ExperimentConfig::parse(&text, Path::new("paper_settings.rs"), &[]).unwrap()
}

#[test]
fn scarcity_k_times_eval_and_pictures_work_from_a_config() {
    let out = tempfile::tempdir().unwrap();
    let config = config(out.path());

    // k_times: the classifier the trainer builds from this config trains each step on the
    // originals once and 3 grafted copies (Saliency Grafting's with_original default).
    let device = Device::flex().autodiff();
    let model = config.model_config(10).init(&device);
    let classifier = Classifier::for_experiment(&config, model).unwrap();
    let n = 8;
    let set = config.dataset.open(sal_train::data::Split::Train).unwrap();
    let first = set.load(0).unwrap();
    let loader = config.loader(
        set,
        &first,
        sal_train::loader::LoaderMode::Train,
        &device.clone(),
    );
    let batch: ImageBatch = burn::data::dataloader::DataLoader::iter(&loader)
        .next()
        .unwrap()
        .unwrap();
    let batch = ImageBatch {
        images: batch.images.narrow(0, 0, n),
        labels: batch.labels.narrow(0, 0, n),
        ..batch
    };
    let output = TrainStep::step(&classifier, batch).item;
    assert_eq!(
        output.output.dims(),
        [4 * n, 10],
        "originals + 3 grafted copies"
    );
    let k1 = config_with_k(out.path(), 1);
    let classifier = Classifier::for_experiment(&k1, k1.model_config(10).init(&device)).unwrap();
    let batch = burn::data::dataloader::DataLoader::iter(&loader)
        .next()
        .unwrap()
        .unwrap();
    let rows = TrainStep::step(&classifier, batch.clone())
        .item
        .output
        .dims()[0];
    assert_eq!(
        rows,
        2 * batch.labels.dims()[0],
        "k_times = 1: originals + 1 copy"
    );

    // The run: 120 training images (12 per class), the suite after training, the pictures.
    let report = sal_train::train(&config, &TrainOptions::default()).unwrap();
    assert_eq!(report.results.train_images, 120);
    assert_eq!(report.results.test_images, 200);
    let eval = report.eval.expect("the [eval] suite ran after training");
    assert_eq!(eval.epoch, 2);
    assert_eq!(eval.fgsm.len(), 2);
    assert_eq!(eval.occlusion.len(), 2);
    let logged = read_metrics(&report.metrics_csv).unwrap().pop().unwrap();
    assert!(
        (eval.clean.top1 - logged.test_top1).abs() < 1e-3,
        "eval {} vs metrics.csv {}",
        eval.clean.top1,
        logged.test_top1
    );
    let dir = out.path();
    for file in ["eval.json", "eval.png", "cam.png", "curves.png"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    for epoch in [1, 2] {
        let picture = image::open(dir.join(format!("mixed/epoch-{epoch}.png")))
            .unwrap()
            .to_rgb8();
        // 5 rows of 128-pixel tiles (32 px images enlarged 4x), and the caption above them.
        assert!(picture.height() > 5 * 128, "{}", picture.height());
    }
    assert!(!dir.join("mixed/epoch-3.png").exists());

    // method = "none": the epoch's first batch as it trains.
    let plain = tempfile::tempdir().unwrap();
    let mut none = config_with_k(plain.path(), 1);
    none.augmentation = Default::default();
    none.eval = None;
    none.epochs = 1;
    sal_train::train(&none, &TrainOptions::default()).unwrap();
    assert!(plain.path().join("mixed/epoch-1.png").is_file());

    // Switched off, no mixed pictures; curves.png stays.
    let off = tempfile::tempdir().unwrap();
    let mut quiet = config_with_k(off.path(), 1);
    quiet.pictures.mixed_batches = false;
    quiet.eval = None;
    quiet.epochs = 1;
    let report = sal_train::train(&quiet, &TrainOptions::default()).unwrap();
    assert!(report.eval.is_none());
    assert!(off.path().join("curves.png").is_file());
    assert!(!off.path().join("mixed").exists());
}

fn config_with_k(out: &Path, k: usize) -> ExperimentConfig {
    let mut c = config(out);
    c.augmentation.k_times = k;
    c
}

/// ImageNet's recipe from a config: an image folder of PNGs and a real JPEG of seven different
/// sizes trains through `RandomResizedCrop` + flip + colour jitter + lighting to 24x24 samples,
/// tests through resize 28 + centre crop 24, with SaliencyMix's saliency on the crops.
#[test]
fn images_of_any_size_train_and_test_at_the_configured_size() {
    let data = tempfile::tempdir().unwrap();
    let sizes = [(40, 52), (61, 37), (33, 33), (80, 45), (24, 100), (57, 29)];
    for split in ["train", "val"] {
        for (class, shade) in [("cat", 60u8), ("dog", 190u8)] {
            let dir = data.path().join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, &(h, w)) in sizes.iter().enumerate() {
                let picture = image::RgbImage::from_fn(w, h, |x, y| {
                    image::Rgb([shade, (x * 255 / w) as u8, (y * 255 / h) as u8])
                });
                picture.save(dir.join(format!("{i}.png"))).unwrap();
            }
        }
    }
    // A real 1024x683 ImageNet JPEG among them.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/imagefolder/train/609/609_06.JPEG"),
        data.path().join("train/cat/photo.jpeg"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
name = "imagenet-geometry"
epochs = 1
batch_size = 4
output_dir = "{out}"

[dataset]
name = "image-folder"
path = "{data}"

[model]
architecture = "cifar-resnet18"
base_width = 4

[transform]
size = 24
test_resize = 28
random_resized_crop = {{}}
hflip = true
color_jitter = {{ brightness = 0.4, contrast = 0.4, saturation = 0.4 }}
lighting = 0.1

[augmentation]
method = "saliencymix"
prob = 1.0

[optimizer]
lr = 0.05
"#,
        out = out.path().display(),
        data = data.path().display(),
    );
    let config = ExperimentConfig::parse(&text, Path::new("imagenet.toml"), &[]).unwrap();
    let device = Device::flex();
    for (split, mode) in [
        (
            sal_train::data::Split::Train,
            sal_train::loader::LoaderMode::Train,
        ),
        (
            sal_train::data::Split::Test,
            sal_train::loader::LoaderMode::Eval,
        ),
    ] {
        let set = config.dataset.open(split).unwrap();
        let first = set.load(0).unwrap();
        let loader = config.loader(set, &first, mode, &device);
        let batches: Vec<ImageBatch> = burn::data::dataloader::DataLoader::iter(&loader)
            .map(|b| b.unwrap())
            .collect();
        let shapes: Vec<[usize; 4]> = batches.iter().map(|b| b.images.dims()).collect();
        let rows: usize = shapes.iter().map(|s| s[0]).sum();
        assert_eq!(
            rows,
            if mode == sal_train::loader::LoaderMode::Train {
                13
            } else {
                12
            }
        );
        assert!(shapes.iter().all(|s| s[1..] == [3, 24, 24]), "{shapes:?}");
    }
    // A class folder missing from one split would shift the labels: refused, naming the data.
    let odd = tempfile::tempdir().unwrap();
    for split in ["train", "val"] {
        for class in ["cat", "dog"] {
            if (split, class) != ("val", "cat") {
                let dir = odd.path().join(split).join(class);
                std::fs::create_dir_all(&dir).unwrap();
                image::RgbImage::new(9, 7).save(dir.join("0.png")).unwrap();
            }
        }
    }
    let mut mismatched = config.clone();
    mismatched.dataset.path = Some(odd.path().to_path_buf());
    let msg = sal_train::train(&mismatched, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("different classes") && msg.contains(&odd.path().display().to_string()),
        "{msg}"
    );

    let report = sal_train::train(&config, &TrainOptions::default()).unwrap();
    assert_eq!(report.results.train_images, 13);
    assert_eq!(report.results.test_images, 12);
    let logged = read_metrics(&report.metrics_csv).unwrap();
    assert_eq!(logged.len(), 1);
    assert!(logged[0].train_loss.is_finite());
    assert!(out.path().join("mixed/epoch-1.png").is_file());
}
