//! The `[dataset]` table: which data set, where it lives, and the per-data-set defaults
//! (channels, classes, normalisation constants) that the rest of the config falls back to.

use crate::data::fashion_mnist::{self, FetchError};
use crate::data::{
    Cifar10, Cifar100, Cifar100Labels, DataError, FashionMnist, ImageDataset, ImageFolder,
    ImageItem, Mnist, Split, TinyImageNet,
};
use crate::transform::Normalization;
use sal_core::KnownNormalization;
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
    /// Tiny-ImageNet as distributed (`tiny-imagenet-200/`: `train/<wnid>/images/`, `val/`
    /// with `val_annotations.txt`), 64x64, 200 classes.
    TinyImagenet,
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
            Self::TinyImagenet => "tiny-imagenet",
            Self::ImageFolder => "image-folder",
        })
    }
}

impl DatasetKind {
    /// Image channels.
    pub fn channels(self) -> usize {
        match self {
            Self::FashionMnist | Self::Mnist => 1,
            Self::Cifar10 | Self::Cifar100 | Self::TinyImagenet | Self::ImageFolder => 3,
        }
    }

    /// Classes, when the format fixes them (an image folder's come from its sub-folders).
    pub fn num_classes(self) -> Option<usize> {
        match self {
            Self::FashionMnist | Self::Mnist | Self::Cifar10 => Some(10),
            Self::Cifar100 => Some(100),
            Self::TinyImagenet => Some(200),
            Self::ImageFolder => None,
        }
    }

    /// Default normalisation: CIFAR's constants of the SaliencyMix/CutMix/Cutout code for
    /// CIFAR, ImageNet's (the torchvision constants the Tiny-ImageNet recipes use) for
    /// Tiny-ImageNet and image folders, and each MNIST-like set's own pixel statistics (checked
    /// against the data by a test).
    pub fn normalization(self) -> Normalization {
        match self {
            Self::FashionMnist => KnownNormalization::FashionMnist,
            Self::Mnist => KnownNormalization::Mnist,
            Self::Cifar10 | Self::Cifar100 => KnownNormalization::Cifar,
            Self::TinyImagenet | Self::ImageFolder => KnownNormalization::Imagenet,
        }
        .normalization()
    }

    /// Where the data is looked for when `dataset.path` is not given.
    pub fn default_path(self) -> PathBuf {
        PathBuf::from("datasets").join(match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar-10-batches-bin",
            Self::Cifar100 => "cifar-100-binary",
            Self::TinyImagenet => "tiny-imagenet-200",
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
            DatasetKind::TinyImagenet => Arc::new(TinyImageNet::open(&path, split)?),
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
        .map(|(s, m)| (s / n as f64 - m * m).sqrt())
        .collect();
    Ok(Normalization { mean, std })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn fashion_mnist_normalization_is_the_training_sets_own_statistics() {
        let config = DatasetConfig {
            name: DatasetKind::FashionMnist,
            path: Some(repo().join("datasets/fashion-mnist")),
            train_limit: None,
            test_limit: None,
        };
        let train = config.open(Split::Train).unwrap();
        assert_eq!(train.len(), 60_000);
        let measured = pixel_statistics(train.as_ref()).unwrap();
        let default = DatasetKind::FashionMnist.normalization();
        // Measured: mean 0.28604, std 0.35302.
        assert!(
            (measured.mean[0] - default.mean[0]).abs() < 1e-4,
            "{measured:?}"
        );
        assert!(
            (measured.std[0] - default.std[0]).abs() < 1e-4,
            "{measured:?}"
        );
    }

    #[test]
    fn limits_take_a_prefix_and_the_cifar_fixture_opens_through_the_config() {
        let config = DatasetConfig {
            name: DatasetKind::Cifar10,
            path: Some(repo().join("tests/fixtures/cifar/cifar-10-batches-bin")),
            train_limit: None,
            test_limit: Some(4),
        };
        let test = config.open(Split::Test).unwrap();
        assert_eq!(test.len(), 4);
        let labels: Vec<usize> = (0..4).map(|i| test.load(i).unwrap().label).collect();
        assert_eq!(labels, [3, 8, 8, 0]);
        // The fixture has no training batches: the error names the missing file.
        let message = config
            .open(Split::Train)
            .err()
            .expect("no training files")
            .to_string();
        assert!(message.contains("data_batch_1.bin"), "{message}");
    }
}
