//! The one trait every method implements, its input and its output.

use std::fmt::Debug;
use std::sync::Arc;

use burn::tensor::{Int, Tensor};
use rand::rngs::StdRng;

use crate::MixError;
use crate::targets::{LabelSmoothing, one_hot_targets};
use crate::trace::MixTrace;

/// Model-derived saliency a method needs in [`MixBatch::saliency`]; `sal-core` knows no model,
/// so the trainer computes it (see [`crate::model_saliency`] for the reductions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaliencyInput {
    /// Nothing beyond images and labels (classic detectors run inside the mixer).
    None,
    /// `M[n, i, j] = max_c |dL/dx[n, c, i, j]|` from the current model, `[N, H, W]`
    /// (SalfMix, HybridMix; SalfMix paper eq. 3).
    InputGradient,
    /// `S[n] = sum_c |A_c|` of the last conv stage's feature map, detached, `[N, h, w]`
    /// (Saliency Grafting §4.3), from a pass of its own over the clean batch.
    FeatureMap,
    /// The same map taken from the clean batch's own TRAINING forward (Saliency Grafting §4.3:
    /// saliency "constructed based on the terms already calculated in the learning process").
    /// The method's output still holds the originals first (`MixTrace::originals_prepended`):
    /// the trainer, which forwarded them already, forwards only the rest.
    TrainingFeatureMap,
    /// Any `[N, H, W]` map the caller chose (SaliencyMix with `detector = "given"`).
    Given,
}

/// A model-derived saliency, given or computed on demand.
///
/// The model-guided methods need an extra pass of the model (SalfMix's input gradient, Saliency
/// Grafting's feature map), but only on the batches they actually mix: a batch in a warm-up
/// epoch or one that loses the `prob` draw trains as it is. [`Saliency::Pass`] lets the trainer
/// hand over the pass itself, which the method runs (once, on the batch's images) only when it
/// needs the map.
// One value per batch: a tensor handle is larger than an Arc, and boxing it buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Saliency {
    /// An `[N, H, W]` map computed beforehand.
    Map(Tensor<3>),
    /// Computes the `[N, H, W]` map of the batch's images when called.
    Pass(SaliencyPass),
}

/// See [`Saliency::Pass`].
pub type SaliencyPass = Arc<dyn Fn(&Tensor<4>) -> Tensor<3> + Send + Sync>;

impl Debug for Saliency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Map(map) => f.debug_tuple("Map").field(&map.dims()).finish(),
            Self::Pass(_) => f.write_str("Pass"),
        }
    }
}

/// One batch handed to a mixer. Images are the normalised training batch, on the training
/// device; labels are hard class indices on the same device (the trainer's batch already holds
/// them there, and every target is then built without a host round trip).
#[derive(Debug, Clone)]
pub struct MixBatch {
    /// `[N, C, H, W]`, normalised floats.
    pub images: Tensor<4>,
    /// `[N]`, class indices `< num_classes`.
    pub labels: Tensor<1, Int>,
    pub num_classes: usize,
    /// What [`BatchMixer::saliency_input`] asks for; `None` otherwise.
    pub saliency: Option<Saliency>,
    /// 0-based epoch; methods with warm-up epochs leave the batch clean before theirs end.
    pub epoch: usize,
    /// Each row's mixing partner, drawn by the caller; `None`: the method pairs the batch with
    /// a permutation of itself. Only the methods whose [`BatchMixer::mixes_given_partners`]
    /// is true read it.
    pub partners: Option<Partners>,
}

/// The images a batch's rows are mixed with, row `i` with target `i`, in place of a
/// permutation of the batch itself: data-parallel training draws them across the whole
/// global batch, of which the batch is one device's part (OpenMixup's cross-GPU shuffle).
#[derive(Debug, Clone)]
pub struct Partners {
    /// `[N, C, H, W]`, normalised like the batch.
    pub images: Tensor<4>,
    /// `[N]`.
    pub labels: Tensor<1, Int>,
}

impl MixBatch {
    pub fn new(images: Tensor<4>, labels: Tensor<1, Int>, num_classes: usize) -> Self {
        Self {
            images,
            labels,
            num_classes,
            saliency: None,
            epoch: 0,
            partners: None,
        }
    }

    /// Mixes row `i` with `partners`' row `i` (methods that take given partners).
    pub fn with_partners(mut self, partners: Partners) -> Self {
        self.partners = Some(partners);
        self
    }

    pub fn with_saliency(mut self, saliency: Tensor<3>) -> Self {
        self.saliency = Some(Saliency::Map(saliency));
        self
    }

    /// The saliency as a pass over the batch's images, run only if the method mixes the batch.
    pub fn with_saliency_pass(
        mut self,
        pass: impl Fn(&Tensor<4>) -> Tensor<3> + Send + Sync + 'static,
    ) -> Self {
        self.saliency = Some(Saliency::Pass(Arc::new(pass)));
        self
    }

    /// The saliency map, running the pass if it is one. Taken out of the batch, so that the
    /// pass (which may hold the model) is released before the images are mixed: in-place mixing
    /// needs the batch's buffer uniquely owned.
    pub(crate) fn take_saliency(&mut self) -> Option<Tensor<3>> {
        match self.saliency.take()? {
            Saliency::Map(map) => Some(map),
            Saliency::Pass(pass) => Some(pass(&self.images)),
        }
    }

    pub fn with_epoch(mut self, epoch: usize) -> Self {
        self.epoch = epoch;
        self
    }

    /// `[N, C, H, W]` after checking the batch is non-empty and labels match.
    pub(crate) fn checked_dims(&self, method: &'static str) -> Result<[usize; 4], MixError> {
        let dims = self.images.dims();
        if dims.contains(&0) {
            return Err(MixError::EmptyBatch { method });
        }
        let [labels] = self.labels.dims();
        if labels != dims[0] {
            return Err(MixError::LabelCount {
                method,
                labels,
                images: dims[0],
            });
        }
        if self.num_classes == 0 {
            return Err(MixError::NoClasses { method });
        }
        Ok(dims)
    }

    /// The saliency tensor (see [`Self::take_saliency`]), checked to be `[N, rows, cols]`
    /// (`rows x cols = None`: any size).
    pub(crate) fn checked_saliency(
        &mut self,
        method: &'static str,
        what: &'static str,
        size: Option<[usize; 2]>,
    ) -> Result<Tensor<3>, MixError> {
        let s = self
            .take_saliency()
            .ok_or(MixError::MissingSaliency { method, what })?;
        let [n, h, w] = s.dims();
        let expected_n = self.images.dims()[0];
        let ok = n == expected_n && h > 0 && w > 0 && size.is_none_or(|sz| sz == [h, w]);
        if !ok {
            return Err(MixError::SaliencyShape {
                method,
                got: vec![n, h, w],
                expected: match size {
                    Some([eh, ew]) => format!("[{expected_n}, {eh}, {ew}]"),
                    None => format!("[{expected_n}, h, w] with h, w > 0"),
                },
            });
        }
        Ok(s)
    }

    /// The batch passed through: hard (smoothed) targets, nothing recorded as applied.
    pub(crate) fn unchanged(self, method: &'static str, smoothing: LabelSmoothing) -> MixOutput {
        let n = self.images.dims()[0];
        MixOutput {
            targets: one_hot_targets(self.labels, self.num_classes, smoothing),
            images: self.images,
            trace: MixTrace::unapplied(method, n),
        }
    }
}

/// Mixed images, soft targets and what was done.
#[derive(Debug, Clone)]
pub struct MixOutput {
    /// `[N, C, H, W]` (`[2N, ...]` when the trace says originals were prepended).
    pub images: Tensor<4>,
    /// `[N, num_classes]`, rows summing to 1.
    pub targets: Tensor<2>,
    pub trace: MixTrace,
}

/// A batch mixing augmentation. Implementations are stateless: all randomness comes from the
/// `rng` argument (see [`crate::seed::step_rng`]), so the same batch and the same stream give
/// the same output, on any device.
pub trait BatchMixer: Debug + Send + Sync {
    /// The config name, e.g. `"saliencymix"`.
    fn name(&self) -> &'static str;

    /// What [`MixBatch::saliency`] must hold.
    fn saliency_input(&self) -> SaliencyInput {
        SaliencyInput::None
    }

    /// True when every output holds the clean batch first: the originals followed by the mixed
    /// samples when the method mixes (`MixTrace::originals_prepended`), the clean batch alone
    /// when it does not (warm-up, a `prob` miss). Saliency Grafting's `with_original`.
    fn keeps_originals(&self) -> bool {
        false
    }

    /// True when the method mixes [`MixBatch::partners`], if given, in place of its own
    /// permutation of the batch: the pair methods (Mixup, CutMix, ResizeMix, SaliencyMix).
    /// The others mix within the batch (Cutout and SalfMix have no partner; HybridMix and
    /// Saliency Grafting pair the batch with itself) and ignore them.
    fn mixes_given_partners(&self) -> bool {
        false
    }

    /// Mixes one batch.
    fn mix(&self, batch: MixBatch, rng: &mut StdRng) -> Result<MixOutput, MixError>;
}
