//! Gray conversion (`cvtColor(COLOR_BGR2GRAY)`) and the f32 -> u8 quantisation of `convertTo`.

use crate::simd::avx2_fma_dispatch;
use crate::{ImageData, ImageView, Layout};

/// OpenCV's 15-bit fixed-point BGR -> gray weights (`color_rgb.simd.hpp`, `RGB2Gray<uchar>`):
/// B 3735, G 19235, R 9798, i.e. 0.114, 0.587, 0.299 scaled by 2^15.
const B2GRAY: u32 = 3735;
const G2GRAY: u32 = 19235;
const R2GRAY: u32 = 9798;
const GRAY_SHIFT: u32 = 15;

/// The float weights of `RGB2Gray<float>`.
const B2GRAY_F: f32 = 0.114;
const G2GRAY_F: f32 = 0.587;
const R2GRAY_F: f32 = 0.299;

/// `saturate_cast<uchar>(v * 255.f)`: what OpenCV's `convertTo(CV_8U, 255)` makes of an
/// intensity in [0, 1]. Rounds half to even (`cvRound`), saturates, and maps NaN to 0.
pub(crate) fn quantize_unit(v: f32) -> u8 {
    let t = v * 255.0;
    if t.is_nan() || t <= 0.0 {
        0
    } else if t >= 255.0 {
        255
    } else {
        t.round_ties_even() as u8
    }
}

/// Applies `f(c0, c1, c2)` to every pixel of a 3-channel buffer in either layout, as straight
/// loops over contiguous memory (interleaved triples or three planes), which vectorise.
pub(crate) fn map_pixels3<T: Copy, U>(
    image: &ImageView<'_>,
    data: &[T],
    f: impl Fn(T, T, T) -> U,
) -> Vec<U> {
    let n = image.pixel_count();
    match image.layout() {
        Layout::Hwc => data.chunks_exact(3).map(|p| f(p[0], p[1], p[2])).collect(),
        Layout::Chw => {
            let (c0, rest) = data.split_at(n);
            let (c1, c2) = rest.split_at(n);
            c0.iter()
                .zip(c1)
                .zip(c2)
                .map(|((&a, &b), &c)| f(a, b, c))
                .collect()
        }
    }
}

/// The u8 gray image OpenCV's u8 algorithms start from: `cvtColor(BGR2GRAY)` on 3 channels
/// (channel 0 read as blue), a copy of 1 channel. An f32 image is first quantised channel by
/// channel with [`quantize_unit`], as if the caller had converted it to u8 with OpenCV.
pub(crate) fn gray_u8_opencv(image: &ImageView<'_>) -> Vec<u8> {
    match (image.data(), image.channels()) {
        (ImageData::U8(d), 1) => d.to_vec(),
        (ImageData::U8(d), _) => map_pixels3(image, d, gray_fixed_point),
        (ImageData::F32(d), 1) => d.iter().map(|&v| quantize_unit(v)).collect(),
        (ImageData::F32(d), _) => map_pixels3(image, d, |b, g, r| {
            gray_fixed_point(quantize_unit(b), quantize_unit(g), quantize_unit(r))
        }),
    }
}

#[inline(always)]
fn gray_fixed_point(b: u8, g: u8, r: u8) -> u8 {
    ((b as u32 * B2GRAY + g as u32 * G2GRAY + r as u32 * R2GRAY + (1 << (GRAY_SHIFT - 1)))
        >> GRAY_SHIFT) as u8
}

/// The f32 gray image of OpenCV's float path: `fma(R, 0.299, fma(B, 0.114, G * 0.587))` with
/// channel 0 as B (the AVX2+FMA kernel of `RGB2Gray<float>`); a copy of 1 channel. `None` for a
/// u8 image (the caller decides what that means).
pub(crate) fn gray_f32_opencv(image: &ImageView<'_>) -> Option<Vec<f32>> {
    let ImageData::F32(d) = image.data() else {
        return None;
    };
    Some(if image.channels() == 1 {
        d.to_vec()
    } else {
        gray_f32_fma(image, d)
    })
}

avx2_fma_dispatch!(
    fn gray_f32_fma(image: &ImageView<'_>, data: &[f32]) -> Vec<f32> => gray_f32_body
);

#[inline(always)]
fn gray_f32_body(image: &ImageView<'_>, data: &[f32]) -> Vec<f32> {
    map_pixels3(image, data, |b, g, r| {
        r.mul_add(R2GRAY_F, b.mul_add(B2GRAY_F, g * G2GRAY_F))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_rounds_half_to_even_and_saturates() {
        assert_eq!(quantize_unit(0.0), 0);
        assert_eq!(quantize_unit(1.0), 255);
        assert_eq!(quantize_unit(2.0), 255);
        assert_eq!(quantize_unit(-0.5), 0);
        assert_eq!(quantize_unit(f32::NAN), 0);
        assert_eq!(quantize_unit(0.5 / 255.0 * 1.0000001), 1);
        assert_eq!(quantize_unit(2.5 / 255.0), 2); // 2.5 -> 2 (even)
        assert_eq!(quantize_unit(128.0 / 255.0), 128);
    }

    #[test]
    fn gray_reads_channel_0_as_blue() {
        // Pure channel 0 (blue for OpenCV) gives 0.114 * 255 = 29.07 -> 29.
        let px = [255u8, 0, 0];
        let im = ImageView::hwc_u8(&px, 1, 1, 3).unwrap();
        assert_eq!(gray_u8_opencv(&im), [29]);
        let px = [0u8, 0, 255];
        let im = ImageView::hwc_u8(&px, 1, 1, 3).unwrap();
        assert_eq!(gray_u8_opencv(&im), [76]); // 0.299 * 255 = 76.2
        let white = [255u8; 3];
        let im = ImageView::hwc_u8(&white, 1, 1, 3).unwrap();
        assert_eq!(gray_u8_opencv(&im), [255]);
    }

    #[test]
    fn f32_input_is_quantised_before_the_fixed_point_gray() {
        let u = [10u8, 200, 77, 3, 4, 5];
        let f: Vec<f32> = u.iter().map(|&v| v as f32 / 255.0).collect();
        let a = gray_u8_opencv(&ImageView::hwc_u8(&u, 1, 2, 3).unwrap());
        let b = gray_u8_opencv(&ImageView::hwc_f32(&f, 1, 2, 3).unwrap());
        assert_eq!(a, b);
    }
}
