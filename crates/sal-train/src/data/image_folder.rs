//! [`ImageFolder`]: a `<root>/<class>/<image>` tree of PNG/JPEG files (ImageNet, Tiny-ImageNet),
//! decoded lazily, one file per `load`.
//!
//! Scanning follows torchvision's `ImageFolder` (`torchvision/datasets/folder.py`): classes are
//! the sorted names of the root's sub-folders, labels `0..n` in that order; each class folder is
//! walked recursively (symbolic links followed), folders in sorted path order and files sorted by
//! name within a folder; a class folder without a single image is an error.
//!
//! Non-image policy: files whose extension is not `.png`, `.jpg` or `.jpeg` (any case) are
//! skipped and listed in [`ImageFolder::skipped_files`] (e.g. Tiny-ImageNet's `*_boxes.txt`);
//! hidden entries (names starting with `.`) and files directly in the root are ignored. Other
//! image formats torchvision accepts (BMP, WebP, ...) are skipped too: only PNG and JPEG decoders
//! are built. A file with an image extension that does not decode is an error at `load`, naming
//! the file; it is never skipped silently.
//!
//! Decoding always yields RGB (gray, palette, alpha and CMYK images are converted), as
//! torchvision's default loader does (`PIL.Image.convert("RGB")`).

use super::{DataError, ImageDataset, ImageItem};
use std::path::{Path, PathBuf};

/// How deep symbolic-link loops may nest before the scan gives up.
const MAX_DEPTH: usize = 64;
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// A lazily decoded image-folder data set: file paths and labels; pixels are read at `load`.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    class_names: Vec<String>,
    files: Vec<PathBuf>,
    labels: Vec<u32>,
    skipped: Vec<PathBuf>,
}

impl ImageFolder {
    /// Scans `root`: classes = sorted sub-folder names, images found recursively in each.
    /// Errors: a missing root, a root without class folders, a class folder without images,
    /// a non-UTF-8 class name, or an unreadable folder.
    pub fn open(root: &Path) -> Result<Self, DataError> {
        if !root.is_dir() {
            return Err(match std::fs::metadata(root) {
                Ok(_) => DataError::invalid(root, "not a folder (expected <root>/<class>/<image>)"),
                Err(e) => DataError::from_io(root, "image folder root", e),
            });
        }
        let mut class_dirs: Vec<(String, PathBuf)> = Vec::new();
        for path in list_dir(root)? {
            if !path.is_dir() {
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| DataError::invalid(&path, "class folder name is not UTF-8"))?;
            class_dirs.push((name.to_string(), path.clone()));
        }
        if class_dirs.is_empty() {
            return Err(DataError::NoClasses {
                path: root.to_path_buf(),
            });
        }
        // Python's sorted() on str orders by code point, as Rust's String order does.
        class_dirs.sort();
        let mut folder = ImageFolder {
            root: root.to_path_buf(),
            class_names: class_dirs.iter().map(|(name, _)| name.clone()).collect(),
            files: Vec::new(),
            labels: Vec::new(),
            skipped: Vec::new(),
        };
        for (label, (_, dir)) in class_dirs.iter().enumerate() {
            let mut images = Vec::new();
            collect_images(dir, &mut images, &mut folder.skipped)?;
            if images.is_empty() {
                return Err(DataError::EmptyClass { path: dir.clone() });
            }
            folder.files.extend(images);
            folder.labels.resize(folder.files.len(), label as u32);
        }
        Ok(folder)
    }

    /// A data set from an explicit file list (e.g. an annotation file), for layouts that are not
    /// one folder per class. Labels must be below `class_names.len()`; files are not checked
    /// until `load`.
    pub fn from_files(
        root: PathBuf,
        class_names: Vec<String>,
        files: Vec<PathBuf>,
        labels: Vec<u32>,
    ) -> Result<Self, DataError> {
        if files.len() != labels.len() {
            return Err(DataError::invalid(
                &root,
                format!("{} files but {} labels", files.len(), labels.len()),
            ));
        }
        if let Some(i) = labels.iter().position(|&l| l as usize >= class_names.len()) {
            return Err(DataError::LabelOutOfRange {
                path: files[i].clone(),
                index: i,
                label: labels[i] as usize,
                num_classes: class_names.len(),
            });
        }
        Ok(ImageFolder {
            root,
            class_names,
            files,
            labels,
            skipped: Vec::new(),
        })
    }

    /// The folder that was scanned.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Image files in item order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Label of each item, known without decoding.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Files found in class folders that are not PNG/JPEG by extension and were left out.
    pub fn skipped_files(&self) -> &[PathBuf] {
        &self.skipped
    }

    /// `class name -> label` (torchvision's `class_to_idx`).
    pub fn class_to_idx(&self) -> std::collections::BTreeMap<String, usize> {
        self.class_names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect()
    }
}

impl ImageDataset for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn load(&self, index: usize) -> Result<ImageItem, DataError> {
        let path = self
            .files
            .get(index)
            .ok_or_else(|| DataError::IndexOutOfRange {
                path: self.root.clone(),
                index,
                len: self.files.len(),
            })?;
        let rgb = decode_rgb(path)?;
        let (width, height) = (rgb.width() as usize, rgb.height() as usize);
        Ok(ImageItem {
            pixels: rgb.into_raw(),
            height,
            width,
            channels: 3,
            label: self.labels[index] as usize,
        })
    }

    fn label(&self, index: usize) -> Result<usize, DataError> {
        self.labels
            .get(index)
            .map(|&l| l as usize)
            .ok_or_else(|| DataError::IndexOutOfRange {
                path: self.root.clone(),
                index,
                len: self.files.len(),
            })
    }

    fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }
}

/// Reads and decodes one PNG/JPEG file (format from its content) to RGB.
pub fn decode_rgb(path: &Path) -> Result<image::RgbImage, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::from_io(path, "image file", e))?;
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        check_jpeg_complete(path, &bytes)?;
    }
    // Default limits (512 MiB per decode) stop a corrupt header from allocating without bound.
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| DataError::from_io(path, "image file", e))?;
    let decode_err = |error| DataError::Decode {
        path: path.to_path_buf(),
        error,
    };
    Ok(reader.decode().map_err(decode_err)?.into_rgb8())
}

/// The `image` crate's JPEG decoder runs zune-jpeg in lenient mode, which fills a truncated
/// scan with gray instead of failing (checked: a 512x512 progressive JPEG cut to 2 KB decodes to
/// a flat gray image). libjpeg (Pillow) reports such files as truncated; so do we: the last
/// start-of-scan marker (FF DA) must be followed by an end-of-image marker (FF D9). Inside
/// entropy-coded data a 0xFF byte is always followed by 0x00 or a restart marker, so neither
/// pair can occur there by accident.
fn check_jpeg_complete(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xff, 0xda]);
    let Some(sos) = last_sos else {
        return Err(DataError::CorruptImage {
            path: path.to_path_buf(),
            problem: "JPEG without image data (no start-of-scan marker): truncated".into(),
        });
    };
    if !bytes[sos..].windows(2).any(|w| w == [0xff, 0xd9]) {
        return Err(DataError::CorruptImage {
            path: path.to_path_buf(),
            problem: format!(
                "JPEG truncated: no end-of-image marker after the last scan ({} bytes)",
                bytes.len()
            ),
        });
    }
    Ok(())
}

/// The entries of `dir`, hidden ones (`.name`) left out, in sorted order.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io_err = |e| DataError::from_io(dir, "folder", e);
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let hidden = entry.file_name().as_encoded_bytes().starts_with(b".");
        if !hidden {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

/// Collects the image files under a class folder in torchvision's order: folders sorted by
/// their full path as a string (`sorted(os.walk(dir))`), files sorted by name within a folder.
fn collect_images(
    class_dir: &Path,
    images: &mut Vec<PathBuf>,
    skipped: &mut Vec<PathBuf>,
) -> Result<(), DataError> {
    let mut folders = Vec::new();
    list_tree(class_dir, 0, &mut folders)?;
    folders.sort_by(|(a, _), (b, _)| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    for (_, files) in folders {
        for file in files {
            if has_image_extension(&file) {
                images.push(file);
            } else {
                skipped.push(file);
            }
        }
    }
    Ok(())
}

/// Every folder under (and including) `dir` with its files (sorted), symbolic links followed.
fn list_tree(
    dir: &Path,
    depth: usize,
    folders: &mut Vec<(PathBuf, Vec<PathBuf>)>,
) -> Result<(), DataError> {
    if depth > MAX_DEPTH {
        return Err(DataError::invalid(
            dir,
            format!("folders nested deeper than {MAX_DEPTH} levels (a symbolic-link loop?)"),
        ));
    }
    let (sub_dirs, files): (Vec<PathBuf>, Vec<PathBuf>) =
        list_dir(dir)?.into_iter().partition(|p| p.is_dir());
    folders.push((dir.to_path_buf(), files));
    for sub in sub_dirs {
        list_tree(&sub, depth + 1, folders)?;
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures_dir;
    use serde_json::Value;

    fn folder_dir() -> PathBuf {
        fixtures_dir().join("imagefolder")
    }

    fn labels_json() -> Value {
        let text = std::fs::read_to_string(folder_dir().join("labels.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn reads_both_splits_against_labels_json() {
        let exp = labels_json();
        for split in ["train", "val"] {
            let ds = ImageFolder::open(&folder_dir().join(split)).unwrap();
            let class_to_idx: std::collections::BTreeMap<String, usize> = exp["class_to_idx"]
                [split]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap() as usize))
                .collect();
            assert_eq!(ds.class_to_idx(), class_to_idx, "{split}");
            let files: Vec<&Value> = exp["files"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["split"] == split)
                .collect();
            assert_eq!(ImageDataset::len(&ds), files.len());
            assert!(ds.skipped_files().is_empty());
            for f in files {
                let rel = f["path"].as_str().unwrap();
                let index = ds
                    .files()
                    .iter()
                    .position(|p| p.ends_with(rel))
                    .unwrap_or_else(|| panic!("{rel} not scanned"));
                let item = ds.load(index).unwrap();
                assert_eq!(
                    item.label as u64,
                    f["imagefolder_target"].as_u64().unwrap(),
                    "{rel}"
                );
                assert_eq!(item.width as u64, f["width"].as_u64().unwrap(), "{rel}");
                assert_eq!(item.height as u64, f["height"].as_u64().unwrap(), "{rel}");
                assert_eq!(item.channels, 3);
                let mean = mean_rgb(&item);
                for (c, want) in f["mean_rgb_pillow"].as_array().unwrap().iter().enumerate() {
                    let want = want.as_f64().unwrap();
                    assert!(
                        (mean[c] - want).abs() <= 1.0,
                        "{rel}: channel {c} mean {} vs Pillow {want}",
                        mean[c]
                    );
                }
            }
        }
    }

    fn mean_rgb(item: &ImageItem) -> [f64; 3] {
        let mut sum = [0f64; 3];
        for px in item.pixels.chunks_exact(3) {
            for c in 0..3 {
                sum[c] += px[c] as f64;
            }
        }
        let n = (item.height * item.width) as f64;
        sum.map(|s| s / n)
    }

    #[test]
    fn order_follows_torchvision() {
        let ds = ImageFolder::open(&folder_dir().join("train")).unwrap();
        let names: Vec<String> = ds
            .files()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "243_00.JPEG",
                "438_02.JPEG",
                "559_01.JPEG",
                "609_06.JPEG",
                "609_07.JPEG",
                "949_04.JPEG",
                "990_03.JPEG"
            ]
        );
        assert_eq!(ds.labels(), &[0, 1, 2, 3, 3, 4, 5]);
    }

    /// A temp copy of the train split to break.
    fn train_copy() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let src = folder_dir().join("train");
        for class in std::fs::read_dir(&src).unwrap() {
            let class = class.unwrap().path();
            let dst = tmp.path().join(class.file_name().unwrap());
            std::fs::create_dir(&dst).unwrap();
            for file in std::fs::read_dir(&class).unwrap() {
                let file = file.unwrap().path();
                std::fs::copy(&file, dst.join(file.file_name().unwrap())).unwrap();
            }
        }
        tmp
    }

    fn load_named(ds: &ImageFolder, name: &str) -> Result<ImageItem, DataError> {
        let index = ds.files().iter().position(|p| p.ends_with(name)).unwrap();
        ds.load(index)
    }

    #[test]
    fn truncated_jpeg_fails_at_load_naming_the_file() {
        let tmp = train_copy();
        let path = tmp.path().join("243/243_00.JPEG");
        let bytes = std::fs::read(&path).unwrap();
        for keep in [bytes.len() / 2, 2000, 300] {
            std::fs::write(&path, &bytes[..keep]).unwrap();
            let ds = ImageFolder::open(tmp.path()).unwrap();
            let err = load_named(&ds, "243/243_00.JPEG").unwrap_err();
            assert!(
                matches!(err, DataError::CorruptImage { .. }),
                "{keep}: {err:?}"
            );
            assert!(err.to_string().contains("243_00.JPEG"), "{err}");
            // The other images still load.
            assert!(load_named(&ds, "438/438_02.JPEG").is_ok());
        }
    }

    #[test]
    fn corrupt_jpeg_header_fails_at_load() {
        let tmp = train_copy();
        let path = tmp.path().join("559/559_01.JPEG");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[2..200].fill(0);
        std::fs::write(&path, &bytes).unwrap();
        let ds = ImageFolder::open(tmp.path()).unwrap();
        let err = load_named(&ds, "559/559_01.JPEG").unwrap_err();
        assert!(matches!(err, DataError::Decode { .. }), "{err:?}");
        assert!(err.to_string().contains("559_01.JPEG"), "{err}");
        // Not an image at all, under an image name.
        std::fs::write(&path, b"this is text, not a JPEG").unwrap();
        let err = load_named(&ds, "559/559_01.JPEG").unwrap_err();
        assert!(matches!(err, DataError::Decode { .. }), "{err:?}");
    }

    #[test]
    fn scan_errors_are_typed() {
        let tmp = train_copy();
        std::fs::create_dir(tmp.path().join("000_empty")).unwrap();
        std::fs::write(tmp.path().join("000_empty/notes.txt"), "no images").unwrap();
        let err = ImageFolder::open(tmp.path()).unwrap_err();
        assert!(matches!(err, DataError::EmptyClass { .. }), "{err:?}");
        assert!(err.to_string().contains("000_empty"), "{err}");

        let missing = tmp.path().join("no-such-root");
        let err = ImageFolder::open(&missing).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
        assert!(err.to_string().contains("no-such-root"), "{err}");

        let file_root = tmp.path().join("000_empty/notes.txt");
        let err = ImageFolder::open(&file_root).unwrap_err();
        assert!(matches!(err, DataError::Invalid { .. }), "{err:?}");

        let bare = tempfile::tempdir().unwrap();
        std::fs::write(bare.path().join("loose.jpg"), b"x").unwrap();
        let err = ImageFolder::open(bare.path()).unwrap_err();
        assert!(matches!(err, DataError::NoClasses { .. }), "{err:?}");
    }

    #[test]
    fn non_images_are_skipped_and_nested_images_found() {
        let tmp = train_copy();
        let class = tmp.path().join("243");
        std::fs::write(class.join("243_boxes.txt"), "boxes").unwrap();
        std::fs::write(class.join(".DS_Store"), "hidden").unwrap();
        std::fs::create_dir(class.join("images")).unwrap();
        std::fs::copy(
            folder_dir().join("train/438/438_02.JPEG"),
            class.join("images/extra.jpeg"),
        )
        .unwrap();
        let ds = ImageFolder::open(tmp.path()).unwrap();
        assert_eq!(ImageDataset::len(&ds), 8);
        assert_eq!(ds.skipped_files(), &[class.join("243_boxes.txt")]);
        assert_eq!(ds.files()[1], class.join("images/extra.jpeg"));
        assert_eq!(ds.labels()[..2], [0, 0]);
    }

    #[test]
    fn nested_folders_sort_as_path_strings() {
        // sorted(os.walk("c")) visits c/a-b before c/a/sub because '-' < '/'.
        let tmp = tempfile::tempdir().unwrap();
        let class = tmp.path().join("c");
        std::fs::create_dir_all(class.join("a/sub")).unwrap();
        std::fs::create_dir_all(class.join("a-b")).unwrap();
        let img = image::RgbImage::new(1, 1);
        img.save(class.join("a/sub/x.png")).unwrap();
        img.save(class.join("a-b/y.png")).unwrap();
        img.save(class.join("z.png")).unwrap();
        let ds = ImageFolder::open(tmp.path()).unwrap();
        let expected = [
            class.join("z.png"),
            class.join("a-b/y.png"),
            class.join("a/sub/x.png"),
        ];
        assert_eq!(ds.files(), &expected);
    }

    #[test]
    fn png_decodes_and_truncated_png_fails() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("a")).unwrap();
        let path = tmp.path().join("a/x.png");
        let img = image::GrayImage::from_fn(5, 4, |x, y| image::Luma([(x * 10 + y) as u8]));
        img.save(&path).unwrap();
        let ds = ImageFolder::open(tmp.path()).unwrap();
        let item = ds.load(0).unwrap();
        assert_eq!((item.height, item.width, item.channels), (4, 5, 3));
        assert_eq!(&item.pixels[3 * 6..3 * 7], &[11, 11, 11]); // (row 1, col 1) gray -> RGB
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
        let err = ds.load(0).unwrap_err();
        assert!(matches!(err, DataError::Decode { .. }), "{err:?}");
        assert!(err.to_string().contains("x.png"), "{err}");
    }
}
