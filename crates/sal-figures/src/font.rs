//! A 5x8 bitmap font for the printable ASCII characters, so pictures can carry labels without a
//! font dependency. Each glyph is 5 columns, left to right; bit `r` of a column byte is pixel
//! row `r` (row 0 on top). Capitals and digits use rows 0-6, lower case rows 2-6, and the
//! descenders of g, j, p, q, y reach row 7: the classic 5x7 LCD character set plus descenders.

use image::{Rgb, RgbImage};

/// Glyph width and height in font pixels.
pub const GLYPH_WIDTH: usize = 5;
pub const GLYPH_HEIGHT: usize = 8;
/// Font pixels from the start of one character to the start of the next.
pub const ADVANCE: usize = GLYPH_WIDTH + 1;
/// Font pixels from one text line to the next.
pub const LINE_HEIGHT: usize = GLYPH_HEIGHT + 2;

/// Glyphs of `' '..='~'` (0x20..=0x7E).
const GLYPHS: [[u8; GLYPH_WIDTH]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00], // ' '
    [0x00, 0x00, 0x5F, 0x00, 0x00], // !
    [0x00, 0x07, 0x00, 0x07, 0x00], // "
    [0x14, 0x7F, 0x14, 0x7F, 0x14], // #
    [0x24, 0x2A, 0x7F, 0x2A, 0x12], // $
    [0x23, 0x13, 0x08, 0x64, 0x62], // %
    [0x36, 0x49, 0x55, 0x22, 0x50], // &
    [0x00, 0x05, 0x03, 0x00, 0x00], // '
    [0x00, 0x1C, 0x22, 0x41, 0x00], // (
    [0x00, 0x41, 0x22, 0x1C, 0x00], // )
    [0x08, 0x2A, 0x1C, 0x2A, 0x08], // *
    [0x08, 0x08, 0x3E, 0x08, 0x08], // +
    [0x00, 0x50, 0x30, 0x00, 0x00], // ,
    [0x08, 0x08, 0x08, 0x08, 0x08], // -
    [0x00, 0x60, 0x60, 0x00, 0x00], // .
    [0x20, 0x10, 0x08, 0x04, 0x02], // /
    [0x3E, 0x51, 0x49, 0x45, 0x3E], // 0
    [0x00, 0x42, 0x7F, 0x40, 0x00], // 1
    [0x42, 0x61, 0x51, 0x49, 0x46], // 2
    [0x21, 0x41, 0x45, 0x4B, 0x31], // 3
    [0x18, 0x14, 0x12, 0x7F, 0x10], // 4
    [0x27, 0x45, 0x45, 0x45, 0x39], // 5
    [0x3C, 0x4A, 0x49, 0x49, 0x30], // 6
    [0x01, 0x71, 0x09, 0x05, 0x03], // 7
    [0x36, 0x49, 0x49, 0x49, 0x36], // 8
    [0x06, 0x49, 0x49, 0x29, 0x1E], // 9
    [0x00, 0x36, 0x36, 0x00, 0x00], // :
    [0x00, 0x56, 0x36, 0x00, 0x00], // ;
    [0x08, 0x14, 0x22, 0x41, 0x00], // <
    [0x14, 0x14, 0x14, 0x14, 0x14], // =
    [0x00, 0x41, 0x22, 0x14, 0x08], // >
    [0x02, 0x01, 0x51, 0x09, 0x06], // ?
    [0x32, 0x49, 0x79, 0x41, 0x3E], // @
    [0x7E, 0x11, 0x11, 0x11, 0x7E], // A
    [0x7F, 0x49, 0x49, 0x49, 0x36], // B
    [0x3E, 0x41, 0x41, 0x41, 0x22], // C
    [0x7F, 0x41, 0x41, 0x22, 0x1C], // D
    [0x7F, 0x49, 0x49, 0x49, 0x41], // E
    [0x7F, 0x09, 0x09, 0x09, 0x01], // F
    [0x3E, 0x41, 0x49, 0x49, 0x7A], // G
    [0x7F, 0x08, 0x08, 0x08, 0x7F], // H
    [0x00, 0x41, 0x7F, 0x41, 0x00], // I
    [0x20, 0x40, 0x41, 0x3F, 0x01], // J
    [0x7F, 0x08, 0x14, 0x22, 0x41], // K
    [0x7F, 0x40, 0x40, 0x40, 0x40], // L
    [0x7F, 0x02, 0x0C, 0x02, 0x7F], // M
    [0x7F, 0x04, 0x08, 0x10, 0x7F], // N
    [0x3E, 0x41, 0x41, 0x41, 0x3E], // O
    [0x7F, 0x09, 0x09, 0x09, 0x06], // P
    [0x3E, 0x41, 0x51, 0x21, 0x5E], // Q
    [0x7F, 0x09, 0x19, 0x29, 0x46], // R
    [0x46, 0x49, 0x49, 0x49, 0x31], // S
    [0x01, 0x01, 0x7F, 0x01, 0x01], // T
    [0x3F, 0x40, 0x40, 0x40, 0x3F], // U
    [0x1F, 0x20, 0x40, 0x20, 0x1F], // V
    [0x3F, 0x40, 0x38, 0x40, 0x3F], // W
    [0x63, 0x14, 0x08, 0x14, 0x63], // X
    [0x07, 0x08, 0x70, 0x08, 0x07], // Y
    [0x61, 0x51, 0x49, 0x45, 0x43], // Z
    [0x00, 0x7F, 0x41, 0x41, 0x00], // [
    [0x02, 0x04, 0x08, 0x10, 0x20], // backslash
    [0x00, 0x41, 0x41, 0x7F, 0x00], // ]
    [0x04, 0x02, 0x01, 0x02, 0x04], // ^
    [0x40, 0x40, 0x40, 0x40, 0x40], // _
    [0x00, 0x01, 0x02, 0x04, 0x00], // `
    [0x20, 0x54, 0x54, 0x54, 0x78], // a
    [0x7F, 0x48, 0x44, 0x44, 0x38], // b
    [0x38, 0x44, 0x44, 0x44, 0x20], // c
    [0x38, 0x44, 0x44, 0x48, 0x7F], // d
    [0x38, 0x54, 0x54, 0x54, 0x18], // e
    [0x08, 0x7E, 0x09, 0x01, 0x02], // f
    [0x18, 0xA4, 0xA4, 0xA4, 0x7C], // g
    [0x7F, 0x08, 0x04, 0x04, 0x78], // h
    [0x00, 0x44, 0x7D, 0x40, 0x00], // i
    [0x40, 0x80, 0x84, 0x7D, 0x00], // j
    [0x7F, 0x10, 0x28, 0x44, 0x00], // k
    [0x00, 0x41, 0x7F, 0x40, 0x00], // l
    [0x7C, 0x04, 0x18, 0x04, 0x78], // m
    [0x7C, 0x08, 0x04, 0x04, 0x78], // n
    [0x38, 0x44, 0x44, 0x44, 0x38], // o
    [0xFC, 0x24, 0x24, 0x24, 0x18], // p
    [0x18, 0x24, 0x24, 0x24, 0xFC], // q
    [0x7C, 0x08, 0x04, 0x04, 0x08], // r
    [0x48, 0x54, 0x54, 0x54, 0x20], // s
    [0x04, 0x3F, 0x44, 0x40, 0x20], // t
    [0x3C, 0x40, 0x40, 0x20, 0x7C], // u
    [0x1C, 0x20, 0x40, 0x20, 0x1C], // v
    [0x3C, 0x40, 0x30, 0x40, 0x3C], // w
    [0x44, 0x28, 0x10, 0x28, 0x44], // x
    [0x1C, 0xA0, 0xA0, 0xA0, 0x7C], // y
    [0x44, 0x64, 0x54, 0x4C, 0x44], // z
    [0x00, 0x08, 0x36, 0x41, 0x00], // {
    [0x00, 0x00, 0x7F, 0x00, 0x00], // |
    [0x00, 0x41, 0x36, 0x08, 0x00], // }
    [0x08, 0x04, 0x08, 0x10, 0x08], // ~
];

/// The glyph of `c`; characters outside printable ASCII draw as `?`.
fn glyph(c: char) -> &'static [u8; GLYPH_WIDTH] {
    let index = match c {
        ' '..='~' => c as usize - ' ' as usize,
        _ => '?' as usize - ' ' as usize,
    };
    &GLYPHS[index]
}

/// The lit font pixels of one line of `text`, as `(x, y)` from its top-left corner, character
/// after character, each glyph column by column.
pub fn pixels(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    text.chars().enumerate().flat_map(|(k, c)| {
        glyph(c).iter().enumerate().flat_map(move |(col, &bits)| {
            (0..GLYPH_HEIGHT)
                .filter(move |row| bits >> row & 1 == 1)
                .map(move |row| (k * ADVANCE + col, row))
        })
    })
}

/// Width in image pixels of `chars` characters at `scale` (from the first lit column to the
/// last, without the space after the last glyph).
pub fn text_width(chars: usize, scale: usize) -> usize {
    (chars * ADVANCE).saturating_sub(ADVANCE - GLYPH_WIDTH) * scale
}

/// Draws one line of `text` with its top-left corner at `(top, left)`, each font pixel a
/// `scale x scale` square. Pixels outside the image are skipped.
pub fn draw_text(
    img: &mut RgbImage,
    top: usize,
    left: usize,
    text: &str,
    scale: usize,
    colour: [u8; 3],
) {
    let (width, height) = (img.width() as usize, img.height() as usize);
    for (fx, fy) in pixels(text) {
        for dy in 0..scale {
            for dx in 0..scale {
                let (y, x) = (top + fy * scale + dy, left + fx * scale + dx);
                if y < height && x < width {
                    img.put_pixel(x as u32, y as u32, Rgb(colour));
                }
            }
        }
    }
}

/// Splits `text` into lines of at most `max_chars` characters at spaces (a longer word gets a
/// line of its own).
pub fn wrap(text: &str, max_chars: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max_chars {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(height: usize, width: usize) -> RgbImage {
        RgbImage::new(width as u32, height as u32)
    }

    /// The lit pixels of a drawing as rows of `#` and `.`.
    fn picture(img: &RgbImage) -> Vec<String> {
        (0..img.height())
            .map(|y| {
                (0..img.width())
                    .map(|x| {
                        if img.get_pixel(x, y).0[0] > 0 {
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
    fn glyphs_draw_row_by_row_from_the_top() {
        let mut img = blank(8, 11);
        draw_text(&mut img, 0, 0, "T1", 1, [255, 255, 255]);
        assert_eq!(
            picture(&img),
            vec![
                "#####...#..",
                "..#....##..",
                "..#.....#..",
                "..#.....#..",
                "..#.....#..",
                "..#.....#..",
                "..#....###.",
                "...........",
            ]
        );
    }

    #[test]
    fn scaling_repeats_font_pixels_and_clips_at_the_border() {
        let mut img = blank(10, 6);
        draw_text(&mut img, 2, 1, "|", 2, [9, 9, 9]);
        let lit: Vec<(u32, u32)> = (0..10)
            .flat_map(|y| (0..6).map(move |x| (y, x)))
            .filter(|&(y, x)| img.get_pixel(x, y).0[0] == 9)
            .collect();
        // '|' is column 2, rows 0..7: x 5..7 (clipped to 5), y 2..16 (clipped to 2..10).
        assert_eq!(lit, (2..10).map(|y| (y, 5)).collect::<Vec<_>>());
    }

    #[test]
    fn every_printable_character_has_a_glyph_and_others_show_a_question_mark() {
        for c in ' '..='~' {
            assert_eq!(glyph(c), &GLYPHS[c as usize - 32]);
            assert!(c == ' ' || glyph(c).iter().any(|&col| col != 0), "{c:?}");
        }
        assert_eq!(glyph('é'), glyph('?'));
    }

    #[test]
    fn text_width_spans_the_lit_columns() {
        assert_eq!(text_width(0, 3), 0);
        assert_eq!(text_width(1, 2), 10);
        assert_eq!(text_width(3, 1), 17);
        let right = pixels("T1").map(|(x, _)| x).max().unwrap();
        assert!(right < text_width(2, 1));
    }

    #[test]
    fn wrapping_breaks_at_spaces() {
        assert_eq!(
            wrap("saliency of an untrained model", 12),
            vec!["saliency of", "an untrained", "model"]
        );
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            vec!["averyveryverylongword", "x"]
        );
        assert!(wrap("   ", 5).is_empty());
    }
}
