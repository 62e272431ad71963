//! 2-D convolution as im2col + one GEMM per block of samples, forward and both gradients, on
//! plain NCHW `f32` slices (no burn types here: `conv.rs` wraps these for flex).
//!
//! Why this exists: burn-flex 0.22 computes a convolution's weight gradient as a convolution of
//! the transposed input with the output gradient as the kernel, and its input gradient through
//! a transposed convolution, both far slower than PyTorch's for CIFAR ResNet-18
//! (`docs/benchmarks.md`, Models, has the measurements). Here every pass is the textbook lowering
//! (Chellapilla et al. 2006, the layout of Caffe and PyTorch's slow path):
//!
//! - forward:        `Y[:, b]  = W · col(X[b])`            `[C_out, K] x [K, cols]`
//! - weight gradient: `dWᵀ    += col(X[b]) · dY[:, b]ᵀ`    `[K, cols] x [cols, C_out]`
//! - input gradient:  `dX[b]   = col2im(W^T · dY[:, b])`    `[K, C_out] x [C_out, cols]`
//!
//! with `K = C_in·kh·kw` and a block `b` of whole samples whose `cols = samples·H_out·W_out`
//! is large enough for the GEMM to run near peak (small maps are batched over samples, large
//! ones go one sample at a time, so the column buffer stays a few MB). Blocks run in parallel
//! on rayon, one single-threaded GEMM each; below one block per thread the GEMM itself is
//! parallel instead. The column matrix is rebuilt in the backward pass rather than stored:
//! a copy costs far less than the GEMM it feeds and saves hundreds of MB per layer.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use crate::kernels::bf16_gemm::{self, Source};
use crate::kernels::matrix::{Destination, Operand};
use crate::kernels::precision::Products;
use crate::kernels::uninit::{assume_init, uninit, zeroed};

/// Shape of one convolution: NCHW input, OIHW weight, no groups, no dilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Padding before the first row and column (the end padding only shows in `h_out`/`w_out`).
    pub pad: [usize; 2],
    pub h_out: usize,
    pub w_out: usize,
}

/// Columns per GEMM below which small feature maps are batched over several samples.
const TARGET_COLUMNS: usize = 1024;

impl ConvGeometry {
    /// Rows of the column matrix: `C_in·kh·kw`.
    fn k(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    fn out_pixels(&self) -> usize {
        self.h_out * self.w_out
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h * self.w
    }

    pub fn weight_len(&self) -> usize {
        self.c_out * self.k()
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.out_pixels()
    }

    /// Samples per block: enough for `TARGET_COLUMNS` columns, but at least two blocks per
    /// thread when the batch allows it, so the threads stay balanced.
    fn samples_per_block(&self, threads: usize) -> usize {
        let for_columns = TARGET_COLUMNS.div_ceil(self.out_pixels().max(1));
        let for_balance = (self.batch / (2 * threads)).max(1);
        for_columns.min(for_balance).clamp(1, self.batch.max(1))
    }
}

/// How the blocks share the threads, and how their GEMMs multiply.
#[derive(Clone, Copy)]
struct Plan {
    samples: usize,
    blocks: usize,
    /// Blocks run one per task with single-threaded GEMMs; otherwise blocks run in turn and
    /// each GEMM uses every thread.
    parallel_blocks: bool,
    products: Products,
}

impl Plan {
    fn new(g: &ConvGeometry, products: Products) -> Self {
        let threads = rayon::current_num_threads().max(1);
        let samples = g.samples_per_block(threads);
        let blocks = g.batch.div_ceil(samples);
        Self {
            samples,
            blocks,
            parallel_blocks: threads > 1 && blocks >= threads,
            products,
        }
    }

    fn gemm(&self) -> Gemm {
        Gemm {
            products: self.products,
            parallel: !self.parallel_blocks,
        }
    }

    /// How an operand shared by every block is packed: once, before the blocks, on every
    /// thread.
    fn packing(&self) -> Gemm {
        Gemm {
            products: self.products,
            parallel: true,
        }
    }

    /// Samples `[start, end)` of block `index`.
    fn range(&self, index: usize, batch: usize) -> (usize, usize) {
        let start = index * self.samples;
        (start, (start + self.samples).min(batch))
    }
}

thread_local! {
    /// Per-thread scratch (column matrix, gathered output gradient), reused across calls so
    /// the hot loop does not page-fault fresh `mmap`ed buffers in every layer.
    static SCRATCH: Cell<(Vec<f32>, Vec<f32>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` with this thread's two scratch buffers resized to `a` and `b` elements.
///
/// The buffers are taken out of the thread-local for the duration, not borrowed: `f` may wait
/// in a GEMM running on rayon, and a waiting rayon thread runs other tasks, possibly another
/// convolution that wants this thread's scratch too. That one finds the slot empty and works
/// on fresh buffers; whichever call finishes last leaves its buffers for the next.
fn with_scratch<R>(a: usize, b: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    let (mut first, mut second) = SCRATCH.take();
    first.resize(a, 0.0);
    second.resize(b, 0.0);
    let result = f(&mut first[..a], &mut second[..b]);
    SCRATCH.set((first, second));
    result
}

/// How one GEMM runs: its products (f32, or bf16 operands with f32 sums) and whether it
/// spreads over rayon's threads itself.
#[derive(Clone, Copy)]
struct Gemm {
    products: Products,
    parallel: bool,
}

/// A GEMM's left operand as its products take it: f32 values, or bf16 tiles packed once for
/// every GEMM that shares it (a convolution's weights, over all its blocks of samples).
enum Lhs<'a> {
    F32(Operand<'a>),
    Bf16(bf16_gemm::Isa, bf16_gemm::PackedLhs),
}

impl<'a> Lhs<'a> {
    /// `lhs` (`m x k`) for GEMMs with `how`'s products (packed in parallel if `how` is).
    fn new(lhs: Operand<'a>, [m, k]: [usize; 2], how: Gemm) -> Self {
        match how.products {
            Products::F32 => Lhs::F32(lhs),
            Products::Bf16(isa) => {
                let lhs = Source::Matrix(lhs);
                Lhs::Bf16(
                    isa,
                    bf16_gemm::PackedLhs::new(isa, lhs, [m, k], how.parallel),
                )
            }
        }
    }
}

/// The column matrix of samples `range` as a GEMM's right operand: written whole into `col`
/// for f32 products; for bf16 ones the row source the packing calls a chunk of rows at a time
/// (`bf16_gemm::Source::Rows`), `col` unused (empty: [`col_scratch_len`]).
fn column_source<'a>(
    products: Products,
    fill: &'a (dyn Fn(Range<usize>, &mut [f32]) + Sync),
    [k, cols]: [usize; 2],
    col: &'a mut [f32],
) -> Source<'a> {
    match products {
        Products::F32 => {
            fill(0..k, col);
            Source::Matrix(Operand::rows(col, cols))
        }
        Products::Bf16(_) => Source::Rows(fill),
    }
}

/// Scratch for the column matrix of `cols` columns: all of it for f32 products, none for bf16
/// ones (packed straight from the input, [`column_source`]).
fn col_scratch_len(products: Products, k: usize, cols: usize) -> usize {
    match products {
        Products::F32 => k * cols,
        Products::Bf16(_) => 0,
    }
}

/// `dst[m, n] = lhs[m, k] · rhs[k, n]`, or `+=` into [`Destination::Accumulate`].
fn matmul([m, n, k]: [usize; 3], dst: Destination, lhs: &Lhs, rhs: Source, how: Gemm) {
    let lhs = match lhs {
        Lhs::F32(lhs) => lhs,
        Lhs::Bf16(isa, packed) => {
            return bf16_gemm::matmul(*isa, n, dst, packed, rhs, how.parallel);
        }
    };
    // f32 products read a matrix (a row source is written out whole first).
    let rows;
    let rhs = match rhs {
        Source::Matrix(rhs) => rhs,
        Source::Rows(fill) => {
            rows = {
                let mut rows = vec![0.0; k * n];
                fill(0..k, &mut rows);
                rows
            };
            Operand::rows(&rows, n)
        }
    };
    let parallelism = if how.parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let (dst, dst_len, read_dst) = match dst {
        Destination::Overwrite(dst) => (dst.as_mut_ptr(), dst.len(), false),
        Destination::Accumulate(dst) => (dst.as_mut_ptr(), dst.len(), true),
        Destination::Uninit(dst) => {
            // Exactly m x n slots and a non-empty product: the caller reads them all as written.
            assert_eq!(dst.len(), m * n, "gemm destination length");
            assert!(
                k > 0,
                "an empty product would leave the destination unwritten"
            );
            (dst.as_mut_ptr().cast::<f32>(), dst.len(), false)
        }
    };
    assert!(dst_len >= m * n, "gemm destination too small");
    let (lhs_cs, lhs_rs) = lhs.strides();
    let (rhs_cs, rhs_rs) = rhs.strides();
    // Bounds of the strided operands, so the call below cannot read past them.
    let last = |rows: usize, cols: usize, (cs, rs): (isize, isize)| {
        (rows.max(1) - 1) * rs as usize + (cols.max(1) - 1) * cs as usize
    };
    assert!(m == 0 || k == 0 || last(m, k, (lhs_cs, lhs_rs)) < lhs.data.len());
    assert!(k == 0 || n == 0 || last(k, n, (rhs_cs, rhs_rs)) < rhs.data.len());
    // gemm computes `dst := alpha·dst + beta·lhs·rhs`; with `read_dst` false it sets alpha to
    // zero and never reads `dst` (for `k = 0` it writes zeros). That is a fact of the pinned
    // gemm 0.19.0 (the workspace pins `=0.19.0`, also because burn-flex uses that version), and
    // what lets `Overwrite` and `Uninit` hand it stale or uninitialised slots. A new gemm
    // version must keep it: `gemm_never_reads_a_destination_it_overwrites` checks.
    //
    // SAFETY: every index the call touches is inside a slice: `dst` is row-major `m x n`
    // (column stride 1, row stride n), within `dst_len >= m·n` (the assert above); the
    // operands' last elements are inside `lhs.data` and `rhs.data` (the two `last(..)`
    // asserts). `dst` is a `&mut` borrow, so it aliases neither operand. gemm reads `dst` only
    // for `Accumulate`, whose slice is initialised `f32`s; `MaybeUninit<f32>` has `f32`'s
    // layout, so the `Uninit` cast is a valid `f32` pointer.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            read_dst,
            lhs.data.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.data.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Valid output range `[lo, hi)` along one axis for kernel offset `offset`: the outputs whose
/// input coordinate `o·stride - pad + offset` lands inside `[0, size)`.
fn valid_range(
    size: usize,
    out: usize,
    stride: usize,
    pad: usize,
    offset: usize,
) -> (usize, usize) {
    // o·stride + offset >= pad  and  o·stride + offset < size + pad
    let lo = pad.saturating_sub(offset).div_ceil(stride);
    let hi = if size + pad > offset {
        (size + pad - offset).div_ceil(stride)
    } else {
        0
    };
    (lo.min(out), hi.clamp(lo.min(out), out))
}

/// Fills `col` with rows `rows` of the column matrix (`[K, samples·H_out·W_out]`, row-major)
/// of samples `[start, end)` of `x`.
fn im2col(
    g: &ConvGeometry,
    x: &[f32],
    (start, end): (usize, usize),
    rows: Range<usize>,
    col: &mut [f32],
) {
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.pad;
    let pixels = g.out_pixels();
    let cols = (end - start) * pixels;
    let plane = g.h * g.w;
    assert_eq!(col.len(), rows.len() * cols, "im2col rows");
    let same_width = sh == 1 && sw == 1 && g.w_out == g.w;
    for (row_index, row) in rows.zip(col.chunks_exact_mut(cols)) {
        let (ci, ky, kx) = (row_index / (kh * kw), row_index / kw % kh, row_index % kw);
        let (oy_lo, oy_hi) = valid_range(g.h, g.h_out, sh, ph, ky);
        let (ox_lo, ox_hi) = valid_range(g.w, g.w_out, sw, pw, kx);
        let shift = (ky as isize - ph as isize) * g.w as isize + kx as isize - pw as isize;
        for (sample, dst) in (start..end).zip(row.chunks_exact_mut(pixels)) {
            let src = &x[(sample * g.c_in + ci) * plane..][..plane];
            if same_width {
                copy_shifted(src, dst, shift, (oy_lo, oy_hi), (ox_lo, ox_hi), g.w);
                continue;
            }
            dst[..oy_lo * g.w_out].fill(0.0);
            dst[oy_hi * g.w_out..].fill(0.0);
            for oy in oy_lo..oy_hi {
                let line = &mut dst[oy * g.w_out..][..g.w_out];
                let src_row = &src[(oy * sh + ky - ph) * g.w..][..g.w];
                line[..ox_lo].fill(0.0);
                line[ox_hi..].fill(0.0);
                if ox_lo < ox_hi {
                    let ix0 = ox_lo * sw + kx - pw;
                    if sw == 1 {
                        line[ox_lo..ox_hi].copy_from_slice(&src_row[ix0..ix0 + ox_hi - ox_lo]);
                    } else {
                        copy_strided(&mut line[ox_lo..ox_hi], &src_row[ix0..], sw);
                    }
                }
            }
        }
    }
}

/// One row of one sample's column matrix for a stride-1 convolution whose output is as wide
/// as its input (3x3 with padding 1, 1x1 without): output pixel `j` reads input pixel
/// `j + shift` (`shift = (ky - pad)·W + kx - pad`), so the valid lines `lines` are one
/// contiguous run of the input plane, copied at once instead of line by line (at 4x4 maps a
/// line is 16 bytes, and a call per line cost more than the copy). The run's pixels in the
/// columns outside `valid` read the neighbouring line's edge (or fall off the plane, where the
/// run is clipped): those are zeroed after, as is everything outside the lines.
fn copy_shifted(
    src: &[f32],
    dst: &mut [f32],
    shift: isize,
    (oy_lo, oy_hi): (usize, usize),
    (ox_lo, ox_hi): (usize, usize),
    w: usize,
) {
    let (lo, hi) = (oy_lo * w, oy_hi * w);
    if lo >= hi || ox_lo >= ox_hi {
        dst.fill(0.0);
        return;
    }
    // Clipped to the plane; only pixels of invalid columns lie outside it. `[a, b)` lies
    // within the valid lines `[lo, hi)`, so everything outside it is zero.
    let a = lo.max(shift.unsigned_abs() * usize::from(shift < 0));
    let b = hi.min(src.len().saturating_add_signed(-shift));
    let at = |j: usize| {
        j.checked_add_signed(shift)
            .expect("a clipped index is in the plane")
    };
    dst[a..b].copy_from_slice(&src[at(a)..at(b)]);
    dst[..a].fill(0.0);
    dst[b..].fill(0.0);
    if ox_lo > 0 || ox_hi < w {
        for oy in oy_lo..oy_hi {
            let line = &mut dst[oy * w..][..w];
            line[..ox_lo].fill(0.0);
            line[ox_hi..].fill(0.0);
        }
    }
}

/// `dst[i] = src[i·stride]` for every `i` of `dst`. Stride 2 (every downsampling convolution
/// of the zoo) goes through pairs, a loop the compiler vectorises (through `step_by` it copied
/// one element at a time, the hottest loop of im2col at width 8); other strides element by
/// element.
fn copy_strided(dst: &mut [f32], src: &[f32], stride: usize) {
    if stride == 2 {
        let pairs = src.chunks_exact(2);
        let (n, tail) = (pairs.len().min(dst.len()), pairs.remainder());
        for (d, pair) in dst[..n].iter_mut().zip(pairs) {
            *d = pair[0];
        }
        // An odd-length `src` holds one element past its last pair.
        if let Some(d) = dst.get_mut(n) {
            *d = tail[0];
        }
    } else {
        for (d, s) in dst.iter_mut().zip(src.iter().step_by(stride)) {
            *d = *s;
        }
    }
}

/// `dst[i·stride] += src[i]` for every `i` of `src`: the adjoint of [`copy_strided`].
fn add_strided(dst: &mut [f32], src: &[f32], stride: usize) {
    if stride == 2 {
        let mut pairs = dst.chunks_exact_mut(2);
        let n = pairs.len().min(src.len());
        for (pair, s) in pairs.by_ref().zip(&src[..n]) {
            pair[0] += *s;
        }
        if let Some(s) = src.get(n) {
            pairs.into_remainder()[0] += *s;
        }
    } else {
        for (d, s) in dst.iter_mut().step_by(stride).zip(src) {
            *d += *s;
        }
    }
}

/// Adds `col` (`[K, samples·H_out·W_out]`) back onto the samples' input gradient `dx_block`
/// (`[samples, C_in, H, W]`, zeroed): the adjoint of [`im2col`].
fn col2im(g: &ConvGeometry, col: &[f32], samples: usize, dx_block: &mut [f32]) {
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.pad;
    let pixels = g.out_pixels();
    let cols = samples * pixels;
    let plane = g.h * g.w;
    for (row_index, row) in col.chunks_exact(cols).enumerate() {
        let (ci, ky, kx) = (row_index / (kh * kw), row_index / kw % kh, row_index % kw);
        let (oy_lo, oy_hi) = valid_range(g.h, g.h_out, sh, ph, ky);
        let (ox_lo, ox_hi) = valid_range(g.w, g.w_out, sw, pw, kx);
        if ox_lo >= ox_hi {
            continue;
        }
        for (sample, src) in row.chunks_exact(pixels).enumerate() {
            let dst = &mut dx_block[(sample * g.c_in + ci) * plane..][..plane];
            for oy in oy_lo..oy_hi {
                let line = &src[oy * g.w_out..][..g.w_out];
                let dst_row = &mut dst[(oy * sh + ky - ph) * g.w..][..g.w];
                let ix0 = ox_lo * sw + kx - pw;
                if sw == 1 {
                    for (d, s) in dst_row[ix0..ix0 + ox_hi - ox_lo]
                        .iter_mut()
                        .zip(&line[ox_lo..ox_hi])
                    {
                        *d += *s;
                    }
                } else {
                    add_strided(&mut dst_row[ix0..], &line[ox_lo..ox_hi], sw);
                }
            }
        }
    }
}

/// Copies the output-gradient planes of samples `[start, end)` (`[samples, C_out, P]`) into
/// `dst` as one `[C_out, samples·P]` matrix, the layout the GEMMs read.
fn gather_channels_major(
    g: &ConvGeometry,
    dy: &[f32],
    (start, end): (usize, usize),
    dst: &mut [f32],
) {
    let pixels = g.out_pixels();
    let cols = (end - start) * pixels;
    for (co, row) in dst.chunks_exact_mut(cols).enumerate() {
        for (sample, part) in (start..end).zip(row.chunks_exact_mut(pixels)) {
            part.copy_from_slice(&dy[(sample * g.c_out + co) * pixels..][..pixels]);
        }
    }
}

/// Scratch the output-gradient block of `samples` samples needs: none for one sample, whose
/// `[C_out, P]` planes already are the GEMMs' layout.
fn dy_scratch_len(g: &ConvGeometry, samples: usize) -> usize {
    if samples == 1 {
        0
    } else {
        g.c_out * samples * g.out_pixels()
    }
}

/// The `[C_out, samples·P]` output gradient of samples `range`: borrowed from `dy` for one
/// sample, gathered into `scratch` (of [`dy_scratch_len`]) otherwise.
fn dy_block<'a>(
    g: &ConvGeometry,
    dy: &'a [f32],
    range: (usize, usize),
    scratch: &'a mut [f32],
) -> &'a [f32] {
    let pixels = g.out_pixels();
    if range.1 - range.0 == 1 {
        &dy[range.0 * g.c_out * pixels..][..g.c_out * pixels]
    } else {
        gather_channels_major(g, dy, range, scratch);
        scratch
    }
}

/// Inverse of [`gather_channels_major`]: `[C_out, samples·P]` back to `[samples, C_out, P]`.
fn scatter_channels_major(
    g: &ConvGeometry,
    src: &[f32],
    samples: usize,
    y_block: &mut [MaybeUninit<f32>],
) {
    let pixels = g.out_pixels();
    let cols = samples * pixels;
    // Source and destination hold the same `C_out·samples·P` values, so every slot of
    // `y_block` is written (the caller reads it as initialised).
    assert_eq!(src.len(), g.c_out * cols, "gathered output length");
    assert_eq!(y_block.len(), src.len(), "output block length");
    for (co, row) in src.chunks_exact(cols).enumerate() {
        for (sample, part) in row.chunks_exact(pixels).enumerate() {
            y_block[(sample * g.c_out + co) * pixels..][..pixels].write_copy_of_slice(part);
        }
    }
}

/// Runs `body(block index, block's slice of out)` for every block, in parallel or in turn as
/// the plan says; `per_sample` is how many elements of `out` one sample owns.
fn for_each_block<T: Send>(
    plan: Plan,
    out: &mut [T],
    per_sample: usize,
    body: impl Fn(usize, &mut [T]) + Sync,
) {
    let block_len = plan.samples * per_sample;
    if plan.parallel_blocks {
        out.par_chunks_mut(block_len)
            .enumerate()
            .for_each(|(index, block)| body(index, block));
    } else {
        for (index, block) in out.chunks_mut(block_len).enumerate() {
            body(index, block);
        }
    }
}

/// Forward pass: `y = conv(x, weight)`, `[N, C_out, H_out, W_out]`.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], products: Products) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len(), "conv input length");
    assert_eq!(weight.len(), g.weight_len(), "conv weight length");
    let plan = Plan::new(g, products);
    let (k, pixels) = (g.k(), g.out_pixels());
    let weight = Lhs::new(Operand::rows(weight, k), [g.c_out, k], plan.packing());
    let mut y = uninit(g.output_len());
    for_each_block(plan, &mut y, g.c_out * pixels, |index, y_block| {
        let range = plan.range(index, g.batch);
        let cols = (range.1 - range.0) * pixels;
        let single = range.1 - range.0 == 1;
        let gathered = if single { 0 } else { g.c_out * cols };
        let fill = |rows: Range<usize>, buffer: &mut [f32]| im2col(g, x, range, rows, buffer);
        with_scratch(col_scratch_len(products, k, cols), gathered, |col, out| {
            let col = column_source(products, &fill, [k, cols], col);
            let dims = [g.c_out, cols, k];
            if single {
                // One sample: its [C_out, P] output planes are the GEMM's destination as is.
                let dst = Destination::Uninit(y_block);
                matmul(dims, dst, &weight, col, plan.gemm());
            } else {
                let dst = Destination::Overwrite(&mut *out);
                matmul(dims, dst, &weight, col, plan.gemm());
                scatter_channels_major(g, out, range.1 - range.0, y_block);
            }
        });
    });
    // SAFETY: `for_each_block` hands out chunks that cover `y`, and each is written whole:
    // by the `Destination::Uninit` GEMM, which asserts the block is exactly its `m·n` slots,
    // or by `scatter_channels_major`, which asserts the block is as long as its source.
    unsafe { assume_init(y) }
}

/// Gradient with respect to the input, `[N, C_in, H, W]`.
pub(crate) fn input_grad(
    g: &ConvGeometry,
    weight: &[f32],
    dy: &[f32],
    products: Products,
) -> Vec<f32> {
    assert_eq!(weight.len(), g.weight_len(), "conv weight length");
    assert_eq!(dy.len(), g.output_len(), "conv output-gradient length");
    let plan = Plan::new(g, products);
    let (k, pixels) = (g.k(), g.out_pixels());
    let weight_t = Lhs::new(
        Operand::transpose_of(weight, k),
        [k, g.c_out],
        plan.packing(),
    );
    let mut dx = uninit(g.input_len());
    for_each_block(plan, &mut dx, g.c_in * g.h * g.w, |index, dx_block| {
        let range = plan.range(index, g.batch);
        let samples = range.1 - range.0;
        let cols = samples * pixels;
        with_scratch(k * cols, dy_scratch_len(g, samples), |dcol, scratch| {
            let dy_block = dy_block(g, dy, range, scratch);
            matmul(
                [k, cols, g.c_out],
                Destination::Overwrite(&mut *dcol),
                &weight_t,
                Source::Matrix(Operand::rows(dy_block, cols)),
                plan.gemm(),
            );
            // Zeroed here, in the worker, by a write (a first `+=` on an untouched zero page
            // would cost a copy-on-write fault with a TLB shootdown per page).
            col2im(g, dcol, samples, zeroed(dx_block));
        });
    });
    // SAFETY: `for_each_block` hands out chunks that cover `dx`, and `zeroed` writes each
    // whole, whatever its length (`col2im` then only adds).
    unsafe { assume_init(dx) }
}

/// Gradient with respect to the weight, `[C_out, C_in, kh, kw]`.
pub(crate) fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32], products: Products) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len(), "conv input length");
    assert_eq!(dy.len(), g.output_len(), "conv output-gradient length");
    let plan = Plan::new(g, products);
    let (k, pixels) = (g.k(), g.out_pixels());
    // Computed transposed, `dW^T[K, C_out] = col · dY_blockᵀ`: this shape (tall row-major
    // destination) is the one gemm 0.19 runs fastest, well ahead of `dY_block · colᵀ`
    // (`docs/benchmarks.md`, Models, has the measurements). Blocks are summed into one partial
    // per worker; the partials are added and transposed.
    let accumulate_blocks = |blocks: std::ops::Range<usize>, dw_t: &mut [f32]| {
        for (i, index) in blocks.enumerate() {
            let range = plan.range(index, g.batch);
            let samples = range.1 - range.0;
            let cols = samples * pixels;
            let fill = |rows: Range<usize>, buffer: &mut [f32]| im2col(g, x, range, rows, buffer);
            let col_len = col_scratch_len(products, k, cols);
            with_scratch(col_len, dy_scratch_len(g, samples), |col, scratch| {
                let dy_block = dy_block(g, dy, range, scratch);
                // The first block replaces the partial's zeros, the others add to it.
                let dst = if i == 0 {
                    Destination::Overwrite(&mut *dw_t)
                } else {
                    Destination::Accumulate(&mut *dw_t)
                };
                // The column matrix is the left operand here: packed from the input a block
                // of rows at a time for bf16 products.
                let col = match products {
                    Products::F32 => {
                        fill(0..k, col);
                        Lhs::F32(Operand::rows(col, cols))
                    }
                    Products::Bf16(isa) => {
                        let rows = Source::Rows(&fill);
                        let parallel = plan.gemm().parallel;
                        Lhs::Bf16(
                            isa,
                            bf16_gemm::PackedLhs::new(isa, rows, [k, cols], parallel),
                        )
                    }
                };
                matmul(
                    [k, g.c_out, cols],
                    dst,
                    &col,
                    Source::Matrix(Operand::transpose_of(dy_block, cols)),
                    plan.gemm(),
                );
            });
        }
    };
    let partials: Vec<Vec<f32>> = if plan.parallel_blocks {
        let workers = rayon::current_num_threads().min(plan.blocks);
        let per_worker = plan.blocks.div_ceil(workers);
        (0..workers)
            .into_par_iter()
            .map(|worker| {
                let start = worker * per_worker;
                let mut partial = vec![0.0f32; g.weight_len()];
                accumulate_blocks(start..(start + per_worker).min(plan.blocks), &mut partial);
                partial
            })
            .collect()
    } else {
        let mut partial = vec![0.0f32; g.weight_len()];
        accumulate_blocks(0..plan.blocks, &mut partial);
        vec![partial]
    };
    sum_transposed(&partials, k, g.c_out)
}

/// `Σ partials`, each `[rows, cols]` row-major, written out as `[cols, rows]`; parallel over
/// blocks of 32 output rows, each reading 32 contiguous values per source row.
fn sum_transposed(partials: &[Vec<f32>], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 32;
    let mut dst = uninit(rows * cols);
    dst.par_chunks_mut(BLOCK * rows)
        .enumerate()
        .for_each(|(block, dst)| {
            let c0 = block * BLOCK;
            let width = dst.len() / rows;
            // Whole output rows (`rows * cols` splits into them), so the loops write it all.
            assert_eq!(dst.len(), width * rows, "whole output rows");
            for r in 0..rows {
                for (i, c) in (c0..c0 + width).enumerate() {
                    dst[i * rows + r].write(partials.iter().map(|p| p[r * cols + c]).sum());
                }
            }
        });
    // SAFETY: the chunks cover `dst`, and each is `width` whole output rows (the assert in
    // the loop), whose slots `i·rows + r` for all `i < width`, `r < rows` the loops write.
    unsafe { assume_init(dst) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct 7-loop convolution: the definition the GEMM lowering must reproduce.
    fn naive_forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; g.output_len()];
        for n in 0..g.batch {
            for co in 0..g.c_out {
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let mut acc = 0.0f64;
                        for ci in 0..g.c_in {
                            for ky in 0..g.kernel[0] {
                                for kx in 0..g.kernel[1] {
                                    let iy = (oy * g.stride[0] + ky) as isize - g.pad[0] as isize;
                                    let ix = (ox * g.stride[1] + kx) as isize - g.pad[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xi =
                                        ((n * g.c_in + ci) * g.h + iy as usize) * g.w + ix as usize;
                                    let wi =
                                        ((co * g.c_in + ci) * g.kernel[0] + ky) * g.kernel[1] + kx;
                                    acc += f64::from(x[xi]) * f64::from(w[wi]);
                                }
                            }
                        }
                        y[((n * g.c_out + co) * g.h_out + oy) * g.w_out + ox] = acc as f32;
                    }
                }
            }
        }
        y
    }

    fn geometry(
        batch: usize,
        c_in: usize,
        hw: [usize; 2],
        c_out: usize,
        k: usize,
        s: usize,
        p: usize,
    ) -> ConvGeometry {
        ConvGeometry {
            batch,
            c_in,
            h: hw[0],
            w: hw[1],
            c_out,
            kernel: [k, k],
            stride: [s, s],
            pad: [p, p],
            h_out: (hw[0] + 2 * p - k) / s + 1,
            w_out: (hw[1] + 2 * p - k) / s + 1,
        }
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let v = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(40_503));
                (v >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    /// Shapes covering stride 1 and 2, 1x1/3x3/7x7 kernels, odd sizes where the last column
    /// sits in the padding, one-sample and many-sample blocks.
    fn cases() -> Vec<ConvGeometry> {
        vec![
            geometry(3, 2, [5, 5], 4, 3, 1, 1),
            geometry(2, 3, [7, 6], 5, 3, 2, 1),
            geometry(4, 4, [8, 8], 3, 1, 2, 0),
            geometry(1, 2, [9, 9], 2, 7, 2, 3),
            geometry(40, 3, [4, 4], 6, 3, 1, 1),
            geometry(5, 2, [3, 3], 2, 3, 1, 0),
            // Stride 1 as wide as the input (`copy_shifted`): a non-square map, a 1x1 kernel,
            // a kernel wider than the map (runs that fall off the plane).
            geometry(2, 3, [6, 7], 4, 3, 1, 1),
            geometry(3, 4, [5, 3], 2, 1, 1, 0),
            geometry(2, 2, [2, 3], 3, 5, 1, 2),
            // Stride 3 (`copy_strided`'s general case).
            geometry(2, 2, [7, 8], 3, 3, 3, 1),
        ]
    }

    /// f32 products, and bf16 ones on each instruction set this CPU has.
    fn every_products() -> Vec<Products> {
        let bf16 = bf16_gemm::Isa::available().into_iter().map(Products::Bf16);
        std::iter::once(Products::F32).chain(bf16).collect()
    }

    fn bf16_rounded(values: &[f32]) -> Vec<f32> {
        let round = |v: f32| bf16_gemm::from_bf16(bf16_gemm::to_bf16(v));
        values.iter().map(|&v| round(v)).collect()
    }

    /// The values as the products see them: rounded to bf16 for bf16 products.
    fn as_multiplied(values: &[f32], products: Products) -> Vec<f32> {
        match products {
            Products::F32 => values.to_vec(),
            Products::Bf16(_) => bf16_rounded(values),
        }
    }

    #[test]
    fn forward_matches_the_direct_convolution() {
        for products in every_products() {
            for g in cases() {
                let x = values(g.input_len(), 1);
                let w = values(g.weight_len(), 2);
                let (x_seen, w_seen) = (as_multiplied(&x, products), as_multiplied(&w, products));
                assert_close(
                    &forward(&g, &x, &w, products),
                    &naive_forward(&g, &x_seen, &w_seen),
                    &format!("{products:?} {g:?}"),
                );
            }
        }
    }

    /// bf16 products round their operands: on values bf16 cannot hold, the forward pass
    /// differs from the f32 one by about bf16's precision (2^-8 relative), not more.
    #[test]
    fn bf16_products_differ_from_f32_by_the_rounding() {
        let g = geometry(4, 8, [6, 6], 8, 3, 1, 1);
        let (x, w) = (values(g.input_len(), 11), values(g.weight_len(), 12));
        let exact = forward(&g, &x, &w, Products::F32);
        let scale = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
        for isa in bf16_gemm::Isa::available() {
            let got = forward(&g, &x, &w, Products::Bf16(isa));
            let worst = got
                .iter()
                .zip(&exact)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst > 0.0, "{isa:?}: the operands were rounded");
            assert!(
                worst < scale * 2e-2,
                "{isa:?}: {worst} vs values up to {scale}"
            );
        }
    }

    /// The gradients are the adjoints of the forward map: for random `dy`,
    /// `<dy, conv(x, w)> = <input_grad(w, dy), x> = <weight_grad(x, dy), w>`.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward_pass() {
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum::<f64>()
        };
        // Values bf16 holds exactly, so that every products' passes are adjoint exactly (up
        // to the order of the f32 sums).
        let bf16_exact = |len, seed| bf16_rounded(&values(len, seed));
        for products in every_products() {
            for g in cases() {
                let x = bf16_exact(g.input_len(), 3);
                let w = bf16_exact(g.weight_len(), 4);
                let dy = bf16_exact(g.output_len(), 5);
                let y = naive_forward(&g, &x, &w);
                let reference = dot(&dy, &y);
                let via_input = dot(&input_grad(&g, &w, &dy, products), &x);
                let via_weight = dot(&weight_grad(&g, &x, &dy, products), &w);
                let tol = 1e-4 * (1.0 + reference.abs());
                assert!(
                    (via_input - reference).abs() < tol,
                    "{products:?} {g:?}: input grad {via_input} vs {reference}"
                );
                assert!(
                    (via_weight - reference).abs() < tol,
                    "{products:?} {g:?}: weight grad {via_weight} vs {reference}"
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_elementwise_definitions() {
        // Weight gradient element by element: dW[o, i] = sum over outputs of dy * x-patch.
        let g = geometry(2, 2, [5, 4], 3, 3, 2, 1);
        let x = values(g.input_len(), 6);
        let dy = values(g.output_len(), 7);
        let dw = weight_grad(&g, &x, &dy, Products::F32);
        let mut basis = vec![0.0f32; g.weight_len()];
        for i in 0..g.weight_len() {
            basis.iter_mut().for_each(|v| *v = 0.0);
            basis[i] = 1.0;
            let y = naive_forward(&g, &x, &basis);
            let want: f64 = y
                .iter()
                .zip(&dy)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            assert!(
                (f64::from(dw[i]) - want).abs() < 1e-4,
                "dW[{i}]: {} vs {want}",
                dw[i]
            );
        }
    }

    /// `lhs[m, k] · rhs[k, n]` of row-major matrices, summed in f64.
    fn naive_product([m, n, k]: [usize; 3], lhs: &[f32], rhs: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for (i, row) in out.chunks_exact_mut(n).enumerate() {
            for (j, out) in row.iter_mut().enumerate() {
                let dot = (0..k).map(|d| f64::from(lhs[i * k + d]) * f64::from(rhs[d * n + j]));
                *out = dot.sum::<f64>() as f32;
            }
        }
        out
    }

    /// `matrix` (`[rows, cols]`, row-major) stored as its transpose.
    fn transposed(matrix: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols * rows)
            .map(|i| matrix[(i % rows) * cols + i / rows])
            .collect()
    }

    /// gemm 0.19 never reads a destination it overwrites (`matmul` relies on it for the
    /// uninitialised output blocks): NaN there would leak into the product of any version that
    /// read it, even scaled by 0. Also `Accumulate` adds to what is there. Shapes: tiny, odd
    /// sizes around gemm's register tiles, and one large enough for gemm's own rayon threads;
    /// operands plain and stored transposed, as the convolutions pass them.
    #[test]
    fn gemm_never_reads_a_destination_it_overwrites() {
        let cases = [
            ([3, 5, 7], false),
            ([37, 300, 72], false),
            ([64, 1024, 576], true),
        ];
        for (dims, parallel) in cases {
            let how = Gemm {
                products: Products::F32,
                parallel,
            };
            let [m, n, k] = dims;
            let (lhs, rhs) = (values(m * k, 8), values(k * n, 9));
            let (lhs_t, rhs_t) = (transposed(&lhs, m, k), transposed(&rhs, k, n));
            let want = naive_product(dims, &lhs, &rhs);
            let operands = || {
                [
                    (Operand::rows(&lhs, k), Operand::rows(&rhs, n)),
                    (
                        Operand::transpose_of(&lhs_t, m),
                        Operand::transpose_of(&rhs_t, k),
                    ),
                ]
            };
            for (layout, (lhs, rhs)) in operands().into_iter().enumerate() {
                let what = format!("{dims:?}, layout {layout}");
                let mut dst = vec![f32::NAN; m * n];
                matmul(
                    dims,
                    Destination::Overwrite(&mut dst),
                    &Lhs::F32(lhs),
                    Source::Matrix(rhs),
                    how,
                );
                assert!(
                    dst.iter().all(|v| v.is_finite()),
                    "{what}: overwrite read dst"
                );
                assert_close(&dst, &want, &format!("{what}: overwrite"));
            }
            for (layout, (lhs, rhs)) in operands().into_iter().enumerate() {
                let what = format!("{dims:?}, layout {layout}");
                let mut slots = vec![MaybeUninit::new(f32::NAN); m * n];
                matmul(
                    dims,
                    Destination::Uninit(&mut slots),
                    &Lhs::F32(lhs),
                    Source::Matrix(rhs),
                    how,
                );
                // SAFETY: every slot was initialised (to NaN) before the product.
                let dst = unsafe { assume_init(slots) };
                assert!(dst.iter().all(|v| v.is_finite()), "{what}: uninit read dst");
                assert_close(&dst, &want, &format!("{what}: uninit"));
            }
            let start = values(m * n, 10);
            let mut dst = start.clone();
            let (lhs, rhs) = (Operand::rows(&lhs, k), Operand::rows(&rhs, n));
            matmul(
                dims,
                Destination::Accumulate(&mut dst),
                &Lhs::F32(lhs),
                Source::Matrix(rhs),
                how,
            );
            let sums: Vec<f32> = start.iter().zip(&want).map(|(a, b)| a + b).collect();
            assert_close(&dst, &sums, &format!("{dims:?}: accumulate"));
        }
    }

    /// Many convolutions at once, each from its own rayon task, equal the same convolutions run
    /// one after another. One-sample convolutions hold the scratch buffers while their GEMM
    /// runs on rayon, so a thread waiting in that GEMM steals other tasks and runs their
    /// convolutions inside the first one's; the many-sample one runs its blocks in parallel.
    #[test]
    fn convolutions_run_from_many_rayon_tasks_at_once() {
        let cases = [
            geometry(1, 64, [32, 32], 64, 3, 1, 1),
            geometry(1, 32, [16, 16], 128, 3, 2, 1),
            geometry(24, 16, [8, 8], 32, 3, 1, 1),
        ];
        let data: Vec<_> = cases
            .iter()
            .zip(0..)
            .map(|(g, seed)| {
                let x = values(g.input_len(), 3 * seed);
                let w = values(g.weight_len(), 3 * seed + 1);
                let dy = values(g.output_len(), 3 * seed + 2);
                (x, w, dy)
            })
            .collect();
        let run = |case: usize| {
            let (g, (x, w, dy)) = (&cases[case], &data[case]);
            let products = every_products()[case % every_products().len()];
            [
                forward(g, x, w, products),
                input_grad(g, w, dy, products),
                weight_grad(g, x, dy, products),
            ]
        };
        // More threads than cores, so that some wait in a GEMM while others hold tasks.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(8)
            .build()
            .expect("a thread pool");
        pool.install(|| {
            let sequential: Vec<_> = (0..cases.len()).map(run).collect();
            for _ in 0..32 {
                let parallel: Vec<_> = (0..16)
                    .into_par_iter()
                    .map(|task| run(task % cases.len()))
                    .collect();
                for (task, got) in parallel.iter().enumerate() {
                    assert!(got == &sequential[task % cases.len()], "task {task}");
                }
            }
        });
    }

    #[test]
    fn valid_range_keeps_inputs_inside_the_image() {
        // 3 taps, pad 1, stride 1 over 5 pixels: offset 0 reads x[o-1], valid for o in 1..5.
        assert_eq!(valid_range(5, 5, 1, 1, 0), (1, 5));
        assert_eq!(valid_range(5, 5, 1, 1, 2), (0, 4));
        // stride 2, 7-wide kernel, pad 3 over 9 pixels: 5 outputs, offset 6 reads x[2o+3].
        assert_eq!(valid_range(9, 5, 2, 3, 6), (0, 3));
        // a tap that never lands inside: an empty range
        let (lo, hi) = valid_range(1, 1, 1, 0, 2);
        assert!(lo >= hi);
    }
}
