//! The colour augmentation of the papers' ImageNet recipe (CutMix's and SaliencyMix's
//! `train.py`): torchvision's `ColorJitter(brightness, contrast, saturation)` on the PIL image,
//! then AlexNet's PCA `Lighting(0.1)` on the [0, 1] tensor.
//!
//! The jitter works on u8 levels as PIL's `ImageEnhance` does: each operation blends the image
//! with a degenerate one (black for brightness, the grey of the image's mean luma for contrast,
//! the image's luma for saturation), `out = degenerate + factor * (image - degenerate)`, and
//! rounds and clamps to 0..=255; the three run in a random order with factors drawn uniformly
//! in `[max(0, 1 - x), 1 + x]`.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// `[transform.color_jitter]`: torchvision's `ColorJitter` strengths (0.4 each in the papers'
/// ImageNet recipe, the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColorJitter {
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
}

impl Default for ColorJitter {
    fn default() -> Self {
        Self {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enhance {
    Brightness,
    Contrast,
    Saturation,
}

/// One sample's jitter: the operations in their drawn order with their factors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Jitter(Vec<(Enhance, f32)>);

impl ColorJitter {
    /// The first invalid strength, as its key and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, value) in [
            ("transform.color_jitter.brightness", self.brightness),
            ("transform.color_jitter.contrast", self.contrast),
            ("transform.color_jitter.saturation", self.saturation),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err((key, format!("must be >= 0, got {value}")));
            }
        }
        Ok(())
    }

    /// Draws the factors, then the order (a random permutation, as torchvision shuffles them).
    pub(crate) fn draw(&self, rng: &mut impl Rng) -> Jitter {
        let mut ops: Vec<(Enhance, f32)> = [
            (Enhance::Brightness, self.brightness),
            (Enhance::Contrast, self.contrast),
            (Enhance::Saturation, self.saturation),
        ]
        .into_iter()
        .filter(|(_, x)| *x > 0.0)
        .map(|(op, x)| (op, rng.random_range((1.0 - x).max(0.0)..=1.0 + x) as f32))
        .collect();
        for i in (1..ops.len()).rev() {
            ops.swap(i, rng.random_range(0..=i));
        }
        Jitter(ops)
    }
}

impl Jitter {
    /// Applies the operations to `planes` (`[C, H*W]` u8 levels as floats, 1 or 3 channels).
    pub(crate) fn apply(&self, planes: &mut [f32], channels: usize) {
        let hw = planes.len() / channels;
        for &(op, factor) in &self.0 {
            match op {
                Enhance::Brightness => blend_with(planes, factor, |_| 0.0),
                Enhance::Contrast => {
                    let luma = luma(planes, channels, hw);
                    // PIL: `int(mean + 0.5)` of the L image.
                    let mean = (luma.iter().sum::<f32>() / hw as f32 + 0.5).floor();
                    blend_with(planes, factor, |_| mean);
                }
                Enhance::Saturation if channels == 3 => {
                    let luma = luma(planes, channels, hw);
                    blend_with(planes, factor, |i| luma[i % hw]);
                }
                Enhance::Saturation => {}
            }
        }
    }
}

/// `out = round(degenerate + factor * (image - degenerate))` clamped to 0..=255, per value
/// (`degenerate(i)` for value `i` of the `[C, H*W]` planes).
fn blend_with(planes: &mut [f32], factor: f32, degenerate: impl Fn(usize) -> f32) {
    for (i, v) in planes.iter_mut().enumerate() {
        let d = degenerate(i);
        *v = (d + factor * (*v - d)).round().clamp(0.0, 255.0);
    }
}

/// PIL's `convert("L")`: `(R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16` per pixel; a
/// one-channel image is its own luma.
fn luma(planes: &[f32], channels: usize, hw: usize) -> Vec<f32> {
    if channels != 3 {
        return planes[..hw].to_vec();
    }
    (0..hw)
        .map(|i| {
            let (r, g, b) = (
                planes[i] as u32,
                planes[hw + i] as u32,
                planes[2 * hw + i] as u32,
            );
            ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) as f32
        })
        .collect()
}

/// AlexNet's ImageNet RGB eigenvalues and eigenvectors (columns), as CutMix's `Lighting` uses.
const EIGVAL: [f64; 3] = [0.2175, 0.0188, 0.0045];
const EIGVEC: [[f64; 3]; 3] = [
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
];

/// PCA lighting's per-channel offset in [0, 1] units: `alpha ~ N(0, std)` per component,
/// `rgb[i] = sum_j eigvec[i][j] * alpha[j] * eigval[j]`.
pub(crate) fn lighting(std: f64, rng: &mut impl Rng) -> [f32; 3] {
    let normal = Normal::new(0.0, std).expect("a finite, non-negative std");
    let alpha: [f64; 3] = std::array::from_fn(|_| normal.sample(rng));
    std::array::from_fn(|i| {
        (0..3)
            .map(|j| EIGVEC[i][j] * alpha[j] * EIGVAL[j])
            .sum::<f64>() as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn each_enhancement_blends_with_its_degenerate_image_like_pil() {
        // One 2-pixel RGB image: (200, 100, 50) and (10, 20, 30).
        let image = vec![200.0, 10.0, 100.0, 20.0, 50.0, 30.0];
        let run = |op, factor| {
            let mut p = image.clone();
            Jitter(vec![(op, factor)]).apply(&mut p, 3);
            p
        };
        assert_eq!(
            run(Enhance::Brightness, 0.5),
            vec![100.0, 5.0, 50.0, 10.0, 25.0, 15.0]
        );
        assert_eq!(run(Enhance::Brightness, 2.0)[0], 255.0);
        // Luma: (200*19595 + 100*38470 + 50*7471 + 32768) >> 16 = 124, (10, 20, 30) -> 18;
        // their mean 71 (int(71.0 + 0.5)).
        assert_eq!(luma(&image, 3, 2), vec![124.0, 18.0]);
        assert_eq!(run(Enhance::Contrast, 0.0), vec![71.0; 6]);
        assert_eq!(
            run(Enhance::Saturation, 0.0),
            vec![124.0, 18.0, 124.0, 18.0, 124.0, 18.0]
        );
        // Factor 1 changes nothing.
        for op in [Enhance::Brightness, Enhance::Contrast, Enhance::Saturation] {
            assert_eq!(run(op, 1.0), image);
        }
    }

    #[test]
    fn factors_and_orders_are_drawn_in_range_and_every_order_occurs() {
        let jitter = ColorJitter::default();
        let mut rng = StdRng::seed_from_u64(2);
        let mut orders = std::collections::HashSet::new();
        for _ in 0..600 {
            let Jitter(ops) = jitter.draw(&mut rng);
            assert_eq!(ops.len(), 3);
            assert!(ops.iter().all(|(_, f)| (0.6..=1.4).contains(f)), "{ops:?}");
            orders.insert(ops.iter().map(|(op, _)| *op as u8).collect::<Vec<_>>());
        }
        assert_eq!(orders.len(), 6, "all 3! orders");
        // Zero strengths drop their operation.
        let none = ColorJitter {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
        };
        assert_eq!(none.draw(&mut rng), Jitter(Vec::new()));
        assert!(
            ColorJitter {
                brightness: -0.1,
                ..jitter
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn lighting_offsets_follow_the_eigen_decomposition() {
        let mut rng = StdRng::seed_from_u64(9);
        let draws: Vec<[f32; 3]> = (0..4000).map(|_| lighting(0.1, &mut rng)).collect();
        // The offsets' covariance is eigvec * diag((0.1 * eigval)^2) * eigvec^T: R's variance
        // is sum_j (eigvec[0][j] * 0.1 * eigval[j])^2.
        let var_r: f64 = (0..3)
            .map(|j| (EIGVEC[0][j] * 0.1 * EIGVAL[j]).powi(2))
            .sum();
        let measured = draws.iter().map(|d| (d[0] as f64).powi(2)).sum::<f64>() / 4000.0;
        assert!(
            (measured / var_r - 1.0).abs() < 0.1,
            "{measured} vs {var_r}"
        );
        assert_eq!(lighting(0.0, &mut rng), [0.0; 3]);
    }
}
