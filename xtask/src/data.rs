//! `cargo xtask data <command>`: get the embedded default data set and check data sets on disk.
//!
//! - `data fashion-mnist [--dir datasets]`: make Fashion-MNIST available under
//!   `<dir>/fashion-mnist` (Debian package, else `apt-get download`, else instructions) and
//!   verify it.
//! - `data check <format> <path> [--split train|test] [--decode-all]`: open a data set from its
//!   original files and report what it holds; `--decode-all` decodes every image and lists the
//!   files that fail (worth doing once on a fresh ImageNet copy).

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sal_train::data::{
    Cifar10, Cifar100, Cifar100Labels, FashionMnist, ImageDataset, ImageFolder, Mnist, Split,
    TinyImageNet, fashion_mnist,
};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Data {
    /// Make Fashion-MNIST available under <dir>/fashion-mnist and verify it (60,000 / 10,000).
    FashionMnist {
        /// The datasets folder [default: <workspace>/datasets].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Open a data set from its original files and report counts, classes and image size.
    Check {
        /// The on-disk format.
        #[arg(value_enum)]
        format: Format,
        /// The data set's folder (see datasets/README.md for each layout).
        path: PathBuf,
        /// Which split to read (image folders: ignored, give the split's folder as the path).
        #[arg(long, value_enum, default_value_t = SplitArg::Train)]
        split: SplitArg,
        /// Decode every image and list the ones that fail.
        #[arg(long)]
        decode_all: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Mnist,
    FashionMnist,
    Cifar10,
    /// CIFAR-100 with the 100 fine labels.
    Cifar100,
    /// CIFAR-100 with the 20 coarse labels.
    Cifar100Coarse,
    /// `<root>/<class>/<image>` (ImageNet train or val after the usual reorganisation).
    ImageFolder,
    /// tiny-imagenet-200 as shipped (`--split test` reads its labelled val folder).
    TinyImagenet,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SplitArg {
    Train,
    Test,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Train => Split::Train,
            SplitArg::Test => Split::Test,
        }
    }
}

pub fn run(command: Data) -> Result<()> {
    match command {
        Data::FashionMnist { dir } => fetch_fashion_mnist(dir),
        Data::Check {
            format,
            path,
            split,
            decode_all,
        } => check(format, path, split.into(), decode_all),
    }
}

fn fetch_fashion_mnist(dir: Option<PathBuf>) -> Result<()> {
    let datasets = dir.unwrap_or_else(|| crate::pyenv::workspace_root().join("datasets"));
    let verified = fashion_mnist::ensure_with(
        &datasets,
        &fashion_mnist::FetchSources::default(),
        &mut |msg| eprintln!("{msg}"),
    )?;
    let classes = FashionMnist::CLASS_NAMES.len();
    println!("Fashion-MNIST: {}", verified.dir.display());
    println!(
        "  verified: {} train / {} test images, 28x28 gray, {classes} classes ({} / {} per class)",
        verified.train,
        verified.test,
        verified.train / classes,
        verified.test / classes
    );
    Ok(())
}

fn check(format: Format, path: PathBuf, split: Split, decode_all: bool) -> Result<()> {
    let context = || format!("cannot open {}", path.display());
    let (dataset, extra): (Box<dyn ImageDataset>, Vec<String>) = match format {
        Format::Mnist => in_memory(Mnist::open(&path, split).with_context(context)?),
        Format::FashionMnist => in_memory(FashionMnist::open(&path, split).with_context(context)?),
        Format::Cifar10 => in_memory(Cifar10::open(&path, split).with_context(context)?),
        Format::Cifar100 => {
            in_memory(Cifar100::open(&path, split, Cifar100Labels::Fine).with_context(context)?)
        }
        Format::Cifar100Coarse => {
            in_memory(Cifar100::open(&path, split, Cifar100Labels::Coarse).with_context(context)?)
        }
        Format::ImageFolder => folder(ImageFolder::open(&path).with_context(context)?),
        Format::TinyImagenet => folder(TinyImageNet::open(&path, split).with_context(context)?),
    };
    let names = dataset.class_names();
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let more = if names.len() > shown.len() {
        ", ..."
    } else {
        ""
    };
    println!("{}: {} images", path.display(), dataset.len());
    println!(
        "  {} classes: {}{more}",
        dataset.num_classes(),
        shown.join(", ")
    );
    for line in extra {
        println!("  {line}");
    }
    if decode_all {
        decode_every_image(dataset.as_ref())?;
    }
    Ok(())
}

fn in_memory(images: sal_train::data::InMemoryImages) -> (Box<dyn ImageDataset>, Vec<String>) {
    let (h, w, c) = images.image_shape();
    let counts = images.class_counts();
    let min = counts.iter().min().copied().unwrap_or(0);
    let max = counts.iter().max().copied().unwrap_or(0);
    let extra = vec![
        format!(
            "images {h}x{w}x{c} (held in memory: {} bytes)",
            images.pixels().len()
        ),
        format!("images per class: {min}..={max}"),
    ];
    (Box::new(images), extra)
}

fn folder(folder: ImageFolder) -> (Box<dyn ImageDataset>, Vec<String>) {
    let skipped = folder.skipped_files();
    let mut extra = vec![format!(
        "{} non-PNG/JPEG files skipped (decoded lazily; run with --decode-all to check every image)",
        skipped.len()
    )];
    extra.extend(
        skipped
            .iter()
            .take(5)
            .map(|p| format!("  skipped: {}", p.display())),
    );
    (Box::new(folder), extra)
}

fn decode_every_image(dataset: &dyn ImageDataset) -> Result<()> {
    let bar = ProgressBar::new(dataset.len() as u64).with_style(
        ProgressStyle::with_template("decoding {bar:40} {pos}/{len} ({eta})")
            .expect("a valid template"),
    );
    let mut failures = Vec::new();
    for index in 0..dataset.len() {
        if let Err(e) = dataset.load(index) {
            bar.println(format!("  {e}"));
            failures.push(e);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !failures.is_empty() {
        bail!(
            "{} of {} images failed to decode (listed above)",
            failures.len(),
            dataset.len()
        );
    }
    println!("  all {} images decode", dataset.len());
    Ok(())
}
