//! Getting the embedded default data set, Fashion-MNIST, onto disk without a download script.
//!
//! [`ensure`] makes the four original gzipped IDX files available under
//! `<datasets>/fashion-mnist/`, trying in order:
//! 1. the folder already holds them (plain or `.gz`);
//! 2. `/usr/share/datasets/fashion-mnist`, installed by the Debian package
//!    `dataset-fashion-mnist`: the files are copied;
//! 3. `apt-get download dataset-fashion-mnist` + `dpkg-deb -x` (no root needed; needs apt's
//!    package lists): the files are taken from the extracted package;
//! 4. otherwise it fails with [`FetchError::Unavailable`], whose message says exactly how to get
//!    the files.
//!
//! Files are staged in a sibling folder and moved in only after they verified, so a crash never
//! leaves half a file under the final name. Verification opens both splits and checks 60,000 /
//! 10,000 images of 28x28 and the label histogram (Fashion-MNIST is balanced: 6,000 / 1,000
//! images per class).

use super::idx::{STANDARD_FILES, find_plain_or_gz};
use super::{DataError, FashionMnist, Split};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the Debian package `dataset-fashion-mnist` installs the files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The Debian package holding the original gzipped files.
pub const DEBIAN_PACKAGE: &str = "dataset-fashion-mnist";
/// The folder under the datasets directory.
pub const FOLDER: &str = "fashion-mnist";
/// Images in the train and test splits.
pub const TRAIN_COUNT: usize = 60_000;
pub const TEST_COUNT: usize = 10_000;
/// The official download location of the four files (Fashion-MNIST README, Xiao et al. 2017).
pub const DOWNLOAD_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";

/// Why Fashion-MNIST could not be made available. Every variant names the path concerned; the
/// message is complete on its own, like [`DataError`]'s.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The files exist but do not read as Fashion-MNIST.
    #[error(
        "{}: Fashion-MNIST files present but unusable (remove them to fetch again): {error}",
        dir.display()
    )]
    Verify { dir: PathBuf, error: DataError },
    /// The files read but hold the wrong number of images or an unbalanced label histogram.
    #[error("{}: not Fashion-MNIST (remove it to fetch again): {problem}", path.display())]
    Content { path: PathBuf, problem: String },
    /// Creating, copying or moving a file failed.
    #[error("{}: {action}: {error}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        error: std::io::Error,
    },
    /// No source worked; the message lists what was tried and how to get the files.
    #[error("{}", unavailable_message(dir, tried))]
    Unavailable { dir: PathBuf, tried: Vec<String> },
}

fn unavailable_message(dir: &Path, tried: &[String]) -> String {
    let mut msg = format!(
        "Fashion-MNIST is not in {} and could not be fetched.\nTried:\n",
        dir.display()
    );
    for attempt in tried {
        msg.push_str(&format!("  - {attempt}\n"));
    }
    msg.push_str(&format!(
        "Get it in one of these ways, then run again:\n  \
         a) Debian 12 or later: `sudo apt-get install {DEBIAN_PACKAGE}` (installs {SYSTEM_DIR}), or\n  \
         b) download these four files into {}:\n",
        dir.display()
    ));
    for name in STANDARD_FILES {
        msg.push_str(&format!("     {DOWNLOAD_URL}/{name}.gz\n"));
    }
    msg.push_str(
        "     (also in github.com/zalandoresearch/fashion-mnist, folder data/fashion; keep the \
         names, gzipped or not)",
    );
    msg
}

/// Where the files may come from; [`FetchSources::default`] is the real system.
#[derive(Clone, Debug)]
pub struct FetchSources {
    /// A folder holding the four files (the Debian package's install location by default).
    pub system_dir: PathBuf,
    /// Whether to try `apt-get download` + `dpkg-deb -x`.
    pub apt: bool,
}

impl Default for FetchSources {
    fn default() -> Self {
        Self {
            system_dir: PathBuf::from(SYSTEM_DIR),
            apt: true,
        }
    }
}

/// Fashion-MNIST verified on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The folder holding the four files.
    pub dir: PathBuf,
    pub train: usize,
    pub test: usize,
}

/// Makes Fashion-MNIST available under `datasets_dir/fashion-mnist` (see the module docs),
/// printing progress to stderr, and returns that folder once verified.
pub fn ensure(datasets_dir: &Path) -> Result<PathBuf, FetchError> {
    ensure_with(datasets_dir, &FetchSources::default(), &mut |msg| {
        eprintln!("{msg}")
    })
    .map(|v| v.dir)
}

/// [`ensure`] with explicit sources and a progress callback.
pub fn ensure_with(
    datasets_dir: &Path,
    sources: &FetchSources,
    progress: &mut dyn FnMut(&str),
) -> Result<Verified, FetchError> {
    let target = datasets_dir.join(FOLDER);
    if has_all_files(&target) {
        progress(&format!("Fashion-MNIST: verifying {}", target.display()));
        return verify(&target);
    }
    let mut tried = Vec::new();
    let system_dir = &sources.system_dir;
    if has_all_files(system_dir) {
        progress(&format!(
            "Fashion-MNIST: copying from {} (Debian package {DEBIAN_PACKAGE})",
            system_dir.display()
        ));
        return install_from(system_dir, datasets_dir, &target);
    }
    tried.push(format!("{}: not installed", system_dir.display()));
    if sources.apt {
        progress(&format!(
            "Fashion-MNIST: fetching the Debian package with `apt-get download {DEBIAN_PACKAGE}`"
        ));
        match apt_download(datasets_dir) {
            Ok(staging) => {
                let extracted = staging
                    .path()
                    .join("extracted")
                    .join(SYSTEM_DIR.trim_start_matches('/'));
                if has_all_files(&extracted) {
                    return install_from(&extracted, datasets_dir, &target);
                }
                tried.push(format!(
                    "apt-get download {DEBIAN_PACKAGE}: the package holds no {SYSTEM_DIR}"
                ));
            }
            Err(reason) => tried.push(format!("apt-get download {DEBIAN_PACKAGE}: {reason}")),
        }
    } else {
        tried.push("apt-get download: disabled".into());
    }
    Err(FetchError::Unavailable { dir: target, tried })
}

/// Opens both splits in `dir` and checks counts, image size and the per-class histogram.
pub fn verify(dir: &Path) -> Result<Verified, FetchError> {
    let verify_err = |error| FetchError::Verify {
        dir: dir.to_path_buf(),
        error,
    };
    let mut counts = [0; 2];
    for (slot, (split, expected)) in [(Split::Train, TRAIN_COUNT), (Split::Test, TEST_COUNT)]
        .into_iter()
        .enumerate()
    {
        let images = FashionMnist::open(dir, split).map_err(verify_err)?;
        let path = images.source().to_path_buf();
        let content = |problem: String| FetchError::Content {
            path: path.clone(),
            problem,
        };
        if images.labels().len() != expected {
            return Err(content(format!(
                "{} images, expected {expected}",
                images.labels().len()
            )));
        }
        if images.image_shape() != (28, 28, 1) {
            return Err(content(format!(
                "images are {:?} (height, width, channels), expected (28, 28, 1)",
                images.image_shape()
            )));
        }
        let per_class = expected / FashionMnist::CLASS_NAMES.len();
        let histogram = images.class_counts();
        if histogram.iter().any(|&n| n != per_class) {
            return Err(content(format!(
                "label histogram {histogram:?}, expected {per_class} per class"
            )));
        }
        counts[slot] = images.labels().len();
    }
    Ok(Verified {
        dir: dir.to_path_buf(),
        train: counts[0],
        test: counts[1],
    })
}

fn has_all_files(dir: &Path) -> bool {
    STANDARD_FILES
        .iter()
        .all(|name| find_plain_or_gz(dir, name).is_some())
}

/// Copies the four files from `source` into a staging folder, verifies them there, then moves
/// them into `target`.
fn install_from(source: &Path, datasets_dir: &Path, target: &Path) -> Result<Verified, FetchError> {
    let io = |path: &Path, action, error| FetchError::Io {
        path: path.to_path_buf(),
        action,
        error,
    };
    std::fs::create_dir_all(datasets_dir)
        .map_err(|e| io(datasets_dir, "cannot create the datasets folder", e))?;
    let staging = StagingDir::new(datasets_dir, ".fashion-mnist-staging")
        .map_err(|e| io(datasets_dir, "cannot create a staging folder", e))?;
    let mut names = Vec::new();
    for name in STANDARD_FILES {
        let from = find_plain_or_gz(source, name).unwrap_or_else(|| source.join(name));
        let file_name = from.file_name().unwrap_or(name.as_ref()).to_owned();
        std::fs::copy(&from, staging.path().join(&file_name))
            .map_err(|e| io(&from, "cannot copy", e))?;
        names.push(file_name);
    }
    let verified = verify(staging.path())?;
    std::fs::create_dir_all(target).map_err(|e| io(target, "cannot create", e))?;
    for name in names {
        let to = target.join(&name);
        std::fs::rename(staging.path().join(&name), &to)
            .map_err(|e| io(&to, "cannot move into place", e))?;
    }
    // A rename within one folder tree does not change the bytes: no second verification.
    Ok(Verified {
        dir: target.to_path_buf(),
        ..verified
    })
}

/// Runs `apt-get download` + `dpkg-deb -x` in a staging folder under `datasets_dir`; returns
/// that folder (the package's tree is in its `extracted/`), or why it failed.
fn apt_download(datasets_dir: &Path) -> Result<StagingDir, String> {
    std::fs::create_dir_all(datasets_dir)
        .map_err(|e| format!("cannot create {}: {e}", datasets_dir.display()))?;
    let staging = StagingDir::new(datasets_dir, ".fashion-mnist-apt")
        .map_err(|e| format!("cannot create a staging folder: {e}"))?;
    run(Command::new("apt-get")
        .arg("download")
        .arg(DEBIAN_PACKAGE)
        .current_dir(staging.path()))?;
    let deb = std::fs::read_dir(staging.path())
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get reported success but left no .deb file")?;
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(staging.path().join("extracted")))?;
    Ok(staging)
}

/// A uniquely named folder that is removed (with its content) when dropped: staging never
/// outlives the call, whichever way it returns.
struct StagingDir(PathBuf);

impl StagingDir {
    fn new(parent: &Path, prefix: &str) -> std::io::Result<Self> {
        let pid = std::process::id();
        for attempt in 0..1000 {
            let path = parent.join(format!("{prefix}-{pid}-{attempt}"));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "1000 staging folders already exist",
        ))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        // Best effort: a leftover hidden folder is harmless and git-ignored.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command, returning its stderr's last line as the reason when it fails.
fn run(cmd: &mut Command) -> Result<(), String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!("{program} failed ({}): {last}", output.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures_dir;

    fn quiet() -> impl FnMut(&str) {
        |_: &str| {}
    }

    /// Needs the Debian package `dataset-fashion-mnist` (installed here and in CI).
    #[test]
    fn ensure_copies_from_the_debian_package_and_verifies() {
        assert!(
            has_all_files(Path::new(SYSTEM_DIR)),
            "install the Debian package {DEBIAN_PACKAGE} (see datasets/README.md)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let datasets = tmp.path().join("datasets");
        let sources = FetchSources {
            apt: false,
            ..FetchSources::default()
        };
        let mut messages = Vec::new();
        let verified =
            ensure_with(&datasets, &sources, &mut |m| messages.push(m.to_string())).unwrap();
        assert_eq!(verified.dir, datasets.join(FOLDER));
        assert_eq!((verified.train, verified.test), (TRAIN_COUNT, TEST_COUNT));
        assert!(messages[0].contains(SYSTEM_DIR), "{messages:?}");
        let mut names: Vec<String> = std::fs::read_dir(&verified.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut expected: Vec<String> = STANDARD_FILES.iter().map(|n| format!("{n}.gz")).collect();
        expected.sort();
        assert_eq!(names, expected, "staging folders are cleaned up");
        // The second call finds the files in place (nothing to copy from).
        let none = FetchSources {
            system_dir: tmp.path().join("nowhere"),
            apt: false,
        };
        let again = ensure_with(&datasets, &none, &mut quiet()).unwrap();
        assert_eq!(again, verified);
        assert_eq!(
            std::fs::read_dir(&datasets).unwrap().count(),
            1,
            "only fashion-mnist/ is left in the datasets folder"
        );
    }

    #[test]
    fn unavailable_says_how_to_get_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let sources = FetchSources {
            system_dir: tmp.path().join("nowhere"),
            apt: false,
        };
        let err = ensure_with(tmp.path(), &sources, &mut quiet()).unwrap_err();
        assert!(matches!(err, FetchError::Unavailable { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("apt-get install {DEBIAN_PACKAGE}")),
            "{msg}"
        );
        for name in STANDARD_FILES {
            assert!(msg.contains(&format!("{DOWNLOAD_URL}/{name}.gz")), "{msg}");
        }
        assert!(
            msg.contains(&tmp.path().join(FOLDER).display().to_string()),
            "{msg}"
        );
    }

    #[test]
    fn a_wrong_data_set_in_place_is_rejected() {
        // The fixture's 64-image slice under all four names: it reads, but the counts are wrong.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(FOLDER);
        std::fs::create_dir(&dir).unwrap();
        let idx = fixtures_dir().join("idx");
        for (name, src) in STANDARD_FILES.iter().zip([
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
        ]) {
            std::fs::copy(idx.join(src), dir.join(name)).unwrap();
        }
        let err = ensure_with(tmp.path(), &FetchSources::default(), &mut quiet()).unwrap_err();
        assert!(matches!(err, FetchError::Content { .. }), "{err:?}");
        assert!(
            err.to_string().contains("64 images, expected 60000"),
            "{err}"
        );
        assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
        // A broken file in place is named.
        std::fs::copy(
            idx.join("bad/truncated-labels-idx1-ubyte.gz"),
            dir.join(STANDARD_FILES[1]),
        )
        .unwrap();
        let err = ensure_with(tmp.path(), &FetchSources::default(), &mut quiet()).unwrap_err();
        assert!(matches!(
            err,
            FetchError::Verify {
                error: DataError::Truncated { .. },
                ..
            }
        ));
        assert!(err.to_string().contains(STANDARD_FILES[1]), "{err}");
    }

    /// Exercises the `apt-get download` path for real: needs apt's package lists and access to
    /// the Debian archive, so it is not part of the default test run.
    #[test]
    #[ignore = "downloads the Debian package"]
    fn ensure_via_apt_get_download() {
        let tmp = tempfile::tempdir().unwrap();
        let sources = FetchSources {
            system_dir: tmp.path().join("nowhere"),
            apt: true,
        };
        let verified = ensure_with(tmp.path(), &sources, &mut quiet()).unwrap();
        assert_eq!((verified.train, verified.test), (TRAIN_COUNT, TEST_COUNT));
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
