//! `cargo xtask bench <target>`: benchmarks that run the peer library (OpenCV, PyTorch, timm)
//! in the same run and report ratios. Benchmarks are never timed tests.

mod mixing;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {
    /// Every sal-core mixer per batch on burn's CPU backend vs timm's Mixup on PyTorch CPU.
    Mixing(mixing::MixingBench),
}

pub fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Mixing(args) => mixing::run(args),
    }
}
