//! Spectral-residual saliency (Hou & Zhang 2007): a port of OpenCV's
//! `StaticSaliencySpectralResidual` (opencv_contrib `staticSaliencySpectralResidual.cpp`).
//! docs/saliency.md describes the recipe.
//!
//! The gray image is resized to 64x64; in its Fourier spectrum the log amplitude minus its local
//! (3x3) average is the "spectral residual". Transforming the residual amplitude back with the
//! original phase, squaring the blurred magnitude and resizing to the input size gives the map.

use std::cell::RefCell;
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::imgproc::sin_cos;
use crate::imgproc::{box3_f64, exp, fast_atan_rad, gaussian_kernel_f64, gaussian5_f64, ln};
use crate::imgproc::{gray_u8_opencv, magnitude_f32, resize_f32_linear, resize_u8_linear_exact};
use crate::simd::avx2_fma_dispatch;
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
    kernel: [f64; BLUR_SIZE],
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
            kernel: gaussian_kernel_f64(BLUR_SIGMA),
        }
    }

    pub fn polar_math(&self) -> PolarMath {
        self.polar
    }

    /// Unscaled 2-D DFT of a 64x64 row-major buffer, in place, left TRANSPOSED (columns become
    /// rows): the steps in between are element-wise or symmetric in x and y (the 3x3 box filter
    /// then sums columns before rows, a ~1e-16 rounding difference), so only the inverse
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
        let map64 = WORKSPACE.with_borrow_mut(|ws| self.saliency_64(&small, ws));
        Ok(SaliencyMap {
            height: h,
            width: w,
            data: resize_f32_linear(&map64, SIDE, SIDE, h, w),
        })
    }
}

/// Scratch buffers for the 64x64 stage, reused across calls on the same thread: allocating and
/// freeing them per image (~200 KB, which the allocator hands back to the OS each time) cost
/// about a fifth of the detector's time.
struct Workspace {
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    buffers: [Vec<f64>; 4],
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace {
        spectrum: vec![Complex::default(); SIDE * SIDE],
        scratch: Vec::new(),
        buffers: std::array::from_fn(|_| vec![0.0; SIDE * SIDE]),
    });
}

impl SpectralResidual {
    /// The 64x64 saliency map of the 64x64 gray image `small`.
    fn saliency_64(&self, small: &[u8], ws: &mut Workspace) -> Vec<f32> {
        let Workspace {
            spectrum,
            scratch,
            buffers: [log_amplitude, phase, average, tmp],
        } = ws;
        for (z, &v) in spectrum.iter_mut().zip(small) {
            *z = Complex::new(v as f64, 0.0);
        }
        self.fft2_transposed(self.forward.as_ref(), spectrum, scratch);

        // Log amplitude L, its 3x3 average A, and the residual amplitude exp(L - A) recombined
        // with the original phase (polarToCart: cos/sin of the phase in f64).
        match self.polar {
            PolarMath::OpenCv => log_polar_opencv(spectrum, log_amplitude, phase),
            PolarMath::Exact => log_polar_exact(spectrum, log_amplitude, phase),
        }
        box3_f64(log_amplitude, SIDE, SIDE, tmp, average);
        residual_spectrum(log_amplitude, average, phase, spectrum);

        self.fft2_transposed(self.inverse.as_ref(), spectrum, scratch);
        let magnitude = log_amplitude;
        match self.polar {
            PolarMath::OpenCv => magnitudes_opencv(spectrum, magnitude),
            PolarMath::Exact => {
                for (m, z) in magnitude.iter_mut().zip(spectrum.iter()) {
                    *m = z.re.hypot(z.im);
                }
            }
        }
        let smooth = average;
        gaussian5_f64(magnitude, SIDE, SIDE, &self.kernel, tmp, smooth);
        smooth.iter_mut().for_each(|v| *v *= *v);
        let max = smooth.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // OpenCV's `magnitude / maxVal` is a MatExpr that multiplies by 1 / maxVal.
        let inv_max = if max > 0.0 && max.is_finite() {
            1.0 / max
        } else {
            0.0
        };
        smooth.iter().map(|&v| (v * inv_max) as f32).collect()
    }
}

avx2_fma_dispatch!(
    /// `cartToPolar` + `log(magnitude + 1)` as OpenCV computes them ([`PolarMath::OpenCv`]).
    fn log_polar_opencv(spectrum: &[Complex<f64>], log_amplitude: &mut [f64], phase: &mut [f64])
        => log_polar_opencv_body
);

#[inline(always)]
fn log_polar_opencv_body(spectrum: &[Complex<f64>], log_amplitude: &mut [f64], phase: &mut [f64]) {
    for ((z, l), p) in spectrum.iter().zip(log_amplitude).zip(phase) {
        let (x, y) = (z.re as f32, z.im as f32);
        *l = ln(magnitude_f32(x, y) as f64 + 1.0);
        *p = fast_atan_rad(y, x) as f64;
    }
}

/// [`PolarMath::Exact`]: f64 `hypot` and `atan2`.
fn log_polar_exact(spectrum: &[Complex<f64>], log_amplitude: &mut [f64], phase: &mut [f64]) {
    for ((z, l), p) in spectrum.iter().zip(log_amplitude).zip(phase) {
        *l = ln(z.re.hypot(z.im) + 1.0);
        *p = z.im.atan2(z.re);
    }
}

avx2_fma_dispatch!(
    /// `exp(L - A)` back to Cartesian with the phase: `polarToCart`, which OpenCV 4.10 (IPP)
    /// computes as `m * cos(phase)`, `m * sin(phase)` in f64.
    fn residual_spectrum(log_amplitude: &[f64], average: &[f64], phase: &[f64], out: &mut [Complex<f64>])
        => residual_spectrum_body
);

#[inline(always)]
fn residual_spectrum_body(
    log_amplitude: &[f64],
    average: &[f64],
    phase: &[f64],
    out: &mut [Complex<f64>],
) {
    for (((z, l), a), p) in out.iter_mut().zip(log_amplitude).zip(average).zip(phase) {
        let m = exp(l - a);
        let (sin, cos) = sin_cos(*p);
        *z = Complex::new(m * cos, m * sin);
    }
}

avx2_fma_dispatch!(
    /// The magnitude of the inverse transform as OpenCV's f64 `cartToPolar` computes it.
    fn magnitudes_opencv(spectrum: &[Complex<f64>], out: &mut [f64]) => magnitudes_opencv_body
);

#[inline(always)]
fn magnitudes_opencv_body(spectrum: &[Complex<f64>], out: &mut [f64]) {
    for (m, z) in out.iter_mut().zip(spectrum) {
        *m = magnitude_f32(z.re as f32, z.im as f32) as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_avx2_build_and_the_portable_build_agree() {
        let n = SIDE * SIDE;
        let spectrum: Vec<Complex<f64>> = (0..n)
            .map(|i| Complex::new((i as f64 * 0.7).sin() * 3e4, (i as f64 * 1.3).cos() * 2e4))
            .collect();
        let (mut l1, mut p1, mut l2, mut p2) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        log_polar_opencv(&spectrum, &mut l1, &mut p1);
        log_polar_opencv_body(&spectrum, &mut l2, &mut p2);
        assert_eq!((&l1, &p1), (&l2, &p2));
        let average: Vec<f64> = l1.iter().map(|v| v * 0.9).collect();
        let (mut z1, mut z2) = (spectrum.clone(), spectrum.clone());
        residual_spectrum(&l1, &average, &p1, &mut z1);
        residual_spectrum_body(&l1, &average, &p1, &mut z2);
        assert_eq!(z1, z2);
        let (mut m1, mut m2) = (vec![0.0; n], vec![0.0; n]);
        magnitudes_opencv(&spectrum, &mut m1);
        magnitudes_opencv_body(&spectrum, &mut m2);
        assert_eq!(m1, m2);
    }

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
