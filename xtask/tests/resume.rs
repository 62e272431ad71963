//! `cargo xtask train --resume` after a real kill: the run continues from its newest complete
//! checkpoint and ends with every epoch's row in metrics.csv.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn write_config(dir: &Path, data: &Path) -> std::path::PathBuf {
    let path = dir.join("resume.toml");
    std::fs::write(
        &path,
        format!(
            r#"
name = "resume-test"
epochs = 4
batch_size = 64
output_dir = "{out}"

[dataset]
name = "fashion-mnist"
path = "{data}"
train_limit = 1024
test_limit = 256

[model]
architecture = "cifar-resnet18"
base_width = 4

[optimizer]
lr = 0.05
"#,
            out = dir.join("run").display(),
            data = data.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_killed_run_resumes_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = sal_train::data::FashionMnist::locate(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/fashion-mnist"),
    )
    .expect("Fashion-MNIST: install the Debian package dataset-fashion-mnist");
    let config = write_config(dir.path(), &data);
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let checkpoint = dir.path().join("run/checkpoint");

    // Start, wait for the first complete checkpoint, kill hard.
    let mut child = Command::new(xtask)
        .args(["train", "--config"])
        .arg(&config)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !["model", "optim", "scheduler"]
        .iter()
        .all(|r| checkpoint.join(format!("{r}-1.bpk")).exists())
    {
        assert!(Instant::now() < deadline, "no checkpoint after 10 minutes");
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Without --resume the run directory is protected.
    let refused = Command::new(xtask)
        .args(["train", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    let resumed = Command::new(xtask)
        .args(["train", "--resume", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        resumed.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(stdout.contains("resuming after epoch"), "{stdout}");
    assert!(
        !stdout.contains("epoch 1/4"),
        "epoch 1 ran again:\n{stdout}"
    );

    let csv = std::fs::read_to_string(dir.path().join("run/metrics.csv")).unwrap();
    let epochs: Vec<usize> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3, 4], "{csv}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run/results.json")).unwrap(),
    )
    .unwrap();
    assert!(results["resumed_from_epoch"].as_u64().unwrap() >= 1);
    assert!(checkpoint.join("model-4.bpk").exists());
}
