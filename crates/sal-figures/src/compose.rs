//! The captioned grid figure: a caption and a colour legend on top, a header per image column
//! and for a text column, then rows of enlarged image tiles with lines of text beside them.
//! Pure pixel work; [`crate::png`] encodes the result.

use image::RgbImage;

use crate::draw::{filled, outline_set, paste};
use crate::font::{self, LINE_HEIGHT};

pub const WHITE: [u8; 3] = [255, 255, 255];
pub const BLACK: [u8; 3] = [0, 0, 0];
const GRAY: [u8; 3] = [150, 150, 150];
/// A row's missing tile (e.g. no source image).
pub const EMPTY_TILE: [u8; 3] = [225, 225, 225];

/// Font scale of all text.
pub const TEXT_SCALE: usize = 2;
/// Space between tiles and around the figure, in image pixels.
pub const GAP: usize = 8;
/// Space between the last tile and the text column.
pub const TEXT_GAP: usize = 16;
/// Width of the text column, in characters.
pub const LABEL_CHARS: usize = 17;
/// Text lines shown beside a row at most.
pub const LABEL_LINES: usize = 4;

/// One row of the grid: an image (or nothing) per column and lines of text beside them.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub tiles: Vec<Option<RgbImage>>,
    pub text: Vec<String>,
}

/// A grid figure: a caption and a colour legend on top, a header per image column and for the
/// text column, rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Lines of text, wrapped to the figure's width.
    pub caption: Vec<String>,
    /// What each outline colour marks: a swatch of the colour, then the text.
    pub legend: Vec<([u8; 3], String)>,
    pub headers: Vec<String>,
    pub text_header: String,
    pub rows: Vec<Row>,
    /// Size of every tile slot in pixels (larger tiles are clipped, smaller ones leave white).
    pub tile_height: usize,
    pub tile_width: usize,
}

impl Figure {
    /// Lays the figure out on a white canvas.
    pub fn render(&self) -> RgbImage {
        let line = LINE_HEIGHT * TEXT_SCALE;
        let char_width = font::ADVANCE * TEXT_SCALE;
        let columns = self.headers.len();
        let text_width = LABEL_CHARS * char_width;
        let text_left = (GAP + columns * (self.tile_width + GAP)).saturating_sub(GAP) + TEXT_GAP;
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
        let empty = filled(self.tile_height, self.tile_width, EMPTY_TILE);
        for (r, row) in self.rows.iter().enumerate() {
            let top = rows_top + r * row_height;
            for (c, tile) in row.tiles.iter().enumerate().take(columns) {
                let left = GAP + c * (self.tile_width + GAP);
                paste(&mut canvas, tile.as_ref().unwrap_or(&empty), top, left);
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

#[cfg(test)]
mod tests {
    use super::*;

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
            img.width() as usize,
            text_left + LABEL_CHARS * font::ADVANCE * TEXT_SCALE + GAP
        );
        assert_eq!(img.height() as usize, top + LABEL_LINES * line + GAP);
        let px = |y: usize, x: usize| img.get_pixel(x as u32, y as u32).0;
        assert_eq!(px(top, GAP), [255, 0, 0]);
        assert_eq!(px(top + 3, GAP + 3), [255, 0, 0]);
        assert_eq!(px(top, GAP + 4 + GAP), EMPTY_TILE);
        assert_eq!(px(top - 1, GAP), WHITE);
        // The legend's swatch: an outlined square in its colour, left of its text.
        assert_eq!(px(GAP + line, GAP), [255, 0, 0]);
        assert_eq!(px(GAP + line + 7, GAP + 7), WHITE);
        // The row's text starts at the text column.
        let row_text = (top..top + line)
            .flat_map(|y| (text_left..text_left + 12).map(move |x| (y, x)))
            .any(|(y, x)| px(y, x) == BLACK);
        assert!(row_text);
    }

    #[test]
    fn a_figure_without_rows_or_caption_is_just_its_headers() {
        let figure = Figure {
            caption: Vec::new(),
            legend: Vec::new(),
            headers: Vec::new(),
            text_header: "label".into(),
            rows: Vec::new(),
            tile_height: 0,
            tile_width: 0,
        };
        let img = figure.render();
        assert_eq!(img.height() as usize, GAP + LINE_HEIGHT * TEXT_SCALE);
        assert!(img.width() > 0);
    }
}
