//! glibc's allocator in its steady state, for the commands whose speed depends on it.
//!
//! By default glibc maps blocks above its mmap threshold (128 KB at start) freshly and hands
//! them back to the kernel when freed, and trims the heap's free top; it raises both thresholds
//! only after the program happens to free a large mapped block. A training step allocates and
//! frees multi-megabyte activations and gradients, so whether every step pays page faults for
//! them depended on what the program had freed before training began (docs/benchmarks.md,
//! "Training", has the measurement). These settings remove the dependence: freed memory stays
//! in the process (no trimming) and only blocks above glibc's 32 MB maximum threshold are
//! mapped on their own.

/// The settings as environment variables, which glibc reads when a process starts: the benches
/// re-run themselves (and so the Python peer they spawn) with them.
pub const STEADY_ENV: [(&str, &str); 3] = [
    ("MALLOC_TRIM_THRESHOLD_", "4294967296"),
    ("MALLOC_MMAP_THRESHOLD_", "33554432"),
    ("MALLOC_TOP_PAD_", "268435456"),
];

/// Applies the settings to this process (`mallopt`), for commands that are not restarted:
/// training. The trim threshold is capped at `mallopt`'s `int` (2 GiB) instead of 4 GiB, which
/// makes no difference below 2 GiB of free heap. A no-op where the C library is not glibc.
pub fn use_steady_settings() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes glibc's tuning parameters, with values inside the ranges
    // glibc documents (M_MMAP_THRESHOLD at most 32 MB on 64-bit); it allocates nothing and is
    // called before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
