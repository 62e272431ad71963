//! A study: configs trained over seeds and compared with each other rather than with a paper
//! (`cargo xtask study`, docs/results/). Per configuration: the mean ± sample standard
//! deviation over its finished seeds of the final, best and last-5-mean test error and of the
//! training seconds per epoch; between two configurations: Welch's t-test on the final error,
//! which does not assume equal variances (the seeds of two methods need not spread alike).
//!
//! Runs live where `reproduce` puts them (`<runs>/<folder below experiments/>/<config>/seed-<s>`,
//! [`crate::reproduce::run_overrides`]), and are resumable the same way.

use std::path::{Path, PathBuf};

use crate::ExperimentConfig;
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunNumbers {
    pub seed: u64,
    pub final_error: f64,
    pub best_error: f64,
    /// The mean test error of the last 5 epochs (fewer if the run has fewer).
    pub last5_error: f64,
    /// Mean training seconds per epoch (the test pass excluded).
    pub seconds_per_epoch: f64,
}

impl RunNumbers {
    /// From a run's `metrics.csv` epochs; `None` without epochs or with a non-finite error.
    pub fn from_epochs(seed: u64, epochs: &[EpochMetrics]) -> Option<Self> {
        let errors: Vec<f64> = epochs.iter().map(|e| 100.0 - e.test_top1).collect();
        if errors.is_empty() || errors.iter().any(|e| !e.is_finite()) {
            return None;
        }
        let tail = &errors[errors.len().saturating_sub(5)..];
        Some(Self {
            seed,
            final_error: *errors.last()?,
            best_error: errors.iter().copied().fold(f64::INFINITY, f64::min),
            last5_error: tail.iter().sum::<f64>() / tail.len() as f64,
            seconds_per_epoch: epochs.iter().map(|e| e.train_seconds).sum::<f64>()
                / epochs.len() as f64,
        })
    }
}

/// The finished runs of `row` among `seeds` (a run counts when it has all its epochs).
pub fn row_runs(row: &StudyRow, table_dir: &Path, options: &ReproduceOptions) -> Vec<RunNumbers> {
    options
        .seeds
        .iter()
        .filter_map(|&seed| {
            let config = row.run_config(seed, table_dir, options);
            let epochs = read_metrics(&config.output_dir().join("metrics.csv")).ok()?;
            (epochs.len() >= config.epochs)
                .then(|| RunNumbers::from_epochs(seed, &epochs[..config.epochs]))
                .flatten()
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
/// relative to `baseline`'s when it is one of them), then Welch's test of each comparison
/// `(a, b)` on the final error.
pub fn study_markdown(
    folder: &Path,
    results: &[StudyResult],
    baseline: Option<&str>,
    comparisons: &[(String, String)],
    seeds: &[u64],
) -> String {
    let mut out = format!(
        "# {}\n\n`cargo xtask study {}` over seeds {seeds:?}: test error (%) as mean ± sample \
         standard deviation over the finished seeds.\n\n\
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
    if comparisons.is_empty() {
        return out;
    }
    out += "\nWelch's t-test on the final error, two-sided (does not assume equal variances):\n\n\
            | a | b | a - b | t | df | p | larger than the seed noise (p < 0.05)? |\n\
            |---|---|---|---|---|---|---|\n";
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
    out
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
    fn a_runs_numbers_are_its_final_best_last5_and_mean_epoch_time() {
        let top1 = [80.0, 85.0, 91.0, 90.0, 90.5, 90.2, 90.4];
        let epochs: Vec<_> = top1
            .iter()
            .enumerate()
            .map(|(i, &t)| epoch(i + 1, t, 10.0 + i as f64))
            .collect();
        let n = RunNumbers::from_epochs(4, &epochs).unwrap();
        assert!(close(n.final_error, 9.6, 1e-12));
        assert!(close(n.best_error, 9.0, 1e-12));
        let last5 = (9.0 + 10.0 + 9.5 + 9.8 + 9.6) / 5.0;
        assert!(close(n.last5_error, last5, 1e-12), "{}", n.last5_error);
        assert!(close(n.seconds_per_epoch, 13.0, 1e-12));
        assert_eq!(n.seed, 4);
        assert!(RunNumbers::from_epochs(0, &[]).is_none());
        assert!(RunNumbers::from_epochs(0, &[epoch(1, f64::NAN, 1.0)]).is_none());
    }

    #[test]
    fn the_table_has_every_config_and_each_comparison() {
        let run = |seed, e, s| RunNumbers {
            seed,
            final_error: e,
            best_error: e - 0.1,
            last5_error: e + 0.05,
            seconds_per_epoch: s,
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
    }
}
