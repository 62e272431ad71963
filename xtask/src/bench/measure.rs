//! What every bench measures the same way: the summary of a series of timings, the thread and
//! core counts, the machine's load, the process's CPU time, and re-running the bench in a child
//! process whose environment is fixed before it starts (rayon's thread count, glibc's allocator).

use anyhow::{Context, Result, ensure};

/// The variable rayon (and so burn's flex backend) sizes its global pool from.
pub const THREADS_ENV: &str = "RAYON_NUM_THREADS";

/// glibc's allocator in its steady state (see [`crate::allocator`]). glibc reads these when a
/// process starts: a bench applies them by re-running itself (and so the Python peer it spawns)
/// with [`rerun_with_env`].
pub use crate::allocator::STEADY_ENV as STEADY_MALLOC;

/// The median of `values`: the middle one, or the mean of the two middle ones for an even
/// count; NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let sorted = sorted(values);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Median, 10th and 90th percentiles (nearest rank) and extremes of a series; NaN for none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Self {
        let sorted = sorted(values);
        let at = |q: f64| match sorted.len() {
            0 => f64::NAN,
            n => sorted[((n - 1) as f64 * q).round() as usize],
        };
        Self {
            median: median(values),
            p10: at(0.1),
            p90: at(0.9),
            min: at(0.0),
            max: at(1.0),
        }
    }
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// Logical cores of the machine (at least 1).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The size of rayon's global pool: `RAYON_NUM_THREADS` if set to a positive number (rayon
/// ignores 0 and garbage), else one thread per logical core.
pub fn threads() -> usize {
    threads_from(std::env::var(THREADS_ENV).ok().as_deref())
}

fn threads_from(var: Option<&str>) -> usize {
    var.and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(cores)
}

/// The 1, 5 and 15 minute load averages of `/proc/loadavg`, or "unknown": how busy the machine
/// was, printed beside timings taken on a machine that may be shared.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(|_| "unknown".into(), |s| first_three(&s))
}

fn first_three(loadavg: &str) -> String {
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// How many cores other processes keep busy, measured over `window` while this process waits:
/// the busy share of `/proc/stat`'s `cpu` line (everything but idle and iowait) times the
/// cores. `None` where `/proc/stat` is missing or unreadable.
pub fn busy_cores(window: std::time::Duration) -> Option<f64> {
    let sample = || cpu_times(&std::fs::read_to_string("/proc/stat").ok()?);
    let (busy0, total0) = sample()?;
    std::thread::sleep(window);
    let (busy1, total1) = sample()?;
    let total = total1.checked_sub(total0).filter(|&t| t > 0)?;
    Some(busy1.saturating_sub(busy0) as f64 / total as f64 * cores() as f64)
}

/// `(busy, total)` jiffies of the aggregate `cpu` line of `/proc/stat`: user, nice, system,
/// idle, iowait, irq, softirq, steal (guest time is already inside user and nice).
fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if fields.len() < 5 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    let idle = fields[3] + fields[4];
    Some((total - idle, total))
}

/// A warning when other processes keep more than half a core busy before a bench that runs a
/// PyTorch peer: its OpenMP threads spin at their barriers, and on shared cores its steps slow
/// down far more than burn's (about 50x against burn's 2x, docs/benchmarks.md), so the ratios
/// would be wrong. Prints nothing on a quiet machine.
pub fn warn_if_busy() {
    if let Some(busy) = busy_cores(std::time::Duration::from_millis(500))
        && busy > 0.5
    {
        eprintln!(
            "warning: other processes keep {busy:.1} of the {} cores busy: PyTorch's OpenMP \
             threads slow down far more than burn's on shared cores, so the ratios below are \
             not a fair comparison; rerun on a quiet machine",
            cores()
        );
    }
}

/// The machine's CPU as `/proc/cpuinfo` names it (its first `model name`), with "AVX-512" when
/// the CPU has it (gemm picks its AVX-512 kernels at run time), or "unknown".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo").map_or_else(|_| "unknown".into(), |s| cpu_of(&s))
}

fn cpu_of(cpuinfo: &str) -> String {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let model = field("model name").unwrap_or_else(|| "unknown".into());
    let avx512 = field("flags").is_some_and(|f| f.split_whitespace().any(|x| x == "avx512f"));
    if avx512 {
        format!("{model}, AVX-512")
    } else {
        model
    }
}

/// Now, in UTC, to the minute (`2026-12-06 07:50 UTC`): when a bench ran, for its report.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_of(secs)
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (the proleptic Gregorian calendar; H. Hinnant's
/// days-to-civil algorithm).
fn utc_of(unix_seconds: u64) -> String {
    let (days, rem) = (unix_seconds / 86_400, unix_seconds % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// A target's verdict in a report: "met" or "MISSED".
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// CPU time this process's threads have run, in seconds: the sum of the first field of
/// `/proc/self/task/*/schedstat` (nanoseconds on the CPU). Threads that already exited are not
/// counted, which suits the benches: rayon's pool threads live as long as the process. 0 where
/// `/proc` is missing.
pub fn process_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e9
}

/// The environment variables of [`STEADY_MALLOC`] if `steady`, else none.
pub fn malloc_env(steady: bool) -> Vec<(&'static str, String)> {
    if steady {
        STEADY_MALLOC.map(|(k, v)| (k, v.to_string())).to_vec()
    } else {
        Vec::new()
    }
}

/// The allocator settings this process started with, for the report: the [`STEADY_MALLOC`]
/// variables that are set, or "glibc defaults".
pub fn malloc_settings() -> String {
    let set: Vec<String> = STEADY_MALLOC
        .iter()
        .filter_map(|(k, _)| Some(format!("{k}={}", std::env::var(k).ok()?)))
        .collect();
    if set.is_empty() {
        "glibc defaults".into()
    } else {
        set.join(" ")
    }
}

/// Makes sure the bench runs with `vars` in its environment from the start: rayon reads its
/// thread count when its pool first starts and glibc its allocator settings when the process
/// starts, so setting them later has no effect. If any is missing or different, runs this
/// command line again as a child process with them set, waits for it and returns `true` (the
/// bench has run; the caller returns). Returns `false` when this process already has them.
pub fn rerun_with_env(vars: &[(&str, String)]) -> Result<bool> {
    if vars
        .iter()
        .all(|(k, v)| std::env::var(k).ok().as_deref() == Some(v.as_str()))
    {
        return Ok(false);
    }
    let shown: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .status()
        .with_context(|| format!("re-running the bench with {}", shown.join(" ")))?;
    ensure!(status.success(), "the bench failed ({status})");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_jiffies_are_all_but_idle_and_iowait() {
        let stat = "cpu  100 10 30 500 20 5 5 7 0 0\ncpu0 50 5 15 250 10 2 3 3 0 0\n";
        assert_eq!(cpu_times(stat), Some((157, 677)));
        assert_eq!(cpu_times("cpu0 1 2 3 4 5\n"), None, "no aggregate line");
        assert_eq!(cpu_times("cpu  1 2 x 4 5\n"), None, "garbage");
        // A kernel older than the steal column still parses.
        assert_eq!(cpu_times("cpu  1 2 3 4 5\n"), Some((6, 15)));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn summary_of_a_series() {
        let values: Vec<f64> = (0..=10).rev().map(f64::from).collect();
        let s = Summary::of(&values);
        assert_eq!(
            s,
            Summary {
                median: 5.0,
                p10: 1.0,
                p90: 9.0,
                min: 0.0,
                max: 10.0
            }
        );
        let s = Summary::of(&[2.0, 1.0]);
        assert_eq!((s.median, s.min, s.max), (1.5, 1.0, 2.0));
        assert!(Summary::of(&[]).p90.is_nan());
    }

    #[test]
    fn threads_from_the_variable_or_the_cores() {
        assert_eq!(threads_from(Some("3")), 3);
        assert_eq!(threads_from(Some("0")), cores());
        assert_eq!(threads_from(Some("x")), cores());
        assert_eq!(threads_from(None), cores());
    }

    #[test]
    fn load_average_keeps_three_fields() {
        assert_eq!(
            first_three("0.52 0.58 0.59 1/467 12345\n"),
            "0.52 0.58 0.59"
        );
    }

    #[test]
    fn cpu_model_and_avx512_from_cpuinfo() {
        let info = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx2 avx512f avx512bw\n\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_of(info), "Intel(R) Xeon(R) Processor, AVX-512");
        assert_eq!(cpu_of("model name: X\nflags: avx2 avx512vl\n"), "X");
        assert_eq!(cpu_of(""), "unknown");
    }

    #[test]
    fn utc_dates_from_unix_seconds() {
        assert_eq!(utc_of(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 12:34:56 (a leap day of a century leap year).
        assert_eq!(utc_of(951_827_696), "2000-02-29 12:34 UTC");
        assert_eq!(utc_of(1_798_761_599), "2026-12-31 23:59 UTC");
    }

    #[test]
    fn malloc_env_lists_the_steady_settings() {
        assert!(malloc_env(false).is_empty());
        let env = malloc_env(true);
        assert_eq!(env.len(), STEADY_MALLOC.len());
        assert_eq!(env[0], ("MALLOC_TRIM_THRESHOLD_", "4294967296".to_string()));
    }
}
