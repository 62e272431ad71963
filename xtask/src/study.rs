//! `cargo xtask study <folder>... [--seeds 0,1,2] [--baseline none] [--compare a:b]...
//! [--only a,b] [--report-only] [--dry-run] [--export <dir>]`: every config of a study folder over the seeds
//! (seeds outermost, so a partly done study has whole seeds), each run resumable, then
//! `<runs>/<folder>/results.md`: errors and time per epoch per config, Welch's t-test per
//! comparison, the `[eval]` suite, and its pictures (`sal_train::study`, docs/results/);
//! `--export` copies them and each run's small logs into a results page's folder.

use crate::allocator;
use crate::eta::{self, Eta};
use crate::reproduce::{Run, RunArgs, epochs_left, train_all};
use anyhow::{Result, bail};
use clap::Args;
use sal_train::reproduce::table_dir;
use sal_train::study::{StudyResult, export_study, row_runs, study_rows, write_study};
use std::path::PathBuf;

#[derive(Args)]
pub struct StudyArgs {
    /// Study folders of configs, e.g. experiments/study/fashion-mnist/scarce.
    #[arg(required = true)]
    folders: Vec<PathBuf>,
    #[command(flatten)]
    runs: RunArgs,
    /// The config the time per epoch is compared with (when the folder has it).
    #[arg(long, default_value = "none")]
    baseline: String,
    /// A Welch's t-test of two configs' final errors, `a:b` (repeatable).
    #[arg(long = "compare", value_parser = parse_pair)]
    comparisons: Vec<(String, String)>,
    /// Train only these configs, comma-separated (more seeds where the spread is large); the
    /// report still covers every config, each over its finished seeds.
    #[arg(long, value_delimiter = ',', value_name = "CONFIGS")]
    only: Vec<String>,
    /// Train nothing: write results.md from the runs that have finished.
    #[arg(long)]
    report_only: bool,
    /// List each config's runs and whether they have finished; train nothing, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Then copy results.md, its pictures and every finished run's small logs (config.toml,
    /// metrics.csv, results.json, eval.json; no checkpoints) and one mixed batch per config
    /// into this folder (one folder per study folder: give one study folder with it).
    #[arg(long)]
    export: Option<PathBuf>,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.into(), b.into())),
        _ => Err(format!("expected `a:b` (two config names), got `{text}`")),
    }
}

pub fn run(args: StudyArgs) -> Result<()> {
    allocator::use_steady_settings();
    let options = args.runs.options(1.0)?;
    if args.export.is_some() && args.folders.len() != 1 {
        bail!(
            "--export takes one study folder, got {}",
            args.folders.len()
        );
    }
    for folder in &args.folders {
        let rows = study_rows(folder)?;
        let known = |option: &str, name: &str| {
            if rows.iter().any(|r| r.name == name) {
                return Ok(());
            }
            let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
            bail!(
                "{option}: {} has no config `{name}` (it has: {})",
                folder.display(),
                names.join(", ")
            )
        };
        for (a, b) in &args.comparisons {
            for name in [a, b] {
                known(&format!("--compare {a}:{b}"), name)?;
            }
        }
        for name in &args.only {
            known("--only", name)?;
        }
        let trains = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
        let dir = table_dir(folder, &options);
        println!(
            "{}: {} configs x seeds {:?}; runs in {}",
            folder.display(),
            rows.len(),
            options.seeds,
            dir.display()
        );
        if args.dry_run {
            let mut eta = Eta::default();
            let mut left = Vec::new();
            for row in &rows {
                let finished = row_runs(row, &dir, &options);
                println!(
                    "  {:<32} {}/{} seeds finished",
                    row.name,
                    finished.len(),
                    options.seeds.len()
                );
                for run in &finished {
                    let epochs = row.config.epochs;
                    eta.record(&row.name, run.seconds_per_epoch * epochs as f64, epochs);
                }
                let done: Vec<u64> = finished.iter().map(|r| r.seed).collect();
                let to_train = options.seeds.iter().filter(|s| !done.contains(s));
                for &seed in to_train.filter(|_| trains(&row.name)) {
                    let config = row.run_config(seed, &dir, &options);
                    left.push((row.name.as_str(), epochs_left(&config)));
                }
            }
            if let Some(time) = eta.remaining(left.iter().copied()) {
                println!(
                    "  {} left: about {} of training at the finished runs' pace (their median \
                     seconds per epoch; test passes and the evaluation suite add a few percent)",
                    eta::runs(left.len()),
                    eta::human(time)
                );
            }
            continue;
        }
        if !args.report_only {
            // Seeds outermost: a partly done study has whole seeds.
            train_all(
                options
                    .seeds
                    .iter()
                    .flat_map(|&seed| rows.iter().map(move |r| (r, seed)))
                    .filter(|(row, _)| trains(&row.name))
                    .map(|(row, seed)| Run {
                        name: &row.name,
                        path: &row.path,
                        seed,
                        config: row.run_config(seed, &dir, &options),
                    })
                    .collect(),
            )?;
        }
        let results: Vec<StudyResult> = rows
            .iter()
            .map(|r| StudyResult {
                name: r.name.clone(),
                runs: row_runs(r, &dir, &options),
            })
            .collect();
        let baseline = Some(args.baseline.as_str()).filter(|b| rows.iter().any(|r| r.name == *b));
        // The curves' second panel: the second half of the run, where the rates have decayed.
        let epochs = rows.iter().map(|r| r.config.epochs).max().unwrap_or(1);
        let md = write_study(
            folder,
            &dir,
            &results,
            baseline,
            &args.comparisons,
            &options.seeds,
            Some(epochs / 2 + 1),
        )?;
        println!("\n{md}\nwritten: {}", dir.join("results.md").display());
        if let Some(out) = &args.export {
            let files = export_study(&rows, &results, &dir, &options, out)?;
            println!("exported {} files to {}", files.len(), out.display());
        }
    }
    Ok(())
}
