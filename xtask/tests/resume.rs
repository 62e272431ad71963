//! `cargo xtask train --resume` after a real kill (SIGKILL in the middle of an epoch) gives the
//! run an uninterrupted twin gives: the same metrics.csv (every column but the timings, to the
//! digits it prints) and the same final weights and BatchNorm statistics, bit for bit. Checked
//! with CutMix (the mixing streams) and with a Wide ResNet's dropout (its masks' stream). Also:
//! resuming a finished run leaves its results and config alone, and results.json covers every
//! epoch of the run and names the commit the binary was built from (not the checkout at the
//! run's end).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const EPOCHS: usize = 3;

fn fashion_mnist() -> PathBuf {
    sal_train::data::FashionMnist::locate(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/fashion-mnist"),
    )
    .expect("Fashion-MNIST: install the Debian package dataset-fashion-mnist")
}

/// A config training `model` with `augmentation` into `<dir>/<run>`.
fn write_config(dir: &Path, run: &str, model: &str, augmentation: &str) -> PathBuf {
    let path = dir.join(format!("{run}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
name = "resume-test"
epochs = {EPOCHS}
batch_size = 64
output_dir = "{out}"

[dataset]
name = "fashion-mnist"
path = "{data}"
train_limit = 2048
test_limit = 128

[model]
{model}

[optimizer]
lr = 0.05

[augmentation]
{augmentation}
"#,
            out = dir.join(run).display(),
            data = fashion_mnist().display()
        ),
    )
    .unwrap();
    path
}

fn xtask() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    // No git repository where the binary runs: the commit in results.json must come from its
    // build, not from reading the checkout when the run ends.
    command.env("GIT_DIR", "/nonexistent");
    command
}

fn train(config: &Path, resume: bool) -> std::process::Output {
    let mut command = xtask();
    command.arg("train");
    if resume {
        command.arg("--resume");
    }
    command.arg("--config").arg(config).output().unwrap()
}

fn checkpoint_complete(run: &Path, epoch: usize) -> bool {
    ["model", "optim", "scheduler"]
        .iter()
        .all(|r| run.join(format!("checkpoint/{r}-{epoch}.bpk")).exists())
}

/// Starts a run, waits for its first complete checkpoint, lets the second epoch get under way
/// and kills the process with SIGKILL.
fn kill_mid_epoch(config: &Path, run: &Path) {
    let started = Instant::now();
    let mut child: Child = xtask()
        .args(["train", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !checkpoint_complete(run, 1) {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no checkpoint after 10 minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Epoch 2 starts once epoch 1's checkpoint is written: a third of epoch 1's training time
    // later it is under way.
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let row = csv
        .lines()
        .nth(1)
        .expect("epoch 1's row is written before its checkpoint");
    let train_seconds: f64 = row.split(',').nth(7).unwrap().parse().unwrap();
    std::thread::sleep(Duration::from_secs_f64(train_seconds / 3.0));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !checkpoint_complete(run, 2),
        "the kill came after epoch 2 ended; the test wants it mid-epoch"
    );
}

/// metrics.csv without the timing columns (train_seconds, test_seconds, images per second).
fn metrics_without_timings(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
        .collect()
}

/// Every float tensor (weights and BatchNorm statistics) of a run's last checkpoint, exactly.
fn final_weights(config: &Path) -> Vec<Vec<f32>> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::{Device, Tensor};
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .push(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let config = sal_train::ExperimentConfig::load(config, &[]).unwrap();
    let path = config
        .output_dir()
        .join(format!("checkpoint/model-{EPOCHS}.bpk"));
    let record = burn::store::ModuleRecord::load(&path).unwrap();
    let model = config.model_config(10).init(&Device::flex());
    let classifier = sal_train::step::Classifier::new(model, None).load_record(record);
    let mut collect = Collect(Vec::new());
    classifier.visit(&mut collect);
    collect.0
}

/// The commit `build.rs` stamped this build with (the test is built with the binary): inside a
/// git checkout, HEAD, `-dirty` when the code's files differ from it.
fn built_from() -> Option<&'static str> {
    let stamp = option_env!("SAL_BUILD_COMMIT");
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    if let Some(head) = head {
        let stamp = stamp.expect("a build inside a git checkout is stamped");
        assert!(
            stamp == head || stamp == format!("{head}-dirty"),
            "stamp {stamp}, HEAD {head}"
        );
    }
    stamp
}

fn results(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap()
}

/// Kills and resumes one config, trains its twin without a break, compares.
fn resumed_equals_uninterrupted(model: &str, augmentation: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (killed, twin) = (dir.path().join("killed"), dir.path().join("twin"));
    let killed_config = write_config(dir.path(), "killed", model, augmentation);
    let twin_config = write_config(dir.path(), "twin", model, augmentation);

    kill_mid_epoch(&killed_config, &killed);
    // Without --resume the run directory is protected.
    let refused = train(&killed_config, false);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    let resumed = train(&killed_config, true);
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        resumed.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(stdout.contains("resuming after epoch 1"), "{stdout}");
    let uninterrupted = train(&twin_config, false);
    assert!(uninterrupted.status.success());

    let (a, b) = (
        metrics_without_timings(&killed),
        metrics_without_timings(&twin),
    );
    assert_eq!(a.len(), EPOCHS + 1, "{a:?}");
    assert_eq!(
        a, b,
        "{model} / {augmentation}: the resumed run differs from its twin"
    );
    assert!(
        final_weights(&killed_config) == final_weights(&twin_config),
        "{model} / {augmentation}: the final weights differ"
    );

    // results.json of the resumed run covers all its epochs and says what ran.
    let (r, t) = (results(&killed), results(&twin));
    assert_eq!(r["resumed_from_epoch"], 1);
    assert_eq!(r["epochs_trained_now"], EPOCHS - 1);
    for key in ["best_test_top1", "best_epoch", "seed", "method", "model"] {
        assert_eq!(r[key], t[key], "{key}");
    }
    assert_eq!(
        r["git_commit"].as_str(),
        built_from(),
        "results.json names the commit the binary was built from, not the checkout at the end"
    );
    for key in [
        "epoch",
        "train_loss",
        "train_top1",
        "test_loss",
        "test_top1",
        "test_top5",
    ] {
        assert_eq!(
            r["final_epoch"][key], t["final_epoch"][key],
            "final_epoch.{key}"
        );
    }
    let best = b[1..]
        .iter()
        .map(|row| row.split(',').nth(5).unwrap().parse::<f64>().unwrap())
        .fold(f64::MIN, f64::max);
    assert!((r["best_test_top1"].as_f64().unwrap() - best).abs() < 1e-3);

    // Resuming the finished run trains nothing and leaves its results and its config as they
    // were (the comment stands for what an older build wrote: a rewrite would drop it).
    let before = std::fs::read_to_string(killed.join("results.json")).unwrap();
    let saved_config = killed.join("config.toml");
    let config_before = std::fs::read_to_string(&saved_config).unwrap() + "# as trained\n";
    std::fs::write(&saved_config, &config_before).unwrap();
    let again = train(&killed_config, true);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to train"));
    assert_eq!(
        std::fs::read_to_string(killed.join("results.json")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read_to_string(&saved_config).unwrap(),
        config_before
    );
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_its_uninterrupted_twin_with_cutmix() {
    resumed_equals_uninterrupted(
        "architecture = \"cifar-resnet18\"\nbase_width = 4",
        "method = \"cutmix\"\nprob = 1.0",
    );
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_its_uninterrupted_twin_with_dropout() {
    resumed_equals_uninterrupted(
        "architecture = \"wrn-10-1\"\nbase_width = 4\ndropout = 0.3",
        "method = \"none\"",
    );
}
