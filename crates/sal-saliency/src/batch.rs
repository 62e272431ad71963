//! Many images at once: the detectors are independent per image, so a batch is a parallel map.

use rayon::prelude::*;

use crate::{ImageView, SaliencyError, SaliencyMap, StaticSaliency};

/// Runs `detector` on every image in parallel on rayon's global pool and returns the maps in the
/// input order. The first error (in input order) is returned if any image fails.
pub fn compute_batch(
    detector: &dyn StaticSaliency,
    images: &[ImageView<'_>],
) -> Result<Vec<SaliencyMap>, SaliencyError> {
    images
        .par_iter()
        .map(|image| detector.compute(image))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FineGrained, FineGrainedMode};

    #[test]
    fn batch_results_equal_one_by_one_results_in_order() {
        let buffers: Vec<Vec<u8>> = (0..9)
            .map(|s| {
                (0..20 * 30 * 3)
                    .map(|i| ((i * (s + 3)) % 256) as u8)
                    .collect()
            })
            .collect();
        let images: Vec<ImageView<'_>> = buffers
            .iter()
            .map(|b| ImageView::hwc_u8(b, 20, 30, 3).unwrap())
            .collect();
        let fg = FineGrained::default();
        let batch = compute_batch(&fg, &images).unwrap();
        for (im, m) in images.iter().zip(&batch) {
            assert_eq!(&fg.compute(im).unwrap(), m);
        }
        let paper = FineGrained::new(FineGrainedMode::PaperCode);
        assert!(matches!(
            compute_batch(&paper, &images),
            Err(SaliencyError::Dtype { .. })
        ));
        assert!(compute_batch(&fg, &[]).unwrap().is_empty());
    }
}
