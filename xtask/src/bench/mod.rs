//! `cargo xtask bench <target>`: benchmarks that run the peer library (OpenCV, PyTorch, timm)
//! in the same run and report ratios. Benchmarks are never timed tests.

mod saliency;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {
    /// Saliency detectors vs OpenCV 4.10 (opencv-contrib-python): per-image and batch speed.
    Saliency(saliency::SaliencyBench),
}

pub fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Saliency(args) => saliency::run(args),
    }
}
