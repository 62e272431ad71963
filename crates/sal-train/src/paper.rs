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
//!
//! A number the paper prints only as a bar of a figure is left out (`value` absent); the
//! row's `note` says so, and `reproduce` shows ours alone for it.

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
    /// The evaluation's setting, for the metrics measured by the `[eval]` suite: FGSM's `eps`
    /// (pixel units) or the occluded fraction; the config's `[eval]` table must list it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<f64>,
    /// The paper's number, in the metric's unit (percent, or hours). `None` where the paper
    /// gives it only as a bar of a figure: the row's `note` must then say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The spread the paper gives beside it (its ±), if any; only with a `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// The paper's top-5 error beside a `top1-error` row (the same runs: ours is read at the
    /// epochs the top-1 statistic picks, as the papers' code records it), and its ±.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top5: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top5_std: Option<f64>,
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
    /// Top-1 accuracy (%) under FGSM at `setting` = eps (SaliencyMix Table 4), from the
    /// `[eval]` suite on the final checkpoint.
    FgsmTop1Accuracy,
    /// Top-1 error (%) with the `setting` fraction of the most salient regions occluded
    /// (Saliency Grafting Table 6), from the `[eval]` suite on the final checkpoint.
    OcclusionTop1Error,
    /// The run's training time in hours: the sum of its epochs' `train_seconds` in
    /// `metrics.csv` (the test passes excluded), SaliencyMix Table 5. Hours depend on the
    /// hardware: only the ratios between rows compare with the paper's.
    TrainingHours,
}

impl PaperMetric {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Top1Error => "top-1 error (%)",
            Self::Top5Error => "top-5 error (%)",
            Self::FgsmTop1Accuracy => "FGSM top-1 accuracy (%)",
            Self::OcclusionTop1Error => "occluded top-1 error (%)",
            Self::TrainingHours => "training time (hours)",
        }
    }

    /// True for the metrics the `[eval]` suite measures (on the final checkpoint).
    pub fn from_eval(self) -> bool {
        matches!(self, Self::FgsmTop1Accuracy | Self::OcclusionTop1Error)
    }
}

impl PaperRow {
    /// The metric with its setting, e.g. "FGSM top-1 accuracy (%) at eps 8.0/255".
    pub fn metric_label(&self) -> String {
        match (self.metric, self.setting) {
            (PaperMetric::FgsmTop1Accuracy, Some(eps)) => {
                format!("{} at eps {:.1}/255", self.metric.describe(), eps * 255.0)
            }
            (PaperMetric::OcclusionTop1Error, Some(k)) => {
                format!(
                    "{}, top {:.1} % occluded",
                    self.metric.describe(),
                    k * 100.0
                )
            }
            _ => self.metric.describe().to_string(),
        }
    }

    /// How runs become one number, in words; a run's training time is its whole training.
    pub fn statistic_label(&self) -> &'static str {
        match self.metric {
            PaperMetric::TrainingHours => "mean of each run's total training time",
            _ => self.statistic.describe(),
        }
    }

    /// The paper's number with its ±, or that the paper shows it only in a figure.
    pub fn value_label(&self) -> String {
        match (self.value, self.std) {
            (Some(v), Some(s)) => format!("{v:.2} ± {s:.2}"),
            (Some(v), None) => format!("{v:.2}"),
            (None, _) => "— (figure only)".into(),
        }
    }

    /// What does not fit together, as the `[paper]` key and the problem: a missing value needs
    /// its reason in `note` and has no ±; an evaluation metric needs its `setting`, listed in
    /// the config's `[eval]` table, and the final checkpoint's statistic (the suite evaluates
    /// that one); a training time is a run's whole training, statistic "mean-final".
    pub fn check(
        &self,
        eval: Option<&crate::eval::EvalConfig>,
    ) -> Result<(), (&'static str, String)> {
        match (self.value, self.std) {
            (Some(v), _) if !v.is_finite() => {
                return Err(("paper.value", format!("must be a number, got {v}")));
            }
            (None, Some(_)) => {
                return Err((
                    "paper.std",
                    "is the paper's ± of its value: give the value too".into(),
                ));
            }
            (None, None) if self.note.trim().is_empty() => {
                return Err((
                    "paper.note",
                    "must say why the row has no value (e.g. the paper shows it only in a \
                     figure)"
                        .into(),
                ));
            }
            _ => {}
        }
        if let Some(s) = self.std.filter(|s| !s.is_finite()) {
            return Err(("paper.std", format!("must be a number, got {s}")));
        }
        match (self.top5, self.top5_std) {
            (None, Some(_)) => {
                return Err((
                    "paper.top5_std",
                    "is the ± of paper.top5: give it too".into(),
                ));
            }
            (Some(_), _) if self.metric != PaperMetric::Top1Error => {
                return Err((
                    "paper.top5",
                    format!(
                        "goes beside a top-1 error; this row's metric is {}",
                        self.metric.describe()
                    ),
                ));
            }
            (Some(v), s) if !v.is_finite() || s.is_some_and(|s| !s.is_finite()) => {
                return Err(("paper.top5", "must be a number, with a finite ±".into()));
            }
            _ => {}
        }
        if self.metric == PaperMetric::TrainingHours && self.statistic != PaperStatistic::MeanFinal
        {
            return Err((
                "paper.statistic",
                format!(
                    "{} is a run's whole training: use \"mean-final\"",
                    self.metric.describe()
                ),
            ));
        }
        if !self.metric.from_eval() {
            return match self.setting {
                Some(_) => Err((
                    "paper.setting",
                    format!("{} takes no setting", self.metric.describe()),
                )),
                None => Ok(()),
            };
        }
        let Some(setting) = self.setting else {
            return Err((
                "paper.setting",
                format!(
                    "{} needs its setting (eps or fraction)",
                    self.metric.describe()
                ),
            ));
        };
        if self.statistic != PaperStatistic::MeanFinal {
            return Err((
                "paper.statistic",
                format!(
                    "{} is measured on the final checkpoint: use \"mean-final\"",
                    self.metric.describe()
                ),
            ));
        }
        let listed = eval.is_some_and(|e| {
            let settings = match self.metric {
                PaperMetric::FgsmTop1Accuracy => &e.fgsm_eps,
                _ => &e.occlusion,
            };
            settings.iter().any(|s| (s - setting).abs() < 1e-9)
        });
        if !listed {
            let key = match self.metric {
                PaperMetric::FgsmTop1Accuracy => "eval.fgsm_eps",
                _ => "eval.occlusion",
            };
            return Err((
                key,
                format!(
                    "must list {setting}, the setting of [paper] metric {}",
                    self.metric.describe()
                ),
            ));
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::EvalConfig;

    fn row(metric: PaperMetric, setting: Option<f64>, statistic: PaperStatistic) -> PaperRow {
        PaperRow {
            table: "T".into(),
            row: "r".into(),
            metric,
            setting,
            value: Some(30.0),
            std: None,
            top5: None,
            top5_std: None,
            statistic,
            runs: None,
            note: String::new(),
            requires: Vec::new(),
        }
    }

    #[test]
    fn evaluation_metrics_need_their_setting_in_the_eval_table_and_the_final_checkpoint() {
        use PaperMetric::*;
        use PaperStatistic::*;
        let eval = EvalConfig::default();
        let eps = 8.0 / 255.0;
        assert_eq!(row(Top1Error, None, MeanBest).check(None), Ok(()));
        assert_eq!(
            row(FgsmTop1Accuracy, Some(eps), MeanFinal).check(Some(&eval)),
            Ok(())
        );
        assert_eq!(
            row(OcclusionTop1Error, Some(0.25), MeanFinal).check(Some(&eval)),
            Ok(())
        );
        let key = |r: PaperRow, eval: Option<&EvalConfig>| r.check(eval).unwrap_err().0;
        assert_eq!(
            key(row(Top1Error, Some(0.1), MeanBest), None),
            "paper.setting"
        );
        assert_eq!(
            key(row(FgsmTop1Accuracy, None, MeanFinal), Some(&eval)),
            "paper.setting"
        );
        assert_eq!(
            key(row(FgsmTop1Accuracy, Some(eps), MeanBest), Some(&eval)),
            "paper.statistic"
        );
        assert_eq!(
            key(row(FgsmTop1Accuracy, Some(eps), MeanFinal), None),
            "eval.fgsm_eps"
        );
        assert_eq!(
            key(row(FgsmTop1Accuracy, Some(0.1), MeanFinal), Some(&eval)),
            "eval.fgsm_eps"
        );
        assert_eq!(
            key(row(OcclusionTop1Error, Some(0.5), MeanFinal), Some(&eval)),
            "eval.occlusion"
        );
        assert_eq!(
            row(FgsmTop1Accuracy, Some(eps), MeanFinal).metric_label(),
            "FGSM top-1 accuracy (%) at eps 8.0/255"
        );
    }

    #[test]
    fn a_top5_number_goes_beside_a_top1_row_only() {
        use PaperMetric::*;
        use PaperStatistic::*;
        let mut r = row(Top1Error, None, MeanBest);
        (r.top5, r.top5_std) = (Some(6.2), Some(0.1));
        assert_eq!(r.check(None), Ok(()));
        r.top5 = None;
        assert_eq!(r.check(None).unwrap_err().0, "paper.top5_std");
        r.top5 = Some(f64::NAN);
        assert_eq!(r.check(None).unwrap_err().0, "paper.top5");
        let mut r = row(Top5Error, None, MeanBest);
        r.top5 = Some(6.2);
        assert_eq!(r.check(None).unwrap_err().0, "paper.top5");
    }

    #[test]
    fn a_row_without_the_papers_number_says_why_and_has_no_spread() {
        use PaperMetric::*;
        use PaperStatistic::*;
        let mut r = row(Top1Error, None, MeanBest);
        assert_eq!(r.value_label(), "30.00");
        r.std = Some(0.1);
        assert_eq!(r.value_label(), "30.00 ± 0.10");
        r.value = None;
        assert_eq!(r.check(None).unwrap_err().0, "paper.std");
        r.std = None;
        assert_eq!(r.check(None).unwrap_err().0, "paper.note");
        r.note = "the paper gives this number only as a bar in Figure 3".into();
        assert_eq!(r.check(None), Ok(()));
        assert_eq!(r.value_label(), "— (figure only)");
        r.value = Some(f64::NAN);
        assert_eq!(r.check(None).unwrap_err().0, "paper.value");
        (r.value, r.std) = (Some(30.0), Some(f64::INFINITY));
        assert_eq!(r.check(None).unwrap_err().0, "paper.std");
        // A config may leave the value out; one that gives it reads as before.
        let text = "table = \"T\"\nrow = \"r\"\nmetric = \"top1-error\"\n\
                    statistic = \"mean-best\"\nnote = \"figure only\"\n";
        let parsed: PaperRow = toml::from_str(text).unwrap();
        assert_eq!((parsed.value, parsed.check(None)), (None, Ok(())));
        let parsed: PaperRow = toml::from_str(&format!("{text}value = 3.65\n")).unwrap();
        assert_eq!(parsed.value, Some(3.65));
    }

    #[test]
    fn training_hours_are_a_whole_run_and_take_no_setting() {
        use PaperMetric::*;
        use PaperStatistic::*;
        let hours = row(TrainingHours, None, MeanFinal);
        assert_eq!(hours.check(None), Ok(()));
        assert!(!TrainingHours.from_eval());
        assert_eq!(hours.metric_label(), "training time (hours)");
        assert_eq!(
            hours.statistic_label(),
            "mean of each run's total training time"
        );
        let key = |r: PaperRow| r.check(None).unwrap_err().0;
        assert_eq!(key(row(TrainingHours, None, MeanBest)), "paper.statistic");
        assert_eq!(key(row(TrainingHours, None, MeanLast10)), "paper.statistic");
        assert_eq!(
            key(row(TrainingHours, Some(0.5), MeanFinal)),
            "paper.setting"
        );
        let parsed: PaperMetric = toml::Value::String("training-hours".into())
            .try_into()
            .unwrap();
        assert_eq!(parsed, TrainingHours);
    }
}
