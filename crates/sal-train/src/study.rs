//! A study: configs trained over seeds and compared with each other rather than with a paper
//! (`cargo xtask study`, docs/results/). Per configuration: the mean ± sample standard
//! deviation over its finished seeds of the final, best and last-5-mean test error, of the
//! training seconds per epoch, and of the `[eval]` suite's errors (FGSM, occlusion) on the
//! final models; between two configurations: Welch's t-test on the final error, which does
//! not assume equal variances (the seeds of two methods need not spread alike). Drawn: the
//! final errors as bars with ± std error bars, and each config's test error per epoch.
//!
//! Runs live where `reproduce` puts them (`<runs>/<folder below experiments/>/<config>/seed-<s>`,
//! [`crate::reproduce::run_overrides`]), and are resumable the same way.

use std::path::{Path, PathBuf};

use crate::ExperimentConfig;
use crate::eval::{AtSetting, EvalReport};
use crate::metrics::{EpochMetrics, read_metrics};
use crate::reproduce::{ReproduceError, ReproduceOptions, collect_configs, run_config};

/// One config of a study folder.
#[derive(Debug, Clone)]
pub struct StudyRow {
    pub path: PathBuf,
    /// The file name without `.toml`: names the row and its run directories.
    pub name: String,
    pub config: ExperimentConfig,
}

impl StudyRow {
    /// The config of this row's run with `seed` (its run directory below `table_dir`).
    pub fn run_config(
        &self,
        seed: u64,
        table_dir: &Path,
        options: &ReproduceOptions,
    ) -> ExperimentConfig {
        run_config(
            &self.config,
            &self.path,
            &self.name,
            seed,
            table_dir,
            options,
        )
    }
}

/// Every config below `folder`, sorted by path.
pub fn study_rows(folder: &Path) -> Result<Vec<StudyRow>, ReproduceError> {
    let mut paths = Vec::new();
    collect_configs(folder, &mut paths)?;
    if paths.is_empty() {
        return Err(ReproduceError::Empty(folder.to_path_buf()));
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let config = ExperimentConfig::load(&path, &[])?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(StudyRow { path, name, config })
        })
        .collect()
}

/// The numbers of one finished run, errors in %.
#[derive(Debug, Clone, PartialEq)]
pub struct RunNumbers {
    pub seed: u64,
    pub final_error: f64,
    pub best_error: f64,
    /// The mean test error of the last 5 epochs (fewer if the run has fewer).
    pub last5_error: f64,
    /// The median of the run's training seconds per epoch (the test pass excluded): the
    /// median, not the mean, so that the first epoch's warm-up or an epoch slowed by something
    /// else on the machine does not move it.
    pub seconds_per_epoch: f64,
    /// The test error after each epoch, from the first.
    pub epoch_errors: Vec<f64>,
    /// The `[eval]` suite on the final model, where the run has its `eval.json`.
    pub eval: Option<EvalErrors>,
}

/// A run's `[eval]` suite as top-1 errors (%): `(setting, error)` per FGSM `eps` and per
/// occluded fraction.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalErrors {
    pub fgsm: Vec<(f64, f64)>,
    pub occlusion: Vec<(f64, f64)>,
}

impl EvalErrors {
    pub fn of(report: &EvalReport) -> Self {
        let errors = |at: &[AtSetting]| {
            at.iter()
                .map(|a| (a.setting, a.accuracy.top1_error()))
                .collect()
        };
        Self {
            fgsm: errors(&report.fgsm),
            occlusion: errors(&report.occlusion),
        }
    }
}

impl RunNumbers {
    /// From a run's `metrics.csv` epochs; `None` without epochs or with a non-finite error.
    pub fn from_epochs(seed: u64, epochs: &[EpochMetrics]) -> Option<Self> {
        let errors: Vec<f64> = epochs.iter().map(|e| 100.0 - e.test_top1).collect();
        if errors.is_empty() || errors.iter().any(|e| !e.is_finite()) {
            return None;
        }
        let tail = &errors[errors.len().saturating_sub(5)..];
        let mut seconds: Vec<f64> = epochs.iter().map(|e| e.train_seconds).collect();
        seconds.sort_by(f64::total_cmp);
        let mid = seconds.len() / 2;
        let median = if seconds.len() % 2 == 1 {
            seconds[mid]
        } else {
            (seconds[mid - 1] + seconds[mid]) / 2.0
        };
        Some(Self {
            seed,
            final_error: *errors.last()?,
            best_error: errors.iter().copied().fold(f64::INFINITY, f64::min),
            last5_error: tail.iter().sum::<f64>() / tail.len() as f64,
            seconds_per_epoch: median,
            epoch_errors: errors,
            eval: None,
        })
    }
}

/// The finished runs of `row` among `seeds` (a run counts when it has all its epochs), with
/// their `[eval]` suite where it evaluated the final epoch.
pub fn row_runs(row: &StudyRow, table_dir: &Path, options: &ReproduceOptions) -> Vec<RunNumbers> {
    options
        .seeds
        .iter()
        .filter_map(|&seed| {
            let config = row.run_config(seed, table_dir, options);
            let dir = config.output_dir();
            let epochs = read_metrics(&dir.join("metrics.csv")).ok()?;
            let mut run = (epochs.len() >= config.epochs)
                .then(|| RunNumbers::from_epochs(seed, &epochs[..config.epochs]))
                .flatten()?;
            run.eval = EvalReport::read_final(&dir, config.epochs).map(|r| EvalErrors::of(&r));
            Some(run)
        })
        .collect()
}

/// Mean and sample standard deviation (n - 1; `None` under 2 values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n >= 2).then(|| {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        });
        Some(Self { mean, std, n })
    }

    /// "m ± s" (or "m" for one value) with `decimals`.
    pub fn label(&self, decimals: usize) -> String {
        match self.std {
            Some(s) => format!("{:.decimals$} ± {s:.decimals$}", self.mean),
            None => format!("{:.decimals$}", self.mean),
        }
    }
}

/// Welch's two-sided t-test of the means of `a` and `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelchTest {
    /// mean(a) - mean(b).
    pub difference: f64,
    pub t: f64,
    /// The Welch-Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// `None` when either side has fewer than 2 values or both have no spread at all.
pub fn welch(a: &[f64], b: &[f64]) -> Option<WelchTest> {
    let (sa, sb) = (Spread::of(a)?, Spread::of(b)?);
    let (va, vb) = (
        sa.std?.powi(2) / a.len() as f64,
        sb.std?.powi(2) / b.len() as f64,
    );
    let se2 = va + vb;
    if se2 <= 0.0 {
        return None;
    }
    let difference = sa.mean - sb.mean;
    let t = difference / se2.sqrt();
    let df = se2 * se2 / (va * va / (a.len() - 1) as f64 + vb * vb / (b.len() - 1) as f64);
    // P(|T| > |t|) for Student's t with df degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2).
    let p = regularized_incomplete_beta(df / (df + t * t), df / 2.0, 0.5);
    Some(WelchTest {
        difference,
        t,
        df,
        p,
    })
}

/// `I_x(a, b)` by its continued fraction (Numerical Recipes §6.4, modified Lentz).
fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// `ln Γ(x)` for x > 0 (Lanczos, g = 7, 9 coefficients: ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |s, (i, g)| s + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// One configuration's line of a study table.
#[derive(Debug, Clone)]
pub struct StudyResult {
    pub name: String,
    pub runs: Vec<RunNumbers>,
}

impl StudyResult {
    fn spread(&self, f: impl Fn(&RunNumbers) -> f64) -> Option<Spread> {
        Spread::of(&self.runs.iter().map(f).collect::<Vec<_>>())
    }

    fn final_errors(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.final_error).collect()
    }
}

/// `results.md` of a study folder: the table of every configuration (errors and time per epoch,
/// relative to `baseline`'s when it is one of them), Welch's test of each comparison `(a, b)`
/// on the final error, then the `[eval]` suite's errors.
pub fn study_markdown(
    folder: &Path,
    results: &[StudyResult],
    baseline: Option<&str>,
    comparisons: &[(String, String)],
    seeds: &[u64],
) -> String {
    let mut out = format!(
        "# {}\n\n`cargo xtask study {}` over seeds {seeds:?}: test error (%) as mean ± sample \
         standard deviation over the finished seeds; a run's time per epoch is the median of its \
         epochs' training seconds.\n\n\
         | config | seeds done | final | best | last-5 mean | train s/epoch | time vs {} |\n\
         |---|---|---|---|---|---|---|\n",
        folder.display(),
        folder.display(),
        baseline.unwrap_or("-"),
    );
    let base_time = baseline
        .and_then(|b| results.iter().find(|r| r.name == b))
        .and_then(|r| r.spread(|n| n.seconds_per_epoch));
    let cell = |s: Option<Spread>, decimals: usize| s.map_or("-".into(), |s| s.label(decimals));
    for r in results {
        let time = r.spread(|n| n.seconds_per_epoch);
        let ratio = match (time, base_time) {
            (Some(t), Some(b)) if b.mean > 0.0 => format!("{:.2}x", t.mean / b.mean),
            _ => "-".into(),
        };
        out += &format!(
            "| {} | {}/{} | {} | {} | {} | {} | {ratio} |\n",
            r.name,
            r.runs.len(),
            seeds.len(),
            cell(r.spread(|n| n.final_error), 2),
            cell(r.spread(|n| n.best_error), 2),
            cell(r.spread(|n| n.last5_error), 2),
            cell(time, 1),
        );
    }
    if !comparisons.is_empty() {
        out += "\nWelch's t-test on the final error, two-sided (does not assume equal variances):\n\n\
                | a | b | a - b | t | df | p | larger than the seed noise (p < 0.05)? |\n\
                |---|---|---|---|---|---|---|\n";
    }
    let find = |name: &str| results.iter().find(|r| r.name == name);
    for (a, b) in comparisons {
        let test = match (find(a), find(b)) {
            (Some(ra), Some(rb)) => welch(&ra.final_errors(), &rb.final_errors()),
            _ => None,
        };
        out += &match test {
            Some(w) => format!(
                "| {a} | {b} | {:+.2} | {:.2} | {:.1} | {:.3} | {} |\n",
                w.difference,
                w.t,
                w.df,
                w.p,
                if w.p < 0.05 { "yes" } else { "no" }
            ),
            None => format!(
                "| {a} | {b} | - | - | - | - | not testable (under 2 finished seeds each, or no spread) |\n"
            ),
        };
    }
    out + &eval_markdown(results)
}

/// The `[eval]` suite's table: per config, the top-1 error (%) under each FGSM `eps` and each
/// occluded fraction, mean ± std over the runs that were evaluated; empty when none was.
fn eval_markdown(results: &[StudyResult]) -> String {
    let settings = |pick: fn(&EvalErrors) -> &Vec<(f64, f64)>| {
        let mut all: Vec<f64> = results
            .iter()
            .flat_map(|r| r.runs.iter().filter_map(|n| n.eval.as_ref()))
            .flat_map(|e| pick(e).iter().map(|a| a.0))
            .collect();
        all.sort_by(f64::total_cmp);
        all.dedup();
        all
    };
    let fgsm = settings(|e| &e.fgsm);
    let occlusion = settings(|e| &e.occlusion);
    if fgsm.is_empty() && occlusion.is_empty() {
        return String::new();
    }
    let mut out = "\nThe `[eval]` suite on the final models: top-1 error (%) on the test split, \
                   mean ± std over the evaluated seeds (FGSM: Goodfellow et al. 2015 at `eps` on \
                   the [0, 1] pixel scale; occlusion: the given fraction of each image's most \
                   salient cells zeroed, docs/evaluation.md).\n\n| config | seeds evaluated |"
        .to_string();
    for eps in &fgsm {
        out += &format!(" FGSM {} |", eps_label(*eps));
    }
    for fraction in &occlusion {
        out += &format!(" {:.1} % occluded |", fraction * 100.0);
    }
    out += &format!(
        "\n|---|---|{}\n",
        "---|".repeat(fgsm.len() + occlusion.len())
    );
    for r in results {
        let evaluated: Vec<&EvalErrors> = r.runs.iter().filter_map(|n| n.eval.as_ref()).collect();
        out += &format!("| {} | {}/{} |", r.name, evaluated.len(), r.runs.len());
        let columns = fgsm.iter().map(|&s| (s, true));
        for (setting, is_fgsm) in columns.chain(occlusion.iter().map(|&s| (s, false))) {
            let errors: Vec<f64> = evaluated
                .iter()
                .filter_map(|e| {
                    let at = if is_fgsm { &e.fgsm } else { &e.occlusion };
                    at.iter().find(|a| a.0 == setting).map(|a| a.1)
                })
                .collect();
            out += &format!(
                " {} |",
                Spread::of(&errors).map_or("-".into(), |s| s.label(2))
            );
        }
        out += "\n";
    }
    out
}

/// An FGSM `eps` as `k/255` where it is a whole number of grey levels, else as it is.
fn eps_label(eps: f64) -> String {
    let levels = eps * 255.0;
    if (levels - levels.round()).abs() < 1e-6 {
        format!("{}/255", levels.round())
    } else {
        format!("{eps}")
    }
}

/// The pictures of a study beside its `results.md`.
pub const ERRORS_PNG: &str = "errors.png";
pub const CURVES_PNG: &str = "curves.png";

/// Writes `results.md` ([`study_markdown`] with the pictures linked), `errors.png` (each
/// config's final error, mean with a ± std error bar) and `curves.png` (each config's test
/// error per epoch, of its first finished seed; a second panel from `zoom_from` on) into
/// `table_dir`; returns the markdown.
pub fn write_study(
    folder: &Path,
    table_dir: &Path,
    results: &[StudyResult],
    baseline: Option<&str>,
    comparisons: &[(String, String)],
    seeds: &[u64],
    zoom_from: Option<usize>,
) -> Result<String, ReproduceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReproduceError::Io { path, source }
    };
    std::fs::create_dir_all(table_dir).map_err(io(table_dir))?;
    let figure = |path: &Path| {
        let path = path.to_path_buf();
        move |e: sal_figures::FigureError| ReproduceError::Figure {
            path,
            message: e.to_string(),
        }
    };
    let drawn: Vec<&StudyResult> = results.iter().filter(|r| !r.runs.is_empty()).collect();
    let mut md = study_markdown(folder, results, baseline, comparisons, seeds);
    if !drawn.is_empty() {
        let png = table_dir.join(ERRORS_PNG);
        let labels: Vec<String> = drawn.iter().map(|r| r.name.clone()).collect();
        let finals: Vec<Option<Spread>> =
            drawn.iter().map(|r| r.spread(|n| n.final_error)).collect();
        let series = [sal_figures::BarSeries {
            name: "",
            colour: sal_figures::chart::TRAIN,
            values: finals.iter().map(|s| s.map(|s| s.mean)).collect(),
            errors: finals.iter().map(|s| s.and_then(|s| s.std)).collect(),
        }];
        let title = format!(
            "{}: final test error (%), mean ± std over the finished seeds",
            folder
                .file_name()
                .unwrap_or(folder.as_os_str())
                .to_string_lossy()
        );
        let height = (140 + 44 * labels.len()).min(4000) as u32;
        let chart = sal_figures::grouped_bars(
            &title,
            "test error (%)",
            &labels,
            &series,
            0.0,
            (1100, height),
        )
        .map_err(figure(&png))?;
        sal_figures::write_png(&chart, &png).map_err(figure(&png))?;

        let png = table_dir.join(CURVES_PNG);
        let curves: Vec<sal_figures::NamedCurve> = drawn
            .iter()
            .enumerate()
            .map(|(k, r)| sal_figures::NamedCurve {
                name: &r.name,
                colour: sal_figures::chart::PALETTE[k % sal_figures::chart::PALETTE.len()],
                points: r.runs[0]
                    .epoch_errors
                    .iter()
                    .enumerate()
                    .map(|(e, &v)| ((e + 1) as f64, v))
                    .collect(),
            })
            .collect();
        let first_seeds: Vec<u64> = drawn.iter().map(|r| r.runs[0].seed).collect();
        let title = if first_seeds.iter().all(|&s| s == first_seeds[0]) {
            format!("test error (%), seed {}", first_seeds[0])
        } else {
            "test error (%), each config's first finished seed".to_string()
        };
        let chart = sal_figures::compare_curves(&title, &curves, zoom_from, (1400, 560))
            .map_err(figure(&png))?;
        sal_figures::write_png(&chart, &png).map_err(figure(&png))?;
        md += &format!(
            "\n![final test error, mean ± std]({ERRORS_PNG})\n\n![{title}]({CURVES_PNG})\n"
        );
    }
    let path = table_dir.join("results.md");
    crate::checkpoint::write_atomically(&path, md.as_bytes()).map_err(io(&path))?;
    Ok(md)
}

/// The small files of a finished run that a results page keeps (no checkpoints).
pub const RUN_LOGS: [&str; 4] = ["config.toml", "metrics.csv", "results.json", "eval.json"];

/// Copies a study's results out of its run tree into `out` (a results page's folder):
/// `results.md` and its pictures from `table_dir`; per config and finished seed the
/// [`RUN_LOGS`] into `<config>/seed-<s>/`; per config the mixed batch its first finished seed
/// drew at its last epoch, as `<config>/mixed.png` (where it drew one). Returns the files
/// written.
pub fn export_study(
    rows: &[StudyRow],
    results: &[StudyResult],
    table_dir: &Path,
    options: &ReproduceOptions,
    out: &Path,
) -> Result<Vec<PathBuf>, ReproduceError> {
    let mut written = Vec::new();
    let mut copy = |from: PathBuf, to: PathBuf| -> Result<(), ReproduceError> {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ReproduceError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::copy(&from, &to).map_err(|source| ReproduceError::Io { path: from, source })?;
        written.push(to);
        Ok(())
    };
    for name in ["results.md", ERRORS_PNG, CURVES_PNG] {
        let from = table_dir.join(name);
        if from.exists() {
            copy(from, out.join(name))?;
        }
    }
    for (row, result) in rows.iter().zip(results) {
        for (k, run) in result.runs.iter().enumerate() {
            let config = row.run_config(run.seed, table_dir, options);
            let dir = config.output_dir();
            let seed_dir = out.join(&row.name).join(format!("seed-{}", run.seed));
            for name in RUN_LOGS {
                if dir.join(name).exists() {
                    copy(dir.join(name), seed_dir.join(name))?;
                }
            }
            let mixed = dir
                .join("mixed")
                .join(format!("epoch-{}.png", config.epochs));
            if k == 0 && mixed.exists() {
                copy(mixed, out.join(&row.name).join("mixed.png"))?;
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    /// Reference values: scipy 1.16 `stats.ttest_ind(a, b, equal_var=False)`.
    #[test]
    fn welch_matches_scipy() {
        // (a, b, t, p, df)
        type Case<'a> = (&'a [f64], &'a [f64], f64, f64, f64);
        let cases: [Case; 3] = [
            (
                &[9.48, 9.61, 9.30],
                &[10.02, 10.31, 9.95],
                -4.430228332368773,
                0.012483121775026485,
                3.8445244774480534,
            ),
            (
                &[1.0, 2.0, 3.0, 4.0],
                &[2.5, 3.5, 4.5],
                -1.1547005383792517,
                0.3008027072551761,
                4.959183673469389,
            ),
            (
                &[90.1, 90.2],
                &[90.15, 90.4, 90.3],
                -1.5118578920369472,
                0.22781310222333642,
                2.998087954110911,
            ),
        ];
        for (a, b, t, p, df) in cases {
            let w = welch(a, b).unwrap();
            assert!(close(w.t, t, 1e-9), "t {} vs {t}", w.t);
            assert!(close(w.df, df, 1e-9), "df {} vs {df}", w.df);
            assert!(close(w.p, p, 1e-9), "p {} vs {p}", w.p);
        }
        let equal = welch(&[5.0, 5.1, 4.9], &[5.0, 5.2, 4.8]).unwrap();
        assert_eq!((equal.t, equal.p), (0.0, 1.0));
        assert!(welch(&[1.0], &[2.0, 3.0]).is_none());
        assert!(welch(&[1.0, 1.0], &[2.0, 2.0]).is_none());
    }

    /// scipy: `2 * stats.t.sf(2.0, 3.7)` and `stats.beta.cdf(0.3, 2.5, 0.5)`.
    #[test]
    fn the_incomplete_beta_matches_scipy() {
        let p = regularized_incomplete_beta(3.7 / (3.7 + 4.0), 3.7 / 2.0, 0.5);
        assert!(close(p, 0.12181720190523398, 1e-10), "{p}");
        let cdf = regularized_incomplete_beta(0.3, 2.5, 0.5);
        assert!(close(cdf, 0.018927124071945658, 1e-10), "{cdf}");
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-13));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-13
        ));
    }

    fn epoch(epoch: usize, top1: f64, seconds: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            test_top1: top1,
            train_seconds: seconds,
            ..Default::default()
        }
    }

    #[test]
    fn a_runs_numbers_are_its_final_best_last5_and_median_epoch_time() {
        let top1 = [80.0, 85.0, 91.0, 90.0, 90.5, 90.2, 90.4];
        // A slow first epoch (warm-up) moves the mean (15 s), not the median (13 s).
        let seconds = [30.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0];
        let epochs: Vec<_> = top1
            .iter()
            .zip(seconds)
            .enumerate()
            .map(|(i, (&t, s))| epoch(i + 1, t, s))
            .collect();
        let n = RunNumbers::from_epochs(4, &epochs).unwrap();
        assert!(close(n.final_error, 9.6, 1e-12));
        assert!(close(n.best_error, 9.0, 1e-12));
        let last5 = (9.0 + 10.0 + 9.5 + 9.8 + 9.6) / 5.0;
        assert!(close(n.last5_error, last5, 1e-12), "{}", n.last5_error);
        assert!(close(n.seconds_per_epoch, 13.0, 1e-12));
        let even = RunNumbers::from_epochs(0, &epochs[..4]).unwrap();
        assert!(
            close(even.seconds_per_epoch, 11.5, 1e-12),
            "{}",
            even.seconds_per_epoch
        );
        assert_eq!(n.epoch_errors.len(), 7);
        assert!(close(n.epoch_errors[0], 20.0, 1e-12));
        assert_eq!(n.seed, 4);
        assert!(RunNumbers::from_epochs(0, &[]).is_none());
        assert!(RunNumbers::from_epochs(0, &[epoch(1, f64::NAN, 1.0)]).is_none());
    }

    #[test]
    fn the_table_has_every_config_and_each_comparison() {
        let run = |seed, e: f64, s| RunNumbers {
            seed,
            final_error: e,
            best_error: e - 0.1,
            last5_error: e + 0.05,
            seconds_per_epoch: s,
            epoch_errors: vec![e],
            // FGSM 8/255 and 0 % / 25 % occluded: errors of e + 60, e and e + 10.
            eval: (seed < 2).then(|| EvalErrors {
                fgsm: vec![(8.0 / 255.0, e + 60.0)],
                occlusion: vec![(0.0, e), (0.25, e + 10.0)],
            }),
        };
        let results = [
            StudyResult {
                name: "none".into(),
                runs: vec![run(0, 9.48, 8.0), run(1, 9.61, 8.0), run(2, 9.30, 8.0)],
            },
            StudyResult {
                name: "cutmix".into(),
                runs: vec![run(0, 10.02, 10.0), run(1, 10.31, 10.0), run(2, 9.95, 10.0)],
            },
            StudyResult {
                name: "mixup".into(),
                runs: vec![run(0, 9.0, 9.0)],
            },
        ];
        let comparisons = [
            ("none".to_string(), "cutmix".to_string()),
            ("none".to_string(), "mixup".to_string()),
        ];
        let md = study_markdown(
            Path::new("s"),
            &results,
            Some("none"),
            &comparisons,
            &[0, 1, 2],
        );
        let line = |start: &str| {
            md.lines()
                .find(|l| l.starts_with(start))
                .expect(&md)
                .to_string()
        };
        assert!(
            line("| cutmix |").contains("| 3/3 | 10.09 ± 0.19 |"),
            "{md}"
        );
        assert!(
            line("| cutmix |").ends_with("| 10.0 ± 0.0 | 1.25x |"),
            "{md}"
        );
        assert!(line("| mixup |").contains("| 1/3 | 9.00 |"), "{md}");
        let test = line("| none | cutmix |");
        assert!(
            test.contains("| -0.63 | -4.43 | 3.8 | 0.012 | yes |"),
            "{test}"
        );
        assert!(line("| none | mixup |").contains("not testable"), "{md}");
        // The eval table: its header, and per config the seeds evaluated (2 of 3 here).
        assert!(
            md.contains(
                "| config | seeds evaluated | FGSM 8/255 | 0.0 % occluded | 25.0 % occluded |"
            ),
            "{md}"
        );
        let eval_line = |name: &str| {
            md.lines()
                .rfind(|l| l.starts_with(&format!("| {name} |")))
                .expect(&md)
                .to_string()
        };
        assert_eq!(
            eval_line("none"),
            "| none | 2/3 | 69.55 ± 0.09 | 9.54 ± 0.09 | 19.55 ± 0.09 |"
        );
        assert_eq!(eval_line("mixup"), "| mixup | 1/1 | 69.00 | 9.00 | 19.00 |");
        let without = [StudyResult {
            name: "none".into(),
            runs: vec![RunNumbers {
                eval: None,
                ..run(0, 9.0, 1.0)
            }],
        }];
        let md = study_markdown(Path::new("s"), &without, None, &[], &[0]);
        assert!(!md.contains("seeds evaluated"), "{md}");
    }

    #[test]
    fn fgsm_eps_is_written_in_grey_levels_where_it_is_whole() {
        assert_eq!(eps_label(8.0 / 255.0), "8/255");
        assert_eq!(eps_label(0.0), "0/255");
        assert_eq!(eps_label(0.01), "0.01");
    }
}
