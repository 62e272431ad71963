//! The separable filters: `GaussianBlur(3x3, sigma 0)` on u8 and f32, the normalised 3x3 box
//! filter (`blur`) and `GaussianBlur(5x5, sigma)` on f64. All use `BORDER_REFLECT_101`.

use super::reflect101;

/// Applies a 3-tap horizontal filter `f(left, centre, right)` to every row, with
/// `BORDER_REFLECT_101` at the ends.
fn rows3<T: Copy, U: Copy + Default>(
    src: &[T],
    h: usize,
    w: usize,
    f: impl Fn(T, T, T) -> U,
) -> Vec<U> {
    let mut out = vec![U::default(); h * w];
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
    out
}

/// Applies a 3-tap vertical filter `f(above, centre, below)` to every column.
fn cols3<T: Copy, U: Copy + Default>(
    src: &[T],
    h: usize,
    w: usize,
    f: impl Fn(T, T, T) -> U,
) -> Vec<U> {
    let mut out = vec![U::default(); h * w];
    for y in 0..h {
        let up = &src[reflect101(y as isize - 1, h) * w..][..w];
        let mid = &src[y * w..][..w];
        let down = &src[reflect101(y as isize + 1, h) * w..][..w];
        for (x, o) in out[y * w..][..w].iter_mut().enumerate() {
            *o = f(up[x], mid[x], down[x]);
        }
    }
    out
}

/// `GaussianBlur(u8, 3x3, sigma 0)`: kernel [1,2,1] x [1,2,1] / 16, exact result
/// `(sum + 8) >> 4` (OpenCV's fixed-point path is exact for this power-of-two kernel).
pub(crate) fn gaussian3_u8(src: &[u8], h: usize, w: usize) -> Vec<u8> {
    let rows = rows3(src, h, w, |a, b, c| a as u16 + 2 * b as u16 + c as u16);
    cols3(&rows, h, w, |a, b, c| ((a + 2 * b + c + 8) >> 4) as u8)
}

/// `GaussianBlur(f32, 3x3, sigma 0)`: `(p[-1] + p[+1]) * 0.25 + p[0] * 0.5`, rows then columns,
/// each pass rounded to f32 (the scaling by powers of two is exact, so only the two additions
/// round, as in OpenCV's symmetric small-kernel filters).
pub(crate) fn gaussian3_f32(src: &[f32], h: usize, w: usize) -> Vec<f32> {
    let tap = |a: f32, b: f32, c: f32| (a + c) * 0.25 + b * 0.5;
    let rows = rows3(src, h, w, tap);
    cols3(&rows, h, w, tap)
}

/// `blur(f64, 3x3)` (normalised box filter): row sums, column sums, times 1/9.
pub(crate) fn box3_f64(src: &[f64], h: usize, w: usize) -> Vec<f64> {
    let rows = rows3(src, h, w, |a, b, c| a + b + c);
    cols3(&rows, h, w, |a, b, c| (a + b + c) * (1.0 / 9.0))
}

/// `getGaussianKernel(n, sigma, CV_64F)`: `exp(-x^2 / (2 sigma^2))` at `x = i - (n-1)/2`,
/// normalised by multiplying with `1 / sum`.
pub(crate) fn gaussian_kernel_f64(n: usize, sigma: f64) -> Vec<f64> {
    let scale2x = -0.5 / (sigma * sigma);
    let mut k: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 - (n as f64 - 1.0) * 0.5;
            (scale2x * x * x).exp()
        })
        .collect();
    let inv_sum = 1.0 / k.iter().sum::<f64>();
    k.iter_mut().for_each(|v| *v *= inv_sum);
    k
}

/// Separable `GaussianBlur(f64)` with the odd-length `kernel` in both directions.
pub(crate) fn gaussian5_f64(src: &[f64], h: usize, w: usize, kernel: &[f64]) -> Vec<f64> {
    let r = (kernel.len() / 2) as isize;
    let mut rows = vec![0.0; h * w];
    for y in 0..h {
        let s = &src[y * w..][..w];
        for x in 0..w {
            rows[y * w + x] = kernel
                .iter()
                .enumerate()
                .map(|(i, k)| k * s[reflect101(x as isize + i as isize - r, w)])
                .sum();
        }
    }
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = kernel
                .iter()
                .enumerate()
                .map(|(i, k)| k * rows[reflect101(y as isize + i as isize - r, h) * w + x])
                .sum();
        }
    }
    out
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
            assert_eq!(
                gaussian3_u8(&src, h, w),
                gaussian3_reference(&src, h, w),
                "{h}x{w}"
            );
        }
    }

    #[test]
    fn blurs_keep_constants_constant() {
        assert!(gaussian3_f32(&[3.5; 12], 3, 4).iter().all(|&v| v == 3.5));
        assert!(
            box3_f64(&[2.0; 12], 4, 3)
                .iter()
                .all(|&v| (v - 2.0).abs() < 1e-15)
        );
        let k = gaussian_kernel_f64(5, 8.0);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(
            gaussian5_f64(&[7.0; 20], 4, 5, &k)
                .iter()
                .all(|&v| (v - 7.0).abs() < 1e-13)
        );
    }
}
