//! Flex tensors as plain `f32` slices, for the CPU kernels of [`super::conv`],
//! [`super::batch_norm`] and [`super::residual`]: borrowing is zero-copy for a contiguous
//! tensor, and a `Vec<f32>` becomes a tensor without a copy.

use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, TensorData};

/// The tensor itself when its `f32` storage is one contiguous run, else a contiguous copy.
pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The values of a tensor passed through [`contiguous`].
pub(crate) fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("an f32 tensor made contiguous by `contiguous`")
}

/// `values` as a tensor of `shape` (row-major), without copying.
pub(crate) fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}
