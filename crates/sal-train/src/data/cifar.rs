//! CIFAR-10 and CIFAR-100 in their original binary versions (Krizhevsky 2009,
//! "Learning Multiple Layers of Features from Tiny Images"; the "binary version" archives).
//!
//! A file is a sequence of fixed-size records: the label byte(s), then 1024 R, 1024 G and
//! 1024 B bytes, each plane 32x32 row-major.
//! - CIFAR-10 (`cifar-10-batches-bin/`): record = label + 3072 pixels = 3073 bytes;
//!   train = `data_batch_1.bin` .. `data_batch_5.bin`, test = `test_batch.bin`.
//! - CIFAR-100 (`cifar-100-binary/`): record = coarse label + fine label + 3072 pixels = 3074
//!   bytes; train = `train.bin`, test = `test.bin`.
//!
//! The reader checks the file length (a positive multiple of the record size) before reading,
//! every label's range, and for CIFAR-100 that each fine label belongs to its coarse class;
//! pixels are reordered once to HWC (RGB interleaved) so an image is one slice.

use super::in_memory::InMemoryImages;
use super::{DataError, Split};
use std::path::{Path, PathBuf};

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
const PIXEL_BYTES: usize = 3 * PLANE;

/// CIFAR-10: 32x32 RGB, 10 classes, 50,000 train / 10,000 test.
pub struct Cifar10;

impl Cifar10 {
    /// The folder the binary archive unpacks to.
    pub const FOLDER: &'static str = "cifar-10-batches-bin";
    /// `batches.meta.txt` of the archive.
    pub const CLASS_NAMES: [&'static str; 10] = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];

    /// The files of a split, in the order they are concatenated.
    pub fn file_names(split: Split) -> &'static [&'static str] {
        match split {
            Split::Train => &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            Split::Test => &["test_batch.bin"],
        }
    }

    /// Reads a split from `dir`: the `cifar-10-batches-bin` folder as shipped, or its parent.
    pub fn open(dir: &Path, split: Split) -> Result<InMemoryImages, DataError> {
        let files = Self::file_names(split);
        let folder = resolve_folder(dir, Self::FOLDER, files[0], "CIFAR-10 binary version")?;
        let layout = RecordLayout {
            label_bytes: 1,
            label_index: 0,
            num_classes: Self::CLASS_NAMES.len(),
            what: "CIFAR-10: label + 3072 pixels",
        };
        let mut records = Records::default();
        for name in files {
            records.read_file(&folder.join(name), &layout, |_, _| Ok(()))?;
        }
        records.into_images(&folder, &Self::CLASS_NAMES)
    }
}

/// Which of CIFAR-100's two labels to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cifar100Labels {
    /// The 100 classes (the usual benchmark).
    #[default]
    Fine,
    /// The 20 superclasses.
    Coarse,
}

/// CIFAR-100: 32x32 RGB, 100 fine classes in 20 coarse superclasses, 50,000 train / 10,000 test.
pub struct Cifar100;

impl Cifar100 {
    /// The folder the binary archive unpacks to.
    pub const FOLDER: &'static str = "cifar-100-binary";
    /// `fine_label_names.txt` of the archive.
    #[rustfmt::skip]
    pub const FINE_NAMES: [&'static str; 100] = [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
        "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
        "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
        "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
        "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
        "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
        "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
        "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
        "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
        "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
        "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
        "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ];
    /// `coarse_label_names.txt` of the archive.
    pub const COARSE_NAMES: [&'static str; 20] = [
        "aquatic_mammals",
        "fish",
        "flowers",
        "food_containers",
        "fruit_and_vegetables",
        "household_electrical_devices",
        "household_furniture",
        "insects",
        "large_carnivores",
        "large_man-made_outdoor_things",
        "large_natural_outdoor_scenes",
        "large_omnivores_and_herbivores",
        "medium_mammals",
        "non-insect_invertebrates",
        "people",
        "reptiles",
        "small_mammals",
        "trees",
        "vehicles_1",
        "vehicles_2",
    ];
    /// The superclass of each fine class (the CIFAR-100 class hierarchy).
    #[rustfmt::skip]
    pub const FINE_TO_COARSE: [u8; 100] = [
        4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13,
        15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4,
        17, 4, 2, 0, 17, 4, 18, 17, 10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13,
        15, 13, 16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
    ];

    /// The file of a split.
    pub fn file_name(split: Split) -> &'static str {
        match split {
            Split::Train => "train.bin",
            Split::Test => "test.bin",
        }
    }

    /// Reads a split from `dir`: the `cifar-100-binary` folder as shipped, or its parent.
    pub fn open(
        dir: &Path,
        split: Split,
        labels: Cifar100Labels,
    ) -> Result<InMemoryImages, DataError> {
        let name = Self::file_name(split);
        let folder = resolve_folder(dir, Self::FOLDER, name, "CIFAR-100 binary version")?;
        let path = folder.join(name);
        let (label_index, names): (usize, &[&str]) = match labels {
            Cifar100Labels::Fine => (1, &Self::FINE_NAMES),
            Cifar100Labels::Coarse => (0, &Self::COARSE_NAMES),
        };
        let layout = RecordLayout {
            label_bytes: 2,
            label_index,
            num_classes: names.len(),
            what: "CIFAR-100: coarse label + fine label + 3072 pixels",
        };
        let mut records = Records::default();
        records.read_file(&path, &layout, |index, record| {
            let (coarse, fine) = (record[0], record[1] as usize);
            let expected = Self::FINE_TO_COARSE.get(fine).copied();
            if expected == Some(coarse) {
                return Ok(());
            }
            let problem = match expected {
                Some(e) => format!(
                    "record {index}: fine label {fine} belongs to coarse class {e}, the record says \
                     {coarse} (not CIFAR-100, or misaligned)"
                ),
                None => format!("record {index}: fine label {fine} is not below 100"),
            };
            Err(DataError::invalid(&path, problem))
        })?;
        records.into_images(&path, names)
    }
}

/// Where the label sits in a record and how many classes it has.
struct RecordLayout {
    label_bytes: usize,
    label_index: usize,
    num_classes: usize,
    /// The record format, for error messages.
    what: &'static str,
}

impl RecordLayout {
    fn record_bytes(&self) -> usize {
        self.label_bytes + PIXEL_BYTES
    }
}

/// Images (HWC) and labels accumulated over the files of a split.
#[derive(Default)]
struct Records {
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl Records {
    /// Appends every record of `path`; `check(index, record)` may reject a record.
    fn read_file(
        &mut self,
        path: &Path,
        layout: &RecordLayout,
        check: impl Fn(usize, &[u8]) -> Result<(), DataError>,
    ) -> Result<(), DataError> {
        let record_bytes = layout.record_bytes();
        let len = std::fs::metadata(path)
            .map_err(|e| DataError::from_io(path, layout.what, e))?
            .len();
        // Validate the length before reading: a wrong file fails here without a big read.
        if len == 0 || len % record_bytes as u64 != 0 {
            return Err(DataError::RecordSize {
                path: path.to_path_buf(),
                len,
                record_bytes,
                what: layout.what,
            });
        }
        let bytes = std::fs::read(path).map_err(|e| DataError::from_io(path, layout.what, e))?;
        if bytes.len() as u64 != len {
            return Err(DataError::invalid(
                path,
                "the file changed while being read",
            ));
        }
        let count = bytes.len() / record_bytes;
        self.pixels.reserve(count * PIXEL_BYTES);
        self.labels.reserve(count);
        for (index, record) in bytes.chunks_exact(record_bytes).enumerate() {
            let label = record[layout.label_index];
            if label as usize >= layout.num_classes {
                return Err(DataError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    index,
                    label: label as usize,
                    num_classes: layout.num_classes,
                });
            }
            check(index, record)?;
            self.labels.push(label);
            let planes = &record[layout.label_bytes..];
            let (r, rest) = planes.split_at(PLANE);
            let (g, b) = rest.split_at(PLANE);
            for ((&r, &g), &b) in r.iter().zip(g).zip(b) {
                self.pixels.extend_from_slice(&[r, g, b]);
            }
        }
        Ok(())
    }

    fn into_images(self, source: &Path, names: &[&str]) -> Result<InMemoryImages, DataError> {
        InMemoryImages::from_parts(
            source.to_path_buf(),
            self.pixels,
            self.labels,
            SIDE,
            SIDE,
            3,
            names.iter().map(|s| s.to_string()).collect(),
        )
    }
}

/// `dir` if it holds `first_file`, else `dir/folder` if that does (the archive's folder given
/// by its parent).
fn resolve_folder(
    dir: &Path,
    folder: &str,
    first_file: &str,
    what: &str,
) -> Result<PathBuf, DataError> {
    if dir.join(first_file).is_file() {
        return Ok(dir.to_path_buf());
    }
    let nested = dir.join(folder);
    if nested.join(first_file).is_file() {
        return Ok(nested);
    }
    Err(DataError::Missing {
        path: dir.join(first_file),
        what: format!("the {what}: expected {first_file} in this folder or in {folder}/ below it"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ImageDataset, fixtures_dir};
    use serde_json::Value;

    fn cifar_dir() -> PathBuf {
        fixtures_dir().join("cifar")
    }

    fn labels_json() -> Value {
        let text = std::fs::read_to_string(cifar_dir().join("labels.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn u64s(v: &Value) -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    }

    /// Labels, pixel (0,0) and pixel sums of every record against labels.json.
    fn check_records(ds: &InMemoryImages, records: &Value, label_key: &str) {
        let records = records.as_array().unwrap();
        assert_eq!(ImageDataset::len(ds), records.len());
        for (i, rec) in records.iter().enumerate() {
            let item = ds.load(i).unwrap();
            assert_eq!((item.height, item.width, item.channels), (32, 32, 3));
            assert_eq!(
                item.label as u64,
                rec[label_key].as_u64().unwrap(),
                "label {i}"
            );
            let first: Vec<u64> = item.pixels[..3].iter().map(|&p| p as u64).collect();
            assert_eq!(first, u64s(&rec["first_rgb"]), "pixel (0,0) of record {i}");
            let sum: u64 = item.pixels.iter().map(|&p| p as u64).sum();
            assert_eq!(
                sum,
                rec["pixel_sum"].as_u64().unwrap(),
                "pixel sum of record {i}"
            );
        }
    }

    fn names_in(file: &str) -> Vec<String> {
        std::fs::read_to_string(cifar_dir().join(file))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
            .collect()
    }

    #[test]
    fn reads_cifar10_test_batch_from_folder_or_parent() {
        let exp = labels_json();
        for dir in [cifar_dir(), cifar_dir().join(Cifar10::FOLDER)] {
            let ds = Cifar10::open(&dir, Split::Test).unwrap();
            check_records(&ds, &exp["cifar10"]["records"], "label");
            assert_eq!(ds.labels(), &[3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
        }
    }

    #[test]
    fn reads_cifar100_fine_and_coarse() {
        let exp = labels_json();
        let fine = Cifar100::open(&cifar_dir(), Split::Test, Cifar100Labels::Fine).unwrap();
        check_records(&fine, &exp["cifar100"]["records"], "fine");
        assert_eq!(fine.num_classes(), 100);
        let coarse = Cifar100::open(
            &cifar_dir().join(Cifar100::FOLDER),
            Split::Test,
            Cifar100Labels::Coarse,
        )
        .unwrap();
        check_records(&coarse, &exp["cifar100"]["records"], "coarse");
        assert_eq!(coarse.num_classes(), 20);
        assert_eq!(fine.pixels(), coarse.pixels());
    }

    #[test]
    fn class_tables_match_the_archive() {
        assert_eq!(
            names_in("cifar-10-batches-bin/batches.meta.txt"),
            Cifar10::CLASS_NAMES
        );
        assert_eq!(
            names_in("cifar-100-binary/fine_label_names.txt"),
            Cifar100::FINE_NAMES
        );
        assert_eq!(
            names_in("cifar-100-binary/coarse_label_names.txt"),
            Cifar100::COARSE_NAMES
        );
        let table: Vec<u64> = Cifar100::FINE_TO_COARSE.iter().map(|&c| c as u64).collect();
        assert_eq!(table, u64s(&labels_json()["cifar100"]["fine_to_coarse"]));
    }

    /// A temp folder holding `file` under the name `as_name`.
    fn staged(file: &str, as_name: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(cifar_dir().join(file), tmp.path().join(as_name)).unwrap();
        tmp
    }

    #[test]
    fn rejects_truncated_files_naming_them() {
        let tmp = staged("truncated/cifar10_truncated.bin", "test_batch.bin");
        let err = Cifar10::open(tmp.path(), Split::Test).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::RecordSize {
                    len: 7146,
                    record_bytes: 3073,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("test_batch.bin"), "{err}");

        let tmp = staged("truncated/cifar100_truncated.bin", "test.bin");
        let err = Cifar100::open(tmp.path(), Split::Test, Cifar100Labels::Fine).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::RecordSize {
                    len: 7148,
                    record_bytes: 3074,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("test.bin"), "{err}");
    }

    #[test]
    fn rejects_the_other_format_and_empty_files() {
        // A CIFAR-100 file read as CIFAR-10: 30740 is not a multiple of 3073.
        let tmp = staged("cifar-100-binary/test.bin", "test_batch.bin");
        let err = Cifar10::open(tmp.path(), Split::Test).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::RecordSize {
                    record_bytes: 3073,
                    ..
                }
            ),
            "{err:?}"
        );
        std::fs::write(tmp.path().join("test_batch.bin"), b"").unwrap();
        let err = Cifar10::open(tmp.path(), Split::Test).unwrap_err();
        assert!(
            matches!(err, DataError::RecordSize { len: 0, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_bad_labels() {
        let tmp = staged("cifar-10-batches-bin/test_batch.bin", "test_batch.bin");
        let path = tmp.path().join("test_batch.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3073 * 4] = 10;
        std::fs::write(&path, &bytes).unwrap();
        let err = Cifar10::open(tmp.path(), Split::Test).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    index: 4,
                    label: 10,
                    num_classes: 10,
                    ..
                }
            ),
            "{err:?}"
        );

        let tmp = staged("cifar-100-binary/test.bin", "test.bin");
        let path = tmp.path().join("test.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3074 * 2] = 19; // coarse label of record 2 (fine 72 = seal, coarse 0)
        std::fs::write(&path, &bytes).unwrap();
        let err = Cifar100::open(tmp.path(), Split::Test, Cifar100Labels::Fine).unwrap_err();
        assert!(matches!(err, DataError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("record 2"), "{err}");
    }

    #[test]
    fn missing_files_are_named() {
        let err = Cifar10::open(&cifar_dir(), Split::Train).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
        assert!(err.to_string().contains("data_batch_1.bin"), "{err}");
        // With batch 1 present the next missing batch is named.
        let tmp = staged("cifar-10-batches-bin/test_batch.bin", "data_batch_1.bin");
        let err = Cifar10::open(tmp.path(), Split::Train).unwrap_err();
        assert!(err.to_string().contains("data_batch_2.bin"), "{err}");
    }
}
