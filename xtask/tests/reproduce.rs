//! `cargo xtask reproduce` end to end on a CIFAR-10 folder built from the repository's test
//! fixture: a real row of SaliencyMix's Table 1 (its config unchanged) runs over two seeds at a
//! scaled-down epoch count, `results.md` and `results.png` appear with our number beside the
//! paper's and the scaling said plainly; the dry run lists the row as runnable, and a row
//! without its data as not. `cargo xtask study` runs a two-config study on the same data and
//! writes its table and Welch's test.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A CIFAR-10 binary folder under `root`: the fixture's test batch (a few images) as the test
/// split and, copied five times, as the training split.
fn cifar10_root(root: &Path) -> PathBuf {
    let fixture = repo().join("tests/fixtures/cifar/cifar-10-batches-bin");
    let dir = root.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let test = fixture.join("test_batch.bin");
    for i in 1..=5 {
        std::fs::copy(&test, dir.join(format!("data_batch_{i}.bin"))).unwrap();
    }
    for name in ["test_batch.bin", "batches.meta.txt"] {
        std::fs::copy(fixture.join(name), dir.join(name)).unwrap();
    }
    root.to_path_buf()
}

fn xtask(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(cwd)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_table_row_runs_end_to_end_and_results_md_appears() {
    let work = tempfile::tempdir().unwrap();
    let data = cifar10_root(&work.path().join("data"));
    // A table folder of one real row, and one row whose data is not here.
    let table = work
        .path()
        .join("experiments/paper/saliencymix/table1-test");
    std::fs::create_dir_all(&table).unwrap();
    let source = repo().join("experiments/paper/saliencymix/table1");
    for row in [
        "resnet18-saliencymix-cifar10-aug",
        "resnet18-cutmix-cifar100",
    ] {
        let file = format!("{row}.toml");
        std::fs::copy(source.join(&file), table.join(&file)).unwrap();
    }
    let table_arg = table.to_str().unwrap();
    let runs = work.path().join("runs");
    let common = [
        "reproduce",
        table_arg,
        "--seeds",
        "0,1",
        "--epochs-scale",
        "0.005",
        "--data-root",
        data.to_str().unwrap(),
        "--runs",
        runs.to_str().unwrap(),
    ];

    let (ok, text) = xtask(&[&common[..], &["--dry-run"]].concat(), work.path());
    assert!(ok, "{text}");
    assert!(text.contains("2 rows, 1 runnable here"), "{text}");
    assert!(
        text.contains("resnet18-saliencymix-cifar10-aug") && text.contains("runnable"),
        "{text}"
    );
    assert!(text.contains("NO DATA: cifar100"), "{text}");
    assert!(
        text.contains("missing data:") && text.contains("cifar-100-binary"),
        "{text}"
    );
    let table_runs = runs.join("paper/saliencymix/table1-test");
    assert!(!table_runs.exists(), "a dry run ran something");

    let (ok, text) = xtask(&common, work.path());
    assert!(ok, "{text}");
    // The first run announces itself plainly; the second with what is left at the first's pace.
    assert!(
        text.contains("[1/2] resnet18-saliencymix-cifar10-aug seed 0 -> "),
        "{text}"
    );
    let second = text.lines().find(|l| l.starts_with("[2/2]")).unwrap();
    assert!(second.contains("(1 run to go, about "), "{second}");
    let row = table_runs.join("resnet18-saliencymix-cifar10-aug");
    for seed in [0, 1] {
        let results = row.join(format!("seed-{seed}/results.json"));
        assert!(results.is_file(), "{}: {text}", results.display());
    }
    let md = std::fs::read_to_string(table_runs.join("results.md")).unwrap();
    assert!(md.contains("SaliencyMix Table 1"), "{md}");
    assert!(md.contains("SCALED by 0.005"), "{md}");
    // Our mean ± std over the two seeds beside the paper's 3.65 ± 0.10, 1 epoch of 200.
    let line = md
        .lines()
        .find(|l| l.contains("resnet18-saliencymix-cifar10-aug"))
        .unwrap();
    assert!(
        line.contains("3.65 ± 0.10") && line.contains("2/2"),
        "{line}"
    );
    assert!(
        line.contains(" ± ") && line.contains("| 1 (200) |"),
        "{line}"
    );
    let other = md
        .lines()
        .find(|l| l.contains("resnet18-cutmix-cifar100"))
        .unwrap();
    assert!(other.contains("0/2"), "{other}");
    let png = image::open(table_runs.join("results.png")).unwrap();
    assert!(png.width() > 200, "{}", png.width());

    // Finished runs are skipped on a second call: their results stay as they were.
    let before = std::fs::read(row.join("seed-0/results.json")).unwrap();
    let (ok, text) = xtask(&common, work.path());
    assert!(ok, "{text}");
    assert!(text.contains("already finished"), "{text}");
    assert_eq!(
        std::fs::read(row.join("seed-0/results.json")).unwrap(),
        before
    );
}

#[test]
fn a_study_runs_its_configs_over_seeds_and_compares_them() {
    let work = tempfile::tempdir().unwrap();
    let data = cifar10_root(&work.path().join("data"));
    let folder = work.path().join("experiments/study/test");
    std::fs::create_dir_all(&folder).unwrap();
    for method in ["none", "cutmix"] {
        let text = format!(
            "name = \"{method}\"\nepochs = 1\nbatch_size = 8\n\n[dataset]\nname = \"cifar10\"\n\
             path = {:?}\n\n[model]\narchitecture = \"cifar-resnet18\"\nbase_width = 2\n\n\
             [augmentation]\nmethod = \"{method}\"\n\n[optimizer]\nlr = 0.05\n\n\
             [eval]\nfgsm_eps = [0.03137254901960784]\nocclusion = [0.25]\ncam_images = 0\n",
            data.join("cifar-10-batches-bin").to_str().unwrap()
        );
        std::fs::write(folder.join(format!("{method}.toml")), text).unwrap();
    }
    let runs = work.path().join("runs");
    let export = work.path().join("docs/results/test");
    let common = [
        "study",
        folder.to_str().unwrap(),
        "--seeds",
        "0,1",
        "--compare",
        "none:cutmix",
        "--runs",
        runs.to_str().unwrap(),
    ];
    let (ok, text) = xtask(&common, work.path());
    assert!(ok, "{text}");
    let (ok, text) = xtask(
        &[
            &common[..],
            &["--report-only", "--export", export.to_str().unwrap()],
        ]
        .concat(),
        work.path(),
    );
    assert!(ok && text.contains("exported"), "{text}");
    let md = std::fs::read_to_string(runs.join("study/test/results.md")).unwrap();
    let line = |start: &str| {
        md.lines()
            .find(|l| l.starts_with(start))
            .expect(&md)
            .to_string()
    };
    assert!(line("| none |").contains("| 2/2 |"), "{md}");
    assert!(
        line("| cutmix |").contains("| 2/2 |") && line("| cutmix |").ends_with("x |"),
        "{md}"
    );
    let test = line("| none | cutmix |");
    assert!(
        test.ends_with("| yes |") || test.ends_with("| no |"),
        "{md}"
    );
    // The [eval] suite of every run, as errors over both seeds.
    assert!(
        md.contains("| config | seeds evaluated | FGSM 8/255 | 25.0 % occluded |"),
        "{md}"
    );
    let evaluated = md
        .lines()
        .filter(|l| l.starts_with("| none | 2/2 | "))
        .count();
    assert_eq!(evaluated, 2, "the error and the eval lines: {md}");
    for seed in [0, 1] {
        let results = runs.join(format!("study/test/cutmix/seed-{seed}/results.json"));
        assert!(results.is_file(), "{}", results.display());
    }
    // The pictures, and the export: results.md, its pictures, each run's small logs (no
    // checkpoints) and CutMix's last mixed batch.
    for png in ["errors.png", "curves.png"] {
        let img = image::open(runs.join("study/test").join(png)).unwrap();
        assert!(img.width() > 500, "{png}");
        assert!(md.contains(&format!("]({png})")), "{md}");
        assert!(export.join(png).is_file(), "{png}");
    }
    assert_eq!(
        std::fs::read_to_string(export.join("results.md")).unwrap(),
        md
    );
    for method in ["none", "cutmix"] {
        for seed in [0, 1] {
            let dir = export.join(format!("{method}/seed-{seed}"));
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(
                files,
                ["config.toml", "eval.json", "metrics.csv", "results.json"],
                "{}",
                dir.display()
            );
        }
    }
    assert!(export.join("cutmix/mixed.png").is_file());
    let (ok, text) = xtask(&[&common[..], &["--dry-run"]].concat(), work.path());
    assert!(ok && text.contains("2/2 seeds finished"), "{text}");
    let (ok, text) = xtask(
        &["study", folder.to_str().unwrap(), "--compare", "none:mixup"],
        work.path(),
    );
    assert!(!ok && text.contains("no config `mixup`"), "{text}");
    // A third seed for one config only: the report covers both, each over its finished seeds.
    let runs_arg = ["--runs", runs.to_str().unwrap()];
    let third = [
        "study",
        folder.to_str().unwrap(),
        "--seeds",
        "0,1,2",
        "--only",
        "cutmix",
    ];
    // The dry run counts only the run `--only` would train, at the finished runs' pace.
    let (ok, text) = xtask(
        &[&third[..], &runs_arg[..], &["--dry-run"]].concat(),
        work.path(),
    );
    assert!(ok && text.contains("  1 run left: about "), "{text}");
    let (ok, text) = xtask(&[&third[..], &runs_arg[..]].concat(), work.path());
    assert!(ok, "{text}");
    assert!(runs.join("study/test/cutmix/seed-2/results.json").is_file());
    assert!(!runs.join("study/test/none/seed-2").exists());
    let md = std::fs::read_to_string(runs.join("study/test/results.md")).unwrap();
    assert!(
        md.contains("| cutmix | 3/3 |") && md.contains("| none | 2/3 |"),
        "{md}"
    );
    let (ok, text) = xtask(
        &["study", folder.to_str().unwrap(), "--only", "mixup"],
        work.path(),
    );
    assert!(
        !ok && text.contains("--only: ") && text.contains("no config `mixup`"),
        "{text}"
    );
}

#[test]
fn bad_arguments_are_errors() {
    let work = tempfile::tempdir().unwrap();
    let (ok, text) = xtask(&["reproduce", "nowhere", "--dry-run"], work.path());
    assert!(!ok && text.contains("nowhere"), "{text}");
    let folder = repo().join("experiments/paper/saliencymix/table1");
    let (ok, text) = xtask(
        &[
            "reproduce",
            folder.to_str().unwrap(),
            "--epochs-scale",
            "2",
            "--dry-run",
        ],
        work.path(),
    );
    assert!(!ok && text.contains("--epochs-scale"), "{text}");
    // A config without a [paper] table is not a table row.
    let plain = work.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::copy(
        repo().join("experiments/quickstart.toml"),
        plain.join("quickstart.toml"),
    )
    .unwrap();
    let (ok, text) = xtask(
        &["reproduce", plain.to_str().unwrap(), "--dry-run"],
        work.path(),
    );
    assert!(!ok && text.contains("[paper]"), "{text}");
}
