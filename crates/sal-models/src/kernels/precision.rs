//! Autocast: the precision the models' convolutions multiply in, with PyTorch's
//! `torch.autocast(device_type="cpu", dtype=torch.bfloat16)` semantics: under
//! [`Precision::Bf16`] a convolution's operands (input, weight, output gradient) are rounded to
//! bfloat16 and their products summed in f32, forward and both gradients; weights, optimizer
//! state, batch-norm statistics, activations between layers, the loss and its softmax stay f32.
//!
//! On the GPU backends (wgpu, CUDA) [`Precision::F16`] (and on CUDA [`Precision::Bf16`]) runs
//! burn's own convolution kernels on operands cast to the half type, the result cast back to
//! f32: the forward pass and the input gradient. burn's kernels sum in the element type, so the
//! weight gradient, a sum over every sample and pixel of the batch, stays f32 (in f16 it would
//! lose the small terms and overflow past 65,504).
//!
//! Like PyTorch's, the setting is per thread ([`autocast`] around a step): flex runs every
//! operation, and burn's autodiff the backward pass, on the thread that calls them, so a step
//! run inside `autocast` multiplies in bf16 throughout while other threads (another run's
//! step, a test) keep their own setting.

use std::cell::Cell;

use crate::kernels::bf16_gemm::Isa;

/// The precision of a model's matrix products (`precision = "fp32" | "bf16"` in a config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 operands and sums.
    #[default]
    Fp32,
    /// bf16 operands, f32 sums (PyTorch's CPU autocast); on CUDA, bf16 kernels.
    Bf16,
    /// f16 operands on the GPU backends (wgpu with f16 shaders, CUDA).
    F16,
}

impl Precision {
    /// The config's name of it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// The half type a GPU backend's convolutions run in under this precision.
    pub fn gpu_dtype(self) -> Option<burn::tensor::FloatDType> {
        match self {
            Precision::Fp32 => None,
            Precision::Bf16 => Some(burn::tensor::FloatDType::BF16),
            Precision::F16 => Some(burn::tensor::FloatDType::F16),
        }
    }
}

/// How the CPU kernels multiply: f32, or bf16 operands on one of the CPU's instruction sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Products {
    F32,
    Bf16(Isa),
}

impl Products {
    /// This thread's [`autocast`] precision on this CPU: bf16 on its best bf16 instructions,
    /// f32 where it has none ([`bf16_instructions`] tells the trainer which).
    pub(crate) fn current() -> Self {
        match current() {
            // (f16 has no CPU kernels: the trainer refuses it on the cpu backend.)
            Precision::Fp32 | Precision::F16 => Products::F32,
            Precision::Bf16 => Isa::detect().map_or(Products::F32, Products::Bf16),
        }
    }
}

thread_local! {
    static AUTOCAST: Cell<Precision> = const { Cell::new(Precision::Fp32) };
}

/// Runs `f` with this thread's model products in `precision`, then restores the setting it
/// had (also when `f` panics).
pub fn autocast<R>(precision: Precision, f: impl FnOnce() -> R) -> R {
    struct Restore(Precision);
    impl Drop for Restore {
        fn drop(&mut self) {
            AUTOCAST.set(self.0);
        }
    }
    let _restore = Restore(AUTOCAST.replace(precision));
    f()
}

/// This thread's precision ([`Precision::Fp32`] outside [`autocast`]).
pub fn current() -> Precision {
    AUTOCAST.get()
}

/// The instructions [`Precision::Bf16`] multiplies with on this CPU: `"AMX"`,
/// `"AVX512-BF16"`, or `None` where it has neither (the products then run in f32).
pub fn bf16_instructions() -> Option<&'static str> {
    Isa::detect().map(|isa| match isa {
        Isa::Amx => "AMX",
        Isa::Avx512Bf16 => "AVX512-BF16",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autocast_sets_this_thread_only_and_restores_it() {
        assert_eq!(current(), Precision::Fp32);
        autocast(Precision::Bf16, || {
            assert_eq!(current(), Precision::Bf16);
            let other = std::thread::spawn(current).join().unwrap();
            assert_eq!(other, Precision::Fp32, "another thread keeps its own");
            autocast(Precision::Fp32, || assert_eq!(current(), Precision::Fp32));
            assert_eq!(current(), Precision::Bf16, "nested: restored");
        });
        assert_eq!(current(), Precision::Fp32);
        let panicked = std::panic::catch_unwind(|| autocast(Precision::Bf16, || panic!("in f")));
        assert!(panicked.is_err());
        assert_eq!(current(), Precision::Fp32, "restored after a panic");
        let bf16 = autocast(Precision::Bf16, Products::current);
        assert_eq!(bf16 == Products::F32, bf16_instructions().is_none());
    }
}
