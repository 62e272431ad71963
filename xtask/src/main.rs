//! `cargo xtask <command>`: the project's one entry point (cargo-xtask convention).
//!
//! Each command lives in its own module; this file only parses the command line and dispatches.
//! Errors reach the user through `anyhow` with the file or argument they concern.

// The only unsafe code is the allocator tuning call in `allocator.rs`, which allows it locally.
#![deny(unsafe_code)]

mod allocator;
mod bench;
mod data;
mod eta;
mod eval;
mod graft_areas;
mod models;
mod pyenv;
mod reproduce;
mod saliency;
mod study;
mod train;
mod visualize;

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
    /// Train a model from an experiment config.
    Train(train::TrainArgs),
    /// Benchmarks against the peer library, reported as ratios.
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Evaluate a trained run: clean top-1/top-5, FGSM, occlusion; writes eval.json.
    Eval(eval::EvalArgs),
    /// Get the default data set (Fashion-MNIST) and check data sets on disk.
    #[command(subcommand)]
    Data(data::Data),
    /// How much of each image Saliency Grafting grafts under a model (quantiles per grid).
    GraftAreas(graft_areas::GraftAreasArgs),
    /// The model zoo: `<name> <classes> <params>` per architecture and class count.
    Models(models::ModelsArgs),
    /// Run a paper table's configs over seeds and put our numbers beside the paper's.
    Reproduce(reproduce::ReproduceArgs),
    /// Train a study's configs over seeds and compare them: errors, time, Welch's t-tests.
    Study(study::StudyArgs),
    /// A saliency map of one image (or Wang & Dudek masks of a frame sequence).
    Saliency(saliency::SaliencyArgs),
    /// Pictures of a mixing method on real data: target, source, mixed image and label.
    Visualize(visualize::VisualizeArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Train(args) => train::run(args),
        Command::Bench(b) => bench::run(b),
        Command::Data(d) => data::run(d),
        Command::Eval(args) => eval::run(args),
        Command::GraftAreas(args) => graft_areas::run(args),
        Command::Models(args) => models::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Saliency(args) => saliency::run(args),
        Command::Study(args) => study::run(args),
        Command::Visualize(args) => visualize::run(args),
    }
}
