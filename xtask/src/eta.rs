//! How long the rest of a `reproduce` or `study` will take, from the runs this invocation has
//! trained so far: a study of many runs takes hours, and its user wants to know how many.
//!
//! Each trained run adds its wall-clock seconds per epoch (its test passes, checkpoints and
//! evaluation suite included) to its config's record; a run still to train is estimated from its
//! config's own record (the methods' costs differ by 2x and more), else from every run's.

use std::collections::HashMap;
use std::time::Duration;

/// Seconds per epoch measured so far, per config and over all.
#[derive(Debug, Default)]
pub struct Eta {
    per_config: HashMap<String, (f64, usize)>,
    all: (f64, usize),
}

impl Eta {
    /// A run of config `name` trained `epochs` epochs in `seconds` (none: nothing recorded).
    pub fn record(&mut self, name: &str, seconds: f64, epochs: usize) {
        if epochs == 0 || !seconds.is_finite() {
            return;
        }
        let entry = self.per_config.entry(name.to_string()).or_default();
        entry.0 += seconds;
        entry.1 += epochs;
        self.all.0 += seconds;
        self.all.1 += epochs;
    }

    /// What `runs` (config name, epochs left to train) will take; `None` before any run has
    /// trained an epoch.
    pub fn remaining<'a>(
        &self,
        runs: impl IntoIterator<Item = (&'a str, usize)>,
    ) -> Option<Duration> {
        let mean = |(seconds, epochs): (f64, usize)| seconds / epochs as f64;
        let overall = (self.all.1 > 0).then(|| mean(self.all))?;
        let seconds: f64 = runs
            .into_iter()
            .map(|(name, epochs)| {
                let per_epoch = self.per_config.get(name).map_or(overall, |&r| mean(r));
                per_epoch * epochs as f64
            })
            .sum();
        Some(Duration::from_secs_f64(seconds))
    }
}

/// `1 run`, `3 runs`.
pub fn runs(n: usize) -> String {
    match n {
        1 => "1 run".to_string(),
        n => format!("{n} runs"),
    }
}

/// `2 h 05 min`, `12 min`, `under a minute`.
pub fn human(duration: Duration) -> String {
    let minutes = (duration.as_secs_f64() / 60.0).round() as u64;
    match (minutes / 60, minutes % 60) {
        (0, 0) => "under a minute".to_string(),
        (0, m) => format!("{m} min"),
        (h, m) => format!("{h} h {m:02} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_left_take_their_configs_own_pace_else_the_mean() {
        let mut eta = Eta::default();
        assert_eq!(eta.remaining([("a", 10)]), None, "nothing measured yet");
        eta.record("a", 100.0, 10); // 10 s per epoch
        eta.record("b", 300.0, 10); // 30 s per epoch
        eta.record("c", 5.0, 0); // a finished run that trained nothing
        let left = eta.remaining([("a", 4), ("b", 2), ("d", 5)]).unwrap();
        // a: 4 x 10, b: 2 x 30, d (unmeasured): 5 x the mean of all, 400 s / 20 epochs.
        assert_eq!(left.as_secs_f64(), 40.0 + 60.0 + 100.0);
        assert_eq!(eta.remaining([]), Some(Duration::ZERO));
    }

    #[test]
    fn durations_read_as_hours_and_minutes() {
        assert_eq!(human(Duration::from_secs(20)), "under a minute");
        assert_eq!(human(Duration::from_secs(12 * 60 + 10)), "12 min");
        assert_eq!(human(Duration::from_secs(2 * 3600 + 5 * 60)), "2 h 05 min");
        assert_eq!(
            (runs(1), runs(2)),
            ("1 run".to_string(), "2 runs".to_string())
        );
    }
}
