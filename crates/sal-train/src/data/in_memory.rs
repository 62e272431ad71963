//! [`InMemoryImages`]: a whole data set of equally sized images in one contiguous buffer.

use super::{DataError, ImageDataset, ImageItem};
use std::path::{Path, PathBuf};

/// Equally sized u8 images stored back to back in ONE buffer (HWC per image), plus one label byte
/// per image. The IDX and CIFAR readers produce it.
///
/// Why not burn's `InMemDataset<ImageItem>`: that is a `Vec` of items, i.e. one heap allocation
/// per image (60,000 for Fashion-MNIST, 50,000 for CIFAR-10) each with its own header and
/// allocator slack, scattered in memory. Here the file's bytes go into a single allocation (read
/// once, no per-image allocation while loading), a batcher can borrow an image as a slice
/// ([`InMemoryImages::image`]) without cloning, and the labels are a separate dense array
/// ([`InMemoryImages::labels`]) that can be scanned without touching the pixels. `InMemDataset`
/// would add nothing but the indirection; burn's `Dataset` trait is implemented directly.
#[derive(Clone, Debug, PartialEq)]
pub struct InMemoryImages {
    /// The file (or folder) the images came from, named in errors.
    source: PathBuf,
    pixels: Vec<u8>,
    labels: Vec<u8>,
    height: usize,
    width: usize,
    channels: usize,
    class_names: Vec<String>,
}

impl InMemoryImages {
    /// Builds the set from its parts, checking that `pixels` holds exactly
    /// `labels.len() * height * width * channels` bytes, that `channels` is 1 or 3 and that
    /// every label is below `class_names.len()`. `source` is what errors will name.
    pub fn from_parts(
        source: PathBuf,
        pixels: Vec<u8>,
        labels: Vec<u8>,
        height: usize,
        width: usize,
        channels: usize,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        if channels != 1 && channels != 3 {
            return Err(DataError::invalid(
                &source,
                format!("{channels} channels: only 1 (gray) or 3 (RGB) are supported"),
            ));
        }
        let expected = height
            .checked_mul(width)
            .and_then(|v| v.checked_mul(channels))
            .and_then(|v| v.checked_mul(labels.len()));
        if expected != Some(pixels.len()) {
            return Err(DataError::invalid(
                &source,
                format!(
                    "{} pixel bytes do not make {} images of {height}x{width}x{channels}",
                    pixels.len(),
                    labels.len()
                ),
            ));
        }
        check_labels(&source, &labels, class_names.len())?;
        Ok(Self {
            source,
            pixels,
            labels,
            height,
            width,
            channels,
            class_names,
        })
    }

    /// The pixels of image `index` (HWC), borrowed; `None` when out of range.
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let size = self.image_bytes();
        let start = index.checked_mul(size)?;
        self.pixels.get(start..start.checked_add(size)?)
    }

    /// The label of every image, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// All pixels: image after image, each HWC.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// `(height, width, channels)` of every image.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        (self.height, self.width, self.channels)
    }

    /// The file or folder the images were read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Number of images of each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for &label in &self.labels {
            counts[label as usize] += 1;
        }
        counts
    }

    /// The same images with other class names (e.g. named classes for a generic IDX file).
    pub(crate) fn with_class_names(mut self, class_names: Vec<String>) -> Result<Self, DataError> {
        check_labels(&self.source, &self.labels, class_names.len())?;
        self.class_names = class_names;
        Ok(self)
    }

    fn image_bytes(&self) -> usize {
        self.height * self.width * self.channels
    }
}

/// Rejects the first label `>= num_classes`, naming its position.
pub(crate) fn check_labels(
    path: &Path,
    labels: &[u8],
    num_classes: usize,
) -> Result<(), DataError> {
    match labels.iter().position(|&l| l as usize >= num_classes) {
        Some(index) => Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label: labels[index] as usize,
            num_classes,
        }),
        None => Ok(()),
    }
}

impl ImageDataset for InMemoryImages {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn load(&self, index: usize) -> Result<ImageItem, DataError> {
        let pixels = self
            .image(index)
            .ok_or_else(|| DataError::IndexOutOfRange {
                path: self.source.clone(),
                index,
                len: self.labels.len(),
            })?;
        Ok(ImageItem {
            pixels: pixels.to_vec(),
            height: self.height,
            width: self.width,
            channels: self.channels,
            label: self.labels[index] as usize,
        })
    }

    fn label(&self, index: usize) -> Result<usize, DataError> {
        self.labels
            .get(index)
            .map(|&l| l as usize)
            .ok_or_else(|| DataError::IndexOutOfRange {
                path: self.source.clone(),
                index,
                len: self.labels.len(),
            })
    }

    fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| i.to_string()).collect()
    }

    #[test]
    fn rejects_inconsistent_parts() {
        let err = InMemoryImages::from_parts("x".into(), vec![0; 7], vec![0, 0], 2, 2, 1, names(1));
        assert!(matches!(err, Err(DataError::Invalid { .. })));
        let err = InMemoryImages::from_parts("x".into(), vec![0; 8], vec![0], 2, 2, 2, names(1));
        assert!(matches!(err, Err(DataError::Invalid { .. })));
        let err = InMemoryImages::from_parts("x".into(), vec![0; 8], vec![0, 3], 2, 2, 1, names(3));
        assert!(matches!(
            err,
            Err(DataError::LabelOutOfRange {
                index: 1,
                label: 3,
                num_classes: 3,
                ..
            })
        ));
    }

    #[test]
    fn borrows_and_loads_images() {
        let ds = InMemoryImages::from_parts(
            "x".into(),
            (0..24).collect(),
            vec![1, 0],
            2,
            2,
            3,
            names(2),
        )
        .unwrap();
        assert_eq!(ds.image(1), Some(&(12..24).collect::<Vec<u8>>()[..]));
        assert_eq!(ds.image(2), None);
        assert_eq!(ds.image(usize::MAX), None);
        let item = ds.load(0).unwrap();
        assert_eq!(
            (item.height, item.width, item.channels, item.label),
            (2, 2, 3, 1)
        );
        assert_eq!(ds.class_counts(), vec![1, 1]);
    }
}
