//! Box arithmetic of the official CutMix `rand_bbox` / SaliencyMix `saliency_bbox`, in one place.
//!
//! The reference (clovaai/CutMix-PyTorch `train.py`, SaliencyMix `saliencymix.py`; their
//! arithmetic is in `tests/fixtures/mixing/box_cases.json`) computes, in float64 and Python integers:
//!
//! ```text
//! cut_rat = sqrt(1 - lam);  cut_h = int(H * cut_rat);  cut_w = int(W * cut_rat)
//! r1 = clip(row - cut_h // 2, 0, H);  r2 = clip(row + cut_h // 2, 0, H)   (same for columns)
//! lam_adj = 1 - (r2 - r1) * (c2 - c1) / (H * W)
//! ```
//!
//! So an odd cut loses a pixel, a box at the border is clipped (never shifted) and may be empty.
//! The host functions here are the single implementation of that arithmetic; [`device_boxes`]
//! repeats only the clip step as tensor ops for centres that live on the device (saliency peaks
//! computed there), and is tested against the same 500 fixture cases.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// A half-open pixel rectangle: rows `r1..r2`, columns `c1..c2`. May be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PixelBox {
    pub r1: usize,
    pub c1: usize,
    pub r2: usize,
    pub c2: usize,
}

impl PixelBox {
    /// The box `r1..r2` x `c1..c2`.
    pub fn new(r1: usize, c1: usize, r2: usize, c2: usize) -> Self {
        Self { r1, c1, r2, c2 }
    }

    pub fn height(&self) -> usize {
        self.r2.saturating_sub(self.r1)
    }

    pub fn width(&self) -> usize {
        self.c2.saturating_sub(self.c1)
    }

    pub fn area(&self) -> usize {
        self.height() * self.width()
    }

    pub fn is_empty(&self) -> bool {
        self.area() == 0
    }

    /// Whether pixel `(row, col)` lies inside.
    pub fn contains(&self, row: usize, col: usize) -> bool {
        (self.r1..self.r2).contains(&row) && (self.c1..self.c2).contains(&col)
    }

    /// `[r1, c1, r2, c2]`, the order of the fixtures and of the device box tensors.
    pub fn to_array(&self) -> [usize; 4] {
        [self.r1, self.c1, self.r2, self.c2]
    }
}

/// Side lengths `(cut_h, cut_w) = (int(H*sqrt(1-lam)), int(W*sqrt(1-lam)))` in float64 with
/// truncation, exactly as `rand_bbox` computes them. `lam` outside [0, 1] is clamped.
pub fn cut_size(height: usize, width: usize, lam: f64) -> (usize, usize) {
    let cut_rat = (1.0 - lam.clamp(0.0, 1.0)).sqrt();
    (
        (height as f64 * cut_rat) as usize,
        (width as f64 * cut_rat) as usize,
    )
}

/// Side lengths `(int(H*tau), int(W*tau))`: ResizeMix's box (OpenMixup `resizemix`).
pub fn scaled_size(height: usize, width: usize, tau: f64) -> (usize, usize) {
    let tau = tau.clamp(0.0, 1.0);
    (
        (height as f64 * tau) as usize,
        (width as f64 * tau) as usize,
    )
}

/// The box of sides `cut` centred on `centre = (row, col)`, clipped to the image:
/// `clip(c - cut//2, 0, S)..clip(c + cut//2, 0, S)` per axis. Also Cutout's hole.
pub fn centred_box(
    height: usize,
    width: usize,
    (cut_h, cut_w): (usize, usize),
    (row, col): (usize, usize),
) -> PixelBox {
    let (r1, r2) = clipped_span(row, cut_h, height);
    let (c1, c2) = clipped_span(col, cut_w, width);
    PixelBox::new(r1, c1, r2, c2)
}

/// `(clip(c - cut//2, 0, size), clip(c + cut//2, 0, size))` in signed arithmetic.
fn clipped_span(centre: usize, cut: usize, size: usize) -> (usize, usize) {
    let half = (cut / 2) as i64;
    let c = centre as i64;
    let size = size as i64;
    (
        (c - half).clamp(0, size) as usize,
        (c + half).clamp(0, size) as usize,
    )
}

/// `1 - area / (H*W)` in float64 (Python's `int / int` is a correctly rounded division):
/// the weight of the target's own label after pasting `pasted` into it.
pub fn area_lambda(height: usize, width: usize, pasted: &PixelBox) -> f64 {
    1.0 - (pasted.area() as f64 / (height * width) as f64)
}

/// A box taken around `source_anchor` in the source image and pasted around `target_anchor` in
/// the target image (SaliencyMix paper §3.4 mixing styles). Both boxes are the official clipped
/// box of sides `cut` around their anchor, cut down to the extents both anchors allow on each
/// side, so the two have the same size. For `source_anchor == target_anchor` (the default style,
/// salient -> corresponding) this is exactly [`centred_box`].
pub fn anchored_pair(
    height: usize,
    width: usize,
    cut: (usize, usize),
    source_anchor: (usize, usize),
    target_anchor: (usize, usize),
) -> BoxPair {
    let s = centred_box(height, width, cut, source_anchor);
    let t = centred_box(height, width, cut, target_anchor);
    let up = (source_anchor.0 - s.r1).min(target_anchor.0 - t.r1);
    let down = (s.r2 - source_anchor.0.min(s.r2)).min(t.r2 - target_anchor.0.min(t.r2));
    let left = (source_anchor.1 - s.c1).min(target_anchor.1 - t.c1);
    let right = (s.c2 - source_anchor.1.min(s.c2)).min(t.c2 - target_anchor.1.min(t.c2));
    let around =
        |(row, col): (usize, usize)| PixelBox::new(row - up, col - left, row + down, col + right);
    BoxPair {
        source: around(source_anchor),
        target: around(target_anchor),
    }
}

/// Where a paste reads (`source`, in the source image) and writes (`target`); same size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BoxPair {
    pub source: PixelBox,
    pub target: PixelBox,
}

impl BoxPair {
    /// The same box in both images (CutMix, SaliencyMix's default style).
    pub fn same(b: PixelBox) -> Self {
        Self {
            source: b,
            target: b,
        }
    }
}

/// Uploads boxes as an `[N, 4]` Int tensor `[r1, c1, r2, c2]` (the device box layout).
pub fn boxes_to_device(boxes: &[PixelBox], device: &Device) -> Tensor<2, Int> {
    let flat: Vec<i64> = boxes
        .iter()
        .flat_map(|b| b.to_array().map(|v| v as i64))
        .collect();
    Tensor::from_data(TensorData::new(flat, [boxes.len(), 4]), device)
}

/// Reads an `[N, 4]` device box tensor back (for logs and pictures only).
pub fn boxes_to_host(boxes: &Tensor<2, Int>) -> Vec<PixelBox> {
    let values: Vec<i64> = boxes
        .clone()
        .try_into_vec_as::<i64>()
        .expect("an Int tensor reads as i64");
    values
        .chunks_exact(4)
        .map(|b| PixelBox::new(b[0] as usize, b[1] as usize, b[2] as usize, b[3] as usize))
        .collect()
}

/// The clip step of [`centred_box`] / [`anchored_pair`] for anchors that live on the device.
pub mod device_boxes {
    use burn::tensor::{Int, Tensor};

    /// Per-sample spans along one axis, `[N]` each.
    pub struct Spans {
        pub start: Tensor<1, Int>,
        pub end: Tensor<1, Int>,
    }

    /// `clip(c - cut//2, 0, size) .. clip(c + cut//2, 0, size)` for every centre `c` (`[N]`).
    pub fn clipped_spans(centre: Tensor<1, Int>, cut: usize, size: usize) -> Spans {
        let half = (cut / 2) as i64;
        Spans {
            start: centre.clone().sub_scalar(half).clamp(0, size as i64),
            end: centre.add_scalar(half).clamp(0, size as i64),
        }
    }

    /// Device version of [`super::anchored_pair`] along one axis: returns the (source, target)
    /// spans, cut to the extents both anchors allow.
    pub fn anchored_spans(
        source_anchor: Tensor<1, Int>,
        target_anchor: Tensor<1, Int>,
        cut: usize,
        size: usize,
    ) -> (Spans, Spans) {
        let s = clipped_spans(source_anchor.clone(), cut, size);
        let t = clipped_spans(target_anchor.clone(), cut, size);
        let before = (source_anchor.clone() - s.start).min_pair(target_anchor.clone() - t.start);
        let after = (s.end - source_anchor.clone()).min_pair(t.end - target_anchor.clone());
        let span = |anchor: Tensor<1, Int>| Spans {
            start: anchor.clone() - before.clone(),
            end: anchor + after.clone(),
        };
        (span(source_anchor), span(target_anchor))
    }

    /// Stacks row and column spans into the `[N, 4]` box layout `[r1, c1, r2, c2]`.
    pub fn stack(rows: &Spans, cols: &Spans) -> Tensor<2, Int> {
        Tensor::stack(
            vec![
                rows.start.clone(),
                cols.start.clone(),
                rows.end.clone(),
                cols.end.clone(),
            ],
            1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{devices, fixtures_dir};
    use serde_json::Value;

    struct Case {
        h: usize,
        w: usize,
        lam: f64,
        centre: (usize, usize),
        cut: (usize, usize),
        expected: PixelBox,
        lam_adj: f64,
    }

    /// The numbers after every `"key": ` in the file, parsed with Rust's correctly rounded
    /// `str::parse` (serde_json's default float parser may be off by an ulp, and these cases
    /// sit exactly where an ulp matters).
    fn exact_floats(text: &str, key: &str) -> Vec<f64> {
        text.split(&format!("\"{key}\": "))
            .skip(1)
            .map(|rest| {
                let end = rest.find([',', '\n', '}']).expect("a number ends");
                rest[..end].trim().parse().expect("a float")
            })
            .collect()
    }

    fn cases() -> Vec<Case> {
        let path = fixtures_dir().join("mixing/box_cases.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let json: Value = serde_json::from_str(&text).expect("box_cases.json parses");
        let lams = exact_floats(&text, "lam");
        let lam_adjs = exact_floats(&text, "lam_adj");
        let u = |v: &Value| v.as_u64().expect("an integer") as usize;
        json["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let e = c["expected"].as_array().expect("expected");
                Case {
                    h: u(&c["H"]),
                    w: u(&c["W"]),
                    lam: lams[i],
                    centre: (u(&c["center"][0]), u(&c["center"][1])),
                    cut: (u(&c["cut_h"]), u(&c["cut_w"])),
                    expected: PixelBox::new(u(&e[0]), u(&e[1]), u(&e[2]), u(&e[3])),
                    lam_adj: lam_adjs[i],
                }
            })
            .collect()
    }

    #[test]
    fn all_500_fixture_boxes_match_the_official_arithmetic_exactly() {
        let cases = cases();
        assert_eq!(cases.len(), 500);
        for (i, c) in cases.iter().enumerate() {
            assert_eq!(cut_size(c.h, c.w, c.lam), c.cut, "case {i}: cut size");
            let b = centred_box(c.h, c.w, c.cut, c.centre);
            assert_eq!(b, c.expected, "case {i}: box");
            let lam = area_lambda(c.h, c.w, &b);
            assert_eq!(lam.to_bits(), c.lam_adj.to_bits(), "case {i}: lam_adj");
            // The default mixing style reduces to the official box.
            assert_eq!(
                anchored_pair(c.h, c.w, c.cut, c.centre, c.centre),
                BoxPair::same(b)
            );
        }
    }

    #[test]
    fn device_clip_matches_the_fixtures_on_every_device() {
        let cases = cases();
        for device in devices() {
            // One batch per image size keeps the device calls few.
            let mut sizes: Vec<(usize, usize, (usize, usize))> =
                cases.iter().map(|c| (c.h, c.w, c.cut)).collect();
            sizes.sort();
            sizes.dedup();
            for (h, w, cut) in sizes {
                let group: Vec<&Case> = cases
                    .iter()
                    .filter(|c| (c.h, c.w, c.cut) == (h, w, cut))
                    .collect();
                let rows: Vec<i64> = group.iter().map(|c| c.centre.0 as i64).collect();
                let cols: Vec<i64> = group.iter().map(|c| c.centre.1 as i64).collect();
                let n = group.len();
                let r = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &device);
                let c = Tensor::<1, Int>::from_data(TensorData::new(cols, [n]), &device);
                let boxes = device_boxes::stack(
                    &device_boxes::clipped_spans(r.clone(), cut.0, h),
                    &device_boxes::clipped_spans(c.clone(), cut.1, w),
                );
                let got = boxes_to_host(&boxes);
                for (g, case) in got.iter().zip(&group) {
                    assert_eq!(*g, case.expected, "{h}x{w} centre {:?}", case.centre);
                }
                // Anchored spans with equal anchors are the plain clipped box.
                let (s_rows, t_rows) = device_boxes::anchored_spans(r.clone(), r, cut.0, h);
                let (s_cols, t_cols) = device_boxes::anchored_spans(c.clone(), c, cut.1, w);
                assert_eq!(boxes_to_host(&device_boxes::stack(&s_rows, &s_cols)), got);
                assert_eq!(boxes_to_host(&device_boxes::stack(&t_rows, &t_cols)), got);
            }
        }
    }

    #[test]
    fn anchored_pairs_have_equal_sizes_inside_both_images() {
        // Source peak in a corner, target peak in the middle: the corner limits both boxes.
        let p = anchored_pair(32, 32, (16, 16), (0, 31), (16, 16));
        assert_eq!(p.source, PixelBox::new(0, 23, 8, 32));
        assert_eq!(p.target, PixelBox::new(16, 8, 24, 17));
        assert_eq!(p.source.height(), p.target.height());
        assert_eq!(p.source.width(), p.target.width());
    }

    #[test]
    fn device_anchored_spans_match_the_host_pairs() {
        let anchors = [(0usize, 29usize), (5, 5), (31, 0), (16, 16), (30, 2)];
        for device in devices() {
            for s in anchors {
                for t in anchors {
                    let host = anchored_pair(32, 30, (13, 20), s, t);
                    let one = |v: usize| {
                        Tensor::<1, Int>::from_data(TensorData::new(vec![v as i64], [1]), &device)
                    };
                    let (sr, tr) = device_boxes::anchored_spans(one(s.0), one(t.0), 13, 32);
                    let (sc, tc) = device_boxes::anchored_spans(one(s.1), one(t.1), 20, 30);
                    assert_eq!(
                        boxes_to_host(&device_boxes::stack(&sr, &sc)),
                        vec![host.source]
                    );
                    assert_eq!(
                        boxes_to_host(&device_boxes::stack(&tr, &tc)),
                        vec![host.target]
                    );
                }
            }
        }
    }
}
