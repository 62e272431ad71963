//! The figures of docs/saliency.md (`cargo xtask saliency --figures docs/figures`), all computed
//! from the real photos and CIFAR images in `tests/fixtures`, plus the statistics the text
//! quotes (printed).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use sal_figures::grid::tile_grid;
use sal_figures::saliency_map::{self, PEAK_INK, mark_peak};
use sal_figures::{Encoding, write};
use sal_saliency::npy::{self, NpyData};
use sal_saliency::{
    ImageView, KnownNormalization, SaliencyMap, StaticSaliency, WangDudek, static_detector,
};

use super::peak_of;

/// Side of one picture in the grids.
const TILE: u32 = 224;
const GAP: u32 = 6;
const INTENDED_INK: Rgb<u8> = PEAK_INK;
const PAPER_CODE_INK: Rgb<u8> = Rgb([20, 220, 240]);

pub fn write_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let fixtures = crate::pyenv::workspace_root().join("tests/fixtures");
    if !fixtures.is_dir() {
        bail!(
            "{} not found: the figures are made from the repository's test fixtures",
            fixtures.display()
        );
    }
    let written = [
        detectors_figure(&fixtures, dir)?,
        paper_vs_code_figure(&fixtures, dir)?,
        peak_positions_figure(&fixtures, dir)?,
        wang_dudek_figure(&fixtures, dir)?,
    ];
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// An RGB u8 image, HWC.
struct Photo {
    height: usize,
    width: usize,
    rgb: Vec<u8>,
}

impl Photo {
    fn from_npy(path: &Path) -> Result<Self> {
        let a = npy::read(path).with_context(|| format!("reading {}", path.display()))?;
        match (&a.shape[..], a.data) {
            (&[height, width, 3], NpyData::U8(rgb)) => Ok(Self { height, width, rgb }),
            (shape, _) => bail!("{}: expected H x W x 3 u8, got {shape:?}", path.display()),
        }
    }

    fn view(&self) -> ImageView<'_> {
        ImageView::hwc_u8(&self.rgb, self.height, self.width, 3).expect("valid photo")
    }

    fn tile(&self) -> RgbImage {
        let img = RgbImage::from_raw(self.width as u32, self.height as u32, self.rgb.clone())
            .expect("buffer matches");
        image::imageops::resize(&img, TILE, TILE, FilterType::Nearest)
    }

    /// SaliencyMix's normalisation for this size (CIFAR at 32 px, ImageNet otherwise).
    fn normalised(&self) -> Vec<f32> {
        let known = if self.height <= 32 {
            KnownNormalization::Cifar
        } else {
            KnownNormalization::Imagenet
        };
        known.normalization().normalise_interleaved(&self.rgb, 3)
    }
}

fn map_tile(map: &SaliencyMap, peak: Option<(usize, usize)>) -> Result<RgbImage> {
    let img = saliency_map::render(map, peak, TILE as usize)?;
    Ok(image::imageops::resize(
        &img,
        TILE,
        TILE,
        FilterType::Nearest,
    ))
}

/// Tiles in rows, separated by gaps.
fn grid(rows: &[Vec<RgbImage>]) -> RgbImage {
    tile_grid(rows, TILE, GAP)
}

/// Saves as PNG, or as JPEG (quality 80) for a `.jpg` path: the big grid of smooth colour maps
/// is ~1.7 MB as PNG and ~0.6 MB as JPEG.
fn save(img: &RgbImage, path: PathBuf) -> Result<PathBuf> {
    let encoding = if path.extension().is_some_and(|e| e == "jpg") {
        Encoding::Jpeg { quality: 80 }
    } else {
        Encoding::PngFast
    };
    write(img, &path, encoding)?;
    Ok(path)
}

/// Every detector on the same photos: input, fine-grained, fine-grained-paper-code, spectral
/// residual, frequency-tuned, and Wang & Dudek on the photo as a one-frame sequence.
fn detectors_figure(fixtures: &Path, dir: &Path) -> Result<PathBuf> {
    let cases = [
        "astronaut_224",
        "chelsea_224",
        "coffee_224",
        "rocket_224",
        "cifar10_00_3_32",
        "cifar10_03_0_32",
    ];
    let detectors: Vec<Box<dyn StaticSaliency>> = [
        "fine-grained",
        "fine-grained-paper-code",
        "spectral-residual",
        "frequency-tuned",
    ]
    .iter()
    .map(|name| static_detector(name))
    .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for case in cases {
        let photo = Photo::from_npy(&fixtures.join("saliency").join(case).join("input_u8.npy"))?;
        let normalised = photo.normalised();
        let mut row = vec![photo.tile()];
        for d in &detectors {
            let view = if d.name() == "fine-grained-paper-code" {
                ImageView::hwc_f32(&normalised, photo.height, photo.width, 3)?
            } else {
                photo.view()
            };
            let map = d.compute(&view)?;
            row.push(map_tile(&map, Some(peak_of(d.as_ref(), &map)))?);
        }
        let gray = sal_gray(&photo);
        let mut wd = WangDudek::new(photo.height, photo.width)?;
        let mask = wd.push(&ImageView::hwc_u8(&gray, photo.height, photo.width, 1)?)?;
        let mask_map = SaliencyMap {
            height: mask.height,
            width: mask.width,
            data: mask.data.iter().map(|&v| v as f32).collect(),
        };
        row.push(map_tile(&mask_map, None)?);
        rows.push(row);
    }
    save(&grid(&rows), dir.join("saliency_detectors.jpg"))
}

/// Luma of an RGB photo (ITU-R 601 weights), the 1-channel frame Wang & Dudek needs.
fn sal_gray(photo: &Photo) -> Vec<u8> {
    photo
        .rgb
        .chunks_exact(3)
        .map(|p| (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).round() as u8)
        .collect()
}

/// CIFAR-10 test images: input with both peaks (red: intended, cyan: paper code), the intended
/// map, the paper-code map.
fn paper_vs_code_figure(fixtures: &Path, dir: &Path) -> Result<PathBuf> {
    let intended = static_detector("fine-grained")?;
    let paper = static_detector("fine-grained-paper-code")?;
    let images = cifar_images(fixtures)?;
    let mut rows = Vec::new();
    for photo in images.iter().take(6) {
        let a = intended.compute(&photo.view())?;
        let normalised = photo.normalised();
        let b = paper.compute(&ImageView::hwc_f32(&normalised, 32, 32, 3)?)?;
        let (pa, pb) = (a.argmax_u8(), b.argmax_u8());
        let mut input = photo.tile();
        let scale = TILE as usize / 32;
        mark_peak(&mut input, pa, scale, INTENDED_INK);
        mark_peak(&mut input, pb, scale, PAPER_CODE_INK);
        rows.push(vec![
            input,
            map_tile(&a, Some(pa))?,
            map_tile(&b, Some(pb))?,
        ]);
    }
    save(&grid(&rows), dir.join("saliency_paper_vs_code.png"))
}

/// Where the peaks land, over the CIFAR test images and 32x32 crops of the ImageNet photos:
/// a count per pixel for the intended path and for the paper-code path. Prints the statistics.
fn peak_positions_figure(fixtures: &Path, dir: &Path) -> Result<PathBuf> {
    let mut images = cifar_images(fixtures)?;
    images.extend(photo_crops(fixtures, 480)?);
    let intended = static_detector("fine-grained")?;
    let paper = static_detector("fine-grained-paper-code")?;
    let mut counts = [vec![0f32; 32 * 32], vec![0f32; 32 * 32]];
    let mut peaks = [Vec::new(), Vec::new()];
    for photo in &images {
        let a = intended.compute(&photo.view())?.argmax_u8();
        let normalised = photo.normalised();
        let b = paper
            .compute(&ImageView::hwc_f32(&normalised, 32, 32, 3)?)?
            .argmax_u8();
        for (k, p) in [a, b].into_iter().enumerate() {
            counts[k][p.0 * 32 + p.1] += 1.0;
            peaks[k].push(p);
        }
    }
    let n = images.len() as f64;
    for (name, p) in ["intended", "paper-code"].iter().zip(&peaks) {
        let border = p
            .iter()
            .filter(|&&(r, c)| r == 0 || c == 0 || r == 31 || c == 31);
        let mod4: Vec<usize> = (0..4)
            .map(|m| p.iter().filter(|&&(_, c)| c % 4 == m).count())
            .collect();
        let top = p.iter().filter(|&&(r, _)| r < 16).count();
        println!(
            "{name}: {} images; peak on the 1-pixel border {:.1} %; column mod 4 = 0/1/2/3: {:?}; \
             peak in the top half {:.1} %",
            p.len(),
            100.0 * border.count() as f64 / n,
            mod4,
            100.0 * top as f64 / n
        );
    }
    let tiles: Vec<RgbImage> = counts
        .iter()
        .map(|c| {
            let map = SaliencyMap {
                height: 32,
                width: 32,
                data: c.iter().map(|v| v.sqrt()).collect(),
            };
            map_tile(&map, None)
        })
        .collect::<Result<_>>()?;
    save(&grid(&[tiles]), dir.join("saliency_peak_positions.png"))
}

/// The 10 CIFAR-10 and 10 CIFAR-100 test images of the fixtures (binary format, RGB planes).
fn cifar_images(fixtures: &Path) -> Result<Vec<Photo>> {
    let mut out = Vec::new();
    for (file, label_bytes) in [
        ("cifar/cifar-10-batches-bin/test_batch.bin", 1),
        ("cifar/cifar-100-binary/test.bin", 2),
    ] {
        let path = fixtures.join(file);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        for record in bytes.chunks_exact(label_bytes + 3072) {
            let planes = &record[label_bytes..];
            let rgb = (0..1024)
                .flat_map(|i| [planes[i], planes[1024 + i], planes[2048 + i]])
                .collect();
            out.push(Photo {
                height: 32,
                width: 32,
                rgb,
            });
        }
    }
    Ok(out)
}

/// `count` 32x32 crops at fixed pseudo-random positions of the ImageNet fixture photos, each
/// photo first reduced to 96x96 (the crops then show objects at a CIFAR-like scale).
fn photo_crops(fixtures: &Path, count: usize) -> Result<Vec<Photo>> {
    let mut photos = Vec::new();
    for split in ["train", "val"] {
        let root = fixtures.join("imagefolder").join(split);
        let mut classes: Vec<PathBuf> = fs::read_dir(&root)
            .with_context(|| format!("listing {}", root.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        classes.sort();
        for class in classes {
            let mut files: Vec<PathBuf> = fs::read_dir(&class)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            files.sort();
            for f in files {
                let img = image::open(&f)
                    .with_context(|| format!("decoding {}", f.display()))?
                    .to_rgb8();
                photos.push(image::imageops::resize(&img, 96, 96, FilterType::Triangle));
            }
        }
    }
    if photos.is_empty() {
        bail!("no photos under {}", fixtures.join("imagefolder").display());
    }
    // A fixed linear congruential sequence: the figure is the same on every run.
    let mut state: u64 = 0x5EED;
    let mut next = |m: u32| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % m as u64) as u32
    };
    Ok((0..count)
        .map(|i| {
            let p = &photos[i % photos.len()];
            let (x, y) = (next(96 - 32 + 1), next(96 - 32 + 1));
            let crop = image::imageops::crop_imm(p, x, y, 32, 32).to_image();
            Photo {
                height: 32,
                width: 32,
                rgb: crop.into_raw(),
            }
        })
        .collect())
}

/// The fixture sequence: frames 0, 50, 51, 75 and 99 (top) and OpenCV-exact masks (bottom).
fn wang_dudek_figure(fixtures: &Path, dir: &Path) -> Result<PathBuf> {
    let path = fixtures.join("wang_dudek/frames.npy");
    let frames = npy::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let (&[t, h, w], NpyData::U8(pixels)) = (&frames.shape[..], &frames.data) else {
        bail!("{}: expected T x H x W u8 frames", path.display());
    };
    let mut wd = WangDudek::new(h, w)?;
    let shown = [0, 50, 51, 75, 99];
    let (mut top, mut bottom) = (Vec::new(), Vec::new());
    let gray_tile = |v: &[u8]| {
        let img = RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let g = v[y as usize * w + x as usize];
            Rgb([g, g, g])
        });
        image::imageops::resize(&img, TILE, TILE * h as u32 / w as u32, FilterType::Nearest)
    };
    for (i, frame) in pixels.chunks_exact(h * w).take(t).enumerate() {
        let mask = wd.push(&ImageView::hwc_u8(frame, h, w, 1)?)?;
        if shown.contains(&i) {
            top.push(gray_tile(frame));
            let white: Vec<u8> = mask.data.iter().map(|&m| m * 255).collect();
            bottom.push(gray_tile(&white));
        }
    }
    save(&grid(&[top, bottom]), dir.join("saliency_wang_dudek.png"))
}
