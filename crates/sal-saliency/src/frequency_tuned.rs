//! Frequency-tuned saliency (Achanta, Hemami, Estrada & Süsstrunk, CVPR 2009), the third
//! detector of SaliencyMix's Figure 3. OpenCV has no implementation, so there is no reference
//! output to match; the tests check the method's defining properties instead.
//!
//! Paper §3.2: `S(x, y) = || I_mu - I_whc(x, y) ||`, the Euclidean distance in CIE Lab between
//! the image's mean colour `I_mu` and the pixel's colour in a slightly blurred copy `I_whc`
//! (a 5x5 separable binomial kernel [1 4 6 4 1] / 16, which removes the highest frequencies:
//! noise, fine texture, JPEG artefacts).

use crate::imgproc::reflect101;
use crate::{ImageData, ImageView, SaliencyError, SaliencyMap, StaticSaliency};

/// Largest Lab distance (Delta E) still treated as "no saliency". Rounding in the blur and the mean
/// leaves distances of ~1e-5 on a constant image; normalising those by their maximum would turn
/// rounding noise into a full-range map. 1e-3 is far below a visible difference (~2.3).
const MIN_CONTRAST: f32 = 1e-3;

/// The binomial kernel of the paper's blur.
const BINOMIAL5: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// How a 3-channel image's channels map to colours. (The OpenCV ports always read channel 0
/// as blue because they must match OpenCV; this detector has no such constraint.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelOrder {
    /// Channel 0 is red (torch / PIL / numpy images; what SaliencyMix passes). Default.
    #[default]
    Rgb,
    /// Channel 0 is blue (OpenCV images).
    Bgr,
}

/// Frequency-tuned saliency. Output: the Lab distance divided by its maximum, so in [0, 1] with
/// maximum 1; an image whose largest distance is below 1e-3 Delta E (a constant image, up to
/// rounding) gives all zeros.
///
/// Input: sRGB, u8 (0..=255) or f32 intensities in [0, 1] (not clamped; un-normalise
/// mean/std-normalised tensors first); 1 channel is gray (R = G = B). Any size >= 1x1.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrequencyTuned {
    order: ChannelOrder,
}

impl FrequencyTuned {
    pub fn new(order: ChannelOrder) -> Self {
        Self { order }
    }

    pub fn channel_order(&self) -> ChannelOrder {
        self.order
    }
}

impl StaticSaliency for FrequencyTuned {
    fn name(&self) -> &'static str {
        "frequency-tuned"
    }

    fn compute(&self, image: &ImageView<'_>) -> Result<SaliencyMap, SaliencyError> {
        let (h, w) = (image.height(), image.width());
        let lab = lab_planes(image, self.order);
        let n = (h * w) as f64;
        let mean: Vec<f32> = lab
            .iter()
            .map(|p| (p.iter().map(|&v| v as f64).sum::<f64>() / n) as f32)
            .collect();
        let blurred: Vec<Vec<f32>> = lab.iter().map(|p| binomial_blur(p, h, w)).collect();
        let mut data: Vec<f32> = (0..h * w)
            .map(|i| {
                (0..3)
                    .map(|c| (blurred[c][i] - mean[c]).powi(2))
                    .sum::<f32>()
                    .sqrt()
            })
            .collect();
        let max = data.iter().copied().fold(0.0, f32::max);
        if max > MIN_CONTRAST {
            data.iter_mut().for_each(|v| *v /= max);
        } else {
            data.fill(0.0);
        }
        Ok(SaliencyMap {
            height: h,
            width: w,
            data,
        })
    }
}

/// The image as three planes L, a, b (CIE Lab, D65 white, sRGB primaries).
fn lab_planes(image: &ImageView<'_>, order: ChannelOrder) -> [Vec<f32>; 3] {
    let n = image.pixel_count();
    // Which buffer channel holds red, green, blue.
    let rgb_channels = match (image.channels(), order) {
        (1, _) => [0, 0, 0],
        (_, ChannelOrder::Rgb) => [0, 1, 2],
        (_, ChannelOrder::Bgr) => [2, 1, 0],
    };
    let linear: Vec<Vec<f32>> = rgb_channels
        .iter()
        .map(|&c| {
            let (o, s) = image.channel_offset_step(c);
            match image.data() {
                ImageData::U8(d) => {
                    let lut: Vec<f32> = (0..=255u8)
                        .map(|v| srgb_to_linear(v as f32 / 255.0))
                        .collect();
                    (0..n).map(|i| lut[d[o + i * s] as usize]).collect()
                }
                ImageData::F32(d) => (0..n).map(|i| srgb_to_linear(d[o + i * s])).collect(),
            }
        })
        .collect();
    let mut lab = [vec![0f32; n], vec![0f32; n], vec![0f32; n]];
    for i in 0..n {
        let [l, a, b] = linear_rgb_to_lab(linear[0][i], linear[1][i], linear[2][i]);
        lab[0][i] = l;
        lab[1][i] = a;
        lab[2][i] = b;
    }
    lab
}

/// The sRGB transfer function, inverted (IEC 61966-2-1).
fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.040_45 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// Linear sRGB -> XYZ (D65) -> CIE Lab.
fn linear_rgb_to_lab(r: f32, g: f32, b: f32) -> [f32; 3] {
    let x = 0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
    let z = 0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b;
    let f = |t: f32| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x / 0.950_47), f(y), f(z / 1.088_83));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// Separable 5x5 binomial blur with `BORDER_REFLECT_101`.
fn binomial_blur(src: &[f32], h: usize, w: usize) -> Vec<f32> {
    let tap = |get: &dyn Fn(isize) -> f32, i: isize| -> f32 {
        BINOMIAL5
            .iter()
            .enumerate()
            .map(|(k, c)| c * get(i + k as isize - 2))
            .sum()
    };
    let mut rows = vec![0f32; h * w];
    for y in 0..h {
        let r = &src[y * w..][..w];
        for x in 0..w {
            rows[y * w + x] = tap(&|i| r[reflect101(i, w)], x as isize);
        }
    }
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = tap(&|i| rows[reflect101(i, h) * w + x], y as isize);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ft(px: &[u8], h: usize, w: usize, c: usize) -> SaliencyMap {
        FrequencyTuned::default()
            .compute(&ImageView::hwc_u8(px, h, w, c).unwrap())
            .unwrap()
    }

    #[test]
    fn lab_of_white_black_and_primaries() {
        let [l, a, b] = linear_rgb_to_lab(1.0, 1.0, 1.0);
        assert!((l - 100.0).abs() < 1e-3 && a.abs() < 1e-2 && b.abs() < 1e-2);
        assert_eq!(linear_rgb_to_lab(0.0, 0.0, 0.0), [0.0, 0.0, 0.0]);
        // sRGB red: L 53.24, a 80.09, b 67.20 (standard values).
        let [l, a, b] = linear_rgb_to_lab(1.0, 0.0, 0.0);
        assert!((l - 53.24).abs() < 0.05 && (a - 80.09).abs() < 0.1 && (b - 67.20).abs() < 0.1);
    }

    #[test]
    fn constant_images_have_no_saliency() {
        for (h, w) in [(1, 1), (1, 7), (9, 4)] {
            let m = ft(&vec![123u8; h * w * 3], h, w, 3);
            assert!(m.data.iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn an_odd_coloured_square_holds_the_peak() {
        // Green background, a red 6x6 square at rows 10..16, cols 20..26.
        let (h, w) = (32, 40);
        let mut px = vec![0u8; h * w * 3];
        for y in 0..h {
            for x in 0..w {
                let inside = (10..16).contains(&y) && (20..26).contains(&x);
                px[(y * w + x) * 3..][..3].copy_from_slice(if inside {
                    &[220, 20, 20]
                } else {
                    &[30, 160, 40]
                });
            }
        }
        let m = ft(&px, h, w, 3);
        let (r, c) = m.argmax();
        assert!(
            (10..16).contains(&r) && (20..26).contains(&c),
            "peak at {r},{c}"
        );
        // Far from the square the background is uniform: equal, low saliency.
        assert_eq!(m.data[0], m.data[w - 1]);
        assert!(m.data[0] < 0.2);
    }

    #[test]
    fn channel_order_only_relabels_the_channels() {
        let rgb: Vec<u8> = (0..5 * 6 * 3).map(|i| (i * 53 % 256) as u8).collect();
        let bgr: Vec<u8> = rgb.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
        let a = ft(&rgb, 5, 6, 3);
        let b = FrequencyTuned::new(ChannelOrder::Bgr)
            .compute(&ImageView::hwc_u8(&bgr, 5, 6, 3).unwrap())
            .unwrap();
        assert_eq!(a, b);
    }

    proptest! {
        #[test]
        fn maps_are_normalised_and_mirror_equivariant(
            h in 1usize..12, w in 1usize..12, seed in any::<u64>()
        ) {
            let px: Vec<u8> = (0..h * w * 3)
                .map(|i| ((seed >> (i % 57)) as u8).wrapping_mul(31).wrapping_add(i as u8))
                .collect();
            let m = ft(&px, h, w, 3);
            let max = m.data.iter().copied().fold(0.0, f32::max);
            prop_assert!(m.data.iter().all(|v| (0.0..=1.0).contains(v)));
            prop_assert!(max == 1.0 || m.data.iter().all(|&v| v == 0.0));
            // Mirror the columns: the map mirrors too (up to float summation order).
            let mirrored: Vec<u8> = (0..h)
                .flat_map(|y| (0..w).rev().map(move |x| (y, x)))
                .flat_map(|(y, x)| px[(y * w + x) * 3..][..3].to_vec())
                .collect();
            let mm = ft(&mirrored, h, w, 3);
            for y in 0..h {
                for x in 0..w {
                    prop_assert!((m.data[y * w + x] - mm.data[y * w + (w - 1 - x)]).abs() < 1e-4);
                }
            }
        }

        #[test]
        fn gray_input_equals_equal_rgb_channels(h in 1usize..10, w in 1usize..10, seed in any::<u32>()) {
            let g: Vec<u8> = (0..h * w).map(|i| (seed.rotate_left(i as u32) % 256) as u8).collect();
            let rgb: Vec<u8> = g.iter().flat_map(|&v| [v, v, v]).collect();
            prop_assert_eq!(ft(&g, h, w, 1), ft(&rgb, h, w, 3));
        }
    }
}
