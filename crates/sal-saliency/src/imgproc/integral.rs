//! `integral(src, sum, CV_32F)`: the (H+1) x (W+1) f32 integral image, first row and column zero.
//!
//! f32 sums round once they pass 2^24, so the order of the additions is part of the result. Both
//! functions follow the AVX2 kernels of OpenCV 4.10's `sumpixels.simd.hpp` (the dispatch target on
//! the machine that made the fixtures): each row is prefix-summed in SIMD blocks with a running
//! carry, leftover columns are summed one by one, and the row above is added last.

/// u8 -> f32 integral, the AVX2 kernel of `Integral_SIMD<uchar, float, double>`: blocks of 16
/// columns whose two halves of 8 are prefix-summed exactly in integers, converted to f32, the low
/// half plus the carry, the high half plus the low half's last value.
///
/// While the image's total stays below 2^24 (always for images up to 256x256) every entry is the
/// exact sum, whatever the order.
pub(crate) fn integral_u8(src: &[u8], h: usize, w: usize) -> Vec<f32> {
    let iw = w + 1;
    let mut sum = vec![0f32; (h + 1) * iw];
    for y in 0..h {
        let row = &src[y * w..][..w];
        let (above, below) = sum.split_at_mut((y + 1) * iw);
        let prev = &above[y * iw + 1..][..w];
        let cur = &mut below[1..][..w];
        let mut carry = 0f32;
        let mut j = 0;
        while j + 16 <= w {
            let mut lo = [0f32; 8];
            let mut hi = [0f32; 8];
            let mut acc = 0u32;
            for k in 0..8 {
                acc += row[j + k] as u32;
                lo[k] = acc as f32 + carry;
            }
            acc = 0;
            for k in 0..8 {
                acc += row[j + 8 + k] as u32;
                hi[k] = acc as f32 + lo[7];
            }
            carry = hi[7];
            for k in 0..8 {
                cur[j + k] = lo[k] + prev[j + k];
                cur[j + 8 + k] = hi[k] + prev[j + 8 + k];
            }
            j += 16;
        }
        scalar_tail(row.iter().map(|&v| v as f32), cur, prev, j);
    }
    sum
}

/// f32 -> f32 integral, OpenCV's 8-lane kernel: in each block of 8 columns, each half of 4 is
/// prefix-summed by two shifted additions (`x += x<<1; x += x<<2`), the low half's last value is
/// added to the high half, then the running carry to all 8.
pub(crate) fn integral_f32(src: &[f32], h: usize, w: usize) -> Vec<f32> {
    let iw = w + 1;
    let mut sum = vec![0f32; (h + 1) * iw];
    for y in 0..h {
        let row = &src[y * w..][..w];
        let (above, below) = sum.split_at_mut((y + 1) * iw);
        let prev = &above[y * iw + 1..][..w];
        let cur = &mut below[1..][..w];
        let mut carry = 0f32;
        let mut j = 0;
        while j + 8 <= w {
            let mut v = [0f32; 8];
            v.copy_from_slice(&row[j..j + 8]);
            for half in v.chunks_exact_mut(4) {
                prefix4(half);
            }
            let lo3 = v[3];
            for x in &mut v[4..] {
                *x += lo3;
            }
            for x in &mut v {
                *x += carry;
            }
            carry = v[7];
            for k in 0..8 {
                cur[j + k] = v[k] + prev[j + k];
            }
            j += 8;
        }
        scalar_tail(row.iter().copied(), cur, prev, j);
    }
    sum
}

/// In-register prefix sum of 4 lanes by two shifted additions: [a, a+b, (c+b)+a, (d+c)+(b+a)].
fn prefix4(x: &mut [f32]) {
    let s1 = [x[0], x[1] + x[0], x[2] + x[1], x[3] + x[2]];
    x.copy_from_slice(&[s1[0], s1[1], s1[2] + s1[0], s1[3] + s1[1]]);
}

/// OpenCV's scalar loop for the columns after the last full block:
/// `for (v = sum[j-1] - prev[j-1]; j < w; j++) sum[j] = (v += src[j]) + prev[j]`.
fn scalar_tail(row: impl Iterator<Item = f32>, cur: &mut [f32], prev: &[f32], start: usize) {
    let mut v = if start == 0 {
        0.0
    } else {
        cur[start - 1] - prev[start - 1]
    };
    for (j, p) in row.enumerate().skip(start) {
        v += p;
        cur[j] = v + prev[j];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_integrals_are_exact_sums() {
        for (h, w) in [(1, 1), (1, 17), (3, 5), (5, 33), (2, 16)] {
            let src: Vec<u8> = (0..h * w).map(|i| (i * 37 % 256) as u8).collect();
            let s = integral_u8(&src, h, w);
            let f: Vec<f32> = src.iter().map(|&v| v as f32).collect();
            let t = integral_f32(&f, h, w);
            for y in 0..=h {
                for x in 0..=w {
                    let exact: u32 = (0..y)
                        .flat_map(|r| src[r * w..r * w + x].iter())
                        .map(|&v| v as u32)
                        .sum();
                    assert_eq!(s[y * (w + 1) + x], exact as f32, "u8 {h}x{w} at {y},{x}");
                    assert_eq!(t[y * (w + 1) + x], exact as f32, "f32 {h}x{w} at {y},{x}");
                }
            }
        }
    }
}
