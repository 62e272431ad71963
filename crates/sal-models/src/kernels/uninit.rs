//! Output buffers the CPU kernels write in full, in parallel, without zeroing them first.
//!
//! Why: `vec![0.0; n]` zeroes on the calling thread, the one driving the autodiff graph. For a
//! reused heap block glibc's `calloc` runs a `memset` there, so every 8-34 MB activation or
//! gradient of a CIFAR ResNet-18 step was cleared serially while the worker threads waited:
//! leaving the buffers uninitialised until the parallel kernels write them made the whole
//! training step ~8 % faster (docs/benchmarks.md, Models).

use std::mem::MaybeUninit;

/// `len` uninitialised slots.
pub(crate) fn uninit(len: usize) -> Vec<MaybeUninit<f32>> {
    let mut slots = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit<f32>` is valid uninitialised, and the capacity is `len`.
    unsafe { slots.set_len(len) };
    slots
}

/// The buffer as `f32`s.
///
/// # Safety
/// Every slot must have been written.
pub(crate) unsafe fn assume_init(slots: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut slots = std::mem::ManuallyDrop::new(slots);
    let (ptr, len, capacity) = (slots.as_mut_ptr(), slots.len(), slots.capacity());
    // SAFETY: `MaybeUninit<f32>` has `f32`'s size and alignment, the allocation is handed over
    // whole (the `ManuallyDrop` never frees it), and the caller guarantees initialisation.
    unsafe { Vec::from_raw_parts(ptr.cast::<f32>(), len, capacity) }
}

/// Zeroes `slots` and returns them as `f32`s (for kernels that accumulate into their output).
pub(crate) fn zeroed(slots: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    slots.fill(MaybeUninit::new(0.0));
    // SAFETY: every slot was just written.
    unsafe { &mut *(std::ptr::from_mut(slots) as *mut [f32]) }
}
