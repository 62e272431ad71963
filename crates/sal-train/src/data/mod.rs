//! Data sets: the `[dataset]` config table ([`DatasetConfig`], [`DatasetKind::open`], the one
//! place a format is mapped to its reader) and the readers of the original on-disk formats of
//! every data set the experiments use, read without network access.
//!
//! | reader | format | data sets | storage |
//! |---|---|---|---|
//! | [`open_idx`], [`Mnist`], [`FashionMnist`] | IDX (plain or gzip) | MNIST, Fashion-MNIST | [`InMemoryImages`] |
//! | [`Cifar10`], [`Cifar100`] | CIFAR binary batches | CIFAR-10, CIFAR-100 | [`InMemoryImages`] |
//! | [`ImageFolder`], [`TinyImageNet`] | `<root>/<class>/<image>` PNG/JPEG tree | ImageNet, Tiny-ImageNet | [`ImageFolder`] (lazy decode) |
//!
//! Nothing here downloads: a missing data set is an [`OpenError`] that says how to get it
//! (`cargo xtask data fashion-mnist` fetches the embedded default; datasets/README.md covers the
//! others).
//!
//! Every reader implements [`ImageDataset`] (typed errors naming the file) and burn's
//! [`Dataset<ImageItem>`](burn::data::dataset::Dataset), so burn's data loaders and dataset
//! transforms (`ShuffledDataset`, `PartialDataset`, `MapperDataset`, ...) take them directly.
//! burn's own `MnistDataset`/`CifarDataset` download at run time and its `ImageFolderDataset`
//! lives behind burn's `vision` feature (not enabled here) and panics on an undecodable image,
//! so the formats are read here; see each reader for why its storage fits.
//!
//! Errors: a bad file (truncated, wrong magic, wrong record size, corrupt image, empty class
//! folder) is a [`DataError`] whose message starts with the file's path and says what is wrong.
//! Sizes and magic numbers are validated before a header is trusted, so a corrupt header never
//! causes a huge allocation or a panic.

mod cifar;
mod config;
mod error;
mod idx;
mod image_folder;
mod in_memory;
mod tiny_imagenet;

pub use cifar::{Cifar10, Cifar100, Cifar100Labels};
pub use config::{
    DatasetConfig, DatasetKind, OpenError, OpenedDataset, PerClass, per_class_subset,
    pixel_statistics,
};
pub use error::DataError;
pub use idx::{
    FashionMnist, Mnist, STANDARD_FILES, VerifiedFashionMnist, find_plain_or_gz, open_idx,
};
pub use image_folder::ImageFolder;
pub use in_memory::InMemoryImages;
pub use tiny_imagenet::TinyImageNet;

use burn::data::dataset::{Dataset, DatasetError};
use std::path::Path;
use std::sync::Arc;

/// One decoded image: u8 pixels in HWC order (channels 1 or 3, RGB for colour) and its class index.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageItem {
    /// `height * width * channels` bytes, row-major, channels interleaved.
    pub pixels: Vec<u8>,
    pub height: usize,
    pub width: usize,
    /// 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// Class index in `0..num_classes`.
    pub label: usize,
}

/// Which part of a data set to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

/// A labelled image data set whose items may fail to load (lazy decoding).
///
/// Every reader implements it, and every reader also implements burn's
/// [`Dataset<ImageItem>`](burn::data::dataset::Dataset), whose `get` is [`ImageDataset::load`]
/// with the [`DataError`] wrapped in burn's `DatasetError` (its `source()` is the `DataError`).
/// When both traits are in scope, call `len` as `ImageDataset::len(&ds)`.
pub trait ImageDataset: Send + Sync {
    /// Number of items.
    fn len(&self) -> usize;

    /// Whether the data set has no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes item `index`; errors name the file (an index out of range is an error too).
    fn load(&self, index: usize) -> Result<ImageItem, DataError>;

    /// The label of item `index`, without decoding the image where the set knows it.
    fn label(&self, index: usize) -> Result<usize, DataError> {
        Ok(self.load(index)?.label)
    }

    /// Number of classes (labels are `0..num_classes`).
    fn num_classes(&self) -> usize;

    /// Class names, indexed by label.
    fn class_names(&self) -> &[String];
}

/// Implements burn's `Dataset<ImageItem>` by delegating to [`ImageDataset`]. A blanket impl over
/// every `T: ImageDataset` is ruled out by the orphan rule (foreign trait, uncovered type
/// parameter), hence one impl per type.
macro_rules! impl_burn_dataset {
    ($($ty:ty),* $(,)?) => {$(
        impl Dataset<ImageItem> for $ty {
            fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
                ImageDataset::load(self, index).map_err(DatasetError::new)
            }

            fn len(&self) -> usize {
                ImageDataset::len(self)
            }
        }
    )*};
}

impl_burn_dataset!(
    InMemoryImages,
    ImageFolder,
    Box<dyn ImageDataset>,
    Arc<dyn ImageDataset>
);

/// Boxed and shared data sets are data sets too.
macro_rules! forward_image_dataset {
    ($($pointer:ident),*) => {$(
        impl<T: ImageDataset + ?Sized> ImageDataset for $pointer<T> {
            fn len(&self) -> usize {
                (**self).len()
            }

            fn load(&self, index: usize) -> Result<ImageItem, DataError> {
                (**self).load(index)
            }

            fn num_classes(&self) -> usize {
                (**self).num_classes()
            }

            fn class_names(&self) -> &[String] {
                (**self).class_names()
            }
        }
    )*};
}

forward_image_dataset!(Box, Arc);

/// Opens `path` for reading, mapping "not found" to [`DataError::Missing`] with `what` saying
/// what the file should have been.
pub(crate) fn open_file(path: &Path, what: &str) -> Result<std::fs::File, DataError> {
    std::fs::File::open(path).map_err(|source| DataError::from_io(path, what, source))
}

/// The repository's reference data, `tests/fixtures/` (see its README).
#[cfg(test)]
pub(crate) fn fixtures_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Fashion-MNIST for the tests that need all of it: the repository's `datasets/fashion-mnist`
/// or the Debian package's folder.
#[cfg(test)]
pub(crate) fn fashion_mnist_dir() -> std::path::PathBuf {
    FashionMnist::locate(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fashion-mnist"),
    )
    .expect("Fashion-MNIST: install the Debian package dataset-fashion-mnist")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> InMemoryImages {
        InMemoryImages::from_parts(
            "tiny".into(),
            vec![1, 2, 3, 4, 5, 6, 7, 8],
            vec![0, 1],
            2,
            2,
            1,
            vec!["a".into(), "b".into()],
        )
        .unwrap()
    }

    #[test]
    fn burn_dataset_get_wraps_the_typed_error() {
        let ds = tiny();
        let item = Dataset::get(&ds, 1).unwrap();
        assert_eq!(item.pixels, vec![5, 6, 7, 8]);
        let err = Dataset::get(&ds, 2).unwrap_err();
        let inner = std::error::Error::source(&err)
            .and_then(|e| e.downcast_ref::<DataError>())
            .expect("the DataError is the source");
        assert!(matches!(
            inner,
            DataError::IndexOutOfRange {
                index: 2,
                len: 2,
                ..
            }
        ));
        assert!(err.to_string().starts_with("tiny: "), "{err}");
    }

    #[test]
    fn trait_objects_are_burn_datasets() {
        let boxed: Box<dyn ImageDataset> = Box::new(tiny());
        assert_eq!(Dataset::len(&boxed), 2);
        assert_eq!(Dataset::get(&boxed, 0).unwrap().label, 0);
        let shared: Arc<dyn ImageDataset> = Arc::new(tiny());
        assert_eq!(Dataset::get(&shared, 1).unwrap().label, 1);
        assert_eq!(shared.class_names(), ["a", "b"]);
    }

    #[test]
    fn split_serialises_lowercase() {
        assert_eq!(serde_json::to_string(&Split::Train).unwrap(), "\"train\"");
        assert_eq!(
            serde_json::from_str::<Split>("\"test\"").unwrap(),
            Split::Test
        );
    }
}
