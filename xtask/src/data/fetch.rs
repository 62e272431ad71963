//! Fetching the embedded default data set, Fashion-MNIST, without a download script.
//!
//! [`fashion_mnist`] makes the four original gzipped IDX files available in a folder, trying in
//! order:
//! 1. the folder already holds them (plain or `.gz`): they are verified;
//! 2. the Debian package `dataset-fashion-mnist` is installed: its files are copied;
//! 3. `apt-get download dataset-fashion-mnist` + `dpkg-deb -x` (no root needed; needs apt's
//!    package lists): the files are taken from the extracted package;
//! 4. otherwise [`FetchError::Unavailable`], whose message says exactly how to get the files.
//!
//! Files are staged in a sibling folder and moved in only once they verified
//! ([`FashionMnist::verify`]: counts, image size, the balanced label histogram), so a crash never
//! leaves half a file under the final name.

use sal_train::data::{
    DataError, FashionMnist, STANDARD_FILES, VerifiedFashionMnist, find_plain_or_gz,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The official download location of the four files (Fashion-MNIST README, Xiao et al. 2017).
const DOWNLOAD_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";

/// Why Fashion-MNIST could not be made available. Every variant names the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The files exist but do not read as Fashion-MNIST.
    #[error("Fashion-MNIST in {} is unusable (remove it to fetch again): {error}", dir.display())]
    Verify { dir: PathBuf, error: DataError },
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
         a) Debian 12 or later: `sudo apt-get install {}` (installs {}), or\n  \
         b) download these four files into {}:\n",
        FashionMnist::DEBIAN_PACKAGE,
        FashionMnist::DEBIAN_DIR,
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
            system_dir: PathBuf::from(FashionMnist::DEBIAN_DIR),
            apt: true,
        }
    }
}

/// Makes Fashion-MNIST available in `target` (see the module docs), reporting each step to
/// `progress`, and returns it verified.
pub fn fashion_mnist(
    target: &Path,
    sources: &FetchSources,
    progress: &mut dyn FnMut(&str),
) -> Result<VerifiedFashionMnist, FetchError> {
    if FashionMnist::has_files(target) {
        progress(&format!("Fashion-MNIST: verifying {}", target.display()));
        return verify(target);
    }
    let mut tried = Vec::new();
    let system_dir = &sources.system_dir;
    if FashionMnist::has_files(system_dir) {
        progress(&format!(
            "Fashion-MNIST: copying from {} (Debian package {})",
            system_dir.display(),
            FashionMnist::DEBIAN_PACKAGE
        ));
        return install_from(system_dir, target);
    }
    tried.push(format!("{}: not installed", system_dir.display()));
    let package = FashionMnist::DEBIAN_PACKAGE;
    if sources.apt {
        progress(&format!(
            "Fashion-MNIST: fetching the Debian package with `apt-get download {package}`"
        ));
        match apt_download(&parent(target)) {
            Ok(staging) => {
                let extracted = staging
                    .path()
                    .join("extracted")
                    .join(FashionMnist::DEBIAN_DIR.trim_start_matches('/'));
                if FashionMnist::has_files(&extracted) {
                    return install_from(&extracted, target);
                }
                tried.push(format!(
                    "apt-get download {package}: the package holds no {}",
                    FashionMnist::DEBIAN_DIR
                ));
            }
            Err(reason) => tried.push(format!("apt-get download {package}: {reason}")),
        }
    } else {
        tried.push("apt-get download: disabled".into());
    }
    Err(FetchError::Unavailable {
        dir: target.to_path_buf(),
        tried,
    })
}

fn verify(dir: &Path) -> Result<VerifiedFashionMnist, FetchError> {
    FashionMnist::verify(dir).map_err(|error| FetchError::Verify {
        dir: dir.to_path_buf(),
        error,
    })
}

/// The folder that receives staging folders: `target`'s parent (the current folder for a bare
/// name).
fn parent(target: &Path) -> PathBuf {
    target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Copies the four files from `source` into a staging folder beside `target`, verifies them
/// there, then moves them into `target`.
fn install_from(source: &Path, target: &Path) -> Result<VerifiedFashionMnist, FetchError> {
    let io = |path: &Path, action, error| FetchError::Io {
        path: path.to_path_buf(),
        action,
        error,
    };
    let parent = parent(target);
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, "cannot create the folder", e))?;
    let staging = StagingDir::new(&parent, ".fashion-mnist-staging")
        .map_err(|e| io(&parent, "cannot create a staging folder", e))?;
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
    Ok(VerifiedFashionMnist {
        dir: target.to_path_buf(),
        ..verified
    })
}

/// Runs `apt-get download` + `dpkg-deb -x` in a staging folder under `dir`; returns that folder
/// (the package's tree is in its `extracted/`), or why it failed.
fn apt_download(dir: &Path) -> Result<StagingDir, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let staging = StagingDir::new(dir, ".fashion-mnist-apt")
        .map_err(|e| format!("cannot create a staging folder: {e}"))?;
    run(Command::new("apt-get")
        .arg("download")
        .arg(FashionMnist::DEBIAN_PACKAGE)
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

    fn quiet() -> impl FnMut(&str) {
        |_: &str| {}
    }

    fn fixtures_idx() -> PathBuf {
        crate::pyenv::workspace_root().join("tests/fixtures/idx")
    }

    /// Needs the Debian package `dataset-fashion-mnist` (installed here and in CI).
    #[test]
    fn copies_from_the_debian_package_and_verifies() {
        assert!(
            FashionMnist::has_files(Path::new(FashionMnist::DEBIAN_DIR)),
            "install the Debian package {} (see datasets/README.md)",
            FashionMnist::DEBIAN_PACKAGE
        );
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("datasets/fashion-mnist");
        let sources = FetchSources {
            apt: false,
            ..FetchSources::default()
        };
        let mut messages = Vec::new();
        let verified =
            fashion_mnist(&target, &sources, &mut |m| messages.push(m.to_string())).unwrap();
        assert_eq!(verified.dir, target);
        assert_eq!(
            (verified.train, verified.test),
            (FashionMnist::TRAIN_COUNT, FashionMnist::TEST_COUNT)
        );
        assert!(
            messages[0].contains(FashionMnist::DEBIAN_DIR),
            "{messages:?}"
        );
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
        let again = fashion_mnist(&target, &none, &mut quiet()).unwrap();
        assert_eq!(again, verified);
        assert_eq!(
            std::fs::read_dir(tmp.path().join("datasets"))
                .unwrap()
                .count(),
            1,
            "only fashion-mnist/ is left beside it"
        );
    }

    #[test]
    fn unavailable_says_how_to_get_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let sources = FetchSources {
            system_dir: tmp.path().join("nowhere"),
            apt: false,
        };
        let target = tmp.path().join("fmnist");
        let err = fashion_mnist(&target, &sources, &mut quiet()).unwrap_err();
        assert!(matches!(err, FetchError::Unavailable { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("apt-get install {}", FashionMnist::DEBIAN_PACKAGE)),
            "{msg}"
        );
        for name in STANDARD_FILES {
            assert!(msg.contains(&format!("{DOWNLOAD_URL}/{name}.gz")), "{msg}");
        }
        assert!(msg.contains(&target.display().to_string()), "{msg}");
    }

    #[test]
    fn a_wrong_data_set_in_place_is_rejected() {
        // The fixture's 64-image slice under all four names: it reads, but the counts are wrong.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fashion-mnist");
        std::fs::create_dir(&dir).unwrap();
        let idx = fixtures_idx();
        for (name, src) in STANDARD_FILES.iter().zip([
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
        ]) {
            std::fs::copy(idx.join(src), dir.join(name)).unwrap();
        }
        let err = fashion_mnist(&dir, &FetchSources::default(), &mut quiet()).unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::Verify {
                    error: DataError::Invalid { .. },
                    ..
                }
            ),
            "{err:?}"
        );
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
        let err = fashion_mnist(&dir, &FetchSources::default(), &mut quiet()).unwrap_err();
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
    fn fetches_with_apt_get_download() {
        let tmp = tempfile::tempdir().unwrap();
        let sources = FetchSources {
            system_dir: tmp.path().join("nowhere"),
            apt: true,
        };
        let target = tmp.path().join("fashion-mnist");
        let verified = fashion_mnist(&target, &sources, &mut quiet()).unwrap();
        assert_eq!(
            (verified.train, verified.test),
            (FashionMnist::TRAIN_COUNT, FashionMnist::TEST_COUNT)
        );
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
