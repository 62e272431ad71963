//! Pure drawing helpers for pictures of a mixed batch: outline a region or tint a mask on an
//! RGB image buffer (HWC, u8), so a figure can show "target | source | mixed" with the pasted
//! region marked, like the papers' figures. No image crate needed: callers encode the buffer.

use crate::boxes::PixelBox;
use crate::record::SampleRegion;

/// An RGB image, row-major HWC, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb {
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}

impl Rgb {
    /// Converts a normalised CHW float image (1 or 3 channels) back to displayable RGB:
    /// `clamp(round((x * std + mean) * 255))` per channel; gray is replicated.
    pub fn from_normalised_chw(
        values: &[f32],
        channels: usize,
        height: usize,
        width: usize,
        mean: &[f64],
        std: &[f64],
    ) -> Self {
        let plane = height * width;
        let mut data = vec![0u8; plane * 3];
        for p in 0..plane {
            for out in 0..3 {
                let ch = if channels == 1 { 0 } else { out };
                let (m, s) = (
                    mean.get(ch).copied().unwrap_or(0.0),
                    std.get(ch).copied().unwrap_or(1.0),
                );
                let v = (values[ch * plane + p] as f64 * s + m) * 255.0;
                data[p * 3 + out] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
        Self {
            height,
            width,
            data,
        }
    }

    fn set(&mut self, y: usize, x: usize, colour: [u8; 3]) {
        let i = (y * self.width + x) * 3;
        self.data[i..i + 3].copy_from_slice(&colour);
    }

    /// Draws the 1-pixel outline of `b` (its outermost pixels). Empty boxes draw nothing.
    pub fn outline(&mut self, b: PixelBox, colour: [u8; 3]) {
        if b.is_empty() {
            return;
        }
        let (r2, c2) = (b.r2.min(self.height) - 1, b.c2.min(self.width) - 1);
        for x in b.c1..=c2 {
            self.set(b.r1, x, colour);
            self.set(r2, x, colour);
        }
        for y in b.r1..=r2 {
            self.set(y, b.c1, colour);
            self.set(y, c2, colour);
        }
    }

    /// Blends `colour` with weight `alpha` into every pixel where `covered(y, x)`.
    pub fn tint(&mut self, covered: impl Fn(usize, usize) -> bool, colour: [u8; 3], alpha: f32) {
        for y in 0..self.height {
            for x in 0..self.width {
                if covered(y, x) {
                    let i = (y * self.width + x) * 3;
                    for (k, &c) in colour.iter().enumerate() {
                        let v = self.data[i + k] as f32 * (1.0 - alpha) + c as f32 * alpha;
                        self.data[i + k] = v.round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }

    /// Marks a sample's region on its mixed image: boxes are outlined, grid masks tinted.
    pub fn mark(&mut self, region: &SampleRegion, colour: [u8; 3]) {
        match region {
            SampleRegion::None => {}
            SampleRegion::Paste(p) => self.outline(p.target, colour),
            SampleRegion::Resized(b) | SampleRegion::Hole(b) => self.outline(*b, colour),
            SampleRegion::Grid { .. } => {
                let (h, w) = (self.height, self.width);
                self.tint(|y, x| region.covers(y, x, h, w), colour, 0.35);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlines_touch_only_the_border_pixels() {
        let mut img = Rgb {
            height: 5,
            width: 6,
            data: vec![0; 90],
        };
        img.outline(PixelBox::new(1, 1, 4, 5), [255, 0, 0]);
        let red: Vec<(usize, usize)> = (0..5)
            .flat_map(|y| (0..6).map(move |x| (y, x)))
            .filter(|&(y, x)| img.data[(y * 6 + x) * 3] == 255)
            .collect();
        assert_eq!(red.len(), 10); // 3x4 box: 12 pixels, 2 inside
        assert!(!red.contains(&(2, 2)) && red.contains(&(1, 1)) && red.contains(&(3, 4)));
        assert!(!red.contains(&(0, 0)) && !red.contains(&(4, 5)));
    }

    #[test]
    fn de_normalising_gray_replicates_the_channel() {
        let img = Rgb::from_normalised_chw(&[0.0, 1.0], 1, 1, 2, &[0.5], &[0.25]);
        assert_eq!(img.data, vec![128, 128, 128, 191, 191, 191]);
    }
}
