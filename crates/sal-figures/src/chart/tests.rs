use super::*;

fn epochs(n: usize) -> Vec<CurvePoint> {
    (1..=n)
        .map(|e| {
            let t = e as f64;
            CurvePoint {
                epoch: e,
                train_loss: Some(2.0 / t),
                test_loss: Some(1.8 / t + 0.1),
                train_top1: Some(60.0 + 3.0 * t),
                test_top1: Some(62.0 + 2.5 * t),
                lr: Some(if e <= n / 2 { 0.1 } else { 0.01 }),
            }
        })
        .collect()
}

/// Pixels of `colour` in columns `x0..x1`, below the legend.
fn count(img: &RgbImage, colour: [u8; 3], x0: u32, x1: u32) -> usize {
    let legend_rows = (LINE_HEIGHT * 2 + 8) as u32;
    img.enumerate_pixels()
        .filter(|(x, y, p)| (x0..x1).contains(x) && *y >= legend_rows && p.0 == colour)
        .count()
}

#[test]
fn curves_of_both_splits_and_the_learning_rate_are_drawn_in_their_panels() {
    let img = training_curves(&epochs(12), CURVES_SIZE).unwrap();
    assert_eq!(img.dimensions(), CURVES_SIZE);
    let third = CURVES_SIZE.0 / 3;
    for colour in [TRAIN, TEST] {
        assert!(count(&img, colour, 0, third) > 200, "{colour:?} left");
        assert!(
            count(&img, colour, third, 2 * third) > 200,
            "{colour:?} middle"
        );
        assert_eq!(count(&img, colour, 2 * third, CURVES_SIZE.0), 0);
    }
    assert_eq!(count(&img, LR, 0, 2 * third), 0);
    // The step from 0.1 to 0.01: the curve spans most of the panel's height.
    let lr_rows: Vec<u32> = img
        .enumerate_pixels()
        .filter(|(x, _, p)| *x >= 2 * third && p.0 == LR)
        .map(|(_, y, _)| y)
        .collect();
    let span = lr_rows.iter().max().unwrap() - lr_rows.iter().min().unwrap();
    assert!(span > CURVES_SIZE.1 / 2, "{span}");
    // Text: the legend strip on top, tick labels and titles in each panel.
    let legend_rows = (LINE_HEIGHT * 2 + 8) as u32;
    let black_in = |y0: u32, y1: u32, x0: u32, x1: u32| {
        img.enumerate_pixels()
            .filter(|(x, y, p)| (y0..y1).contains(y) && (x0..x1).contains(x) && p.0 == [0, 0, 0])
            .count()
    };
    assert!(black_in(0, legend_rows, 0, CURVES_SIZE.0) > 50);
    // The y tick labels left of each plot.
    assert!(black_in(legend_rows, CURVES_SIZE.1, 0, 64) > 100);
    assert!(black_in(legend_rows, CURVES_SIZE.1, third, third + 64) > 100);
    assert!(black_in(legend_rows, CURVES_SIZE.1, 2 * third, 2 * third + 64) > 100);
}

#[test]
fn missing_and_non_finite_values_are_skipped() {
    let mut e = epochs(5);
    e[1].test_loss = None;
    e[2].train_top1 = Some(f64::NAN);
    e[3].train_loss = Some(f64::INFINITY);
    for m in &mut e {
        m.test_top1 = None;
    }
    e[4].lr = None;
    let img = training_curves(&e, (960, 300)).unwrap();
    assert_eq!(img.dimensions(), (960, 300));
    // No test accuracy at all: the middle panel has no test colour, the left one has.
    assert!(count(&img, TEST, 0, 320) > 50);
    assert_eq!(count(&img, TEST, 330, 640), 0);
    assert!(count(&img, TRAIN, 330, 640) > 50);
    assert!(count(&img, LR, 650, 960) > 50);
}

#[test]
fn empty_input_draws_empty_axes() {
    let img = training_curves(&[], CURVES_SIZE).unwrap();
    assert_eq!(img.dimensions(), CURVES_SIZE);
    // The legend's lines are the only curve colour.
    let legend_rows = (LINE_HEIGHT * 2 + 8) as u32;
    let below = |c: [u8; 3]| {
        img.enumerate_pixels()
            .filter(|(_, y, p)| *y >= legend_rows && p.0 == c)
            .count()
    };
    assert_eq!(below(TRAIN) + below(TEST) + below(LR), 0);
    assert!(img.pixels().any(|p| p.0 == [0, 0, 0]), "titles and ticks");
    // A tiny picture is drawn too, not a panic.
    assert_eq!(training_curves(&[], (8, 8)).unwrap().dimensions(), (8, 8));
}

#[test]
fn one_epoch_shows_as_dots() {
    let img = training_curves(&epochs(1), CURVES_SIZE).unwrap();
    assert!(count(&img, TRAIN, 0, CURVES_SIZE.0) > 2 * 20);
}

#[test]
fn learning_rate_ticks_are_short() {
    assert_eq!(short_label(&0.1), "0.1");
    assert_eq!(short_label(&0.001), "0.001");
    assert_eq!(short_label(&0.0005), "5e-4");
    assert_eq!(short_label(&0.00012), "1.2e-4");
    assert_eq!(short_label(&0.0), "0");
    assert_eq!(short_label(&0.025), "0.025");
}

#[test]
fn ranges_hold_the_values() {
    assert_eq!(x_range(&[]), (0.5, 1.5));
    assert_eq!(x_range(&epochs(4)), (0.5, 4.5));
    assert_eq!(loss_range(&[vec![(1.0, 2.0)], vec![]]), (0.0, 2.2));
    assert_eq!(loss_range(&[vec![], vec![]]), (0.0, 1.0));
    assert_eq!(
        top1_range(&[vec![(1.0, 91.2)], vec![(2.0, 93.7)]]),
        (90.0, 95.0)
    );
    assert_eq!(top1_range(&[vec![(1.0, 99.9)], vec![]]), (95.0, 100.0));
    assert_eq!(top1_range(&[vec![(1.0, 0.0)], vec![]]), (0.0, 5.0));
    assert_eq!(top1_range(&[vec![], vec![]]), (0.0, 100.0));
}

/// The bounding box `(x0, y0, x1, y1)` of the pixels of `colour`.
fn extent(img: &RgbImage, colour: [u8; 3]) -> (u32, u32, u32, u32) {
    img.enumerate_pixels()
        .filter(|(_, _, p)| p.0 == colour)
        .fold((u32::MAX, u32::MAX, 0, 0), |(a, b, c, d), (x, y, _)| {
            (a.min(x), b.min(y), c.max(x + 1), d.max(y + 1))
        })
}

#[test]
fn the_backend_draws_bitmap_text_where_plotters_asks_and_as_large_as_it_says() {
    let mut img = RgbImage::from_pixel(120, 120, Rgb(WHITE_RGB));
    {
        let root = ImageBackend { img: &mut img }.into_drawing_area();
        let style = TextStyle::from(("sans-serif", 20)).color(&RED);
        let (w, h) = root.estimate_text_size("Hello", &style).unwrap();
        assert_eq!((w, h), (58, 16));
        root.draw_text("Hello", &style, (10, 20)).unwrap();
        // Rotated a quarter turn (a y-axis description): taller than wide.
        let rotated = TextStyle::from(("sans-serif", 10))
            .color(&BLUE)
            .transform(FontTransform::Rotate270);
        root.draw_text("Hi", &rotated, (100, 100)).unwrap();
    }
    let (x0, y0, x1, y1) = extent(&img, [255, 0, 0]);
    assert_eq!((x0, y0), (10, 20));
    assert!(x1 <= 10 + 58 && y1 <= 20 + 16, "{x1} {y1}");
    let (x0, y0, x1, y1) = extent(&img, [0, 0, 255]);
    assert!(y1 - y0 > x1 - x0, "{:?}", (x0, y0, x1, y1));
    assert!(x0 >= 100 && y1 <= 101, "{:?}", (x0, y0, x1, y1));
}

#[test]
fn translucent_colours_blend() {
    let mut img = RgbImage::from_pixel(2, 1, Rgb([0, 0, 0]));
    let mut backend = ImageBackend { img: &mut img };
    let half_white = BackendColor {
        alpha: 0.5,
        rgb: (255, 255, 255),
    };
    backend.draw_pixel((0, 0), half_white).unwrap();
    backend.draw_pixel((5, 0), half_white).unwrap();
    backend.draw_pixel((-1, 0), half_white).unwrap();
    assert_eq!(img.get_pixel(0, 0).0, [128, 128, 128]);
    assert_eq!(img.get_pixel(1, 0).0, [0, 0, 0]);
}

#[test]
fn bars_are_as_tall_as_their_values() {
    let bars = vec![("full".to_string(), 100.0), ("half".to_string(), 50.0)];
    let img = percent_bars("t", &bars, (400, 300)).unwrap();
    // Each column of a bar holds as many bar-coloured pixels as the bar is tall: the shortest
    // and the tallest columns are the two bars, one half as tall as the other.
    let heights: Vec<usize> = (0..img.width())
        .map(|x| {
            (0..img.height())
                .filter(|&y| img.get_pixel(x, y).0 == TRAIN)
                .count()
        })
        .filter(|&h| h > 0)
        .collect();
    let (short, tall) = (
        *heights.iter().min().unwrap() as f64,
        *heights.iter().max().unwrap() as f64,
    );
    assert!(
        tall > 100.0 && (short / tall - 0.5).abs() < 0.02,
        "{short} {tall}"
    );
    assert!(percent_bars("t", &[], (400, 300)).is_err());
    assert!(percent_bars("t", &[("x".into(), f64::NAN)], (400, 300)).is_err());
}

#[test]
fn grouped_bars_put_each_series_side_by_side_and_skip_missing_values() {
    let labels = vec!["1".to_string(), "2".to_string()];
    let series = [
        BarSeries {
            name: "ours",
            colour: TRAIN,
            values: vec![Some(20.0), None],
            errors: Vec::new(),
        },
        BarSeries {
            name: "paper",
            colour: TEST,
            values: vec![Some(10.0), Some(40.0)],
            errors: Vec::new(),
        },
    ];
    let img = grouped_bars("t", "error (%)", &labels, &series, 0.0, (500, 300)).unwrap();
    let height = |colour: [u8; 3], x0: u32, x1: u32| {
        (x0..x1)
            .map(|x| {
                (0..img.height())
                    .filter(|&y| img.get_pixel(x, y).0 == colour)
                    .count()
            })
            .max()
            .unwrap()
    };
    let half = img.width() / 2;
    // Group 1: ours twice as tall as the paper's; group 2: no bar of ours, the paper's 4x.
    let (ours, paper) = (height(TRAIN, 70, half), height(TEST, 70, half));
    assert!(
        (ours as f64 / paper as f64 - 2.0).abs() < 0.1,
        "{ours} {paper}"
    );
    assert!(
        height(TRAIN, half, img.width()) < 10,
        "only the legend's line"
    );
    let tall = height(TEST, half, img.width());
    assert!(
        (tall as f64 / paper as f64 - 4.0).abs() < 0.2,
        "{tall} {paper}"
    );
    let short = [BarSeries {
        name: "",
        colour: TRAIN,
        values: vec![Some(1.0)],
        errors: Vec::new(),
    }];
    assert!(grouped_bars("t", "y", &labels, &short, 0.0, (300, 200)).is_err());
    assert!(grouped_bars("t", "y", &[], &[], 0.0, (300, 200)).is_err());
}

#[test]
fn small_axes_keep_distinct_labels() {
    // Percent and error axes as before; an axis of hours under 1 or 10 gets decimals.
    assert_eq!(axis_decimals(110.0), 0);
    assert_eq!(axis_decimals(10.0), 0);
    assert_eq!(axis_decimals(1.001), 1);
    assert_eq!(axis_decimals(0.99), 2);
}

#[test]
fn error_bars_reach_from_value_minus_to_value_plus_the_error() {
    let labels = vec!["a".to_string(), "b".to_string()];
    let series = [BarSeries {
        name: "",
        colour: TRAIN,
        values: vec![Some(40.0), Some(40.0)],
        errors: vec![Some(10.0), None],
    }];
    let img = grouped_bars("t", "error (%)", &labels, &series, 0.0, (500, 400)).unwrap();
    let (x0, bar_top, x1, bar_bottom) = extent(&img, TRAIN);
    let bar = f64::from(bar_bottom - bar_top);
    let black = [0, 0, 0];
    let half = img.width() / 2;
    let dark = |x: u32, y: u32| (x - 1..=x + 1).any(|x| img.get_pixel(x, y).0 == black);
    // Bar "a": its whisker reaches 50 on a bar of 40, a quarter of the bar above its top.
    let mid_a = (x0 + half.min(x1)) / 2;
    let top_a = (0..bar_top)
        .rev()
        .take_while(|&y| dark(mid_a, y))
        .last()
        .expect("a whisker above bar a");
    let above = f64::from(bar_top - top_a);
    assert!(
        (above / bar - 0.25).abs() < 0.05,
        "whisker {above} px above a bar of {bar} px"
    );
    // Bar "b" has no error: nothing dark right above it.
    let mid_b = (half.max(x0) + x1) / 2;
    assert!(
        (bar_top - 6..bar_top).all(|y| !dark(mid_b, y)),
        "no whisker on bar b"
    );
    let errors = [BarSeries {
        name: "",
        colour: TRAIN,
        values: vec![Some(1.0), Some(2.0)],
        errors: vec![Some(f64::NAN), None],
    }];
    assert!(grouped_bars("t", "y", &labels, &errors, 0.0, (300, 200)).is_err());
    let short = [BarSeries {
        errors: vec![Some(1.0)],
        ..errors[0].clone()
    }];
    assert!(grouped_bars("t", "y", &labels, &short, 0.0, (300, 200)).is_err());
}

#[test]
fn labels_too_long_for_their_group_turn_the_chart_on_its_side() {
    let labels: Vec<String> = ["saliencymix-paper-code", "none", "saliency-grafting"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let series = [BarSeries {
        name: "",
        colour: TEST,
        values: vec![Some(10.0), Some(20.0), Some(5.0)],
        errors: vec![Some(0.5), Some(0.5), None],
    }];
    let img = grouped_bars("t", "error (%)", &labels, &series, 0.0, (600, 300)).unwrap();
    // Bars grow to the right, the first label's on top: widths 10, 20, 5 from the top down.
    let widths: Vec<usize> = (0..img.height())
        .map(|y| {
            (0..img.width())
                .filter(|&x| img.get_pixel(x, y).0 == TEST)
                .count()
        })
        .filter(|&n| n > 0)
        .collect();
    let (first, last) = (widths[0] as f64, *widths.last().unwrap() as f64);
    let widest = *widths.iter().max().unwrap() as f64;
    assert!((first / widest - 0.5).abs() < 0.05, "{first} {widest}");
    assert!((last / widest - 0.25).abs() < 0.05, "{last} {widest}");
    // Short labels keep the bars upright.
    let short: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let upright = [BarSeries {
        values: vec![Some(20.0), None, None],
        errors: Vec::new(),
        ..series[0].clone()
    }];
    let img = grouped_bars("t", "y", &short, &upright, 0.0, (600, 300)).unwrap();
    let (x0, y0, x1, y1) = extent(&img, TEST);
    assert!(y1 - y0 > x1 - x0, "upright bar {x0}..{x1} x {y0}..{y1}");
}

#[test]
fn compared_curves_are_drawn_in_both_panels_with_a_legend_in_rows() {
    let names = [
        "none",
        "cutout",
        "mixup",
        "cutmix",
        "saliencymix",
        "saliencymix-paper-code",
    ];
    let curves: Vec<NamedCurve> = names
        .iter()
        .enumerate()
        .map(|(k, name)| NamedCurve {
            name,
            colour: PALETTE[k],
            points: (1..=20)
                .map(|e| (e as f64, 30.0 / e as f64 + k as f64 * 0.1))
                .collect(),
        })
        .collect();
    let (width, height) = (900, 400);
    let img = compare_curves("test error (%)", &curves, Some(11), (width, height)).unwrap();
    let half = width / 2;
    for c in &curves {
        let (x0, _, x1, _) = extent(&img, c.colour);
        assert!(x0 < half && x1 > half + 50, "{} in both panels", c.name);
    }
    // Six long names need two legend rows on 900 pixels.
    let entries: Vec<(&str, [u8; 3])> = curves.iter().map(|c| (c.name, c.colour)).collect();
    let rows = legend_rows(&entries, width);
    assert!(rows.len() >= 2, "{}", rows.len());
    assert_eq!(rows.iter().map(|r| r.len()).sum::<usize>(), names.len());
    assert_eq!(
        legend_rows(&entries[..1], 10).len(),
        1,
        "an entry wider than the picture"
    );
    // No zoom panel where it would start at the first epoch: one panel across the picture.
    let one = compare_curves("t", &curves[..1], Some(1), (width, height)).unwrap();
    let (x0, _, x1, _) = extent(&one, PALETTE[0]);
    assert!(x1 - x0 > half, "{x0}..{x1}");
    assert!(compare_curves("t", &[], None, (300, 200)).is_ok());
}
