//! Test helpers shared by the method files: devices, random batches, host reads, fixture
//! paths, and the checks every box method must pass.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Element, Int, Tensor, TensorData};
use rand::RngExt;

use crate::boxes::BoxPair;
use crate::mixer::{BatchMixer, MixBatch, MixOutput};
use crate::seed::step_rng;
use crate::trace::SampleRegion;

/// The devices every op is tested on: flex, and wgpu when the `wgpu` feature is on (CI runs it
/// on Mesa's software drivers, lavapipe for Vulkan and llvmpipe for GL: `SAL_WGPU_API`).
pub fn devices() -> Vec<Device> {
    #[allow(unused_mut)]
    let mut d = vec![Device::flex()];
    #[cfg(feature = "wgpu")]
    d.push(wgpu());
    d
}

/// The wgpu device on the graphics API `SAL_WGPU_API` names (`sal_models::wgpu_device`).
#[cfg(feature = "wgpu")]
pub fn wgpu() -> Device {
    sal_models::wgpu_device().expect(sal_models::WGPU_API_VAR)
}

/// The repository's reference data, `tests/fixtures/` (see its README).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A tensor's values on the host.
pub fn host_vec<E: Element, const D: usize>(t: Tensor<D>) -> Vec<E> {
    t.try_into_vec_as::<E>().expect("tensor data converts")
}

/// An Int tensor's values on the host.
pub fn host_ints<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    t.try_into_vec_as::<i64>().expect("tensor data converts")
}

/// A batch of distinct random pixel values (so every output pixel's origin is unambiguous)
/// and random labels, reproducible from `seed`.
pub fn random_batch(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    classes: usize,
    seed: u64,
    device: &Device,
) -> MixBatch {
    let mut rng = step_rng(seed, u64::MAX);
    let pixels: Vec<f32> = (0..n * c * h * w)
        .map(|_| rng.random_range(-2.0f32..2.0))
        .collect();
    let labels: Vec<i64> = (0..n)
        .map(|_| rng.random_range(0..classes as i64))
        .collect();
    MixBatch::new(
        Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device),
        Tensor::from_data(TensorData::new(labels, [n]), device),
        classes,
    )
}

/// Checks of every box-pasting method (CutMix, SaliencyMix, ResizeMix's box, ...):
/// soft-target rows sum to 1; the own-label weight equals the fraction of pixels kept from the
/// target; every output pixel is the target's pixel outside the region and the source's
/// (shifted from the source box) inside it.
pub fn assert_box_mix_properties(batch: &MixBatch, out: &MixOutput) {
    let [n, c, h, w] = batch.images.dims();
    let k = batch.num_classes;
    let x: Vec<f32> = host_vec(batch.images.clone());
    let y: Vec<f32> = host_vec(out.images.clone());
    let labels = host_ints(batch.labels.clone());
    let targets: Vec<f32> = host_vec(out.targets.clone());
    for row in targets.chunks(k) {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "target row sums to {sum}");
    }
    let samples = out.trace.samples();
    assert_eq!(samples.len(), n);
    let per = c * h * w;
    for (i, s) in samples.iter().enumerate() {
        let src = s.source.unwrap_or(i);
        let pair = match &s.region {
            SampleRegion::Paste(p) => *p,
            SampleRegion::None => BoxPair::default(),
            other => panic!("not a paste: {other:?}"),
        };
        assert_eq!(pair.source.height(), pair.target.height());
        assert_eq!(pair.source.width(), pair.target.width());
        let kept = 1.0 - pair.target.area() as f64 / (h * w) as f64;
        assert!(
            (s.own_weight - kept).abs() < 1e-6,
            "own weight {} vs kept {kept}",
            s.own_weight
        );
        // The target row puts the own weight on the own label (plus the rest if labels agree).
        let own_label = labels[i] as usize;
        let expected = if labels[src] == labels[i] {
            1.0
        } else {
            s.own_weight
        };
        assert!((targets[i * k + own_label] as f64 - expected).abs() < 1e-5);
        for ch in 0..c {
            for r in 0..h {
                for col in 0..w {
                    let got = y[i * per + ch * h * w + r * w + col];
                    let want = if pair.target.contains(r, col) {
                        let (sr, sc) = (
                            r - pair.target.r1 + pair.source.r1,
                            col - pair.target.c1 + pair.source.c1,
                        );
                        x[src * per + ch * h * w + sr * w + sc]
                    } else {
                        x[i * per + ch * h * w + r * w + col]
                    };
                    assert_eq!(got, want, "sample {i} channel {ch} pixel ({r},{col})");
                }
            }
        }
    }
}

/// Same seed and same batch give the same output twice on flex, and (with the `wgpu` feature)
/// the same output on wgpu within 1e-5.
pub fn assert_device_parity(
    mixer: &dyn BatchMixer,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    seed: u64,
    saliency: Option<(usize, usize)>,
) {
    let run = |device: &Device| {
        let mut batch = random_batch(n, c, h, w, 6, seed, device);
        if let Some((sh, sw)) = saliency {
            let mut rng = step_rng(seed, 7);
            let s: Vec<f32> = (0..n * sh * sw)
                .map(|_| rng.random_range(0.0f32..1.0))
                .collect();
            batch = batch.with_saliency(Tensor::from_data(TensorData::new(s, [n, sh, sw]), device));
        }
        let out = mixer
            .mix(batch, &mut step_rng(seed, 42))
            .expect("mixing works");
        (
            host_vec::<f32, 4>(out.images.clone()),
            host_vec::<f32, 2>(out.targets.clone()),
            out.trace.samples(),
        )
    };
    let reference = run(&Device::flex());
    let again = run(&Device::flex());
    assert_eq!(reference.0, again.0, "flex is deterministic");
    assert_eq!(reference.1, again.1);
    assert_eq!(reference.2, again.2);
    for device in devices().into_iter().skip(1) {
        let other = run(&device);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5);
        assert!(
            close(&reference.0, &other.0),
            "{}: images differ on {device:?}",
            mixer.name()
        );
        assert!(
            close(&reference.1, &other.1),
            "{}: targets differ on {device:?}",
            mixer.name()
        );
        assert_eq!(reference.2.len(), other.2.len());
        for (a, b) in reference.2.iter().zip(&other.2) {
            assert_eq!(a.source, b.source);
            assert_eq!(
                a.region,
                b.region,
                "{}: regions differ on {device:?}",
                mixer.name()
            );
            assert!((a.own_weight - b.own_weight).abs() < 1e-5);
        }
    }
}

/// A fixture `.npy` (u8 or f32) as f32 values and its shape, through sal-saliency's reader.
pub fn read_npy(path: &Path) -> (Vec<f32>, Vec<usize>) {
    let array =
        sal_saliency::npy::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let values = match array.data {
        sal_saliency::npy::NpyData::U8(v) => v.into_iter().map(f32::from).collect(),
        sal_saliency::npy::NpyData::F32(v) => v,
    };
    (values, array.shape)
}

/// Box-centre uniformity from recorded boxes: among the boxes that touch neither border (so
/// `(r1 + r2) / 2` is the drawn centre, and given the cut, the centre is uniform on
/// `[half + 1, S - 1 - half]`), the mean centre must be `S / 2` within 5 standard errors, for
/// rows and columns. Needs a few hundred boxes.
pub fn assert_centres_uniform(boxes: &[crate::boxes::PixelBox], h: usize, w: usize) {
    let axis = |spans: Vec<(usize, usize)>, size: usize, what: &str| {
        let centres: Vec<f64> = spans
            .into_iter()
            .filter(|&(a, b)| a >= 1 && b < size && b > a)
            .map(|(a, b)| (a + b) as f64 / 2.0)
            .collect();
        assert!(centres.len() > 100, "only {} interior boxes", centres.len());
        let m = centres.len() as f64;
        let mean = centres.iter().sum::<f64>() / m;
        let var = centres.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / m;
        let se = (var / m).sqrt();
        let expected = size as f64 / 2.0;
        assert!(
            (mean - expected).abs() < 5.0 * se,
            "{what}: mean centre {mean}, expected {expected} (se {se})"
        );
    };
    axis(boxes.iter().map(|b| (b.r1, b.r2)).collect(), h, "rows");
    axis(boxes.iter().map(|b| (b.c1, b.c2)).collect(), w, "cols");
}
