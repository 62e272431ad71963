//! `cargo xtask reproduce <folder>... [--seeds 0,1,2] [--epochs-scale F] [--data-root DIR]
//! [--backend B] [--dry-run]`: every row (config) of a paper table over the seeds, then our
//! number beside the paper's in `<runs>/<folder>/results.md` and `results.png`
//! (`sal_train::reproduce`, docs/reproducing.md).
//!
//! Each run is resumable: a finished one is skipped, an interrupted one resumed. A row that
//! needs something the project lacks (`[paper] requires`) or data that is not here is listed
//! with the reason and not run.

use crate::allocator;
use crate::eta::{self, Eta};
use anyhow::{Context, Result};
use clap::Args;
use sal_train::BackendKind;
use sal_train::checkpoint::latest_complete_epoch;
use sal_train::reproduce::{
    ReproduceOptions, Row, Status, row_result, rows, statuses, table_dir, write_results,
};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct ReproduceArgs {
    /// Table folders of configs, e.g. experiments/paper/saliencymix/table1.
    #[arg(required = true)]
    folders: Vec<PathBuf>,
    #[command(flatten)]
    runs: RunArgs,
    /// Train each row for this fraction of its epochs (milestones scaled alike), in (0, 1]:
    /// short runs whose numbers are NOT comparable with the paper's (results.md says so).
    #[arg(long, default_value_t = 1.0)]
    epochs_scale: f64,
    /// List each row, whether it can run here, its command and run directories; run nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The runs' seeds and places, shared by `reproduce` and `study`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// Seeds of each config's runs.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// The folder holding the data sets (each under its default folder name, e.g.
    /// cifar-10-batches-bin); default: each config's `dataset.path`, else datasets/.
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Device family for every run; overrides the configs' `backend`.
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Where the run directories go: <runs>/<folder below experiments/>/<config>/seed-<s>.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
}

impl RunArgs {
    /// The options of runs at `epochs_scale`, checked.
    pub(crate) fn options(self, epochs_scale: f64) -> Result<ReproduceOptions> {
        let options = ReproduceOptions {
            seeds: self.seeds,
            epochs_scale,
            data_root: self.data_root,
            backend: self.backend,
            runs: self.runs,
        };
        options.validate()?;
        Ok(options)
    }
}

pub fn run(args: ReproduceArgs) -> Result<()> {
    allocator::use_steady_settings();
    let options = args.runs.options(args.epochs_scale)?;
    for folder in &args.folders {
        let rows = rows(folder)?;
        let status = statuses(&rows, &options);
        let dir = table_dir(folder, &options);
        print_plan(folder, &rows, &status, &dir, &options);
        if args.dry_run {
            continue;
        }
        // A row that shares another's training (run_name) is trained once, by that row.
        let runnable: Vec<&Row> = rows
            .iter()
            .zip(&status)
            .filter(|(r, s)| **s == Status::Runnable && r.run_name == r.name)
            .map(|(r, _)| r)
            .collect();
        train_all(
            runnable
                .iter()
                .flat_map(|r| options.seeds.iter().map(move |&s| (*r, s)))
                .map(|(row, seed)| Run {
                    name: &row.name,
                    path: &row.path,
                    seed,
                    config: row.run_config(seed, &dir, &options),
                })
                .collect(),
        )?;
        let results: Vec<_> = rows.iter().map(|r| row_result(r, &dir, &options)).collect();
        let (md, png) = write_results(folder, &dir, &results, &options)?;
        println!(
            "\n{}",
            sal_train::reproduce::results_markdown(folder, &results, &options)
        );
        println!("written: {}\n         {}", md.display(), png.display());
    }
    Ok(())
}

/// One run to train: its config's name and file, its seed and its run config.
pub(crate) struct Run<'a> {
    pub name: &'a str,
    pub path: &'a std::path::Path,
    pub seed: u64,
    pub config: sal_train::ExperimentConfig,
}

/// Trains `runs` in order, each resumed where it stopped (a finished one is left as it is),
/// announcing `[i/n] <name> seed <s> -> <run dir>`; the first failure stops, naming the config.
pub(crate) fn train_all(runs: Vec<Run>) -> Result<()> {
    let total = runs.len();
    let resume = crate::train::options(true, None);
    let mut eta = Eta::default();
    for (i, run) in runs.iter().enumerate() {
        // From the second run on: how long the rest will take at the pace measured so far.
        let left = eta
            .remaining(runs[i..].iter().map(|r| (r.name, epochs_left(&r.config))))
            .map(|left| {
                let runs = eta::runs(total - i);
                format!(" ({runs} to go, about {})", eta::human(left))
            })
            .unwrap_or_default();
        println!(
            "\n[{}/{total}] {} seed {} -> {}{left}",
            i + 1,
            run.name,
            run.seed,
            run.config.output_dir().display()
        );
        let started = Instant::now();
        let report = sal_train::train(&run.config, &resume)
            .with_context(|| format!("{} seed {}", run.path.display(), run.seed))?;
        eta.record(
            run.name,
            started.elapsed().as_secs_f64(),
            report.results.epochs_trained_now,
        );
    }
    Ok(())
}

/// Epochs a run has still to train: all of them but those its newest complete checkpoint holds.
pub(crate) fn epochs_left(config: &sal_train::ExperimentConfig) -> usize {
    let done = latest_complete_epoch(&config.output_dir().join("checkpoint")).unwrap_or(0);
    config.epochs.saturating_sub(done)
}

/// Every row with its status, the command that runs it and its run directories; each missing
/// data set once.
fn print_plan(
    folder: &std::path::Path,
    rows: &[Row],
    status: &[Status],
    dir: &std::path::Path,
    options: &ReproduceOptions,
) {
    let runnable = status.iter().filter(|s| **s == Status::Runnable).count();
    println!(
        "{}: {} rows, {runnable} runnable here, seeds {:?}{}; runs in {}",
        folder.display(),
        rows.len(),
        options.seeds,
        if options.epochs_scale < 1.0 {
            format!(", epochs x{}", options.epochs_scale)
        } else {
            String::new()
        },
        dir.display()
    );
    let mut missing = BTreeSet::new();
    for (row, status) in rows.iter().zip(status) {
        let what = match status {
            Status::Runnable => "runnable".to_string(),
            Status::Requires(needs) => format!("NOT RUNNABLE: requires {}", needs.join(", ")),
            Status::MissingData(message) => {
                missing.insert(message.clone());
                format!("NO DATA: {}", row.config.dataset.name)
            }
        };
        let seed = options.seeds[0];
        let sets: String = row
            .run_overrides(seed, dir, options)
            .iter()
            .map(|s| format!(" --set '{s}'"))
            .collect();
        let paper = row.paper.value_label();
        let what = match row.run_name == row.name {
            true => what,
            false => format!(
                "{what}; reads the runs of {} (the same training)",
                row.run_name
            ),
        };
        println!(
            "  {:<40} paper {paper} ({}, {})  {what}\n      seed {seed}: cargo xtask train --config {}{sets}",
            row.name,
            row.paper.metric_label(),
            row.paper.statistic_label(),
            row.path.display(),
        );
    }
    for message in missing {
        println!("missing data: {}", message.replace('\n', " "));
    }
}
