//! IDX files (the MNIST format of LeCun et al.), plain or gzipped: MNIST and Fashion-MNIST.
//!
//! Layout (big-endian): magic `00 00 <type> <ndims>` with type 0x08 = u8, then `ndims` u32
//! dimensions, then the row-major data. Images are `0x00000803` (count x rows x cols), labels
//! `0x00000801` (count). Gzip is detected by its magic bytes `1f 8b`, not by the file name.

use super::in_memory::InMemoryImages;
use super::{DataError, Split, open_file};
use flate2::read::MultiGzDecoder;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of u8 images: type 0x08 (u8), 3 dimensions.
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 labels: type 0x08 (u8), 1 dimension.
const LABELS_MAGIC: u32 = 0x0000_0801;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Deflate cannot compress better than about 1032:1, so a gzip file of `n` bytes inflates to at
/// most ~1032 n: the bound for pre-allocating before the real size is known.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Reads an IDX image file and its label file into memory. Each file may be plain or gzipped
/// (detected by content). Both headers are validated (magic, dimensions, the data length they
/// promise against what the file holds) before any buffer is sized from them. Labels must number
/// as many as the images; the class count is `max label + 1` and classes are named by number
/// (use [`Mnist`] or [`FashionMnist`] for the named 10-class sets).
pub fn open_idx(images: &Path, labels: &Path) -> Result<InMemoryImages, DataError> {
    let image_array = read_idx(images, IMAGES_MAGIC, "IDX u8 images")?;
    let label_array = read_idx(labels, LABELS_MAGIC, "IDX u8 labels")?;
    let [count, rows, cols] = image_array.dims[..] else {
        unreachable!("IMAGES_MAGIC declares 3 dimensions")
    };
    if label_array.data.len() != count {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            labels: labels.to_path_buf(),
            n_images: count,
            n_labels: label_array.data.len(),
        });
    }
    let num_classes = label_array.data.iter().max().map_or(0, |&m| m as usize + 1);
    let class_names = (0..num_classes).map(|c| c.to_string()).collect();
    InMemoryImages::from_parts(
        images.to_path_buf(),
        image_array.data,
        label_array.data,
        rows,
        cols,
        1,
        class_names,
    )
}

/// MNIST (LeCun et al. 1998): 28x28 gray digits, 60,000 train / 10,000 test.
pub struct Mnist;

impl Mnist {
    pub const CLASS_NAMES: [&'static str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    /// Reads `train-{images-idx3,labels-idx1}-ubyte` (or `t10k-*` for [`Split::Test`]) from
    /// `dir`, each plain or `.gz`.
    pub fn open(dir: &Path, split: Split) -> Result<InMemoryImages, DataError> {
        open_standard_files(dir, split, "MNIST", &Self::CLASS_NAMES)
    }
}

/// Fashion-MNIST (Xiao et al. 2017): 28x28 gray clothing images, 60,000 train / 10,000 test,
/// the same file names and format as MNIST. `cargo xtask data fashion-mnist` fetches it.
pub struct FashionMnist;

/// Fashion-MNIST's two splits, checked by [`FashionMnist::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedFashionMnist {
    /// The folder holding the four files.
    pub dir: PathBuf,
    pub train: usize,
    pub test: usize,
}

impl FashionMnist {
    pub const CLASS_NAMES: [&'static str; 10] = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ];

    /// Reads `train-{images-idx3,labels-idx1}-ubyte` (or `t10k-*` for [`Split::Test`]) from
    /// `dir`, each plain or `.gz`.
    pub fn open(dir: &Path, split: Split) -> Result<InMemoryImages, DataError> {
        open_standard_files(dir, split, "Fashion-MNIST", &Self::CLASS_NAMES)
    }

    /// The Debian package holding the original gzipped files (Debian 12 and later).
    pub const DEBIAN_PACKAGE: &'static str = "dataset-fashion-mnist";
    /// Where [`Self::DEBIAN_PACKAGE`] installs them.
    pub const DEBIAN_DIR: &'static str = "/usr/share/datasets/fashion-mnist";
    /// Images in the train and test splits.
    pub const TRAIN_COUNT: usize = 60_000;
    pub const TEST_COUNT: usize = 10_000;

    /// Whether `dir` holds the four files (plain or gzipped); says nothing of their content.
    pub fn has_files(dir: &Path) -> bool {
        STANDARD_FILES
            .iter()
            .all(|name| find_plain_or_gz(dir, name).is_some())
    }

    /// `preferred` if it holds the files, else the Debian package's folder if that does.
    pub fn locate(preferred: &Path) -> Option<PathBuf> {
        [preferred, Path::new(Self::DEBIAN_DIR)]
            .into_iter()
            .find(|dir| Self::has_files(dir))
            .map(Path::to_path_buf)
    }

    /// Opens both splits in `dir` and checks that they are Fashion-MNIST: 60,000 / 10,000
    /// images of 28x28, and the balanced label histogram (6,000 / 1,000 images per class).
    pub fn verify(dir: &Path) -> Result<VerifiedFashionMnist, DataError> {
        let mut counts = [0; 2];
        for (slot, (split, expected)) in [
            (Split::Train, Self::TRAIN_COUNT),
            (Split::Test, Self::TEST_COUNT),
        ]
        .into_iter()
        .enumerate()
        {
            let images = Self::open(dir, split)?;
            let wrong = |problem: String| {
                DataError::invalid(
                    images.source(),
                    format!("not Fashion-MNIST (remove it to fetch again): {problem}"),
                )
            };
            if images.labels().len() != expected {
                return Err(wrong(format!(
                    "{} images, expected {expected}",
                    images.labels().len()
                )));
            }
            if images.image_shape() != (28, 28, 1) {
                return Err(wrong(format!(
                    "images are {:?} (height, width, channels), expected (28, 28, 1)",
                    images.image_shape()
                )));
            }
            let per_class = expected / Self::CLASS_NAMES.len();
            let histogram = images.class_counts();
            if histogram.iter().any(|&n| n != per_class) {
                return Err(wrong(format!(
                    "label histogram {histogram:?}, expected {per_class} per class"
                )));
            }
            counts[slot] = expected;
        }
        Ok(VerifiedFashionMnist {
            dir: dir.to_path_buf(),
            train: counts[0],
            test: counts[1],
        })
    }
}

/// The four standard MNIST-layout file names (without `.gz`): train images, train labels, test
/// images, test labels.
pub const STANDARD_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// `(images, labels)` file names of a split, without `.gz`.
pub(crate) fn standard_file_names(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => (STANDARD_FILES[0], STANDARD_FILES[1]),
        Split::Test => (STANDARD_FILES[2], STANDARD_FILES[3]),
    }
}

/// `dir/name` if it exists, else `dir/name.gz`; `None` if neither does.
pub fn find_plain_or_gz(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    [plain, gz].into_iter().find(|p| p.is_file())
}

fn open_standard_files(
    dir: &Path,
    split: Split,
    dataset: &str,
    class_names: &[&str],
) -> Result<InMemoryImages, DataError> {
    let (images, labels) = standard_file_names(split);
    let find = |name: &str| {
        find_plain_or_gz(dir, name).ok_or_else(|| DataError::Missing {
            path: dir.join(name),
            what: format!("{dataset} needs {name} or {name}.gz in this folder"),
        })
    };
    let (images, labels) = (find(images)?, find(labels)?);
    open_idx(&images, &labels)?
        .with_class_names(class_names.iter().map(|s| s.to_string()).collect())
}

/// A validated IDX array: its dimensions and exactly `product(dims)` data bytes.
struct IdxArray {
    dims: Vec<usize>,
    data: Vec<u8>,
}

/// Reads one IDX file whose magic must be `expected_magic` (`what` names the expected content).
fn read_idx(path: &Path, expected_magic: u32, what: &'static str) -> Result<IdxArray, DataError> {
    let io_err = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = open_file(path, what)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut buffered = BufReader::new(file);
    let gzipped = buffered
        .fill_buf()
        .map_err(io_err)?
        .starts_with(&GZIP_MAGIC);
    let read_err = |error| {
        if gzipped {
            DataError::Gzip {
                path: path.to_path_buf(),
                error,
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                error,
            }
        }
    };
    let mut stream: Box<dyn Read> = if gzipped {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };

    let ndims = (expected_magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims as u64;
    let truncated = |actual: u64, expected: u64| DataError::Truncated {
        path: path.to_path_buf(),
        expected,
        actual,
    };
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut stream, &mut magic).map_err(read_err)?;
    if got < magic.len() {
        return Err(truncated(got as u64, header_len));
    }
    let found = u32::from_be_bytes(magic);
    if found != expected_magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: expected_magic,
            what,
        });
    }
    let mut dim_bytes = vec![0u8; 4 * ndims];
    let got = read_up_to(&mut stream, &mut dim_bytes).map_err(read_err)?;
    if got < dim_bytes.len() {
        return Err(truncated(4 + got as u64, header_len));
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    if dims.iter().skip(1).any(|&d| d == 0) {
        return Err(DataError::invalid(
            path,
            format!("IDX header has an empty item shape {:?}", &dims[1..]),
        ));
    }
    let payload = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| DataError::invalid(path, format!("IDX dimensions {dims:?} overflow")))?;
    let expected_total = header_len.saturating_add(payload);

    let data = if gzipped {
        // The inflated size is unknown until read: never reserve more than the compressed file
        // could inflate to, and read at most one byte past the promised size.
        let reserve = payload.min(file_len.saturating_mul(MAX_DEFLATE_RATIO));
        let mut data = Vec::with_capacity(reserve as usize);
        (&mut stream)
            .take(payload + 1)
            .read_to_end(&mut data)
            .map_err(read_err)?;
        if (data.len() as u64) > payload {
            let rest = std::io::copy(&mut stream, &mut std::io::sink()).map_err(read_err)?;
            return Err(DataError::TrailingData {
                path: path.to_path_buf(),
                expected: expected_total,
                actual: header_len + data.len() as u64 + rest,
            });
        }
        data
    } else {
        // The file length is known: compare before allocating anything from the header.
        if file_len > expected_total {
            return Err(DataError::TrailingData {
                path: path.to_path_buf(),
                expected: expected_total,
                actual: file_len,
            });
        }
        let mut data = Vec::with_capacity(payload.min(file_len) as usize);
        (&mut stream)
            .take(payload)
            .read_to_end(&mut data)
            .map_err(read_err)?;
        data
    };
    if (data.len() as u64) < payload {
        return Err(truncated(header_len + data.len() as u64, expected_total));
    }
    Ok(IdxArray { dims, data })
}

/// Fills `buf` as far as the stream allows; returns how many bytes were read (short only at EOF).
fn read_up_to(stream: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ImageDataset, fixtures_dir};
    use serde_json::Value;

    fn idx_dir() -> PathBuf {
        fixtures_dir().join("idx")
    }

    fn expected() -> Value {
        let text = std::fs::read_to_string(idx_dir().join("expected.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn as_usizes(v: &Value) -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    }

    fn check_against_expected(ds: &InMemoryImages) {
        let exp = expected();
        let labels = as_usizes(&exp["labels"]);
        let sums = as_usizes(&exp["pixel_sums"]);
        let row14 = as_usizes(&exp["image0_row14"]);
        assert_eq!(
            ImageDataset::len(ds),
            exp["count"].as_u64().unwrap() as usize
        );
        assert_eq!(ds.image_shape(), (28, 28, 1));
        for i in 0..labels.len() {
            let item = ds.load(i).unwrap();
            assert_eq!(item.label, labels[i], "label of item {i}");
            let sum: usize = item.pixels.iter().map(|&p| p as usize).sum();
            assert_eq!(sum, sums[i], "pixel sum of item {i}");
        }
        let first = ds.load(0).unwrap();
        let row: Vec<usize> = first.pixels[14 * 28..15 * 28]
            .iter()
            .map(|&p| p as usize)
            .collect();
        assert_eq!(row, row14);
    }

    #[test]
    fn reads_plain_and_gzipped_fixture() {
        for suffix in ["", ".gz"] {
            let dir = idx_dir();
            let ds = open_idx(
                &dir.join(format!("train-images-idx3-ubyte{suffix}")),
                &dir.join(format!("train-labels-idx1-ubyte{suffix}")),
            )
            .unwrap();
            check_against_expected(&ds);
            assert_eq!(ds.num_classes(), 10);
        }
    }

    #[test]
    fn gzip_is_detected_by_content_not_name() {
        let tmp = tempfile::tempdir().unwrap();
        let images = tmp.path().join("images.bin");
        let labels = tmp.path().join("labels.idx");
        std::fs::copy(idx_dir().join("train-images-idx3-ubyte.gz"), &images).unwrap();
        std::fs::copy(idx_dir().join("train-labels-idx1-ubyte"), &labels).unwrap();
        check_against_expected(&open_idx(&images, &labels).unwrap());
    }

    #[test]
    fn fashion_mnist_names_its_classes() {
        // The fixture holds train files only: the train split opens, the test split names the
        // missing file.
        let ds = FashionMnist::open(&idx_dir(), Split::Train).unwrap();
        let exp = expected();
        let names: Vec<&str> = exp["class_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ds.class_names(), names);
        check_against_expected(&ds);
        let err = FashionMnist::open(&idx_dir(), Split::Test).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("t10k-images-idx3-ubyte"), "{err}");
    }

    fn assert_names(err: &DataError, file: &str) {
        let msg = err.to_string();
        assert!(msg.contains(file), "message {msg:?} does not name {file}");
    }

    #[test]
    fn rejects_bad_magic() {
        let bad = idx_dir().join("bad/bad-magic-images-idx3-ubyte");
        let err = open_idx(&bad, &idx_dir().join("train-labels-idx1-ubyte")).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadMagic {
                    found: 0x0308_0000,
                    expected: 0x0803,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_names(&err, "bad-magic-images-idx3-ubyte");
    }

    #[test]
    fn rejects_truncated_images() {
        let bad = idx_dir().join("bad/truncated-images-idx3-ubyte");
        let err = open_idx(&bad, &idx_dir().join("train-labels-idx1-ubyte")).unwrap_err();
        let promised = 16 + 64 * 28 * 28;
        assert!(
            matches!(err, DataError::Truncated { expected, actual, .. }
                if expected == promised && actual == promised - 100),
            "{err:?}"
        );
        assert_names(&err, "truncated-images-idx3-ubyte");
    }

    #[test]
    fn rejects_truncated_gzipped_labels() {
        let bad = idx_dir().join("bad/truncated-labels-idx1-ubyte.gz");
        let err = open_idx(&idx_dir().join("train-images-idx3-ubyte"), &bad).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 72,
                    actual: 71,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_names(&err, "truncated-labels-idx1-ubyte.gz");
    }

    #[test]
    fn rejects_swapped_files_trailing_data_and_corrupt_gzip() {
        let dir = idx_dir();
        let images = dir.join("train-images-idx3-ubyte");
        let labels = dir.join("train-labels-idx1-ubyte");
        let err = open_idx(&labels, &images).unwrap_err();
        assert!(
            matches!(err, DataError::BadMagic { found: 0x0801, .. }),
            "{err:?}"
        );

        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = std::fs::read(&labels).unwrap();
        bytes.push(7);
        let long = tmp.path().join("long-labels");
        std::fs::write(&long, &bytes).unwrap();
        let err = open_idx(&images, &long).unwrap_err();
        assert!(matches!(
            err,
            DataError::TrailingData {
                expected: 72,
                actual: 73,
                ..
            }
        ));
        assert_names(&err, "long-labels");

        let mut gz = std::fs::read(dir.join("train-images-idx3-ubyte.gz")).unwrap();
        let mid = gz.len() / 2;
        gz[mid..mid + 64].fill(0xff);
        let corrupt = tmp.path().join("corrupt.gz");
        std::fs::write(&corrupt, &gz).unwrap();
        let err = open_idx(&corrupt, &labels).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
        assert_names(&err, "corrupt.gz");
    }

    #[test]
    fn a_huge_header_allocates_nothing_and_fails() {
        // 4 x 10^9 images of 65535^2 pixels promised by a 16-byte file: must fail cleanly.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("huge");
        let mut header = 0x0803u32.to_be_bytes().to_vec();
        for d in [4_000_000_000u32, 65_535, 65_535] {
            header.extend(d.to_be_bytes());
        }
        std::fs::write(&path, &header).unwrap();
        let err = open_idx(&path, &idx_dir().join("train-labels-idx1-ubyte")).unwrap_err();
        assert!(
            matches!(err, DataError::Truncated { actual: 16, .. }),
            "{err:?}"
        );
        // The same header gzipped.
        let gz_path = tmp.path().join("huge.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, &header).unwrap();
        std::fs::write(&gz_path, enc.finish().unwrap()).unwrap();
        let err = open_idx(&gz_path, &idx_dir().join("train-labels-idx1-ubyte")).unwrap_err();
        assert!(
            matches!(err, DataError::Truncated { actual: 16, .. }),
            "{err:?}"
        );
        // A file shorter than the magic number.
        std::fs::write(&path, [0u8, 0]).unwrap();
        let err = open_idx(&path, &idx_dir().join("train-labels-idx1-ubyte")).unwrap_err();
        assert!(matches!(
            err,
            DataError::Truncated {
                actual: 2,
                expected: 16,
                ..
            }
        ));
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let tmp = tempfile::tempdir().unwrap();
        let labels = tmp.path().join("labels");
        let mut bytes = 0x0801u32.to_be_bytes().to_vec();
        bytes.extend(3u32.to_be_bytes());
        bytes.extend([1, 2, 3]);
        std::fs::write(&labels, bytes).unwrap();
        let images = idx_dir().join("train-images-idx3-ubyte");
        let err = open_idx(&images, &labels).unwrap_err();
        assert!(matches!(
            err,
            DataError::CountMismatch {
                n_images: 64,
                n_labels: 3,
                ..
            }
        ));
        assert_names(&err, "train-images-idx3-ubyte");
        assert_names(&err, "labels");
    }

    #[test]
    fn missing_file_is_named() {
        let err =
            open_idx(Path::new("/nonexistent/imgs"), Path::new("/nonexistent/l")).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }));
        assert_names(&err, "/nonexistent/imgs");
    }
}
