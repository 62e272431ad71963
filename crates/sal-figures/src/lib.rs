//! Pictures for the command line and the trainer, all on [`image::RgbImage`]: saliency maps,
//! mixed batches ("target | source | mixed | soft label"), training curves, and the layout and
//! pixel work they share. Text is drawn with a built-in bitmap font, so nothing depends on
//! system fonts.
//!
//! | module | what it holds |
//! |---|---|
//! | [`font`] | the 5x8 bitmap font: drawing a line of text, wrapping |
//! | [`draw`] | pixel primitives: filled canvas, integer upscaling, outline of a pixel set, paste |
//! | [`compose`] | the captioned grid figure: caption, colour legend, headers, tiles, text column |
//! | [`grid`] | the plain tile grid of the saliency figures |
//! | [`colormap`] | the viridis-like colour scale |
//! | [`saliency_map`] | a saliency map as a picture, its peak ringed |
//! | [`mixed_batch`] | the picture of a batch a mixing method made, regions outlined |
//! | [`cam_grid`] | class activation maps over their images, true and predicted class |
//! | [`chart`] | training curves (loss, top-1 per epoch), curves of several runs, bars with error bars, drawn with plotters |
//! | [`png`] | writing PNG and JPEG files |

#![forbid(unsafe_code)]

pub mod cam_grid;
pub mod chart;
pub mod colormap;
pub mod compose;
pub mod draw;
mod error;
pub mod font;
pub mod grid;
pub mod mixed_batch;
pub mod png;
pub mod saliency_map;

pub use cam_grid::{CamSample, cam_grid};
pub use chart::{
    BarSeries, CurvePoint, NamedCurve, compare_curves, grouped_bars, percent_bars, training_curves,
};
pub use compose::{Figure, Row};
pub use error::FigureError;
pub use mixed_batch::MixedBatch;
pub use png::{Encoding, write, write_png};
