//! The plain tile grid of the saliency figures: tiles in rows, no text, separated by gaps of a
//! light gray so that white tiles (an all-foreground mask) stay visible.

use image::{Rgb, RgbImage};

/// The colour between tiles.
pub const BACKGROUND: [u8; 3] = [200, 200, 200];

/// Tiles in rows, each row as tall as its tallest tile, with `gap` pixels between tiles and
/// between rows. Columns are `tile_width` apart (plus the gap); a wider tile is clipped by the
/// next one. Missing tiles at the end of a short row leave the background.
pub fn tile_grid(rows: &[Vec<RgbImage>], tile_width: u32, gap: u32) -> RgbImage {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let heights: Vec<u32> = rows
        .iter()
        .map(|r| r.iter().map(RgbImage::height).max().unwrap_or(0))
        .collect();
    let total_h = heights.iter().sum::<u32>() + gap * (rows.len() as u32).saturating_sub(1);
    let width = (cols * (tile_width + gap)).saturating_sub(gap);
    let mut out = RgbImage::from_pixel(width, total_h, Rgb(BACKGROUND));
    let mut y = 0;
    for (row, h) in rows.iter().zip(&heights) {
        for (c, tile) in row.iter().enumerate() {
            let x = c as u32 * (tile_width + gap);
            image::imageops::replace(&mut out, tile, x as i64, y as i64);
        }
        y += h + gap;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_laid_out_in_rows_with_gaps() {
        let red = RgbImage::from_pixel(2, 2, Rgb([255, 0, 0]));
        let tall = RgbImage::from_pixel(2, 3, Rgb([0, 0, 255]));
        let img = tile_grid(&[vec![red.clone(), tall], vec![red]], 2, 1);
        assert_eq!(img.dimensions(), (5, 3 + 1 + 2));
        assert_eq!(img.get_pixel(0, 0).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(2, 0).0, BACKGROUND);
        assert_eq!(img.get_pixel(3, 2).0, [0, 0, 255]);
        // The first row is as tall as its tallest tile: the short tile leaves background.
        assert_eq!(img.get_pixel(0, 2).0, BACKGROUND);
        assert_eq!(img.get_pixel(1, 4).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(3, 4).0, BACKGROUND);
    }

    #[test]
    fn no_rows_give_an_empty_image() {
        assert_eq!(tile_grid(&[], 4, 2).dimensions(), (0, 0));
    }
}
