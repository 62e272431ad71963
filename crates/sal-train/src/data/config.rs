//! The `[dataset]` table: which data set, where it lives, and the per-data-set facts (channels,
//! classes, normalisation) the rest of the config falls back to. [`DatasetKind::open`] is the one
//! place that maps a format to its reader.

use super::{
    Cifar10, Cifar100, Cifar100Labels, DataError, FashionMnist, ImageDataset, ImageFolder,
    ImageItem, InMemoryImages, Mnist, Split, TinyImageNet,
};
use crate::transform::Normalization;
use sal_core::KnownNormalization;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A configured data set that could not be opened: the reader's error (naming the file) and how
/// to get the data.
#[derive(Debug)]
pub struct OpenError {
    pub kind: DatasetKind,
    pub dir: PathBuf,
    pub error: DataError,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n{}", self.error, self.kind.how_to_get(&self.dir))
    }
}

impl std::error::Error for OpenError {}

/// The data sets the trainer can read, by their on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Zalando's Fashion-MNIST (IDX files): the embedded default, fetched automatically.
    FashionMnist,
    Mnist,
    /// CIFAR-10, original binary version (`cifar-10-batches-bin/`).
    Cifar10,
    /// CIFAR-100, original binary version (`cifar-100-binary/`), the 100 fine labels.
    Cifar100,
    /// CIFAR-100 with its 20 coarse (superclass) labels.
    Cifar100Coarse,
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
            Self::Cifar100Coarse => "cifar100-coarse",
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
            Self::Cifar10
            | Self::Cifar100
            | Self::Cifar100Coarse
            | Self::TinyImagenet
            | Self::ImageFolder => 3,
        }
    }

    /// Classes, when the format fixes them (an image folder's come from its sub-folders).
    pub fn num_classes(self) -> Option<usize> {
        match self {
            Self::FashionMnist | Self::Mnist | Self::Cifar10 => Some(10),
            Self::Cifar100 => Some(100),
            Self::Cifar100Coarse => Some(20),
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
            Self::Cifar10 | Self::Cifar100 | Self::Cifar100Coarse => KnownNormalization::Cifar,
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
            Self::Cifar100 | Self::Cifar100Coarse => "cifar-100-binary",
            Self::TinyImagenet => "tiny-imagenet-200",
            Self::ImageFolder => "imagenet",
        })
    }

    /// Opens one split from `dir`, the data set's folder (image folders: `dir/train` and
    /// `dir/val`).
    pub fn open(self, dir: &Path, split: Split) -> Result<OpenedDataset, DataError> {
        Ok(match self {
            Self::FashionMnist => OpenedDataset::InMemory(FashionMnist::open(dir, split)?),
            Self::Mnist => OpenedDataset::InMemory(Mnist::open(dir, split)?),
            Self::Cifar10 => OpenedDataset::InMemory(Cifar10::open(dir, split)?),
            Self::Cifar100 => {
                OpenedDataset::InMemory(Cifar100::open(dir, split, Cifar100Labels::Fine)?)
            }
            Self::Cifar100Coarse => {
                OpenedDataset::InMemory(Cifar100::open(dir, split, Cifar100Labels::Coarse)?)
            }
            Self::TinyImagenet => OpenedDataset::Files(TinyImageNet::open(dir, split)?),
            Self::ImageFolder => {
                let sub = match split {
                    Split::Train => "train",
                    Split::Test => "val",
                };
                OpenedDataset::Files(ImageFolder::open(&dir.join(sub))?)
            }
        })
    }

    /// How a user gets this data set into `dir`: the command that fetches it, or where its
    /// layout is described.
    pub fn how_to_get(self, dir: &Path) -> String {
        match self {
            Self::FashionMnist => format!(
                "Fetch it with `cargo xtask data fashion-mnist --dir {}` (it copies the Debian \
                 package {}, or downloads that package), or see datasets/README.md.",
                dir.display(),
                FashionMnist::DEBIAN_PACKAGE
            ),
            _ => format!(
                "datasets/README.md says how to get {self} and the layout {} must have.",
                dir.display()
            ),
        }
    }
}

/// A data set as its reader stores it: decoded in memory (IDX, CIFAR) or decoded per item from
/// image files (image folders, Tiny-ImageNet).
pub enum OpenedDataset {
    InMemory(InMemoryImages),
    Files(ImageFolder),
}

impl OpenedDataset {
    fn inner(&self) -> &dyn ImageDataset {
        match self {
            Self::InMemory(d) => d,
            Self::Files(d) => d,
        }
    }
}

impl ImageDataset for OpenedDataset {
    fn len(&self) -> usize {
        self.inner().len()
    }
    fn load(&self, index: usize) -> Result<ImageItem, DataError> {
        self.inner().load(index)
    }
    fn num_classes(&self) -> usize {
        self.inner().num_classes()
    }
    fn class_names(&self) -> &[String] {
        self.inner().class_names()
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

    /// Opens one split, limited to the configured prefix. A missing or broken data set is an
    /// [`OpenError`] that says how to get it; nothing is fetched here (`cargo xtask data`
    /// fetches).
    pub fn open(&self, split: Split) -> Result<Arc<dyn ImageDataset>, OpenError> {
        let dir = self.path();
        let set: Arc<dyn ImageDataset> =
            Arc::new(self.name.open(&dir, split).map_err(|error| OpenError {
                kind: self.name,
                dir: dir.clone(),
                error,
            })?);
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

    use crate::data::{fashion_mnist_dir, fixtures_dir};

    #[test]
    fn fashion_mnist_normalization_is_the_training_sets_own_statistics() {
        let config = DatasetConfig {
            name: DatasetKind::FashionMnist,
            path: Some(fashion_mnist_dir()),
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
            path: Some(fixtures_dir().join("cifar/cifar-10-batches-bin")),
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
        assert!(message.contains("datasets/README.md"), "{message}");
    }

    #[test]
    fn a_missing_default_data_set_says_which_command_fetches_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fashion-mnist");
        let config = DatasetConfig {
            name: DatasetKind::FashionMnist,
            path: Some(dir.clone()),
            train_limit: None,
            test_limit: None,
        };
        let message = config
            .open(Split::Train)
            .err()
            .expect("no files")
            .to_string();
        assert!(message.contains("train-images-idx3-ubyte"), "{message}");
        assert!(
            message.contains(&format!(
                "cargo xtask data fashion-mnist --dir {}",
                dir.display()
            )),
            "{message}"
        );
        assert!(!dir.exists(), "opening fetches nothing");
    }

    #[test]
    fn every_kind_opens_its_fixture_through_the_one_dispatch() {
        let fixtures = fixtures_dir();
        for (kind, dir, split, len, classes) in [
            (
                DatasetKind::Cifar10,
                "cifar/cifar-10-batches-bin",
                Split::Test,
                10,
                10,
            ),
            (
                DatasetKind::Cifar100,
                "cifar/cifar-100-binary",
                Split::Test,
                10,
                100,
            ),
            (
                DatasetKind::Cifar100Coarse,
                "cifar/cifar-100-binary",
                Split::Test,
                10,
                20,
            ),
            (DatasetKind::ImageFolder, "imagefolder", Split::Test, 3, 3),
            (DatasetKind::ImageFolder, "imagefolder", Split::Train, 7, 6),
        ] {
            let set = kind.open(&fixtures.join(dir), split).unwrap();
            assert_eq!((set.len(), set.num_classes()), (len, classes), "{kind}");
            assert_eq!(kind.num_classes().unwrap_or(classes), classes, "{kind}");
            assert_eq!(set.load(0).unwrap().channels, kind.channels(), "{kind}");
        }
    }
}
