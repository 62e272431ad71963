//! `cargo xtask saliency`: one saliency map from the command line (contract in docs/saliency.md).
//!
//! ```text
//! cargo xtask saliency --method <fine-grained|fine-grained-paper-code|spectral-residual|frequency-tuned>
//!                      --input <image.png|image.jpg|array.npy> --output <map.npy|map.png>
//! cargo xtask saliency --method wang-dudek --input frames.npy --output masks.npy
//! cargo xtask saliency --figures docs/figures
//! ```
//! An input image or u8 array is RGB, handed to the detectors unchanged (the OpenCV ports read
//! channel 0 as blue, exactly as OpenCV does with the RGB arrays SaliencyMix passes). A `.npy`
//! output is the f32 H x W map exactly as computed; a `.png` output is the map in a colour scale
//! with its peak marked (the u8 argmax SaliencyMix uses for the fine-grained maps, the float
//! argmax otherwise).

mod figures;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use sal_figures::{Encoding, saliency_map};
use sal_saliency::npy::{self, NpyArray, NpyData};
use sal_saliency::{
    ImageView, KnownNormalization, SaliencyMap, StaticSaliency, WangDudek, static_detector,
};

#[derive(Args)]
pub struct SaliencyArgs {
    /// fine-grained, fine-grained-paper-code, spectral-residual, frequency-tuned or wang-dudek.
    #[arg(long, required_unless_present = "figures")]
    method: Option<String>,
    /// An image (.png, .jpg) or an array (.npy): H x W x 3 (u8 RGB, or f32: in [0, 1], or
    /// mean/std normalised for fine-grained-paper-code), or H x W; T x H x W u8 for wang-dudek.
    #[arg(long, required_unless_present = "figures")]
    input: Option<PathBuf>,
    /// map.npy (f32 H x W; u8 T x H x W 0/1 masks for wang-dudek) or map.png (picture).
    #[arg(long, required_unless_present = "figures")]
    output: Option<PathBuf>,
    /// fine-grained-paper-code on u8 input: the mean/std normalisation SaliencyMix applies
    /// before calling OpenCV (cifar and imagenet are its two training scripts').
    #[arg(long, value_enum, default_value_t = KnownNormalization::Imagenet)]
    normalise: KnownNormalization,
    /// Instead of one map, write the figures of docs/saliency.md into this folder.
    #[arg(long, conflicts_with_all = ["method", "input", "output"])]
    figures: Option<PathBuf>,
}

/// An input image or array, HWC.
pub struct Input {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub data: NpyData,
}

impl Input {
    pub fn view(&self) -> Result<ImageView<'_>> {
        Ok(match &self.data {
            NpyData::U8(d) => ImageView::hwc_u8(d, self.height, self.width, self.channels)?,
            NpyData::F32(d) => ImageView::hwc_f32(d, self.height, self.width, self.channels)?,
        })
    }
}

pub fn run(args: SaliencyArgs) -> Result<()> {
    if let Some(dir) = args.figures {
        return figures::write_all(&dir);
    }
    let (Some(method), Some(input), Some(output)) = (args.method, args.input, args.output) else {
        bail!("--method, --input and --output are required");
    };
    if method == "wang-dudek" {
        return run_wang_dudek(&input, &output);
    }
    let detector = static_detector(&method)?;
    let mut image = read_input(&input)?;
    if method == "fine-grained-paper-code"
        && let NpyData::U8(rgb) = &image.data
    {
        let normalization = args.normalise.normalization();
        image.data = NpyData::F32(normalization.normalise_interleaved(rgb, image.channels));
    }
    let map = detector
        .compute(&image.view()?)
        .with_context(|| format!("{method} on {}", input.display()))?;
    let peak = peak_of(detector.as_ref(), &map);
    write_map(&output, &map, peak)?;
    println!(
        "{method}: {}x{} map written to {}; peak at row {}, column {}",
        map.height,
        map.width,
        output.display(),
        peak.0,
        peak.1
    );
    Ok(())
}

/// The peak a user of the map would take: SaliencyMix's u8 argmax for the fine-grained maps,
/// the first float maximum otherwise.
pub fn peak_of(detector: &dyn StaticSaliency, map: &SaliencyMap) -> (usize, usize) {
    if detector.name().starts_with("fine-grained") {
        map.argmax_u8()
    } else {
        map.argmax()
    }
}

/// Reads a .png / .jpg (as RGB) or a .npy (H x W, H x W x 1 or H x W x 3; u8 or f32).
pub fn read_input(path: &Path) -> Result<Input> {
    match extension(path).as_str() {
        "npy" => {
            let a = npy::read(path).with_context(|| format!("reading {}", path.display()))?;
            let (height, width, channels) = match a.shape[..] {
                [h, w] => (h, w, 1),
                [h, w, c] if c == 1 || c == 3 => (h, w, c),
                _ => bail!(
                    "{}: expected an H x W or H x W x 3 array, got shape {:?}",
                    path.display(),
                    a.shape
                ),
            };
            ensure!(
                height > 0 && width > 0,
                "{}: the image is empty (shape {:?})",
                path.display(),
                a.shape
            );
            Ok(Input {
                height,
                width,
                channels,
                data: a.data,
            })
        }
        "png" | "jpg" | "jpeg" => {
            let rgb = image::open(path)
                .with_context(|| format!("decoding {}", path.display()))?
                .to_rgb8();
            let (w, h) = rgb.dimensions();
            Ok(Input {
                height: h as usize,
                width: w as usize,
                channels: 3,
                data: NpyData::U8(rgb.into_raw()),
            })
        }
        other => bail!(
            "{}: unsupported input type {other:?} (expected .png, .jpg or .npy)",
            path.display()
        ),
    }
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn write_map(path: &Path, map: &SaliencyMap, peak: (usize, usize)) -> Result<()> {
    match extension(path).as_str() {
        "npy" => write_npy(
            path,
            NpyArray::new(vec![map.height, map.width], NpyData::F32(map.data.clone()))?,
        ),
        "png" => {
            let img = saliency_map::render(map, Some(peak), 256)?;
            Ok(sal_figures::write(&img, path, Encoding::PngFast)?)
        }
        other => bail!(
            "{}: unsupported output type {other:?} (expected .npy or .png)",
            path.display()
        ),
    }
}

fn write_npy(path: &Path, array: NpyArray) -> Result<()> {
    npy::write(path, &array).with_context(|| format!("writing {}", path.display()))
}

fn run_wang_dudek(input: &Path, output: &Path) -> Result<()> {
    ensure!(
        extension(input) == "npy" && extension(output) == "npy",
        "wang-dudek reads frames.npy (T x H x W u8) and writes masks.npy"
    );
    let frames = npy::read(input).with_context(|| format!("reading {}", input.display()))?;
    let [t, h, w] = frames.shape[..] else {
        bail!(
            "{}: expected T x H x W frames, got shape {:?}",
            input.display(),
            frames.shape
        );
    };
    let NpyData::U8(pixels) = &frames.data else {
        bail!("{}: frames must be uint8", input.display());
    };
    let mut detector = WangDudek::new(h, w)?;
    let mut masks = Vec::with_capacity(t * h * w);
    for (i, frame) in pixels.chunks_exact((h * w).max(1)).take(t).enumerate() {
        let mask = detector
            .push(&ImageView::hwc_u8(frame, h, w, 1)?)
            .with_context(|| format!("frame {i}"))?;
        masks.extend(mask.data);
    }
    write_npy(output, NpyArray::new(vec![t, h, w], NpyData::U8(masks))?)?;
    println!(
        "wang-dudek: {t} masks of {h}x{w} written to {}",
        output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(method: &str, input: &Path, output: &Path) -> SaliencyArgs {
        SaliencyArgs {
            method: Some(method.into()),
            input: Some(input.into()),
            output: Some(output.into()),
            normalise: KnownNormalization::Cifar,
            figures: None,
        }
    }

    #[test]
    fn npy_in_npy_out_is_the_library_map_and_png_out_is_a_picture() {
        let dir = tempfile::tempdir().unwrap();
        let (h, w) = (9, 13);
        let px: Vec<u8> = (0..h * w * 3).map(|i| (i * 37 % 256) as u8).collect();
        let input = dir.path().join("in.npy");
        npy::write(
            &input,
            &NpyArray::new(vec![h, w, 3], NpyData::U8(px.clone())).unwrap(),
        )
        .unwrap();
        for method in sal_saliency::STATIC_METHODS {
            let out = dir.path().join("map.npy");
            run(args(method, &input, &out)).unwrap();
            let got = npy::read(&out).unwrap();
            assert_eq!(got.shape, [h, w]);
            let view = ImageView::hwc_u8(&px, h, w, 3).unwrap();
            let want = if method == "fine-grained-paper-code" {
                let f = KnownNormalization::Cifar
                    .normalization()
                    .normalise_interleaved(&px, 3);
                let v = ImageView::hwc_f32(&f, h, w, 3).unwrap();
                static_detector(method).unwrap().compute(&v).unwrap()
            } else {
                static_detector(method).unwrap().compute(&view).unwrap()
            };
            assert_eq!(got.data, NpyData::F32(want.data), "{method}");
            let png = dir.path().join("map.png");
            run(args(method, &input, &png)).unwrap();
            let img = image::open(&png).unwrap().to_rgb8();
            assert!(img.width() >= 256 && img.height() >= 128);
        }
    }

    #[test]
    fn wang_dudek_reads_frames_and_writes_0_1_masks() {
        let dir = tempfile::tempdir().unwrap();
        let (t, h, w) = (3, 4, 5);
        let frames = dir.path().join("frames.npy");
        npy::write(
            &frames,
            &NpyArray::new(vec![t, h, w], NpyData::U8(vec![7; t * h * w])).unwrap(),
        )
        .unwrap();
        let masks = dir.path().join("masks.npy");
        run(args("wang-dudek", &frames, &masks)).unwrap();
        let got = npy::read(&masks).unwrap();
        assert_eq!(got.shape, [t, h, w]);
        assert_eq!(got.data, NpyData::U8(vec![1; t * h * w])); // still frames: all foreground
    }

    #[test]
    fn bad_inputs_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let four_d = dir.path().join("x.npy");
        npy::write(
            &four_d,
            &NpyArray::new(vec![1, 2, 2, 3], NpyData::U8(vec![0; 12])).unwrap(),
        )
        .unwrap();
        let out = dir.path().join("y.npy");
        let e = run(args("fine-grained", &four_d, &out)).unwrap_err();
        assert!(format!("{e:#}").contains("x.npy"), "{e:#}");
        let e = run(args("fine-grained", &dir.path().join("x.tiff"), &out)).unwrap_err();
        assert!(format!("{e:#}").contains("unsupported input"), "{e:#}");
        let e = run(args("itti-koch", &four_d, &out)).unwrap_err();
        assert!(
            format!("{e:#}").contains("unknown saliency method"),
            "{e:#}"
        );
        let e = run(args("wang-dudek", &four_d, &out)).unwrap_err();
        assert!(format!("{e:#}").contains("T x H x W"), "{e:#}");
    }
}
