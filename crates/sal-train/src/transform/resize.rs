//! Pillow's bilinear resize, bit for bit: what torchvision's `Resize`, `RandomResizedCrop` and
//! `CenterCrop` compute on the PIL images its data sets yield (Pillow `libImaging/Resample.c`,
//! `ImagingResampleInner`).
//!
//! Pillow resamples in two separable passes, horizontal then vertical, each a weighted sum of
//! source pixels with a triangle filter whose support widens with the down-scaling factor (so a
//! down-scale averages every source pixel it covers: antialiasing, unlike textbook bilinear
//! interpolation). The weights are normalised per output pixel, rounded to 22-bit fixed point,
//! and every pass rounds and clamps back to u8: the horizontal pass's output is an 8-bit image.
//! All of that is reproduced here, so a crop resized here equals `img.crop(box).resize(size,
//! Image.BILINEAR)` exactly (tested against Pillow's output in `tests/fixtures/pil-resize`).

use crate::data::ImageItem;
use std::ops::Range;

/// Fixed-point precision of Pillow's 8-bit weights (`PRECISION_BITS`).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// A region of an image: the crop that is resized (torchvision crops before it resizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

impl Window {
    /// The whole `item`.
    pub fn all(item: &ImageItem) -> Self {
        Self {
            top: 0,
            left: 0,
            height: item.height,
            width: item.width,
        }
    }
}

/// The filter taps of one axis (`precompute_coeffs` + `normalize_coeffs_8bpc`): for output index
/// `o`, source indices `first[o] .. first[o] + count[o]` with fixed-point `weights[o * ksize ..]`.
struct Taps {
    ksize: usize,
    first: Vec<usize>,
    count: Vec<usize>,
    weights: Vec<i32>,
}

impl Taps {
    /// The taps resizing `in_size` samples to `out_size`, for the output indices in `outputs`.
    fn new(in_size: usize, out_size: usize, outputs: Range<usize>) -> Self {
        // Pillow's `scale` is `(in1 - in0) / outSize` with the box as floats; exact here.
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        // The bilinear (triangle) filter's support is 1.
        let support = filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let inv_filterscale = 1.0 / filterscale;
        let n = outputs.len();
        let mut taps = Taps {
            ksize,
            first: Vec::with_capacity(n),
            count: Vec::with_capacity(n),
            weights: vec![0; n * ksize],
        };
        let mut k = vec![0f64; ksize];
        for (o, xx) in outputs.enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero, as `as i64` does.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
            let mut ww = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(xmax as usize) {
                let t = ((x as i64 + xmin) as f64 - center + 0.5) * inv_filterscale;
                *kx = triangle(t);
                ww += *kx;
            }
            let out = &mut taps.weights[o * ksize..][..ksize];
            for (w, &kx) in out.iter_mut().zip(&k).take(xmax as usize) {
                let kx = if ww != 0.0 { kx / ww } else { kx };
                let fixed = kx * f64::from(1u32 << PRECISION_BITS);
                *w = if kx < 0.0 {
                    (fixed - 0.5) as i32
                } else {
                    (fixed + 0.5) as i32
                };
            }
            taps.first.push(xmin as usize);
            taps.count.push(xmax as usize);
        }
        taps
    }

    /// Output index `o`'s first source index and its weights.
    fn get(&self, o: usize) -> (usize, &[i32]) {
        (
            self.first[o],
            &self.weights[o * self.ksize..][..self.count[o]],
        )
    }

    fn len(&self) -> usize {
        self.first.len()
    }

    /// One past the last source index any output reads.
    fn end(&self) -> usize {
        (0..self.len())
            .map(|o| self.first[o] + self.count[o])
            .max()
            .unwrap_or(0)
    }
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Pillow's `clip8`: the fixed-point sum back to a u8 level.
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Rounding offset every sum starts from (`1 << (PRECISION_BITS - 1)`).
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// `window` of `item` resized to `out_height x out_width` (Pillow bilinear), keeping only output
/// rows `rows` and columns `cols` (a centre crop of the resized image costs only its pixels).
///
/// The pass order is Pillow 13's (`ImagingResampleInner`): vertical first when the height
/// shrinks by more than twice as many pixels as the width, horizontal first otherwise. Pillow 12
/// and earlier always ran the horizontal pass first; where this rule picks the vertical pass
/// first, their outputs can differ from Pillow 13's by one level at some pixels.
pub(crate) fn resize(
    item: &ImageItem,
    window: Window,
    (out_height, out_width): (usize, usize),
    rows: Range<usize>,
    cols: Range<usize>,
) -> ImageItem {
    let c = item.channels;
    let (oh, ow) = (rows.len(), cols.len());
    // A pass whose size does not change is skipped by Pillow; its identity taps give the same.
    let vertical = Taps::new(window.height, out_height, rows);
    let horizontal = Taps::new(window.width, out_width, cols);
    let shrink_h = window.height as i64 - out_height as i64;
    let shrink_w = window.width as i64 - out_width as i64;
    let vertical_first = shrink_h > 0 && shrink_h > 2 * shrink_w;
    let pixels = if vertical_first {
        // The intermediate 8-bit image: output rows x the window's columns the taps read.
        let used = horizontal.end();
        let cols = window.left..window.left + used;
        let tmp = filter_cols(&item.pixels, item.width, c, window.top, cols, &vertical);
        filter_rows(&tmp, used, c, 0..oh, 0, &horizontal)
    } else {
        let used = vertical.end();
        let rows = window.top..window.top + used;
        let tmp = filter_rows(&item.pixels, item.width, c, rows, window.left, &horizontal);
        filter_cols(&tmp, ow, c, 0, 0..ow, &vertical)
    };
    debug_assert_eq!(pixels.len(), oh * ow * c);
    ImageItem {
        pixels,
        height: oh,
        width: ow,
        channels: c,
        label: item.label,
    }
}

/// The horizontal pass: rows `rows` of `src` (`stride` pixels of `c` channels per row), each
/// filtered by `taps` over the pixels from column `left` on.
fn filter_rows(
    src: &[u8],
    stride: usize,
    c: usize,
    rows: Range<usize>,
    left: usize,
    taps: &Taps,
) -> Vec<u8> {
    let n = taps.len();
    let mut out = vec![0u8; rows.len() * n * c];
    for (row, out) in rows.zip(out.chunks_exact_mut(n * c)) {
        let line = &src[(row * stride + left) * c..];
        for (o, px) in out.chunks_exact_mut(c).enumerate() {
            let (first, weights) = taps.get(o);
            for (ch, v) in px.iter_mut().enumerate() {
                let mut sum = HALF;
                for (t, &w) in weights.iter().enumerate() {
                    sum += i32::from(line[(first + t) * c + ch]) * w;
                }
                *v = clip8(sum);
            }
        }
    }
    out
}

/// The vertical pass: columns `cols` of `src`, filtered by `taps` over the rows from `top` on.
fn filter_cols(
    src: &[u8],
    stride: usize,
    c: usize,
    top: usize,
    cols: Range<usize>,
    taps: &Taps,
) -> Vec<u8> {
    let width = cols.len() * c;
    let mut out = vec![0u8; taps.len() * width];
    for (o, out) in out.chunks_exact_mut(width).enumerate() {
        let (first, weights) = taps.get(o);
        for (i, v) in out.iter_mut().enumerate() {
            let mut sum = HALF;
            for (t, &w) in weights.iter().enumerate() {
                sum += i32::from(src[(top + first + t) * stride * c + cols.start * c + i]) * w;
            }
            *v = clip8(sum);
        }
    }
    out
}

/// torchvision's `Resize(shorter)` (shorter side to `shorter`, the longer scaled and truncated,
/// `_compute_resized_output_size`) followed by `CenterCrop(size)` (offsets
/// `round((side - size) / 2)`, Python's half-to-even `round`).
pub(crate) fn resize_centre_crop(item: &ImageItem, shorter: usize, size: usize) -> ImageItem {
    let (h, w) = (item.height, item.width);
    let (out_h, out_w) = if w <= h {
        (shorter * h / w, shorter)
    } else {
        (shorter, shorter * w / h)
    };
    // The shorter side is `shorter >= size` (checked by the config).
    let offset = |side: usize| ((side - size) as f64 / 2.0).round_ties_even() as usize;
    let (top, left) = (offset(out_h), offset(out_w));
    resize(
        item,
        Window::all(item),
        (out_h, out_w),
        top..top + size,
        left..left + size,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(h: usize, w: usize, c: usize) -> ImageItem {
        ImageItem {
            pixels: (0..h * w * c).map(|i| ((i * 37) % 256) as u8).collect(),
            height: h,
            width: w,
            channels: c,
            label: 3,
        }
    }

    /// An `.npy` of the fixtures as an item (HxW gray or HxWx3 RGB).
    fn fixture(name: &str) -> ImageItem {
        let path = crate::data::fixtures_dir().join("pil_resize").join(name);
        let array = sal_saliency::npy::read(&path).unwrap();
        let channels = array.shape.get(2).copied().unwrap_or(1);
        let sal_saliency::npy::NpyData::U8(pixels) = array.data else {
            panic!("{} is not u8", path.display());
        };
        ImageItem {
            pixels,
            height: array.shape[0],
            width: array.shape[1],
            channels,
            label: 0,
        }
    }

    #[test]
    fn crops_and_resizes_equal_pillow_bit_for_bit() {
        let dir = crate::data::fixtures_dir().join("pil_resize");
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap())
                .unwrap();
        let cases = index["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 15);
        let n = |case: &serde_json::Value, key: &str| case[key].as_u64().unwrap() as usize;
        for case in cases {
            let input = fixture(&format!("{}.npy", case["input"].as_str().unwrap()));
            let want = fixture(case["output"].as_str().unwrap());
            let got = match case["kind"].as_str().unwrap() {
                "crop-resize" => {
                    let window = Window {
                        top: n(case, "top"),
                        left: n(case, "left"),
                        height: n(case, "height"),
                        width: n(case, "width"),
                    };
                    let (oh, ow) = (n(case, "out_height"), n(case, "out_width"));
                    resize(&input, window, (oh, ow), 0..oh, 0..ow)
                }
                _ => resize_centre_crop(&input, n(case, "shorter"), n(case, "size")),
            };
            assert_eq!(
                (got.height, got.width, got.channels),
                (want.height, want.width, want.channels),
                "{case}"
            );
            let differ = got.pixels.iter().zip(&want.pixels).filter(|(a, b)| a != b);
            assert_eq!(differ.count(), 0, "{case}");
        }
    }

    /// `part` equals the region of `whole` whose top-left pixel is `(top, left)`.
    fn assert_region(part: &ImageItem, whole: &ImageItem, (top, left): (usize, usize)) {
        let c = part.channels;
        for (y, row) in part.pixels.chunks(part.width * c).enumerate() {
            let start = ((top + y) * whole.width + left) * c;
            assert_eq!(row, &whole.pixels[start..start + row.len()], "row {y}");
        }
    }

    #[test]
    fn same_size_is_the_window_itself() {
        let it = gradient(7, 9, 3);
        let window = Window {
            top: 1,
            left: 2,
            height: 5,
            width: 6,
        };
        let out = resize(&it, window, (5, 6), 0..5, 0..6);
        assert_region(&out, &it, (1, 2));
        assert_eq!(out.label, 3);
    }

    #[test]
    fn a_flat_image_stays_flat_at_any_scale_and_sub_ranges_are_slices_of_the_whole() {
        let flat = ImageItem {
            pixels: vec![173; 11 * 13],
            height: 11,
            width: 13,
            channels: 1,
            label: 0,
        };
        for (oh, ow) in [(3, 5), (11, 4), (24, 30), (1, 1)] {
            let out = resize(&flat, Window::all(&flat), (oh, ow), 0..oh, 0..ow);
            assert!(out.pixels.iter().all(|&v| v == 173), "{oh}x{ow}");
        }
        let it = gradient(20, 17, 3);
        let whole = resize(&it, Window::all(&it), (9, 12), 0..9, 0..12);
        let part = resize(&it, Window::all(&it), (9, 12), 2..7, 3..11);
        assert_eq!((part.height, part.width), (5, 8));
        assert_region(&part, &whole, (2, 3));
    }

    #[test]
    fn centre_crop_sizes_and_offsets_follow_torchvision() {
        // 30x41 -> shorter side 16: 16x21 (41 * 16 / 30 = 21.87, truncated); crop 12 at
        // round(2.0) = 2 rows and round(4.5) = 4 (half to even) columns.
        let it = gradient(30, 41, 3);
        let out = resize_centre_crop(&it, 16, 12);
        assert_eq!((out.height, out.width), (12, 12));
        let whole = resize(&it, Window::all(&it), (16, 21), 0..16, 0..21);
        assert_region(&out, &whole, (2, 4));
    }
}
