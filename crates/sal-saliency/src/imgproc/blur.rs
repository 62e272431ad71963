//! The separable filters: `GaussianBlur(3x3, sigma 0)` on u8 and f32, the normalised 3x3 box
//! filter (`blur`) and `GaussianBlur(5x5, sigma)` on f64. All use `BORDER_REFLECT_101`.

use super::reflect101;

/// Applies a 3-tap horizontal filter `f(left, centre, right)` to every row, with
/// `BORDER_REFLECT_101` at the ends.
fn rows3_into<T: Copy, U: Copy>(
    src: &[T],
    h: usize,
    w: usize,
    f: impl Fn(T, T, T) -> U,
    out: &mut [U],
) {
    let (l, r) = (reflect101(-1, w), reflect101(w as isize, w));
    for (s, o) in src.chunks_exact(w).zip(out.chunks_exact_mut(w)).take(h) {
        if w == 1 {
            o[0] = f(s[0], s[0], s[0]);
            continue;
        }
        o[0] = f(s[l], s[0], s[1]);
        for x in 1..w - 1 {
            o[x] = f(s[x - 1], s[x], s[x + 1]);
        }
        o[w - 1] = f(s[w - 2], s[w - 1], s[r]);
    }
}

/// Applies a 3-tap vertical filter `f(above, centre, below)` to every column.
fn cols3_into<T: Copy, U: Copy>(
    src: &[T],
    h: usize,
    w: usize,
    f: impl Fn(T, T, T) -> U,
    out: &mut [U],
) {
    for y in 0..h {
        let up = &src[reflect101(y as isize - 1, h) * w..][..w];
        let mid = &src[y * w..][..w];
        let down = &src[reflect101(y as isize + 1, h) * w..][..w];
        for (x, o) in out[y * w..][..w].iter_mut().enumerate() {
            *o = f(up[x], mid[x], down[x]);
        }
    }
}

/// `GaussianBlur(u8, 3x3, sigma 0)`: kernel [1,2,1] x [1,2,1] / 16, exact result
/// `(sum + 8) >> 4` (OpenCV's fixed-point path is exact for this power-of-two kernel). `rows` is
/// scratch; both buffers are resized to the image.
pub(crate) fn gaussian3_u8(src: &[u8], h: usize, w: usize, rows: &mut Vec<u16>, out: &mut Vec<u8>) {
    rows.resize(h * w, 0);
    out.resize(h * w, 0);
    rows3_into(
        src,
        h,
        w,
        |a, b, c| a as u16 + 2 * b as u16 + c as u16,
        rows,
    );
    cols3_into(rows, h, w, |a, b, c| ((a + 2 * b + c + 8) >> 4) as u8, out);
}

/// `GaussianBlur(f32, 3x3, sigma 0)`: `(p[-1] + p[+1]) * 0.25 + p[0] * 0.5`, rows then columns,
/// each pass rounded to f32 (the scaling by powers of two is exact, so only the two additions
/// round, as in OpenCV's symmetric small-kernel filters). `rows` is scratch; both buffers are
/// resized to the image.
pub(crate) fn gaussian3_f32(
    src: &[f32],
    h: usize,
    w: usize,
    rows: &mut Vec<f32>,
    out: &mut Vec<f32>,
) {
    let tap = |a: f32, b: f32, c: f32| (a + c) * 0.25 + b * 0.5;
    rows.resize(h * w, 0.0);
    out.resize(h * w, 0.0);
    rows3_into(src, h, w, tap, rows);
    cols3_into(rows, h, w, tap, out);
}

/// `blur(f64, 3x3)` (normalised box filter): row sums, column sums, times 1/9. `rows` is a
/// scratch buffer of the image's size.
pub(crate) fn box3_f64(src: &[f64], h: usize, w: usize, rows: &mut [f64], out: &mut [f64]) {
    rows3_into(src, h, w, |a, b, c| a + b + c, rows);
    cols3_into(rows, h, w, |a, b, c| (a + b + c) * (1.0 / 9.0), out);
}

/// `getGaussianKernel(N, sigma, CV_64F)`: `exp(-x^2 / (2 sigma^2))` at `x = i - (N-1)/2`,
/// normalised by multiplying with `1 / sum`.
pub(crate) fn gaussian_kernel_f64<const N: usize>(sigma: f64) -> [f64; N] {
    let scale2x = -0.5 / (sigma * sigma);
    let mut k: [f64; N] = std::array::from_fn(|i| {
        let x = i as f64 - (N as f64 - 1.0) * 0.5;
        (scale2x * x * x).exp()
    });
    let inv_sum = 1.0 / k.iter().sum::<f64>();
    k.iter_mut().for_each(|v| *v *= inv_sum);
    k
}

/// Separable 5-tap `GaussianBlur(f64)` with a symmetric `kernel` in both directions, in the
/// symmetric form of OpenCV's filters: `k2 * p[0] + k3 * (p[-1] + p[+1]) + k4 * (p[-2] + p[+2])`.
/// `rows` is a scratch buffer of the image's size.
pub(crate) fn gaussian5_f64(
    src: &[f64],
    h: usize,
    w: usize,
    kernel: &[f64; 5],
    rows: &mut [f64],
    out: &mut [f64],
) {
    let (k0, k1, k2) = (kernel[2], kernel[3], kernel[4]);
    let mut p = vec![0.0; w + 4];
    for (src_row, out_row) in src.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        for (i, v) in p.iter_mut().enumerate() {
            *v = src_row[reflect101(i as isize - 2, w)];
        }
        for (x, o) in out_row.iter_mut().enumerate() {
            *o = k0 * p[x + 2] + k1 * (p[x + 1] + p[x + 3]) + k2 * (p[x] + p[x + 4]);
        }
    }
    for (y, out_row) in out.chunks_exact_mut(w).enumerate() {
        let row = |d: isize| &rows[reflect101(y as isize + d, h) * w..][..w];
        let (a2, a1, c, b1, b2) = (row(-2), row(-1), row(0), row(1), row(2));
        for (x, o) in out_row.iter_mut().enumerate() {
            *o = k0 * c[x] + k1 * (a1[x] + b1[x]) + k2 * (a2[x] + b2[x]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct 2-D convolution with [1,2,1]x[1,2,1]/16 and reflect-101 borders.
    fn gaussian3_reference(src: &[u8], h: usize, w: usize) -> Vec<u8> {
        let k = [1u32, 2, 1];
        let mut out = vec![0; h * w];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0;
                for (dy, ky) in k.iter().enumerate() {
                    for (dx, kx) in k.iter().enumerate() {
                        let yy = reflect101(y as isize + dy as isize - 1, h);
                        let xx = reflect101(x as isize + dx as isize - 1, w);
                        s += ky * kx * src[yy * w + xx] as u32;
                    }
                }
                out[y * w + x] = ((s + 8) >> 4) as u8;
            }
        }
        out
    }

    #[test]
    fn separable_u8_blur_equals_the_2d_definition_at_every_size() {
        for (h, w) in [(1, 1), (1, 5), (5, 1), (2, 2), (3, 7), (8, 5)] {
            let src: Vec<u8> = (0..h * w).map(|i| (i * 73 % 256) as u8).collect();
            let (mut rows, mut out) = (Vec::new(), Vec::new());
            gaussian3_u8(&src, h, w, &mut rows, &mut out);
            assert_eq!(out, gaussian3_reference(&src, h, w), "{h}x{w}");
        }
    }

    #[test]
    fn blurs_keep_constants_constant() {
        let (mut rows, mut out) = (Vec::new(), Vec::new());
        gaussian3_f32(&[3.5; 12], 3, 4, &mut rows, &mut out);
        assert!(out.iter().all(|&v| v == 3.5));
        let (mut tmp, mut out) = ([0.0; 20], [0.0; 20]);
        box3_f64(&[2.0; 20], 4, 5, &mut tmp, &mut out);
        assert!(out.iter().all(|&v| (v - 2.0).abs() < 1e-15));
        let k = gaussian_kernel_f64::<5>(8.0);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        gaussian5_f64(&[7.0; 20], 4, 5, &k, &mut tmp, &mut out);
        assert!(out.iter().all(|&v| (v - 7.0).abs() < 1e-13));
    }
}
