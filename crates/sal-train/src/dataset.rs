//! The `[dataset]` table: which data set, where it lives, and the per-data-set defaults
//! (channels, classes, normalisation constants) that the rest of the config falls back to.

use crate::data::fashion_mnist::{self, FetchError};
use crate::data::{
    Cifar10, Cifar100, Cifar100Labels, DataError, FashionMnist, ImageDataset, ImageFolder,
    ImageItem, Mnist, Split,
};
use crate::transform::Normalization;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a configured data set could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// The data sets the trainer can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Zalando's Fashion-MNIST (IDX files): the embedded default, fetched automatically.
    FashionMnist,
    Mnist,
    /// CIFAR-10, original binary version (`cifar-10-batches-bin/`).
    Cifar10,
    /// CIFAR-100, original binary version (`cifar-100-binary/`), fine labels.
    Cifar100,
    /// `<path>/train/<class>/*` and `<path>/val/<class>/*` (ImageNet, Tiny-ImageNet layout).
    ImageFolder,
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
            Self::Cifar100 => "cifar100",
            Self::ImageFolder => "image-folder",
        })
    }
}

impl DatasetKind {
    /// Image channels.
    pub fn channels(self) -> usize {
        match self {
            Self::FashionMnist | Self::Mnist => 1,
            Self::Cifar10 | Self::Cifar100 | Self::ImageFolder => 3,
        }
    }

    /// Classes, when the format fixes them (an image folder's come from its sub-folders).
    pub fn num_classes(self) -> Option<usize> {
        match self {
            Self::FashionMnist | Self::Mnist | Self::Cifar10 => Some(10),
            Self::Cifar100 => Some(100),
            Self::ImageFolder => None,
        }
    }

    /// Default normalisation. CIFAR: the constants of the SaliencyMix/CutMix/Cutout code
    /// (SPEC.md §3). Fashion-MNIST and MNIST: the training set's own pixel mean and standard
    /// deviation (checked against the data by a test). Image folders: ImageNet's.
    pub fn normalization(self) -> Normalization {
        let (mean, std) = match self {
            Self::FashionMnist => (vec![0.2860], vec![0.3530]),
            Self::Mnist => (vec![0.1307], vec![0.3081]),
            Self::Cifar10 | Self::Cifar100 => (
                vec![125.3 / 255.0, 123.0 / 255.0, 113.9 / 255.0],
                vec![63.0 / 255.0, 62.1 / 255.0, 66.7 / 255.0],
            ),
            Self::ImageFolder => (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225]),
        };
        Normalization { mean, std }
    }

    /// Where the data is looked for when `dataset.path` is not given.
    pub fn default_path(self) -> PathBuf {
        PathBuf::from("datasets").join(match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar-10-batches-bin",
            Self::Cifar100 => "cifar-100-binary",
            Self::ImageFolder => "imagenet",
        })
    }
}

/// The `[dataset]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    pub name: DatasetKind,
    /// Folder of the data; defaults to [`DatasetKind::default_path`].
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Use only the first `n` training images (smoke tests, CI).
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Use only the first `n` test images.
    #[serde(default)]
    pub test_limit: Option<usize>,
}

impl DatasetConfig {
    /// The data folder.
    pub fn path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| self.name.default_path())
    }

    /// Opens one split. Fashion-MNIST is fetched first when it is missing (see
    /// [`fashion_mnist::ensure`]), so the quickstart needs no manual step.
    pub fn open(&self, split: Split) -> Result<Arc<dyn ImageDataset>, OpenError> {
        let path = self.path();
        let set: Arc<dyn ImageDataset> = match self.name {
            DatasetKind::FashionMnist => {
                let dir = if FashionMnist::open(&path, split).is_ok() {
                    path
                } else {
                    // `ensure` fills `<parent>/fashion-mnist`; a custom folder name still
                    // gets the data, under its parent.
                    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                    fashion_mnist::ensure(parent.unwrap_or(Path::new(".")))?
                };
                Arc::new(FashionMnist::open(&dir, split)?)
            }
            DatasetKind::Mnist => Arc::new(Mnist::open(&path, split)?),
            DatasetKind::Cifar10 => Arc::new(Cifar10::open(&path, split)?),
            DatasetKind::Cifar100 => Arc::new(Cifar100::open(&path, split, Cifar100Labels::Fine)?),
            DatasetKind::ImageFolder => {
                let sub = match split {
                    Split::Train => "train",
                    Split::Test => "val",
                };
                Arc::new(ImageFolder::open(&path.join(sub))?)
            }
        };
        let limit = match split {
            Split::Train => self.train_limit,
            Split::Test => self.test_limit,
        };
        Ok(match limit {
            Some(n) if n < set.len() => Arc::new(Prefix { inner: set, len: n }),
            _ => set,
        })
    }
}

/// The first `len` items of a data set.
struct Prefix {
    inner: Arc<dyn ImageDataset>,
    len: usize,
}

impl ImageDataset for Prefix {
    fn len(&self) -> usize {
        self.len
    }
    fn load(&self, index: usize) -> Result<ImageItem, DataError> {
        self.inner.load(index)
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
}

/// Mean and standard deviation of all pixel values of a data set, in [0, 1] units, per channel.
pub fn pixel_statistics(set: &dyn ImageDataset) -> Result<Normalization, DataError> {
    let first = set.load(0)?;
    let c = first.channels;
    let (mut sum, mut sum_sq, mut n) = (vec![0f64; c], vec![0f64; c], 0u64);
    for i in 0..set.len() {
        let item = set.load(i)?;
        for px in item.pixels.chunks_exact(c) {
            for ch in 0..c {
                let v = px[ch] as f64 / 255.0;
                sum[ch] += v;
                sum_sq[ch] += v * v;
            }
        }
        n += (item.pixels.len() / c) as u64;
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
    let std = sum_sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| (s / n as f64 - m * m).sqrt() as f32)
        .collect();
    Ok(Normalization {
        mean: mean.iter().map(|&m| m as f32).collect(),
        std,
    })
}
