//! OpenCV's `BORDER_REFLECT_101` (`gfedcb|abcdefgh|gfedcba`), the default border of every filter
//! the detectors use.

/// Maps a possibly out-of-range index onto `0..len` the way OpenCV's `borderInterpolate` does for
/// `BORDER_REFLECT_101`; a length-1 axis maps everything to 0.
pub(crate) fn reflect101(mut i: isize, len: usize) -> usize {
    debug_assert!(len > 0);
    let n = len as isize;
    if n == 1 {
        return 0;
    }
    while i < 0 || i >= n {
        i = if i < 0 { -i } else { 2 * n - 2 - i };
    }
    i as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflects_without_repeating_the_edge() {
        let got: Vec<usize> = (-3..8).map(|i| reflect101(i, 5)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
        assert_eq!(reflect101(-1, 1), 0);
        assert_eq!(reflect101(2, 2), 0);
        assert_eq!(reflect101(-1, 2), 1);
        // Far outside: keeps bouncing.
        assert_eq!(reflect101(-7, 3), 1);
    }
}
