//! Branch-free f64 `ln`, `exp` and `sin_cos` for the spectral-residual loops. The C library's
//! functions are calls the compiler cannot vectorise, and they dominated the detector's time.
//! These use the classic fdlibm argument reductions and polynomial coefficients (`e_log.c`,
//! `k_sin.c`, `k_cos.c`) written as straight-line arithmetic, accurate to about 1 ulp on the
//! ranges used here (tested against `std` below).

// The coefficients are written with the digits they are published with.
#![allow(clippy::excessive_precision)]

use std::f64::consts::{LN_2, SQRT_2};

const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-01;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
const LG1: f64 = 6.666_666_666_666_735_130e-01;
const LG2: f64 = 3.999_999_999_940_941_908e-01;
const LG3: f64 = 2.857_142_874_366_239_149e-01;
const LG4: f64 = 2.222_219_843_214_978_396e-01;
const LG5: f64 = 1.818_357_216_161_805_012e-01;
const LG6: f64 = 1.531_383_769_920_937_332e-01;
const LG7: f64 = 1.479_819_860_511_658_591e-01;

/// 2^52: adding it to a small non-negative integer-valued f64 puts the integer in the low
/// mantissa bits (and back), which replaces int <-> float conversions AVX2 does not have for
/// 64-bit lanes.
const TWO_52: f64 = 4_503_599_627_370_496.0;
/// 1.5 * 2^52: the same for signed integers (two's complement in the low bits).
const ONE_AND_HALF_TWO_52: f64 = 6_755_399_441_055_744.0;

/// Natural logarithm of a positive, finite, normal `x`.
#[inline(always)]
pub(crate) fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    // Biased exponent as an f64, via the mantissa of 2^52 + exponent.
    let mut e = f64::from_bits(TWO_52.to_bits() | (bits >> 52)) - (TWO_52 + 1023.0);
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > SQRT_2 {
        m *= 0.5;
        e += 1.0;
    }
    // ln(m) for m in [sqrt(2)/2, sqrt(2)): f = m - 1, s = f / (2 + f), ln(m) = 2 atanh(s).
    let f = m - 1.0;
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    e * LN2_HI - ((hfsq - (s * (hfsq + r) + e * LN2_LO)) - f)
}

/// `e^x` for `|x| < 700`: `2^k * e^r` with `r = x - k ln 2` (split in two parts so the reduction
/// is exact), `|r| <= ln(2) / 2`, and a degree-13 Taylor polynomial (truncation error < 1e-17).
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    let x = x.clamp(-700.0, 700.0);
    let k = (x * (1.0 / LN_2)).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0; // 1/13!
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // 2^k: k + 1023 (in 13..=2033) moved from the mantissa of 2^52 + k + 1023 to the exponent.
    p * f64::from_bits((k + (TWO_52 + 1023.0)).to_bits() << 52)
}

const PIO2_1: f64 = 1.570_796_326_734_125_614_17e+00;
const PIO2_1T: f64 = 6.077_100_506_506_192_249_32e-11;
const S1: f64 = -1.666_666_666_666_663_243_48e-01;
const S2: f64 = 8.333_333_333_322_489_461_24e-03;
const S3: f64 = -1.984_126_982_985_794_931_34e-04;
const S4: f64 = 2.755_731_370_707_006_767_89e-06;
const S5: f64 = -2.505_076_025_340_686_341_95e-08;
const S6: f64 = 1.589_690_995_211_550_102_21e-10;
const C1: f64 = 4.166_666_666_666_660_190_37e-02;
const C2: f64 = -1.388_888_888_887_410_957_49e-03;
const C3: f64 = 2.480_158_728_947_672_941_78e-05;
const C4: f64 = -2.755_731_435_139_066_330_35e-07;
const C5: f64 = 2.087_572_321_298_174_827_90e-09;
const C6: f64 = -1.135_964_755_778_819_482_65e-11;

/// `(sin t, cos t)` for `|t| < 16`: quadrant reduction by pi/2 (two-part constant), then the
/// fdlibm kernels on `|r| <= pi/4`.
#[inline(always)]
pub(crate) fn sin_cos(t: f64) -> (f64, f64) {
    let k = (t * (2.0 / std::f64::consts::PI)).round();
    let r = (t - k * PIO2_1) - k * PIO2_1T;
    let z = r * r;
    let s = r + r * z * (S1 + z * (S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)))));
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    let c =
        w + (((1.0 - w) - hz) + z * z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6))))));
    // Quadrant q: (s, c), (c, -s), (-s, -c), (-c, s), written as selects so loops vectorise.
    let q = (k + ONE_AND_HALF_TWO_52).to_bits();
    let (s, c) = if q & 1 != 0 { (c, s) } else { (s, c) };
    let s = if q & 2 != 0 { -s } else { s };
    let c = if (q + 1) & 2 != 0 { -c } else { c };
    (s, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place.
    fn ulps(a: f64, b: f64) -> f64 {
        if a == b {
            return 0.0;
        }
        (a - b).abs() / (f64::EPSILON * b.abs().max(f64::MIN_POSITIVE))
    }

    #[test]
    fn ln_is_within_one_ulp() {
        let mut worst: f64 = 0.0;
        for i in 0..200_000 {
            let x = 1.0 + (i as f64 * 0.618_033_988_7).powf(3.0) * 1e-3;
            worst = worst.max(ulps(ln(x), x.ln()));
        }
        for x in [1.0, 1.0 + 1e-12, 2.0, SQRT_2, 1e-300, 0.3, 1e300] {
            worst = worst.max(ulps(ln(x), x.ln()));
        }
        assert!(worst <= 1.0, "worst {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst: f64 = 0.0;
        for i in -200_000..200_000 {
            let x = i as f64 * 1.234_567e-4;
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        assert!(worst <= 2.0, "worst {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn sin_cos_are_within_two_ulp_of_the_absolute_scale() {
        // Near zeros of sin/cos relative ulps are meaningless; compare on the scale of 1.
        let mut worst: f64 = 0.0;
        for i in -100_000..100_000 {
            let t = i as f64 * 7.1e-5;
            let (s, c) = sin_cos(t);
            worst = worst.max((s - t.sin()).abs()).max((c - t.cos()).abs());
        }
        assert!(worst <= 2.0 * f64::EPSILON, "worst {worst:e}");
        assert_eq!(sin_cos(0.0), (0.0, 1.0));
    }
}
