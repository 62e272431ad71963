//! The picture of a batch a mixing method made, like the papers' figures: one row per sample
//! with its target image, the image its foreign content comes from (source), the mixed image
//! and its soft label (the target's class first). Regions are outlined: [`READ`] where pixels
//! are read, [`WRITTEN`] where they are written (HybridMix's SalfMix patches: [`SELF_READ`] and
//! [`SELF_WRITTEN`]); Saliency Grafting's grafted cells are outlined as a mask. A legend says
//! what each colour marks for this batch.
//!
//! [`MixedBatch::read`] takes what the picture needs of a [`MixOutput`] to the host;
//! [`figure`] lays it out as a [`Figure`] (inspectable: rows, caption, legend), whose
//! [`Figure::render`] draws it.

use burn::tensor::Tensor;
use image::RgbImage;
use sal_core::boxes::BoxPair;
use sal_core::{MixOutput, SampleRegion, SampleTrace};
use sal_saliency::Normalization;

use crate::FigureError;
use crate::compose::{Figure, LABEL_CHARS, LABEL_LINES, Row};
use crate::draw::{denormalised, outline_set, upscale};

/// Pixels read from the source / written into the mixed image.
pub const READ: [u8; 3] = [0, 190, 255];
pub const WRITTEN: [u8; 3] = [255, 40, 40];
/// HybridMix's SalfMix patch: read / written.
pub const SELF_READ: [u8; 3] = [40, 210, 40];
pub const SELF_WRITTEN: [u8; 3] = [255, 160, 0];
/// Outline width in picture pixels.
pub const OUTLINE: usize = 2;
/// Tiles are enlarged by the largest integer factor that keeps them at most this many pixels.
pub const TILE_PIXELS: usize = 128;
/// Soft-label weights below this are left out of the label column.
pub const MIN_LABEL_WEIGHT: f32 = 0.005;

/// A mixed batch on the host: what its picture shows.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedBatch {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// The normalised input images, `[N, C, H, W]` flattened.
    pub inputs: Vec<f32>,
    /// The mixed images, `[N, C, H, W]` (Saliency Grafting: the grafted half of its output).
    pub mixed: Vec<f32>,
    /// The soft targets of the mixed images, one row of `num_classes` weights per sample.
    pub targets: Vec<Vec<f32>>,
    /// HybridMix: the targets and the partner pool after its SalfMix step, `[N, C, H, W]` each.
    pub self_mixed: Option<SelfMixed>,
    /// What the mixer did to each sample.
    pub samples: Vec<SampleTrace>,
    /// False when the application coin said no (or during warm-up): nothing was mixed.
    pub applied: bool,
    /// The method's config name (`MixTrace::method`); `"none"` mixes nothing by design.
    pub method: &'static str,
}

/// HybridMix's images after its SalfMix step.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfMixed {
    pub targets: Vec<f32>,
    pub pool: Vec<f32>,
}

/// A tensor's values on the host.
fn host<const D: usize>(t: Tensor<D>, what: &'static str) -> Result<Vec<f32>, FigureError> {
    t.try_into_vec_as::<f32>().map_err(|e| FigureError::Tensor {
        what,
        message: e.to_string(),
    })
}

impl MixedBatch {
    /// Reads what the picture needs of `output`, the mixer's output for the batch `inputs`
    /// (`[N, C, H, W]`, normalised), back to the host.
    pub fn read(inputs: &Tensor<4>, output: &MixOutput) -> Result<Self, FigureError> {
        let [n, channels, height, width] = inputs.dims();
        let trace = &output.trace;
        let (mixed, targets) = if trace.originals_prepended {
            // Saliency Grafting trains on originals + grafted images: show the grafted half.
            (
                output.images.clone().narrow(0, n, n),
                output.targets.clone().narrow(0, n, n),
            )
        } else {
            (output.images.clone(), output.targets.clone())
        };
        let classes = targets.dims()[1].max(1);
        let self_mixed = match &trace.self_mix {
            Some(s) => Some(SelfMixed {
                targets: host(s.targets.clone(), "the self-mixed targets")?,
                pool: host(s.pool.clone(), "the self-mixed pool")?,
            }),
            None => None,
        };
        Ok(Self {
            channels,
            height,
            width,
            inputs: host(inputs.clone(), "the input images")?,
            mixed: host(mixed, "the mixed images")?,
            targets: host(targets, "the soft targets")?
                .chunks(classes)
                .map(<[f32]>::to_vec)
                .collect(),
            self_mixed,
            samples: trace.samples(),
            applied: trace.applied,
            method: trace.method,
        })
    }

    /// Keeps the first `rows` samples (all when there are fewer). The input images stay: they
    /// are the sources the kept rows read from.
    pub fn keep_first(&mut self, rows: usize) {
        if rows >= self.len() {
            return;
        }
        let per = self.channels * self.height * self.width;
        self.samples.truncate(rows);
        self.targets.truncate(rows);
        self.mixed.truncate(rows * per);
        if let Some(s) = &mut self.self_mixed {
            s.targets.truncate(rows * per);
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The enlargement factor of the tiles.
    pub fn factor(&self) -> usize {
        (TILE_PIXELS / self.height.max(self.width).max(1)).max(1)
    }

    fn check(&self, labels: &[usize], normalization: &Normalization) -> Result<(), FigureError> {
        let n = self.len();
        let per = self.channels * self.height * self.width;
        let bad = |what: String| Err(FigureError::Shape(what));
        if self.channels != 1 && self.channels != 3 {
            return bad(format!("images of {} channels (1 or 3)", self.channels));
        }
        if normalization.channels() != self.channels {
            return bad(format!(
                "{}-channel images with a normalisation of {} channels",
                self.channels,
                normalization.channels()
            ));
        }
        // The rows' own images, one per sample; the inputs and the partner pool are sources and
        // may hold more (`keep_first`).
        let pool = self.self_mixed.as_ref().map(|s| &s.pool);
        let sources = self.inputs.len() / per.max(1);
        let own = [
            Some(&self.mixed),
            self.self_mixed.as_ref().map(|s| &s.targets),
        ];
        let shared = [Some(&self.inputs), pool];
        let wrong = own
            .into_iter()
            .flatten()
            .find(|v| v.len() != n * per)
            .or(shared
                .into_iter()
                .flatten()
                .find(|v| v.len() != sources * per || sources < n));
        if let Some(values) = wrong {
            return bad(format!(
                "{} image values for {n} images of {}x{}x{}",
                values.len(),
                self.channels,
                self.height,
                self.width
            ));
        }
        if self.targets.len() != n || labels.len() != n {
            return bad(format!(
                "{n} samples with {} target rows and {} labels",
                self.targets.len(),
                labels.len()
            ));
        }
        let sources_ok = self
            .samples
            .iter()
            .all(|r| r.source.is_none_or(|s| s < sources));
        if !sources_ok {
            return bad(format!(
                "a sample whose source is not one of the {sources} input images"
            ));
        }
        Ok(())
    }
}

/// The text above a mixed batch's picture, besides what the batch itself tells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caption {
    /// What was mixed and how (method, parameters, data, seed, step).
    pub title: Vec<String>,
    /// Remarks after the batch's status line (e.g. where the saliency came from).
    pub notes: Vec<String>,
}

/// The picture of `batch`: `labels` are the samples' classes, `class_names` their names (a
/// class without one shows as `class <k>`), `normalization` the one the images were normalised
/// with. The caption is `caption.title`, a line if the batch was not mixed, `caption.notes`,
/// then how to read a blend and the label column.
pub fn figure(
    batch: &MixedBatch,
    labels: &[usize],
    class_names: &[String],
    normalization: &Normalization,
    caption: Caption,
) -> Result<Figure, FigureError> {
    batch.check(labels, normalization)?;
    let tiles = Tiles {
        batch,
        normalization,
        factor: batch.factor(),
    };
    let rows = (0..batch.len())
        .map(|i| Row {
            tiles: tiles.row(i),
            text: label_lines(&batch.targets[i], labels[i], class_names),
        })
        .collect();
    let mut lines = caption.title;
    if batch.method == "none" {
        lines.push("method = \"none\": nothing is mixed; the images as the network trains on them, with hard labels.".into());
    } else if !batch.applied {
        lines.push("NOT APPLIED: the prob coin said no for this batch.".into());
    }
    lines.extend(caption.notes);
    let (notes, legend) = legend(&batch.samples);
    lines.extend(notes);
    Ok(Figure {
        caption: lines,
        legend,
        headers: vec!["target".into(), "source".into(), "mixed".into()],
        text_header: "label".into(),
        rows,
        tile_height: batch.height * tiles.factor,
        tile_width: batch.width * tiles.factor,
    })
}

/// [`figure`], drawn.
pub fn render(
    batch: &MixedBatch,
    labels: &[usize],
    class_names: &[String],
    normalization: &Normalization,
    caption: Caption,
) -> Result<RgbImage, FigureError> {
    Ok(figure(batch, labels, class_names, normalization, caption)?.render())
}

/// Draws the tiles of one batch.
struct Tiles<'a> {
    batch: &'a MixedBatch,
    normalization: &'a Normalization,
    factor: usize,
}

impl Tiles<'_> {
    /// Image `i` of `values` (`[N, C, H, W]`), de-normalised and enlarged.
    fn tile(&self, values: &[f32], i: usize) -> RgbImage {
        let b = self.batch;
        let per = b.channels * b.height * b.width;
        let img = denormalised(
            &values[i * per..(i + 1) * per],
            [b.channels, b.height, b.width],
            self.normalization,
        );
        upscale(&img, self.factor)
    }

    /// Outlines the pixels of the un-enlarged image where `covered(y, x)`.
    fn outline(
        &self,
        tile: &mut RgbImage,
        covered: impl Fn(usize, usize) -> bool,
        colour: [u8; 3],
    ) {
        let f = self.factor;
        outline_set(tile, |y, x| covered(y / f, x / f), colour, OUTLINE);
    }

    fn outline_patch(&self, tile: &mut RgbImage, patch: &BoxPair) {
        self.outline(tile, |y, x| patch.source.contains(y, x), SELF_READ);
        self.outline(tile, |y, x| patch.target.contains(y, x), SELF_WRITTEN);
    }

    /// Target, source and mixed tile of sample `i`, regions outlined.
    fn row(&self, i: usize) -> Vec<Option<RgbImage>> {
        let b = self.batch;
        let sample = &b.samples[i];
        let (h, w) = (b.height, b.width);
        let region = &sample.region;
        let targets = b.self_mixed.as_ref().map_or(&b.inputs, |s| &s.targets);
        let mut target = self.tile(targets, i);
        if let Some(p) = &sample.self_patch {
            self.outline_patch(&mut target, p);
        }
        let source_index = match (sample.source, region) {
            (Some(s), _) => Some(s),
            // SalfMix: the patch comes from the image itself.
            (None, SampleRegion::Paste(_)) => Some(i),
            (None, _) => None,
        };
        let source = source_index.map(|s| {
            let pool = match (&b.self_mixed, sample.source) {
                (Some(m), Some(_)) => &m.pool,
                _ => &b.inputs,
            };
            let mut tile = self.tile(pool, s);
            if let Some(p) = &sample.source_self_patch {
                self.outline_patch(&mut tile, p);
            }
            match region {
                SampleRegion::Paste(p) => {
                    self.outline(&mut tile, |y, x| p.source.contains(y, x), READ)
                }
                SampleRegion::Grid { .. } => {
                    self.outline(&mut tile, |y, x| region.covers(y, x, h, w), READ)
                }
                _ => {}
            }
            tile
        });
        let mut mixed = self.tile(&b.mixed, i);
        self.outline(&mut mixed, |y, x| region.covers(y, x, h, w), WRITTEN);
        vec![Some(target), source, Some(mixed)]
    }
}

/// The soft label as text lines: the target's class first, then the others by weight; weights
/// below [`MIN_LABEL_WEIGHT`] are left out, and a tail beyond the column's lines is counted.
pub fn label_lines(target_row: &[f32], own_class: usize, names: &[String]) -> Vec<String> {
    let mut entries: Vec<(usize, f32)> = target_row
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, w)| w >= MIN_LABEL_WEIGHT)
        .collect();
    entries.sort_by(|a, b| {
        (b.0 == own_class)
            .cmp(&(a.0 == own_class))
            .then(b.1.total_cmp(&a.1))
    });
    let name = |k: usize| {
        names
            .get(k)
            .cloned()
            .unwrap_or_else(|| format!("class {k}"))
    };
    let max = LABEL_LINES;
    let mut lines: Vec<String> = entries
        .iter()
        .take(if entries.len() > max { max - 1 } else { max })
        .map(|&(k, w)| {
            let value = format!(" {w:.2}");
            let room = LABEL_CHARS.saturating_sub(value.len());
            let mut n = name(k);
            if n.chars().count() > room {
                n = n.chars().take(room).collect();
            }
            format!("{n}{value}")
        })
        .collect();
    if entries.len() > max {
        lines.push(format!("+{} more", entries.len() - (max - 1)));
    }
    lines
}

/// What the outlines mean, for the regions this batch has (a swatch colour and its text), and
/// notes on how to read the picture.
pub fn legend(samples: &[SampleTrace]) -> (Vec<String>, Vec<([u8; 3], String)>) {
    let mut notes = Vec::new();
    let mut colours = Vec::new();
    let mut entry = |colour, text: &str| colours.push((colour, text.to_string()));
    if let Some(first) = samples.first() {
        if first.self_patch.is_some() {
            entry(SELF_READ, "SalfMix: most salient patch (target and source)");
            entry(
                SELF_WRITTEN,
                "SalfMix: least salient patch, overwritten by it",
            );
        }
        match (&first.region, first.source) {
            (SampleRegion::None, Some(_)) => notes
                .push("mixed = lambda * target + (1 - lambda) * source, whole images.".to_string()),
            (SampleRegion::None, None) => {}
            (SampleRegion::Paste(_), None) => {
                entry(READ, "the most salient patch");
                entry(WRITTEN, "the least salient patch, overwritten by it");
            }
            (SampleRegion::Paste(_), Some(_)) => {
                entry(READ, "the box cut from the source");
                entry(WRITTEN, "where it is pasted");
            }
            (SampleRegion::Resized(_), _) => {
                entry(WRITTEN, "the box the whole source image is resized into")
            }
            (SampleRegion::Hole(_), _) => entry(WRITTEN, "the hole, set to 0 (the data set mean)"),
            (SampleRegion::Grid { .. }, _) => {
                entry(READ, "the grafted cells of the source");
                entry(WRITTEN, "the same cells in the mixed image");
            }
        }
    }
    notes.push("Label: the soft target, the target's class first.".into());
    (notes, colours)
}

#[cfg(test)]
mod tests;
