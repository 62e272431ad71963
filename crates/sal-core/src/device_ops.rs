//! Pixel-level tensor ops shared by the mixers. They run on whatever device the batch lives on;
//! the only host data they take are small index/box/random tensors uploaded once per call.

use burn::tensor::{Bool, DType, Device, Int, Tensor, TensorData};

use crate::boxes::{BoxPair, PixelBox};
use crate::pair::Pool;

/// Uploads indices as an Int tensor `[len]`.
pub fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [indices.len()]), device)
}

/// Uploads floats as a tensor of the given shape.
pub fn float_tensor<const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// `images[index]` along the batch axis. Gathered as `[N, C*H*W]` rows: flex then copies whole
/// rows, which is faster than its 4-D gather.
pub fn select_samples(images: Tensor<4>, index: Tensor<1, Int>) -> Tensor<4> {
    let [n, c, h, w] = images.dims();
    let [m] = index.dims();
    images
        .reshape([n, c * h * w])
        .select(0, index)
        .reshape([m, c, h, w])
}

/// Mixup's blend: `lam * target[i] + (1 - lam) * pool[source_index[i]]` for every sample `i`.
///
/// On flex (whose device memory is host memory, so nothing travels) the blend is one in-place
/// pass over the target's buffer. The tensor-op version (a gather, two scalings, an add) makes
/// four passes and allocates two batch-sized buffers, each op on one thread at CIFAR batch sizes
/// (burn-flex 0.22.1 parallelises elementwise ops only from 4M elements, `simd/portable.rs`);
/// docs/benchmarks.md (Mixing) compares both with timm. Other backends, batches tracked by
/// autodiff and non-f32 batches use the tensor ops; both paths agree (test below).
pub fn blend_samples(target: Tensor<4>, pool: Pool, source_index: &[usize], lam: f64) -> Tensor<4> {
    let device = target.device();
    let [_, c, h, w] = target.dims();
    if !on_flex_host(&target, &pool) {
        let partners = select_samples(pool.images(&target), index_tensor(source_index, &device));
        // Gathered first: the pool (often the batch itself) is then released, so the scalings
        // and the sum run in place on uniquely owned buffers.
        return target.mul_scalar(lam) + partners.mul_scalar(1.0 - lam);
    }
    let (mut images, pool) = host_buffers(target, pool);
    let row = c * h * w;
    let (lam, rest) = (lam as f32, (1.0 - lam) as f32);
    let blend = |own: &mut [f32], partner: &[f32]| {
        for (o, &p) in own.iter_mut().zip(partner) {
            *o = lam * *o + rest * p;
        }
    };
    let x: &mut [f32] = images.as_mut_slice().expect("dtype checked above");
    let blend_from = |x: &mut [f32], pool: &[f32]| {
        for (i, own) in x.chunks_mut(row).enumerate() {
            blend(
                own,
                &pool[source_index[i] * row..(source_index[i] + 1) * row],
            );
        }
    };
    let Some(pool) = pool else {
        match permutation_cycles(source_index) {
            // Walk each cycle `i -> source_index[i]` in order: a row's partner is the next row of
            // the cycle, still unblended, except the last row's: the cycle's first, kept aside.
            Some(cycles) => {
                for cycle in cycles {
                    let first = x[cycle[0] * row..(cycle[0] + 1) * row].to_vec();
                    for (k, &i) in cycle.iter().enumerate() {
                        match cycle.get(k + 1) {
                            Some(&j) => {
                                let (own, partner) = row_pair(x, row, i, j);
                                blend(own, partner);
                            }
                            None => blend(&mut x[i * row..(i + 1) * row], &first),
                        }
                    }
                }
            }
            // Repeated partners: blend against a copy of the batch.
            None => {
                let batch = x.to_vec();
                blend_from(x, &batch);
            }
        }
        return Tensor::from_data(images, &device);
    };
    blend_from(x, pool.as_slice().expect("dtype checked above"));
    Tensor::from_data(images, &device)
}

/// Whether [`host_buffers`] applies: both tensors live on flex, are f32 and are not tracked by
/// autodiff. `==` on devices compares hardware, so this also holds on the autodiff flex device
/// (the trainer's) for untracked batches; tracked ones keep the tensor ops, which record the graph.
fn on_flex_host(target: &Tensor<4>, pool: &Pool) -> bool {
    let host_f32 = |t: &Tensor<4>| !t.is_tracked() && t.dtype() == DType::F32;
    target.device() == Device::flex()
        && host_f32(target)
        && match pool {
            Pool::Targets => true,
            Pool::Images(images) => host_f32(images),
        }
}

/// The batch's buffer and (unless the pool is the batch itself) the pool's, as host data.
///
/// Flex's device memory is host memory, and `into_data` hands a uniquely owned buffer over
/// without a copy, so the caller can work in place and wrap the result with `Tensor::from_data`
/// (also without a copy).
fn host_buffers(target: Tensor<4>, pool: Pool) -> (TensorData, Option<TensorData>) {
    let pool = match pool {
        Pool::Targets => None,
        Pool::Images(images) => Some(images.into_data()),
    };
    (target.into_data(), pool)
}

/// Per-sample pastes with boxes known on the host:
/// `target[i, :, pairs[i].target] = pool[source_index[i], :, pairs[i].source]`.
///
/// On flex the patches are copied in place, touching only the boxes' pixels: every source patch
/// is read before any is written, so a pool that is the batch itself reads unpasted pixels. Other
/// backends (and tracked batches, see `on_flex_host`) run [`paste_boxes`]. At 128x3x32x32 the
/// tensor-op version gathers the partners, builds a shift index and a mask of the whole batch,
/// and selects: several batch-sized passes for a paste of a fraction of the pixels.
pub fn paste_box_pairs(
    target: Tensor<4>,
    pool: Pool,
    source_index: &[usize],
    pairs: &[BoxPair],
) -> Tensor<4> {
    let device = target.device();
    let [_, c, h, w] = target.dims();
    if !on_flex_host(&target, &pool) {
        let boxes = |pick: fn(&BoxPair) -> PixelBox| {
            let b: Vec<PixelBox> = pairs.iter().map(pick).collect();
            crate::boxes::boxes_to_device(&b, &device)
        };
        let aligned = pairs.iter().all(|p| p.source == p.target);
        let index = index_tensor(source_index, &device);
        let pool = pool.images(&target);
        return paste_boxes(
            target,
            pool,
            Some(index),
            boxes(|p| p.target),
            boxes(|p| p.source),
            aligned,
        );
    }
    let (mut images, pool) = host_buffers(target, pool);
    let image = c * h * w;
    // Offsets of the box rows inside image `i`: channel by channel, row by row.
    let box_rows = move |i: usize, b: PixelBox| {
        (0..c).flat_map(move |ch| (b.r1..b.r2).map(move |r| i * image + ch * h * w + r * w + b.c1))
    };
    let mut patches = Vec::with_capacity(c * pairs.iter().map(|p| p.source.area()).sum::<usize>());
    {
        let x: &[f32] = images.as_slice().expect("dtype checked above");
        let pool: &[f32] = pool
            .as_ref()
            .map_or(x, |p| p.as_slice().expect("dtype checked"));
        for (p, &j) in pairs.iter().zip(source_index) {
            for o in box_rows(j, p.source) {
                patches.extend_from_slice(&pool[o..o + p.source.width()]);
            }
        }
    }
    let x: &mut [f32] = images.as_mut_slice().expect("dtype checked above");
    let mut read = 0;
    for (i, p) in pairs.iter().enumerate() {
        let len = p.target.width();
        for o in box_rows(i, p.target) {
            x[o..o + len].copy_from_slice(&patches[read..read + len]);
            read += len;
        }
    }
    Tensor::from_data(images, &device)
}

/// The cycles of `perm` (each starting at its smallest index, `i` followed by `perm[i]`), or
/// `None` if `perm` is not a permutation of `0..len`.
fn permutation_cycles(perm: &[usize]) -> Option<Vec<Vec<usize>>> {
    let mut seen = vec![false; perm.len()];
    for &j in perm {
        if j >= perm.len() || std::mem::replace(&mut seen[j], true) {
            return None;
        }
    }
    let mut visited = vec![false; perm.len()];
    let mut cycles = Vec::new();
    for start in 0..perm.len() {
        let mut cycle = Vec::new();
        let mut i = start;
        while !visited[i] {
            visited[i] = true;
            cycle.push(i);
            i = perm[i];
        }
        if !cycle.is_empty() {
            cycles.push(cycle);
        }
    }
    Some(cycles)
}

/// Row `i` of `x` mutably and row `j != i` shared, rows `row` elements long.
fn row_pair(x: &mut [f32], row: usize, i: usize, j: usize) -> (&mut [f32], &[f32]) {
    if i < j {
        let (head, tail) = x.split_at_mut(j * row);
        (&mut head[i * row..(i + 1) * row], &tail[..row])
    } else {
        let (head, tail) = x.split_at_mut(i * row);
        (&mut tail[..row], &head[j * row..(j + 1) * row])
    }
}

/// `[N, C, H, W]` mask, true inside each sample's box (`[N, 4]` as `[r1, c1, r2, c2]`), for
/// all `channels`. Built at full size (not broadcast): masked selects on flex are much faster
/// with a contiguous mask.
pub fn box_mask(
    boxes: Tensor<2, Int>,
    channels: usize,
    height: usize,
    width: usize,
) -> Tensor<4, Bool> {
    let [n, _] = boxes.dims();
    let device = boxes.device();
    let column = |k: usize| boxes.clone().slice([0..n, k..k + 1]).reshape([n, 1, 1, 1]);
    let rows = Tensor::<1, Int>::arange(0..height as i64, &device)
        .reshape([1, 1, height, 1])
        .expand([n, 1, height, 1]);
    let cols = Tensor::<1, Int>::arange(0..width as i64, &device)
        .reshape([1, 1, 1, width])
        .expand([n, 1, 1, width]);
    let in_rows = rows
        .clone()
        .greater_equal(column(0).expand([n, 1, height, 1]))
        .bool_and(rows.lower(column(2).expand([n, 1, height, 1])));
    let in_cols = cols
        .clone()
        .greater_equal(column(1).expand([n, 1, 1, width]))
        .bool_and(cols.lower(column(3).expand([n, 1, 1, width])));
    let full = [n, channels, height, width];
    in_rows.expand(full).bool_and(in_cols.expand(full))
}

/// One paste shared by the whole batch (CutMix, SaliencyMix with batch scope, ResizeMix's box):
/// `target[i, :, pair.target] = pool[source_index[i], :, pair.source]`. Only the box region is
/// gathered, so the cost is one box-sized copy plus the assignment.
pub fn paste_shared_box(
    target: Tensor<4>,
    pool: Tensor<4>,
    source_index: Tensor<1, Int>,
    pair: BoxPair,
) -> Tensor<4> {
    if pair.target.is_empty() {
        return target;
    }
    let [n, c, _, _] = target.dims();
    let region = |b: PixelBox| [0..n, 0..c, b.r1..b.r2, b.c1..b.c2];
    let patch = pool.slice(region(pair.source)).select(0, source_index);
    target.slice_assign(region(pair.target), patch)
}

/// Per-sample pastes (`[N, 4]` boxes of equal sizes per sample):
/// `target[i, :, target_boxes[i]] = pool[source_index[i], :, source_boxes[i]]`, where
/// `source_index = None` means `pool[i]` (SalfMix pastes inside the image itself).
/// `aligned` says the source and target boxes are known to coincide, which skips the gather.
pub fn paste_boxes(
    target: Tensor<4>,
    pool: Tensor<4>,
    source_index: Option<Tensor<1, Int>>,
    target_boxes: Tensor<2, Int>,
    source_boxes: Tensor<2, Int>,
    aligned: bool,
) -> Tensor<4> {
    let [_, c, h, w] = target.dims();
    let source = match source_index {
        Some(index) => select_samples(pool, index),
        None => pool,
    };
    let moved = if aligned {
        source
    } else {
        shift_pixels(source, target_boxes.clone(), source_boxes)
    };
    target.mask_where(box_mask(target_boxes, c, h, w), moved)
}

/// `out[i, :, y, x] = source[i, :, y + dy_i, x + dx_i]` (clamped to the image), with
/// `(dy, dx) = source box origin - target box origin`: the source box's pixels land on the
/// target box. Pixels outside the target box are garbage and must be masked by the caller.
/// One gather along the last axis of `[N*C, H*W]` (the fast layout for flex's gather).
fn shift_pixels(
    source: Tensor<4>,
    target_boxes: Tensor<2, Int>,
    source_boxes: Tensor<2, Int>,
) -> Tensor<4> {
    let [n, c, h, w] = source.dims();
    let device = source.device();
    let shift = source_boxes.slice([0..n, 0..2]) - target_boxes.slice([0..n, 0..2]);
    let dy = shift.clone().slice([0..n, 0..1]);
    let dx = shift.slice([0..n, 1..2]);
    let rows = Tensor::<1, Int>::arange(0..h as i64, &device).reshape([1, h]);
    let cols = Tensor::<1, Int>::arange(0..w as i64, &device).reshape([1, w]);
    // [N, H] source row offsets and [N, W] source columns, combined into [N, H, W] flat indices.
    let src_rows = (rows + dy).clamp(0, h as i64 - 1).mul_scalar(w as i64);
    let src_cols = (cols + dx).clamp(0, w as i64 - 1);
    let flat = src_rows.reshape([n, h, 1]) + src_cols.reshape([n, 1, w]);
    let index = flat
        .reshape([n, 1, h * w])
        .expand([n, c, h * w])
        .reshape([n * c, h * w]);
    source
        .reshape([n * c, h * w])
        .gather(1, index)
        .reshape([n, c, h, w])
}

/// Bilinear resampling of `[N, H, W]` maps to `[N, out_h, out_w]` with `align_corners = false`:
/// burn's `InterpolateMode::Bilinear` and PyTorch's `F.interpolate(mode="bilinear")` (source
/// coordinate `(o + 0.5) * in / out - 0.5`, clamped at 0; its floor and the next index, clamped
/// to the last, weighted by the fraction).
///
/// Computed as `R_h · x · R_wᵀ` with the `[out, in]` interpolation matrices built on the host,
/// not with `interpolate`: burn 0.22.1's wgpu kernel (cubek-interpolate 0.3.1) reads the tap
/// before the top and left borders as 0 on wgpu's GL backend instead of clamping it to the
/// border, so an upsampled map's first row and column came out scaled by `0.5 + 0.5 * in / out`
/// (0.75 at 2x) there, while flex and Vulkan are right. Two small matrix products run alike on
/// every backend. The maps this resamples are feature-map sized (a few hundred cells).
pub fn resize_bilinear(x: Tensor<3>, [out_h, out_w]: [usize; 2]) -> Tensor<3> {
    let [n, h, w] = x.dims();
    if [h, w] == [out_h, out_w] {
        return x;
    }
    let device = x.device();
    // [n*h, w] x [w, out_w]: every row resampled along the width.
    let wide = x
        .reshape([n * h, w])
        .matmul(bilinear_weights(w, out_w, &device).transpose());
    // The same along the height, on the transposed maps: [n*out_w, h] x [h, out_h].
    wide.reshape([n, h, out_w])
        .swap_dims(1, 2)
        .reshape([n * out_w, h])
        .matmul(bilinear_weights(h, out_h, &device).transpose())
        .reshape([n, out_w, out_h])
        .swap_dims(1, 2)
}

/// The `[output, input]` matrix of a 1-D bilinear resampling with `align_corners = false`, in
/// burn-flex 0.22.1's arithmetic (`ops/interpolate.rs`, `interpolate_bilinear_impl`: f64
/// coordinates, weights rounded to f32 once).
fn bilinear_weights(input: usize, output: usize, device: &Device) -> Tensor<2> {
    let ratio = input as f64 / output as f64;
    let mut weights = vec![0.0f32; output * input];
    for (o, row) in weights.chunks_mut(input).enumerate() {
        let source = (o as f64 + 0.5) * ratio - 0.5;
        let low = source.floor().max(0.0) as usize;
        let high = (low + 1).min(input - 1);
        let fraction = (source - low as f64).max(0.0) as f32;
        row[low] += 1.0 - fraction;
        row[high] += fraction;
    }
    float_tensor(weights, [output, input], device)
}

/// Index of the FIRST maximum of each row of `[N, L]` (numpy `argmax` semantics, which the
/// official SaliencyMix code relies on for ties). Computed as the smallest index holding the
/// row maximum, so it does not depend on a backend's reduction order.
pub fn first_argmax(values: Tensor<2>) -> Tensor<1, Int> {
    let [n, l] = values.dims();
    let device = values.device();
    let max = values.clone().max_dim(1).expand([n, l]);
    let is_max = values.equal(max);
    let positions = Tensor::<1, Int>::arange(0..l as i64, &device)
        .reshape([1, l])
        .expand([n, l]);
    positions
        .mask_fill(is_max.bool_not(), l as i64)
        .min_dim(1)
        .reshape([n])
}

/// Index of the FIRST minimum of each row of `[N, L]`.
pub fn first_argmin(values: Tensor<2>) -> Tensor<1, Int> {
    first_argmax(values.neg())
}

/// Splits flat indices into `(row, col)` for rows of `width` pixels.
pub fn unravel(flat: Tensor<1, Int>, width: usize) -> (Tensor<1, Int>, Tensor<1, Int>) {
    (
        flat.clone().div_scalar(width as i64),
        flat.remainder_scalar(width as i64),
    )
}

/// Area of each `[N, 4]` box as a float `[N]`.
pub fn box_areas(boxes: Tensor<2, Int>) -> Tensor<1> {
    let [n, _] = boxes.dims();
    let heights = boxes.clone().slice([0..n, 2..3]) - boxes.clone().slice([0..n, 0..1]);
    let widths = boxes.clone().slice([0..n, 3..4]) - boxes.slice([0..n, 1..2]);
    (heights * widths).float().reshape([n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::boxes_to_device;
    use crate::testing::{devices, host_ints, host_vec};

    fn ramp(n: usize, c: usize, h: usize, w: usize, device: &Device) -> Tensor<4> {
        let v: Vec<f32> = (0..n * c * h * w).map(|i| i as f32).collect();
        float_tensor(v, [n, c, h, w], device)
    }

    #[test]
    fn flex_blend_equals_the_tensor_op_blend() {
        // A batch tracked by autodiff takes the tensor-op path; untracked flex batches, on the
        // plain or the autodiff device (the trainer's), the in-place pass.
        let flex = Device::flex();
        let autodiff = flex.clone().autodiff();
        let cases = [
            (true, [2, 0, 3, 1]), // one 4-cycle
            (true, [1, 0, 2, 3]), // a swap and two fixed points
            (true, [3, 0, 3, 1]), // repeated partners: not a permutation
            (false, [3, 0, 5, 1]),
        ];
        for (pool_is_target, index) in cases {
            let blend = |device: &Device, tracked: bool| {
                let mut target = ramp(4, 3, 5, 7, device);
                if tracked {
                    target = target.require_grad();
                }
                let pool = if pool_is_target {
                    Pool::Targets
                } else {
                    Pool::Images(ramp(6, 3, 5, 7, device).mul_scalar(-0.5))
                };
                host_vec::<f32, 4>(blend_samples(target, pool, &index, 0.3))
            };
            let fast = blend(&flex, false);
            let others = [(autodiff.clone(), true), (autodiff.clone(), false)];
            for (device, tracked) in others
                .into_iter()
                .chain(devices().into_iter().map(|d| (d, false)))
            {
                let reference = blend(&device, tracked);
                for (a, b) in fast.iter().zip(&reference) {
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "{a} vs {b} on {device:?} (tracked: {tracked})"
                    );
                }
            }
        }
    }

    #[test]
    fn flex_box_pastes_equal_the_tensor_op_pastes() {
        // Tracked batches take `paste_boxes`; untracked flex batches the in-place copy.
        let flex = Device::flex();
        let autodiff = flex.clone().autodiff();
        let (h, w) = (5, 7);
        let shifted = [
            BoxPair {
                source: PixelBox::new(0, 0, 2, 3),
                target: PixelBox::new(3, 4, 5, 7),
            },
            BoxPair::same(PixelBox::new(1, 1, 4, 6)),
            BoxPair {
                source: PixelBox::new(2, 3, 5, 7),
                target: PixelBox::new(0, 0, 3, 4),
            },
            BoxPair::same(PixelBox::new(0, 0, 0, 0)),
        ];
        let aligned = [BoxPair::same(PixelBox::new(1, 2, 4, 5)); 4];
        let cases = [
            (true, [2, 0, 3, 1], shifted),
            (true, [1, 1, 0, 0], shifted), // repeated sources that are themselves pasted
            (true, [3, 2, 1, 0], aligned),
            (false, [5, 0, 5, 2], shifted),
        ];
        for (pool_is_target, index, pairs) in cases {
            let paste = |device: &Device, tracked: bool| {
                let mut target = ramp(4, 2, h, w, device);
                if tracked {
                    target = target.require_grad();
                }
                let pool = if pool_is_target {
                    Pool::Targets
                } else {
                    Pool::Images(ramp(6, 2, h, w, device).mul_scalar(-1.0))
                };
                host_vec::<f32, 4>(paste_box_pairs(target, pool, &index, &pairs))
            };
            let fast = paste(&flex, false);
            let others = [(autodiff.clone(), true), (autodiff.clone(), false)];
            let wgpu = devices().into_iter().map(|d| (d, false));
            for (device, tracked) in others.into_iter().chain(wgpu) {
                assert_eq!(
                    fast,
                    paste(&device, tracked),
                    "{device:?} (tracked: {tracked})"
                );
            }
        }
    }

    /// Against flex's `interpolate` (bilinear, `align_corners = false`, as PyTorch), up and down,
    /// square or not, from and to a single pixel, on every device; and the first row of a 2x
    /// upsampling by hand (the row wgpu's GL kernel got wrong).
    #[test]
    fn resize_bilinear_matches_flex_interpolate_on_every_device() {
        use burn::tensor::module::interpolate;
        use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
        let cases = [
            ([4, 4], [8, 8]),
            ([2, 2], [4, 4]),
            ([4, 4], [7, 5]),
            ([3, 5], [6, 10]),
            ([4, 4], [2, 2]),
            ([7, 7], [4, 3]),
            ([1, 4], [1, 8]),
            ([1, 1], [3, 3]),
            ([5, 3], [1, 1]),
        ];
        let flex = Device::flex();
        for ([h, w], out) in cases {
            let n = 3;
            let values: Vec<f32> = (0..n * h * w)
                .map(|i| 1.0 + ((i * 7) % 11) as f32 * 0.5)
                .collect();
            let options = InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(false)
                .with_output_size(out);
            let x = float_tensor(values.clone(), [n, 1, h, w], &flex);
            let want = host_vec::<f32, 4>(interpolate(x, options));
            for device in devices() {
                let x = float_tensor(values.clone(), [n, h, w], &device);
                let got = host_vec::<f32, 3>(resize_bilinear(x, out));
                assert_eq!(got.len(), want.len());
                for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - e).abs() <= 1e-5 * e.abs().max(1.0),
                        "{h}x{w} -> {out:?} on {device:?}, [{i}]: {g} vs {e}"
                    );
                }
            }
        }
        for device in devices() {
            let x = float_tensor(vec![1.0, 2.0, 3.0, 4.0], [1, 2, 2], &device);
            let got = host_vec::<f32, 3>(resize_bilinear(x, [4, 4]));
            assert_eq!(&got[..4], &[1.0, 1.25, 1.75, 2.0], "on {device:?}");
        }
    }

    #[test]
    fn first_argmax_takes_the_first_of_ties_on_every_device() {
        for device in devices() {
            let v = float_tensor(
                vec![1.0, 3.0, 3.0, 0.0, 2.0, 2.0, 2.0, 2.0],
                [2, 4],
                &device,
            );
            assert_eq!(host_ints(first_argmax(v.clone())), vec![1, 0]);
            assert_eq!(host_ints(first_argmin(v)), vec![3, 0]);
        }
    }

    #[test]
    fn shared_and_per_sample_pastes_agree() {
        for device in devices() {
            let x = ramp(3, 2, 5, 7, &device);
            let perm = index_tensor(&[2, 0, 1], &device);
            let b = PixelBox::new(1, 2, 4, 6);
            let shared = paste_shared_box(x.clone(), x.clone(), perm.clone(), BoxPair::same(b));
            let boxes = boxes_to_device(&[b, b, b], &device);
            let per = paste_boxes(x.clone(), x, Some(perm), boxes.clone(), boxes, false);
            assert_eq!(host_vec::<f32, 4>(shared), host_vec::<f32, 4>(per));
        }
    }

    #[test]
    fn shifted_pastes_move_the_source_box_onto_the_target_box() {
        for device in devices() {
            let (h, w) = (4, 5);
            let x = ramp(2, 1, h, w, &device);
            let target = [PixelBox::new(0, 0, 2, 2), PixelBox::new(2, 3, 4, 5)];
            let source = [PixelBox::new(2, 3, 4, 5), PixelBox::new(0, 0, 2, 2)];
            let out = paste_boxes(
                x.clone(),
                x,
                None,
                boxes_to_device(&target, &device),
                boxes_to_device(&source, &device),
                false,
            );
            let got = host_vec::<f32, 4>(out);
            for i in 0..2 {
                for y in 0..h {
                    for xx in 0..w {
                        let v = got[i * h * w + y * w + xx];
                        let expected = if target[i].contains(y, xx) {
                            let sy = y - target[i].r1 + source[i].r1;
                            let sx = xx - target[i].c1 + source[i].c1;
                            (i * h * w + sy * w + sx) as f32
                        } else {
                            (i * h * w + y * w + xx) as f32
                        };
                        assert_eq!(v, expected, "sample {i} pixel ({y},{xx})");
                    }
                }
            }
        }
    }
}
