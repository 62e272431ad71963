//! The two sides of a GEMM the kernels share: an [`Operand`] (a slice read as a row-major
//! matrix or as the transpose of one) and a [`Destination`] (what the product does to the
//! values it lands on). The f32 GEMM (`gemm`, in `conv::im2col`) and the bf16 one
//! ([`super::bf16_gemm`]) take the same two.

use std::mem::MaybeUninit;

/// One factor of a GEMM: a slice read as a row-major matrix, or as the transpose of one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operand<'a> {
    pub data: &'a [f32],
    /// Elements between consecutive rows of the stored row-major matrix.
    pub row_stride: usize,
    /// Stored as the transpose: consecutive rows are `1` apart and columns `row_stride` apart.
    pub transposed: bool,
}

impl<'a> Operand<'a> {
    /// A row-major matrix whose rows are `row_stride` apart.
    pub fn rows(data: &'a [f32], row_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            transposed: false,
        }
    }

    /// The transpose of the row-major matrix [`Operand::rows`] would describe.
    pub fn transpose_of(data: &'a [f32], row_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            transposed: true,
        }
    }

    /// `(column stride, row stride)` of the matrix this operand describes.
    pub fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (self.row_stride as isize, 1)
        } else {
            (1, self.row_stride as isize)
        }
    }

    /// Element `(r, c)` of the matrix this operand describes.
    pub fn at(&self, r: usize, c: usize) -> f32 {
        let (cs, rs) = self.strides();
        self.data[r * rs as usize + c * cs as usize]
    }
}

/// Where a GEMM puts its `m x n` product (row-major, contiguous), and what it does with the
/// values there.
pub(crate) enum Destination<'a> {
    /// Replaces them, without reading them.
    Overwrite(&'a mut [f32]),
    /// Adds the product to them.
    Accumulate(&'a mut [f32]),
    /// Writes every one of these uninitialised slots, without reading them.
    Uninit(&'a mut [MaybeUninit<f32>]),
}
