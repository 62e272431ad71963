//! `resize`: the u8 `INTER_LINEAR_EXACT` path and the f32 `INTER_LINEAR` path (which is what
//! `INTER_LINEAR_EXACT` falls back to for float images), including OpenCV's shortcuts: an
//! unchanged size is a copy, and an exact 2x downscale in both directions is `INTER_AREA`'s
//! 2x2 average.

/// Whether OpenCV's `is_area_fast` test sees an exact 2x downscale in both directions
/// (`scale = 1 / (dst / src)` within `DBL_EPSILON` of the integer 2).
fn is_half_size(sh: usize, sw: usize, dh: usize, dw: usize) -> bool {
    let exactly_two = |s: usize, d: usize| {
        let scale = 1.0 / (d as f64 / s as f64);
        (scale - 2.0).abs() < f64::EPSILON
    };
    exactly_two(sw, dw) && exactly_two(sh, dh)
}

/// The 8.8 fixed-point taps of `interpolationLinear::getCoeffs` (`resize_bitExact`): source
/// offset and weights `(c0, c1)` summing to 256. Coordinates are computed in correctly rounded
/// f64 (OpenCV uses softdouble), `c1 = round_half_even(frac * 256)`; positions left of the first
/// pixel centre take pixel 0, right of the last take the last pixel.
fn exact_taps(src: usize, dst: usize) -> Vec<(usize, u32, u32)> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|d| {
            let f = scale * (d as f64 + 0.5) - 0.5;
            let i = f.floor();
            if i < 0.0 || src == 1 {
                (0, 256, 0)
            } else if (i as usize) < src - 1 {
                let c1 = ((f - i) * 256.0).round_ties_even() as u32;
                (i as usize, 256 - c1, c1)
            } else {
                (src - 1, 256, 0)
            }
        })
        .collect()
}

/// `resize(u8, (dw, dh), INTER_LINEAR_EXACT)`, bit-exact: rows are interpolated horizontally to
/// 8.8 fixed point (`c0 * p0 + c1 * p1`), then vertically with rounding,
/// `(cy0 * h0 + cy1 * h1 + 2^15) >> 16`.
pub(crate) fn resize_u8_linear_exact(
    src: &[u8],
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
) -> Vec<u8> {
    if (sh, sw) == (dh, dw) {
        return src.to_vec();
    }
    if is_half_size(sh, sw, dh, dw) {
        // INTER_AREA, 2x2 average rounded half up.
        let mut out = Vec::with_capacity(dh * dw);
        for y in 0..dh {
            let (r0, r1) = (&src[2 * y * sw..][..sw], &src[(2 * y + 1) * sw..][..sw]);
            out.extend((0..dw).map(|x| {
                let s = r0[2 * x] as u32 + r0[2 * x + 1] as u32;
                ((s + r1[2 * x] as u32 + r1[2 * x + 1] as u32 + 2) >> 2) as u8
            }));
        }
        return out;
    }
    let xt = exact_taps(sw, dw);
    let hline = |y: usize| -> Vec<u32> {
        let r = &src[y * sw..][..sw];
        xt.iter()
            .map(|&(o, c0, c1)| c0 * r[o] as u32 + c1 * r[(o + 1).min(sw - 1)] as u32)
            .collect()
    };
    let lines: Vec<Vec<u32>> = (0..sh).map(hline).collect();
    let mut out = Vec::with_capacity(dh * dw);
    for (o, c0, c1) in exact_taps(sh, dh) {
        let (a, b) = (&lines[o], &lines[(o + 1).min(sh - 1)]);
        out.extend(
            a.iter()
                .zip(b)
                .map(|(&p, &q)| ((c0 * p + c1 * q + (1 << 15)) >> 16) as u8),
        );
    }
    out
}

/// `resize(f32, (dw, dh), INTER_LINEAR)` as opencv-contrib-python 4.10 computes it (measured
/// against it): source coordinates `(d + 0.5) * scale - 0.5` in f64, the fraction rounded to
/// f32, indices clamped to the image; each pass is the FMA lerp `fma(frac, p1 - p0, p0)`,
/// columns first, then rows. Bit-exact at 224x224; at some other widths that build computes its
/// last few columns without FMA, a 1-ulp difference this port does not reproduce.
pub(crate) fn resize_f32_linear(
    src: &[f32],
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
) -> Vec<f32> {
    if (sh, sw) == (dh, dw) {
        return src.to_vec();
    }
    if is_half_size(sh, sw, dh, dw) {
        return area_half_f32(src, sh, sw, dh, dw);
    }
    let xt = linear_taps(sw, dw);
    let lines: Vec<Vec<f32>> = src
        .chunks_exact(sw)
        .take(sh)
        .map(|r| {
            xt.iter()
                .map(|&(i0, i1, f)| f.mul_add(r[i1] - r[i0], r[i0]))
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(dh * dw);
    for (i0, i1, f) in linear_taps(sh, dh) {
        let (a, b) = (&lines[i0], &lines[i1]);
        out.extend(a.iter().zip(b).map(|(&p, &q)| f.mul_add(q - p, p)));
    }
    out
}

/// The two source indices (clamped) and the f32 fraction of each destination position.
fn linear_taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as isize - 1;
    (0..dst)
        .map(|d| {
            let f = (d as f64 + 0.5) * scale - 0.5;
            let i = f.floor();
            let i0 = (i as isize).clamp(0, last) as usize;
            let i1 = (i as isize + 1).clamp(0, last) as usize;
            (i0, i1, (f - i) as f32)
        })
        .collect()
}

/// INTER_AREA's exact 2x downscale of an f32 image (`resizeAreaFast_`): 4-lane SIMD blocks
/// compute `((a + b) + (c + d)) * 0.25`, the columns left over `(((a + b) + c) + d) * 0.25`.
fn area_half_f32(src: &[f32], _sh: usize, sw: usize, dh: usize, dw: usize) -> Vec<f32> {
    let simd_cols = dw / 4 * 4;
    let mut out = Vec::with_capacity(dh * dw);
    for y in 0..dh {
        let (r0, r1) = (&src[2 * y * sw..][..sw], &src[(2 * y + 1) * sw..][..sw]);
        out.extend((0..dw).map(|x| {
            let (a, b, c, d) = (r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1]);
            if x < simd_cols {
                ((a + b) + (c + d)) * 0.25
            } else {
                (((a + b) + c) + d) * 0.25
            }
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_constants() {
        let src: Vec<u8> = (0..35).map(|i| i as u8).collect();
        assert_eq!(resize_u8_linear_exact(&src, 5, 7, 5, 7), src);
        for (sh, sw, dh, dw) in [
            (32, 32, 64, 64),
            (224, 224, 64, 64),
            (1, 1, 64, 64),
            (3, 100, 64, 64),
        ] {
            let c = vec![77u8; sh * sw];
            assert!(
                resize_u8_linear_exact(&c, sh, sw, dh, dw)
                    .iter()
                    .all(|&v| v == 77)
            );
        }
        let c = vec![0.25f32; 64 * 64];
        for (dh, dw) in [(32, 32), (224, 224), (5, 300), (1, 1)] {
            let r = resize_f32_linear(&c, 64, 64, dh, dw);
            assert_eq!(r.len(), dh * dw);
            assert!(r.iter().all(|&v| (v - 0.25).abs() < 1e-7));
        }
    }

    #[test]
    fn exact_taps_of_a_2x_upscale_are_quarter_steps() {
        // f = d/2 - 0.25: d=0 left of the first centre, then fractions 0.25 / 0.75 alternating.
        let t = exact_taps(32, 64);
        assert_eq!(t[0], (0, 256, 0));
        assert_eq!(t[1], (0, 192, 64));
        assert_eq!(t[2], (0, 64, 192));
        assert_eq!(t[63], (31, 256, 0));
    }

    #[test]
    fn half_size_uses_the_2x2_average() {
        let src = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(resize_u8_linear_exact(&src, 2, 4, 1, 2), [4, 6]);
        let f = [1f32, 2., 3., 4., 5., 6., 7., 8.];
        assert_eq!(resize_f32_linear(&f, 2, 4, 1, 2), [3.5, 5.5]);
    }
}
