//! Pixel primitives on [`RgbImage`]: a normalised image back to pixels, a filled canvas,
//! integer nearest-neighbour enlargement, the outline of any pixel set, pasting one image into
//! another.

use image::{Rgb, RgbImage};
use sal_saliency::Normalization;

/// One normalised image (`[C, H, W]` values, C = 1 or 3) as the pixels it was made from.
pub fn denormalised(
    values: &[f32],
    [channels, height, width]: [usize; 3],
    normalization: &Normalization,
) -> RgbImage {
    let plane = height * width;
    let u8s = normalization.to_u8_planar(values, channels, plane);
    RgbImage::from_fn(width as u32, height as u32, |x, y| {
        let p = y as usize * width + x as usize;
        Rgb(std::array::from_fn(|c| {
            u8s[if channels == 1 { p } else { c * plane + p }]
        }))
    })
}

/// A `height x width` image filled with `colour`.
pub fn filled(height: usize, width: usize, colour: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(width as u32, height as u32, Rgb(colour))
}

/// Nearest-neighbour enlargement by an integer factor (each pixel becomes a `factor x factor`
/// square), so tiny images stay sharp and readable.
pub fn upscale(img: &RgbImage, factor: usize) -> RgbImage {
    let f = factor as u32;
    RgbImage::from_fn(img.width() * f, img.height() * f, |x, y| {
        *img.get_pixel(x / f, y / f)
    })
}

/// Colours the inner border, `thickness` pixels wide, of the pixel set `covered(y, x)`: every
/// covered pixel within `thickness` steps (up, down, left, right) of an uncovered pixel or of
/// the image edge. Works for boxes and for any mask (a grid of cells outlines its outer
/// boundary).
pub fn outline_set(
    img: &mut RgbImage,
    covered: impl Fn(usize, usize) -> bool,
    colour: [u8; 3],
    thickness: usize,
) {
    let (h, w) = (img.height() as usize, img.width() as usize);
    let inside = |y: isize, x: isize| {
        y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w && covered(y as usize, x as usize)
    };
    let mut border = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if !covered(y, x) {
                continue;
            }
            let (yi, xi) = (y as isize, x as isize);
            let on_border = (1..=thickness as isize).any(|d| {
                !inside(yi - d, xi)
                    || !inside(yi + d, xi)
                    || !inside(yi, xi - d)
                    || !inside(yi, xi + d)
            });
            if on_border {
                border.push((y, x));
            }
        }
    }
    for (y, x) in border {
        img.put_pixel(x as u32, y as u32, Rgb(colour));
    }
}

/// Copies `tile` into `canvas` with its top-left corner at `(top, left)`, clipped to the canvas.
pub fn paste(canvas: &mut RgbImage, tile: &RgbImage, top: usize, left: usize) {
    image::imageops::replace(canvas, tile, left as i64, top as i64);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `#` where the red channel is 255.
    pub(crate) fn marked(img: &RgbImage) -> Vec<String> {
        (0..img.height())
            .map(|y| {
                (0..img.width())
                    .map(|x| {
                        if img.get_pixel(x, y).0[0] == 255 {
                            '#'
                        } else {
                            '.'
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn upscaling_turns_pixels_into_squares() {
        let img = RgbImage::from_raw(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap();
        let big = upscale(&img, 2);
        assert_eq!(big.dimensions(), (4, 2));
        assert_eq!(
            big.into_raw(),
            [[1, 2, 3], [1, 2, 3], [4, 5, 6], [4, 5, 6]]
                .concat()
                .repeat(2)
        );
    }

    #[test]
    fn outlines_follow_the_inner_border_of_any_pixel_set() {
        let mut img = filled(6, 7, [0, 0, 0]);
        // A 3-wide block (rows 1..5, columns 1..4) plus row 4 out to the right edge.
        let covered =
            |y: usize, x: usize| (1..5).contains(&y) && (1..4).contains(&x) || y == 4 && x >= 1;
        outline_set(&mut img, covered, [255, 0, 0], 1);
        assert_eq!(
            marked(&img),
            vec![
                ".......", ".###...", ".#.#...", ".#.#...", ".######", ".......",
            ]
        );
        let mut thick = filled(6, 6, [0, 0, 0]);
        outline_set(&mut thick, |y, x| y < 6 && x < 6, [255, 0, 0], 2);
        assert_eq!(marked(&thick)[2], "##..##");
        assert_eq!(marked(&thick)[1], "######");
    }

    #[test]
    fn pasting_clips_at_the_canvas_border() {
        let mut canvas = filled(3, 4, [0, 0, 0]);
        paste(&mut canvas, &filled(2, 2, [255, 0, 0]), 2, 3);
        assert_eq!(marked(&canvas), vec!["....", "....", "...#"]);
    }
}
