//! The one error type of the dataset readers: every variant names the file and the problem.

use std::path::{Path, PathBuf};

/// Why a data set, or one of its files, could not be read. The message starts with the path and
/// is complete on its own (the underlying I/O or decoder error is part of it, not a separate
/// `source()`), because burn's `DatasetError` and the trainer's logs show only `Display`.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder the format requires does not exist.
    #[error("{}: not found ({what})", path.display())]
    Missing { path: PathBuf, what: String },

    /// The operating system refused a read (permissions, I/O error, not a directory, ...).
    #[error("{}: cannot read: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    /// The file starts like gzip but its stream is corrupt.
    #[error("{}: corrupt gzip stream: {error}", path.display())]
    Gzip {
        path: PathBuf,
        error: std::io::Error,
    },

    /// The first bytes are not the format's magic number.
    #[error(
        "{}: wrong magic number 0x{found:08x}, expected 0x{expected:08x} ({what})",
        path.display()
    )]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },

    /// The file ends before the data its header promises.
    #[error(
        "{}: truncated: {expected} bytes expected (per the header), only {actual} present",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    /// The file holds more data than its header promises.
    #[error(
        "{}: {actual} bytes where the header promises {expected}: unexpected trailing data",
        path.display()
    )]
    TrailingData {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    /// A record file whose length is not a positive multiple of the record size.
    #[error(
        "{}: {len} bytes is not a positive multiple of the {record_bytes}-byte record ({what}): \
         truncated or not this format",
        path.display()
    )]
    RecordSize {
        path: PathBuf,
        len: u64,
        record_bytes: usize,
        what: &'static str,
    },

    /// A label outside `0..num_classes`.
    #[error(
        "{}: item {index} has label {label}, but the data set has {num_classes} classes",
        path.display()
    )]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: usize,
        num_classes: usize,
    },

    /// An image file and its label file disagree on the number of items.
    #[error(
        "{} holds {n_images} images but {} holds {n_labels} labels",
        images.display(),
        labels.display()
    )]
    CountMismatch {
        images: PathBuf,
        labels: PathBuf,
        n_images: usize,
        n_labels: usize,
    },

    /// An image-folder root without class folders.
    #[error("{}: no class folders (expected <root>/<class>/<image>.png|jpg|jpeg)", path.display())]
    NoClasses { path: PathBuf },

    /// A class folder without a PNG or JPEG image (torchvision's ImageFolder rejects it too).
    #[error("{}: class folder holds no .png, .jpg or .jpeg image", path.display())]
    EmptyClass { path: PathBuf },

    /// The image decoder rejected the file.
    #[error("{}: cannot decode image: {error}", path.display())]
    Decode {
        path: PathBuf,
        error: image::ImageError,
    },

    /// The image is structurally broken in a way the (lenient) decoder would paper over.
    #[error("{}: corrupt image: {problem}", path.display())]
    CorruptImage { path: PathBuf, problem: String },

    /// Anything else that makes the file unusable (bad header fields, inconsistent sizes, ...).
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },

    /// `load(index)` with `index >= len`.
    #[error("{}: index {index} out of range for {len} items", path.display())]
    IndexOutOfRange {
        path: PathBuf,
        index: usize,
        len: usize,
    },
}

impl DataError {
    /// Maps an I/O error on `path`: "not found" becomes [`DataError::Missing`] (with `what`
    /// saying what the path should have been), anything else [`DataError::Io`].
    pub(crate) fn from_io(path: &Path, what: &str, error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.to_path_buf(),
                what: what.to_string(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                error,
            }
        }
    }

    pub(crate) fn invalid(path: &Path, problem: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    /// The file (or folder) the error is about; for [`DataError::CountMismatch`] the image file.
    pub fn path(&self) -> &Path {
        match self {
            DataError::Missing { path, .. }
            | DataError::Io { path, .. }
            | DataError::Gzip { path, .. }
            | DataError::BadMagic { path, .. }
            | DataError::Truncated { path, .. }
            | DataError::TrailingData { path, .. }
            | DataError::RecordSize { path, .. }
            | DataError::LabelOutOfRange { path, .. }
            | DataError::NoClasses { path }
            | DataError::EmptyClass { path }
            | DataError::Decode { path, .. }
            | DataError::CorruptImage { path, .. }
            | DataError::Invalid { path, .. }
            | DataError::IndexOutOfRange { path, .. } => path,
            DataError::CountMismatch { images, .. } => images,
        }
    }
}
