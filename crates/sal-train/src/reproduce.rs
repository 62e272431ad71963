//! Paper tables as folders of configs (`experiments/paper/<paper>/<table>/<row>.toml`, each with
//! a `[paper]` table): finding the rows, whether each can run here, the config of each seed's
//! run, and (after the runs) our number beside the paper's (`cargo xtask reproduce`,
//! docs/reproducing.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::data::Split;
use crate::metrics::{EpochMetrics, read_metrics};
use crate::paper::{PaperMetric, PaperRow, PaperStatistic};
use crate::{BackendKind, ConfigError, ExperimentConfig};

/// Why a table could not be planned or summarised.
#[derive(Debug, thiserror::Error)]
pub enum ReproduceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no config (*.toml) in it", .0.display())]
    Empty(PathBuf),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}: a paper-table config needs a [paper] table (the paper's number for the row)", .0.display())]
    NoPaper(PathBuf),
    #[error("--epochs-scale must be in (0, 1], got {0}")]
    EpochsScale(f64),
    #[error("--seeds: give at least one seed")]
    NoSeeds,
    #[error("drawing {}: {message}", path.display())]
    Figure { path: PathBuf, message: String },
}

/// One row of a table: its config and the paper's number.
#[derive(Debug, Clone)]
pub struct Row {
    /// The config file.
    pub path: PathBuf,
    /// Its file name without `.toml`: names the row.
    pub name: String,
    /// The row whose runs this row reads: its own name, or the first row (in path order) of the
    /// folder whose config trains exactly the same thing (everything but `name` and `[paper]`
    /// equal, `[eval]` included; rows that `require` something never share), so the rows of one
    /// training (Saliency Grafting Table 6's three occlusion columns, Figure 3's k = 1..6 of one
    /// method) share one run per seed instead of training it again. Names the run directories.
    pub run_name: String,
    pub config: ExperimentConfig,
    pub paper: PaperRow,
}

/// How `reproduce` runs a table.
#[derive(Debug, Clone)]
pub struct ReproduceOptions {
    pub seeds: Vec<u64>,
    /// Each row's epochs (and its schedule's milestones) times this, at least 1 epoch.
    pub epochs_scale: f64,
    /// Where the data sets are: each row's `dataset.path` becomes `<data_root>/<the data set's
    /// default folder name>`.
    pub data_root: Option<PathBuf>,
    pub backend: Option<BackendKind>,
    /// The root of the run directories: `<runs>/<table folder>/<row>/seed-<s>`.
    pub runs: PathBuf,
}

impl Default for ReproduceOptions {
    fn default() -> Self {
        Self {
            seeds: vec![0, 1, 2],
            epochs_scale: 1.0,
            data_root: None,
            backend: None,
            runs: PathBuf::from("runs"),
        }
    }
}

impl ReproduceOptions {
    pub fn validate(&self) -> Result<(), ReproduceError> {
        if !(self.epochs_scale > 0.0 && self.epochs_scale <= 1.0) {
            return Err(ReproduceError::EpochsScale(self.epochs_scale));
        }
        if self.seeds.is_empty() {
            return Err(ReproduceError::NoSeeds);
        }
        Ok(())
    }
}

/// Every config below `folder` (sorted by path), each with its `[paper]` table.
pub fn rows(folder: &Path) -> Result<Vec<Row>, ReproduceError> {
    let mut paths = Vec::new();
    collect_configs(folder, &mut paths)?;
    if paths.is_empty() {
        return Err(ReproduceError::Empty(folder.to_path_buf()));
    }
    paths.sort();
    let mut rows = paths
        .into_iter()
        .map(|path| {
            let config = ExperimentConfig::load(&path, &[])?;
            let paper = config
                .paper
                .clone()
                .ok_or_else(|| ReproduceError::NoPaper(path.clone()))?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Row {
                path,
                run_name: name.clone(),
                name,
                config,
                paper,
            })
        })
        .collect::<Result<Vec<_>, ReproduceError>>()?;
    let mut trained: Vec<(String, String)> = Vec::new();
    // A row that requires what the project lacks has a placeholder config: it shares nothing.
    for row in rows.iter_mut().filter(|r| r.paper.requires.is_empty()) {
        let identity = training_identity(row);
        match trained.iter().find(|(key, _)| *key == identity) {
            Some((_, first)) => row.run_name = first.clone(),
            None => trained.push((identity, row.name.clone())),
        }
    }
    Ok(rows)
}

/// What a row trains, as text: its config without its name and its `[paper]` table.
fn training_identity(row: &Row) -> String {
    let mut config = row.config.clone();
    config.name.clear();
    config.paper = None;
    config.to_toml()
}

pub(crate) fn collect_configs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReproduceError> {
    let io = |source| ReproduceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect_configs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// The run directory of a table folder: `<runs>/<folder below experiments/>`, e.g.
/// `runs/paper/saliencymix/table1` for `experiments/paper/saliencymix/table1`.
pub fn table_dir(folder: &Path, options: &ReproduceOptions) -> PathBuf {
    let components: Vec<_> = folder.components().collect();
    let below = components
        .iter()
        .rposition(|c| c.as_os_str() == "experiments")
        .map_or(components.as_slice(), |i| &components[i + 1..]);
    let mut dir = options.runs.clone();
    for c in below {
        if let std::path::Component::Normal(part) = c {
            dir.push(part);
        }
    }
    dir
}

impl Row {
    /// The `--set` overrides that turn this row's config into its run with `seed`: the seed,
    /// its own run directory below `table_dir`, the scaled epochs and milestones, the data
    /// root, the backend.
    pub fn run_overrides(
        &self,
        seed: u64,
        table_dir: &Path,
        options: &ReproduceOptions,
    ) -> Vec<String> {
        run_overrides(&self.config, &self.run_name, seed, table_dir, options)
    }

    /// This row's config with [`Self::run_overrides`] applied.
    pub fn run_config(
        &self,
        seed: u64,
        table_dir: &Path,
        options: &ReproduceOptions,
    ) -> ExperimentConfig {
        run_config(
            &self.config,
            &self.path,
            &self.run_name,
            seed,
            table_dir,
            options,
        )
    }
}

/// `config` (read from `path`) with [`run_overrides`] applied.
pub fn run_config(
    config: &ExperimentConfig,
    path: &Path,
    run_name: &str,
    seed: u64,
    table_dir: &Path,
    options: &ReproduceOptions,
) -> ExperimentConfig {
    let overrides = run_overrides(config, run_name, seed, table_dir, options);
    ExperimentConfig::parse(&config.to_toml(), path, &overrides)
        .expect("the overrides of a valid config keep it valid")
}

/// The `--set` overrides that turn `config` into the run `run_name` with `seed`: the seed, the
/// run directory `<table_dir>/<run_name>/seed-<seed>`, the scaled epochs and milestones, the
/// data root, the backend (shared by `reproduce` and `study`).
pub fn run_overrides(
    config: &ExperimentConfig,
    run_name: &str,
    seed: u64,
    table_dir: &Path,
    options: &ReproduceOptions,
) -> Vec<String> {
    let run_dir = table_dir.join(run_name).join(format!("seed-{seed}"));
    // Strings as TOML writes them (escaped: a Windows path's backslashes stay intact).
    let string = |s: String| toml::Value::String(s).to_string();
    let mut sets = vec![
        format!("seed={seed}"),
        format!("name={}", string(format!("{run_name}-seed-{seed}"))),
        format!("output_dir={}", string(run_dir.display().to_string())),
    ];

    if options.epochs_scale < 1.0 {
        let scale = options.epochs_scale;
        let epochs = ((config.epochs as f64 * scale).round() as usize).max(1);
        let mut milestones: Vec<usize> = config
            .schedule
            .milestones
            .iter()
            .map(|&m| ((m as f64 * scale).round() as usize).max(1))
            .filter(|&m| m < epochs)
            .collect();
        milestones.dedup();
        sets.push(format!("epochs={epochs}"));
        sets.push(format!("schedule.milestones={milestones:?}"));
    }
    if let Some(root) = &options.data_root {
        let folder = config.dataset.name.default_path();
        let folder = folder.file_name().expect("a data set's folder has a name");
        sets.push(format!(
            "dataset.path={}",
            string(root.join(folder).display().to_string())
        ));
    }
    if let Some(backend) = options.backend {
        sets.push(format!(
            "backend={}",
            toml::Value::try_from(backend).expect("a backend serialises")
        ));
    }
    sets
}

/// Whether a row can run here.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Runnable,
    /// The project lacks what the row's `requires` lists.
    Requires(Vec<String>),
    /// Its data set is not where the config looks (the message says where and how to get it).
    MissingData(String),
}

/// The status of every row for `options`: each data set (kind and folder) is opened once.
pub fn statuses(rows: &[Row], options: &ReproduceOptions) -> Vec<Status> {
    let mut data: BTreeMap<(String, PathBuf), Option<String>> = BTreeMap::new();
    rows.iter()
        .map(|row| {
            if !row.paper.requires.is_empty() {
                return Status::Requires(row.paper.requires.clone());
            }
            let config = row.run_config(options.seeds[0], Path::new("."), options);
            let dataset = &config.dataset;
            let key = (dataset.name.to_string(), dataset.path());
            let missing = data.entry(key).or_insert_with(|| {
                let opened = dataset
                    .open(Split::Train)
                    .and_then(|_| dataset.open(Split::Test));
                opened.err().map(|e| e.to_string())
            });
            match missing {
                Some(message) => Status::MissingData(message.clone()),
                None => Status::Runnable,
            }
        })
        .collect()
}

/// Our value of `metric` under `statistic` for one finished run (its `metrics.csv` epochs);
/// `None` for the metrics of the `[eval]` suite ([`eval_value`]). A training time is the sum
/// of the epochs' `train_seconds` in hours, whatever the statistic (the paper's row checks
/// that it is "mean-final").
pub fn run_value(
    epochs: &[EpochMetrics],
    metric: PaperMetric,
    statistic: PaperStatistic,
) -> Option<f64> {
    let error = |e: &EpochMetrics| match metric {
        PaperMetric::Top1Error => Some(100.0 - e.test_top1),
        PaperMetric::Top5Error => Some(100.0 - e.test_top5),
        PaperMetric::FgsmTop1Accuracy
        | PaperMetric::OcclusionTop1Error
        | PaperMetric::TrainingHours => None,
    };
    let last = epochs.last()?;
    if metric == PaperMetric::TrainingHours {
        return Some(epochs.iter().map(|e| e.train_seconds).sum::<f64>() / 3600.0);
    }
    let all = || epochs.iter().filter_map(error);
    Some(match statistic {
        PaperStatistic::MeanFinal => error(last)?,
        PaperStatistic::MeanBest => {
            all().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))?
        }
        PaperStatistic::MeanLast10 => {
            let tail = &epochs[epochs.len().saturating_sub(10)..];
            tail.iter().filter_map(error).sum::<f64>() / tail.len() as f64
        }
    })
}

/// Our top-5 error beside a top-1 row, at the epochs `statistic` picks for the top-1 error:
/// the final epoch, the first epoch with the best top-1 (the papers' code keeps the top-5 of
/// the epoch whose top-1 is best), or the mean over the last 10.
pub fn run_top5(epochs: &[EpochMetrics], statistic: PaperStatistic) -> Option<f64> {
    let top5 = |e: &EpochMetrics| 100.0 - e.test_top5;
    let last = epochs.last()?;
    Some(match statistic {
        PaperStatistic::MeanFinal => top5(last),
        PaperStatistic::MeanBest => {
            let best = epochs.iter().map(|e| e.test_top1).fold(f64::MIN, f64::max);
            top5(epochs.iter().find(|e| e.test_top1 == best)?)
        }
        PaperStatistic::MeanLast10 => {
            let tail = &epochs[epochs.len().saturating_sub(10)..];
            tail.iter().map(top5).sum::<f64>() / tail.len() as f64
        }
    })
}

/// Our value of an `[eval]` metric at `setting` from a run's `eval.json` report.
pub fn eval_value(
    report: &crate::eval::EvalReport,
    metric: PaperMetric,
    setting: f64,
) -> Option<f64> {
    let at = |rows: &[crate::eval::AtSetting]| {
        rows.iter()
            .find(|r| (r.setting - setting).abs() < 1e-9)
            .map(|r| r.accuracy)
    };
    match metric {
        PaperMetric::FgsmTop1Accuracy => at(&report.fgsm).map(|a| a.top1),
        PaperMetric::OcclusionTop1Error => at(&report.occlusion).map(|a| a.top1_error()),
        PaperMetric::Top1Error | PaperMetric::Top5Error | PaperMetric::TrainingHours => None,
    }
}

/// A row's runs summarised: our mean and standard deviation over the finished seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct RowResult {
    pub name: String,
    pub paper: PaperRow,
    /// The seeds whose run finished all its epochs, with their values.
    pub runs: Vec<(u64, f64)>,
    /// The same runs' top-5 errors, for a row with the paper's `top5`.
    pub top5_runs: Vec<(u64, f64)>,
    pub epochs: usize,
    pub paper_epochs: usize,
}

impl RowResult {
    pub fn mean(&self) -> Option<f64> {
        mean(&self.runs)
    }

    /// The sample standard deviation (n - 1); `None` under 2 runs.
    pub fn std(&self) -> Option<f64> {
        sample_std(&self.runs)
    }
}

/// The mean ± sample standard deviation of the runs' values (`study::Spread`).
fn spread(runs: &[(u64, f64)]) -> Option<crate::study::Spread> {
    crate::study::Spread::of(&runs.iter().map(|r| r.1).collect::<Vec<_>>())
}

fn mean(runs: &[(u64, f64)]) -> Option<f64> {
    spread(runs).map(|s| s.mean)
}

fn sample_std(runs: &[(u64, f64)]) -> Option<f64> {
    spread(runs).and_then(|s| s.std)
}

/// "m ± s", "m" or "-".
fn mean_label(runs: &[(u64, f64)]) -> String {
    spread(runs).map_or("-".into(), |s| s.label(2))
}

/// Reads each seed's `metrics.csv` of `row`; a run counts when it has all its epochs.
pub fn row_result(row: &Row, table_dir: &Path, options: &ReproduceOptions) -> RowResult {
    let (mut runs, mut top5_runs) = (Vec::new(), Vec::new());
    let mut epochs = row.config.epochs;
    for &seed in &options.seeds {
        let config = row.run_config(seed, table_dir, options);
        epochs = config.epochs;
        let csv = config.output_dir().join("metrics.csv");
        let Ok(logged) = read_metrics(&csv) else {
            continue;
        };
        if logged.len() < config.epochs {
            continue;
        }
        let value = match row.paper.setting {
            Some(setting) if row.paper.metric.from_eval() => {
                crate::eval::EvalReport::read_final(&config.output_dir(), config.epochs)
                    .and_then(|report| eval_value(&report, row.paper.metric, setting))
            }
            _ => run_value(&logged, row.paper.metric, row.paper.statistic),
        };
        if let Some(v) = value {
            runs.push((seed, v));
        }
        if row.paper.top5.is_some()
            && let Some(v) = run_top5(&logged, row.paper.statistic)
        {
            top5_runs.push((seed, v));
        }
    }
    RowResult {
        name: row.name.clone(),
        paper: row.paper.clone(),
        runs,
        top5_runs,
        epochs,
        paper_epochs: row.config.epochs,
    }
}

/// `results.md`: one line per row, ours beside the paper's (a row whose number the paper gives
/// only in a figure: ours alone, no difference).
pub fn results_markdown(
    folder: &Path,
    results: &[RowResult],
    options: &ReproduceOptions,
) -> String {
    let mut out = format!(
        "# {}\n\nReproduced with `cargo xtask reproduce {}` over seeds {:?}",
        results
            .first()
            .map_or("(no rows)", |r| r.paper.table.as_str()),
        folder.display(),
        options.seeds
    );
    if options.epochs_scale < 1.0 {
        out += &format!(
            ", epochs SCALED by {}: these are short runs, not the paper's recipe, and not comparable \
             to its numbers",
            options.epochs_scale
        );
    }
    out += ".\n\n| # | row | metric | statistic | ours | paper | ours - paper | seeds done | epochs (paper's) |\n\
            |---|---|---|---|---|---|---|---|---|\n";
    for (i, r) in results.iter().enumerate() {
        let ours = mean_label(&r.runs);
        let paper = r.paper.value_label();
        let diff = match (r.mean(), r.paper.value) {
            (Some(m), Some(v)) => format!("{:+.2}", m - v),
            _ => "-".into(),
        };
        out += &format!(
            "| {} | {} ({}) | {} | {} | {ours} | {paper} | {diff} | {}/{} | {} ({}) |\n",
            i + 1,
            r.paper.row,
            r.name,
            r.paper.metric_label(),
            r.paper.statistic_label(),
            r.runs.len(),
            options.seeds.len(),
            r.epochs,
            r.paper_epochs
        );
        if let Some(top5) = r.paper.top5 {
            let paper = match r.paper.top5_std {
                Some(s) => format!("{top5:.2} ± {s:.2}"),
                None => format!("{top5:.2}"),
            };
            let diff = mean(&r.top5_runs).map_or("-".into(), |m| format!("{:+.2}", m - top5));
            out += &format!(
                "| {}b | {} ({}) | top-5 error (%) at the top-1's epochs | {} | {} | {paper} | \
                 {diff} | {}/{} | {} ({}) |\n",
                i + 1,
                r.paper.row,
                r.name,
                r.paper.statistic_label(),
                mean_label(&r.top5_runs),
                r.top5_runs.len(),
                options.seeds.len(),
                r.epochs,
                r.paper_epochs
            );
        }
    }
    out
}

/// Writes `results.md` and `results.png` (ours and the paper's number per row; no paper bar
/// where the paper gives its number only in a figure) into `table_dir`; returns their paths.
pub fn write_results(
    folder: &Path,
    table_dir: &Path,
    results: &[RowResult],
    options: &ReproduceOptions,
) -> Result<(PathBuf, PathBuf), ReproduceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReproduceError::Io { path, source }
    };
    std::fs::create_dir_all(table_dir).map_err(io(table_dir))?;
    let md = table_dir.join("results.md");
    let png = table_dir.join("results.png");
    let text =
        results_markdown(folder, results, options) + "\n![ours beside the paper's](results.png)\n";
    crate::checkpoint::write_atomically(&md, text.as_bytes()).map_err(io(&md))?;
    // Row names are long: the bars carry the rows' numbers in results.md.
    let labels: Vec<String> = (1..=results.len()).map(|i| i.to_string()).collect();
    let series = [
        sal_figures::BarSeries {
            name: "ours (mean over seeds)",
            colour: sal_figures::chart::TRAIN,
            values: results.iter().map(RowResult::mean).collect(),
            errors: results.iter().map(RowResult::std).collect(),
        },
        sal_figures::BarSeries {
            name: "paper",
            colour: sal_figures::chart::TEST,
            values: results.iter().map(|r| r.paper.value).collect(),
            errors: results.iter().map(|r| r.paper.std).collect(),
        },
    ];
    // Nothing to draw yet (no run finished, no number in the paper's text): an empty axis.
    let y_max = if series.iter().any(|s| s.values.iter().any(Option::is_some)) {
        0.0
    } else {
        1.0
    };
    let metric = results
        .first()
        .map_or("error (%)", |r| r.paper.metric.describe());
    // Rows of one table share a metric; a mixed folder is labelled by its first row's.
    let title = format!(
        "{} (rows numbered as in results.md)",
        results.first().map_or("", |r| r.paper.table.as_str())
    );
    let width = (240 + 110 * labels.len()).min(6000) as u32;
    let figure = |message: String| ReproduceError::Figure {
        path: png.clone(),
        message,
    };
    let chart = sal_figures::grouped_bars(&title, metric, &labels, &series, y_max, (width, 480))
        .map_err(|e| figure(e.to_string()))?;
    sal_figures::write_png(&chart, &png).map_err(|e| figure(e.to_string()))?;
    Ok((md, png))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, top1: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            test_top1: top1,
            test_top5: top1 + 5.0,
            ..Default::default()
        }
    }

    #[test]
    fn top5_is_read_at_the_epochs_of_the_top1_statistic() {
        use PaperStatistic::*;
        // Top-1 peaks at epoch 3 (and again at 5): the best's top-5 is epoch 3's.
        let epochs: Vec<_> = [50.0, 60.0, 70.0, 65.0, 70.0, 68.0]
            .iter()
            .enumerate()
            .map(|(i, &t)| EpochMetrics {
                test_top5: 80.0 + i as f64,
                ..epoch(i + 1, t)
            })
            .collect();
        assert_eq!(run_top5(&epochs, MeanFinal), Some(15.0));
        assert_eq!(run_top5(&epochs, MeanBest), Some(18.0));
        let mean = (20.0 + 19.0 + 18.0 + 17.0 + 16.0 + 15.0) / 6.0;
        assert_eq!(run_top5(&epochs, MeanLast10), Some(mean));
        assert_eq!(run_top5(&[], MeanBest), None);
    }

    #[test]
    fn each_statistic_reads_its_epochs() {
        let epochs: Vec<_> = (1..=12).map(|e| epoch(e, 50.0 + e as f64)).collect();
        let value = |m, s| run_value(&epochs, m, s).unwrap();
        use PaperMetric::*;
        use PaperStatistic::*;
        assert_eq!(value(Top1Error, MeanFinal), 100.0 - 62.0);
        assert_eq!(value(Top1Error, MeanBest), 100.0 - 62.0);
        // The last 10 of 12 epochs: top-1 53..62, mean 57.5.
        assert_eq!(value(Top1Error, MeanLast10), 100.0 - 57.5);
        assert_eq!(value(Top5Error, MeanFinal), 100.0 - 67.0);
        let dip = [epoch(1, 70.0), epoch(2, 60.0)];
        assert_eq!(run_value(&dip, Top1Error, MeanBest), Some(30.0));
        assert_eq!(run_value(&[], Top1Error, MeanFinal), None);
        assert_eq!(run_value(&epochs, FgsmTop1Accuracy, MeanFinal), None);
    }

    #[test]
    fn training_time_is_the_runs_summed_train_seconds_in_hours() {
        use PaperMetric::*;
        use PaperStatistic::*;
        // Four epochs of 15 minutes' training and 1 minute's testing: one hour of training.
        let epochs: Vec<_> = (1..=4)
            .map(|e| EpochMetrics {
                epoch: e,
                train_seconds: 900.0 + e as f64,
                test_seconds: 60.0,
                ..epoch(e, 50.0)
            })
            .collect();
        let hours = (3600.0 + 10.0) / 3600.0;
        assert_eq!(run_value(&epochs, TrainingHours, MeanFinal), Some(hours));
        assert_eq!(
            run_value(&epochs[..1], TrainingHours, MeanFinal),
            Some(901.0 / 3600.0)
        );
        assert_eq!(run_value(&[], TrainingHours, MeanFinal), None);
    }

    fn result(value: Option<f64>, runs: Vec<(u64, f64)>) -> RowResult {
        RowResult {
            name: "row".into(),
            paper: PaperRow {
                table: "SaliencyMix Figure 3".into(),
                row: "ResNet-18 + SaliencyMix".into(),
                metric: PaperMetric::Top1Error,
                setting: None,
                value,
                std: None,
                top5: None,
                top5_std: None,
                statistic: PaperStatistic::MeanBest,
                runs: Some(5),
                note: "the paper gives this number only as a bar in Figure 3".into(),
                requires: Vec::new(),
            },
            runs,
            top5_runs: Vec::new(),
            epochs: 200,
            paper_epochs: 200,
        }
    }

    #[test]
    fn a_row_with_the_papers_top5_gets_a_second_line() {
        let options = ReproduceOptions {
            seeds: vec![0, 1],
            ..Default::default()
        };
        let mut r = result(Some(21.26), vec![(0, 22.0), (1, 23.0)]);
        (r.paper.top5, r.paper.top5_std) = (Some(5.76), Some(0.1));
        r.top5_runs = vec![(0, 6.0), (1, 7.0)];
        let md = results_markdown(Path::new("t"), &[r], &options);
        let line = md.lines().find(|l| l.starts_with("| 1b ")).expect(&md);
        assert!(
            line.contains("top-5 error (%) at the top-1's epochs"),
            "{line}"
        );
        assert!(
            line.contains("| 6.50 ± 0.71 | 5.76 ± 0.10 | +0.74 | 2/2 |"),
            "{line}"
        );
    }

    #[test]
    fn a_row_without_the_papers_number_shows_ours_alone() {
        let options = ReproduceOptions {
            seeds: vec![0, 1],
            ..Default::default()
        };
        let folder = Path::new("experiments/paper/saliencymix/figure3");
        let results = [
            result(None, vec![(0, 4.0), (1, 5.0)]),
            result(Some(3.65), vec![(0, 4.0), (1, 5.0)]),
        ];
        let md = results_markdown(folder, &results, &options);
        let lines: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with("| 1 ") || l.starts_with("| 2 "))
            .collect();
        assert_eq!(lines.len(), 2, "{md}");
        let cells = |l: &str| l.split(" | ").map(str::to_string).collect::<Vec<_>>();
        // | # | row | metric | statistic | ours | paper | ours - paper | seeds | epochs |
        let figure_only = cells(lines[0]);
        assert_eq!(figure_only[4], "4.50 ± 0.71", "{md}");
        assert_eq!(figure_only[5], "— (figure only)", "{md}");
        assert_eq!(figure_only[6], "-", "{md}");
        let given = cells(lines[1]);
        assert_eq!(
            (given[5].as_str(), given[6].as_str()),
            ("3.65", "+0.85"),
            "{md}"
        );

        // The chart leaves the missing paper bar out, and draws even with nothing to draw.
        let dir = tempfile::tempdir().unwrap();
        let (_, png) = write_results(folder, dir.path(), &results, &options).unwrap();
        assert!(png.is_file());
        let empty = [result(None, Vec::new())];
        let (md, png) = write_results(folder, dir.path(), &empty, &options).unwrap();
        assert!(png.is_file());
        let text = std::fs::read_to_string(md).unwrap();
        assert!(text.contains("| - | — (figure only) | - | 0/2 |"), "{text}");
    }

    #[test]
    fn evaluation_metrics_are_read_from_the_eval_report_at_their_setting() {
        use crate::eval::{Accuracy, AtSetting, EvalReport};
        let accuracy = |top1| Accuracy {
            images: 10,
            top1,
            top5: 100.0,
            loss: 1.0,
        };
        let report = EvalReport {
            run: PathBuf::new(),
            checkpoint: PathBuf::new(),
            epoch: 3,
            clean: accuracy(90.0),
            fgsm: vec![AtSetting {
                setting: 8.0 / 255.0,
                accuracy: accuracy(20.0),
            }],
            occlusion: vec![
                AtSetting {
                    setting: 0.0,
                    accuracy: accuracy(90.0),
                },
                AtSetting {
                    setting: 0.25,
                    accuracy: accuracy(55.0),
                },
            ],
            cam_png: None,
            chart_png: PathBuf::new(),
            seconds: 1.0,
        };
        use PaperMetric::*;
        assert_eq!(
            eval_value(&report, FgsmTop1Accuracy, 8.0 / 255.0),
            Some(20.0)
        );
        assert_eq!(eval_value(&report, OcclusionTop1Error, 0.25), Some(45.0));
        assert_eq!(eval_value(&report, OcclusionTop1Error, 0.125), None);
        assert_eq!(eval_value(&report, Top1Error, 0.0), None);
    }

    #[test]
    fn mean_and_sample_std_over_seeds() {
        let paper = PaperRow {
            table: "T".into(),
            row: "r".into(),
            metric: PaperMetric::Top1Error,
            setting: None,
            value: Some(1.0),
            std: None,
            top5: None,
            top5_std: None,
            statistic: PaperStatistic::MeanFinal,
            runs: None,
            note: String::new(),
            requires: Vec::new(),
        };
        let mut r = RowResult {
            name: "r".into(),
            paper,
            runs: vec![(0, 2.0), (1, 4.0)],
            top5_runs: Vec::new(),
            epochs: 1,
            paper_epochs: 1,
        };
        assert_eq!((r.mean(), r.std()), (Some(3.0), Some(2f64.sqrt())));
        r.runs.truncate(1);
        assert_eq!((r.mean(), r.std()), (Some(2.0), None));
        r.runs.clear();
        assert_eq!(r.mean(), None);
    }

    /// Saliency Grafting Table 6: a method's three occlusion columns are one training, run once.
    #[test]
    fn rows_that_train_the_same_share_the_first_rows_runs() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../experiments/paper/saliency-grafting/table6");
        let rows = rows(&folder).unwrap();
        let run_names: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.run_name.as_str()))
            .collect();
        for method in ["saliency-grafting", "saliencymix"] {
            let k0 = format!("{method}-k0");
            for k in ["k0", "k12.5", "k25"] {
                let name = format!("{method}-{k}");
                assert!(run_names.contains(&(&name, &k0)), "{name}: {run_names:?}");
            }
        }
        // PuzzleMix's rows are placeholders (`requires`): nothing to share.
        assert!(run_names.contains(&("puzzlemix-k25", "puzzlemix-k25")));
        let options = ReproduceOptions::default();
        let k25 = rows.iter().find(|r| r.name == "saliencymix-k25").unwrap();
        let overrides = k25.run_overrides(0, Path::new("runs/t6"), &options);
        assert!(
            overrides.contains(&r#"output_dir="runs/t6/saliencymix-k0/seed-0""#.to_string()),
            "{overrides:?}"
        );
        // Table 1's rows all train differently.
        let table1 = rows_of("saliencymix/table1");
        assert!(table1.iter().all(|r| r.run_name == r.name));
    }

    fn rows_of(table: &str) -> Vec<Row> {
        rows(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../experiments/paper")
                .join(table),
        )
        .unwrap()
    }

    #[test]
    fn scaled_runs_scale_epochs_and_milestones_and_live_in_their_own_folders() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../experiments/paper/saliencymix/table1");
        let rows = rows(&folder).unwrap();
        assert_eq!(rows.len(), 48);
        let row = rows
            .iter()
            .find(|r| r.name == "wrn28-10-saliencymix-cifar100-aug")
            .unwrap();
        let options = ReproduceOptions {
            epochs_scale: 0.1,
            data_root: Some(PathBuf::from("/data")),
            ..Default::default()
        };
        let dir = table_dir(&folder, &options);
        assert!(
            dir.ends_with("runs/paper/saliencymix/table1"),
            "{}",
            dir.display()
        );
        let config = row.run_config(2, &dir, &options);
        assert_eq!((config.epochs, config.seed), (20, 2));
        assert_eq!(config.schedule.milestones, vec![6, 12, 16]);
        assert_eq!(
            config.output_dir(),
            dir.join("wrn28-10-saliencymix-cifar100-aug/seed-2")
        );
        assert_eq!(
            config.dataset.path(),
            PathBuf::from("/data/cifar-100-binary")
        );
        // Everything else is the row's recipe.
        assert_eq!(config.augmentation, row.config.augmentation);
        assert_eq!(config.paper, row.config.paper);
        // Tiny scales keep one epoch and drop the milestones it does not reach.
        let tiny = ReproduceOptions {
            epochs_scale: 0.001,
            ..Default::default()
        };
        let config = row.run_config(0, &dir, &tiny);
        assert_eq!((config.epochs, config.schedule.milestones.len()), (1, 0));
        assert!(matches!(
            ReproduceOptions {
                epochs_scale: 0.0,
                ..Default::default()
            }
            .validate(),
            Err(ReproduceError::EpochsScale(_))
        ));
    }
}
