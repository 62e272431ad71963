//! Tiny-ImageNet-200 (the CS231n release, `tiny-imagenet-200.zip`) as shipped: 64x64 JPEGs,
//! 200 classes, 500 train / 50 val images per class.
//!
//! ```text
//! tiny-imagenet-200/
//!   wnids.txt                         the 200 WordNet ids
//!   train/<wnid>/images/<wnid>_<k>.JPEG   (+ <wnid>_boxes.txt, skipped)
//!   val/images/val_<k>.JPEG
//!   val/val_annotations.txt           <file> TAB <wnid> TAB <box x0 y0 x1 y1>
//!   test/images/...                   unlabelled, not used
//! ```
//! The train split is an [`ImageFolder`]; the val split is flat, labelled by its annotation file.
//! Labels index the sorted WordNet ids in both (torchvision's rule on the train folders).

use super::image_folder::ImageFolder;
use super::{DataError, ImageDataset, Split};
use std::path::{Path, PathBuf};

/// Tiny-ImageNet-200; [`Split::Test`] reads the labelled `val` folder (the official test set has
/// no labels).
pub struct TinyImageNet;

impl TinyImageNet {
    /// The folder the archive unpacks to.
    pub const FOLDER: &'static str = "tiny-imagenet-200";

    /// Reads a split from `root`: the `tiny-imagenet-200` folder or its parent.
    pub fn open(root: &Path, split: Split) -> Result<ImageFolder, DataError> {
        let root = if root.join("wnids.txt").is_file() {
            root.to_path_buf()
        } else {
            root.join(Self::FOLDER)
        };
        let wnids_path = root.join("wnids.txt");
        let text = std::fs::read_to_string(&wnids_path)
            .map_err(|e| DataError::from_io(&wnids_path, "Tiny-ImageNet's list of class ids", e))?;
        let mut wnids: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        wnids.sort();
        wnids.dedup();
        if wnids.is_empty() {
            return Err(DataError::invalid(&wnids_path, "no class ids"));
        }
        match split {
            Split::Train => {
                let train = ImageFolder::open(&root.join("train"))?;
                if train.class_names() != wnids.as_slice() {
                    return Err(DataError::invalid(
                        &root.join("train"),
                        format!(
                            "class folders ({}) differ from the {} ids in wnids.txt",
                            train.class_names().len(),
                            wnids.len()
                        ),
                    ));
                }
                Ok(train)
            }
            Split::Test => Self::open_val(&root.join("val"), wnids),
        }
    }

    fn open_val(val: &Path, wnids: Vec<String>) -> Result<ImageFolder, DataError> {
        let annotations = val.join("val_annotations.txt");
        let text = std::fs::read_to_string(&annotations)
            .map_err(|e| DataError::from_io(&annotations, "Tiny-ImageNet val labels", e))?;
        let mut files: Vec<PathBuf> = Vec::new();
        let mut labels = Vec::new();
        for (line_no, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let mut fields = line.split('\t');
            let (Some(file), Some(wnid)) = (fields.next(), fields.next()) else {
                return Err(DataError::invalid(
                    &annotations,
                    format!("line {}: expected <file> TAB <wnid> ...", line_no + 1),
                ));
            };
            let label = wnids
                .binary_search_by(|w| w.as_str().cmp(wnid))
                .map_err(|_| {
                    DataError::invalid(
                        &annotations,
                        format!(
                            "line {}: class id {wnid:?} is not in wnids.txt",
                            line_no + 1
                        ),
                    )
                })?;
            files.push(val.join("images").join(file));
            labels.push(label as u32);
        }
        if files.is_empty() {
            return Err(DataError::invalid(&annotations, "no annotated images"));
        }
        ImageFolder::from_files(val.to_path_buf(), wnids, files, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures_dir;

    /// A two-class Tiny-ImageNet tree made from the fixture JPEGs.
    fn tiny_tree() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join(TinyImageNet::FOLDER);
        let jpeg = |name: &str| fixtures_dir().join("imagefolder/train").join(name);
        std::fs::create_dir_all(root.join("train/n02/images")).unwrap();
        std::fs::create_dir_all(root.join("train/n01/images")).unwrap();
        std::fs::create_dir_all(root.join("val/images")).unwrap();
        std::fs::write(root.join("wnids.txt"), "n02\nn01\n").unwrap();
        std::fs::copy(
            jpeg("243/243_00.JPEG"),
            root.join("train/n01/images/n01_0.JPEG"),
        )
        .unwrap();
        std::fs::copy(
            jpeg("438/438_02.JPEG"),
            root.join("train/n02/images/n02_0.JPEG"),
        )
        .unwrap();
        std::fs::write(
            root.join("train/n01/n01_boxes.txt"),
            "n01_0.JPEG\t0\t0\t9\t9\n",
        )
        .unwrap();
        std::fs::copy(jpeg("559/559_01.JPEG"), root.join("val/images/val_0.JPEG")).unwrap();
        std::fs::copy(jpeg("609/609_06.JPEG"), root.join("val/images/val_1.JPEG")).unwrap();
        std::fs::write(
            root.join("val/val_annotations.txt"),
            "val_0.JPEG\tn02\t0\t0\t9\t9\nval_1.JPEG\tn01\t1\t1\t5\t5\n",
        )
        .unwrap();
        tmp
    }

    #[test]
    fn reads_train_and_val_layouts() {
        let tmp = tiny_tree();
        let train = TinyImageNet::open(tmp.path(), Split::Train).unwrap();
        assert_eq!(train.class_names(), ["n01", "n02"]);
        assert_eq!(train.labels(), &[0, 1]);
        assert_eq!(train.skipped_files().len(), 1);
        let val = TinyImageNet::open(&tmp.path().join(TinyImageNet::FOLDER), Split::Test).unwrap();
        assert_eq!(val.labels(), &[1, 0]);
        assert_eq!(ImageDataset::len(&val), 2);
        assert_eq!(val.load(1).unwrap().label, 0);
    }

    #[test]
    fn unknown_val_class_and_missing_files_are_named() {
        let tmp = tiny_tree();
        let root = tmp.path().join(TinyImageNet::FOLDER);
        std::fs::write(
            root.join("val/val_annotations.txt"),
            "val_0.JPEG\tn09\t0\t0\t9\t9\n",
        )
        .unwrap();
        let err = TinyImageNet::open(&root, Split::Test).unwrap_err();
        assert!(matches!(err, DataError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("val_annotations.txt"), "{err}");
        std::fs::remove_file(root.join("wnids.txt")).unwrap();
        let err = TinyImageNet::open(&root, Split::Train).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
    }
}
