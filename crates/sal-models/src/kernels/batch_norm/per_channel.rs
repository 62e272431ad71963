//! Batch normalisation over NCHW `f32` slices in two passes each way: per-channel statistics
//! (parallel over channels), then one fused elementwise pass (parallel over samples).
//!
//! burn-backend's generic batch norm, which flex 0.22 uses, transposes the input to reduce per
//! channel and makes five to eight elementwise passes forward and backward, most of them on
//! one thread below flex's parallel threshold, well behind PyTorch's in CIFAR ResNet-18
//! (`docs/benchmarks.md`, Models, has the measurements). The maths is the standard one (Ioffe &
//! Szegedy 2015, Algorithm 1 and its backward), with the biased batch variance burn returns for
//! the running statistics.

use rayon::prelude::*;

use super::Activation;
use crate::kernels::relu::{relu, relu_gate};
use crate::kernels::uninit::{assume_init, uninit};

/// `[batch, channels, pixels per channel plane]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Planes {
    pub batch: usize,
    pub channels: usize,
    pub pixels: usize,
}

impl Planes {
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.pixels
    }

    /// Elements per channel: what the statistics average over.
    fn count(&self) -> f64 {
        (self.batch * self.pixels) as f64
    }

    /// The `[pixels]` planes of channel `c`, one per sample.
    fn channel<'a>(&self, x: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        let (pixels, stride) = (self.pixels, self.channels * self.pixels);
        (0..self.batch).map(move |n| &x[n * stride + c * pixels..][..pixels])
    }
}

/// `Σ f(a_i, b_i, c_i)` over equally long planes (pass one plane several times where fewer
/// are read): f32 in 8 lanes (so it vectorises) within blocks of 4096, blocks combined in f64
/// (so long planes keep little rounding error).
fn plane_sum(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> f64 {
    let mut total = 0.0f64;
    for ((a, b), c) in a.chunks(4096).zip(b.chunks(4096)).zip(c.chunks(4096)) {
        let mut lanes = [0.0f32; 8];
        let (a8, b8, c8) = (a.chunks_exact(8), b.chunks_exact(8), c.chunks_exact(8));
        let tail: f32 = a8
            .remainder()
            .iter()
            .zip(b8.remainder())
            .zip(c8.remainder())
            .map(|((&x, &y), &z)| f(x, y, z))
            .sum();
        for ((a, b), c) in a8.zip(b8).zip(c8) {
            for i in 0..8 {
                lanes[i] += f(a[i], b[i], c[i]);
            }
        }
        total += lanes.iter().map(|&l| f64::from(l)).sum::<f64>() + f64::from(tail);
    }
    total
}

/// `y = x·scale[c] + shift[c]`, then the activation, into a fresh buffer, in parallel over
/// samples.
fn per_channel_affine(
    p: Planes,
    x: &[f32],
    scale: &[f32],
    shift: &[f32],
    activation: Activation,
) -> Vec<f32> {
    let mut y = uninit(p.len());
    assert_eq!(x.len(), y.len(), "batch norm input length");
    y.par_chunks_mut(p.channels * p.pixels)
        .zip(x.par_chunks(p.channels * p.pixels))
        .for_each(|(y, x)| {
            let planes = y.chunks_exact_mut(p.pixels).zip(x.chunks_exact(p.pixels));
            for (c, (y, x)) in planes.enumerate() {
                let (a, b) = (scale[c], shift[c]);
                // Two loops rather than a branch per element, so both vectorise.
                match activation {
                    Activation::Relu => y
                        .iter_mut()
                        .zip(x)
                        .for_each(|(y, x)| _ = y.write(relu(x * a + b))),
                    Activation::Identity => y
                        .iter_mut()
                        .zip(x)
                        .for_each(|(y, x)| _ = y.write(x * a + b)),
                }
            }
        });
    // SAFETY: `x` is as long as `y` (the assert above), so the zipped sample chunks cover `y`;
    // each chunk splits into whole `pixels`-long planes, each written whole.
    unsafe { assume_init(y) }
}

/// Training-mode forward: `(output, mean, biased variance)`, the activation applied to the
/// output in the same pass.
pub(crate) fn forward_train(
    p: Planes,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    activation: Activation,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), p.len(), "batch norm input length");
    // Two passes per channel (mean, then squared deviations): the one-pass E[x²] - E[x]²
    // cancels catastrophically when |mean| >> std.
    let stats: Vec<(f64, f64)> = (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let sum = |f: &dyn Fn(&[f32]) -> f64| p.channel(x, c).map(f).sum::<f64>();
            let mean = sum(&|plane| plane_sum(plane, plane, plane, |v, _, _| v)) / p.count();
            let m = mean as f32;
            let var = sum(&|plane| plane_sum(plane, plane, plane, |v, _, _| (v - m) * (v - m)))
                / p.count();
            (mean, var)
        })
        .collect();
    let mean: Vec<f32> = stats.iter().map(|s| s.0 as f32).collect();
    let var: Vec<f32> = stats.iter().map(|s| s.1 as f32).collect();
    let y = forward(p, x, gamma, beta, &mean, &var, epsilon, activation);
    (y, mean, var)
}

/// `gamma · (x - mean) / sqrt(var + eps) + beta` with given statistics (inference, or the
/// second half of the training forward), then the activation.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    p: Planes,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    activation: Activation,
) -> Vec<f32> {
    assert_eq!(x.len(), p.len(), "batch norm input length");
    let (scale, shift): (Vec<f32>, Vec<f32>) = (0..p.channels)
        .map(|c| {
            let a = f64::from(gamma[c]) / (f64::from(var[c]) + epsilon).sqrt();
            (
                a as f32,
                (f64::from(beta[c]) - f64::from(mean[c]) * a) as f32,
            )
        })
        .unzip();
    per_channel_affine(p, x, &scale, &shift, activation)
}

/// Gradients of [`forward_train`]: `(dx, dgamma, dbeta)`. `relu_output` is the forward's
/// output when it applied the ReLU: the gradient only flows where it is positive or NaN.
///
/// With `g` the gradient reaching the normalisation (`dy`, masked by the ReLU), `x̂ = (x - μ)/σ`:
/// `dβ = Σ g`, `dγ = Σ g·x̂` and `dx = γ/σ · (g - dβ/M - x̂·dγ/M)`, which is
/// `k_g·g + k_x·x + k_1` per channel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    p: Planes,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    dy: &[f32],
    relu_output: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    // Without the ReLU the mask reads dy itself and keeps everything.
    let (mask, activation) = match relu_output {
        Some(y) => (y, Activation::Relu),
        None => (dy, Activation::Identity),
    };
    let gate = move |g: f32, y: f32| {
        if activation == Activation::Identity {
            g
        } else {
            relu_gate(y, g)
        }
    };
    let sums: Vec<(f64, f64)> = (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c];
            let planes = p
                .channel(dy, c)
                .zip(p.channel(x, c))
                .zip(p.channel(mask, c));
            planes.fold((0.0, 0.0), |(sum_g, sum_g_xc), ((dy, x), y)| {
                (
                    sum_g + plane_sum(dy, y, y, |g, y, _| gate(g, y)),
                    sum_g_xc + plane_sum(dy, x, y, |g, v, y| gate(g, y) * (v - m)),
                )
            })
        })
        .collect();
    let m = p.count();
    let mut dgamma = Vec::with_capacity(p.channels);
    let mut dbeta = Vec::with_capacity(p.channels);
    let mut k_g = Vec::with_capacity(p.channels);
    let mut k_x = Vec::with_capacity(p.channels);
    let mut k_1 = Vec::with_capacity(p.channels);
    for (c, &(sum_g, sum_g_xc)) in sums.iter().enumerate() {
        let inv_std = 1.0 / (f64::from(var[c]) + epsilon).sqrt();
        let dg = sum_g_xc * inv_std; // Σ g·x̂
        dgamma.push(dg as f32);
        dbeta.push(sum_g as f32);
        let a = f64::from(gamma[c]) * inv_std;
        // dx = a·(g - Σg/M - (x - μ)·inv_std·dγ/M)
        let kx = -a * inv_std * dg / m;
        k_g.push(a as f32);
        k_x.push(kx as f32);
        k_1.push((-a * sum_g / m - kx * f64::from(mean[c])) as f32);
    }
    let mut dx = uninit(p.len());
    assert_eq!(x.len(), dx.len(), "batch norm input length");
    assert_eq!(dy.len(), dx.len(), "batch norm output-gradient length");
    assert_eq!(mask.len(), dx.len(), "batch norm output length");
    let sample = p.channels * p.pixels;
    dx.par_chunks_mut(sample)
        .zip(
            dy.par_chunks(sample)
                .zip(x.par_chunks(sample))
                .zip(mask.par_chunks(sample)),
        )
        .for_each(|(dx, ((dy, x), y))| {
            let planes = dx.chunks_exact_mut(p.pixels).zip(
                dy.chunks_exact(p.pixels)
                    .zip(x.chunks_exact(p.pixels))
                    .zip(y.chunks_exact(p.pixels)),
            );
            for (c, (dx, ((dy, x), y))) in planes.enumerate() {
                let (a, b, k) = (k_g[c], k_x[c], k_1[c]);
                for (dx, ((dy, x), y)) in dx.iter_mut().zip(dy.iter().zip(x).zip(y)) {
                    dx.write(a * gate(*dy, *y) + b * x + k);
                }
            }
        });
    // SAFETY: `x`, `dy` and `mask` are as long as `dx` (the asserts above), so the zipped
    // sample chunks cover `dx`; each chunk splits into whole `pixels`-long planes, each written
    // whole.
    (unsafe { assume_init(dx) }, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32, offset: f32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let v = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(40_503));
                (v >> 8) as f32 / (1u32 << 24) as f32 - 0.5 + offset
            })
            .collect()
    }

    /// Statistics and output straight from the definitions, in f64.
    #[test]
    fn forward_train_matches_the_definition() {
        let p = Planes {
            batch: 3,
            channels: 2,
            pixels: 5,
        };
        // A large offset: the two-pass variance must not cancel.
        let x = values(p.len(), 1, 100.0);
        let (gamma, beta) = (vec![1.5, -0.5], vec![0.25, 2.0]);
        let (y, mean, var) = forward_train(p, &x, &gamma, &beta, 1e-5, Activation::Identity);
        for c in 0..2 {
            let xs: Vec<f64> = p.channel(&x, c).flatten().map(|&v| f64::from(v)).collect();
            let mu = xs.iter().sum::<f64>() / 15.0;
            let v = xs.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / 15.0;
            assert!((f64::from(mean[c]) - mu).abs() < 1e-4);
            assert!((f64::from(var[c]) - v).abs() < 1e-5, "{} vs {v}", var[c]);
            for (n, plane) in p.channel(&y, c).enumerate() {
                for (i, &got) in plane.iter().enumerate() {
                    let xv = f64::from(x[(n * 2 + c) * 5 + i]);
                    let want =
                        f64::from(gamma[c]) * (xv - mu) / (v + 1e-5).sqrt() + f64::from(beta[c]);
                    assert!((f64::from(got) - want).abs() < 1e-3, "{got} vs {want}");
                }
            }
        }
    }

    /// The backward pass against central differences of `L = Σ r·y` in f64, with and without
    /// the fused ReLU.
    #[test]
    fn backward_matches_finite_differences() {
        for relu in [false, true] {
            let activation = if relu {
                Activation::Relu
            } else {
                Activation::Identity
            };
            let p = Planes {
                batch: 2,
                channels: 2,
                pixels: 3,
            };
            let x = values(p.len(), 2, 0.3);
            let r = values(p.len(), 3, 0.0);
            let gamma = vec![1.3f32, 0.7];
            let beta = vec![0.1f32, -0.2];
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
                let (y, _, _) = forward_train(p, x, gamma, beta, 1e-5, activation);
                y.iter()
                    .zip(&r)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum()
            };
            let (y, mean, var) = forward_train(p, &x, &gamma, &beta, 1e-5, activation);
            assert_eq!(relu, y.iter().all(|&v| v >= 0.0), "relu {relu}");
            let relu_output = relu.then_some(y.as_slice());
            let (dx, dgamma, dbeta) = backward(p, &x, &gamma, &mean, &var, 1e-5, &r, relu_output);
            let h = 1e-3f32;
            let numeric = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / f64::from(2.0 * h);
            for i in 0..p.len() {
                let d = numeric(&|e| {
                    let mut x = x.clone();
                    x[i] += e;
                    loss(&x, &gamma, &beta)
                });
                assert!(
                    (f64::from(dx[i]) - d).abs() < 2e-3,
                    "relu {relu} dx[{i}]: {} vs {d}",
                    dx[i]
                );
            }
            for c in 0..2 {
                let dg = numeric(&|e| {
                    let mut g = gamma.clone();
                    g[c] += e;
                    loss(&x, &g, &beta)
                });
                let db = numeric(&|e| {
                    let mut b = beta.clone();
                    b[c] += e;
                    loss(&x, &gamma, &b)
                });
                assert!(
                    (f64::from(dgamma[c]) - dg).abs() < 2e-3,
                    "dgamma[{c}]: {} vs {dg}",
                    dgamma[c]
                );
                assert!(
                    (f64::from(dbeta[c]) - db).abs() < 2e-3,
                    "dbeta[{c}]: {} vs {db}",
                    dbeta[c]
                );
            }
        }
    }
}
