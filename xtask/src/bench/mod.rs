//! `cargo xtask bench <target>`: benchmarks that run the peer library (OpenCV, PyTorch, timm)
//! in the same run and report ratios. Benchmarks are never timed tests.

mod measure;
mod mixing;
mod models;
mod overhead;
mod quickstart;
mod saliency;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {
    /// CIFAR ResNet training-step and inference throughput, burn vs PyTorch.
    Models(models::ModelsBench),
    /// Saliency detectors vs OpenCV 4.10 (opencv-contrib-python): per-image and batch speed.
    Saliency(saliency::SaliencyBench),
    /// Every sal-core mixer per batch on burn's CPU backend vs timm's Mixup on PyTorch CPU.
    Mixing(mixing::MixingBench),
    /// What each mixing method adds to a CIFAR ResNet-18 training step, against the baseline
    /// and the method's floor (one process, methods round-robin).
    Overhead(overhead::OverheadBench),
    /// The quickstart end to end: burn's trainer against a lean in-memory PyTorch loop on the
    /// same images, fp32 and bf16.
    Quickstart(quickstart::QuickstartBench),
}

pub fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Models(args) => models::run(args),
        Bench::Saliency(args) => saliency::run(args),
        Bench::Mixing(args) => mixing::run(args),
        Bench::Overhead(args) => overhead::run(args),
        Bench::Quickstart(args) => quickstart::run(args),
    }
}

/// A PyTorch peer script with the network both model peers build (`cifar_resnet_torch.py`)
/// before it: `python -c` runs one string, so the shared part is prepended.
fn with_torch_resnet(script: &str) -> String {
    format!("{}\n{script}", include_str!("cifar_resnet_torch.py"))
}
