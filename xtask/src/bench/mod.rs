//! `cargo xtask bench <target>`: benchmarks that run the peer library (OpenCV, PyTorch, timm)
//! in the same run and report ratios. Benchmarks are never timed tests.

mod models;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {
    /// CIFAR ResNet training-step and inference throughput, burn vs PyTorch.
    Models(models::ModelsBench),
}

pub fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Models(args) => models::run(args),
    }
}
