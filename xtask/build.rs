//! Stamps the binary with the commit its code was built from, for `results.json`.
//!
//! Reading git when a run ends names the checkout as it is then, not the code that trained: a
//! long study run by a copy of the binary while the checkout moves on would record commits that
//! never trained it. So the commit is read here, at build time, into `SAL_BUILD_COMMIT`
//! (`<commit>-dirty` when the code's files differ from it); without git or outside a checkout
//! nothing is set, and `results.json` records no commit.

use std::path::Path;
use std::process::Command;

/// What the binary is compiled from; a change here re-runs this script (so `-dirty` is
/// current), and the same paths decide `-dirty`.
const CODE: &[&str] = &["crates", "xtask", "Cargo.toml", "Cargo.lock"];

fn main() {
    // Read when the script runs, not baked in when it is compiled: a target directory shared
    // by two checkouts reuses one compiled script for both.
    let package = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&package).join("..");
    println!("cargo:rerun-if-changed=build.rs");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return;
    };
    // Paths relative to this package, which cargo resolves in the checkout being built: an
    // absolute path would tie a target directory shared by two checkouts to the one that
    // built last, and the other's changes would not re-run this script.
    let watch = |path: &Path| {
        if root.join(path).exists() {
            println!(
                "cargo:rerun-if-changed={}",
                Path::new("..").join(path).display()
            );
        }
    };
    for path in CODE {
        watch(Path::new(path));
    }
    // A commit or checkout moves HEAD or a branch's ref. (Not the index: `git status`
    // rewrites it, which would rebuild the binary for nothing.)
    for name in ["HEAD", "refs", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            watch(Path::new(&path)); // relative to `root` unless absolute
        }
    }
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(CODE);
    let dirty = git(&status).is_some_and(|s| !s.is_empty());
    let suffix = if dirty { "-dirty" } else { "" };
    println!("cargo:rustc-env=SAL_BUILD_COMMIT={commit}{suffix}");
}
