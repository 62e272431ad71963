//! Output buffers the CPU kernels write in full, in parallel, without zeroing them first.
//!
//! Why: `vec![0.0; n]` zeroes on the calling thread, the one driving the autodiff graph. For a
//! reused heap block glibc's `calloc` runs a `memset` there, so every 8-34 MB activation or
//! gradient of a CIFAR ResNet-18 step was cleared serially while the worker threads waited.
//! Leaving the buffers uninitialised until the parallel kernels write them takes that serial
//! pass off the step (`docs/benchmarks.md`, Models, has the measurement).

use std::mem::MaybeUninit;

/// `len` uninitialised slots.
pub(crate) fn uninit(len: usize) -> Vec<MaybeUninit<f32>> {
    let mut slots = Vec::with_capacity(len);
    assert!(slots.capacity() >= len, "capacity for the slots");
    // SAFETY: the capacity holds `len` slots (the assert above), and `MaybeUninit<f32>` is
    // valid uninitialised.
    unsafe { slots.set_len(len) };
    slots
}

/// The buffer as `f32`s.
///
/// # Safety
/// Every slot must have been written.
pub(crate) unsafe fn assume_init(slots: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    const { assert!(size_of::<MaybeUninit<f32>>() == size_of::<f32>()) };
    const { assert!(align_of::<MaybeUninit<f32>>() == align_of::<f32>()) };
    let mut slots = std::mem::ManuallyDrop::new(slots);
    let (ptr, len, capacity) = (slots.as_mut_ptr(), slots.len(), slots.capacity());
    // SAFETY: `MaybeUninit<f32>` has `f32`'s size and alignment (the two const asserts above),
    // so the same allocation, length and capacity describe the `f32`s; the allocation is
    // handed over whole (the `ManuallyDrop` never frees it), and the caller guarantees every
    // slot is initialised.
    unsafe { Vec::from_raw_parts(ptr.cast::<f32>(), len, capacity) }
}

/// Zeroes `slots` and returns them as `f32`s (for kernels that accumulate into their output).
pub(crate) fn zeroed(slots: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    const { assert!(size_of::<MaybeUninit<f32>>() == size_of::<f32>()) };
    const { assert!(align_of::<MaybeUninit<f32>>() == align_of::<f32>()) };
    slots.fill(MaybeUninit::new(0.0));
    // SAFETY: `fill` just wrote every slot of `slots` (no length to check: it covers the
    // slice), and `MaybeUninit<f32>` has `f32`'s size and alignment (the const asserts above),
    // so the same pointer and length describe the `f32`s.
    unsafe { &mut *(std::ptr::from_mut(slots) as *mut [f32]) }
}
