//! The `[dataset]` table: which data set, where it lives, and the per-data-set facts (channels,
//! classes, normalisation) the rest of the config falls back to. [`DatasetKind::open`] is the one
//! place that maps a format to its reader.

use super::{
    Cifar10, Cifar100, Cifar100Labels, DataError, FashionMnist, ImageDataset, ImageFolder,
    ImageItem, InMemoryImages, Mnist, Split, TinyImageNet,
};
use crate::transform::Normalization;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use sal_core::KnownNormalization;
use sal_core::seed::{Stream, derive_seed};
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
    fn label(&self, index: usize) -> Result<usize, DataError> {
        self.inner().label(index)
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
    /// Train on this fraction of each class (data scarcity, Saliency Grafting Table 5: 0.5,
    /// 0.2, 0.1), a seeded, stratified subset of the training split (`subset_seed`).
    #[serde(default)]
    pub per_class_fraction: Option<f64>,
    /// Train on this many images of each class (all of a smaller class); the same subset rule.
    #[serde(default)]
    pub per_class: Option<usize>,
    /// Seed of the per-class subset. Default 0: every run of a study, whatever its `seed`,
    /// trains on the same images.
    #[serde(default)]
    pub subset_seed: u64,
}

/// How many images of each class the training subset keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PerClass {
    /// `round(fraction * class size)`, at least 1.
    Fraction(f64),
    /// `min(n, class size)`.
    Count(usize),
}

impl PerClass {
    fn of(self, class_size: usize) -> usize {
        match self {
            Self::Fraction(f) => ((f * class_size as f64).round() as usize).clamp(1, class_size),
            Self::Count(n) => n.min(class_size),
        }
    }
}

impl DatasetConfig {
    /// `name` at its default path, every image of both splits.
    pub fn new(name: DatasetKind) -> Self {
        Self {
            name,
            path: None,
            train_limit: None,
            test_limit: None,
            per_class_fraction: None,
            per_class: None,
            subset_seed: 0,
        }
    }

    /// The data folder.
    pub fn path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| self.name.default_path())
    }

    /// The per-class subset rule, if one is set (`config.rs` rejects both at once).
    pub fn per_class(&self) -> Option<PerClass> {
        self.per_class_fraction
            .map(PerClass::Fraction)
            .or(self.per_class.map(PerClass::Count))
    }

    /// Opens one split: for training, the per-class subset if one is set; then the configured
    /// prefix. A missing or broken data set is an [`OpenError`] that says how to get it;
    /// nothing is fetched here (`cargo xtask data` fetches).
    pub fn open(&self, split: Split) -> Result<Arc<dyn ImageDataset>, OpenError> {
        let dir = self.path();
        let failed = |error| OpenError {
            kind: self.name,
            dir: dir.clone(),
            error,
        };
        let mut set: Arc<dyn ImageDataset> = Arc::new(self.name.open(&dir, split).map_err(failed)?);
        if let (Split::Train, Some(rule)) = (split, self.per_class()) {
            let indices = per_class_subset(set.as_ref(), rule, self.subset_seed).map_err(failed)?;
            set = Arc::new(Subset {
                inner: set,
                indices,
            });
        }
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
    fn label(&self, index: usize) -> Result<usize, DataError> {
        self.inner.label(index)
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
}

/// The indices of a stratified subset of `set`: per class, `rule` of its images, drawn
/// without replacement from the stream `(seed, Subset)`, returned in the set's order.
pub fn per_class_subset(
    set: &dyn ImageDataset,
    rule: PerClass,
    seed: u64,
) -> Result<Vec<usize>, DataError> {
    let mut by_class = vec![Vec::new(); set.num_classes()];
    for index in 0..set.len() {
        let label = set.label(index)?;
        // Labels were range-checked when the set was read.
        by_class[label].push(index);
    }
    let mut kept = Vec::new();
    for (class, mut indices) in by_class.into_iter().enumerate() {
        if indices.is_empty() {
            continue;
        }
        let mut rng = StdRng::seed_from_u64(derive_seed(seed, Stream::Subset, &[class as u64]));
        let k = rule.of(indices.len());
        indices.shuffle(&mut rng);
        kept.extend_from_slice(&indices[..k]);
    }
    kept.sort_unstable();
    Ok(kept)
}

/// The items of a data set at `indices`.
struct Subset {
    inner: Arc<dyn ImageDataset>,
    indices: Vec<usize>,
}

impl Subset {
    fn index(&self, index: usize) -> Result<usize, DataError> {
        self.indices
            .get(index)
            .copied()
            .ok_or(DataError::IndexOutOfRange {
                path: PathBuf::from("(per-class subset)"),
                index,
                len: self.indices.len(),
            })
    }
}

impl ImageDataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn load(&self, index: usize) -> Result<ImageItem, DataError> {
        self.inner.load(self.index(index)?)
    }
    fn label(&self, index: usize) -> Result<usize, DataError> {
        self.inner.label(self.index(index)?)
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
            ..DatasetConfig::new(DatasetKind::FashionMnist)
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
    fn per_class_subsets_are_stratified_seeded_and_training_only() {
        let config = |rule: &str, seed: u64| -> DatasetConfig {
            let text = format!(
                "name = \"fashion-mnist\"\npath = \"{}\"\nsubset_seed = {seed}\n{rule}",
                fashion_mnist_dir().display()
            );
            toml::from_str(&text).unwrap()
        };
        let counts = |set: &dyn ImageDataset| {
            let mut counts = vec![0usize; set.num_classes()];
            for i in 0..set.len() {
                counts[set.label(i).unwrap()] += 1;
            }
            counts
        };
        let labels_and_pixels = |set: &dyn ImageDataset| -> Vec<(usize, Vec<u8>)> {
            (0..set.len())
                .step_by(97)
                .map(|i| {
                    let item = set.load(i).unwrap();
                    (item.label, item.pixels)
                })
                .collect()
        };
        // Fashion-MNIST has 6,000 training images per class: 10 % keeps 600 of each.
        let tenth = config("per_class_fraction = 0.1", 0);
        let train = tenth.open(Split::Train).unwrap();
        assert_eq!(train.len(), 6_000);
        assert_eq!(counts(train.as_ref()), vec![600; 10]);
        let again = tenth.open(Split::Train).unwrap();
        assert_eq!(
            labels_and_pixels(train.as_ref()),
            labels_and_pixels(again.as_ref())
        );
        let other = config("per_class_fraction = 0.1", 1)
            .open(Split::Train)
            .unwrap();
        assert_ne!(
            labels_and_pixels(train.as_ref()),
            labels_and_pixels(other.as_ref()),
            "another subset_seed, another subset"
        );
        assert_eq!(tenth.open(Split::Test).unwrap().len(), 10_000);
        let twenty = config("per_class = 20\ntrain_limit = 150", 0);
        let train = twenty.open(Split::Train).unwrap();
        assert_eq!(train.len(), 150, "train_limit takes a prefix of the subset");
        let full = config("per_class = 20", 0).open(Split::Train).unwrap();
        assert_eq!(counts(full.as_ref()), vec![20; 10]);
        // Fraction 1 keeps every image, in the data set's order.
        let all = config("per_class_fraction = 1.0", 0)
            .open(Split::Train)
            .unwrap();
        assert_eq!(all.len(), 60_000);
        assert_eq!(all.label(59_999).unwrap(), {
            let plain = config("", 0).open(Split::Train).unwrap();
            plain.label(59_999).unwrap()
        });
    }

    #[test]
    fn limits_take_a_prefix_and_the_cifar_fixture_opens_through_the_config() {
        let config = DatasetConfig {
            name: DatasetKind::Cifar10,
            path: Some(fixtures_dir().join("cifar/cifar-10-batches-bin")),
            train_limit: None,
            test_limit: Some(4),
            ..DatasetConfig::new(DatasetKind::Cifar10)
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
            ..DatasetConfig::new(DatasetKind::FashionMnist)
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
