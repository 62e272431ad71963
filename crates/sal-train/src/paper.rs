//! The `[paper]` table of a paper-table config: which table and row the config reproduces, the
//! number the paper reports for it and how the paper aggregated its runs, and what the project
//! still lacks to run it (`cargo xtask reproduce`, docs/reproducing.md).
//!
//! ```toml
//! [paper]
//! table = "SaliencyMix Table 1"
//! row = "ResNet-18 + SaliencyMix, CIFAR-10+"
//! metric = "top1-error"
//! value = 3.65
//! std = 0.10
//! statistic = "mean-best"
//! runs = 5
//! note = "the paper says 'average of five runs'; its code records each run's best test accuracy"
//! requires = []
//! ```

use serde::{Deserialize, Serialize};

/// What a paper-table config reproduces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperRow {
    /// The paper and table, e.g. `"SaliencyMix Table 1"`.
    pub table: String,
    /// The row and column of the table, in the paper's words.
    pub row: String,
    pub metric: PaperMetric,
    /// The paper's number, in the metric's unit (percent for errors).
    pub value: f64,
    /// The spread the paper gives beside it (its ±), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// How the paper aggregated its runs into `value`.
    pub statistic: PaperStatistic,
    /// Runs the paper aggregated, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<usize>,
    /// Where the recipe departs from the paper's text, or what the paper leaves unsaid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// What this project lacks for the row (empty: it runs). `reproduce` lists a row that
    /// requires something as not runnable, with these reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
}

/// The number a row reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaperMetric {
    /// Test top-1 error, %.
    Top1Error,
    /// Test top-5 error, %.
    Top5Error,
}

impl PaperMetric {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Top1Error => "top-1 error (%)",
            Self::Top5Error => "top-5 error (%)",
        }
    }
}

/// How a paper turned its runs into one number; `reproduce` computes ours the same way from
/// each run's `results.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaperStatistic {
    /// The mean over runs of the final epoch's error.
    MeanFinal,
    /// The mean over runs of each run's best epoch ("averaged best").
    MeanBest,
    /// The mean over runs of each run's mean error over its last 10 epochs ("last-10 mean").
    MeanLast10,
}

impl PaperStatistic {
    pub fn describe(self) -> &'static str {
        match self {
            Self::MeanFinal => "mean of the final epochs",
            Self::MeanBest => "mean of each run's best epoch",
            Self::MeanLast10 => "mean of each run's last-10-epoch mean",
        }
    }
}
