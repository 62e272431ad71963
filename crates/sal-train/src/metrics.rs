//! What a run shows and keeps: progress bars while it trains, one summary line per epoch,
//! `metrics.csv` (one row per epoch, plot-ready) and `curves.png` (loss and top-1 per epoch).
//!
//! burn-train hands every metric value and every progress tick to a `MetricsRenderer`; its own
//! CLI renderer prints a debug line per iteration. [`RunReporter`] replaces it: it draws
//! `indicatif` bars (hidden automatically when stderr is not a terminal), keeps each epoch's
//! final metric values, times the splits, and appends the epoch's CSV row as soon as the
//! epoch's validation ends, so a killed run keeps every finished epoch's numbers; then it redraws
//! the curves of every epoch so far (a resumed run's earlier epochs come from the CSV).

use burn::train::Interrupter;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use indicatif::{ProgressBar, ProgressStyle};
use sal_figures::chart::CURVES_SIZE;
use sal_figures::{CurvePoint, FigureError, training_curves};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// burn-train's metric names, as registered by the trainer.
pub const LOSS: &str = "Loss";
pub const ACCURACY: &str = "Accuracy";
/// The top-5 metric's name: burn names it after its k, which is the class count when a data
/// set has fewer than 5 classes (burn's metric refuses a larger k; [`top5_k`]).
pub const TOP5_PREFIX: &str = "Top-K Accuracy @ TopK(";
pub const LEARNING_RATE: &str = "Learning Rate";

/// The k of the "top-5" accuracy for `classes` classes: 5, or all classes when fewer (then
/// always 100 %, as the evaluation suite's tally counts it).
pub fn top5_k(classes: usize) -> usize {
    classes.clamp(1, 5)
}

/// One finished epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    /// Top-1 accuracy (%) against the batch's original labels, as the papers' code logs it.
    pub train_top1: f64,
    pub test_loss: f64,
    pub test_top1: f64,
    pub test_top5: f64,
    pub train_seconds: f64,
    pub test_seconds: f64,
    pub train_images_per_second: f64,
}

const CSV_HEADER: &str = "epoch,lr,train_loss,train_top1,test_loss,test_top1,test_top5,\
train_seconds,test_seconds,train_images_per_second";

impl EpochMetrics {
    fn curve_point(&self) -> CurvePoint {
        CurvePoint {
            epoch: self.epoch,
            train_loss: Some(self.train_loss),
            test_loss: Some(self.test_loss),
            train_top1: Some(self.train_top1),
            test_top1: Some(self.test_top1),
            lr: Some(self.lr),
        }
    }

    /// The epoch of a `metrics.csv` row (columns as [`CSV_HEADER`]); `None` if a field is
    /// missing or unreadable.
    fn from_csv_row(row: &str) -> Option<Self> {
        let fields: Vec<&str> = row.split(',').collect();
        if fields.len() != CSV_HEADER.split(',').count() {
            return None;
        }
        let f = |i: usize| fields[i].parse::<f64>().ok();
        Some(Self {
            epoch: fields[0].parse().ok()?,
            lr: f(1)?,
            train_loss: f(2)?,
            train_top1: f(3)?,
            test_loss: f(4)?,
            test_top1: f(5)?,
            test_top5: f(6)?,
            train_seconds: f(7)?,
            test_seconds: f(8)?,
            train_images_per_second: f(9)?,
        })
    }

    fn csv_row(&self) -> String {
        format!(
            "{},{},{:.6},{:.4},{:.6},{:.4},{:.4},{:.3},{:.3},{:.2}",
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_top1,
            self.test_loss,
            self.test_top1,
            self.test_top5,
            self.train_seconds,
            self.test_seconds,
            self.train_images_per_second
        )
    }
}

/// The epochs finished so far; shared with the trainer, which builds `results.json` from it.
pub type EpochLog = Arc<Mutex<Vec<EpochMetrics>>>;

/// The first training step whose loss was not finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Divergence {
    /// 1-based, as the run counts epochs.
    pub epoch: usize,
    /// 1-based within the epoch.
    pub iteration: usize,
    /// The loss value the step logged (NaN or an infinity).
    pub loss: f64,
}

/// Stops a run at its first non-finite training loss.
///
/// The guard reads the per-step loss that burn-train's loss metric already brings to the host,
/// so it adds no device sync. It stops the Learner through its interrupter, which ends the epoch
/// before validation and before the epoch's checkpoint is written: the newest checkpoint on disk
/// stays the last good one, and no diverged epoch rotates a good one out.
#[derive(Clone)]
pub struct DivergenceGuard {
    interrupter: Interrupter,
    found: Arc<Mutex<Option<Divergence>>>,
}

impl DivergenceGuard {
    pub fn new(interrupter: Interrupter) -> Self {
        Self {
            interrupter,
            found: Arc::default(),
        }
    }

    /// The divergence that stopped the run, if one did.
    pub fn divergence(&self) -> Option<Divergence> {
        *self.found.lock().expect("divergence lock")
    }

    fn check(&self, epoch: usize, iteration: usize, loss: f64) {
        if loss.is_finite() {
            return;
        }
        let mut found = self.found.lock().expect("divergence lock");
        if found.is_none() {
            *found = Some(Divergence {
                epoch,
                iteration,
                loss,
            });
            self.interrupter
                .stop(Some("the training loss is not finite"));
        }
    }
}

#[derive(Default)]
struct SplitState {
    started: Option<Instant>,
    seconds: f64,
    items: usize,
    /// Training steps whose loss was logged so far.
    iterations: usize,
    /// Final (epoch) values by metric name.
    finals: HashMap<String, f64>,
    /// Running mean for the progress bar message: (sum, count) by metric name.
    running: HashMap<String, (f64, usize)>,
    /// The newest per-step value by metric name.
    last: HashMap<String, f64>,
}

/// See the module documentation.
pub struct RunReporter {
    csv_path: PathBuf,
    curves_path: PathBuf,
    /// Every epoch's point so far, the kept CSV rows' included.
    curve: Vec<CurvePoint>,
    log: EpochLog,
    names: HashMap<MetricId, String>,
    epoch: usize,
    total_epochs: usize,
    split: &'static str,
    train: SplitState,
    valid: SplitState,
    bar: Option<ProgressBar>,
    guard: Option<DivergenceGuard>,
}

impl RunReporter {
    /// Records into `csv_path` and draws the curves into `curves_path`. Rows of epochs after
    /// `keep_through` (a resumed run's checkpoint epoch) are dropped from an existing file:
    /// those epochs will run again.
    pub fn new(
        csv_path: &Path,
        curves_path: &Path,
        keep_through: usize,
        log: EpochLog,
    ) -> std::io::Result<Self> {
        let kept: Vec<(usize, String)> = read_rows(csv_path)?
            .into_iter()
            .filter(|(epoch, _)| *epoch <= keep_through)
            .collect();
        let mut text = format!("{CSV_HEADER}\n");
        for (_, row) in &kept {
            text.push_str(row);
            text.push('\n');
        }
        crate::checkpoint::write_atomically(csv_path, text.as_bytes())?;
        Ok(Self {
            csv_path: csv_path.to_path_buf(),
            curves_path: curves_path.to_path_buf(),
            curve: kept
                .iter()
                .map(|(epoch, row)| row_point(*epoch, row))
                .collect(),
            log,
            names: HashMap::new(),
            epoch: keep_through + 1,
            total_epochs: 0,
            split: "train",
            train: SplitState::default(),
            valid: SplitState::default(),
            bar: None,
            guard: None,
        })
    }

    /// Stops the run through `guard` at the first non-finite training loss.
    pub fn with_guard(mut self, guard: DivergenceGuard) -> Self {
        self.guard = Some(guard);
        self
    }

    fn diverged(&self) -> bool {
        self.guard
            .as_ref()
            .is_some_and(|g| g.divergence().is_some())
    }

    fn state(&mut self) -> &mut SplitState {
        if self.split == "train" {
            &mut self.train
        } else {
            &mut self.valid
        }
    }

    fn observe(&mut self, state: MetricState) {
        let MetricState::Numeric(entry, Some(value)) = state else {
            return;
        };
        let Some(name) = self.names.get(&entry.metric_id).cloned() else {
            return;
        };
        if let (Some(guard), "train", LOSS) = (&self.guard, self.split, name.as_str())
            && let NumericEntry::Value(v)
            | NumericEntry::Aggregated {
                aggregated_value: v,
                ..
            } = value
        {
            self.train.iterations += 1;
            guard.check(self.epoch, self.train.iterations, v);
        }
        let split = self.state();
        match value {
            NumericEntry::Final(v) => {
                split.finals.insert(name, v);
            }
            NumericEntry::Aggregated {
                aggregated_value,
                count,
            } => {
                split.last.insert(name.clone(), aggregated_value);
                let r = split.running.entry(name).or_default();
                r.0 += aggregated_value * count as f64;
                r.1 += count;
            }
            NumericEntry::Value(v) => {
                split.last.insert(name.clone(), v);
                let r = split.running.entry(name).or_default();
                r.0 += v;
                r.1 += 1;
            }
        }
    }

    fn bar_message(&self) -> String {
        let split = if self.split == "train" {
            &self.train
        } else {
            &self.valid
        };
        let mean = |name: &str| split.running.get(name).map(|(s, n)| s / (*n).max(1) as f64);
        let mut parts = Vec::new();
        if let Some(loss) = mean(LOSS) {
            parts.push(format!("loss {loss:.4}"));
        }
        if let Some(acc) = mean(ACCURACY) {
            parts.push(format!("top-1 {acc:.2}%"));
        }
        parts.join("  ")
    }

    /// Builds the epoch's metrics once its validation has ended, prints and appends them. A
    /// diverged epoch is not recorded: the run stops without its checkpoint.
    fn finish_epoch(&mut self) {
        if self.diverged() {
            return;
        }
        let get = |s: &SplitState, name: &str| s.finals.get(name).copied().unwrap_or(f64::NAN);
        let top5 = |s: &SplitState| {
            let mut top = s.finals.iter().filter(|(k, _)| k.starts_with(TOP5_PREFIX));
            top.next().map_or(f64::NAN, |(_, &v)| v)
        };
        // The rate the epoch's last step applied, not burn's epoch mean: with gradient
        // accumulation burn-train logs a step's first micro-batches with the rate before the
        // step's update (0 before the run's first), which the mean would average in.
        let lr = self.train.last.get(LEARNING_RATE).copied();
        let metrics = EpochMetrics {
            epoch: self.epoch,
            lr: lr.unwrap_or_else(|| get(&self.train, LEARNING_RATE)),
            train_loss: get(&self.train, LOSS),
            train_top1: get(&self.train, ACCURACY),
            test_loss: get(&self.valid, LOSS),
            test_top1: get(&self.valid, ACCURACY),
            test_top5: top5(&self.valid),
            train_seconds: self.train.seconds,
            test_seconds: self.valid.seconds,
            train_images_per_second: self.train.items as f64 / self.train.seconds.max(1e-9),
        };
        println!(
            "epoch {}/{}  lr {:.4}  train loss {:.4} top-1 {:.2}%  |  test loss {:.4} top-1 {:.2}% top-5 {:.2}%  |  {:.0} s, {:.1} img/s",
            metrics.epoch,
            self.total_epochs,
            metrics.lr,
            metrics.train_loss,
            metrics.train_top1,
            metrics.test_loss,
            metrics.test_top1,
            metrics.test_top5,
            metrics.train_seconds + metrics.test_seconds,
            metrics.train_images_per_second,
        );
        if let Err(e) = append_row(&self.csv_path, &metrics.csv_row()) {
            eprintln!("warning: cannot append to {}: {e}", self.csv_path.display());
        }
        self.curve.push(metrics.curve_point());
        if let Err(e) = self.draw_curves() {
            eprintln!("warning: {e}");
        }
        self.log.lock().expect("epoch log lock").push(metrics);
        self.train = SplitState::default();
        self.valid = SplitState::default();
    }
}

impl RunReporter {
    /// Redraws `curves.png` through a temporary file, so a kill never leaves half a picture.
    fn draw_curves(&self) -> Result<(), FigureError> {
        let picture = training_curves(&self.curve, CURVES_SIZE)?;
        let tmp = self.curves_path.with_extension("png.tmp");
        sal_figures::write_png(&picture, &tmp)?;
        std::fs::rename(&tmp, &self.curves_path).map_err(|source| FigureError::Create {
            path: self.curves_path.clone(),
            source,
        })
    }
}

/// The curve point of a `metrics.csv` row (columns as [`CSV_HEADER`]); unreadable values are
/// left out of the curves.
fn row_point(epoch: usize, row: &str) -> CurvePoint {
    let fields: Vec<&str> = row.split(',').collect();
    let value = |column: usize| fields.get(column).and_then(|v| v.parse::<f64>().ok());
    CurvePoint {
        epoch,
        train_loss: value(2),
        train_top1: value(3),
        test_loss: value(4),
        test_top1: value(5),
        lr: value(1),
    }
}

/// The epoch with the best test top-1; the first of equal bests, as the papers' "best epoch"
/// logs pick it.
pub fn best_epoch(epochs: &[EpochMetrics]) -> Option<&EpochMetrics> {
    epochs
        .iter()
        .rev()
        .max_by(|a, b| a.test_top1.total_cmp(&b.test_top1))
}

/// Mean test top-1 error (`100 - top-1`) of the last `k` epochs, or of all of them when there
/// are fewer: Saliency Grafting's "last-10 mean" with `k = 10`.
pub fn last_epochs_mean_error(epochs: &[EpochMetrics], k: usize) -> Option<f64> {
    let last = &epochs[epochs.len().saturating_sub(k)..];
    (!last.is_empty())
        .then(|| last.iter().map(|e| 100.0 - e.test_top1).sum::<f64>() / last.len() as f64)
}

/// Every epoch recorded in a `metrics.csv` (a missing file: none), in file order.
pub fn read_metrics(path: &Path) -> std::io::Result<Vec<EpochMetrics>> {
    Ok(read_rows(path)?
        .iter()
        .filter_map(|(_, row)| EpochMetrics::from_csv_row(row))
        .collect())
}

fn append_row(path: &Path, row: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    writeln!(file, "{row}")?;
    file.sync_data()
}

/// The rows of an existing metrics file, keyed by epoch (missing file: none).
fn read_rows(path: &Path) -> std::io::Result<Vec<(usize, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let epoch = line.split(',').next()?.parse().ok()?;
            Some((epoch, line.to_string()))
        })
        .collect())
}

impl MetricsRendererTraining for RunReporter {
    fn update_train(&mut self, state: MetricState) {
        self.observe(state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.observe(state);
    }

    fn on_train_end(
        &mut self,
        _summary: Option<burn::train::LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for RunReporter {
    fn update_test(&mut self, _name: EvaluationName, state: MetricState) {
        self.observe(state);
    }
}

impl TrainingProgressLogger for RunReporter {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch;
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.split = if split == "train" { "train" } else { "valid" };
        let label = if self.split == "train" {
            "train"
        } else {
            "test "
        };
        let prefix = format!("epoch {}/{} {label}", self.epoch, self.total_epochs);
        let state = self.state();
        *state = SplitState {
            started: Some(Instant::now()),
            ..SplitState::default()
        };
        let bar = ProgressBar::new(total_items as u64)
            .with_prefix(prefix)
            .with_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:28}] {pos}/{len} img {per_sec:>9} eta {eta:>4}  {msg}",
                )
                .expect("valid progress template")
                .progress_chars("=> "),
            );
        self.bar = Some(bar);
    }

    fn update_split(&mut self, items_processed: usize) {
        self.state().items = items_processed;
        let message = self.bar_message();
        if let Some(bar) = &self.bar {
            bar.set_position(items_processed as u64);
            bar.set_message(message);
        }
    }

    fn end_split(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let state = self.state();
        state.seconds = state
            .started
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        if self.split == "valid" {
            self.finish_epoch();
        }
    }

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for RunReporter {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, name: &str, total_items: usize) {
        self.split = "valid";
        let bar = ProgressBar::new(total_items as u64).with_prefix(name.to_string());
        self.bar = Some(bar);
    }
    fn update_test_progress(&mut self, items_processed: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(items_processed as u64);
        }
    }
    fn end_test(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for RunReporter {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names
            .insert(definition.metric_id.clone(), definition.name.to_string());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_metrics_pick_the_first_best_and_average_the_last_epochs() {
        let epochs: Vec<EpochMetrics> = [50.0, 70.0, 60.0, 70.0, 65.0]
            .iter()
            .enumerate()
            .map(|(i, &top1)| EpochMetrics {
                epoch: i + 1,
                test_top1: top1,
                ..Default::default()
            })
            .collect();
        assert_eq!(best_epoch(&epochs).unwrap().epoch, 2);
        let mean = |k| last_epochs_mean_error(&epochs, k).unwrap();
        assert!((mean(2) - 32.5).abs() < 1e-12);
        assert!(
            (mean(10) - 37.0).abs() < 1e-12,
            "fewer epochs than k: all of them"
        );
        assert_eq!(last_epochs_mean_error(&[], 10), None);
        assert!(best_epoch(&[]).is_none());
    }

    use super::*;

    #[test]
    fn resuming_drops_rows_of_epochs_that_will_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("metrics.csv");
        std::fs::write(
            &csv,
            format!("{CSV_HEADER}\n1,0.1,1,2,3,4,5,6,7,8\n2,0.1,1,2,3,4,5,6,7,8\n3,x\n"),
        )
        .unwrap();
        let png = dir.path().join("curves.png");
        let reporter = RunReporter::new(&csv, &png, 2, EpochLog::default()).unwrap();
        let rows = read_rows(&csv).unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(
            reporter.curve.len(),
            2,
            "the kept epochs stay on the curves"
        );
        assert_eq!(reporter.curve[1].test_top1, Some(4.0));
        RunReporter::new(&csv, &png, 0, EpochLog::default()).unwrap();
        assert!(read_rows(&csv).unwrap().is_empty());
        assert!(
            std::fs::read_to_string(&csv)
                .unwrap()
                .starts_with("epoch,lr,")
        );
    }
}
