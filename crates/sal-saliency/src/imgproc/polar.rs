//! `cartToPolar` on f64 input, as OpenCV 4.10 computes it: the values are converted to f32 and
//! both outputs come from the f32 SIMD kernels of `mathfuncs_core.simd.hpp` (with FMA), then are
//! widened back to f64. Checked against opencv-contrib-python 4.10: both outputs match bit for bit.

use std::f64::consts::PI;

const DEG: f32 = (180.0 / PI) as f32;
const P1: f32 = 0.999_787_841_279_480_7_f32 * DEG;
const P3: f32 = -0.325_808_397_464_097_5_f32 * DEG;
const P5: f32 = 0.155_578_651_846_328_1_f32 * DEG;
const P7: f32 = -0.044_326_555_547_921_28_f32 * DEG;
const DBL_EPSILON_F32: f32 = f64::EPSILON as f32;
const RAD: f32 = (PI / 180.0) as f32;

/// OpenCV's `fastAtan2` polynomial (`v_atan_f32`, FMA form), in radians in [0, 2 pi): a degree-7
/// odd polynomial of `min(|x|,|y|) / max(|x|,|y|)`, folded into the right octant; error about
/// 1e-4 rad compared with `atan2`.
pub(crate) fn fast_atan_rad(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    let c = ax.min(ay) / (ax.max(ay) + DBL_EPSILON_F32);
    let cc = c * c;
    let mut a = cc.mul_add(P7, P5).mul_add(cc, P3).mul_add(cc, P1) * c;
    if ax < ay {
        a = 90.0 - a;
    }
    if x < 0.0 {
        a = 180.0 - a;
    }
    if y < 0.0 {
        a = 360.0 - a;
    }
    a * RAD
}

/// `magnitude` of the f32 kernel: `sqrt(fma(x, x, y * y))`.
pub(crate) fn magnitude_f32(x: f32, y: f32) -> f32 {
    x.mul_add(x, y * y).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_atan_is_close_to_atan2_in_every_octant() {
        for i in 0..720 {
            let t = (i as f64 + 0.37) * PI / 360.0;
            let (y, x) = ((3.0 * t.sin()) as f32, (3.0 * t.cos()) as f32);
            let exact = (y as f64).atan2(x as f64).rem_euclid(2.0 * PI);
            let got = fast_atan_rad(y, x) as f64;
            let d = ((got - exact + PI).rem_euclid(2.0 * PI) - PI).abs();
            assert!(d < 2e-4, "angle {t}: {got} vs {exact}");
        }
        assert_eq!(fast_atan_rad(0.0, 0.0), 0.0);
        assert_eq!(fast_atan_rad(0.0, 5.0), 0.0);
    }

    #[test]
    fn magnitude_is_the_hypotenuse() {
        assert_eq!(magnitude_f32(3.0, 4.0), 5.0);
        assert_eq!(magnitude_f32(0.0, -2.0), 2.0);
    }
}
