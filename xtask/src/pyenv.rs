//! Python peers for the benchmarks (OpenCV, PyTorch, timm), in a virtual environment the bench
//! creates itself under `target/peer-venv/<name>`, so a benchmark never depends on what the
//! user's Python happens to have installed.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// PyTorch (and timm) from PyPI, shared by the models and mixing benchmarks. PyPI's Linux `torch`
/// wheel is the CUDA build, and its declared dependencies are several GB (the CPU-only wheels
/// live on the PyTorch index, which is not reachable everywhere). Its libraries only need the
/// CUDA *runtime* libraries to load, so `torch` is installed without dependencies plus exactly
/// those libraries (the versions torch 2.15.0's metadata pins) and its pure-Python requirements:
/// no triton, cuSOLVER or CCCL. timm comes without torchvision: the mixing bench loads timm's
/// `data/mixup.py`, which needs only torch and numpy.
pub const TORCH_PACKAGES: &[&str] = &[
    "--no-deps",
    "torch==2.15.0",
    "filelock",
    "typing-extensions",
    "sympy",
    "mpmath",
    "networkx",
    "jinja2",
    "markupsafe",
    "fsspec",
    "numpy",
    "nvidia-cuda-runtime==13.2.86",
    "nvidia-cuda-cupti==13.2.86",
    "nvidia-cuda-nvrtc==13.2.86",
    "nvidia-cublas==13.4.1.3",
    "nvidia-cufft==12.2.0.57",
    "nvidia-cufile==1.17.1.22",
    "nvidia-cusparse==12.7.10.12",
    "nvidia-nvjitlink==13.5.37",
    "nvidia-cusparselt-cu13==0.8.1",
    "nvidia-nccl-cu13==2.30.7",
    "nvidia-cudnn-cu13==9.26.0.51",
    "nvidia-nvshmem-cu13==3.7.2",
    "timm==1.0.31",
];

/// OpenCV with its contrib modules (the saliency detectors), for the saliency benchmark.
pub const OPENCV_PACKAGES: &[&str] = &["opencv-contrib-python==4.10.0.84", "numpy"];

/// A virtual environment holding exactly the pinned packages it was created with.
pub struct PyEnv {
    dir: PathBuf,
}

impl PyEnv {
    /// Creates (once) and returns the environment `name` with `packages` (pip requirement
    /// strings, e.g. `"opencv-contrib-python==4.10.0.84"`) installed. A marker file records the
    /// requirement list, so a changed list rebuilds the environment.
    fn ensure(name: &str, packages: &[&str]) -> Result<Self> {
        let dir = workspace_root().join("target").join("peer-venv").join(name);
        let marker = dir.join("requirements.installed");
        let wanted = packages.join("\n");
        if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
            return Ok(Self { dir });
        }
        eprintln!(
            "creating the Python peer environment {} ({})",
            dir.display(),
            packages.join(", ")
        );
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        run_checked(
            Command::new("python3").args(["-m", "venv"]).arg(&dir),
            "python3 -m venv",
        )?;
        let env = Self { dir };
        run_checked(
            Command::new(env.python())
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(packages),
            "pip install",
        )?;
        std::fs::write(&marker, wanted).with_context(|| format!("writing {}", marker.display()))?;
        Ok(env)
    }

    /// The PyTorch + timm environment of [`TORCH_PACKAGES`].
    pub fn torch() -> Result<Self> {
        Self::ensure("torch", TORCH_PACKAGES)
    }

    /// The OpenCV environment of [`OPENCV_PACKAGES`].
    pub fn opencv() -> Result<Self> {
        Self::ensure("opencv", OPENCV_PACKAGES)
    }

    /// The environment's interpreter.
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    /// Runs `script` (Python source) with `args`; returns its stdout. Its stderr goes to ours, so
    /// the peer's own progress and errors stay visible.
    pub fn run_script(&self, script: &str, args: &[String]) -> Result<String> {
        let out = Command::new(self.python())
            .arg("-c")
            .arg(script)
            .args(args)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("starting {}", self.python().display()))?;
        if !out.status.success() {
            bail!("the Python peer script failed ({})", out.status);
        }
        String::from_utf8(out.stdout).context("the Python peer printed non-UTF-8 output")
    }
}

/// Runs `cmd` (`what` names it in errors) and fails unless it succeeds.
fn run_checked(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!(
            "{what} failed ({status}); the benchmark needs Python 3 with venv and access to PyPI"
        );
    }
    Ok(())
}

/// The workspace root (the parent of `xtask/`): the peer environments live in its `target/`.
/// Other commands (data, saliency figures) find their directories from it too.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
