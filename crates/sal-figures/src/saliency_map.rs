//! A saliency map as a picture: the [`crate::colormap`] scale from the map's minimum
//! to its maximum, enlarged with nearest neighbours, the peak ringed.

use image::{Rgb, RgbImage};
use sal_saliency::SaliencyMap;

use crate::FigureError;
use crate::colormap::viridis;

/// The ring around a map's peak.
pub const PEAK_INK: Rgb<u8> = Rgb([230, 20, 20]);

/// The map in the colour scale, scaled up with nearest neighbours by the smallest integer
/// factor that makes its longer side at least `min_side` pixels, with a [`PEAK_INK`] ring
/// around `peak` (row, column) if one is given. Non-finite values draw at the bottom of the
/// scale; a constant map is drawn at the top of the scale if positive (e.g. Wang & Dudek's
/// all-ones mask), at the bottom otherwise.
pub fn render(
    map: &SaliencyMap,
    peak: Option<(usize, usize)>,
    min_side: usize,
) -> Result<RgbImage, FigureError> {
    if map.height == 0 || map.width == 0 || map.data.len() != map.height * map.width {
        return Err(FigureError::Shape(format!(
            "a saliency map of {} x {} with {} values",
            map.height,
            map.width,
            map.data.len()
        )));
    }
    let scale = min_side.div_ceil(map.height.max(map.width)).max(1);
    let (lo, hi) = map
        .data
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let level = |v: f32| {
        if hi > lo {
            (v - lo) / (hi - lo)
        } else if v > 0.0 {
            1.0
        } else {
            0.0
        }
    };
    let mut img = RgbImage::from_fn(
        (map.width * scale) as u32,
        (map.height * scale) as u32,
        |x, y| {
            viridis(level(
                map.data[(y as usize / scale) * map.width + x as usize / scale],
            ))
        },
    );
    if let Some(peak) = peak {
        mark_peak(&mut img, peak, scale, PEAK_INK);
    }
    Ok(img)
}

/// A ring of colour `ink` (white outline) centred on pixel `(row, col)` of a map drawn `scale`
/// times larger; its radius is 1/24 of the picture's longer side, at least 4 pixels. Clipped
/// at the border.
pub fn mark_peak(img: &mut RgbImage, (row, col): (usize, usize), scale: usize, ink: Rgb<u8>) {
    let (cx, cy) = (
        (col * scale + scale / 2) as i64,
        (row * scale + scale / 2) as i64,
    );
    let r = (img.width().max(img.height()) as i64 / 24).max(4);
    for y in cy - r - 2..=cy + r + 2 {
        for x in cx - r - 2..=cx + r + 2 {
            if x < 0 || y < 0 || x >= img.width() as i64 || y >= img.height() as i64 {
                continue;
            }
            let d = (((x - cx).pow(2) + (y - cy).pow(2)) as f64).sqrt();
            let px = img.get_pixel_mut(x as u32, y as u32);
            if (d - r as f64).abs() <= 1.0 {
                *px = ink;
            } else if (d - r as f64).abs() <= 2.0 {
                *px = Rgb([255, 255, 255]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(height: usize, width: usize, data: Vec<f32>) -> SaliencyMap {
        SaliencyMap {
            height,
            width,
            data,
        }
    }

    #[test]
    fn maps_are_scaled_to_the_minimum_side_in_the_colour_scale() {
        let m = map(2, 3, vec![0.0, 1.0, 2.0, 3.0, 4.0, f32::NAN]);
        let img = render(&m, None, 7).unwrap();
        // ceil(7 / 3) = 3 times larger.
        assert_eq!(img.dimensions(), (9, 6));
        assert_eq!(*img.get_pixel(0, 0), viridis(0.0));
        assert_eq!(*img.get_pixel(2, 2), viridis(0.0));
        assert_eq!(*img.get_pixel(3, 0), viridis(0.25));
        assert_eq!(*img.get_pixel(3, 5), viridis(1.0));
        assert_eq!(*img.get_pixel(8, 5), viridis(0.0), "NaN at the bottom");
    }

    #[test]
    fn constant_maps_sit_at_one_end_of_the_scale() {
        let ones = render(&map(2, 2, vec![1.0; 4]), None, 2).unwrap();
        assert!(ones.pixels().all(|p| *p == viridis(1.0)));
        let zeros = render(&map(2, 2, vec![0.0; 4]), None, 2).unwrap();
        assert!(zeros.pixels().all(|p| *p == viridis(0.0)));
    }

    #[test]
    fn the_peak_is_ringed_with_a_white_edge() {
        let mut data = vec![0.0; 64];
        data[3 * 8 + 5] = 1.0;
        let img = render(&map(8, 8, data), Some((3, 5)), 96).unwrap();
        assert_eq!(img.dimensions(), (96, 96));
        // Centre of the peak pixel (12 x 12 block) at (66, 42); the ring's radius is 96/24 = 4.
        let (cx, cy) = (5 * 12 + 6, 3 * 12 + 6);
        assert_eq!(*img.get_pixel(cx + 4, cy), PEAK_INK);
        assert_eq!(*img.get_pixel(cx, cy - 4), PEAK_INK);
        assert_eq!(img.get_pixel(cx + 6, cy).0, [255, 255, 255]);
        assert_eq!(
            *img.get_pixel(cx, cy),
            viridis(1.0),
            "the peak itself stays visible"
        );
        // A ring near the border is clipped, not a panic.
        let mut small = RgbImage::new(5, 5);
        mark_peak(&mut small, (0, 0), 1, PEAK_INK);
        assert_eq!(*small.get_pixel(4, 0), PEAK_INK);
    }

    #[test]
    fn empty_or_inconsistent_maps_are_errors() {
        assert!(render(&map(0, 3, vec![]), None, 8).is_err());
        assert!(render(&map(2, 2, vec![0.0; 3]), None, 8).is_err());
    }
}
