//! Per-sample augmentation and normalisation, applied on the loader's worker threads.
//!
//! The papers' CIFAR recipe (SaliencyMix, CutMix and Cutout code): `RandomCrop(32, padding=4)`
//! (zero padding), then `RandomHorizontalFlip()`, then `ToTensor()` + `Normalize(mean, std)`.
//! [`SampleTransform::apply`] does all of it in one pass from the u8 image straight into the
//! batch's f32 CHW buffer: every output pixel is looked up in the (virtually) padded, cropped
//! and flipped source, so that recipe allocates no intermediate image. (A resize, below, makes
//! one u8 image per sample, as PIL does, and that image then takes the same single pass.)
//!
//! `random_resized_crop` is torchvision's `RandomResizedCrop`: a random box of 8-100 % of the
//! area and aspect 3/4-4/3, resized with Pillow's bilinear filter (bit for bit, [`resize`])
//! before the flip. Without `size` the box is resized back to the image's own size (SalfMix's
//! CIFAR recipe, §5.1).
//!
//! `size` is ImageNet's recipe (CutMix's and SaliencyMix's `train.py`, torchvision's reference
//! scripts): images of any size become `size x size` samples, training through
//! `RandomResizedCrop(size)`, testing through `Resize(test_resize)` + `CenterCrop(size)`.
//! The resized sample is a u8 image, as PIL's is, and flows through the flip, the colour
//! operations and the normalisation like any other.

mod colour;
mod resize;

pub use colour::ColorJitter;

use crate::data::ImageItem;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// The `[transform]` table of an experiment config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Zero-pad every image, centred, to `pad_to x pad_to` first (Fashion-MNIST's 28x28 -> 32x32,
    /// the input size of the CIFAR models). `None` keeps the native size.
    #[serde(default)]
    pub pad_to: Option<usize>,
    /// Samples of `size x size` from images of any size (ImageNet's 224): training resizes
    /// `random_resized_crop`'s box to it (without one, it uses the test geometry), testing
    /// resizes the shorter side to `test_resize` and centre-crops `size`. Not with `pad_to` or
    /// `crop_padding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// The shorter side testing resizes to before its centre crop (256 for `size = 224` in the
    /// papers); at least `size`, which is the default. Only with `size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_resize: Option<usize>,
    /// `RandomCrop(size, padding)`: pad by this many zero pixels on every side and crop back to
    /// the original size at a uniformly random offset. 0 turns it off. Training only.
    #[serde(default)]
    pub crop_padding: usize,
    /// Random horizontal flip with probability 0.5. Training only.
    #[serde(default)]
    pub hflip: bool,
    /// `RandomResizedCrop` to `size`, else to the image's own size (after `pad_to`). Training
    /// only; not with `crop_padding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_resized_crop: Option<RandomResizedCrop>,
    /// torchvision's `ColorJitter` (brightness, contrast, saturation), after the flip. Training
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_jitter: Option<ColorJitter>,
    /// AlexNet's PCA lighting noise with this standard deviation (0.1 in the papers' ImageNet
    /// recipe), after the jitter; RGB images only. Training only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lighting: Option<f64>,
    /// Per-channel mean in [0, 1] units; defaults to the data set's (see `DatasetKind`).
    #[serde(default)]
    pub mean: Option<Vec<f64>>,
    /// Per-channel standard deviation in [0, 1] units; defaults to the data set's.
    #[serde(default)]
    pub std: Option<Vec<f64>>,
}

/// torchvision's `RandomResizedCrop` parameters (its defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomResizedCrop {
    /// The box's area as a fraction of the image's, drawn uniformly in this range.
    pub scale: [f64; 2],
    /// The box's aspect ratio (width / height), drawn log-uniformly in this range.
    pub ratio: [f64; 2],
}

impl Default for RandomResizedCrop {
    fn default() -> Self {
        Self {
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        }
    }
}

impl RandomResizedCrop {
    /// The first invalid value, as its key below `[transform]` and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let [s0, s1] = self.scale;
        if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            return Err((
                "transform.random_resized_crop.scale",
                format!("must be 0 < low <= high <= 1, got {:?}", self.scale),
            ));
        }
        let [r0, r1] = self.ratio;
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return Err((
                "transform.random_resized_crop.ratio",
                format!("must be 0 < low <= high, got {:?}", self.ratio),
            ));
        }
        Ok(())
    }

    /// torchvision's `get_params`: up to 10 draws of an area and an aspect ratio whose box
    /// fits the `height x width` image, else the centred box of the nearest allowed ratio.
    /// `(top, left, box height, box width)`.
    fn sample(
        &self,
        height: usize,
        width: usize,
        rng: &mut impl Rng,
    ) -> (usize, usize, usize, usize) {
        let area = (height * width) as f64;
        let (log_lo, log_hi) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..10 {
            let target = area * rng.random_range(self.scale[0]..=self.scale[1]);
            let aspect = rng.random_range(log_lo..=log_hi).exp();
            // Python's round() rounds half to even.
            let w = (target * aspect).sqrt().round_ties_even() as usize;
            let h = (target / aspect).sqrt().round_ties_even() as usize;
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return (top, left, h, w);
            }
        }
        let in_ratio = width as f64 / height as f64;
        let (h, w) = if in_ratio < self.ratio[0] {
            (
                ((width as f64 / self.ratio[0]).round_ties_even() as usize).max(1),
                width,
            )
        } else if in_ratio > self.ratio[1] {
            (
                height,
                ((height as f64 * self.ratio[1]).round_ties_even() as usize).max(1),
            )
        } else {
            (height, width)
        };
        ((height - h) / 2, (width - w) / 2, h, w)
    }
}

pub use sal_core::Normalization;
use sal_saliency::Normalizer;

/// A resolved per-sample transform: output geometry, augmentation switches, normalisation.
#[derive(Debug, Clone)]
pub struct SampleTransform {
    pub channels: usize,
    /// Output side lengths (`size`, else the images' after `pad_to`; random crops keep the
    /// size).
    pub height: usize,
    pub width: usize,
    pad_to: Option<usize>,
    /// `size` and `test_resize`: samples cut from images of any size.
    any_size: Option<(usize, usize)>,
    crop_padding: usize,
    hflip: bool,
    random_resized_crop: Option<RandomResizedCrop>,
    color_jitter: Option<ColorJitter>,
    lighting: Option<f64>,
    pub normalization: Normalization,
    normalizer: Normalizer,
}

/// Where a sample's pixels end up: chosen once per sample from its RNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    /// Offset of the crop window in the zero-padded image (`0..=2*crop_padding`).
    crop_top: usize,
    crop_left: usize,
    flip: bool,
}

impl SampleTransform {
    /// Builds the transform for images of `height x width x channels` (any size with
    /// `config.size`); `normalization` must have one entry per channel (checked by the config
    /// loader).
    pub fn new(
        config: &TransformConfig,
        channels: usize,
        height: usize,
        width: usize,
        normalization: Normalization,
    ) -> Self {
        let any_size = config
            .size
            .map(|size| (size, config.test_resize.unwrap_or(size)));
        let (height, width) = match (any_size, config.pad_to) {
            (Some((size, _)), _) => (size, size),
            (None, Some(side)) => (height.max(side), width.max(side)),
            (None, None) => (height, width),
        };
        Self {
            channels,
            height,
            width,
            pad_to: config.pad_to,
            any_size,
            crop_padding: config.crop_padding,
            hflip: config.hflip,
            random_resized_crop: config.random_resized_crop,
            color_jitter: config.color_jitter,
            lighting: config.lighting,
            normalizer: normalization.normalizer(),
            normalization,
        }
    }

    /// Number of f32 values one sample occupies in the batch buffer.
    pub fn sample_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// `items` one after another (`[N, C, H, W]` values), each as [`Self::apply`] writes it,
    /// drawing from `rng` in order when given.
    ///
    /// # Errors
    /// The first item whose size or channel count does not fit.
    pub fn apply_all(
        &self,
        items: &[ImageItem],
        mut rng: Option<&mut impl Rng>,
    ) -> Result<Vec<f32>, String> {
        let per = self.sample_len();
        let mut pixels = vec![0f32; items.len() * per];
        for (item, out) in items.iter().zip(pixels.chunks_mut(per)) {
            self.apply(item, rng.as_deref_mut(), out)?;
        }
        Ok(pixels)
    }

    /// Writes `item` into `out` (CHW, normalised). With `rng` the random crop and flip are
    /// applied (training); without, only padding and normalisation (evaluation).
    ///
    /// # Errors
    /// The item's size or channel count differs from what the transform was built for.
    pub fn apply(
        &self,
        item: &ImageItem,
        rng: Option<&mut impl Rng>,
        out: &mut [f32],
    ) -> Result<(), String> {
        let (pad_top, pad_left) = self.centre_padding(item)?;
        let mut colour = None;
        let mut resized_from = None;
        let placement = match rng {
            Some(rng) => {
                let mut offset = || match self.crop_padding {
                    0 => 0,
                    p => rng.random_range(0..=2 * p),
                };
                let (crop_top, crop_left) = (offset(), offset());
                // The box is drawn on the image itself, or on the padded image at its own size.
                let (h, w) = match self.any_size {
                    Some(_) => (item.height, item.width),
                    None => (self.height, self.width),
                };
                resized_from = self.random_resized_crop.map(|r| r.sample(h, w, rng));
                let flip = self.hflip && rng.random_bool(0.5);
                if self.color_jitter.is_some() || self.lighting.is_some() {
                    colour = Some((
                        self.color_jitter.map(|j| j.draw(rng)),
                        self.lighting.map(|std| colour::lighting(std, rng)),
                    ));
                }
                Placement {
                    crop_top,
                    crop_left,
                    flip,
                }
            }
            None => Placement {
                crop_top: self.crop_padding,
                crop_left: self.crop_padding,
                flip: false,
            },
        };
        let full = (0..self.height, 0..self.width);
        let resized = match (resized_from, self.any_size) {
            (Some((top, left, height, width)), _) => {
                let window = resize::Window {
                    top,
                    left,
                    height,
                    width,
                };
                let padded = self.padded(item, (pad_top, pad_left));
                let source = padded.as_ref().unwrap_or(item);
                let size = (self.height, self.width);
                Some(resize::resize(source, window, size, full.0, full.1))
            }
            (None, Some((size, test_resize))) => {
                Some(resize::resize_centre_crop(item, test_resize, size))
            }
            (None, None) => None,
        };
        match &resized {
            Some(sample) => self.write_shifted(sample, (0, 0), placement, out),
            None => self.write_shifted(item, (pad_top, pad_left), placement, out),
        }
        if let Some((jitter, offsets)) = colour {
            self.recolour(out, jitter.as_ref(), offsets);
        }
        Ok(())
    }

    /// The colour operations on a written sample: back to u8 levels (rounded, as PIL's images
    /// are), the jitter, the lighting offsets (in [0, 1] units, after `ToTensor`), normalised
    /// again.
    fn recolour(
        &self,
        out: &mut [f32],
        jitter: Option<&colour::Jitter>,
        offsets: Option<[f32; 3]>,
    ) {
        let c = self.channels;
        let hw = out.len() / c;
        let (mean, std) = (&self.normalization.mean, &self.normalization.std);
        for (ch, plane) in out.chunks_mut(hw).enumerate() {
            let (m, s) = (mean[ch] as f32, std[ch] as f32);
            for v in plane.iter_mut() {
                *v = ((*v * s + m) * 255.0).round().clamp(0.0, 255.0);
            }
        }
        if let Some(jitter) = jitter {
            jitter.apply(out, c);
        }
        for (ch, plane) in out.chunks_mut(hw).enumerate() {
            let (m, s) = (mean[ch] as f32, std[ch] as f32);
            let offset = offsets.map_or(0.0, |o| o[ch]);
            for v in plane.iter_mut() {
                *v = (*v / 255.0 + offset - m) / s;
            }
        }
    }

    /// Writes `item` padded (centred, then `crop_padding`), shifted by the placement's crop and
    /// flipped, normalised.
    fn write_shifted(
        &self,
        item: &ImageItem,
        (pad_top, pad_left): (usize, usize),
        placement: Placement,
        out: &mut [f32],
    ) {
        let (h, w, c) = (self.height, self.width, self.channels);
        debug_assert_eq!(out.len(), self.sample_len());
        // Output pixel (y, x) shows padded-image pixel (y + crop_top - crop_padding, ...),
        // which is source pixel (.. - pad_top, .. - pad_left) when inside the source.
        let zero: Vec<f32> = (0..c).map(|ch| self.normalizer.apply(0, ch)).collect();
        for y in 0..h {
            let sy = (y + placement.crop_top).checked_sub(self.crop_padding + pad_top);
            let sy = sy.filter(|&sy| sy < item.height);
            for x in 0..w {
                let xx = if placement.flip { w - 1 - x } else { x };
                let sx = (xx + placement.crop_left).checked_sub(self.crop_padding + pad_left);
                let src = match (sy, sx.filter(|&sx| sx < item.width)) {
                    (Some(sy), Some(sx)) => Some((sy * item.width + sx) * c),
                    _ => None,
                };
                for ch in 0..c {
                    out[ch * h * w + y * w + x] = match src {
                        Some(i) => self.normalizer.apply(item.pixels[i + ch], ch),
                        None => zero[ch],
                    };
                }
            }
        }
    }

    /// `item` zero-padded, centred, to the transform's size when `pad_to` made it larger.
    /// (With `size`, boxes are drawn on the image itself: nothing is padded.)
    fn padded(&self, item: &ImageItem, (top, left): (usize, usize)) -> Option<ImageItem> {
        if self.any_size.is_some() || (item.height, item.width) == (self.height, self.width) {
            return None;
        }
        let c = item.channels;
        let mut pixels = vec![0u8; self.height * self.width * c];
        for (y, row) in item.pixels.chunks(item.width * c).enumerate() {
            pixels[((top + y) * self.width + left) * c..][..row.len()].copy_from_slice(row);
        }
        Some(ImageItem {
            pixels,
            height: self.height,
            width: self.width,
            channels: c,
            label: item.label,
        })
    }

    /// The centring offsets of `pad_to`, after checking the item fits the transform.
    fn centre_padding(&self, item: &ImageItem) -> Result<(usize, usize), String> {
        if item.channels != self.channels {
            return Err(format!(
                "image has {} channels, the model expects {}",
                item.channels, self.channels
            ));
        }
        if self.any_size.is_some() {
            return match item.height * item.width {
                0 => Err("image is empty".into()),
                _ => Ok((0, 0)),
            };
        }
        let (expected_h, expected_w) = match self.pad_to {
            Some(_) if item.height <= self.height && item.width <= self.width => {
                return Ok((
                    (self.height - item.height) / 2,
                    (self.width - item.width) / 2,
                ));
            }
            _ => (self.height, self.width),
        };
        if item.height != expected_h || item.width != expected_w {
            return Err(format!(
                "image is {}x{}, expected {}x{} (every image of a data set must have one size; \
                 set transform.pad_to to pad smaller ones)",
                item.height, item.width, expected_h, expected_w
            ));
        }
        Ok((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn item(h: usize, w: usize, c: usize) -> ImageItem {
        let pixels = (0..h * w * c).map(|i| (i % 251) as u8 + 1).collect();
        ImageItem {
            pixels,
            height: h,
            width: w,
            channels: c,
            label: 0,
        }
    }

    fn identity_norm(c: usize) -> Normalization {
        Normalization {
            mean: vec![0.0; c],
            std: vec![1.0 / 255.0; c],
        }
    }

    /// Undoes `identity_norm`: the u8 value the output pixel came from (0 = padding).
    fn value(out: &[f32], i: usize) -> u8 {
        out[i].round() as u8
    }

    #[test]
    fn evaluation_pads_centred_and_normalises_like_torchvision() {
        let cfg = TransformConfig {
            pad_to: Some(32),
            ..Default::default()
        };
        let norm = Normalization {
            mean: vec![0.2860],
            std: vec![0.3530],
        };
        let t = SampleTransform::new(&cfg, 1, 28, 28, norm.clone());
        let it = item(28, 28, 1);
        let mut out = vec![0.0; t.sample_len()];
        t.apply(&it, None::<&mut StdRng>, &mut out).unwrap();
        assert_eq!((t.height, t.width), (32, 32));
        // Corner is padding (u8 0), pixel (2, 2) is source (0, 0).
        assert_eq!(out[0], (0.0 - 0.2860f32) / 0.3530);
        assert_eq!(
            out[2 * 32 + 2],
            (it.pixels[0] as f32 / 255.0 - 0.2860) / 0.3530
        );
    }

    #[test]
    fn random_crop_is_a_shifted_window_of_the_zero_padded_image() {
        let cfg = TransformConfig {
            crop_padding: 4,
            ..Default::default()
        };
        let t = SampleTransform::new(&cfg, 3, 8, 8, identity_norm(3));
        let it = item(8, 8, 3);
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..20 {
            let mut out = vec![0.0; t.sample_len()];
            t.apply(&it, Some(&mut rng), &mut out).unwrap();
            // Find the shift from the first non-padding pixel and check every pixel against it.
            let mut matched = false;
            'shift: for dy in -4i32..=4 {
                for dx in -4i32..=4 {
                    let ok = (0..3).all(|c| {
                        (0..8).all(|y| {
                            (0..8).all(|x| {
                                let (sy, sx) = (y as i32 + dy, x as i32 + dx);
                                let expect = if (0..8).contains(&sy) && (0..8).contains(&sx) {
                                    it.pixels[((sy * 8 + sx) * 3) as usize + c]
                                } else {
                                    0
                                };
                                value(&out, c * 64 + y * 8 + x) == expect
                            })
                        })
                    });
                    if ok {
                        matched = true;
                        break 'shift;
                    }
                }
            }
            assert!(matched, "output is not a shifted crop");
        }
    }

    #[test]
    fn flip_mirrors_columns_and_happens_about_half_the_time() {
        let cfg = TransformConfig {
            hflip: true,
            ..Default::default()
        };
        let t = SampleTransform::new(&cfg, 1, 4, 5, identity_norm(1));
        let it = item(4, 5, 1);
        let mut rng = StdRng::seed_from_u64(1);
        let mut flips = 0;
        for _ in 0..1000 {
            let mut out = vec![0.0; t.sample_len()];
            t.apply(&it, Some(&mut rng), &mut out).unwrap();
            let flipped = value(&out, 0) == it.pixels[4];
            if flipped {
                flips += 1;
                assert!((0..4).all(|y| (0..5).all(|x| value(&out, y * 5 + x) == it.pixels[y * 5 + 4 - x])));
            } else {
                assert!((0..20).all(|i| value(&out, i) == it.pixels[i]));
            }
        }
        // Binomial(1000, 0.5): 4.5 sigma is +-71.
        assert!((429..=571).contains(&flips), "{flips} flips in 1000");
    }

    #[test]
    fn random_resized_crop_boxes_follow_torchvision_and_the_full_box_is_the_image() {
        let r = RandomResizedCrop::default();
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..500 {
            let (top, left, h, w) = r.sample(32, 32, &mut rng);
            assert!(h >= 1 && w >= 1 && top + h <= 32 && left + w <= 32);
            let area = (h * w) as f64 / 1024.0;
            // Rounding the sides moves the area a little past the drawn range.
            assert!((0.05..=1.0).contains(&area), "{area}");
            let aspect = w as f64 / h as f64;
            assert!((0.6..=1.6).contains(&aspect), "{aspect}");
        }
        // A box of the whole image resizes to the image itself (up to float rounding).
        let cfg = TransformConfig {
            random_resized_crop: Some(RandomResizedCrop {
                scale: [1.0, 1.0],
                ratio: [1.0, 1.0],
            }),
            ..Default::default()
        };
        let t = SampleTransform::new(&cfg, 3, 8, 8, identity_norm(3));
        let it = item(8, 8, 3);
        let mut out = vec![0.0; t.sample_len()];
        t.apply(&it, Some(&mut rng), &mut out).unwrap();
        for c in 0..3 {
            for i in 0..64 {
                assert_eq!(value(&out, c * 64 + i), it.pixels[i * 3 + c]);
            }
        }
        // A quarter box (4x4 of 8x8) upsampled 2x: each output pixel interpolates between the
        // box's pixels, so every value lies within the box's range.
        let quarter = TransformConfig {
            random_resized_crop: Some(RandomResizedCrop {
                scale: [0.25, 0.25],
                ratio: [1.0, 1.0],
            }),
            ..Default::default()
        };
        let t = SampleTransform::new(&quarter, 1, 8, 8, identity_norm(1));
        let it = item(8, 8, 1);
        let mut out = vec![0.0; t.sample_len()];
        t.apply(&it, Some(&mut rng), &mut out).unwrap();
        let lo = *it.pixels.iter().min().unwrap() as f32;
        let hi = *it.pixels.iter().max().unwrap() as f32;
        assert!(out.iter().all(|&v| v >= lo - 1e-3 && v <= hi + 1e-3));
        // Evaluation does not crop.
        t.apply(&it, None::<&mut StdRng>, &mut out).unwrap();
        assert!((0..64).all(|i| value(&out, i) == it.pixels[i]));
        assert!(
            RandomResizedCrop {
                scale: [0.5, 0.2],
                ratio: [1.0, 1.0]
            }
            .validate()
            .is_err()
        );
        assert!(
            RandomResizedCrop {
                scale: [0.1, 1.0],
                ratio: [0.0, 1.0]
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn size_cuts_samples_of_one_size_from_images_of_any_size() {
        let cfg = TransformConfig {
            size: Some(16),
            test_resize: Some(20),
            random_resized_crop: Some(RandomResizedCrop::default()),
            ..Default::default()
        };
        let t = SampleTransform::new(&cfg, 3, 999, 999, identity_norm(3));
        assert_eq!((t.height, t.width), (16, 16));
        let mut rng = StdRng::seed_from_u64(5);
        let mut out = vec![0.0; t.sample_len()];
        for (h, w) in [(40, 52), (61, 37), (16, 16), (9, 200)] {
            let it = item(h, w, 3);
            // Testing: resize the shorter side to 20, centre-crop 16, nothing random.
            t.apply(&it, None::<&mut StdRng>, &mut out).unwrap();
            let want = resize::resize_centre_crop(&it, 20, 16);
            for c in 0..3 {
                for i in 0..256 {
                    assert_eq!(value(&out, c * 256 + i), want.pixels[i * 3 + c], "{h}x{w}");
                }
            }
            // Training: some box of the image, resized to 16x16; boxes differ between draws,
            // except for an image too elongated for any box of aspect 3/4..4/3 (then
            // torchvision's fallback, the centred box, every time).
            t.apply(&it, Some(&mut rng), &mut out).unwrap();
            let first = out.clone();
            t.apply(&it, Some(&mut rng), &mut out).unwrap();
            if w / h > 20 {
                assert_eq!(first, out, "{h}x{w}");
            } else {
                assert_ne!(first, out, "{h}x{w}");
            }
        }
        // Without random_resized_crop, training uses the test geometry.
        let plain = SampleTransform::new(
            &TransformConfig {
                random_resized_crop: None,
                ..cfg.clone()
            },
            3,
            1,
            1,
            identity_norm(3),
        );
        let it = item(30, 45, 3);
        let mut test = vec![0.0; plain.sample_len()];
        plain.apply(&it, None::<&mut StdRng>, &mut test).unwrap();
        plain.apply(&it, Some(&mut rng), &mut out).unwrap();
        assert_eq!(test, out);
        // A whole-image box of an image already 16x16 is the image itself.
        let whole = SampleTransform::new(
            &TransformConfig {
                random_resized_crop: Some(RandomResizedCrop {
                    scale: [1.0, 1.0],
                    ratio: [1.0, 1.0],
                }),
                ..cfg
            },
            3,
            1,
            1,
            identity_norm(3),
        );
        let it = item(16, 16, 3);
        whole.apply(&it, Some(&mut rng), &mut out).unwrap();
        assert!((0..256).all(|i| value(&out, i) == it.pixels[i * 3]));
        assert!(
            whole
                .apply(&item(0, 5, 3), None::<&mut StdRng>, &mut out)
                .is_err()
        );
        assert!(
            whole
                .apply(&item(8, 8, 1), None::<&mut StdRng>, &mut out)
                .is_err()
        );
    }

    #[test]
    fn neutral_colour_operations_keep_the_image_and_lighting_shifts_each_channel() {
        let norm = Normalization {
            mean: vec![0.49, 0.48, 0.45],
            std: vec![0.25, 0.24, 0.26],
        };
        let it = item(6, 6, 3);
        let plain = SampleTransform::new(&TransformConfig::default(), 3, 6, 6, norm.clone());
        let mut want = vec![0.0; plain.sample_len()];
        plain
            .apply(&it, Some(&mut StdRng::seed_from_u64(1)), &mut want)
            .unwrap();
        let neutral = TransformConfig {
            color_jitter: Some(ColorJitter {
                brightness: 0.0,
                contrast: 0.0,
                saturation: 0.0,
            }),
            lighting: Some(0.0),
            ..Default::default()
        };
        let t = SampleTransform::new(&neutral, 3, 6, 6, norm.clone());
        let mut got = vec![0.0; t.sample_len()];
        t.apply(&it, Some(&mut StdRng::seed_from_u64(1)), &mut got)
            .unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} {b}");
        }
        // Lighting alone: one constant offset per channel, in [0, 1] units over the std.
        let lit = TransformConfig {
            lighting: Some(0.1),
            ..Default::default()
        };
        let t = SampleTransform::new(&lit, 3, 6, 6, norm.clone());
        t.apply(&it, Some(&mut StdRng::seed_from_u64(1)), &mut got)
            .unwrap();
        for ch in 0..3 {
            let shift: Vec<f32> = (0..36)
                .map(|i| (got[ch * 36 + i] - want[ch * 36 + i]) * norm.std[ch] as f32)
                .collect();
            assert!(
                shift.iter().all(|d| (d - shift[0]).abs() < 1e-5),
                "{shift:?}"
            );
            assert!(shift[0].abs() < 0.2);
        }
        // Evaluation applies none of it.
        t.apply(&it, None::<&mut StdRng>, &mut got).unwrap();
        let mut eval = vec![0.0; plain.sample_len()];
        plain.apply(&it, None::<&mut StdRng>, &mut eval).unwrap();
        assert_eq!(got, eval);
    }

    #[test]
    fn wrong_size_or_channels_is_an_error_not_a_panic() {
        let t = SampleTransform::new(&TransformConfig::default(), 3, 8, 8, identity_norm(3));
        let mut out = vec![0.0; t.sample_len()];
        assert!(
            t.apply(&item(8, 9, 3), None::<&mut StdRng>, &mut out)
                .is_err()
        );
        assert!(
            t.apply(&item(8, 8, 1), None::<&mut StdRng>, &mut out)
                .is_err()
        );
    }
}
