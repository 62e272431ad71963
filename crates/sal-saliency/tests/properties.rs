//! Properties every still-image detector must have on arbitrary input: any size from 1x1, both
//! layouts, both element types, 1 or 3 channels; no panic, a finite map of the input's size, and
//! the documented equivalences between input forms.

use proptest::prelude::*;
use sal_saliency::{
    FineGrained, FineGrainedMode, ImageView, STATIC_METHODS, SaliencyMap, StaticSaliency,
    compute_batch, static_detector,
};

/// A random image: height, width, channels and u8 HWC pixels (smooth or noisy).
fn image() -> impl Strategy<Value = (usize, usize, usize, Vec<u8>)> {
    (
        1usize..40,
        1usize..40,
        prop_oneof![Just(1usize), Just(3usize)],
        any::<bool>(),
    )
        .prop_flat_map(|(h, w, c, flat)| {
            let len = h * w * c;
            let pixels = if flat {
                any::<u8>().prop_map(move |v| vec![v; len]).boxed()
            } else {
                prop::collection::vec(any::<u8>(), len).boxed()
            };
            (Just(h), Just(w), Just(c), pixels)
        })
}

fn hwc_to_chw(px: &[u8], h: usize, w: usize, c: usize) -> Vec<u8> {
    (0..c)
        .flat_map(|ch| (0..h * w).map(move |i| px[i * c + ch]))
        .collect()
}

fn detectors() -> Vec<Box<dyn StaticSaliency>> {
    STATIC_METHODS
        .iter()
        .filter(|&&m| m != "fine-grained-paper-code")
        .map(|m| static_detector(m).unwrap())
        .collect()
}

fn check_map(map: &SaliencyMap, h: usize, w: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!((map.height, map.width, map.data.len()), (h, w, h * w));
    prop_assert!(
        map.data
            .iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v))
    );
    // argmax is the first maximum in row-major order.
    let (r, c) = map.argmax();
    let max = map.data.iter().copied().fold(f32::MIN, f32::max);
    let first = map.data.iter().position(|&v| v == max).unwrap();
    prop_assert_eq!(r * w + c, first);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_detector_gives_a_finite_unit_map_in_both_layouts((h, w, c, px) in image()) {
        let chw = hwc_to_chw(&px, h, w, c);
        for d in detectors() {
            let a = d.compute(&ImageView::hwc_u8(&px, h, w, c).unwrap()).unwrap();
            check_map(&a, h, w)?;
            let b = d.compute(&ImageView::chw_u8(&chw, c, h, w).unwrap()).unwrap();
            prop_assert_eq!(&a, &b, "{} HWC vs CHW", d.name());
        }
    }

    #[test]
    fn f32_intensities_equal_their_u8_image((h, w, c, px) in image()) {
        // OpenCV ports quantise f32 [0, 1] input like convertTo(CV_8U, 255), so v / 255 maps
        // back to v exactly. (Frequency-tuned reads f32 as intensities directly; its u8 path
        // uses a table of the same values.)
        let f: Vec<f32> = px.iter().map(|&v| v as f32 / 255.0).collect();
        for d in detectors() {
            let a = d.compute(&ImageView::hwc_u8(&px, h, w, c).unwrap()).unwrap();
            let b = d.compute(&ImageView::hwc_f32(&f, h, w, c).unwrap()).unwrap();
            if d.name() == "frequency-tuned" {
                for (x, y) in a.data.iter().zip(&b.data) {
                    prop_assert!((x - y).abs() < 1e-4);
                }
            } else {
                prop_assert_eq!(&a, &b, "{}", d.name());
            }
        }
    }

    #[test]
    fn paper_code_takes_any_f32_values(
        (h, w, c, px) in image(), scale in -1e6f32..1e6, offset in -10f32..10.0
    ) {
        let f: Vec<f32> = px.iter().map(|&v| v as f32 * scale / 255.0 + offset).collect();
        let fg = FineGrained::new(FineGrainedMode::PaperCode);
        let chw: Vec<f32> = (0..c)
            .flat_map(|ch| (0..h * w).map(|i| f[i * c + ch]).collect::<Vec<_>>())
            .collect();
        let a = fg.compute(&ImageView::hwc_f32(&f, h, w, c).unwrap()).unwrap();
        check_map(&a, h, w)?;
        let b = fg.compute(&ImageView::chw_f32(&chw, c, h, w).unwrap()).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn a_batch_equals_the_images_one_by_one(
        images in prop::collection::vec(image(), 0..6)
    ) {
        let views: Vec<ImageView<'_>> = images
            .iter()
            .map(|(h, w, c, px)| ImageView::hwc_u8(px, *h, *w, *c).unwrap())
            .collect();
        for d in detectors() {
            let batch = compute_batch(d.as_ref(), &views).unwrap();
            prop_assert_eq!(batch.len(), views.len());
            for (v, m) in views.iter().zip(&batch) {
                prop_assert_eq!(&d.compute(v).unwrap(), m);
            }
        }
    }
}

#[test]
fn paper_code_handles_non_finite_values() {
    let px = [f32::NAN, f32::INFINITY, -f32::INFINITY, 1e38, -1e38, 0.0];
    let fg = FineGrained::new(FineGrainedMode::PaperCode);
    let map = fg
        .compute(&ImageView::hwc_f32(&px, 2, 3, 1).unwrap())
        .unwrap();
    assert_eq!(map.data.len(), 6);
    assert!(map.data.iter().all(|v| v.is_finite()));
}
