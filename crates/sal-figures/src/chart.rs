//! Charts drawn with plotters on an [`RgbImage`]: training curves, per epoch; bars of
//! accuracies (the evaluations of a run).
//!
//! plotters is built without its font features (they need system fonts): [`ImageBackend`]
//! implements its drawing backend over an `RgbImage` and draws every text with the bitmap
//! [`crate::font`], rotated where plotters asks for it, and tells plotters the size of
//! that text so axis labels are laid out around it.

use std::convert::Infallible;

use image::{Rgb, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use crate::FigureError;
use crate::font::{self, GLYPH_HEIGHT, LINE_HEIGHT};

/// One epoch of the training curves; a value that is missing or not finite is left out of its
/// curve.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CurvePoint {
    /// Counted from 1.
    pub epoch: usize,
    pub train_loss: Option<f64>,
    pub test_loss: Option<f64>,
    /// Top-1 accuracy in percent.
    pub train_top1: Option<f64>,
    pub test_top1: Option<f64>,
    /// The learning rate the epoch trained with.
    pub lr: Option<f64>,
}

/// The colour of the training curves (blue) and of the test curves (orange).
pub const TRAIN: [u8; 3] = [31, 119, 180];
pub const TEST: [u8; 3] = [230, 110, 0];
/// The colour of the learning rate (green).
pub const LR: [u8; 3] = [44, 160, 44];
/// The size [`training_curves`] is usually drawn at: three panels side by side.
pub const CURVES_SIZE: (u32, u32) = (1380, 400);

const WHITE_RGB: [u8; 3] = [255, 255, 255];
/// Font size (plotters' units) of titles and of tick labels; see [`text_scale`].
const TITLE_SIZE: u32 = 20;
const LABEL_SIZE: u32 = 16;
/// Curves of more points are drawn without a dot per epoch.
const MAX_DOTS: usize = 40;

/// Training and test loss (left panel), top-1 accuracy (middle panel) and the learning rate
/// (right panel) per epoch, with a legend on top, on a `width x height` white picture. Empty
/// input draws empty axes.
pub fn training_curves(
    epochs: &[CurvePoint],
    (width, height): (u32, u32),
) -> Result<RgbImage, FigureError> {
    let mut img = RgbImage::from_pixel(width, height, Rgb(WHITE_RGB));
    let entries = [("train", TRAIN), ("test", TEST)];
    {
        let root = ImageBackend { img: &mut img }.into_drawing_area();
        let (legend, panels) = root.split_vertically(legend_height(&entries, width).min(height));
        draw_legend(&legend, &entries)?;
        let panels = panels.split_evenly((1, 3));
        let curves = |f: fn(&CurvePoint) -> Option<f64>| points(epochs, f);
        let loss = [curves(|e| e.train_loss), curves(|e| e.test_loss)];
        let top1 = [curves(|e| e.train_top1), curves(|e| e.test_top1)];
        let lr = [curves(|e| e.lr)];
        let x = x_range(epochs);
        let two = |c: [Vec<(f64, f64)>; 2]| c.into_iter().zip([TRAIN, TEST]).collect::<Vec<_>>();
        let (loss_y, top1_y) = (loss_range(&loss), top1_range(&top1));
        let lr_y = loss_range(&lr);
        panel(&panels[0], "loss", x, loss_y, &two(loss), &fixed_label)?;
        panel(&panels[1], "top-1 (%)", x, top1_y, &two(top1), &fixed_label)?;
        let [lr] = lr;
        panel(
            &panels[2],
            "learning rate",
            x,
            lr_y,
            &[(lr, LR)],
            &short_label,
        )?;
        root.present().map_err(chart_error)?;
    }
    Ok(img)
}

/// Ten colours told apart easily (matplotlib's `tab10`), for charts of many lines.
pub const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// One named line of [`compare_curves`]: `(epoch, value)` points.
#[derive(Debug, Clone)]
pub struct NamedCurve<'a> {
    pub name: &'a str,
    pub colour: [u8; 3],
    pub points: Vec<(f64, f64)>,
}

/// Named curves over epochs (e.g. the test error of several methods) in a panel titled
/// `title`, the value axis spanning the values; with `zoom_from`, a second panel beside it of
/// the epochs from `zoom_from` on with a value axis of their own, so that the last epochs'
/// differences show. A legend of the names on top, in as many rows as it needs. Non-finite
/// points are left out.
pub fn compare_curves(
    title: &str,
    curves: &[NamedCurve<'_>],
    zoom_from: Option<usize>,
    (width, height): (u32, u32),
) -> Result<RgbImage, FigureError> {
    let mut img = RgbImage::from_pixel(width, height, Rgb(WHITE_RGB));
    let entries: Vec<(&str, [u8; 3])> = curves.iter().map(|c| (c.name, c.colour)).collect();
    let lines = |from: f64| -> Vec<Curve> {
        curves
            .iter()
            .map(|c| {
                let points = c.points.iter().copied();
                let kept = points.filter(|p| p.0 >= from && p.0.is_finite() && p.1.is_finite());
                (kept.collect(), c.colour)
            })
            .collect()
    };
    let epochs = || curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let first = epochs().fold(f64::INFINITY, f64::min);
    let last = epochs().fold(f64::NEG_INFINITY, f64::max);
    let (first, last) = if first <= last {
        (first, last)
    } else {
        (1.0, 1.0)
    };
    {
        let root = ImageBackend { img: &mut img }.into_drawing_area();
        let (legend, plot) = root.split_vertically(legend_height(&entries, width).min(height));
        draw_legend(&legend, &entries)?;
        let draw = |area, from: f64, title: &str| {
            let curves = lines(from);
            let x = (from - 0.5, last + 0.5);
            panel(area, title, x, value_range(&curves), &curves, &fixed_label)
        };
        match zoom_from
            .map(|z| z as f64)
            .filter(|&z| z > first && z <= last)
        {
            Some(zoom) => {
                let halves = plot.split_evenly((1, 2));
                draw(&halves[0], first, title)?;
                draw(
                    &halves[1],
                    zoom,
                    &format!("{title}, epochs {zoom} to {last}"),
                )?;
            }
            None => draw(&plot, first, title)?,
        }
        root.present().map_err(chart_error)?;
    }
    Ok(img)
}

/// The values' span with 5 % of it as a margin on either side (0 to 1 without values).
fn value_range(curves: &[Curve]) -> (f64, f64) {
    let values = || curves.iter().flat_map(|c| c.0.iter().map(|p| p.1));
    let lo = values().fold(f64::INFINITY, f64::min);
    let hi = values().fold(f64::NEG_INFINITY, f64::max);
    if lo > hi {
        return (0.0, 1.0);
    }
    let margin = ((hi - lo) * 0.05).max(0.05 * hi.abs().max(1e-3));
    (lo - margin, hi + margin)
}

/// `(epoch, value)` of the epochs where `value` has a finite value.
fn points(epochs: &[CurvePoint], value: fn(&CurvePoint) -> Option<f64>) -> Vec<(f64, f64)> {
    epochs
        .iter()
        .filter_map(|e| {
            value(e)
                .filter(|v| v.is_finite())
                .map(|v| (e.epoch as f64, v))
        })
        .collect()
}

/// The epochs, half an epoch of room on either side (epoch 1 alone still has a width).
fn x_range(epochs: &[CurvePoint]) -> (f64, f64) {
    let lo = epochs.iter().map(|e| e.epoch).min().unwrap_or(1) as f64;
    let hi = epochs.iter().map(|e| e.epoch).max().unwrap_or(1) as f64;
    (lo - 0.5, hi + 0.5)
}

/// 0 to 10 % above the largest loss (0 to 1 without values).
fn loss_range(curves: &[Vec<(f64, f64)>]) -> (f64, f64) {
    let max = curves.iter().flatten().map(|p| p.1).fold(0.0, f64::max);
    (0.0, if max > 0.0 { max * 1.1 } else { 1.0 })
}

/// The accuracies' span widened to multiples of 5 % within [0, 100] (all of it without values).
fn top1_range(curves: &[Vec<(f64, f64)>]) -> (f64, f64) {
    let values = || curves.iter().flatten().map(|p| p.1);
    let lo = values().fold(f64::INFINITY, f64::min);
    let hi = values().fold(f64::NEG_INFINITY, f64::max);
    if lo > hi {
        return (0.0, 100.0);
    }
    let lo = ((lo - 1.0) / 5.0).floor() * 5.0;
    let hi = ((hi + 1.0) / 5.0).ceil() * 5.0;
    (
        lo.clamp(0.0, 95.0),
        hi.clamp(lo.clamp(0.0, 95.0) + 5.0, 100.0),
    )
}

fn chart_error<E: std::error::Error>(e: E) -> FigureError {
    FigureError::Chart(e.to_string())
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Vertical bars, one per `(label, value)`, values in percent (0 to 100), the value written
/// above each bar, `title` on top, on a `width x height` white picture.
pub fn percent_bars(
    title: &str,
    bars: &[(String, f64)],
    size: (u32, u32),
) -> Result<RgbImage, FigureError> {
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    // `grouped_bars` refuses no bars and non-finite values.
    let values: Vec<Option<f64>> = bars.iter().map(|b| Some(b.1)).collect();
    let series = [BarSeries {
        name: "",
        colour: TRAIN,
        values,
        errors: Vec::new(),
    }];
    grouped_bars(title, "top-1 (%)", &labels, &series, 100.0, size)
}

/// One series of [`grouped_bars`]: a bar per group (`None`: no bar there).
#[derive(Debug, Clone)]
pub struct BarSeries<'a> {
    /// The legend's name; empty draws no legend entry.
    pub name: &'a str,
    pub colour: [u8; 3],
    pub values: Vec<Option<f64>>,
    /// Half the length of each bar's error bar (e.g. a standard deviation over seeds), drawn as
    /// a whisker from `value - e` to `value + e` and written beside the value; empty, or `None`
    /// at a bar: no error bar.
    pub errors: Vec<Option<f64>>,
}

impl BarSeries<'_> {
    fn error(&self, i: usize) -> Option<f64> {
        self.errors.get(i).copied().flatten()
    }

    /// The value written at bar `i`: `v` or `v ± e`.
    fn label(&self, i: usize, v: f64, decimals: usize) -> String {
        match self.error(i) {
            Some(e) => format!("{v:.decimals$} ± {e:.decimals$}"),
            None => format!("{v:.decimals$}"),
        }
    }
}

/// Decimals of the y axis's labels for an axis up to `top`, so that small ranges (hours of
/// training, under 1) keep distinct labels; the bars' values get one more.
pub(crate) fn axis_decimals(top: f64) -> usize {
    if top >= 10.0 {
        0
    } else if top >= 1.0 {
        1
    } else {
        2
    }
}

/// Bars in groups, one group per label and one bar per series side by side, each value (with
/// its error, where the series has one) written at its bar; the value axis from 0 to a margin
/// above `y_max` (or the largest value and error bar), labelled `y_desc`; a legend of the
/// named series under the title.
///
/// The groups stand side by side with their labels under them while the longest label fits
/// its group's width; otherwise the chart turns on its side: one group per line, labels on
/// the left, bars growing to the right (long config names stay readable, unrotated).
pub fn grouped_bars(
    title: &str,
    y_desc: &str,
    labels: &[String],
    series: &[BarSeries<'_>],
    y_max: f64,
    (width, height): (u32, u32),
) -> Result<RgbImage, FigureError> {
    let finite = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().chain(s.errors.iter().flatten()));
    if labels.is_empty()
        || series.is_empty()
        || series.iter().any(|s| {
            s.values.len() != labels.len()
                || !(s.errors.is_empty() || s.errors.len() == labels.len())
        })
        || finite.clone().any(|v| !v.is_finite())
    {
        return Err(FigureError::Shape(format!(
            "{} groups of bars with {} series of finite values (and errors), one per group",
            labels.len(),
            series.len()
        )));
    }
    let highest = series
        .iter()
        .flat_map(|s| {
            s.values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| v + s.error(i).unwrap_or(0.0).abs()))
        })
        .fold(y_max, f64::max);
    let scale = text_scale(f64::from(LABEL_SIZE));
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let label_width = font::text_width(longest, scale) as u32;
    let sideways = label_width + 8 > width.saturating_sub(100) / labels.len() as u32;
    // On its side, the values are written right of the bars: room for the longest.
    let top = highest * if sideways { 1.3 } else { 1.1 };
    let digits = axis_decimals(top);
    // Values are written with a decimal more than the axis; with an error bar, two more (an
    // error of a few tenths keeps two significant digits).
    let with_errors = series.iter().any(|s| s.errors.iter().any(Option::is_some));
    let value_digits = digits + if with_errors { 2 } else { 1 };
    let named: Vec<(&str, [u8; 3])> = series
        .iter()
        .filter(|s| !s.name.is_empty())
        .map(|s| (s.name, s.colour))
        .collect();
    let mut img = RgbImage::from_pixel(width, height, Rgb(WHITE_RGB));
    {
        let root = ImageBackend { img: &mut img }.into_drawing_area();
        let plot = if named.is_empty() {
            root.clone()
        } else {
            let (legend, plot) = root.split_vertically(legend_height(&named, width));
            draw_legend(&legend, &named)?;
            plot
        };
        let n = labels.len();
        // Group `i`'s position on the category axis; on its side the first group is on top.
        let at = |i: usize| {
            if sideways {
                (n - 1 - i) as f64
            } else {
                i as f64
            }
        };
        let name = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-9 && i >= 0.0 && (i as usize) < n {
                labels[at(i as usize) as usize].clone()
            } else {
                String::new()
            }
        };
        let value_label = |v: &f64| format!("{v:.digits$}");
        let groups = -0.5..n as f64 - 0.5;
        let mut builder = ChartBuilder::on(&plot);
        builder
            .caption(title, ("sans-serif", TITLE_SIZE))
            .margin(12)
            .margin_right(24);
        let width = 0.7 / series.len() as f64;
        // Bar `k` of group `i`: its span on the category axis.
        let span = |i: usize, k: usize| {
            let lo = at(i) - 0.35 + k as f64 * width;
            (lo, lo + width)
        };
        let (x_range, y_range) = match sideways {
            true => (0.0..top, groups),
            false => (groups, 0.0..top),
        };
        let mut chart = builder
            .x_label_area_size(if sideways { 48 } else { 40 })
            .y_label_area_size(if sideways { label_width + 16 } else { 64 })
            .build_cartesian_2d(x_range, y_range)
            .map_err(chart_error)?;
        let mut mesh = chart.configure_mesh();
        mesh.max_light_lines(0)
            .label_style(("sans-serif", LABEL_SIZE))
            .axis_desc_style(("sans-serif", LABEL_SIZE))
            .bold_line_style(RGBColor(220, 220, 220));
        if sideways {
            mesh.y_labels(n)
                .x_labels(6)
                .disable_y_mesh()
                .y_label_formatter(&name)
                .x_label_formatter(&value_label)
                .x_desc(y_desc);
        } else {
            mesh.x_labels(n)
                .y_labels(6)
                .disable_x_mesh()
                .x_label_formatter(&name)
                .y_label_formatter(&value_label)
                .y_desc(y_desc);
        }
        mesh.draw().map_err(chart_error)?;
        // A point at `value` along the value axis and `category` along the groups' axis.
        let point = |value: f64, category: f64| match sideways {
            true => (value, category),
            false => (category, value),
        };
        let anchor = match sideways {
            true => Pos::new(HPos::Left, VPos::Center),
            false => Pos::new(HPos::Center, VPos::Bottom),
        };
        let style = TextStyle::from(("sans-serif", LABEL_SIZE))
            .color(&BLACK)
            .pos(anchor);
        let whisker = BLACK.stroke_width(2);
        for (k, s) in series.iter().enumerate() {
            let bars = || {
                s.values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i, v, span(i, k))))
            };
            chart
                .draw_series(bars().map(|(_, v, (lo, hi))| {
                    Rectangle::new([point(0.0, lo), point(v, hi)], rgb(s.colour).filled())
                }))
                .map_err(chart_error)?;
            for (i, v, (lo, hi)) in bars() {
                let mid = (lo + hi) / 2.0;
                let mut end = v;
                if let Some(e) = s.error(i) {
                    // The whisker from v - e to v + e, a cap at either end.
                    let (low, cap) = (v - e.abs(), (hi - lo) / 4.0);
                    end = v + e.abs();
                    let lines = [
                        [point(low, mid), point(end, mid)],
                        [point(low, mid - cap), point(low, mid + cap)],
                        [point(end, mid - cap), point(end, mid + cap)],
                    ];
                    chart
                        .draw_series(lines.map(|l| PathElement::new(l, whisker)))
                        .map_err(chart_error)?;
                }
                let text = s.label(i, v, value_digits);
                chart
                    .draw_series([Text::new(text, point(end + top * 0.01, mid), style.clone())])
                    .map_err(chart_error)?;
            }
        }
        root.present().map_err(chart_error)?;
    }
    Ok(img)
}

/// The height of [`draw_legend`]'s rows for `entries` on a picture `width` wide.
fn legend_height(entries: &[(&str, [u8; 3])], width: u32) -> u32 {
    let scale = text_scale(f64::from(LABEL_SIZE));
    (legend_rows(entries, width).len() * LINE_HEIGHT * scale + 8) as u32
}

/// The legend's entries in rows that fit `width` (at least one entry per row).
fn legend_rows<'e, 'a>(
    entries: &'e [(&'a str, [u8; 3])],
    width: u32,
) -> Vec<&'e [(&'a str, [u8; 3])]> {
    let mut rows = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, (text, _)) in entries.iter().enumerate() {
        let w = legend_entry_width(text) + LEGEND_GAP;
        if i > start && used + w > width as i32 {
            rows.push(&entries[start..i]);
            (start, used) = (i, 0);
        }
        used += w;
    }
    rows.push(&entries[start..]);
    rows
}

/// Space between two legend entries, in pixels.
const LEGEND_GAP: i32 = 24;

/// A legend entry's width: its line, a gap, its text.
fn legend_entry_width(text: &str) -> i32 {
    30 + 6 + font::text_width(text.chars().count(), text_scale(f64::from(LABEL_SIZE))) as i32
}

/// Each `(name, colour)` with a line of its colour, in rows centred on the area (as many rows
/// as [`legend_height`] made room for).
fn draw_legend(
    area: &DrawingArea<ImageBackend<'_>, Shift>,
    entries: &[(&str, [u8; 3])],
) -> Result<(), FigureError> {
    let (w, _) = area.dim_in_pixel();
    let row_height = (LINE_HEIGHT * text_scale(f64::from(LABEL_SIZE))) as i32;
    let style = TextStyle::from(("sans-serif", LABEL_SIZE))
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in legend_rows(entries, w).into_iter().enumerate() {
        let total: i32 = row
            .iter()
            .map(|(t, _)| legend_entry_width(t) + LEGEND_GAP)
            .sum::<i32>()
            - LEGEND_GAP;
        let mut x = (w as i32 - total) / 2;
        let y = 4 + row_height * r as i32 + row_height / 2;
        for &(text, colour) in row {
            area.draw(&PathElement::new(
                vec![(x, y), (x + 30, y)],
                rgb(colour).stroke_width(3),
            ))
            .map_err(chart_error)?;
            area.draw_text(text, &style, (x + 36, y))
                .map_err(chart_error)?;
            x += legend_entry_width(text) + LEGEND_GAP;
        }
    }
    Ok(())
}

/// A curve's `(epoch, value)` points and its colour.
type Curve = (Vec<(f64, f64)>, [u8; 3]);

/// A tick value with two decimals, trailing zeros dropped (losses, accuracies).
fn fixed_label(v: &f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A tick value in at most 3 significant digits (learning rates: 0.1, 0.001, 5e-4).
fn short_label(v: &f64) -> String {
    if *v == 0.0 {
        return "0".into();
    }
    let s = format!("{v:.3e}");
    let (mantissa, exponent) = s.split_once('e').expect("`{:e}` has an exponent");
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    if (-3..=3).contains(&exponent) {
        format!("{}", format!("{v:.6}").parse::<f64>().unwrap_or(*v))
    } else {
        format!("{mantissa}e{exponent}")
    }
}

/// One panel: a title, axes with tick labels, each curve in its colour with a dot per epoch.
fn panel(
    area: &DrawingArea<ImageBackend<'_>, Shift>,
    title: &str,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    curves: &[Curve],
    value_label: &dyn Fn(&f64) -> String,
) -> Result<(), FigureError> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", TITLE_SIZE))
        .margin(12)
        // Room for half of the last epoch's label.
        .margin_right(24)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(chart_error)?;
    let epoch_label = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 && *v >= 0.0 {
            format!("{}", v.round() as i64)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("epoch")
        // At most 6 epoch labels (3-digit epochs stay apart), one per epoch for short runs.
        .x_labels(((x1 - x0).round() as usize).clamp(1, 6))
        .y_labels(6)
        .max_light_lines(0)
        .x_label_formatter(&epoch_label)
        .y_label_formatter(value_label)
        .label_style(("sans-serif", LABEL_SIZE))
        .axis_desc_style(("sans-serif", LABEL_SIZE))
        .bold_line_style(RGBColor(220, 220, 220))
        .draw()
        .map_err(chart_error)?;
    for (curve, colour) in curves {
        let colour = rgb(*colour);
        chart
            .draw_series(LineSeries::new(
                curve.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(chart_error)?;
        // A dot per epoch while they stay apart (and so that a single epoch shows).
        if curve.len() <= MAX_DOTS {
            chart
                .draw_series(curve.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(chart_error)?;
        }
    }
    Ok(())
}

/// The bitmap font's scale for a plotters font size: about 10 size units per font scale step
/// (16 and 20 draw 16 pixels tall glyphs), at least 1.
fn text_scale(size: f64) -> usize {
    ((size / 10.0).round() as usize).max(1)
}

/// plotters' drawing backend on an [`RgbImage`]: blends pixels, draws text with the bitmap font.
pub struct ImageBackend<'a> {
    pub img: &'a mut RgbImage,
}

impl DrawingBackend for ImageBackend<'_> {
    type ErrorType = Infallible;

    fn get_size(&self) -> (u32, u32) {
        self.img.dimensions()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Infallible>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Infallible>> {
        Ok(())
    }

    fn draw_pixel(
        &mut self,
        (x, y): BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        let (w, h) = self.img.dimensions();
        if x < 0 || y < 0 || x >= w as i32 || y >= h as i32 || color.alpha <= 0.0 {
            return Ok(());
        }
        let alpha = color.alpha.min(1.0);
        let px = self.img.get_pixel_mut(x as u32, y as u32);
        let (r, g, b) = color.rgb;
        for (old, new) in px.0.iter_mut().zip([r, g, b]) {
            *old = (f64::from(*old) * (1.0 - alpha) + f64::from(new) * alpha).round() as u8;
        }
        Ok(())
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        let color = style.color();
        if color.alpha <= 0.0 {
            return Ok(());
        }
        let scale = text_scale(style.size());
        let (w, h) = text_size(text, scale);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Center => -w / 2,
            HPos::Right => -w,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let transform = style.transform();
        let s = scale as i32;
        for (fx, fy) in font::pixels(text) {
            for sy in 0..s {
                for sx in 0..s {
                    let (x, y) = (fx as i32 * s + sx + dx, fy as i32 * s + sy + dy);
                    let (x, y) = transform.transform(x, y);
                    self.draw_pixel((pos.0 + x, pos.1 + y), color)?;
                }
            }
        }
        Ok(())
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Infallible>> {
        let (w, h) = text_size(text, text_scale(style.size()));
        Ok((w as u32, h as u32))
    }
}

/// Width and height in pixels of one line of bitmap text (unrotated).
fn text_size(text: &str, scale: usize) -> (i32, i32) {
    (
        font::text_width(text.chars().count(), scale) as i32,
        (GLYPH_HEIGHT * scale) as i32,
    )
}

#[cfg(test)]
mod tests;
