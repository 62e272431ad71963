//! The detectors against OpenCV 4.10's own outputs on real photos and CIFAR images
//! (`tests/fixtures/saliency` and `tests/fixtures/wang_dudek`; tolerances from its README).

use std::path::{Path, PathBuf};

use sal_saliency::npy::{self, NpyData};
use sal_saliency::{
    FineGrained, FineGrainedMode, ImageView, Normalization, PolarMath, SpectralResidual,
    StaticSaliency, WangDudek,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    assert!(
        dir.is_dir(),
        "fixture folder {} is missing (it is part of the repository)",
        dir.display()
    );
    dir
}

/// Every case folder listed in saliency/index.json.
fn saliency_cases() -> Vec<(String, PathBuf)> {
    let root = fixtures().join("saliency");
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("index.json")).unwrap()).unwrap();
    let cases: Vec<(String, PathBuf)> = index["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let name = c["case"].as_str().unwrap().to_string();
            let dir = root.join(&name);
            (name, dir)
        })
        .collect();
    assert!(cases.len() >= 16, "expected the 16 cases of set A");
    cases
}

fn meta(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap()
}

fn u8_array(path: &Path) -> (Vec<usize>, Vec<u8>) {
    let a = npy::read(path).unwrap();
    match a.data {
        NpyData::U8(v) => (a.shape, v),
        NpyData::F32(_) => panic!("{} should be uint8", path.display()),
    }
}

fn f32_array(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let a = npy::read(path).unwrap();
    match a.data {
        NpyData::F32(v) => (a.shape, v),
        NpyData::U8(_) => panic!("{} should be float32", path.display()),
    }
}

fn rc(v: &Value) -> (usize, usize) {
    (
        v[0].as_u64().unwrap() as usize,
        v[1].as_u64().unwrap() as usize,
    )
}

/// The normalised f32 input of a case: stored for 32x32 cases, rebuilt for the others from the
/// case's mean and std with the library's formula (torchvision's, each a correctly rounded f32
/// operation; the stored 32x32 inputs check that formula bit for bit).
fn normalised_input(dir: &Path, input: &[u8]) -> Vec<f32> {
    let stored = dir.join("input_norm_f32.npy");
    if stored.exists() {
        let (_, values) = f32_array(&stored);
        assert_eq!(
            values,
            rebuilt_normalised_input(dir, input),
            "{}",
            dir.display()
        );
        return values;
    }
    rebuilt_normalised_input(dir, input)
}

fn rebuilt_normalised_input(dir: &Path, input: &[u8]) -> Vec<f32> {
    let m = meta(dir);
    let values = |key: &str| -> Vec<f64> { (0..3).map(|c| m[key][c].as_f64().unwrap()).collect() };
    let normalization = Normalization {
        mean: values("norm_mean"),
        std: values("norm_std"),
    };
    normalization.normalise_interleaved(input, 3)
}

#[test]
fn fine_grained_intended_is_bit_exact_on_every_case() {
    let fg = FineGrained::new(FineGrainedMode::Intended);
    for (name, dir) in saliency_cases() {
        let (shape, input) = u8_array(&dir.join("input_u8.npy"));
        let (h, w) = (shape[0], shape[1]);
        let image = ImageView::hwc_u8(&input, h, w, 3).unwrap();
        let (_, expected) = u8_array(&dir.join("fg_on_u8.npy"));
        let got = fg.compute_codes(&image).unwrap();
        let diffs = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(diffs, 0, "{name}: {diffs} codes differ from OpenCV");

        let map = fg.compute(&image).unwrap();
        let stats = &meta(&dir)["maps"]["fg_on_u8"];
        assert_eq!(map.argmax_u8(), rc(&stats["argmax_u8"]), "{name}");
        assert_eq!(map.argmax(), rc(&stats["argmax_float"]), "{name}");
        let max = map.data.iter().copied().fold(f32::MIN, f32::max);
        assert_eq!(max as f64, stats["max"].as_f64().unwrap(), "{name}");
    }
}

#[test]
fn fine_grained_paper_code_is_bit_exact_on_every_case() {
    let fg = FineGrained::new(FineGrainedMode::PaperCode);
    for (name, dir) in saliency_cases() {
        let (shape, input) = u8_array(&dir.join("input_u8.npy"));
        let (h, w) = (shape[0], shape[1]);
        let normalised = normalised_input(&dir, &input);
        let image = ImageView::hwc_f32(&normalised, h, w, 3).unwrap();
        let (_, expected) = u8_array(&dir.join("fg_on_norm_f32.npy"));
        let got = fg.compute_codes(&image).unwrap();
        let diffs = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(
            diffs, 0,
            "{name}: {diffs} codes differ from OpenCV's float path"
        );
        let stats = &meta(&dir)["maps"]["fg_on_norm_f32"];
        let map = fg.compute(&image).unwrap();
        assert_eq!(map.argmax_u8(), rc(&stats["argmax_u8"]), "{name}");
    }
}

/// Max |diff| over all cases, asserting the tolerance and the decidable argmaxes on the way.
fn check_spectral_residual(polar: PolarMath, tolerance: f32) -> f32 {
    let sr = SpectralResidual::new(polar);
    let mut worst = 0f32;
    for (name, dir) in saliency_cases() {
        let (shape, input) = u8_array(&dir.join("input_u8.npy"));
        let (h, w) = (shape[0], shape[1]);
        let map = sr
            .compute(&ImageView::hwc_u8(&input, h, w, 3).unwrap())
            .unwrap();
        let (_, expected) = f32_array(&dir.join("sr_on_u8.npy"));
        let diff = map
            .data
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            diff <= tolerance,
            "{name}: max |diff| {diff:e} > {tolerance:e}"
        );
        worst = worst.max(diff);
        let stats = &meta(&dir)["maps"]["sr_on_u8"];
        let gap = stats["gap_to_next_lower_value"].as_f64();
        if gap.is_some_and(|g| g > 2.0 * tolerance as f64) {
            assert_eq!(map.argmax(), rc(&stats["argmax_float"]), "{name}: argmax");
        }
    }
    worst
}

#[test]
fn spectral_residual_with_opencv_polar_math_is_within_1e_6() {
    let worst = check_spectral_residual(PolarMath::OpenCv, 1e-6);
    println!("spectral residual (OpenCV polar math): max |diff| {worst:e}");
}

#[test]
fn spectral_residual_with_exact_trig_is_within_1e_4() {
    let worst = check_spectral_residual(PolarMath::Exact, 1e-4);
    println!("spectral residual (exact trig): max |diff| {worst:e}");
}

#[test]
fn wang_dudek_masks_equal_opencv_frame_by_frame() {
    let dir = fixtures().join("wang_dudek");
    let (shape, frames) = u8_array(&dir.join("frames.npy"));
    let (mask_shape, masks) = u8_array(&dir.join("masks.npy"));
    assert_eq!(shape, mask_shape);
    let (t, h, w) = (shape[0], shape[1], shape[2]);
    let mut wd = WangDudek::new(h, w).unwrap();
    for i in 0..t {
        let frame = &frames[i * h * w..][..h * w];
        let got = wd
            .push(&ImageView::hwc_u8(frame, h, w, 1).unwrap())
            .unwrap();
        let want = &masks[i * h * w..][..h * w];
        let diffs = got.data.iter().zip(want).filter(|(a, b)| a != b).count();
        assert_eq!(diffs, 0, "frame {i}: {diffs} pixels differ");
    }
}
