//! Fine-grained saliency (Montabone & Soto 2010), the detector SaliencyMix's released code calls:
//! a port of OpenCV's `StaticSaliencyFineGrained` (opencv_contrib `staticSaliencyFineGrained.cpp`),
//! bit-exact on both of the input paths OpenCV has (docs/saliency.md).
//!
//! Centre-surround contrast: the gray image is blurred twice, and for six surround sizes
//! n in [12, 24, 48, 28, 56, 112] each pixel's value is compared with the mean of the 2n x 2n
//! window around it (from an integral image). "On" contrast (brighter than the surround) and
//! "off" contrast are accumulated over the scales, each normalised to [0, 255], and summed.
//! The windows are truncated at the image border, which biases the map towards the borders.

use std::cell::RefCell;

use crate::imgproc::{gaussian3_f32, gaussian3_u8, gray_f32_opencv, gray_u8_opencv};
use crate::imgproc::{integral_f32, integral_u8};
use crate::simd::avx2_fma_dispatch;
use crate::{ImageView, SaliencyError, SaliencyMap, StaticSaliency};

/// Surround half-sizes, in OpenCV's order (`neighborhoods[]`). The order does not change the
/// result: the per-scale bytes are summed exactly (OpenCV in u16, here in f32; at most 6 x 255).
const SCALES: [usize; 6] = [12, 24, 48, 28, 56, 112];

/// Which of OpenCV's two input paths to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FineGrainedMode {
    /// The u8 path, what the method is meant to compute (default). u8 input is used as is; f32
    /// input is read as intensities in [0, 1] and quantised like `convertTo(CV_8U, 255)`, so
    /// feed it an UN-normalised image. Bit-exact to OpenCV on u8 input.
    #[default]
    Intended,
    /// The float path that SaliencyMix's released code runs by handing OpenCV the mean/std
    /// normalised f32 image: OpenCV converts and blurs in f32 but then reads the f32 gray buffer
    /// as BYTES (`gray.at<uchar>(y, x)` is byte x of row y), so the "centre value" of pixel
    /// (x, y) is a byte of the IEEE-754 representation of the blurred gray at column x / 4
    /// (little-endian, as on x86). The resulting map is a pseudo-random function of mantissa
    /// bytes; it is offered to reproduce the released code, not as a saliency method.
    /// Needs f32 input (u8 is rejected: OpenCV would take the u8 path). Bit-exact to OpenCV on
    /// x86-64 with AVX2+FMA (the gray conversion uses FMA and the integral image follows
    /// OpenCV's 8-lane summation order); other ISAs' OpenCV builds may round differently in the
    /// last bit, which changes this map completely.
    PaperCode,
}

/// OpenCV's `StaticSaliencyFineGrained`. Output: the u8 map OpenCV computes, as f32 `k / 255`
/// (exactly `(k as f32) * (1.0 / 255.0)`, OpenCV's `convertTo(CV_32F, 1/255.f)`), so
/// [`SaliencyMap::argmax_u8`] recovers `k`. 3-channel input: channel 0 is read as blue;
/// 1-channel input is used as the gray image. Any size >= 1x1 works: a 1x1 or constant image
/// gives an all-zero map (OpenCV's 0/0 -> NaN -> 0).
#[derive(Debug, Clone, Copy, Default)]
pub struct FineGrained {
    mode: FineGrainedMode,
}

impl FineGrained {
    pub fn new(mode: FineGrainedMode) -> Self {
        Self { mode }
    }

    pub fn mode(&self) -> FineGrainedMode {
        self.mode
    }

    /// The u8 codes `k` of OpenCV's map (0..=255, row-major).
    pub fn compute_codes(&self, image: &ImageView<'_>) -> Result<Vec<u8>, SaliencyError> {
        Ok(self.codes(image)?.iter().map(|&k| k as u8).collect())
    }

    /// The codes as integer-valued f32 (the form the arithmetic produces them in).
    fn codes(&self, image: &ImageView<'_>) -> Result<Vec<f32>, SaliencyError> {
        WORKSPACE.with_borrow_mut(|ws| self.codes_in(image, ws))
    }

    fn codes_in(
        &self,
        image: &ImageView<'_>,
        ws: &mut Workspace,
    ) -> Result<Vec<f32>, SaliencyError> {
        let (h, w) = (image.height(), image.width());
        let Workspace {
            blurred,
            centre,
            rows,
            blurred_f32,
            gray_f32,
            rows_f32,
            integral,
            off,
        } = ws;
        match self.mode {
            FineGrainedMode::Intended => {
                let gray = gray_u8_opencv(image);
                gaussian3_u8(&gray, h, w, rows, blurred);
                gaussian3_u8(blurred, h, w, rows, centre);
                integral_u8(centre, h, w, integral);
            }
            FineGrainedMode::PaperCode => {
                let gray = gray_f32_opencv(image).ok_or(SaliencyError::Dtype {
                    detector: "fine-grained-paper-code",
                    dtype: "u8",
                    hint: "it reproduces OpenCV's f32 path; give it the f32 image \
                           SaliencyMix passes (mean/std normalised), or use Intended for u8",
                })?;
                gaussian3_f32(&gray, h, w, rows_f32, blurred_f32);
                gaussian3_f32(blurred_f32, h, w, rows_f32, gray_f32);
                integral_f32(gray_f32, h, w, integral);
                centre_bytes(gray_f32, h, w, centre);
            }
        }
        // `on` becomes the output; the other buffers stay in the workspace.
        let mut on = vec![0f32; h * w];
        off.clear();
        off.resize(h * w, 0.0);
        centre_surround(centre, integral, h, w, &mut on, off);
        normalise(&mut on);
        normalise(off);
        mix_on_off(&mut on, off);
        Ok(on)
    }
}

/// Scratch buffers reused across calls on one thread. A 224x224 image needs ~1 MB of
/// temporaries; allocating and returning them per image cost page faults that were a tenth of
/// the single-image time and more in parallel batches.
#[derive(Default)]
struct Workspace {
    blurred: Vec<u8>,
    centre: Vec<u8>,
    rows: Vec<u16>,
    blurred_f32: Vec<f32>,
    gray_f32: Vec<f32>,
    rows_f32: Vec<f32>,
    integral: Vec<f32>,
    off: Vec<f32>,
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::default();
}

impl StaticSaliency for FineGrained {
    fn name(&self) -> &'static str {
        match self.mode {
            FineGrainedMode::Intended => "fine-grained",
            FineGrainedMode::PaperCode => "fine-grained-paper-code",
        }
    }

    fn compute(&self, image: &ImageView<'_>) -> Result<SaliencyMap, SaliencyError> {
        // OpenCV's convertTo(CV_32F, 1/255.f), as in SaliencyMap::from_u8_codes.
        let mut data = self.codes(image)?;
        data.iter_mut().for_each(|k| *k *= 1.0f32 / 255.0);
        Ok(SaliencyMap {
            height: image.height(),
            width: image.width(),
            data,
        })
    }
}

/// What OpenCV's `gray.at<uchar>(y, x)` reads from an f32 gray buffer: byte `x` of row `y`,
/// i.e. byte `x % 4` (little-endian) of the float at column `x / 4`.
fn centre_bytes(gray: &[f32], h: usize, w: usize, out: &mut Vec<u8>) {
    out.clear();
    for row in gray.chunks_exact(w).take(h) {
        out.extend(row.iter().flat_map(|v| v.to_le_bytes()).take(w));
    }
}

/// C's `(uchar)v` for a positive float on x86-64 (`cvttss2si`, then the low byte): truncation,
/// wrapping modulo 256 above 255, and 0 from 2^31 on (the instruction's out-of-range value has a
/// zero low byte). Computed in f32, which is exact here (every float >= 2^24 is an integer), so
/// the loop that calls it vectorises. NaN and non-positive values give 0, as `if (v > 0)` does.
#[inline(always)]
fn positive_byte(v: f32) -> f32 {
    if v > 0.0 && v < 2_147_483_648.0 {
        let t = v.trunc();
        t - 256.0 * (t * (1.0 / 256.0)).floor()
    } else {
        0.0
    }
}

avx2_fma_dispatch!(
    /// The per-scale on/off contrasts (`getIntensityScaled` + `getMean`), summed over the six
    /// scales (`mixScales`). For pixel (x, y) and scale n the window is columns
    /// `[clamp(x-n+1), clamp(x+n+1))` and the same for rows (clamped to `0..=W`, so one pixel
    /// off-centre), and its mean excludes the centre: `mean = (s - c) / (area - 1)` in f32, with
    /// `s = ((I[y2,x2] + I[y1,x1]) - I[y2,x1]) - I[y1,x2]`.
    /// The sums (at most 6 x 255) are kept in f32, where they are exact.
    fn centre_surround(centre: &[u8], integral: &[f32], h: usize, w: usize, on: &mut [f32], off: &mut [f32])
        => centre_surround_body
);

#[inline(always)]
fn centre_surround_body(
    centre: &[u8],
    integral: &[f32],
    h: usize,
    w: usize,
    on: &mut [f32],
    off: &mut [f32],
) {
    let iw = w + 1;
    for n in SCALES {
        // Columns x < left have their window clamped at 0 (x-n+1 < 0); columns x >= right at W
        // (x+n+1 > W). Each run of columns with the same clamping is one straight loop.
        let left = (n - 1).min(w);
        let right = w.saturating_sub(n);
        for y in 0..h {
            let (y1, y2) = (y.saturating_sub(n - 1), (y + n + 1).min(h));
            let row = Row {
                top: &integral[y1 * iw..][..iw],
                bottom: &integral[y2 * iw..][..iw],
                rows: (y2 - y1) as i32,
                n,
                w,
            };
            let c = &centre[y * w..][..w];
            let (on, off) = (&mut on[y * w..][..w], &mut off[y * w..][..w]);
            if left <= right {
                row.segment::<true, false>(0..left, c, on, off);
                row.segment::<false, false>(left..right, c, on, off);
                row.segment::<false, true>(right..w, c, on, off);
            } else {
                row.segment::<true, false>(0..right, c, on, off);
                row.segment::<true, true>(right..left, c, on, off);
                row.segment::<false, true>(left..w, c, on, off);
            }
        }
    }
}

/// The integral-image rows bounding one image row's windows at one scale.
struct Row<'a> {
    top: &'a [f32],
    bottom: &'a [f32],
    rows: i32,
    n: usize,
    w: usize,
}

impl<'a> Row<'a> {
    /// Accumulates the contrasts of columns `xs`, whose windows are all clamped on the left
    /// (`x1 = 0`) if `LEFT`, all on the right (`x2 = W`) if `RIGHT`. Within such a run the corner
    /// columns are constant or advance with x, and the window width changes by a constant step,
    /// so the loop vectorises.
    #[inline(always)]
    fn segment<const LEFT: bool, const RIGHT: bool>(
        &self,
        xs: std::ops::Range<usize>,
        c: &[u8],
        on: &mut [f32],
        off: &mut [f32],
    ) {
        if xs.is_empty() {
            return;
        }
        let (n, len) = (self.n, xs.len());
        let x1 = if LEFT { 0 } else { xs.start + 1 - n };
        let x2 = if RIGHT { self.w } else { xs.start + n + 1 };
        // A clamped corner is one fixed column (a 1-element slice), a free one a run of `len`.
        let span = |row: &'a [f32], x: usize, fixed: bool| &row[x..][..if fixed { 1 } else { len }];
        let (b2, t2) = (span(self.bottom, x2, RIGHT), span(self.top, x2, RIGHT));
        let (b1, t1) = (span(self.bottom, x1, LEFT), span(self.top, x1, LEFT));
        let at = |v: &[f32], i: usize, fixed: bool| if fixed { v[0] } else { v[i] };
        let width0 = (x2 - x1) as i32;
        let step = LEFT as i32 - RIGHT as i32;
        let (c, on, off) = (&c[xs.clone()], &mut on[xs.clone()], &mut off[xs]);
        for i in 0..len {
            let (b2, t1) = (at(b2, i, RIGHT), at(t1, i, LEFT));
            let (b1, t2) = (at(b1, i, LEFT), at(t2, i, RIGHT));
            let s = ((b2 + t1) - b1) - t2;
            let area = ((width0 + step * i as i32) * self.rows - 1) as f32;
            let c = c[i] as f32;
            let mean = (s - c) / area;
            on[i] += positive_byte(c - mean);
            off[i] += positive_byte(mean - c);
        }
    }
}

avx2_fma_dispatch!(
    /// `mixScales`' normalisation: `(uchar)(255.0 * (float)(sum / (float)max))`, an f32 division
    /// and an f64 multiplication, truncated (the values stay in 0..=255). A zero maximum gives
    /// 0/0 = NaN, which the cast turns into 0. In place, integer-valued f32.
    fn normalise(sums: &mut [f32]) => normalise_body
);

#[inline(always)]
fn normalise_body(sums: &mut [f32]) {
    let max = sums.iter().copied().fold(0.0, f32::max);
    if max == 0.0 {
        return;
    }
    for s in sums {
        *s = (255.0 * (*s / max) as f64).trunc() as f32;
    }
}

avx2_fma_dispatch!(
    /// `mixOnOff`: `(uchar)(255.0 * (float)(on + off) / (float)max)` in f64, where `max` is the
    /// larger of the two maps' maxima. Results above 255 wrap modulo 256, as the C cast does on
    /// x86; an all-zero pair gives 0/0 -> 0. Integer-valued f32, the result replaces `on`.
    fn mix_on_off(on: &mut [f32], off: &[f32]) => mix_on_off_body
);

#[inline(always)]
fn mix_on_off_body(on: &mut [f32], off: &[f32]) {
    let max = on.iter().chain(off).copied().fold(0.0, f32::max) as f64;
    if max == 0.0 {
        return;
    }
    for (a, &b) in on.iter_mut().zip(off) {
        let v = (255.0 * (*a + b) as f64 / max).trunc();
        *a = (v - 256.0 * (v * (1.0 / 256.0)).floor()) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_avx2_build_and_the_portable_build_agree() {
        // `centre_surround` runs the AVX2+FMA build where the CPU has it; calling the body
        // directly compiles it for the baseline target.
        let (h, w) = (37, 120);
        let centre: Vec<u8> = (0..h * w).map(|i| (i * 97 % 256) as u8).collect();
        let mut integral = Vec::new();
        integral_f32(
            &centre
                .iter()
                .map(|&v| v as f32 * 0.37 - 20.0)
                .collect::<Vec<_>>(),
            h,
            w,
            &mut integral,
        );
        let (mut a_on, mut a_off) = (vec![0.0; h * w], vec![0.0; h * w]);
        let (mut b_on, mut b_off) = (vec![0.0; h * w], vec![0.0; h * w]);
        centre_surround(&centre, &integral, h, w, &mut a_on, &mut a_off);
        centre_surround_body(&centre, &integral, h, w, &mut b_on, &mut b_off);
        assert_eq!((&a_on, &a_off), (&b_on, &b_off));
        let (mut a, mut b) = (a_on.clone(), a_on);
        normalise(&mut a);
        normalise_body(&mut b);
        assert_eq!(a, b);
        let (mut c, mut d) = (a.clone(), a);
        mix_on_off(&mut c, &a_off);
        mix_on_off_body(&mut d, &a_off);
        assert_eq!(c, d);
    }

    fn codes(mode: FineGrainedMode, im: &ImageView<'_>) -> Vec<u8> {
        FineGrained::new(mode).compute_codes(im).unwrap()
    }

    #[test]
    fn constant_and_single_pixel_images_give_all_zero_maps() {
        let c = vec![90u8; 5 * 7 * 3];
        let im = ImageView::hwc_u8(&c, 5, 7, 3).unwrap();
        assert!(
            codes(FineGrainedMode::Intended, &im)
                .iter()
                .all(|&k| k == 0)
        );
        let one = [200u8];
        let im = ImageView::hwc_u8(&one, 1, 1, 1).unwrap();
        assert_eq!(codes(FineGrainedMode::Intended, &im), [0]);
        let f = [0.3f32, -1.0, 2.0];
        let im = ImageView::hwc_f32(&f, 1, 1, 3).unwrap();
        assert_eq!(codes(FineGrainedMode::PaperCode, &im), [0]);
    }

    #[test]
    fn paper_code_rejects_u8_and_intended_quantises_f32() {
        let u = [1u8, 2, 3];
        let im = ImageView::hwc_u8(&u, 1, 1, 3).unwrap();
        assert!(matches!(
            FineGrained::new(FineGrainedMode::PaperCode).compute(&im),
            Err(SaliencyError::Dtype { .. })
        ));
        let u: Vec<u8> = (0..6 * 9 * 3).map(|i| (i * 41 % 251) as u8).collect();
        let f: Vec<f32> = u.iter().map(|&v| v as f32 / 255.0).collect();
        let a = codes(
            FineGrainedMode::Intended,
            &ImageView::hwc_u8(&u, 6, 9, 3).unwrap(),
        );
        let b = codes(
            FineGrainedMode::Intended,
            &ImageView::hwc_f32(&f, 6, 9, 3).unwrap(),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn centre_bytes_are_the_little_endian_bytes_of_each_row() {
        let gray = [1.0f32, 2.0, -0.5, 3.0];
        // 2 rows of 2 floats: row 0 bytes are those of 1.0 (00 00 80 3f), only the first 2 read.
        let mut out = Vec::new();
        centre_bytes(&gray, 2, 2, &mut out);
        assert_eq!(out, [0x00, 0x00, 0x00, 0x00]);
        centre_bytes(&gray, 1, 4, &mut out);
        assert_eq!(out, [0x00, 0x00, 0x80, 0x3f]);
    }

    #[test]
    fn c_casts_wrap_like_x86() {
        let byte = |v: f32| positive_byte(v) as u8;
        assert_eq!(
            [byte(255.9), byte(0.7), byte(-3.9), byte(0.0)],
            [255, 0, 0, 0]
        );
        assert_eq!([byte(256.5), byte(300.0), byte(70000.7)], [0, 44, 112]);
        assert_eq!([byte(16777217.0), byte(3e9), byte(f32::NAN)], [0, 0, 0]);
        assert_eq!(byte(f32::INFINITY), 0);
        let mut on = [255.0, 100.0, 0.0];
        mix_on_off(&mut on, &[200.0, 0.0, 0.0]);
        assert_eq!(on, [199.0, 100.0, 0.0]);
        let mut zeros = [0.0, 0.0];
        mix_on_off(&mut zeros, &[0.0, 0.0]);
        normalise(&mut zeros);
        assert_eq!(zeros, [0.0, 0.0]);
        let mut sums = [3.0, 6.0, 1530.0];
        normalise(&mut sums);
        assert_eq!(sums, [0.0, 1.0, 255.0]);
    }
}
