//! `cargo xtask <command>`: the project's one entry point (cargo-xtask convention).
//!
//! Each command lives in its own module; this file only parses the command line and dispatches.
//! Errors reach the user through `anyhow` with the file or argument they concern.

mod bench;
mod pyenv;
mod saliency;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Saliency-guided augmentation: train, evaluate, benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks against the peer library, reported as ratios.
    #[command(subcommand)]
    Bench(bench::Bench),
    /// A saliency map of one image (or Wang & Dudek masks of a frame sequence).
    Saliency(saliency::SaliencyArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(b) => bench::run(b),
        Command::Saliency(args) => saliency::run(args),
    }
}
