//! The OpenCV image primitives the detectors are built from, each reproducing OpenCV 4.10's
//! arithmetic (integer rounding, float operation order, border rule) rather than just its maths,
//! because the detectors' outputs are compared with OpenCV's bit for bit.
//!
//! Sources: opencv `modules/imgproc/src/{color_rgb.simd.hpp, smooth.simd.hpp, box_filter.simd.hpp,
//! sumpixels.simd.hpp, resize.cpp}` and `modules/core/src/{mathfuncs.cpp, mathfuncs_core.simd.hpp}`
//! (4.10), checked against opencv-contrib-python 4.10.0.84 (the fixtures in `tests/fixtures`).

mod blur;
mod border;
mod color;
mod fastmath;
mod integral;
mod polar;
mod resize;

pub(crate) use blur::{box3_f64, gaussian_kernel_f64, gaussian3_f32, gaussian3_u8, gaussian5_f64};
pub(crate) use border::reflect101;
pub(crate) use color::{gray_f32_opencv, gray_u8_opencv};
pub(crate) use fastmath::{exp, ln, sin_cos};
pub(crate) use integral::{integral_f32, integral_u8};
pub(crate) use polar::{fast_atan_rad, magnitude_f32};
pub(crate) use resize::{resize_f32_linear, resize_u8_linear_exact};
