//! `cargo xtask data <command>`: get the embedded default data set and check data sets on disk.
//!
//! - `data fashion-mnist [--dir datasets/fashion-mnist]`: make Fashion-MNIST available in that
//!   folder (Debian package, else `apt-get download`, else instructions) and verify it.
//! - `data check <format> <path> [--split train|test] [--decode-all]`: open a data set from its
//!   original files, as training would, and report what it holds; `--decode-all` decodes every
//!   image and lists the files that fail (worth doing once on a fresh ImageNet copy).

mod fetch;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use sal_train::data::{
    DatasetConfig, DatasetKind, FashionMnist, ImageDataset, OpenedDataset, Split,
};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum Data {
    /// Make Fashion-MNIST available in a folder and verify it (60,000 / 10,000 images).
    FashionMnist {
        /// The folder [default: <workspace>/datasets/fashion-mnist].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Open a data set from its original files, as training does, and report counts, classes
    /// and image size.
    Check {
        /// The on-disk format (the config's `dataset.name`).
        #[arg(value_enum)]
        format: DatasetKind,
        /// The data set's folder (see datasets/README.md for each layout; image folders:
        /// the folder holding train/ and val/).
        path: PathBuf,
        /// Which split to read.
        #[arg(long, value_enum, default_value_t = Split::Train)]
        split: Split,
        /// Decode every image and list the ones that fail.
        #[arg(long)]
        decode_all: bool,
    },
}

pub fn run(command: Data) -> Result<()> {
    match command {
        Data::FashionMnist { dir } => {
            let dir = dir
                .unwrap_or_else(|| crate::pyenv::workspace_root().join("datasets/fashion-mnist"));
            fetch_fashion_mnist(&dir)
        }
        Data::Check {
            format,
            path,
            split,
            decode_all,
        } => check(format, &path, split, decode_all),
    }
}

/// Fetches the data set a config names when the library cannot find it and the CLI knows how
/// to get it (Fashion-MNIST, the embedded default); other data sets are the user's to provide.
pub fn ensure_available(config: &DatasetConfig) -> Result<()> {
    let dir = config.path();
    if config.name == DatasetKind::FashionMnist && !FashionMnist::has_files(&dir) {
        fetch_fashion_mnist(&dir)?;
    }
    Ok(())
}

fn fetch_fashion_mnist(dir: &Path) -> Result<()> {
    let verified = fetch::fashion_mnist(dir, &fetch::FetchSources::default(), &mut |msg| {
        eprintln!("{msg}")
    })?;
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

fn check(format: DatasetKind, path: &Path, split: Split, decode_all: bool) -> Result<()> {
    let dataset = format
        .open(path, split)
        .with_context(|| format!("cannot open {} as {format}", path.display()))?;
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
    for line in storage_lines(&dataset) {
        println!("  {line}");
    }
    if decode_all {
        decode_every_image(&dataset)?;
    }
    Ok(())
}

/// What the reader holds: image size and class balance in memory, skipped files on disk.
fn storage_lines(dataset: &OpenedDataset) -> Vec<String> {
    match dataset {
        OpenedDataset::InMemory(images) => {
            let (h, w, c) = images.image_shape();
            let counts = images.class_counts();
            let min = counts.iter().min().copied().unwrap_or(0);
            let max = counts.iter().max().copied().unwrap_or(0);
            vec![
                format!(
                    "images {h}x{w}x{c} (held in memory: {} bytes)",
                    images.pixels().len()
                ),
                format!("images per class: {min}..={max}"),
            ]
        }
        OpenedDataset::Files(folder) => {
            let skipped = folder.skipped_files();
            let mut lines = vec![format!(
                "{} non-PNG/JPEG files skipped (decoded lazily; run with --decode-all to check \
                 every image)",
                skipped.len()
            )];
            lines.extend(
                skipped
                    .iter()
                    .take(5)
                    .map(|p| format!("  skipped: {}", p.display())),
            );
            lines
        }
    }
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
