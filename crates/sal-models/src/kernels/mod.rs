//! Kernels: how the models run. Each layer type the models apply goes through a burn backend
//! extension (`#[backend_extension]`) with its own autodiff node: on the CPU backend (flex) our
//! kernels run, on every other backend (wgpu, CUDA) the trait's default bodies call burn's own
//! operations (`docs/models.md`, "How the models run").
//!
//! - [`conv`]: [`conv2d`] through [`GemmConv`], im2col + GEMM forward and both gradients.
//! - [`mod@batch_norm`]: [`batch_norm()`] and [`batch_norm_relu`] through [`FusedBatchNorm`],
//!   two passes each way with the ReLU fused in.
//! - [`residual`]: [`add_relu`] through [`AddRelu`], a post-activation block's end.
//! - [`precision`]: [`autocast`], the precision the convolutions multiply in (f32, or bf16
//!   operands with f32 sums on the CPU's AMX or AVX512-BF16 units: [`mod@bf16_gemm`]).
//!
//! The flex kernels work on plain `f32` slices borrowed from flex tensors (`flex_slices`) and
//! write their outputs into buffers left uninitialised until the worker threads fill them
//! (`uninit`). Their fused ReLU (`relu`) propagates NaN as burn's does.

pub mod batch_norm;
// Stable `asm!` for the AMX tiles, `std::arch` for AVX512-BF16; each `unsafe` block names what
// it relies on.
#[allow(unsafe_code)]
pub mod bf16_gemm;
pub mod conv;
mod flex_slices;
mod matrix;
pub mod precision;
mod relu;
// The crate denies `unsafe`; these modules, and `conv::im2col` and `batch_norm::per_channel`,
// need it for their uninitialised outputs (and im2col for the GEMM call). Each `unsafe` block
// there names the asserts it relies on.
#[allow(unsafe_code)]
pub mod residual;
#[allow(unsafe_code)]
mod uninit;

pub use batch_norm::{Activation, FusedBatchNorm, batch_norm, batch_norm_relu};
pub use conv::{GemmConv, conv2d};
pub use precision::{Precision, autocast, bf16_instructions};
pub use residual::{AddRelu, add_relu};
