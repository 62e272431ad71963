//! Drawing a figure: enlarged image tiles with regions outlined, laid out as a grid with column
//! headers, a text column per row and a caption above. Pure pixel work on
//! [`sal_core::overlay::Rgb`]; the caller encodes the result.

use sal_core::overlay::Rgb;

use super::font::{self, LINE_HEIGHT};

pub const WHITE: [u8; 3] = [255, 255, 255];
pub const BLACK: [u8; 3] = [0, 0, 0];
const GRAY: [u8; 3] = [150, 150, 150];
const EMPTY_TILE: [u8; 3] = [225, 225, 225];

/// Font scale of all text.
const TEXT_SCALE: usize = 2;
/// Space between tiles and around the figure, in image pixels.
const GAP: usize = 8;
/// Space between the last tile and the text column.
const TEXT_GAP: usize = 16;
/// Width of the text column, in characters.
pub const LABEL_CHARS: usize = 17;

/// A blank image filled with `colour`.
pub fn filled(height: usize, width: usize, colour: [u8; 3]) -> Rgb {
    Rgb {
        height,
        width,
        data: colour.repeat(height * width),
    }
}

/// Nearest-neighbour enlargement by an integer factor (each pixel becomes a `factor x factor`
/// square), so tiny images stay sharp and readable.
pub fn upscale(img: &Rgb, factor: usize) -> Rgb {
    let (h, w) = (img.height * factor, img.width * factor);
    let mut data = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            let i = ((y / factor) * img.width + x / factor) * 3;
            data.extend_from_slice(&img.data[i..i + 3]);
        }
    }
    Rgb {
        height: h,
        width: w,
        data,
    }
}

/// Colours the inner border, `thickness` pixels wide, of the pixel set `covered`: every covered
/// pixel within `thickness` steps (up, down, left, right) of an uncovered pixel or of the image
/// edge. Works for boxes and for any mask (a grid of cells outlines its outer boundary).
pub fn outline_set(
    img: &mut Rgb,
    covered: impl Fn(usize, usize) -> bool,
    colour: [u8; 3],
    thickness: usize,
) {
    let (h, w) = (img.height, img.width);
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
        let i = (y * w + x) * 3;
        img.data[i..i + 3].copy_from_slice(&colour);
    }
}

/// Copies `tile` into `canvas` with its top-left corner at `(top, left)` (clipped).
fn paste(canvas: &mut Rgb, tile: &Rgb, top: usize, left: usize) {
    for y in 0..tile.height.min(canvas.height.saturating_sub(top)) {
        let n = tile.width.min(canvas.width.saturating_sub(left));
        let src = y * tile.width * 3;
        let dst = ((top + y) * canvas.width + left) * 3;
        canvas.data[dst..dst + n * 3].copy_from_slice(&tile.data[src..src + n * 3]);
    }
}

/// One row of the grid: an image (or nothing) per column and lines of text beside them.
pub struct Row {
    pub tiles: Vec<Option<Rgb>>,
    pub text: Vec<String>,
}

/// A grid figure: a caption and a colour legend on top, a header per image column and for the
/// text column, rows.
pub struct Figure {
    pub caption: Vec<String>,
    /// What each outline colour marks: a swatch of the colour, then the text.
    pub legend: Vec<([u8; 3], String)>,
    pub headers: Vec<String>,
    pub text_header: String,
    pub rows: Vec<Row>,
    /// Side of every tile in pixels (tiles are square or smaller).
    pub tile_height: usize,
    pub tile_width: usize,
}

impl Figure {
    /// Lays the figure out on a white canvas.
    pub fn render(&self) -> Rgb {
        let line = LINE_HEIGHT * TEXT_SCALE;
        let char_width = font::ADVANCE * TEXT_SCALE;
        let columns = self.headers.len();
        let text_width = LABEL_CHARS * char_width;
        let text_left = GAP + columns * (self.tile_width + GAP) - GAP + TEXT_GAP;
        let width = text_left + text_width + GAP;
        // Caption and legend wrap to the figure's width; a legend line starts after its swatch.
        let chars = (width - 2 * GAP) / char_width;
        let mut caption: Vec<(usize, Option<[u8; 3]>, String)> = Vec::new();
        for text in &self.caption {
            caption.extend(font::wrap(text, chars).into_iter().map(|l| (0, None, l)));
        }
        for (colour, text) in &self.legend {
            for (k, l) in font::wrap(text, chars - 2).into_iter().enumerate() {
                caption.push((2 * char_width, (k == 0).then_some(*colour), l));
            }
        }
        let caption_height = caption.len() * line;
        let header_top = GAP + caption_height + if caption.is_empty() { 0 } else { GAP };
        let rows_top = header_top + line;
        let row_height = self.tile_height.max(LABEL_LINES * line) + GAP;
        let height = rows_top + self.rows.len() * row_height;
        let mut canvas = filled(height, width, WHITE);

        for (k, (indent, swatch, text)) in caption.iter().enumerate() {
            let top = GAP + k * line;
            if let Some(colour) = swatch {
                let side = font::GLYPH_HEIGHT * TEXT_SCALE;
                let mut square = filled(side, side, WHITE);
                outline_set(&mut square, |_, _| true, *colour, 3);
                paste(&mut canvas, &square, top, GAP);
            }
            font::draw_text(&mut canvas, top, GAP + indent, text, TEXT_SCALE, BLACK);
        }
        let headers = self
            .headers
            .iter()
            .chain(std::iter::once(&self.text_header));
        for (c, header) in headers.enumerate() {
            let left = GAP + c * (self.tile_width + GAP);
            font::draw_text(&mut canvas, header_top, left, header, TEXT_SCALE, GRAY);
        }
        for (r, row) in self.rows.iter().enumerate() {
            let top = rows_top + r * row_height;
            for (c, tile) in row.tiles.iter().enumerate().take(columns) {
                let left = GAP + c * (self.tile_width + GAP);
                match tile {
                    Some(tile) => paste(&mut canvas, tile, top, left),
                    None => paste(
                        &mut canvas,
                        &filled(self.tile_height, self.tile_width, EMPTY_TILE),
                        top,
                        left,
                    ),
                }
            }
            for (k, text) in row.text.iter().take(LABEL_LINES).enumerate() {
                font::draw_text(
                    &mut canvas,
                    top + k * line,
                    text_left,
                    text,
                    TEXT_SCALE,
                    BLACK,
                );
            }
        }
        canvas
    }
}

/// Text lines shown beside a row at most.
pub const LABEL_LINES: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upscaling_turns_pixels_into_squares() {
        let img = Rgb {
            height: 1,
            width: 2,
            data: vec![1, 2, 3, 4, 5, 6],
        };
        let big = upscale(&img, 2);
        assert_eq!((big.height, big.width), (2, 4));
        assert_eq!(
            big.data,
            [[1, 2, 3], [1, 2, 3], [4, 5, 6], [4, 5, 6]]
                .concat()
                .repeat(2)
        );
    }

    /// `#` where the red channel is 255.
    fn marked(img: &Rgb) -> Vec<String> {
        (0..img.height)
            .map(|y| {
                (0..img.width)
                    .map(|x| {
                        if img.data[(y * img.width + x) * 3] == 255 {
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
    fn outlines_follow_the_inner_border_of_any_pixel_set() {
        let mut img = filled(6, 7, BLACK);
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
        let mut thick = filled(6, 6, BLACK);
        outline_set(&mut thick, |y, x| y < 6 && x < 6, [255, 0, 0], 2);
        assert_eq!(marked(&thick)[2], "##..##");
        assert_eq!(marked(&thick)[1], "######");
    }

    #[test]
    fn the_grid_places_tiles_below_the_caption_and_headers() {
        let tile = filled(4, 4, [255, 0, 0]);
        let figure = Figure {
            caption: vec!["x".into()],
            legend: vec![([255, 0, 0], "red: y".into())],
            headers: vec!["a".into(), "b".into()],
            text_header: "label".into(),
            rows: vec![Row {
                tiles: vec![Some(tile), None],
                text: vec!["Bag 1.00".into()],
            }],
            tile_height: 4,
            tile_width: 4,
        };
        let img = figure.render();
        let line = LINE_HEIGHT * TEXT_SCALE;
        let top = GAP + 2 * line + GAP + line;
        let text_left = GAP + 2 * (4 + GAP) - GAP + TEXT_GAP;
        assert_eq!(
            img.width,
            text_left + LABEL_CHARS * font::ADVANCE * TEXT_SCALE + GAP
        );
        assert_eq!(img.height, top + LABEL_LINES * line + GAP);
        let px = |y: usize, x: usize| &img.data[(y * img.width + x) * 3..][..3];
        assert_eq!(px(top, GAP), [255, 0, 0]);
        assert_eq!(px(top + 3, GAP + 3), [255, 0, 0]);
        assert_eq!(px(top, GAP + 4 + GAP), EMPTY_TILE);
        assert_eq!(px(top - 1, GAP), WHITE);
        // The legend's swatch: an outlined square in its colour, left of its text.
        assert_eq!(px(GAP + line, GAP), [255, 0, 0]);
        assert_eq!(px(GAP + line + 7, GAP + 7), WHITE);
    }
}
