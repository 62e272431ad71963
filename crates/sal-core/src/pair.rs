//! Two-image methods as "pair ops": mix `target[i]` with `pool[source_index[i]]`.
//!
//! Mixup, CutMix, ResizeMix and SaliencyMix are `T_t(x1, y1, x2, y2)` of the SalfMix paper
//! (eq. 1). As batch mixers the pool is the batch itself and the indices a permutation; HybridMix
//! hands them SalfMix-ed targets, a SalfMix-ed pool and independent partners instead. The batch
//! skeleton (application coin, permutation, soft targets) lives here once.

use burn::tensor::Tensor;
use rand::rngs::StdRng;

use crate::MixError;
use crate::device_ops::index_tensor;
use crate::mixer::{MixBatch, MixOutput};
use crate::sampling::{coin, permutation};
use crate::targets::{LabelSmoothing, OwnWeight, mixed_targets_with};
use crate::trace::{MixTrace, Regions, Weights};

/// Where a pair op's mixed-in content comes from.
// One value per batch: a tensor handle is large, and boxing it buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Pool {
    /// The target batch itself (the batch mixers): per-image work on the targets serves the
    /// pool too, and in-place ops need not keep a second copy.
    Targets,
    /// Other images, `[M, C, H, W]` (HybridMix's SalfMix-ed partners).
    Images(Tensor<4>),
}

impl Pool {
    /// The pool's images: `targets` themselves for [`Pool::Targets`].
    pub fn images(&self, targets: &Tensor<4>) -> Tensor<4> {
        match self {
            Self::Targets => targets.clone(),
            Self::Images(images) => images.clone(),
        }
    }
}

/// The images a pair op mixes.
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    /// `[N, C, H, W]`: the images that receive content and keep their own labels' weight.
    pub target: Tensor<4>,
    /// Where the mixed-in content comes from.
    pub pool: Pool,
    /// `[N]`, into the pool.
    pub source_index: &'a [usize],
    /// Caller-given saliency of the batch, `[N, H, W]`, indexed like the pool.
    pub saliency: Option<Tensor<3>>,
}

impl Pairs<'_> {
    /// The pool's images, `[M, C, H, W]`.
    pub fn pool_images(&self) -> Tensor<4> {
        self.pool.images(&self.target)
    }
}

/// What a pair op produced.
#[derive(Debug, Clone)]
pub struct PairMix {
    pub images: Tensor<4>,
    pub own_weight: OwnWeight,
    /// The same weights for the record (host values where the op computed them on the host).
    pub weights: Weights,
    pub regions: Regions,
}

/// A two-image method usable by HybridMix as `T_t`.
pub trait PairMixer: std::fmt::Debug + Send + Sync {
    fn name(&self) -> &'static str;
    /// Probability to mix a batch at all.
    fn prob(&self) -> f64;
    fn smoothing(&self) -> LabelSmoothing;
    /// Mixes every pair (no application coin here).
    fn mix_pairs(&self, pairs: Pairs<'_>, rng: &mut StdRng) -> Result<PairMix, MixError>;
}

/// The batch mixer of a pair op: with probability `prob`, draw a permutation and mix
/// `x[i]` with `x[perm[i]]`; targets `w * y + (1 - w) * y[perm]`. With given partners
/// ([`MixBatch::partners`]) `x[i]` is mixed with partner `i` instead, and no permutation is drawn.
pub fn mix_permuted(
    op: &impl PairMixer,
    mut batch: MixBatch,
    rng: &mut StdRng,
) -> Result<MixOutput, MixError> {
    let dims = batch.checked_dims(op.name())?;
    let n = dims[0];
    if !coin(rng, op.prob()) {
        return Ok(batch.unchanged(op.name(), op.smoothing()));
    }
    let device = batch.labels.device();
    let (pool, source_index, other_labels) = match batch.partners.take() {
        Some(partners) => {
            let [labels] = partners.labels.dims();
            if partners.images.dims() != dims || labels != n {
                return Err(MixError::PartnerShape {
                    method: op.name(),
                    partners: partners.images.dims().to_vec(),
                    labels,
                    expected: dims.to_vec(),
                });
            }
            (
                Pool::Images(partners.images),
                (0..n).collect(),
                partners.labels,
            )
        }
        None => {
            let perm = permutation(rng, n);
            let other = batch.labels.clone().select(0, index_tensor(&perm, &device));
            (Pool::Targets, perm, other)
        }
    };
    let saliency = batch.take_saliency();
    let mixed = op.mix_pairs(
        Pairs {
            target: batch.images,
            pool,
            source_index: &source_index,
            saliency,
        },
        rng,
    )?;
    let targets = mixed_targets_with(
        batch.labels,
        other_labels,
        &mixed.own_weight,
        batch.num_classes,
        op.smoothing(),
    );
    Ok(MixOutput {
        images: mixed.images,
        targets,
        trace: MixTrace {
            method: op.name(),
            applied: true,
            source_index: Some(source_index),
            own_weight: mixed.weights,
            regions: mixed.regions,
            self_mix: None,
            originals_prepended: false,
        },
    })
}
