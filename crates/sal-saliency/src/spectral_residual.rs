//! Spectral-residual saliency (Hou & Zhang 2007): a port of OpenCV's
//! `StaticSaliencySpectralResidual` (opencv_contrib `staticSaliencySpectralResidual.cpp`).
//! SPEC.md §1.2 gives the recipe.
//!
//! The gray image is resized to 64x64; in its Fourier spectrum the log amplitude minus its local
//! (3x3) average is the "spectral residual". Transforming the residual amplitude back with the
//! original phase, squaring the blurred magnitude and resizing to the input size gives the map.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::imgproc::{box3_f64, fast_atan_rad, gaussian_kernel_f64, gaussian5_f64};
use crate::imgproc::{gray_u8_opencv, magnitude_f32, resize_f32_linear, resize_u8_linear_exact};
use crate::{ImageView, SaliencyError, SaliencyMap, StaticSaliency};

/// OpenCV's working size (`resImWidth = resImHeight = 64`).
const SIDE: usize = 64;
/// Final smoothing: `GaussianBlur(5x5, sigma 8)`.
const BLUR_SIZE: usize = 5;
const BLUR_SIGMA: f64 = 8.0;

/// How the Cartesian <-> polar conversions of the spectrum are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolarMath {
    /// As OpenCV 4.10's `cartToPolar` on f64 data does (default): magnitude and phase from the
    /// values rounded to f32, the phase from OpenCV's `fastAtan` polynomial (error ~1e-4 rad).
    /// Matches OpenCV's maps to <= 1e-6.
    #[default]
    OpenCv,
    /// Exact f64 `hypot` and `atan2` (the method as published). Differs from OpenCV's maps by up
    /// to ~1e-4.
    Exact,
}

/// OpenCV's `StaticSaliencySpectralResidual`. Output: f32 in [0, 1] before the final resize, so
/// the maximum is below 1 unless the input is 64x64 (0.86 typical at 32x32).
///
/// u8 input is used as is; f32 input is read as intensities in [0, 1] and quantised like
/// `convertTo(CV_8U, 255)`; 3 channels go through OpenCV's gray conversion (channel 0 = blue),
/// 1 channel is the gray image. Any size >= 1x1 works (everything is resized to 64x64 first):
/// a constant image gives a smooth, finite map with its peak at (0, 0), as OpenCV's does.
#[derive(Clone)]
pub struct SpectralResidual {
    polar: PolarMath,
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
    kernel: Vec<f64>,
}

impl std::fmt::Debug for SpectralResidual {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpectralResidual")
            .field("polar", &self.polar)
            .finish()
    }
}

impl Default for SpectralResidual {
    fn default() -> Self {
        Self::new(PolarMath::OpenCv)
    }
}

impl SpectralResidual {
    pub fn new(polar: PolarMath) -> Self {
        let mut planner = FftPlanner::new();
        Self {
            polar,
            forward: planner.plan_fft_forward(SIDE),
            inverse: planner.plan_fft_inverse(SIDE),
            kernel: gaussian_kernel_f64(BLUR_SIZE, BLUR_SIGMA),
        }
    }

    pub fn polar_math(&self) -> PolarMath {
        self.polar
    }

    /// `(magnitude, phase)` of one spectrum value, per [`PolarMath`].
    fn to_polar(&self, z: Complex<f64>) -> (f64, f64) {
        match self.polar {
            PolarMath::OpenCv => {
                let (x, y) = (z.re as f32, z.im as f32);
                (magnitude_f32(x, y) as f64, fast_atan_rad(y, x) as f64)
            }
            PolarMath::Exact => (z.re.hypot(z.im), z.im.atan2(z.re)),
        }
    }

    fn magnitude(&self, z: Complex<f64>) -> f64 {
        match self.polar {
            PolarMath::OpenCv => magnitude_f32(z.re as f32, z.im as f32) as f64,
            PolarMath::Exact => z.re.hypot(z.im),
        }
    }

    /// Unscaled 2-D DFT of a 64x64 row-major buffer, in place, left TRANSPOSED (columns become
    /// rows): the steps in between are element-wise or symmetric in x and y, so only the inverse
    /// transform has to undo the transposition.
    fn fft2_transposed(
        &self,
        fft: &dyn Fft<f64>,
        buf: &mut [Complex<f64>],
        scratch: &mut Vec<Complex<f64>>,
    ) {
        scratch.resize(fft.get_inplace_scratch_len(), Complex::default());
        fft.process_with_scratch(buf, scratch);
        transpose(buf);
        fft.process_with_scratch(buf, scratch);
    }
}

fn transpose(buf: &mut [Complex<f64>]) {
    for y in 0..SIDE {
        for x in y + 1..SIDE {
            buf.swap(y * SIDE + x, x * SIDE + y);
        }
    }
}

impl StaticSaliency for SpectralResidual {
    fn name(&self) -> &'static str {
        "spectral-residual"
    }

    fn compute(&self, image: &ImageView<'_>) -> Result<SaliencyMap, SaliencyError> {
        let (h, w) = (image.height(), image.width());
        let gray = gray_u8_opencv(image);
        let small = resize_u8_linear_exact(&gray, h, w, SIDE, SIDE);

        let mut spectrum: Vec<Complex<f64>> =
            small.iter().map(|&v| Complex::new(v as f64, 0.0)).collect();
        let mut scratch = Vec::new();
        self.fft2_transposed(self.forward.as_ref(), &mut spectrum, &mut scratch);

        // Log amplitude, its 3x3 average, and the residual amplitude exp(L - avg L), recombined
        // with the original phase (polarToCart: cos/sin of the phase in f64).
        let (log_amplitude, phase): (Vec<f64>, Vec<f64>) = spectrum
            .iter()
            .map(|&z| {
                let (m, a) = self.to_polar(z);
                ((m + 1.0).ln(), a)
            })
            .unzip();
        let average = box3_f64(&log_amplitude, SIDE, SIDE);
        for (((z, l), a), p) in spectrum
            .iter_mut()
            .zip(&log_amplitude)
            .zip(&average)
            .zip(&phase)
        {
            let m = (l - a).exp();
            *z = Complex::new(m * p.cos(), m * p.sin());
        }

        self.fft2_transposed(self.inverse.as_ref(), &mut spectrum, &mut scratch);
        let magnitude: Vec<f64> = spectrum.iter().map(|&z| self.magnitude(z)).collect();
        let mut smooth = gaussian5_f64(&magnitude, SIDE, SIDE, &self.kernel);
        smooth.iter_mut().for_each(|v| *v *= *v);
        let max = smooth.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // OpenCV's `magnitude / maxVal` is a MatExpr that multiplies by 1 / maxVal.
        let inv_max = if max > 0.0 && max.is_finite() {
            1.0 / max
        } else {
            0.0
        };
        let map64: Vec<f32> = smooth.iter().map(|&v| (v * inv_max) as f32).collect();

        Ok(SaliencyMap {
            height: h,
            width: w,
            data: resize_f32_linear(&map64, SIDE, SIDE, h, w),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_sizes_give_finite_maps_in_the_unit_interval() {
        let sr = SpectralResidual::default();
        for (h, w) in [(1, 1), (1, 9), (9, 1), (3, 200), (64, 64), (65, 63)] {
            let px: Vec<u8> = (0..h * w * 3).map(|i| (i * 29 % 256) as u8).collect();
            let m = sr
                .compute(&ImageView::hwc_u8(&px, h, w, 3).unwrap())
                .unwrap();
            assert_eq!((m.height, m.width, m.data.len()), (h, w, h * w));
            assert!(m.data.iter().all(|v| (0.0..=1.0).contains(v)), "{h}x{w}");
        }
    }

    #[test]
    fn a_64x64_input_skips_the_final_resize_so_the_peak_is_exactly_1() {
        let px: Vec<u8> = (0..64 * 64).map(|i| ((i * 7919) % 256) as u8).collect();
        let m = SpectralResidual::default()
            .compute(&ImageView::hwc_u8(&px, 64, 64, 1).unwrap())
            .unwrap();
        assert_eq!(m.data.iter().copied().fold(0.0, f32::max), 1.0);
    }
}
