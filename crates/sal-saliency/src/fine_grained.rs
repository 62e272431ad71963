//! Fine-grained saliency (Montabone & Soto 2010), the detector SaliencyMix's released code calls:
//! a port of OpenCV's `StaticSaliencyFineGrained` (opencv_contrib `staticSaliencyFineGrained.cpp`),
//! bit-exact on both of the input paths OpenCV has. SPEC.md §1.1 gives the recipe.
//!
//! Centre-surround contrast: the gray image is blurred twice, and for six surround sizes
//! n in [12, 24, 48, 28, 56, 112] each pixel's value is compared with the mean of the 2n x 2n
//! window around it (from an integral image). "On" contrast (brighter than the surround) and
//! "off" contrast are accumulated over the scales, each normalised to [0, 255], and summed.
//! The windows are truncated at the image border, which biases the map towards the borders.

use crate::imgproc::{gaussian3_f32, gaussian3_u8, gray_f32_opencv, gray_u8_opencv};
use crate::imgproc::{integral_f32, integral_u8};
use crate::{ImageView, SaliencyError, SaliencyMap, StaticSaliency};

/// Surround half-sizes, in OpenCV's order (`neighborhoods[]`); the order matters only for the
/// u16 accumulation, which cannot overflow (6 x 255).
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
        let (h, w) = (image.height(), image.width());
        let (centre, integral) = match self.mode {
            FineGrainedMode::Intended => {
                let gray = gray_u8_opencv(image);
                let gray = gaussian3_u8(&gaussian3_u8(&gray, h, w), h, w);
                let integral = integral_u8(&gray, h, w);
                (gray, integral)
            }
            FineGrainedMode::PaperCode => {
                let gray = gray_f32_opencv(image).ok_or(SaliencyError::Dtype {
                    detector: "fine-grained-paper-code",
                    dtype: "u8",
                    hint: "it reproduces OpenCV's f32 path; give it the f32 image \
                           SaliencyMix passes (mean/std normalised), or use Intended for u8",
                })?;
                let gray = gaussian3_f32(&gaussian3_f32(&gray, h, w), h, w);
                let integral = integral_f32(&gray, h, w);
                (centre_bytes(&gray, h, w), integral)
            }
        };
        let (on, off) = centre_surround(&centre, &integral, h, w);
        Ok(mix_on_off(&normalise(&on), &normalise(&off)))
    }
}

impl StaticSaliency for FineGrained {
    fn name(&self) -> &'static str {
        match self.mode {
            FineGrainedMode::Intended => "fine-grained",
            FineGrainedMode::PaperCode => "fine-grained-paper-code",
        }
    }

    fn compute(&self, image: &ImageView<'_>) -> Result<SaliencyMap, SaliencyError> {
        let codes = self.compute_codes(image)?;
        Ok(SaliencyMap::from_u8_codes(
            image.height(),
            image.width(),
            &codes,
        ))
    }
}

/// What OpenCV's `gray.at<uchar>(y, x)` reads from an f32 gray buffer: byte `x` of row `y`,
/// i.e. byte `x % 4` (little-endian) of the float at column `x / 4`.
fn centre_bytes(gray: &[f32], h: usize, w: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(h * w);
    for row in gray.chunks_exact(w) {
        out.extend(row.iter().flat_map(|v| v.to_le_bytes()).take(w));
    }
    out
}

/// C's `(uchar)v` for a float on x86-64: truncation to a 32-bit integer (`cvttss2si`, which gives
/// `i32::MIN` for NaN and out-of-range values), then the low byte. Values above 255 wrap.
fn trunc_to_u8(v: f32) -> u8 {
    if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        v as i32 as u8
    } else {
        0
    }
}

/// The per-scale on/off contrasts (`getIntensityScaled` + `getMean`), summed in u16 over the six
/// scales (`mixScales`). For pixel (x, y) and scale n the window is columns
/// `[clamp(x-n+1), clamp(x+n+1))` and the same for rows (clamped to `0..=W`, one pixel
/// off-centre), its mean excludes the centre: `mean = (s - c) / (area - 1)` in f32, with
/// `s = ((I[y2,x2] + I[y1,x1]) - I[y2,x1]) - I[y1,x2]`.
fn centre_surround(centre: &[u8], integral: &[f32], h: usize, w: usize) -> (Vec<u16>, Vec<u16>) {
    let iw = w + 1;
    let mut on = vec![0u16; h * w];
    let mut off = vec![0u16; h * w];
    for n in SCALES {
        for y in 0..h {
            let y1 = y.saturating_sub(n - 1);
            let y2 = (y + n + 1).min(h);
            let top = &integral[y1 * iw..][..iw];
            let bottom = &integral[y2 * iw..][..iw];
            let rows = (y2 - y1) as i32;
            let c_row = &centre[y * w..][..w];
            let on_row = &mut on[y * w..][..w];
            let off_row = &mut off[y * w..][..w];
            // Columns whose window is not clamped horizontally: x1 = x-n+1 >= 0, x2 = x+n+1 <= W.
            let lo = (n - 1).min(w);
            let hi = (w + 1).saturating_sub(n + 1).max(lo);
            let window = |x: usize| {
                let x1 = x.saturating_sub(n - 1);
                let x2 = (x + n + 1).min(w);
                (x1, x2)
            };
            let mut contrast = |x: usize, x1: usize, x2: usize, area: f32| {
                let s = ((bottom[x2] + top[x1]) - bottom[x1]) - top[x2];
                let c = c_row[x] as f32;
                let mean = (s - c) / area;
                let d_on = c - mean;
                let d_off = mean - c;
                if d_on > 0.0 {
                    on_row[x] += trunc_to_u8(d_on) as u16;
                }
                if d_off > 0.0 {
                    off_row[x] += trunc_to_u8(d_off) as u16;
                }
            };
            for x in (0..lo).chain(hi..w) {
                let (x1, x2) = window(x);
                contrast(x, x1, x2, ((x2 - x1) as i32 * rows - 1) as f32);
            }
            let interior_area = (2 * n as i32 * rows - 1) as f32;
            for x in lo..hi {
                contrast(x, x + 1 - n, x + n + 1, interior_area);
            }
        }
    }
    (on, off)
}

/// `mixScales`' normalisation: `(uchar)(255.0 * (float)(sum / (float)max))` with the f32
/// division and the f64 multiplication of the C++ code. A zero maximum gives 0/0 = NaN -> 0.
fn normalise(sums: &[u16]) -> Vec<u8> {
    let max = sums.iter().copied().max().unwrap_or(0) as f32;
    sums.iter()
        .map(|&s| {
            let v = 255.0 * (s as f32 / max) as f64;
            trunc_f64_to_u8(v)
        })
        .collect()
}

/// `mixOnOff`: `(uchar)(255.0 * (float)(on + off) / (float)max)` in f64, where `max` is the
/// larger of the two maps' maxima. Sums above the maximum wrap modulo 256, as the C cast does.
fn mix_on_off(on: &[u8], off: &[u8]) -> Vec<u8> {
    let max = on.iter().chain(off).copied().max().unwrap_or(0) as f64;
    on.iter()
        .zip(off)
        .map(|(&a, &b)| trunc_f64_to_u8(255.0 * (a as u32 + b as u32) as f64 / max))
        .collect()
}

/// `(uchar)v` for a double on x86-64 (`cvttsd2si` to i32, then the low byte).
fn trunc_f64_to_u8(v: f64) -> u8 {
    if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        v as i32 as u8
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(mode: FineGrainedMode, im: &ImageView<'_>) -> Vec<u8> {
        FineGrained::new(mode).compute_codes(im).unwrap()
    }

    #[test]
    fn constant_and_single_pixel_images_give_all_zero_maps() {
        let c = vec![90u8; 5 * 7 * 3];
        let im = ImageView::hwc_u8(&c, 5, 7, 3).unwrap();
        assert!(codes(FineGrainedMode::Intended, &im).iter().all(|&k| k == 0));
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
        assert_eq!(centre_bytes(&gray, 2, 2), [0x00, 0x00, 0x00, 0x00]);
        assert_eq!(centre_bytes(&gray, 1, 4), [0x00, 0x00, 0x80, 0x3f]);
    }

    #[test]
    fn c_casts_wrap_like_x86() {
        assert_eq!(trunc_to_u8(255.9), 255);
        assert_eq!(trunc_to_u8(256.5), 0);
        assert_eq!(trunc_to_u8(300.0), 44);
        assert_eq!(trunc_to_u8(f32::NAN), 0);
        assert_eq!(trunc_to_u8(f32::INFINITY), 0);
        assert_eq!(trunc_f64_to_u8(455.0), 199);
        assert_eq!(trunc_f64_to_u8(f64::NAN), 0);
    }
}
