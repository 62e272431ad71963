use super::*;
use sal_core::PairConfig;
use sal_figures::mixed_batch::WRITTEN;
use sal_train::data::FashionMnist;

/// A quickstart-like config on the Debian package's Fashion-MNIST (installed here and in CI),
/// its run directory under `run_dir`.
fn config_text(run_dir: &Path, augmentation: &str) -> String {
    format!(
        r#"
name = "pictures"
seed = 3
epochs = 1
batch_size = 8
output_dir = "{run}"

[dataset]
name = "fashion-mnist"
path = "{data}"

[model]
architecture = "cifar-resnet18"
base_width = 4

[transform]
pad_to = 32
crop_padding = 2
hflip = true

[optimizer]
lr = 0.1
{augmentation}
"#,
        run = run_dir.display(),
        data = FashionMnist::DEBIAN_DIR
    )
}

fn args(method: &str, config: &Path, output: &Path) -> VisualizeArgs {
    VisualizeArgs {
        method: method.into(),
        config: config.to_path_buf(),
        output: output.to_path_buf(),
        overrides: Vec::new(),
        samples: 4,
        seed: None,
    }
}

fn picture(augmentation: &str, method: &'static str, overrides: &[&str]) -> Result<PictureConfig> {
    let text = config_text(Path::new("runs/x"), augmentation);
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    PictureConfig::new(&text, Path::new("exp.toml"), method, &o, None)
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("exp.toml");
    let err = |a: VisualizeArgs| run(a).unwrap_err().to_string();

    let msg = err(args("puzzlemix", &config, &dir.path().join("a.png")));
    assert!(
        msg.contains("unknown method `puzzlemix`") && msg.contains("saliency-grafting"),
        "{msg}"
    );
    let msg = err(args("none", &config, &dir.path().join("a.png")));
    assert!(msg.contains("unknown method `none`"), "{msg}");

    let msg = err(args("cutmix", &config, &dir.path().join("missing/a.png")));
    assert!(
        msg.contains("missing") && msg.contains("does not exist"),
        "{msg}"
    );
    let msg = err(args("all", &config, &dir.path().join("missing")));
    assert!(msg.contains("existing folder"), "{msg}");
    let msg = err(args("cutmix", &config, &dir.path().join("a.jpg")));
    assert!(msg.contains("PNG"), "{msg}");
    let mut no_rows = args("cutmix", &config, &dir.path().join("a.png"));
    no_rows.samples = 0;
    assert!(err(no_rows).contains("--samples"));

    let msg = err(args("cutmix", &config, &dir.path().join("a.png")));
    assert!(
        msg.contains("cannot read config file") && msg.contains("exp.toml"),
        "{msg}"
    );
    std::fs::write(&config, "name = [").unwrap();
    let msg = err(args("cutmix", &config, &dir.path().join("a.png")));
    assert!(msg.contains("not valid TOML"), "{msg}");
    assert!(!dir.path().join("a.png").exists());
}

#[test]
fn the_configs_parameters_are_kept_for_its_method_and_prob_is_forced() {
    let configured = "[augmentation]\nmethod = \"cutmix\"\nbeta = 2.0\nprob = 0.5\n";
    let p = picture(configured, "cutmix", &[]).unwrap();
    assert!(p.prob_forced);
    let AugmentationConfig::CutMix(c) = &p.experiment.augmentation.method else {
        panic!("{:?}", p.experiment.augmentation.method)
    };
    assert_eq!((c.beta, c.prob), (2.0, 1.0));

    // Another method: its defaults (CutMix's beta does not leak into Mixup).
    let p = picture(configured, "mixup", &[]).unwrap();
    let AugmentationConfig::Mixup(m) = &p.experiment.augmentation.method else {
        panic!("{:?}", p.experiment.augmentation.method)
    };
    assert_eq!((m.alpha, m.prob), (1.0, 1.0));

    // A prob given with --set wins and is not reported as forced.
    let p = picture(configured, "cutmix", &["augmentation.prob=0.25"]).unwrap();
    assert!(!p.prob_forced);
    let AugmentationConfig::CutMix(c) = &p.experiment.augmentation.method else {
        panic!()
    };
    assert_eq!(c.prob, 0.25);

    // HybridMix: T_t defaults to SaliencyMix (v2); --set picks another; its prob is forced.
    let p = picture("", "hybridmix", &[]).unwrap();
    assert!(p.prob_forced);
    assert_eq!(
        p.experiment.augmentation.method.display_name(),
        "HybridMix v2 (SalfMix + SaliencyMix)"
    );
    let p = picture("", "hybridmix", &["augmentation.mix.method=cutmix"]).unwrap();
    let AugmentationConfig::HybridMix(h) = &p.experiment.augmentation.method else {
        panic!()
    };
    assert_eq!(
        h.mix,
        PairConfig::CutMix(sal_core::CutMixConfig {
            prob: 1.0,
            ..Default::default()
        })
    );

    // Bad overrides name the key.
    let msg = picture("", "cutmix", &["augmentation.alpha=2"])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("alpha"), "{msg}");
}

#[test]
fn renders_every_method_on_fashion_mnist() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("exp.toml");
    std::fs::write(&config, config_text(&dir.path().join("run"), "")).unwrap();
    let out = dir.path().join("pictures");
    std::fs::create_dir(&out).unwrap();
    run(args("all", &config, &out)).unwrap();
    let mut sizes = Vec::new();
    for &method in AugmentationConfig::MIXING_METHODS {
        let png = out.join(format!("{method}.png"));
        let img = image::open(&png)
            .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
            .to_rgb8();
        sizes.push(img.width());
        // Four rows of 128-pixel tiles (32 px enlarged 4x) below the caption.
        assert!(img.height() > 4 * 128, "{method}: {}", img.height());
        // Outlines are drawn in the method's colours (Mixup has none).
        let has = |c: [u8; 3]| img.pixels().any(|p| p.0 == c);
        assert_eq!(has(WRITTEN), method != "mixup", "{method}");
    }
    assert!(sizes.iter().all(|&w| w == sizes[0]), "{sizes:?}");
}

#[test]
fn a_picture_mixes_real_images_and_shows_their_soft_labels() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&dir.path().join("run"), "");
    let path = dir.path().join("exp.toml");
    let p = PictureConfig::new(&text, &path, "cutmix", &[], None).unwrap();
    let device = Device::flex().autodiff();
    let samples = SampleBatch::load(&p.experiment, 5, &device).unwrap();
    let figure = p.render(&samples, None).unwrap();
    assert_eq!(figure.rows.len(), 5);
    for (row, &label) in figure.rows.iter().zip(&samples.labels_host) {
        assert!(row.tiles.iter().all(Option::is_some));
        let first = &row.text[0];
        assert!(first.starts_with(&samples.class_names[label]), "{first}");
        let total: f64 = row
            .text
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert!((total - 1.0).abs() <= 0.011, "{:?}", row.text);
    }
    assert!(figure.caption.iter().any(|c| c.contains("forced to apply")));

    // A prob given with --set is honoured: at 0 the batch passes through, and the picture says so.
    let p = PictureConfig::new(
        &text,
        &path,
        "cutmix",
        &["augmentation.prob=0".into()],
        None,
    )
    .unwrap();
    let figure = p.render(&samples, None).unwrap();
    assert!(figure.caption.iter().any(|c| c.starts_with("NOT APPLIED")));
    assert!(!figure.caption.iter().any(|c| c.contains("forced")));
    assert!(figure.legend.is_empty());
    for row in &figure.rows {
        assert!(row.tiles[1].is_none(), "no source");
        assert!(
            row.text.len() == 1 && row.text[0].ends_with(" 1.00"),
            "{:?}",
            row.text
        );
    }
}
