//! The ReLU of the fused flex kernels, one element at a time, with burn's NaN semantics.
//!
//! burn-flex 0.22.1 (`ops/activation.rs`, `relu` and `relu_backward`) keeps `x` where
//! `x.is_nan() || x > 0.0` and writes 0 elsewhere, and passes the gradient where the output is
//! NaN or positive; the trait defaults other backends run (burn-backend
//! `ops/activation.rs`) mask with `x <= 0`, which is false for NaN, so they agree. `x.max(0.0)`
//! would turn NaN into 0 and make a diverging run look like one stuck at chance.
//!
//! Both compile to one compare (`!(x <= 0)`, `cmpnleps`) and one `and` per vector, as
//! `max(0.0)` compiles to one `maxps`: the loops still vectorise and stay memory-bound.

/// `x` where `x > 0` or `x` is NaN (its bits kept), `+0.0` elsewhere (`-0.0` and `-inf`
/// included); `+inf` stays.
#[inline(always)]
pub(crate) fn relu(x: f32) -> f32 {
    if x.is_nan() || x > 0.0 { x } else { 0.0 }
}

/// The gradient reaching a ReLU's input: `grad` where its `output` is positive or NaN, `+0.0`
/// elsewhere (even where `grad` is NaN).
#[inline(always)]
pub(crate) fn relu_gate(output: f32, grad: f32) -> f32 {
    if output.is_nan() || output > 0.0 {
        grad
    } else {
        0.0
    }
}

/// Asserts `got` equals `want` value for value where the values are special: NaN where `want`
/// has NaN, the same infinity where it has one; finite values within `tolerance`, absolute
/// and relative (0: the same bits).
#[cfg(test)]
pub(crate) fn assert_same_specials(
    got: &burn::tensor::TensorData,
    want: &burn::tensor::TensorData,
    tolerance: f32,
    what: &str,
) {
    let (got, want) = (
        got.try_to_vec::<f32>().expect("f32 values"),
        want.try_to_vec::<f32>().expect("f32 values"),
    );
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        let same = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() || tolerance == 0.0 {
            g.to_bits() == w.to_bits()
        } else {
            (g - w).abs() <= tolerance * w.abs().max(1.0)
        };
        assert!(same, "{what}[{i}]: {g} vs burn's {w}");
    }
}

#[cfg(test)]
mod tests {
    use super::{relu, relu_gate};
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;
    use burn::backend::ops::ActivationOps;
    use burn::tensor::TensorData;

    /// Every special value, signed zeros and NaNs with a sign and a payload included.
    fn specials() -> Vec<f32> {
        vec![
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7fc0_1234),
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            1.5,
            -1.5,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
        ]
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn flex(values: Vec<f32>) -> FlexTensor {
        let n = values.len();
        FlexTensor::from_data(TensorData::new(values, [n]))
    }

    fn host(t: FlexTensor) -> Vec<f32> {
        t.as_slice::<f32>().expect("contiguous f32").to_vec()
    }

    /// Bit for bit burn-flex's own `relu` and `relu_backward`, for every special value as the
    /// input (or output) and as the gradient.
    #[test]
    fn relu_and_gate_equal_burn_flex_bit_for_bit() {
        let x = specials();
        let want = host(Flex::relu(flex(x.clone())));
        assert_eq!(
            bits(&x.iter().map(|&v| relu(v)).collect::<Vec<_>>()),
            bits(&want)
        );
        for &g in &specials() {
            let grad = vec![g; x.len()];
            let want = host(Flex::relu_backward(flex(x.clone()), flex(grad)));
            let got: Vec<f32> = x.iter().map(|&y| relu_gate(y, g)).collect();
            assert_eq!(bits(&got), bits(&want), "gradient {g}");
        }
    }
}
