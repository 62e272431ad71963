//! The output of every detector.

/// An H x W saliency map, f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct SaliencyMap {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl SaliencyMap {
    /// A map of u8 codes `k` stored as OpenCV's `convertTo(CV_32F, 1/255.f)` stores them:
    /// exactly `(k as f32) * (1.0f32 / 255.0)`.
    pub fn from_u8_codes(height: usize, width: usize, codes: &[u8]) -> Self {
        debug_assert_eq!(codes.len(), height * width);
        Self {
            height,
            width,
            data: codes.iter().map(|&k| k as f32 * (1.0f32 / 255.0)).collect(),
        }
    }

    /// `(map * 255).astype(uint8)` as SaliencyMix computes it (f32 product, C truncation; values
    /// outside [0, 256) and NaN give 0). For a fine-grained map this recovers OpenCV's u8 codes.
    pub fn to_u8_codes(&self) -> Vec<u8> {
        self.data
            .iter()
            .map(|&v| truncate_to_u8(v * 255.0))
            .collect()
    }

    /// `(row, col)` of the first maximum of [`Self::to_u8_codes`]: the saliency peak exactly as
    /// SaliencyMix's `saliency_bbox` finds it (`np.argmax` on `(map * 255).astype(uint8)`). It can
    /// differ from [`Self::argmax`] where float values tie after truncation.
    pub fn argmax_u8(&self) -> (usize, usize) {
        let codes = self.to_u8_codes();
        let mut best = 0;
        for (i, &k) in codes.iter().enumerate() {
            if k > codes[best] {
                best = i;
            }
        }
        self.unravel(best)
    }

    /// `(row, col)` of the FIRST maximum in row-major order (numpy `argmax` on the flattened
    /// map, which SaliencyMix's code uses). NaN values are never chosen.
    pub fn argmax(&self) -> (usize, usize) {
        self.unravel(first_index_by(&self.data, |a, b| a > b))
    }

    /// `(row, col)` of the FIRST minimum in row-major order.
    pub fn argmin(&self) -> (usize, usize) {
        self.unravel(first_index_by(&self.data, |a, b| a < b))
    }

    fn unravel(&self, i: usize) -> (usize, usize) {
        (i / self.width, i % self.width)
    }
}

/// numpy's float -> uint8 `astype` for values in [0, 256): truncation. Everything else (NaN,
/// negatives, >= 256) is undefined in C; map it to 0 rather than pretend to know.
fn truncate_to_u8(v: f32) -> u8 {
    if (0.0..256.0).contains(&v) {
        v as u8
    } else {
        0
    }
}

/// Index of the first element that beats every later one under `better` (strict, so ties keep
/// the earliest). NaN never beats anything and is replaced by the first non-NaN value.
fn first_index_by(v: &[f32], better: impl Fn(f32, f32) -> bool) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if v[best].is_nan() && !x.is_nan() || better(x, v[best]) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_and_argmin_take_the_first_in_row_major_order() {
        let m = SaliencyMap {
            height: 2,
            width: 3,
            data: vec![0.0, 1.0, 0.5, 1.0, 0.0, 0.2],
        };
        assert_eq!(m.argmax(), (0, 1));
        assert_eq!(m.argmin(), (0, 0));
    }

    #[test]
    fn u8_codes_round_trip_and_argmax_u8_takes_the_first_tie() {
        let codes: Vec<u8> = (0..=255).collect();
        let m = SaliencyMap::from_u8_codes(16, 16, &codes);
        assert_eq!(m.to_u8_codes(), codes);
        // 1.0 and 1.0001 differ as floats but both truncate to code 255.
        let m = SaliencyMap {
            height: 1,
            width: 3,
            data: vec![0.5, 1.0, 1.0001],
        };
        assert_eq!(m.argmax(), (0, 2));
        assert_eq!(m.argmax_u8(), (0, 1));
    }

    #[test]
    fn nan_is_never_the_argmax() {
        let m = SaliencyMap {
            height: 1,
            width: 3,
            data: vec![f32::NAN, 0.1, 0.3],
        };
        assert_eq!(m.argmax(), (0, 2));
    }
}
