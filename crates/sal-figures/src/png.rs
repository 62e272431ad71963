//! Writing pictures to files: PNG (smallest or fast) and JPEG.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbImage};

use crate::FigureError;

/// How a picture is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// PNG at the highest compression level, adaptive filtering: the smallest lossless file
    /// (pictures with text and flat colours, kept in the docs or a run directory).
    PngSmallest,
    /// PNG with the image crate's default settings (fast compression, adaptive filtering).
    PngFast,
    /// JPEG at `quality` (1-100): grids of smooth colour maps are about a third of their PNG
    /// size at 80.
    Jpeg { quality: u8 },
}

/// Writes `img` to `path` (created or truncated) as `encoding` says, whatever the extension.
pub fn write(img: &RgbImage, path: &Path, encoding: Encoding) -> Result<(), FigureError> {
    let file = File::create(path).map_err(|source| FigureError::Create {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = BufWriter::new(file);
    let (w, h) = img.dimensions();
    let encoded =
        match encoding {
            Encoding::PngSmallest => {
                PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive)
                    .write_image(img.as_raw(), w, h, ExtendedColorType::Rgb8)
            }
            Encoding::PngFast => {
                PngEncoder::new(&mut out).write_image(img.as_raw(), w, h, ExtendedColorType::Rgb8)
            }
            Encoding::Jpeg { quality } => JpegEncoder::new_with_quality(&mut out, quality)
                .write_image(img.as_raw(), w, h, ExtendedColorType::Rgb8),
        };
    let encode_error = |source| FigureError::Encode {
        path: path.to_path_buf(),
        source,
    };
    encoded.map_err(encode_error)?;
    out.flush()
        .map_err(|e| encode_error(image::ImageError::IoError(e)))
}

/// [`write()`] with [`Encoding::PngSmallest`].
pub fn write_png(img: &RgbImage, path: &Path) -> Result<(), FigureError> {
    write(img, path, Encoding::PngSmallest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture() -> RgbImage {
        RgbImage::from_fn(20, 10, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 7]))
    }

    #[test]
    fn pngs_read_back_exactly_and_jpegs_closely() {
        let dir = tempfile::tempdir().unwrap();
        let img = picture();
        for encoding in [Encoding::PngSmallest, Encoding::PngFast] {
            let path = dir.path().join("a.png");
            write(&img, &path, encoding).unwrap();
            assert_eq!(image::open(&path).unwrap().to_rgb8(), img, "{encoding:?}");
        }
        let path = dir.path().join("a.jpg");
        write(&img, &path, Encoding::Jpeg { quality: 90 }).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), img.dimensions());
        let worst = back
            .as_raw()
            .iter()
            .zip(img.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst < 40, "{worst}");
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("a.png");
        let e = write_png(&picture(), &path).unwrap_err();
        assert!(matches!(e, FigureError::Create { .. }));
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
