//! A GEMM on bf16 operands with f32 accumulation, PyTorch autocast's semantics for matrix
//! products on the CPU: each operand value is rounded to bfloat16 (round to nearest even), the
//! products are summed in f32, the result is f32.
//!
//! Two instruction sets run it, chosen at run time ([`Isa::detect`]):
//! - **AMX** (`amx-tile` + `amx-bf16`, Sapphire Rapids and later): `TDPBF16PS` multiplies a
//!   16 x 32 bf16 tile by a 32 x 16 one into a 16 x 16 f32 tile, 8,192 products per
//!   instruction. Rust's AMX intrinsics are unstable (rust-lang/rust#126622), so the kernel is
//!   stable `asm!`; Linux hands out the tile registers only after the process asks
//!   (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, the kernel's
//!   Documentation/arch/x86/xstate.rst).
//! - **AVX512-BF16** (`vdpbf16ps`, Cooper Lake, Zen 4 and later): 16 lanes of two products each.
//!
//! Both read the same packed operands: the left one in tiles of 16 rows x 32 values (k), the
//! right one in tiles of 16 k-pairs x 16 columns, each pair adjacent ("VNNI" layout), which is
//! the layout `TDPBF16PS` and `vdpbf16ps` both consume. A block of the product is 32 x 32:
//! four accumulator tiles (AMX) or 4 x 8 rows of two zmm registers (AVX512-BF16). The left
//! operand is packed once per convolution (its weights, [`PackedLhs`]); an operand can come
//! from a row source ([`Source::Rows`]), so a convolution's column matrix is packed a chunk of
//! rows at a time straight from its input and never written out whole in f32.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::kernels::matrix::{Destination, Operand};

/// Rows and columns of one product block: two tiles each way.
const BLOCK: usize = 32;
/// k values per tile: 32 bf16 = 64 bytes, a tile row.
const K_CHUNK: usize = 32;
/// bf16 values in one tile (16 rows of 32).
const TILE: usize = 16 * 32;
/// Chunks of 32 k per pass over a band's blocks: A's slice (16 KiB) stays in L1 beside the B
/// slice streaming past (16 KiB).
const K_SLICE: usize = 8;

/// `x` rounded to the nearest bfloat16, ties to even; NaN stays NaN (quiet).
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7FFF + ((bits >> 16) & 1);
    ((bits + rounding) >> 16) as u16
}

/// The f32 value of a bfloat16.
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// The matrix instructions this CPU runs the bf16 GEMM with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Amx,
    Avx512Bf16,
}

impl Isa {
    /// Every one this CPU (and operating system) runs, best first (tests and benchmarks run
    /// each).
    pub fn available() -> Vec<Isa> {
        let mut isas = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            // Detected AMX implies AVX512-BF16 (`detect` requires both).
            match Isa::detect() {
                Some(Isa::Amx) => isas.extend([Isa::Amx, Isa::Avx512Bf16]),
                Some(Isa::Avx512Bf16) => isas.push(Isa::Avx512Bf16),
                None => {}
            }
        }
        isas
    }

    /// The best of [`Isa::Amx`] and [`Isa::Avx512Bf16`] this CPU (and, for AMX, the operating
    /// system) allows, asked once per process; `None` when neither: callers use f32.
    pub fn detect() -> Option<Isa> {
        static ISA: OnceLock<Option<Isa>> = OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                // The packing converts with AVX512-BF16 (and AVX-512 F / BW) on both paths.
                let avx512_bf16 = std::arch::is_x86_feature_detected!("avx512bf16")
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw");
                if avx512_bf16 && amx::available() {
                    return Some(Isa::Amx);
                }
                if avx512_bf16 {
                    return Some(Isa::Avx512Bf16);
                }
            }
            None
        })
    }
}

/// bf16 values in one panel: a block of 32 rows (or columns) over every chunk of 32 k.
fn panel_len(k: usize) -> usize {
    k.div_ceil(K_CHUNK) * 2 * TILE
}

/// Where an operand's f32 values come from: a matrix, or a function writing rows `a..b` of a
/// row-major matrix (row after row, each as wide as the matrix) into a buffer, every value of
/// it (the buffer is reused: what the function leaves unwritten is stale). The second is a
/// convolution's im2col: packed a few rows at a time, straight from the input, so the f32
/// column matrix (MBs, out of cache) is never written whole.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    Matrix(Operand<'a>),
    Rows(&'a (dyn Fn(Range<usize>, &mut [f32]) + Sync)),
}

/// Buffers reused across GEMMs, per thread: packing one block of samples' operands takes MBs,
/// and fresh zeroed allocations for each cost a `memset` and page faults per call (7 % of a
/// bf16 training step). A taken buffer holds stale values: the packing writes every one of
/// them, the tiles' zero padding included.
mod scratch {
    use std::cell::Cell;

    /// Buffers a thread keeps of each kind.
    const KEEP: usize = 4;

    thread_local! {
        static BF16: Cell<Vec<Vec<u16>>> = const { Cell::new(Vec::new()) };
        static F32: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    }

    /// A buffer of `len` values from `pool`, stale but for any part it had to grow by.
    fn take<T: Copy + Default>(
        pool: &'static std::thread::LocalKey<Cell<Vec<Vec<T>>>>,
        len: usize,
    ) -> Vec<T> {
        let mut buffers = pool.take();
        let mut buffer = buffers.pop().unwrap_or_default();
        pool.set(buffers);
        if buffer.len() >= len {
            buffer.truncate(len);
        } else {
            buffer.resize(len, T::default());
        }
        buffer
    }

    fn give<T>(pool: &'static std::thread::LocalKey<Cell<Vec<Vec<T>>>>, buffer: Vec<T>) {
        let mut buffers = pool.take();
        if buffers.len() < KEEP {
            buffers.push(buffer);
        }
        pool.set(buffers);
    }

    pub fn bf16(len: usize) -> Vec<u16> {
        take(&BF16, len)
    }

    pub fn give_bf16(buffer: Vec<u16>) {
        give(&BF16, buffer);
    }

    /// Runs `f` on an f32 buffer of `len` values (stale: `f` writes what it reads).
    pub fn with_f32<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let mut buffer = take(&F32, len);
        let result = f(&mut buffer);
        give(&F32, buffer);
        result
    }
}

/// `lhs[m, k]` as bf16 tiles: per block of 32 rows, per chunk of 32 k, two 16 x 32 tiles (the
/// block's upper and lower 16 rows), zero past `m` and `k`. Packed once, it serves every GEMM
/// with that left operand (a convolution's weights, for all its blocks of samples). Its buffer
/// goes back to the thread's pool when dropped.
pub(crate) struct PackedLhs {
    tiles: Vec<u16>,
    m: usize,
    k: usize,
}

impl PackedLhs {
    /// Packs `lhs` (`m x k`); in parallel over the blocks of 32 rows when `parallel`.
    pub fn new(isa: Isa, lhs: Source, [m, k]: [usize; 2], parallel: bool) -> Self {
        let mut tiles = scratch::bf16(m.div_ceil(BLOCK) * panel_len(k));
        let chunks = k.div_ceil(K_CHUNK);
        let pack = |(block, out): (usize, &mut [u16])| {
            let rows = block * BLOCK..(block * BLOCK + BLOCK).min(m);
            // Rows past `m` in the last block: zeros.
            for row in rows.len()..BLOCK {
                for chunk in 0..chunks {
                    let at = (chunk * 2 + row / 16) * TILE + row % 16 * 32;
                    out[at..at + 32].fill(0);
                }
            }
            let mut pack_rows = |buffer: &[f32]| {
                for (row, r) in rows.clone().enumerate() {
                    let (half, tile_row) = (row / 16, row % 16);
                    for chunk in 0..chunks {
                        let at = (chunk * 2 + half) * TILE + tile_row * 32;
                        let dst: &mut [u16; 32] = (&mut out[at..at + 32]).try_into().expect("32");
                        let ks = chunk * K_CHUNK..(chunk * K_CHUNK + K_CHUNK).min(k);
                        match lhs {
                            Source::Matrix(lhs) if lhs.transposed => {
                                dst.fill(0);
                                for (d, kk) in dst.iter_mut().zip(ks) {
                                    *d = to_bf16(lhs.at(r, kk));
                                }
                            }
                            Source::Matrix(lhs) => {
                                let start = r * lhs.row_stride;
                                let values = &lhs.data[start + ks.start..start + ks.end];
                                convert::row(isa, values, dst);
                            }
                            Source::Rows(_) => {
                                let start = row * k;
                                let values = &buffer[start + ks.start..start + ks.end];
                                convert::row(isa, values, dst);
                            }
                        }
                    }
                }
            };
            // A row source writes the block's rows into a buffer first.
            match lhs {
                Source::Rows(fill) => scratch::with_f32(rows.len() * k, |buffer| {
                    fill(rows.clone(), buffer);
                    pack_rows(buffer);
                }),
                Source::Matrix(_) => pack_rows(&[]),
            }
        };
        // (An empty product has no tiles to pack.)
        let blocks = tiles.chunks_mut(panel_len(k).max(1)).enumerate();
        if parallel {
            blocks.collect::<Vec<_>>().into_par_iter().for_each(pack);
        } else {
            blocks.for_each(pack);
        }
        Self { tiles, m, k }
    }

    fn panel(&self, block: usize) -> &[u16] {
        let len = panel_len(self.k);
        &self.tiles[block * len..(block + 1) * len]
    }
}

impl Drop for PackedLhs {
    fn drop(&mut self) {
        scratch::give_bf16(std::mem::take(&mut self.tiles));
    }
}

/// `rhs[k, n]` as bf16 tiles, chunk-major: per chunk of 32 k, per block of 32 columns, two
/// tiles of 16 k-pairs x 16 columns (the block's left and right 16 columns), each k-pair
/// adjacent; zero past `k` and `n`. In parallel over the chunks when `parallel`. The buffer is
/// the thread's pool's (`scratch::give_bf16` it back).
fn pack_rhs(isa: Isa, rhs: Source, [k, n]: [usize; 2], parallel: bool) -> Vec<u16> {
    let chunk_len = n.div_ceil(BLOCK) * 2 * TILE;
    let mut packed = scratch::bf16(k.div_ceil(K_CHUNK) * chunk_len);
    let pack_chunk = |ks: Range<usize>, matrix: Operand, first_row: usize, out: &mut [u16]| {
        if matrix.transposed {
            // Column j of the matrix is row j of the data: its 32 k of this chunk converted
            // at once, then dealt out pair by pair. Columns past `n`: zeros.
            if n % BLOCK != 0 {
                out[n / BLOCK * 2 * TILE..].fill(0);
            }
            let mut converted = [0u16; 32];
            for j in 0..n {
                let start = j * matrix.row_stride;
                let values = &matrix.data[start + ks.start..start + ks.end];
                convert::row(isa, values, &mut converted);
                let (block, half, c) = (j / BLOCK, j % BLOCK / 16, j % 16);
                let tile = (block * 2 + half) * TILE;
                for pair in 0..16 {
                    let at = tile + pair * 32 + c * 2;
                    out[at..at + 2].copy_from_slice(&converted[pair * 2..pair * 2 + 2]);
                }
            }
            return;
        }
        // Rows 2p and 2p + 1 of the chunk, 16 columns at a time, interleaved; the pairs past
        // `k` and the tiles past `n`: zeros.
        let pairs = ks.len().div_ceil(2);
        for c0 in (0..n).step_by(16) {
            let width = 16.min(n - c0);
            let tile = (c0 / BLOCK * 2 + c0 % BLOCK / 16) * TILE;
            for pair in 0..pairs {
                let k0 = ks.start + pair * 2;
                let row = |kk: usize| {
                    let start = (kk - first_row) * matrix.row_stride + c0;
                    &matrix.data[start..start + width]
                };
                let second = (k0 + 1 < ks.end).then(|| row(k0 + 1));
                let at = tile + pair * 32;
                let dst: &mut [u16; 32] = (&mut out[at..at + 32]).try_into().expect("32");
                convert::pair_of_rows(isa, row(k0), second, dst);
            }
            out[tile + pairs * 32..tile + TILE].fill(0);
        }
        out[n.div_ceil(16) * TILE..].fill(0);
    };
    let pack = |(chunk, out): (usize, &mut [u16])| {
        let ks = chunk * K_CHUNK..(chunk * K_CHUNK + K_CHUNK).min(k);
        match rhs {
            Source::Matrix(matrix) => pack_chunk(ks, matrix, 0, out),
            // A row source writes the chunk's rows into a buffer, read as a row-major matrix
            // whose first row is the chunk's.
            Source::Rows(fill) => scratch::with_f32(ks.len() * n, |buffer| {
                fill(ks.clone(), buffer);
                pack_chunk(ks.clone(), Operand::rows(buffer, n), ks.start, out);
            }),
        }
    };
    let chunks = packed.chunks_mut(chunk_len.max(1)).enumerate();
    if parallel {
        chunks.collect::<Vec<_>>().into_par_iter().for_each(pack);
    } else {
        chunks.for_each(pack);
    }
    packed
}

/// f32 -> bf16 conversions of the packing, vectorised with AVX512-BF16's `VCVTNE2PS2BF16`
/// (every CPU an [`Isa`] was detected on has it): round to nearest even like [`to_bf16`], with
/// one difference: it reads subnormal inputs as zero (so do AMX's and `vdpbf16ps`'s products,
/// Intel SDM), where `to_bf16` keeps them. Off x86_64, `to_bf16` itself.
mod convert {
    use super::Isa;
    #[cfg(not(target_arch = "x86_64"))]
    use super::to_bf16;

    /// `src` (at most 32 values) into `dst`, zeros after it.
    pub fn row(isa: Isa, src: &[f32], dst: &mut [u16; 32]) {
        assert!(src.len() <= 32);
        #[cfg(target_arch = "x86_64")]
        {
            let _ = isa;
            // SAFETY: an `Isa` is only detected where avx512f, avx512bw and avx512bf16 are.
            unsafe { x86::row(src, dst) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = isa;
            dst.fill(0);
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = to_bf16(v);
            }
        }
    }

    /// `a` and `b` (at most 16 values each; `None`: zeros) interleaved into `dst` as
    /// `a0 b0 a1 b1 ...`, zeros past their ends.
    pub fn pair_of_rows(isa: Isa, a: &[f32], b: Option<&[f32]>, dst: &mut [u16; 32]) {
        assert!(a.len() <= 16 && b.is_none_or(|b| b.len() == a.len()));
        #[cfg(target_arch = "x86_64")]
        {
            let _ = isa;
            // SAFETY: as in `row`.
            unsafe { x86::pair_of_rows(a, b, dst) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = isa;
            dst.fill(0);
            for (i, &v) in a.iter().enumerate() {
                dst[2 * i] = to_bf16(v);
                dst[2 * i + 1] = b.map_or(0, |b| to_bf16(b[i]));
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use std::arch::x86_64::*;

        /// The lanes `0..len` of a 16-lane mask.
        fn mask(len: usize) -> __mmask16 {
            ((1u32 << len) - 1) as __mmask16
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
        pub unsafe fn row(src: &[f32], dst: &mut [u16; 32]) {
            let (lo, hi) = (src.len().min(16), src.len().saturating_sub(16));
            // SAFETY: masked loads read only lanes inside `src`; the store writes the 64
            // bytes of `dst`.
            unsafe {
                let a = _mm512_maskz_loadu_ps(mask(lo), src.as_ptr());
                let b = _mm512_maskz_loadu_ps(mask(hi), src.as_ptr().add(lo));
                // Lanes 0-15 from `a`, 16-31 from `b`: the values in order.
                let v = _mm512_cvtne2ps_pbh(b, a);
                _mm512_storeu_si512(
                    dst.as_mut_ptr().cast(),
                    std::mem::transmute::<__m512bh, __m512i>(v),
                );
            }
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
        pub unsafe fn pair_of_rows(a: &[f32], b: Option<&[f32]>, dst: &mut [u16; 32]) {
            let m = mask(a.len());
            // SAFETY: as in `row`; `b` has `a`'s length (asserted by the caller).
            unsafe {
                let va = _mm512_maskz_loadu_ps(m, a.as_ptr());
                let vb = match b {
                    Some(b) => _mm512_maskz_loadu_ps(m, b.as_ptr()),
                    None => _mm512_setzero_ps(),
                };
                // [a0..a15, b0..b15] as bf16, then interleaved: a0 b0 a1 b1 ...
                let both = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(vb, va));
                let order = _mm512_set_epi16(
                    31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                    5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0,
                );
                _mm512_storeu_si512(
                    dst.as_mut_ptr().cast(),
                    _mm512_permutexvar_epi16(order, both),
                );
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::to_bf16;
        use super::*;

        /// The vector conversions equal `to_bf16` on ordinary values, every length.
        #[test]
        fn vector_conversions_round_like_to_bf16() {
            let Some(isa) = Isa::detect() else { return };
            let values: Vec<f32> = (0..32)
                .map(|i| (i as f32 - 13.3) * 0.37e-2 + 1.0 / 3.0)
                .collect();
            for len in 0..=32 {
                let mut dst = [7u16; 32];
                row(isa, &values[..len], &mut dst);
                for i in 0..32 {
                    let want = if i < len { to_bf16(values[i]) } else { 0 };
                    assert_eq!(dst[i], want, "row, len {len} [{i}]");
                }
            }
            for len in 0..=16 {
                let (a, b) = (&values[..len], &values[16..16 + len]);
                for second in [Some(b), None] {
                    let mut dst = [7u16; 32];
                    pair_of_rows(isa, a, second, &mut dst);
                    for i in 0..16 {
                        let (wa, wb) = match (i < len, second) {
                            (true, Some(b)) => (to_bf16(a[i]), to_bf16(b[i])),
                            (true, None) => (to_bf16(a[i]), 0),
                            (false, _) => (0, 0),
                        };
                        assert_eq!(
                            [dst[2 * i], dst[2 * i + 1]],
                            [wa, wb],
                            "pair, len {len} [{i}]"
                        );
                    }
                }
            }
        }
    }
}

/// A slot of a GEMM's destination: overwritten, added to, or written for the first time.
trait Slot: Send {
    fn store(&mut self, value: f32, accumulate: bool);
}

impl Slot for f32 {
    fn store(&mut self, value: f32, accumulate: bool) {
        if accumulate {
            *self += value;
        } else {
            *self = value;
        }
    }
}

impl Slot for MaybeUninit<f32> {
    fn store(&mut self, value: f32, _: bool) {
        self.write(value);
    }
}

/// What one 32 x 32 block of the product reads: its A panel (two tiles per chunk, one chunk
/// after another: [`PackedLhs`]) and its B tiles (two per chunk, `b_stride` bf16 from one
/// chunk's to the next: [`pack_rhs`]), `chunks` chunks of 32 k. Built only by [`Panels::new`],
/// which checks that every tile the kernels read lies inside the slices.
pub(crate) struct Panels<'a> {
    a: &'a [u16],
    b: &'a [u16],
    b_stride: usize,
    chunks: usize,
}

impl<'a> Panels<'a> {
    fn new(a: &'a [u16], b: &'a [u16], b_stride: usize, chunks: usize) -> Self {
        assert!(
            chunks > 0 && a.len() >= chunks * 2 * TILE,
            "A panel of {chunks} chunks"
        );
        assert!(
            b_stride >= 2 * TILE && b.len() >= (chunks - 1) * b_stride + 2 * TILE,
            "B tiles of {chunks} chunks, {b_stride} apart"
        );
        Self {
            a,
            b,
            b_stride,
            chunks,
        }
    }
}

/// `dst[m, n] = lhs[m, k] · rhs[k, n]` (or `+=` into [`Destination::Accumulate`]), every
/// product of bf16-rounded operands, summed in f32, with `isa`; packing and bands of 32 rows
/// in parallel on rayon's pool when `parallel`. Every slot of an `Overwrite` or `Uninit`
/// destination is written, none read.
pub(crate) fn matmul(
    isa: Isa,
    n: usize,
    dst: Destination,
    lhs: &PackedLhs,
    rhs: Source,
    parallel: bool,
) {
    let (m, k) = (lhs.m, lhs.k);
    match dst {
        Destination::Overwrite(dst) => matmul_into(isa, n, dst, false, lhs, rhs, parallel),
        Destination::Accumulate(dst) => matmul_into(isa, n, dst, true, lhs, rhs, parallel),
        Destination::Uninit(dst) => {
            assert_eq!(dst.len(), m * n, "bf16 gemm destination length");
            assert!(
                k > 0,
                "an empty product would leave the destination unwritten"
            );
            matmul_into(isa, n, dst, false, lhs, rhs, parallel)
        }
    }
}

fn matmul_into<T: Slot>(
    isa: Isa,
    n: usize,
    dst: &mut [T],
    accumulate: bool,
    lhs: &PackedLhs,
    rhs: Source,
    parallel: bool,
) {
    let (m, k) = (lhs.m, lhs.k);
    assert!(dst.len() >= m * n, "bf16 gemm destination too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].iter_mut().for_each(|d| d.store(0.0, false));
        }
        return;
    }
    let b = pack_rhs(isa, rhs, [k, n], parallel);
    let chunks = k.div_ceil(K_CHUNK);
    // bf16 values from one chunk's tiles of a column block to the next chunk's.
    let b_stride = n.div_ceil(BLOCK) * 2 * TILE;
    let (m_blocks, n_blocks) = (m.div_ceil(BLOCK), n.div_ceil(BLOCK));
    // One task per band of 32 rows of `dst`: its blocks of 32 columns one after another, a
    // slice of `K_SLICE` chunks at a time, so that the band's A slice stays in L1 while B's
    // slices stream past it (over the whole of k, both panels came from L2 and the tile loads,
    // not the products, set the pace). The band's sums wait in `sums` between slices.
    let band = |(mb, rows): (usize, &mut [T])| {
        let a_panel = lhs.panel(mb);
        let _tiles = (isa == Isa::Amx).then(amx::Tiles::configure);
        scratch::with_f32(n_blocks * BLOCK * BLOCK, |sums| {
            for first in (0..chunks).step_by(K_SLICE) {
                let slice = K_SLICE.min(chunks - first);
                for (nb, c) in sums.chunks_exact_mut(BLOCK * BLOCK).enumerate() {
                    let c: &mut [f32; BLOCK * BLOCK] = c.try_into().expect("a block");
                    let a = &a_panel[first * 2 * TILE..];
                    let b = &b[first * b_stride + nb * 2 * TILE..];
                    let panels = Panels::new(a, b, b_stride, slice);
                    // The first slice starts from zero (`sums` holds stale values).
                    let add = first > 0;
                    match isa {
                        Isa::Amx => amx::block(&panels, c, add),
                        Isa::Avx512Bf16 => avx512::block(&panels, c, add),
                    }
                }
            }
            for (nb, c) in sums.chunks_exact(BLOCK * BLOCK).enumerate() {
                let (cols, first) = (BLOCK.min(n - nb * BLOCK), nb * BLOCK);
                for (r, row) in rows.chunks_mut(n).enumerate() {
                    let src = &c[r * BLOCK..r * BLOCK + cols];
                    for (slot, &value) in row[first..first + cols].iter_mut().zip(src) {
                        slot.store(value, accumulate);
                    }
                }
            }
        });
    };
    let bands = dst[..m * n].chunks_mut(BLOCK * n).enumerate();
    if parallel && m_blocks * n_blocks > 1 {
        bands.collect::<Vec<_>>().into_par_iter().for_each(band);
    } else {
        bands.for_each(band);
    }
    scratch::give_bf16(b);
}

#[cfg(target_arch = "x86_64")]
mod amx {
    use super::{BLOCK, Panels};
    use std::arch::asm;

    /// `arch_prctl` codes (Linux `asm/prctl.h`) and the tile-data state component.
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;

    /// The CPU has AMX-TILE and AMX-BF16 (CPUID leaf 7, EDX bits 24 and 22) and Linux granted
    /// this process the tile data.
    pub fn available() -> bool {
        // Leaf 7 is read only where leaf 0 says it exists.
        if std::arch::x86_64::__cpuid(0).eax < 7 {
            return false;
        }
        let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
        let (tile, bf16) = (edx >> 24 & 1 == 1, edx >> 22 & 1 == 1);
        tile && bf16 && cfg!(target_os = "linux") && request_permission()
    }

    /// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: 0 when granted (for every thread
    /// of the process).
    fn request_permission() -> bool {
        let ret: i64;
        // SAFETY: a raw Linux syscall with two integer arguments; it reads and writes no
        // memory of ours. `syscall` clobbers rcx and r11.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret == 0
    }

    /// The tile configuration `LDTILECFG` reads (64 bytes, palette 1).
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    /// The 8 tiles configured 16 rows x 64 bytes on this thread while it lives; released
    /// (`TILERELEASE`) when dropped.
    pub struct Tiles(());

    impl Tiles {
        pub fn configure() -> Self {
            let mut config = TileConfig {
                palette: 1,
                start_row: 0,
                reserved: [0; 14],
                bytes_per_row: [0; 16],
                rows: [0; 16],
            };
            config.bytes_per_row[..8].fill(64);
            config.rows[..8].fill(16);
            // SAFETY: only called after `available()` granted the tile state; the config is
            // a valid palette-1 configuration of 64 aligned bytes.
            unsafe { asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly)) };
            Tiles(())
        }
    }

    impl Drop for Tiles {
        fn drop(&mut self) {
            // SAFETY: releases the configuration `configure` made on this thread.
            unsafe { asm!("tilerelease", options(nostack, nomem)) };
        }
    }

    /// `c[32 x 32] = A · B` of the panels (`add`: `c += A · B`), on tiles a [`Tiles`] guard
    /// configured.
    pub fn block(p: &Panels, c: &mut [f32; BLOCK * BLOCK], add: bool) {
        // SAFETY: the loop reads `chunks` pairs of 1 KiB tiles from A (contiguous) and from B
        // (`b_stride` apart), all inside the slices (`Panels::new` checked); the block `c`
        // (4 KiB, 128-byte rows, four 16 x 16 tiles) is read with `add` and written.
        unsafe {
            asm!(
                "test {add}, {add}",
                "jz 3f",
                "tileloadd tmm0, [{c} + {c_row}*1]",
                "tileloadd tmm1, [{c} + {c_row}*1 + 64]",
                "tileloadd tmm2, [{c} + {c_row}*1 + 2048]",
                "tileloadd tmm3, [{c} + {c_row}*1 + 2112]",
                "jmp 2f",
                "3:",
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                "2:",
                "tileloadd tmm4, [{a} + {row}*1]",
                "tileloadd tmm5, [{a} + {row}*1 + 1024]",
                "tileloadd tmm6, [{b} + {row}*1]",
                "tileloadd tmm7, [{b} + {row}*1 + 1024]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                "add {a}, 2048",
                "add {b}, {b_step}",
                "dec {n}",
                "jnz 2b",
                "tilestored [{c} + {c_row}*1], tmm0",
                "tilestored [{c} + {c_row}*1 + 64], tmm1",
                "tilestored [{c} + {c_row}*1 + 2048], tmm2",
                "tilestored [{c} + {c_row}*1 + 2112], tmm3",
                a = inout(reg) p.a.as_ptr() => _,
                b = inout(reg) p.b.as_ptr() => _,
                b_step = in(reg) p.b_stride * 2,
                n = inout(reg) p.chunks => _,
                row = in(reg) 64usize,
                c = in(reg) c.as_mut_ptr(),
                c_row = in(reg) 128usize,
                add = in(reg) usize::from(add),
                options(nostack),
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{BLOCK, Panels, TILE};
    use std::arch::x86_64::*;

    /// `c[32 x 32] = A · B` of the panels (`add`: `c += A · B`) with `vdpbf16ps`: per 8
    /// rows, two zmm accumulators a row (its 32 columns); each k-pair of a row broadcast
    /// against the B tiles' row of that pair.
    pub fn block(p: &Panels, c: &mut [f32; BLOCK * BLOCK], add: bool) {
        // SAFETY: `Isa::detect` chose this path only where avx512bf16 and avx512f exist.
        unsafe { block_avx512(p, c, add) }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn block_avx512(p: &Panels, c: &mut [f32; BLOCK * BLOCK], add: bool) {
        let (a, b, b_stride, chunks) = (p.a, p.b, p.b_stride, p.chunks);
        for group in 0..4 {
            let (half, first) = (group / 2, (group % 2) * 8);
            let mut acc = [[_mm512_setzero_ps(); 2]; 8];
            if add {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = &c[(half * 16 + first + r) * BLOCK..][..BLOCK];
                    // SAFETY: two loads of 16 f32 inside the row's 32.
                    unsafe {
                        acc[0] = _mm512_loadu_ps(row.as_ptr());
                        acc[1] = _mm512_loadu_ps(row[16..].as_ptr());
                    }
                }
            }
            for chunk in 0..chunks {
                let a_tile = &a[(chunk * 2 + half) * TILE..][..TILE];
                let b_tiles = &b[chunk * b_stride..][..2 * TILE];
                for pair in 0..16 {
                    // SAFETY: each load reads 32 bf16 (64 bytes) inside its tile.
                    let (left, right) = unsafe {
                        (
                            _mm512_loadu_si512(b_tiles[pair * 32..].as_ptr().cast()),
                            _mm512_loadu_si512(b_tiles[TILE + pair * 32..].as_ptr().cast()),
                        )
                    };
                    let (left, right) = (m512bh(left), m512bh(right));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let at = (first + r) * 32 + pair * 2;
                        // SAFETY: the pair `at, at + 1` is inside the tile (`at + 1 < TILE`).
                        let two = unsafe { a_tile.as_ptr().add(at).cast::<i32>().read_unaligned() };
                        let broadcast = m512bh(_mm512_set1_epi32(two));
                        acc[0] = _mm512_dpbf16_ps(acc[0], broadcast, left);
                        acc[1] = _mm512_dpbf16_ps(acc[1], broadcast, right);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                let row = half * 16 + first + r;
                // SAFETY: two stores of 16 f32 inside row `row` (32 f32) of `c`.
                unsafe {
                    _mm512_storeu_ps(c[row * BLOCK..].as_mut_ptr(), acc[0]);
                    _mm512_storeu_ps(c[row * BLOCK + 16..].as_mut_ptr(), acc[1]);
                }
            }
        }
    }

    /// The 512 bits of `v` as 32 bf16 values.
    #[inline(always)]
    fn m512bh(v: __m512i) -> __m512bh {
        // SAFETY: both are 512-bit vectors; any bit pattern is a valid bf16 vector.
        unsafe { std::mem::transmute(v) }
    }
}

/// Off x86_64 [`Isa::detect`] finds nothing, so the kernels are never called.
#[cfg(not(target_arch = "x86_64"))]
mod amx {
    pub struct Tiles;

    impl Tiles {
        pub fn configure() -> Self {
            unreachable!("no AMX off x86_64")
        }
    }

    pub fn block(_: &super::Panels, _: &mut [f32; super::BLOCK * super::BLOCK], _: bool) {
        unreachable!("no AMX off x86_64")
    }

    pub fn available() -> bool {
        false
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub fn block(_: &super::Panels, _: &mut [f32; super::BLOCK * super::BLOCK], _: bool) {
        unreachable!("no AVX512-BF16 off x86_64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lhs · rhs` of the bf16-rounded operands, each product and sum in f64.
    fn reference([m, n, k]: [usize; 3], lhs: &Operand, rhs: &Operand) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|p| {
                        let (a, b) = (lhs.at(i, p), rhs.at(p, j));
                        f64::from(from_bf16(to_bf16(a))) * f64::from(from_bf16(to_bf16(b)))
                    })
                    .sum();
            }
        }
        out
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3F80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even 1.0.
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3F80);
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: rounds up to even.
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3F82);
        assert_eq!(to_bf16(-2.5), 0xC020);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        assert_eq!(
            from_bf16(to_bf16(f32::MAX)),
            f32::INFINITY,
            "rounds past the largest"
        );
    }

    /// Every ISA this CPU has, against the bf16-operand reference: shapes with edges in every
    /// dimension, transposed operands, accumulation, serial and parallel.
    #[test]
    fn every_isa_matches_the_bf16_reference() {
        let isas = Isa::available();
        eprintln!("bf16 matrix instructions checked on this CPU: {isas:?}");
        let shapes = [
            [1, 1, 1],
            [32, 32, 32],
            [16, 48, 64],
            [33, 31, 65],
            [64, 200, 576],
            [7, 70, 9],
            [100, 3, 1000],
        ];
        for isa in isas {
            for (s, [m, n, k]) in shapes.into_iter().enumerate() {
                for (transposed_lhs, transposed_rhs) in
                    [(false, false), (true, true), (false, true)]
                {
                    let a = values(m * k, s as u64 * 2 + 1);
                    let b = values(k * n, s as u64 * 2 + 2);
                    let lhs = match transposed_lhs {
                        true => Operand::transpose_of(&a, m),
                        false => Operand::rows(&a, k),
                    };
                    let rhs = match transposed_rhs {
                        true => Operand::transpose_of(&b, k),
                        false => Operand::rows(&b, n),
                    };
                    let want = reference([m, n, k], &lhs, &rhs);
                    for parallel in [false, true] {
                        let (lhs_matrix, rhs_matrix) = (lhs, rhs);
                        let packed = PackedLhs::new(isa, Source::Matrix(lhs), [m, k], parallel);
                        let rhs = Source::Matrix(rhs);
                        let mut dst = vec![f32::NAN; m * n];
                        let overwrite = Destination::Overwrite(&mut dst);
                        matmul(isa, n, overwrite, &packed, rhs, parallel);
                        // f32 sums of k products of magnitude <= 4: error under k * 4 * 2^-24
                        // per step, bounded here by 1e-6 * k * 4 with room.
                        let tolerance = 4e-6 * k as f64 + 1e-6;
                        for (i, (&got, &want)) in dst.iter().zip(&want).enumerate() {
                            assert!(
                                (f64::from(got) - want).abs() <= tolerance,
                                "{isa:?} {m}x{n}x{k} ({transposed_lhs}, {transposed_rhs}) [{i}]: {got} vs {want}"
                            );
                        }
                        // Accumulating adds the same product again.
                        let accumulate = Destination::Accumulate(&mut dst);
                        matmul(isa, n, accumulate, &packed, rhs, parallel);
                        for (&got, &want) in dst.iter().zip(&want) {
                            assert!((f64::from(got) - 2.0 * want).abs() <= 2.0 * tolerance);
                        }
                        // Row sources (im2col's way in) pack the same tiles.
                        let a_rows = |rows: Range<usize>, out: &mut [f32]| {
                            for (i, r) in rows.enumerate() {
                                for kk in 0..k {
                                    out[i * k + kk] = lhs_matrix.at(r, kk);
                                }
                            }
                        };
                        let b_rows = |rows: Range<usize>, out: &mut [f32]| {
                            for (i, kk) in rows.enumerate() {
                                for j in 0..n {
                                    out[i * n + j] = rhs_matrix.at(kk, j);
                                }
                            }
                        };
                        let from_rows =
                            PackedLhs::new(isa, Source::Rows(&a_rows), [m, k], parallel);
                        let mut again = vec![f32::NAN; m * n];
                        let overwrite = Destination::Overwrite(&mut again);
                        matmul(
                            isa,
                            n,
                            overwrite,
                            &from_rows,
                            Source::Rows(&b_rows),
                            parallel,
                        );
                        let first = &dst;
                        assert!(
                            again
                                .iter()
                                .zip(first)
                                .all(|(a, b)| (a - b / 2.0).abs() <= 1e-6 * b.abs()),
                            "{isa:?} {m}x{n}x{k}: row sources"
                        );
                        // Uninitialised slots are all written.
                        let mut slots = vec![MaybeUninit::new(f32::NAN); m * n];
                        let uninit = Destination::Uninit(&mut slots);
                        matmul(isa, n, uninit, &packed, rhs, parallel);
                        // SAFETY: every slot was initialised (to NaN) before the product.
                        let written = unsafe { crate::kernels::uninit::assume_init(slots) };
                        assert!(written.iter().all(|v| v.is_finite()), "{isa:?} uninit");
                    }
                }
            }
        }
    }

    /// The packing reuses buffers without clearing them: after products of NaNs filled this
    /// thread's pools, every padding value of later packings is written (a stale NaN there
    /// would turn a product into NaN, even times zero).
    #[test]
    fn stale_pool_buffers_never_leak_into_products() {
        for isa in Isa::available() {
            let nan = vec![f32::NAN; 96 * 96];
            for transposed in [false, true] {
                let operand = Operand {
                    data: &nan,
                    row_stride: 96,
                    transposed,
                };
                let packed = PackedLhs::new(isa, Source::Matrix(operand), [96, 96], false);
                let mut dst = vec![0.0; 96 * 96];
                let dst = Destination::Overwrite(&mut dst);
                matmul(isa, 96, dst, &packed, Source::Matrix(operand), false);
            }
            let poison = |_: Range<usize>, out: &mut [f32]| out.fill(f32::NAN);
            let packed = PackedLhs::new(isa, Source::Rows(&poison), [96, 96], false);
            let mut dst = vec![0.0; 96 * 96];
            matmul(
                isa,
                96,
                Destination::Overwrite(&mut dst),
                &packed,
                Source::Rows(&poison),
                false,
            );
            drop(packed);
            // Odd shapes: padding in every dimension, on both operands, both layouts.
            for [m, n, k] in [[5, 7, 3], [33, 17, 45], [1, 40, 70]] {
                let (a, b) = (values(m * k, 5), values(k * n, 6));
                for (lhs, rhs) in [
                    (Operand::rows(&a, k), Operand::rows(&b, n)),
                    (Operand::transpose_of(&a, m), Operand::transpose_of(&b, k)),
                ] {
                    let packed = PackedLhs::new(isa, Source::Matrix(lhs), [m, k], false);
                    let mut dst = vec![f32::NAN; m * n];
                    let overwrite = Destination::Overwrite(&mut dst);
                    matmul(isa, n, overwrite, &packed, Source::Matrix(rhs), false);
                    assert!(dst.iter().all(|v| v.is_finite()), "{isa:?} {m}x{n}x{k}");
                }
            }
        }
    }

    #[test]
    fn an_empty_product_writes_zeros_or_leaves_the_sum() {
        let Some(isa) = Isa::detect() else { return };
        let none: [f32; 0] = [];
        let empty = Operand::rows(&none, 0);
        let packed = PackedLhs::new(isa, Source::Matrix(empty), [2, 0], false);
        let empty = Source::Matrix(empty);
        let mut dst = vec![5.0f32; 6];
        matmul(
            isa,
            3,
            Destination::Accumulate(&mut dst),
            &packed,
            empty,
            false,
        );
        assert_eq!(dst, [5.0; 6]);
        matmul(
            isa,
            3,
            Destination::Overwrite(&mut dst),
            &packed,
            empty,
            false,
        );
        assert_eq!(dst, [0.0; 6]);
    }
}
