//! Spectral residual saliency (Hou & Zhang 2007) as burn tensor ops, for a whole batch on its
//! device: OpenCV's `StaticSaliencySpectralResidual` (docs/saliency.md) without a host round trip.
//!
//! Per image, as opencv_contrib `staticSaliencySpectralResidual.cpp` computes it: BGR->gray
//! with OpenCV's 15-bit fixed point (channel 0 read as blue), bilinear resize to 64x64 with the
//! bit-exact 8-bit weights, 2-D DFT (burn's `signal` FFT), `exp(L - box3x3(L))` with
//! `L = ln(|F| + 1)` and the phase kept, inverse DFT (64x64 DFT matrix products), `|z|`, 5x5
//! Gaussian (sigma 8), square, divide by the maximum, bilinear resize back.
//! The resizes and the two filters are small matrix products; the integer resize is exact in
//! f32 (every partial sum is an integer below 2^24). The rest runs in f32 where OpenCV uses
//! f64, and the phase is exact where OpenCV uses its `fastAtan` polynomial: the maps agree with
//! OpenCV's to 7e-5 on the fixture images (tested at 1e-4).

use burn::tensor::signal::{cfft, rfft};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// OpenCV's working size.
const SIDE: usize = 64;

/// Spectral residual maps `[N, H, W]` of `images` `[N, C, H, W]` holding u8 values (0..=255)
/// as floats, `C` = 3 (channel 0 read as blue, as OpenCV does with the RGB arrays SaliencyMix
/// passes) or 1 (gray). Other channel counts use channel 0 as gray.
pub fn spectral_residual(images: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = images.dims();
    let device = images.device();
    let gray = if c == 3 {
        let ch = |k: usize| images.clone().slice([0..n, k..k + 1, 0..h, 0..w]);
        // cvtColor BGR2GRAY, 8-bit: (B*3735 + G*19235 + R*9798 + 2^14) >> 15; every term is an
        // integer below 2^24, so f32 computes it exactly.
        (ch(0).mul_scalar(3735.0) + ch(1).mul_scalar(19235.0) + ch(2).mul_scalar(9798.0))
            .add_scalar(16384.0)
            .div_scalar(32768.0)
            .floor()
    } else {
        images.slice([0..n, 0..1, 0..h, 0..w])
    };
    // INTER_LINEAR_EXACT to 64x64: (sum_rows cy * sum_cols cx * p + 2^15) >> 16.
    let small = if (h, w) == (SIDE, SIDE) {
        gray
    } else {
        resize(gray, &exact_weights(h, &device), &exact_weights(w, &device))
            .add_scalar(32768.0)
            .div_scalar(65536.0)
            .floor()
    };
    let (re, im) = real_fft2(small);
    let magnitude = (re.clone().powi_scalar(2) + im.clone().powi_scalar(2)).sqrt();
    // `L = ln(|F| + 1)`: what the OpenCV 4.10 reference maps follow (plain
    // `ln|F|` misses them by up to 4e-2), and finite for the empty bins of flat images.
    let log_amplitude = magnitude.clone().log1p();
    let residual = (log_amplitude.clone() - box3(log_amplitude)).exp();
    // polarToCart(residual, angle): the unit phasor is F / |F| (angle 0 where |F| = 0).
    let zero = magnitude.clone().equal_elem(0.0);
    let safe = magnitude.mask_fill(zero.clone(), 1.0);
    let cos = (re / safe.clone()).mask_fill(zero.clone(), 1.0);
    let sin = (im / safe).mask_fill(zero, 0.0);
    // |unscaled IDFT(Z)| = |DFT(conj(Z))|.
    let (zr, zi) = fft2(residual.clone() * cos, (residual * sin).neg());
    let m = (zr.powi_scalar(2) + zi.powi_scalar(2)).sqrt();
    // OpenCV squares, then divides by the maximum; dividing first is the same map and cannot
    // overflow f32.
    let m = gaussian5(m);
    let max = m
        .clone()
        .reshape([n, SIDE * SIDE])
        .max_dim(1)
        .reshape([n, 1, 1, 1]);
    let m = (m / max).powi_scalar(2);
    let out = if (h, w) == (SIDE, SIDE) {
        m
    } else {
        resize(m, &linear_weights(h, &device), &linear_weights(w, &device))
    };
    out.reshape([n, h, w])
}

/// `rows @ x @ cols^T` for `x` `[N, 1, a, b]`, `rows` `[out_h, a]`, `cols` `[out_w, b]`.
fn resize(x: Tensor<4>, rows: &Tensor<2>, cols: &Tensor<2>) -> Tensor<4> {
    let [oh, a] = rows.dims();
    let [ow, b] = cols.dims();
    let cols_t = cols.clone().transpose().reshape([1, 1, b, ow]);
    let rows = rows.clone().reshape([1, 1, oh, a]);
    rows.matmul(x.matmul(cols_t))
}

/// `[64, size]` integer weights of OpenCV's bit-exact bilinear resize from `size` to 64:
/// `f = (d + 0.5) * size / 64 - 0.5`, taps `floor(f)` and `floor(f) + 1` with weights
/// `256 - round(frac * 256)` and `round(frac * 256)`, clamped at the borders (frac 0).
fn exact_weights(size: usize, device: &Device) -> Tensor<2> {
    let mut m = vec![0f32; SIDE * size];
    for d in 0..SIDE {
        let (i0, frac) = source_position((d as f64 + 0.5) * size as f64 / SIDE as f64 - 0.5, size);
        let c1 = (frac * 256.0).round() as u32;
        m[d * size + i0] += (256 - c1) as f32;
        if c1 > 0 {
            m[d * size + i0 + 1] += c1 as f32;
        }
    }
    Tensor::from_data(TensorData::new(m, [SIDE, size]), device)
}

/// `[size, 64]` weights of OpenCV's float bilinear resize from 64 to `size` (half-pixel
/// centres, clamped; the fraction in f32 as `resize` computes it).
fn linear_weights(size: usize, device: &Device) -> Tensor<2> {
    let mut m = vec![0f32; size * SIDE];
    for d in 0..size {
        let f = ((d as f64 + 0.5) * SIDE as f64 / size as f64 - 0.5) as f32;
        let (i0, frac) = source_position(f as f64, SIDE);
        let frac = frac as f32;
        m[d * SIDE + i0] += 1.0 - frac;
        if frac > 0.0 {
            m[d * SIDE + i0 + 1] += frac;
        }
    }
    Tensor::from_data(TensorData::new(m, [size, SIDE]), device)
}

/// `(floor(f), f - floor(f))`, clamped: `(0, 0)` left of the first pixel, `(size-1, 0)` at or
/// right of the last.
fn source_position(f: f64, size: usize) -> (usize, f64) {
    let i0 = f.floor();
    if i0 < 0.0 {
        (0, 0.0)
    } else if i0 as usize >= size - 1 {
        (size - 1, 0.0)
    } else {
        (i0 as usize, f - i0)
    }
}

/// The 64-point DFT matrix `W = C - iS`, `C[k][n] = cos(2 pi k n / 64)`,
/// `S[k][n] = sin(2 pi k n / 64)` (symmetric), built in f64 and rounded once.
fn dft_matrices(device: &Device) -> (Tensor<2>, Tensor<2>) {
    let table = |f: fn(f64) -> f64| {
        let v: Vec<f32> = (0..SIDE * SIDE)
            .map(|i| {
                // `k n mod 64` keeps the angle exact before the trigonometry.
                let kn = (i / SIDE) * (i % SIDE) % SIDE;
                f(2.0 * std::f64::consts::PI * kn as f64 / SIDE as f64) as f32
            })
            .collect();
        Tensor::from_data(TensorData::new(v, [SIDE, SIDE]), device)
    };
    (table(f64::cos), table(f64::sin))
}

/// 2-D DFT (unscaled) of the real image `[N, 1, 64, 64]`: a real FFT along the rows, a
/// complex FFT down the 33 columns of that half spectrum, and the other 31 columns from
/// Hermitian symmetry, `X[k1, k2] = conj(X[-k1, -k2])` (half the work of a complex 2-D FFT).
///
/// An FFT, not the matrix products of [`fft2`]: where the exact spectrum has empty bins (flat
/// or symmetric images) the FFT's butterflies cancel to (near) zero, so the phase OpenCV reads
/// there is kept; the f32 DFT matrix leaves rounding of the image's scale in them instead, with
/// a random phase that moved the map by up to 7e-3 on the fixture images.
fn real_fft2(x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let device = x.device();
    let (re, im) = rfft(x, 3, None);
    let (re, im) = cfft(re, im, 2, None);
    let rows: Vec<i64> = (0..SIDE as i64)
        .map(|k| (SIDE as i64 - k) % SIDE as i64)
        .collect();
    let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [SIDE]), &device);
    let half = SIDE / 2;
    let mirror = |t: Tensor<4>| t.select(2, rows.clone()).narrow(3, 1, half - 1).flip([3]);
    (
        Tensor::cat(vec![re.clone(), mirror(re)], 3),
        Tensor::cat(vec![im.clone(), mirror(im).neg()], 3),
    )
}

/// 2-D DFT (unscaled) of the complex image `re + i im`, `[N, 1, 64, 64]`, as `W X W` with the
/// 64x64 DFT matrix: batched matrix products. At this size they beat burn's FFT on the CPU
/// backend (docs/benchmarks.md), whose many small ops cost more than the products'
/// arithmetic, and every backend has a fast matrix product. The spectral residual's second
/// transform: its input has no empty bins to keep (see [`real_fft2`]).
fn fft2(re: Tensor<4>, im: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let (c, s) = dft_matrices(&re.device());
    let (c, s) = (c.reshape([1, 1, SIDE, SIDE]), s.reshape([1, 1, SIDE, SIDE]));
    // Along the columns: Y = X W = (Xr + i Xi)(C - i S).
    let (yr, yi) = (
        re.clone().matmul(c.clone()) + im.clone().matmul(s.clone()),
        im.matmul(c.clone()) - re.matmul(s.clone()),
    );
    // Along the rows: Z = W Y.
    (
        c.clone().matmul(yr.clone()) + s.clone().matmul(yi.clone()),
        c.matmul(yi) - s.matmul(yr),
    )
}

/// `[64, 64]` matrix of a 1-D filter with `taps` (odd length) and reflect-101 borders
/// (`dcb|abcd|cba`, OpenCV's BORDER_DEFAULT): row `i` holds the weight of every source pixel
/// in output pixel `i`.
fn filter_matrix(taps: &[f64], device: &Device) -> Tensor<2> {
    let p = taps.len() as isize / 2;
    let last = SIDE as isize - 1;
    let mut m = vec![0f64; SIDE * SIDE];
    for i in 0..SIDE {
        for (k, &t) in taps.iter().enumerate() {
            let j = i as isize + k as isize - p;
            let j = if j < 0 {
                -j
            } else if j > last {
                2 * last - j
            } else {
                j
            };
            m[i * SIDE + j as usize] += t;
        }
    }
    let m: Vec<f32> = m.into_iter().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(m, [SIDE, SIDE]), device)
}

/// Separable filter with `taps` along dimensions 2 and 3 of `[N, 1, 64, 64]`, reflect-101
/// borders, as two matrix products.
fn separable(x: Tensor<4>, taps: &[f64]) -> Tensor<4> {
    let m = filter_matrix(taps, &x.device());
    resize(x, &m, &m)
}

/// OpenCV `blur(3x3)`: the normalised box filter.
fn box3(x: Tensor<4>) -> Tensor<4> {
    separable(x, &[1.0 / 3.0; 3])
}

/// OpenCV `GaussianBlur(5x5, sigma 8)`: `k_i ∝ exp(-(i - 2)^2 / (2 * 8^2))`, normalised.
fn gaussian5(x: Tensor<4>) -> Tensor<4> {
    let raw: Vec<f64> = (0..5)
        .map(|i| (-((i as f64 - 2.0).powi(2)) / 128.0).exp())
        .collect();
    let sum: f64 = raw.iter().sum();
    let taps: Vec<f64> = raw.iter().map(|v| v / sum).collect();
    separable(x, &taps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{devices, fixtures_dir, host_vec, read_npy};

    /// A fixture case: name, u8 input as CHW floats, height, width, OpenCV's map.
    type Case = (String, Vec<f32>, usize, usize, Vec<f32>);

    /// The fixture cases with their u8 RGB input and OpenCV's map.
    fn cases() -> Vec<Case> {
        let dir = fixtures_dir().join("saliency");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("sr_on_u8.npy").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let (hwc, shape) = read_npy(&dir.join(&name).join("input_u8.npy"));
                let (map, _) = read_npy(&dir.join(&name).join("sr_on_u8.npy"));
                let (h, w) = (shape[0], shape[1]);
                // HWC -> CHW, channel order kept (R first, read as blue).
                let mut chw = vec![0f32; 3 * h * w];
                for (i, v) in hwc.iter().enumerate() {
                    let (pixel, ch) = (i / 3, i % 3);
                    chw[ch * h * w + pixel] = *v;
                }
                (name, chw, h, w, map)
            })
            .collect()
    }

    #[test]
    fn matches_opencv_on_the_fixture_images_within_1e_4() {
        let cases = cases();
        assert!(cases.len() >= 16, "found {} cases", cases.len());
        for device in devices() {
            for (name, chw, h, w, expected) in &cases {
                let x = Tensor::from_data(TensorData::new(chw.clone(), [1, 3, *h, *w]), &device);
                let got = host_vec::<f32, 3>(spectral_residual(x));
                let worst = got
                    .iter()
                    .zip(expected)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst <= 1e-4, "{name} on {device:?}: max |diff| {worst}");
            }
        }
    }

    #[test]
    fn equals_the_host_detector_within_1e_4_per_map() {
        // sal-saliency's host port (OpenCV's phase polynomial, f64) against this f32 device
        // version: the fixture images plus random images of other shapes and channel counts.
        use rand::RngExt;
        use sal_saliency::{ImageView, SpectralResidual, StaticSaliency};
        let host = SpectralResidual::default();
        let mut images: Vec<(Vec<f32>, usize, usize, usize)> = cases()
            .into_iter()
            .map(|(_, chw, h, w, _)| (chw, 3, h, w))
            .collect();
        let mut rng = crate::seed::step_rng(17, 0);
        for (c, h, w) in [(1, 28, 28), (3, 24, 40), (3, 64, 64), (1, 7, 5), (3, 1, 1)] {
            images.push((
                (0..c * h * w)
                    .map(|_| rng.random_range(0..=255u8) as f32)
                    .collect(),
                c,
                h,
                w,
            ));
        }
        for device in devices() {
            for (chw, c, h, w) in &images {
                let bytes: Vec<u8> = chw.iter().map(|&v| v as u8).collect();
                let view = ImageView::chw_u8(&bytes, *c, *h, *w).unwrap();
                let expected = host.compute(&view).unwrap().data;
                let x = Tensor::from_data(TensorData::new(chw.clone(), [1, *c, *h, *w]), &device);
                let got = host_vec::<f32, 3>(spectral_residual(x));
                let worst = got
                    .iter()
                    .zip(&expected)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    worst <= 1e-4,
                    "{c}x{h}x{w} on {device:?}: max |diff| {worst}"
                );
            }
        }
    }

    #[test]
    fn a_batch_gives_the_maps_of_its_images() {
        let cases = cases();
        let same: Vec<_> = cases
            .iter()
            .filter(|c| (c.2, c.3) == (32, 32))
            .take(3)
            .collect();
        let device = burn::tensor::Device::flex();
        let data: Vec<f32> = same.iter().flat_map(|c| c.1.clone()).collect();
        let batch = Tensor::from_data(TensorData::new(data, [same.len(), 3, 32, 32]), &device);
        let maps = host_vec::<f32, 3>(spectral_residual(batch));
        for (i, c) in same.iter().enumerate() {
            let one = Tensor::from_data(TensorData::new(c.1.clone(), [1, 3, 32, 32]), &device);
            let single = host_vec::<f32, 3>(spectral_residual(one));
            let diff = maps[i * 1024..(i + 1) * 1024]
                .iter()
                .zip(&single)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-6, "{}: batch vs single {diff}", c.0);
        }
    }
}
