//! `cargo xtask visualize`: pictures of a mixing method on real data, like the papers' figures.
//!
//! ```text
//! cargo xtask visualize --method <name> --config F --output grid.png
//!                       [--set key=value]... [--samples N] [--seed S]
//! cargo xtask visualize --method all --config F --output folder/   # folder/<method>.png each
//! ```
//!
//! Each row shows a training image (target), the image its foreign content comes from (source),
//! the mixed image and its soft label (the target's class first). Regions are outlined: cyan
//! where pixels are read, red where they are written (HybridMix's SalfMix patches: green and
//! orange); Saliency Grafting's grafted cells are outlined as a mask. The caption names the
//! method, its `[augmentation]` parameters, and what the picture changed:
//! - the method: when the config's `[augmentation]` has the same method, its parameters are
//!   used, else the method's defaults (HybridMix's `T_t` defaults to SaliencyMix, v2);
//!   `--set augmentation.<key>=<value>` overrides either, as in `train`;
//! - the mixing always applies (`prob = 1`) unless `--set` gives the prob;
//! - warm-up epochs are over (the batch is mixed as in the first epoch after them);
//! - model-guided methods (SalfMix, HybridMix, Saliency Grafting) take their saliency from the
//!   config's run checkpoint (`<output_dir>/checkpoint/model-<N>.bpk`, newest complete epoch) or,
//!   without one, from an untrained model, and say which.
//!
//! The images are the config's training set after its training transform (pad, crop, flip,
//! normalise), one per class as far as the classes go, chosen with the seed (default: the
//! config's), which also seeds the mixing (step 0 of that seed's stream).

mod figure;
mod font;
mod saliency_model;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Args;
use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sal_core::boxes::BoxPair;
use sal_core::overlay::Rgb;
use sal_core::{AugmentationConfig, MixBatch, PairConfig, SampleRecord, SampleRegion};
use sal_train::ExperimentConfig;
use sal_train::data::Split;
use sal_train::loader::LoaderMode;

use figure::{Figure, Row, outline_set, upscale};
use saliency_model::SaliencyModel;

/// The methods `--method` accepts (their `[augmentation]` names); `all` renders each.
pub const METHODS: [&str; 8] = [
    "mixup",
    "cutout",
    "cutmix",
    "resizemix",
    "saliencymix",
    "salfmix",
    "hybridmix",
    "saliency-grafting",
];

#[derive(Args)]
pub struct VisualizeArgs {
    /// mixup, cutout, cutmix, resizemix, saliencymix, salfmix, hybridmix, saliency-grafting, or
    /// all (one PNG per method into the --output folder).
    #[arg(long)]
    method: String,
    /// Experiment config (TOML): data set, transform, model, and `[augmentation]` parameters.
    #[arg(long)]
    config: PathBuf,
    /// The PNG to write; with `--method all` an existing folder that receives `<method>.png`.
    #[arg(long)]
    output: PathBuf,
    /// Override a config value, e.g. `--set augmentation.mix.method=cutmix` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Rows of the picture: images mixed as one batch.
    #[arg(long, default_value_t = 6)]
    samples: usize,
    /// Seed of the image choice and of the mixing; default: the config's `seed`.
    #[arg(long)]
    seed: Option<u64>,
}

/// Pixels read from the source / written into the mixed image.
const READ: [u8; 3] = [0, 190, 255];
const WRITTEN: [u8; 3] = [255, 40, 40];
/// HybridMix's SalfMix patch: read / written.
const SELF_READ: [u8; 3] = [40, 210, 40];
const SELF_WRITTEN: [u8; 3] = [255, 160, 0];
/// Outline width in picture pixels.
const OUTLINE: usize = 2;
/// Tiles are enlarged by the largest integer factor that keeps them at most this many pixels.
const TILE_PIXELS: usize = 128;

pub fn run(args: VisualizeArgs) -> Result<()> {
    let jobs = plan(&args)?;
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read config file {}", args.config.display()))?;
    let pictures = jobs
        .iter()
        .map(|(method, _)| {
            PictureConfig::new(&text, &args.config, method, &args.overrides, args.seed)
        })
        .collect::<Result<Vec<_>>>()?;
    // Only `[augmentation]` differs between the pictures: data and model come from the first.
    let base = &pictures[0].experiment;
    let device = Device::flex().autodiff();
    let samples = Samples::load(base, args.samples, &device)?;
    let needs_model = pictures.iter().any(|p| {
        p.experiment
            .augmentation()
            .is_ok_and(|a| a.saliency_input() != sal_core::SaliencyInput::None)
    });
    let model = if needs_model {
        let model = SaliencyModel::load(base, samples.num_classes, &device)?;
        println!(
            "{}",
            model.weights.describe(&base.model.architecture.to_string())
        );
        Some(model)
    } else {
        None
    };
    for (picture, (_, output)) in pictures.iter().zip(&jobs) {
        let figure = picture.render(&samples, model.as_ref())?;
        save_png(&figure.render(), output)?;
        println!("{}: {}", picture.method, output.display());
    }
    Ok(())
}

/// Checks the arguments and pairs each method to render with its output file.
fn plan(args: &VisualizeArgs) -> Result<Vec<(&'static str, PathBuf)>> {
    ensure!(args.samples >= 1, "--samples must be at least 1");
    if args.method == "all" {
        ensure!(
            args.output.is_dir(),
            "--output {}: with --method all this must be an existing folder (one PNG per \
             method goes into it)",
            args.output.display()
        );
        return Ok(METHODS
            .iter()
            .map(|m| (*m, args.output.join(format!("{m}.png"))))
            .collect());
    }
    let Some(method) = METHODS.iter().find(|m| **m == args.method) else {
        bail!(
            "unknown method `{}`: expected one of {}, or all",
            args.method,
            METHODS.join(", ")
        );
    };
    ensure!(
        args.output.extension().is_some_and(|e| e == "png"),
        "--output {}: the picture is a PNG, name it <something>.png",
        args.output.display()
    );
    let parent = args
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure!(
        parent.is_dir(),
        "--output {}: the folder {} does not exist",
        args.output.display(),
        parent.display()
    );
    Ok(vec![(*method, args.output.clone())])
}

/// One method's experiment config, set up for a picture.
#[derive(Debug)]
struct PictureConfig {
    method: &'static str,
    experiment: ExperimentConfig,
    /// True when the picture set the mixing probability to 1 (the user did not set it).
    prob_forced: bool,
}

impl PictureConfig {
    /// `text` (the config file at `path`) with its `[augmentation]` table kept when it names
    /// `method`, else replaced by `method`'s defaults; prob set to 1 unless `overrides` set it;
    /// then `overrides`; `seed` replaces the config's.
    fn new(
        text: &str,
        path: &Path,
        method: &'static str,
        overrides: &[String],
        seed: Option<u64>,
    ) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text)
            .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
        let configured = table
            .get("augmentation")
            .and_then(|a| a.get("method"))
            .and_then(|m| m.as_str());
        if configured != Some(method) {
            let mut augmentation = toml::Table::new();
            augmentation.insert("method".into(), method.into());
            if method == "hybridmix" {
                // T_t is required; SaliencyMix (v2) unless `--set augmentation.mix.method=...`.
                let mut mix = toml::Table::new();
                mix.insert("method".into(), "saliencymix".into());
                augmentation.insert("mix".into(), mix.into());
            }
            table.insert("augmentation".into(), augmentation.into());
        }
        let prob_key = if method == "hybridmix" {
            "augmentation.mix.prob"
        } else {
            "augmentation.prob"
        };
        let user_sets_prob = overrides
            .iter()
            .any(|o| o.split_once('=').is_some_and(|(k, _)| k.trim() == prob_key));
        let mut all = Vec::with_capacity(overrides.len() + 1);
        if !user_sets_prob {
            all.push(format!("{prob_key}=1.0"));
        }
        all.extend(overrides.iter().cloned());
        let text = toml::to_string(&table).expect("a parsed TOML table serialises");
        let mut experiment = ExperimentConfig::parse(&text, path, &all)?;
        if let Some(seed) = seed {
            experiment.seed = seed;
        }
        Ok(Self {
            method,
            experiment,
            prob_forced: !user_sets_prob,
        })
    }

    /// Mixes the samples as one training batch and lays out the figure.
    fn render(&self, samples: &Samples, model: Option<&SaliencyModel>) -> Result<Figure> {
        let experiment = &self.experiment;
        let augmentation = experiment
            .augmentation()
            .with_context(|| format!("[augmentation] of method {}", self.method))?;
        let config = &experiment.augmentation;
        let mut batch = MixBatch::new(
            samples.images.clone(),
            samples.labels.clone(),
            samples.num_classes,
        )
        .with_epoch(warmup_epochs(config));
        let input = augmentation.saliency_input();
        let mut weights_note = None;
        if input != sal_core::SaliencyInput::None {
            let model = model.expect("a model is loaded for every model-guided method");
            if let Some(saliency) = model.saliency(input, &samples.images, &samples.labels)? {
                batch = batch.with_saliency(saliency);
            }
            weights_note = Some(
                model
                    .weights
                    .describe(&experiment.model.architecture.to_string()),
            );
        }
        let out = augmentation
            .mix(batch, 0)
            .with_context(|| format!("mixing with {}", self.method))?;
        let n = samples.len();
        let (mixed, targets) = if out.record.originals_prepended {
            // Saliency Grafting trains on originals + grafted images: show the grafted half.
            (out.images.narrow(0, n, n), out.targets.narrow(0, n, n))
        } else {
            (out.images, out.targets)
        };
        let record = out.record.samples();
        let self_mix = out.record.self_mix.as_ref();
        let view = Views {
            inputs: host(samples.images.clone()),
            mixed: host(mixed),
            self_mixed_targets: self_mix.map(|s| host(s.targets.clone())),
            self_mixed_pool: self_mix.map(|s| host(s.pool.clone())),
            samples,
        };
        let targets = host2(targets, samples.num_classes);
        let rows = (0..n)
            .map(|i| Row {
                tiles: view.tiles(i, &record[i]),
                text: label_lines(&targets[i], samples.labels_host[i], &samples.class_names),
            })
            .collect();
        let mut caption = vec![
            format!(
                "{}: method = \"{}\", {}, seed {}",
                display_name(config),
                self.method,
                experiment.dataset.name,
                experiment.seed
            ),
            format!("[augmentation] {}", parameters(config)),
        ];
        if self.prob_forced {
            caption.push(
                "The mixing is forced to apply (prob = 1) for this picture; training uses the \
                 configured prob."
                    .into(),
            );
        }
        if !out.record.applied {
            caption.push("NOT APPLIED: the prob coin said no for this batch.".into());
        }
        caption.extend(weights_note);
        let (notes, legend) = legend(&record);
        caption.extend(notes);
        let side = samples.height.max(samples.width);
        let factor = (TILE_PIXELS / side).max(1);
        Ok(Figure {
            caption,
            legend,
            headers: vec!["target".into(), "source".into(), "mixed".into()],
            text_header: "label".into(),
            rows,
            tile_height: samples.height * factor,
            tile_width: samples.width * factor,
        })
    }
}

/// The batch of real training images every picture mixes.
struct Samples {
    /// `[N, C, H, W]` normalised, on the model's (autodiff) device.
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    labels_host: Vec<usize>,
    num_classes: usize,
    class_names: Vec<String>,
    channels: usize,
    height: usize,
    width: usize,
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Samples {
    /// `n` training images, one per class while classes last, after the training transform.
    fn load(config: &ExperimentConfig, n: usize, device: &Device) -> Result<Self> {
        let set = config
            .dataset
            .open(Split::Train)
            .with_context(|| format!("opening the {} training set", config.dataset.name))?;
        let len = set.len();
        let limit = config.dataset.train_limit.map_or(len, |l| l.min(len));
        ensure!(limit > 0, "the training set is empty");
        let num_classes = config.num_classes(set.num_classes());
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut chosen: Vec<sal_train::data::ImageItem> = Vec::with_capacity(n);
        // Distinct classes first; after enough misses any image will do.
        for attempt in 0.. {
            if chosen.len() == n {
                break;
            }
            let item = set.load(sal_core::sampling::below(&mut rng, limit))?;
            let seen = chosen.iter().any(|c| c.label == item.label);
            if !seen || attempt >= 50 * n {
                chosen.push(item);
            }
        }
        let first = &chosen[0];
        let transform = config.sample_transform(first, LoaderMode::Train);
        let normalization = transform.normalization.clone();
        let per = transform.sample_len();
        let mut pixels = vec![0f32; n * per];
        for (item, out) in chosen.iter().zip(pixels.chunks_mut(per)) {
            transform
                .apply(item, Some(&mut rng), out)
                .map_err(|e| anyhow::anyhow!("{}: {e}", config.dataset.name))?;
        }
        let (c, h, w) = (transform.channels, transform.height, transform.width);
        let labels_host: Vec<usize> = chosen.iter().map(|i| i.label).collect();
        let label_values: Vec<i64> = labels_host.iter().map(|&l| l as i64).collect();
        Ok(Self {
            images: Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device),
            labels: Tensor::from_data(TensorData::new(label_values, [n]), device),
            labels_host,
            num_classes,
            class_names: set.class_names().to_vec(),
            channels: c,
            height: h,
            width: w,
            mean: normalization.mean,
            std: normalization.std,
        })
    }

    fn len(&self) -> usize {
        self.labels_host.len()
    }
}

/// Host copies of the images one picture draws from.
struct Views<'a> {
    inputs: Vec<f32>,
    mixed: Vec<f32>,
    /// HybridMix: the targets after SalfMix and the partner pool after SalfMix.
    self_mixed_targets: Option<Vec<f32>>,
    self_mixed_pool: Option<Vec<f32>>,
    samples: &'a Samples,
}

impl Views<'_> {
    /// Image `i` of `values` (`[N, C, H, W]`), enlarged for the picture.
    fn tile(&self, values: &[f32], i: usize) -> Rgb {
        let s = self.samples;
        let per = s.channels * s.height * s.width;
        let img = Rgb::from_normalised_chw(
            &values[i * per..(i + 1) * per],
            s.channels,
            s.height,
            s.width,
            &s.mean,
            &s.std,
        );
        upscale(&img, self.factor())
    }

    fn factor(&self) -> usize {
        (TILE_PIXELS / self.samples.height.max(self.samples.width)).max(1)
    }

    /// Outlines the pixels of the un-enlarged image where `covered(y, x)`.
    fn outline(&self, tile: &mut Rgb, covered: impl Fn(usize, usize) -> bool, colour: [u8; 3]) {
        let f = self.factor();
        outline_set(tile, |y, x| covered(y / f, x / f), colour, OUTLINE);
    }

    fn outline_patch(&self, tile: &mut Rgb, patch: &BoxPair) {
        self.outline(tile, |y, x| patch.source.contains(y, x), SELF_READ);
        self.outline(tile, |y, x| patch.target.contains(y, x), SELF_WRITTEN);
    }

    /// Target, source and mixed tile of sample `i`, regions outlined.
    fn tiles(&self, i: usize, record: &SampleRecord) -> Vec<Option<Rgb>> {
        let (h, w) = (self.samples.height, self.samples.width);
        let region = &record.region;
        let mut target = self.tile(self.self_mixed_targets.as_ref().unwrap_or(&self.inputs), i);
        if let Some(p) = &record.self_patch {
            self.outline_patch(&mut target, p);
        }
        let source_index = match (record.source, region) {
            (Some(s), _) => Some(s),
            // SalfMix: the patch comes from the image itself.
            (None, SampleRegion::Paste(_)) => Some(i),
            (None, _) => None,
        };
        let source = source_index.map(|s| {
            let pool = match (&self.self_mixed_pool, record.source) {
                (Some(pool), Some(_)) => pool,
                _ => &self.inputs,
            };
            let mut tile = self.tile(pool, s);
            if let Some(p) = &record.source_self_patch {
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
        let mut mixed = self.tile(&self.mixed, i);
        self.outline(&mut mixed, |y, x| region.covers(y, x, h, w), WRITTEN);
        vec![Some(target), source, Some(mixed)]
    }
}

/// A tensor's values on the host.
fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>()
        .expect("a float tensor reads as f32")
}

/// `[N, K]` rows on the host.
fn host2(t: Tensor<2>, k: usize) -> Vec<Vec<f32>> {
    host(t).chunks(k).map(<[f32]>::to_vec).collect()
}

/// The soft label as text lines: the target's class first, then the others by weight; weights
/// below 0.005 are left out.
fn label_lines(target_row: &[f32], own_class: usize, names: &[String]) -> Vec<String> {
    let mut entries: Vec<(usize, f32)> = target_row
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, w)| w >= 0.005)
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
    let max = figure::LABEL_LINES;
    let mut lines: Vec<String> = entries
        .iter()
        .take(if entries.len() > max { max - 1 } else { max })
        .map(|&(k, w)| {
            let value = format!(" {w:.2}");
            let room = figure::LABEL_CHARS - value.len();
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

/// Epochs the method leaves the batch clean; the picture's batch comes right after them.
fn warmup_epochs(config: &AugmentationConfig) -> usize {
    match config {
        AugmentationConfig::HybridMix(c) => c.warmup_epochs,
        AugmentationConfig::SaliencyGrafting(c) => c.warmup_epochs,
        _ => 0,
    }
}

/// The name the papers use.
fn display_name(config: &AugmentationConfig) -> &'static str {
    match config {
        AugmentationConfig::None(_) => "No mixing",
        AugmentationConfig::Mixup(_) => "Mixup",
        AugmentationConfig::Cutout(_) => "Cutout",
        AugmentationConfig::CutMix(_) => "CutMix",
        AugmentationConfig::ResizeMix(_) => "ResizeMix",
        AugmentationConfig::SaliencyMix(_) => "SaliencyMix",
        AugmentationConfig::SalfMix(_) => "SalfMix",
        AugmentationConfig::HybridMix(c) => match c.mix {
            PairConfig::Mixup(_) => "HybridMix v1 (SalfMix + Mixup)",
            PairConfig::SaliencyMix(_) => "HybridMix v2 (SalfMix + SaliencyMix)",
            PairConfig::CutMix(_) => "HybridMix v3 (SalfMix + CutMix)",
        },
        AugmentationConfig::SaliencyGrafting(_) => "Saliency Grafting",
    }
}

/// The method's parameters as `key = value` pairs, nested tables dotted, `method` left out.
fn parameters(config: &AugmentationConfig) -> String {
    fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (key, value) in table {
            let key = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(t) => flatten(&key, t, out),
                _ if key == "method" => {}
                v => out.push(format!("{key} = {v}")),
            }
        }
    }
    let table = toml::Table::try_from(config).expect("an augmentation config serialises");
    let mut pairs = Vec::new();
    flatten("", &table, &mut pairs);
    pairs.join(", ")
}

/// What the outlines mean, for the regions this batch has, and how to read the label.
fn legend(records: &[SampleRecord]) -> (Vec<String>, Vec<([u8; 3], String)>) {
    let mut notes = Vec::new();
    let mut colours = Vec::new();
    let mut entry = |colour, text: &str| colours.push((colour, text.to_string()));
    if let Some(first) = records.first() {
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

/// Writes `img` as a maximally compressed PNG.
fn save_png(img: &Rgb, path: &Path) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    PngEncoder::new_with_quality(
        std::io::BufWriter::new(file),
        CompressionType::Best,
        FilterType::Adaptive,
    )
    .write_image(
        &img.data,
        img.width as u32,
        img.height as u32,
        image::ExtendedColorType::Rgb8,
    )
    .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests;
