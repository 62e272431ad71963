use super::*;
use burn::tensor::{Device, Int, TensorData};
use sal_core::{AugmentationConfig, CutMixConfig, MixBatch, MixupConfig};

const N: usize = 4;
const SIDE: usize = 8;

fn names() -> Vec<String> {
    ["T-shirt/top", "Trouser", "Pullover", "Bag"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn normalization() -> Normalization {
    Normalization {
        mean: vec![0.5],
        std: vec![0.25],
    }
}

/// `N` gray 8x8 images: u8 pixels and the normalised batch made from them.
fn batch() -> (Vec<u8>, Tensor<4>, Tensor<1, Int>) {
    let pixels: Vec<u8> = (0..N * SIDE * SIDE).map(|i| (i * 37 % 256) as u8).collect();
    let values = normalization().normalise_interleaved(&pixels, 1);
    let device = Device::flex();
    let images = Tensor::from_data(TensorData::new(values, [N, 1, SIDE, SIDE]), &device);
    let labels = Tensor::from_data(TensorData::new(vec![0i64, 1, 2, 3], [N]), &device);
    (pixels, images, labels)
}

fn mixed(config: AugmentationConfig) -> MixedBatch {
    let (_, images, labels) = batch();
    let out = config
        .init(7, None)
        .unwrap()
        .mix(MixBatch::new(images.clone(), labels, N), 0)
        .unwrap();
    MixedBatch::read(&images, &out).unwrap()
}

fn cutmix() -> AugmentationConfig {
    AugmentationConfig::CutMix(CutMixConfig {
        prob: 1.0,
        ..Default::default()
    })
}

#[test]
fn labels_list_the_target_class_first_and_drop_tiny_weights() {
    let names = names();
    assert_eq!(
        label_lines(&[0.0, 0.62, 0.001, 0.379], 1, &names),
        vec!["Trouser 0.62", "Bag 0.38"]
    );
    // The target's class comes first even when it weighs less.
    assert_eq!(
        label_lines(&[0.7, 0.3, 0.0, 0.0], 1, &names),
        vec!["Trouser 0.30", "T-shirt/top 0.70"]
    );
    // Label smoothing spreads weight over every class: the tail is summarised.
    let smoothed = label_lines(&[0.1, 0.6, 0.1, 0.1, 0.1], 1, &names);
    assert_eq!(smoothed.len(), LABEL_LINES);
    assert_eq!(smoothed[0], "Trouser 0.60");
    assert_eq!(smoothed[1], "T-shirt/top 0.10");
    assert_eq!(smoothed[3], "+2 more");
    // A class without a name.
    assert_eq!(
        label_lines(&[0.5, 0.0, 0.0, 0.0, 0.5], 0, &names),
        vec!["T-shirt/top 0.50", "class 4 0.50"]
    );
    // Long names are cut to the column.
    let long = vec!["a very long class name indeed".to_string()];
    assert_eq!(label_lines(&[1.0], 0, &long)[0].len(), LABEL_CHARS);
}

#[test]
fn a_cutmix_batch_shows_target_source_mixed_and_its_boxes() {
    let b = mixed(cutmix());
    assert_eq!((b.len(), b.channels, b.height, b.width), (N, 1, SIDE, SIDE));
    assert!(b.applied);
    let caption = Caption {
        title: vec!["CutMix".into()],
        notes: vec!["a note".into()],
    };
    let figure = figure(&b, &[0, 1, 2, 3], &names(), &normalization(), caption).unwrap();
    assert_eq!(figure.caption[..2], ["CutMix", "a note"]);
    assert!(figure.caption.iter().any(|c| c.starts_with("Label:")));
    assert_eq!(
        figure.legend.iter().map(|l| l.0).collect::<Vec<_>>(),
        [READ, WRITTEN]
    );
    // 8 px tiles are enlarged 16 times.
    assert_eq!((figure.tile_height, figure.tile_width), (128, 128));
    let (pixels, _, _) = batch();
    for (i, row) in figure.rows.iter().enumerate() {
        assert_eq!(row.tiles.len(), 3);
        let target = row.tiles[0].as_ref().unwrap();
        assert_eq!(target.dimensions(), (128, 128));
        // The target tile is the u8 image the batch was normalised from, enlarged (no outline
        // on it).
        for (y, x) in [(0, 0), (40, 70), (127, 127)] {
            let v = pixels[i * SIDE * SIDE + (y / 16) * SIDE + x / 16];
            assert_eq!(target.get_pixel(x as u32, y as u32).0, [v, v, v]);
        }
        let has = |t: &Option<RgbImage>, c: [u8; 3]| t.as_ref().unwrap().pixels().any(|p| p.0 == c);
        let region = &b.samples[i].region;
        if matches!(region, SampleRegion::Paste(p) if !p.target.is_empty()) {
            assert!(has(&row.tiles[1], READ), "row {i}");
            assert!(has(&row.tiles[2], WRITTEN), "row {i}");
        }
        assert_eq!(row.text[0].split(' ').next().unwrap(), names()[i].as_str());
    }
    let img = figure.render();
    assert!(img.pixels().any(|p| p.0 == WRITTEN));
}

#[test]
fn a_blend_has_no_outlines_and_says_how_to_read_it() {
    let b = mixed(AugmentationConfig::Mixup(MixupConfig {
        prob: 1.0,
        ..Default::default()
    }));
    let figure = figure(
        &b,
        &[0, 1, 2, 3],
        &names(),
        &normalization(),
        Caption::default(),
    )
    .unwrap();
    assert!(figure.legend.is_empty());
    assert!(figure.caption[0].starts_with("mixed = lambda"));
    assert!(
        figure
            .rows
            .iter()
            .all(|r| r.tiles.iter().all(Option::is_some))
    );
}

#[test]
fn an_unapplied_batch_says_so_and_has_no_source() {
    let b = mixed(AugmentationConfig::CutMix(CutMixConfig {
        prob: 0.0,
        ..Default::default()
    }));
    assert!(!b.applied);
    let caption = Caption {
        title: vec!["CutMix".into()],
        notes: vec!["a note".into()],
    };
    let figure = figure(&b, &[0, 1, 2, 3], &names(), &normalization(), caption).unwrap();
    assert_eq!(figure.caption[0], "CutMix");
    assert!(figure.caption[1].starts_with("NOT APPLIED"));
    assert_eq!(figure.caption[2], "a note");
    assert!(figure.legend.is_empty());
    for row in &figure.rows {
        assert!(row.tiles[1].is_none());
        assert_eq!(row.text, vec![row.text[0].clone()]);
        assert!(row.text[0].ends_with(" 1.00"));
    }
}

#[test]
fn grafted_cells_are_outlined_as_a_mask() {
    let mut b = mixed(cutmix());
    let cells = vec![true, false, false, true];
    for r in &mut b.samples {
        r.source = Some(0);
        r.region = SampleRegion::Grid {
            rows: 2,
            cols: 2,
            cells: cells.clone(),
        };
    }
    let figure = figure(
        &b,
        &[0, 1, 2, 3],
        &names(),
        &normalization(),
        Caption::default(),
    )
    .unwrap();
    assert_eq!(
        figure.legend.iter().map(|l| l.0).collect::<Vec<_>>(),
        [READ, WRITTEN]
    );
    let mixed = figure.rows[1].tiles[2].as_ref().unwrap();
    // The top-left cell (64 x 64 pixels) is outlined on its inner border, the top-right not.
    assert_eq!(mixed.get_pixel(0, 0).0, WRITTEN);
    assert_eq!(mixed.get_pixel(63, 1).0, WRITTEN);
    assert_ne!(mixed.get_pixel(64, 1).0, WRITTEN);
    assert_ne!(mixed.get_pixel(30, 30).0, WRITTEN);
}

#[test]
fn inputs_that_do_not_fit_are_errors() {
    let b = mixed(cutmix());
    let n = normalization();
    let err = |b: &MixedBatch, labels: &[usize], n: &Normalization| {
        figure(b, labels, &names(), n, Caption::default())
            .unwrap_err()
            .to_string()
    };
    assert!(err(&b, &[0, 1], &n).contains("labels"));
    let rgb = Normalization {
        mean: vec![0.5; 3],
        std: vec![0.25; 3],
    };
    assert!(err(&b, &[0, 1, 2, 3], &rgb).contains("normalisation"));
    let mut short = b.clone();
    short.mixed.pop();
    assert!(err(&short, &[0, 1, 2, 3], &n).contains("image values"));
    let mut foreign = b.clone();
    foreign.samples[0].source = Some(9);
    assert!(err(&foreign, &[0, 1, 2, 3], &n).contains("source"));
}

#[test]
fn the_first_rows_keep_their_sources_from_the_whole_batch() {
    let whole = mixed(cutmix());
    let draw = |b: &MixedBatch| {
        figure(
            b,
            &[0, 1, 2, 3],
            &names(),
            &normalization(),
            Caption::default(),
        )
        .unwrap()
    };
    let mut first = whole.clone();
    first.keep_first(2);
    assert_eq!(first.len(), 2);
    let labels = [0, 1];
    let kept = figure(
        &first,
        &labels,
        &names(),
        &normalization(),
        Caption::default(),
    )
    .unwrap();
    let all = draw(&whole);
    assert_eq!(kept.rows.len(), 2);
    // The sources are a permutation of 4: some kept row reads an image past the kept ones, and
    // every kept row is drawn exactly as in the whole batch's picture.
    assert!(
        first
            .samples
            .iter()
            .any(|s| s.source.is_some_and(|s| s >= 2))
    );
    for i in 0..2 {
        assert!(kept.rows[i].tiles == all.rows[i].tiles, "row {i}");
        assert_eq!(kept.rows[i].text, all.rows[i].text);
    }
    // Keeping more rows than there are changes nothing.
    let mut same = whole.clone();
    same.keep_first(10);
    assert_eq!(same, whole);
}
