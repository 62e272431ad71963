//! The output of every detector.

/// An H x W saliency map, f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct SaliencyMap {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl SaliencyMap {
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
    fn nan_is_never_the_argmax() {
        let m = SaliencyMap {
            height: 1,
            width: 3,
            data: vec![f32::NAN, 0.1, 0.3],
        };
        assert_eq!(m.argmax(), (0, 2));
    }
}
