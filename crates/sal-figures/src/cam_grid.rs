//! Class activation maps as a picture (Zhou et al. 2016; SaliencyMix Figure 5): per image, the
//! image, its CAM laid over it, the true and the predicted class.

use image::{Rgb, RgbImage};

use crate::FigureError;
use crate::colormap::viridis;
use crate::compose::{Figure, Row};
use crate::draw::upscale;

/// One image of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct CamSample {
    /// The image as its pixels.
    pub image: RgbImage,
    /// Its class activation map at the image's resolution, row-major, raw (any scale).
    pub cam: Vec<f32>,
    pub truth: String,
    pub predicted: String,
    /// Softmax probability of the predicted class.
    pub confidence: f32,
}

/// Half the image, half the map in the colour scale (its minimum to its maximum).
pub fn overlay(image: &RgbImage, cam: &[f32]) -> Result<RgbImage, FigureError> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if cam.len() != w * h {
        return Err(FigureError::Shape(format!(
            "a CAM of {} values over a {w} x {h} image",
            cam.len()
        )));
    }
    let (lo, hi) = cam
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let level = |v: f32| if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
    Ok(RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let pixel = image.get_pixel(x, y).0;
        let colour = viridis(level(cam[y as usize * w + x as usize])).0;
        Rgb(std::array::from_fn(|c| {
            ((pixel[c] as u16 + colour[c] as u16) / 2) as u8
        }))
    }))
}

/// The grid: a row per sample (image, CAM over it; true class, prediction and its probability
/// beside), images enlarged by `factor`, `caption` on top.
pub fn cam_grid(
    samples: &[CamSample],
    caption: Vec<String>,
    factor: usize,
) -> Result<RgbImage, FigureError> {
    let first = samples
        .first()
        .ok_or_else(|| FigureError::Shape("a CAM grid of no images".into()))?;
    let (h, w) = (
        first.image.height() as usize * factor,
        first.image.width() as usize * factor,
    );
    let rows = samples
        .iter()
        .map(|s| {
            Ok(Row {
                tiles: vec![
                    Some(upscale(&s.image, factor)),
                    Some(upscale(&overlay(&s.image, &s.cam)?, factor)),
                ],
                text: vec![
                    format!("true {}", s.truth),
                    format!("pred {}", s.predicted),
                    format!("p = {:.2}", s.confidence),
                ],
            })
        })
        .collect::<Result<Vec<_>, FigureError>>()?;
    Ok(Figure {
        caption,
        legend: Vec::new(),
        headers: vec!["image".into(), "CAM, pred.".into()],
        text_header: "class".into(),
        rows,
        tile_height: h,
        tile_width: w,
    }
    .render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_blends_the_image_with_the_scaled_map() {
        let image = RgbImage::from_pixel(2, 1, Rgb([100, 100, 100]));
        let out = overlay(&image, &[-3.0, 5.0]).unwrap();
        let (low, high) = (viridis(0.0).0, viridis(1.0).0);
        for c in 0..3 {
            assert_eq!(out.get_pixel(0, 0).0[c], ((100 + low[c] as u16) / 2) as u8);
            assert_eq!(out.get_pixel(1, 0).0[c], ((100 + high[c] as u16) / 2) as u8);
        }
        assert!(overlay(&image, &[1.0]).is_err());
    }

    #[test]
    fn the_grid_has_a_row_per_image_and_rejects_none() {
        let sample = CamSample {
            image: RgbImage::from_pixel(4, 4, Rgb([0, 0, 0])),
            cam: (0..16).map(|v| v as f32).collect(),
            truth: "cat".into(),
            predicted: "dog".into(),
            confidence: 0.5,
        };
        let one = cam_grid(std::slice::from_ref(&sample), vec![], 4).unwrap();
        let two = cam_grid(&[sample.clone(), sample], vec![], 4).unwrap();
        assert!(two.height() > one.height());
        assert_eq!(two.width(), one.width());
        assert!(cam_grid(&[], vec![], 4).is_err());
    }
}
