//! `cargo xtask bench <target>`: benchmarks that run the peer library (OpenCV, PyTorch, timm)
//! in the same run and report ratios. Benchmarks are never timed tests.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {}

pub fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {}
}
