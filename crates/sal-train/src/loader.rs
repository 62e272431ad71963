//! A deterministic, parallel, prefetching data loader that burn-train's Learner can drive.
//!
//! Why not burn's `DataLoaderBuilder`: its multi-threaded loader splits the data set into one
//! partition per worker and interleaves their batches in arrival order, so batch composition
//! depends on thread timing, and its RNG state is not part of a checkpoint. Here an epoch's
//! order is a pure function of (seed, epoch), each sample's augmentation a pure function of
//! (seed, epoch, position), so a run resumed at epoch `e` sees exactly the batches an
//! uninterrupted run would. Samples are decoded and augmented in parallel (rayon) on a
//! producer thread that stays `PREFETCH` batches ahead of training.
//!
//! A training step's global batch (`batch_size` images) may be cut into parts
//! ([`StepLayout`]): one per data-parallel device, times the micro-batches each accumulates.
//! The epoch's order is the same whatever the layout; step `s` takes the order's positions
//! `s*G .. (s+1)*G` and part `p` of it the `p`-th run of `G / parts` of them, so a step trains
//! on the same images on one device, on several, or in accumulated micro-batches. Device `k`
//! of `n` serves the parts `k, k + n, k + 2n, ...` of every step (docs/backends.md).
//!
//! An epoch is served in full or ends in an error: a sample that fails to load or transform, a
//! panic in a data set or transform, or a producer thread that stops early all make the
//! iterator yield one `Err` ([`EpochError`], wrapped in burn's `DatasetError`), on which
//! burn-train's epoch loop stops the run. Without that, a dead producer would look like the end
//! of the epoch and training would silently go on with part of the data.

use crate::data::{DataError, ImageDataset};
use crate::transform::SampleTransform;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use sal_core::Partners;
use sal_core::seed::{Stream, stream_rng};
use std::any::Any;
use std::fmt;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Batches the producer thread keeps ready ahead of the consumer.
const PREFETCH: usize = 2;

/// One mini-batch on the training device: a training step's global batch, or one part of it.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// Normalised images, `[N, C, H, W]`.
    pub images: Tensor<4>,
    /// Class indices, `[N]`.
    pub labels: Tensor<1, Int>,
    /// The epoch this batch belongs to, 1-based as burn-train counts.
    pub epoch: usize,
    /// The global training step, 0-based over the whole run: `(epoch - 1) * steps_per_epoch +
    /// step index`. The mixing methods derive the batch's random stream from it (and `part`).
    pub step: u64,
    /// Which part of its step's global batch this is ([`StepLayout`]); 0 when the step is one
    /// batch.
    pub part: u64,
    /// This part's share of its step's global batch, `N / global`: the weight of its mean
    /// loss, so that the gradients the parts add up are the gradient of the global batch's
    /// mean loss. 1 when the step is one batch.
    pub loss_weight: f32,
    /// Each image's mixing partner, drawn from the whole global batch (the loader's
    /// `with_global_partners`); `None`: the method pairs the batch with itself.
    pub partners: Option<Partners>,
}

impl ImageBatch {
    /// A whole step's batch (part 0, weight 1).
    pub fn new(images: Tensor<4>, labels: Tensor<1, Int>, epoch: usize, step: u64) -> Self {
        Self {
            images,
            labels,
            epoch,
            step,
            part: 0,
            loss_weight: 1.0,
            partners: None,
        }
    }
}

/// How a training step's global batch is cut into parts: `devices` data-parallel devices, each
/// running `accumulation` micro-batches before the step's one optimizer update. Parts are
/// numbered micro-batch-major, `j * devices + k` for device `k`'s micro-batch `j`, so device
/// `k` serves the parts `k, k + devices, ...` and one device with `accumulation = n` serves
/// the same parts, in the same order, as `n` devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLayout {
    pub devices: usize,
    pub accumulation: usize,
}

impl StepLayout {
    /// One device, one batch per step.
    pub const SINGLE: Self = Self {
        devices: 1,
        accumulation: 1,
    };

    /// Parts per step.
    pub fn parts(self) -> usize {
        self.devices * self.accumulation
    }
}

impl Default for StepLayout {
    fn default() -> Self {
        Self::SINGLE
    }
}

/// One batch of an epoch as a loader serves it: part `part` of the epoch's step `step`, the
/// positions `range` of the epoch's order, in a step of `global` images from position `start`.
#[derive(Debug, Clone, PartialEq)]
struct PartBatch {
    step: usize,
    part: usize,
    range: Range<usize>,
    start: usize,
    global: usize,
}

/// Why an epoch stopped before all of its images were served. The message is complete on its
/// own (which loader, which epoch, how far it got, what went wrong) because burn-train reports
/// only the `Display` of the `DatasetError` that wraps it.
#[derive(Debug, thiserror::Error)]
#[error("{mode} epoch {epoch}: served {served} of {total} images, then {cause}")]
pub struct EpochError {
    pub mode: LoaderMode,
    /// 1-based, as burn-train counts.
    pub epoch: usize,
    /// Images handed to the consumer before the failure.
    pub served: usize,
    /// Images the epoch should have served.
    pub total: usize,
    pub cause: LoadError,
}

/// What stopped an epoch.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The data set could not load item `index` (the message names its file).
    #[error("item {index}: {error}")]
    Data { index: usize, error: DataError },
    /// The item does not fit the transform (size, channels).
    #[error("item {index}: {problem}")]
    Transform { index: usize, problem: String },
    /// The data set's `load` or the transform panicked on item `index`.
    #[error("item {index}: loading or transforming it panicked: {message}")]
    Panicked { index: usize, message: String },
    /// The producer thread panicked outside a sample (a bug in the loader itself).
    #[error("the batch producer thread panicked: {message}")]
    ProducerPanicked { message: String },
    /// The producer thread ended without an error before the epoch was complete.
    #[error("the batch producer thread stopped before the end of the epoch")]
    ProducerStopped,
    /// The operating system refused to start the producer thread.
    #[error("the batch producer thread could not be started: {0}")]
    ProducerNotStarted(std::io::Error),
}

/// The host-side batch the producer thread prepares.
struct HostBatch {
    pixels: Vec<f32>,
    labels: Vec<usize>,
    epoch: usize,
    step: u64,
    part: u64,
    loss_weight: f32,
    /// The partners' pixels and labels (`with_global_partners`).
    partners: Option<(Vec<f32>, Vec<usize>)>,
}

/// Whether the loader serves training batches (shuffled, augmented) or evaluation batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoaderMode {
    Train,
    Eval,
}

impl fmt::Display for LoaderMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoaderMode::Train => "training",
            LoaderMode::Eval => "evaluation",
        })
    }
}

struct Shared {
    dataset: Arc<dyn ImageDataset>,
    transform: SampleTransform,
    /// The global batch: images per training step, all parts together.
    batch_size: usize,
    layout: StepLayout,
    /// Serve every image's mixing partner, drawn from the whole global batch.
    global_partners: bool,
    seed: u64,
    mode: LoaderMode,
}

/// See the module documentation.
#[derive(Clone)]
pub struct ImageLoader {
    shared: Arc<Shared>,
    /// The data-parallel device whose parts this loader serves (`slice`); every part when
    /// `None`.
    shard: Option<usize>,
    device: Device,
    /// The epoch (1-based, as burn-train counts) the next `iter()` serves; shared by every
    /// `to_device` copy so the trainer's handle can position a resumed run.
    next_epoch: Arc<AtomicUsize>,
}

impl ImageLoader {
    pub fn new(
        dataset: Arc<dyn ImageDataset>,
        transform: SampleTransform,
        batch_size: usize,
        seed: u64,
        mode: LoaderMode,
        device: Device,
    ) -> Self {
        assert!(batch_size > 0, "batch_size must be > 0");
        Self {
            shared: Arc::new(Shared {
                dataset,
                transform,
                batch_size,
                layout: StepLayout::SINGLE,
                global_partners: false,
                seed,
                mode,
            }),
            shard: None,
            device,
            next_epoch: Arc::new(AtomicUsize::new(1)),
        }
    }

    /// Cuts every step's batch into `layout`'s parts. The batch size must be a multiple of
    /// the parts (the config checks it: `[distributed]`).
    pub fn with_layout(self, layout: StepLayout) -> Self {
        let shared = &self.shared;
        assert!(
            layout.parts() > 0 && shared.batch_size.is_multiple_of(layout.parts()),
            "batch size {} is not a multiple of {} parts",
            shared.batch_size,
            layout.parts()
        );
        self.with_shared(|shared| shared.layout = layout)
    }

    /// Serves with every training batch its images' mixing partners ([`ImageBatch::partners`]):
    /// step `s` pairs its global batch with a permutation of itself, a function of (seed, `s`)
    /// (`Stream::Partners`), and each part gets its rows' partners, wherever in the global
    /// batch they are; a partner is the same augmented image its own part trains on.
    /// `mix_partner = "global"` (docs/backends.md).
    pub fn with_global_partners(self) -> Self {
        self.with_shared(|shared| shared.global_partners = true)
    }

    fn with_shared(self, change: impl FnOnce(&mut Shared)) -> Self {
        let old = &self.shared;
        let mut shared = Shared {
            dataset: old.dataset.clone(),
            transform: old.transform.clone(),
            ..**old
        };
        change(&mut shared);
        Self {
            shared: Arc::new(shared),
            ..self
        }
    }

    /// Makes the next `iter()` serve epoch `epoch` (1-based): used when resuming.
    pub fn start_at_epoch(&self, epoch: usize) {
        self.next_epoch.store(epoch, Ordering::SeqCst);
    }

    /// Training steps (optimizer updates) per epoch, counting a final partial batch.
    pub fn steps_per_epoch(&self) -> usize {
        self.shared.dataset.len().div_ceil(self.shared.batch_size)
    }

    /// Batches this loader serves per epoch: a step's parts count one each.
    pub fn batches_per_epoch(&self) -> usize {
        self.epoch_parts().len()
    }

    /// The batches of an epoch this loader serves (every part unless it is a shard), in
    /// serving order: see the module documentation.
    fn epoch_parts(&self) -> Vec<PartBatch> {
        let shared = &self.shared;
        let (len, parts) = (shared.dataset.len(), shared.layout.parts());
        let part_size = shared.batch_size / parts;
        let (first, stride) = match self.shard {
            Some(k) => (k, shared.layout.devices),
            None => (0, 1),
        };
        let mut batches = Vec::new();
        for (step, start) in (0..len).step_by(shared.batch_size).enumerate() {
            let end = (start + shared.batch_size).min(len);
            for part in (first..parts).step_by(stride) {
                let lo = start + part * part_size;
                if lo >= end {
                    break;
                }
                batches.push(PartBatch {
                    step,
                    part,
                    range: lo..(lo + part_size).min(end),
                    start,
                    global: end - start,
                });
            }
        }
        batches
    }

    /// The data set positions of `epoch` in the order they are served: one order for the whole
    /// set, whichever parts of it a loader serves.
    fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.shared.dataset.len()).collect();
        if self.shared.mode == LoaderMode::Train {
            order.shuffle(&mut stream_rng(
                self.shared.seed,
                Stream::Shuffle,
                &[epoch as u64],
            ));
        }
        order
    }
}

impl DataLoader<ImageBatch> for ImageLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let order = self.order(epoch);
        let batches = self.epoch_parts();
        let total = batches.iter().map(|b| b.range.len()).sum();
        let shared = self.shared.clone();
        let (sender, receiver) = sync_channel(PREFETCH);
        // The producer stops on its own when the iterator is dropped (the send fails). A spawn
        // failure drops the closure, and with it the sender: the iterator then reports it.
        let producer = std::thread::Builder::new()
            .name(format!("loader-epoch-{epoch}"))
            .spawn(move || produce(&shared, epoch, &order, &batches, &sender));
        Box::new(ImageBatchIter {
            receiver,
            producer: Some(producer),
            device: self.device.clone(),
            shape: [
                self.shared.transform.channels,
                self.shared.transform.height,
                self.shared.transform.width,
            ],
            mode: self.shared.mode,
            epoch,
            served: 0,
            total,
            done: false,
        })
    }

    fn num_items(&self) -> usize {
        match self.shard {
            None => self.shared.dataset.len(),
            Some(_) => self.epoch_parts().iter().map(|b| b.range.len()).sum(),
        }
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(Self {
            device: device.clone(),
            ..self.clone()
        })
    }

    /// Device `k`'s shard of a data-parallel run: the parts `k, k + n, ...` of every step
    /// (see the module documentation), with its own epoch counter, started at this loader's
    /// next epoch (burn's multi-device strategy iterates every shard once per epoch: a shared
    /// counter would advance once per shard).
    ///
    /// burn-train's `split_dataloader` asks for shards as contiguous ranges, `num_items / n`
    /// wide (the last takes the rest), for its `n` devices; the range's start only says which
    /// shard is meant, so the loader's [`StepLayout`] must have those `n` devices.
    fn slice(&self, start: usize, _end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        assert!(self.shard.is_none(), "a shard is not sliced again");
        let devices = self.shared.layout.devices;
        let width = (self.shared.dataset.len() / devices).max(1);
        Arc::new(Self {
            shard: Some((start / width).min(devices - 1)),
            next_epoch: Arc::new(AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst))),
            ..self.clone()
        })
    }
}

/// The producer thread: builds the epoch's `batches` of `order` in order and sends them,
/// stopping after the first error (sent too) or when the consumer has gone.
fn produce(
    shared: &Shared,
    epoch: usize,
    order: &[usize],
    batches: &[PartBatch],
    sender: &SyncSender<Result<HostBatch, LoadError>>,
) {
    let steps_per_epoch = order.len().div_ceil(shared.batch_size) as u64;
    for part in batches {
        let step = (epoch as u64).saturating_sub(1) * steps_per_epoch + part.step as u64;
        let batch = build_part(shared, epoch, step, order, part);
        let failed = batch.is_err();
        if sender.send(batch).is_err() || failed {
            return;
        }
    }
}

/// One part's host batch: its images, its weight and, with global partners, the partners'.
fn build_part(
    shared: &Shared,
    epoch: usize,
    step: u64,
    order: &[usize],
    part: &PartBatch,
) -> Result<HostBatch, LoadError> {
    let batch = build_batch(shared, epoch, step, &order[part.range.clone()])?;
    let partners = match shared.global_partners && shared.mode == LoaderMode::Train {
        false => None,
        true => {
            let mut pairing: Vec<usize> = (0..part.global).collect();
            pairing.shuffle(&mut stream_rng(shared.seed, Stream::Partners, &[step]));
            let rows = part.range.start - part.start..part.range.end - part.start;
            let positions: Vec<usize> = pairing[rows]
                .iter()
                .map(|&row| order[part.start + row])
                .collect();
            let partners = build_batch(shared, epoch, step, &positions)?;
            Some((partners.pixels, partners.labels))
        }
    };
    Ok(HostBatch {
        part: part.part as u64,
        loss_weight: (part.range.len() as f64 / part.global as f64) as f32,
        partners,
        ..batch
    })
}

/// Decodes and augments the samples at `positions` in parallel into one host batch. The
/// reported error is the one of the first failing position in batch order, whichever worker
/// saw it first, so the message does not depend on thread timing.
fn build_batch(
    shared: &Shared,
    epoch: usize,
    step: u64,
    positions: &[usize],
) -> Result<HostBatch, LoadError> {
    let sample_len = shared.transform.sample_len();
    let mut pixels = vec![0f32; positions.len() * sample_len];
    let labels: Vec<Result<usize, LoadError>> = pixels
        .par_chunks_mut(sample_len)
        .zip(positions.par_iter())
        .map(|(out, &position)| {
            // A panic here would otherwise unwind through rayon into the producer thread and
            // end it, which the consumer could only see as a closed channel. Unwind safety: on
            // a panic the half-written `out` belongs to a batch that is dropped, and the epoch
            // stops, so no broken state is observed afterwards.
            catch_unwind(AssertUnwindSafe(|| {
                load_sample(shared, epoch, position, out)
            }))
            .unwrap_or_else(|payload| {
                Err(LoadError::Panicked {
                    index: position,
                    message: panic_message(payload.as_ref()),
                })
            })
        })
        .collect();
    let labels = labels
        .into_iter()
        .collect::<Result<Vec<usize>, LoadError>>()?;
    Ok(HostBatch {
        pixels,
        labels,
        epoch,
        step,
        part: 0,
        loss_weight: 1.0,
        partners: None,
    })
}

/// Loads item `position` and writes it, augmented in training, into `out`; returns its label.
fn load_sample(
    shared: &Shared,
    epoch: usize,
    position: usize,
    out: &mut [f32],
) -> Result<usize, LoadError> {
    let item = shared
        .dataset
        .load(position)
        .map_err(|error| LoadError::Data {
            index: position,
            error,
        })?;
    let result = match shared.mode {
        LoaderMode::Train => {
            let mut rng = stream_rng(
                shared.seed,
                Stream::SampleAugment,
                &[epoch as u64, position as u64],
            );
            shared.transform.apply(&item, Some(&mut rng), out)
        }
        LoaderMode::Eval => shared
            .transform
            .apply(&item, None::<&mut rand::rngs::StdRng>, out),
    };
    result.map_err(|problem| LoadError::Transform {
        index: position,
        problem,
    })?;
    Ok(item.label)
}

/// The text of a panic payload (`panic!` with a literal or a format string gives `&str` or
/// `String`; anything else is rare).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

struct ImageBatchIter {
    receiver: Receiver<Result<HostBatch, LoadError>>,
    /// Joined once the channel closes, to tell a finished producer from a dead one.
    producer: Option<std::io::Result<JoinHandle<()>>>,
    device: Device,
    shape: [usize; 3],
    mode: LoaderMode,
    epoch: usize,
    served: usize,
    total: usize,
    /// Set after the last batch or the error: the iterator is fused.
    done: bool,
}

impl ImageBatchIter {
    fn labels(&self, labels: &[usize]) -> Tensor<1, Int> {
        let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        Tensor::from_data(TensorData::new(values, [labels.len()]), &self.device)
    }

    fn fail(&mut self, cause: LoadError) -> Option<Result<ImageBatch, DatasetError>> {
        self.done = true;
        Some(Err(DatasetError::new(EpochError {
            mode: self.mode,
            epoch: self.epoch,
            served: self.served,
            total: self.total,
            cause,
        })))
    }

    /// The channel closed: the producer has ended, after the last batch or not.
    fn producer_ended(&mut self) -> Option<Result<ImageBatch, DatasetError>> {
        self.done = true;
        let outcome = match self.producer.take() {
            Some(Ok(handle)) => handle
                .join()
                .map_err(|payload| LoadError::ProducerPanicked {
                    message: panic_message(payload.as_ref()),
                }),
            Some(Err(spawn_error)) => Err(LoadError::ProducerNotStarted(spawn_error)),
            None => Ok(()),
        };
        match outcome {
            Err(cause) => self.fail(cause),
            Ok(()) if self.served < self.total => self.fail(LoadError::ProducerStopped),
            Ok(()) => None,
        }
    }
}

impl Iterator for ImageBatchIter {
    type Item = Result<ImageBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let host = match self.receiver.recv() {
            Ok(Ok(host)) => host,
            Ok(Err(cause)) => return self.fail(cause),
            Err(_) => return self.producer_ended(),
        };
        let n = host.labels.len();
        self.served += n;
        let [c, h, w] = self.shape;
        let images =
            Tensor::<4>::from_data(TensorData::new(host.pixels, [n, c, h, w]), &self.device);
        let labels = self.labels(&host.labels);
        let partners = host.partners.map(|(pixels, labels)| Partners {
            images: Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), &self.device),
            labels: self.labels(&labels),
        });
        Some(Ok(ImageBatch {
            images,
            labels,
            epoch: host.epoch,
            step: host.step,
            part: host.part,
            loss_weight: host.loss_weight,
            partners,
        }))
    }
}

impl DataLoaderIterator<ImageBatch> for ImageBatchIter {
    fn progress(&self) -> Progress {
        Progress::new(self.served, self.total, Some("images".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ImageItem, InMemoryImages};
    use crate::transform::{Normalization, TransformConfig};
    use std::collections::HashMap;
    use std::error::Error as _;
    use std::path::Path;

    /// Images in the test set; with batches of 5 the last batch holds 3.
    const N: usize = 23;
    const BATCH: usize = 5;
    const H: usize = 6;
    const W: usize = 6;
    const C: usize = 3;

    /// Item `i` has label `i`, so a served label names the position it came from, and pixels
    /// in 1..=250 that differ between items (0 is left for the crop's zero padding).
    fn images() -> InMemoryImages {
        let len = H * W * C;
        let pixels = (0..N * len)
            .map(|k| ((k / len) * 31 + (k % len) * 7) % 250 + 1)
            .map(|v| v as u8)
            .collect();
        let labels = (0..N as u8).collect();
        let names = (0..N).map(|i| i.to_string()).collect();
        InMemoryImages::from_parts("test".into(), pixels, labels, H, W, C, names).unwrap()
    }

    /// Random crop (padding 2) and flip, normalised so that an output value is its u8 source.
    fn augmenting() -> SampleTransform {
        let config = TransformConfig {
            crop_padding: 2,
            hflip: true,
            ..Default::default()
        };
        let identity = Normalization {
            mean: vec![0.0; C],
            std: vec![1.0 / 255.0; C],
        };
        SampleTransform::new(&config, C, H, W, identity)
    }

    fn loader_over(
        dataset: impl ImageDataset + 'static,
        batch_size: usize,
        seed: u64,
        mode: LoaderMode,
    ) -> ImageLoader {
        let dataset: Arc<dyn ImageDataset> = Arc::new(dataset);
        ImageLoader::new(
            dataset,
            augmenting(),
            batch_size,
            seed,
            mode,
            Device::flex(),
        )
    }

    fn loader(batch_size: usize, seed: u64, mode: LoaderMode) -> ImageLoader {
        loader_over(images(), batch_size, seed, mode)
    }

    /// What one epoch served, read back from the device.
    #[derive(Debug, PartialEq)]
    struct Served {
        labels: Vec<usize>,
        /// Per sample, in serving order: its CHW values rounded back to the u8 they show.
        samples: Vec<Vec<u8>>,
        batch_sizes: Vec<usize>,
        steps: Vec<u64>,
        epochs: Vec<usize>,
    }

    impl Served {
        /// Samples by label (= data set position).
        fn by_position(&self) -> HashMap<usize, &[u8]> {
            let pairs = self.labels.iter().zip(&self.samples);
            pairs.map(|(&l, s)| (l, s.as_slice())).collect()
        }
    }

    fn serve(loader: &dyn DataLoader<ImageBatch>) -> Served {
        let mut served = Served {
            labels: vec![],
            samples: vec![],
            batch_sizes: vec![],
            steps: vec![],
            epochs: vec![],
        };
        let mut iter = loader.iter();
        for batch in iter.by_ref() {
            let batch = batch.unwrap();
            let labels = batch.labels.try_to_vec_as::<i64>().unwrap();
            let pixels = batch.images.try_to_vec_as::<f32>().unwrap();
            assert_eq!(pixels.len(), labels.len() * C * H * W);
            served.labels.extend(labels.iter().map(|&l| l as usize));
            served.samples.extend(
                pixels
                    .chunks(C * H * W)
                    .map(|s| s.iter().map(|v| v.round() as u8).collect()),
            );
            served.batch_sizes.push(labels.len());
            served.steps.push(batch.step);
            served.epochs.push(batch.epoch);
        }
        let progress = iter.progress();
        assert_eq!(progress.items_processed, progress.items_total);
        assert_eq!(progress.items_total, loader.num_items());
        served
    }

    /// Item `i` of `images()` in CHW order, as the loader writes it without augmentation.
    fn unaugmented(i: usize) -> Vec<u8> {
        let item = images().load(i).unwrap();
        let mut chw = vec![0; C * H * W];
        for (k, &v) in item.pixels.iter().enumerate() {
            let (pixel, ch) = (k / C, k % C);
            chw[ch * H * W + pixel] = v;
        }
        chw
    }

    fn is_permutation(labels: &[usize], range: Range<usize>) -> bool {
        let mut sorted = labels.to_vec();
        sorted.sort_unstable();
        sorted == range.collect::<Vec<_>>()
    }

    #[test]
    fn order_is_a_function_of_seed_and_epoch() {
        let (a, b) = (
            loader(BATCH, 7, LoaderMode::Train),
            loader(BATCH, 7, LoaderMode::Train),
        );
        let a_epochs: Vec<_> = (0..3).map(|_| serve(&a).labels).collect();
        let b_epochs: Vec<_> = (0..3).map(|_| serve(&b).labels).collect();
        assert_eq!(a_epochs, b_epochs);
        for labels in &a_epochs {
            assert!(is_permutation(labels, 0..N), "{labels:?}");
        }
        assert_ne!(a_epochs[0], a_epochs[1]);
        assert_ne!(a_epochs[1], a_epochs[2]);
        assert_ne!(a_epochs[0], a_epochs[2]);
        let other_seed = serve(&loader(BATCH, 8, LoaderMode::Train)).labels;
        assert_ne!(other_seed, a_epochs[0]);
        // The batch size only cuts the order, it does not change it.
        assert_eq!(serve(&loader(7, 7, LoaderMode::Train)).labels, a_epochs[0]);
    }

    #[test]
    fn eval_mode_is_unshuffled() {
        let eval = loader(BATCH, 7, LoaderMode::Eval);
        for _ in 0..2 {
            assert_eq!(serve(&eval).labels, (0..N).collect::<Vec<_>>());
        }
    }

    #[test]
    fn start_at_epoch_serves_what_an_uninterrupted_run_serves() {
        let uninterrupted = loader(BATCH, 3, LoaderMode::Train);
        serve(&uninterrupted);
        serve(&uninterrupted);
        let third = serve(&uninterrupted);
        // The trainer keeps one handle and burn-train iterates its `to_device` copy.
        let resumed = loader(BATCH, 3, LoaderMode::Train);
        let learner_copy = resumed.to_device(&Device::flex());
        resumed.start_at_epoch(3);
        let served = serve(&*learner_copy);
        assert_eq!(served, third);
        assert!(served.epochs.iter().all(|&e| e == 3));
        // And it goes on from there.
        assert_eq!(serve(&*learner_copy), serve(&uninterrupted));
    }

    #[test]
    fn augmentation_is_a_function_of_seed_epoch_and_position() {
        // Different batch sizes put each image into another batch at another position.
        let (a, b) = (
            loader(BATCH, 11, LoaderMode::Train),
            loader(7, 11, LoaderMode::Train),
        );
        let (a1, a2) = (serve(&a), serve(&a));
        let (b1, b2) = (serve(&b), serve(&b));
        assert_eq!(a1.by_position(), b1.by_position());
        assert_eq!(a2.by_position(), b2.by_position());
        // It does augment, and differently per epoch and per seed.
        let (a1, a2) = (a1.by_position(), a2.by_position());
        assert!((0..N).any(|i| a1[&i] != unaugmented(i)));
        assert!((0..N).any(|i| a1[&i] != a2[&i]));
        let other_seed = serve(&loader(BATCH, 12, LoaderMode::Train));
        assert_ne!(other_seed.by_position(), a1);
    }

    #[test]
    fn eval_mode_applies_no_random_augmentation() {
        // The transform has crop and flip switched on; evaluation must not use them.
        let eval = loader(BATCH, 11, LoaderMode::Eval);
        for _ in 0..2 {
            let served = serve(&eval);
            for (&label, sample) in served.labels.iter().zip(&served.samples) {
                assert_eq!(sample, &unaugmented(label), "item {label}");
            }
        }
    }

    /// Every batch an epoch of `loader` served: (step, part, labels, loss weight).
    fn parts_served(loader: &dyn DataLoader<ImageBatch>) -> Vec<(u64, u64, Vec<usize>, f32)> {
        let mut iter = loader.iter();
        let parts = iter
            .by_ref()
            .map(|batch| {
                let batch = batch.unwrap();
                let labels = batch.labels.try_to_vec_as::<i64>().unwrap();
                let labels = labels.iter().map(|&l| l as usize).collect();
                (batch.step, batch.part, labels, batch.loss_weight)
            })
            .collect();
        let progress = iter.progress();
        assert_eq!(progress.items_processed, progress.items_total);
        assert_eq!(progress.items_total, loader.num_items());
        parts
    }

    #[test]
    fn data_parallel_shards_serve_the_parts_of_each_step_of_one_global_order() {
        use burn::data::dataloader::split::split_dataloader;
        // Global batch 6 over 23 images: steps of 6, 6, 6 and 5.
        const G: usize = 6;
        let whole = |layout| loader(G, 5, LoaderMode::Train).with_layout(layout);
        let unsharded = whole(StepLayout::SINGLE);
        let reference: Vec<_> = (0..2).map(|_| parts_served(&unsharded)).collect();
        assert_eq!(reference[0].len(), 4);
        for (devices, accumulation) in [(2, 1), (3, 1), (1, 2), (2, 3), (6, 1)] {
            let layout = StepLayout {
                devices,
                accumulation,
            };
            let part_size = G / layout.parts();
            let shards = split_dataloader(
                Arc::new(whole(layout)) as Arc<dyn DataLoader<ImageBatch>>,
                &vec![Device::flex(); devices],
            );
            assert_eq!(shards.len(), devices);
            assert_eq!(shards.iter().map(|s| s.num_items()).sum::<usize>(), N);
            for reference in &reference {
                let mut all = Vec::new();
                for (k, shard) in shards.iter().enumerate() {
                    let served = parts_served(&**shard);
                    // Device k serves parts k, k + devices, ... of each step, in order.
                    for (step, part, _, _) in &served {
                        assert_eq!(*part as usize % devices, k, "{layout:?}");
                        assert!((*part as usize) < layout.parts(), "{layout:?} step {step}");
                    }
                    all.extend(served);
                }
                all.sort_by_key(|(step, part, _, _)| (*step, *part));
                // Glued back in part order, each step is the unsharded step's batch.
                for (step, whole_step) in reference.iter().enumerate() {
                    let parts: Vec<_> = all.iter().filter(|p| p.0 == whole_step.0).collect();
                    let glued: Vec<usize> = parts.iter().flat_map(|p| p.2.clone()).collect();
                    assert_eq!(glued, whole_step.2, "{layout:?} step {step}");
                    let weights: f32 = parts.iter().map(|p| p.3).sum();
                    assert!(
                        (weights - 1.0).abs() < 1e-6,
                        "{layout:?} step {step}: {weights}"
                    );
                    for p in &parts {
                        assert!(p.2.len() <= part_size && !p.2.is_empty(), "{layout:?}");
                        let share = p.2.len() as f32 / whole_step.2.len() as f32;
                        assert_eq!(p.3, share, "{layout:?} step {step}");
                    }
                    let numbers: Vec<u64> = parts.iter().map(|p| p.1).collect();
                    assert_eq!(numbers, (0..parts.len() as u64).collect::<Vec<_>>());
                }
            }
        }
    }

    /// Per batch of an epoch: (step, part, labels, the partners' labels, the partners' samples
    /// rounded back to u8).
    type WithPartners = (u64, u64, Vec<usize>, Vec<usize>, Vec<Vec<u8>>);

    fn partners_served(loader: &dyn DataLoader<ImageBatch>) -> Vec<WithPartners> {
        let to_labels = |t: Tensor<1, Int>| -> Vec<usize> {
            let values = t.try_to_vec_as::<i64>().unwrap();
            values.iter().map(|&l| l as usize).collect()
        };
        loader
            .iter()
            .map(|batch| {
                let batch = batch.unwrap();
                let partners = batch.partners.expect("partners are served");
                let pixels = partners.images.try_to_vec_as::<f32>().unwrap();
                let samples = pixels
                    .chunks(C * H * W)
                    .map(|s| s.iter().map(|v| v.round() as u8).collect())
                    .collect();
                let labels = to_labels(batch.labels);
                (
                    batch.step,
                    batch.part,
                    labels,
                    to_labels(partners.labels),
                    samples,
                )
            })
            .collect()
    }

    #[test]
    fn global_partners_pair_each_step_with_a_permutation_of_itself_on_any_layout() {
        use burn::data::dataloader::split::split_dataloader;
        const G: usize = 6;
        let whole = |layout| {
            loader(G, 5, LoaderMode::Train)
                .with_layout(layout)
                .with_global_partners()
        };
        let reference = serve(&loader(G, 5, LoaderMode::Train));
        let pixels = reference.by_position();
        // One device, one part per step: the step's partners.
        let single = partners_served(&whole(StepLayout::SINGLE));
        let mut moved = 0;
        for (step, _, labels, partners, samples) in &single {
            let mut sorted = partners.clone();
            sorted.sort_unstable();
            let mut own = labels.clone();
            own.sort_unstable();
            assert_eq!(
                sorted, own,
                "step {step}: the partners are the step's own images"
            );
            moved += labels.iter().zip(partners).filter(|(a, b)| a != b).count();
            // A partner is the image as its own part trains on it (the same augmentation).
            for (label, sample) in partners.iter().zip(samples) {
                assert_eq!(
                    sample.as_slice(),
                    pixels[label],
                    "step {step} partner {label}"
                );
            }
        }
        assert!(moved > N / 2, "the pairing hardly moves anything: {moved}");
        // Two devices: each part gets its rows' partners from the whole step.
        let layout = StepLayout {
            devices: 2,
            accumulation: 1,
        };
        let shards = split_dataloader(
            Arc::new(whole(layout)) as Arc<dyn DataLoader<ImageBatch>>,
            &[Device::flex(), Device::flex()],
        );
        let mut parts: Vec<WithPartners> = shards
            .iter()
            .flat_map(|shard| partners_served(&**shard))
            .collect();
        parts.sort_by_key(|p| (p.0, p.1));
        let mut crossed = 0;
        for (step, whole_step) in single.iter().enumerate() {
            let of_step: Vec<_> = parts.iter().filter(|p| p.0 == whole_step.0).collect();
            let glued: Vec<usize> = of_step.iter().flat_map(|p| p.3.clone()).collect();
            assert_eq!(glued, whole_step.3, "step {step}");
            for p in &of_step {
                crossed += p.3.iter().filter(|l| !p.2.contains(l)).count();
            }
        }
        assert!(crossed > 0, "no partner came from the other part");
        // Without the switch there are none.
        assert!(
            loader(G, 5, LoaderMode::Train)
                .iter()
                .all(|b| b.unwrap().partners.is_none())
        );
    }

    #[test]
    fn a_shard_augments_each_image_as_the_whole_loader_does() {
        use burn::data::dataloader::split::split_dataloader;
        let layout = StepLayout {
            devices: 2,
            accumulation: 1,
        };
        let reference = serve(&loader(6, 9, LoaderMode::Train));
        let reference = reference.by_position();
        let whole = loader(6, 9, LoaderMode::Train).with_layout(layout);
        let shards = split_dataloader(
            Arc::new(whole) as Arc<dyn DataLoader<ImageBatch>>,
            &[Device::flex(), Device::flex()],
        );
        let mut seen = 0;
        for shard in &shards {
            let served = serve(&**shard);
            assert!(served.epochs.iter().all(|&e| e == 1));
            for (label, sample) in served.by_position() {
                assert_eq!(sample, reference[&label], "item {label}");
                seen += 1;
            }
        }
        assert_eq!(seen, N);
    }

    #[test]
    fn steps_count_every_batch_of_the_run_including_the_final_partial_one() {
        let train = loader(BATCH, 1, LoaderMode::Train);
        assert_eq!(train.steps_per_epoch(), 5);
        for epoch in 1..=3u64 {
            let served = serve(&train);
            assert_eq!(served.batch_sizes, vec![5, 5, 5, 5, 3]);
            let first = (epoch - 1) * 5;
            assert_eq!(served.steps, (first..first + 5).collect::<Vec<_>>());
            assert_eq!(served.epochs, vec![epoch as usize; 5]);
        }
        let resumed = loader(BATCH, 1, LoaderMode::Train);
        resumed.start_at_epoch(7);
        assert_eq!(serve(&resumed).steps, (30..35).collect::<Vec<_>>());
        // An exact multiple has no partial batch.
        let even = loader(N, 1, LoaderMode::Eval);
        assert_eq!(even.steps_per_epoch(), 1);
        assert_eq!(serve(&even).steps, vec![0]);
        assert_eq!(serve(&even).steps, vec![1]);
    }

    /// `images()` whose item `at` panics or fails to load.
    struct Faulty {
        inner: InMemoryImages,
        at: usize,
        panics: bool,
    }

    impl ImageDataset for Faulty {
        fn len(&self) -> usize {
            self.inner.len()
        }

        fn load(&self, index: usize) -> Result<ImageItem, DataError> {
            match (index == self.at, self.panics) {
                (true, true) => panic!("decoder exploded on item {index}"),
                (true, false) => Err(DataError::invalid(Path::new("test/13.png"), "corrupt")),
                (false, _) => self.inner.load(index),
            }
        }

        fn num_classes(&self) -> usize {
            self.inner.num_classes()
        }

        fn class_names(&self) -> &[String] {
            self.inner.class_names()
        }
    }

    fn faulty(panics: bool) -> Faulty {
        Faulty {
            inner: images(),
            at: 13,
            panics,
        }
    }

    /// Iterates one epoch to its end: the batches served before the error, and the error,
    /// which must be the last item.
    fn serve_until_error(loader: &dyn DataLoader<ImageBatch>) -> (usize, DatasetError) {
        let mut iter = loader.iter();
        let mut batches = 0;
        let error = loop {
            match iter.next() {
                Some(Ok(_)) => batches += 1,
                Some(Err(error)) => break error,
                None => panic!("the epoch ended without an error after {batches} batches"),
            }
        };
        assert!(iter.next().is_none(), "nothing follows the error");
        (batches, error)
    }

    fn epoch_error(error: &DatasetError) -> &EpochError {
        error
            .source()
            .and_then(|e| e.downcast_ref::<EpochError>())
            .expect("the EpochError is the source")
    }

    #[test]
    fn a_panicking_load_is_an_error_not_a_short_epoch() {
        // Unshuffled, item 13 is in the third batch: two batches (10 images) come first.
        let eval = loader_over(faulty(true), BATCH, 0, LoaderMode::Eval);
        let (batches, error) = serve_until_error(&eval);
        assert_eq!(batches, 2);
        let message = error.to_string();
        assert_eq!(
            message,
            "evaluation epoch 1: served 10 of 23 images, then item 13: loading or \
             transforming it panicked: decoder exploded on item 13"
        );
        let e = epoch_error(&error);
        assert_eq!((e.epoch, e.served, e.total), (1, 10, 23));
        assert!(matches!(e.cause, LoadError::Panicked { index: 13, .. }));

        // Shuffled, at a later epoch: the error names that epoch and stops where item 13 is.
        let train = loader_over(faulty(true), BATCH, 9, LoaderMode::Train);
        train.start_at_epoch(4);
        let reference = loader(BATCH, 9, LoaderMode::Train);
        reference.start_at_epoch(4);
        let position = serve(&reference).labels.iter().position(|&l| l == 13);
        let expected_batches = position.unwrap() / BATCH;
        let (batches, error) = serve_until_error(&train);
        assert_eq!(batches, expected_batches);
        let e = epoch_error(&error);
        assert_eq!((e.epoch, e.served), (4, expected_batches * BATCH));
        assert!(
            error.to_string().starts_with(&format!(
                "training epoch 4: served {} of 23 images, then item 13: ",
                expected_batches * BATCH
            )),
            "{error}"
        );
    }

    #[test]
    fn a_failing_load_is_an_error_not_a_short_epoch() {
        let eval = loader_over(faulty(false), BATCH, 0, LoaderMode::Eval);
        let (batches, error) = serve_until_error(&eval);
        assert_eq!(batches, 2);
        assert_eq!(
            error.to_string(),
            "evaluation epoch 1: served 10 of 23 images, then item 13: test/13.png: corrupt"
        );
        let e = epoch_error(&error);
        assert!(matches!(e.cause, LoadError::Data { index: 13, .. }));
        // The next epoch is tried afresh (and fails the same way).
        let (_, error) = serve_until_error(&eval);
        assert_eq!(epoch_error(&error).epoch, 2);
    }

    #[test]
    fn a_sample_the_transform_rejects_is_an_error() {
        // Images one column narrower than the transform expects.
        let odd = images();
        let odd = InMemoryImages::from_parts(
            "odd".into(),
            odd.pixels()[..N * H * (W - 1) * C].to_vec(),
            odd.labels().to_vec(),
            H,
            W - 1,
            C,
            odd.class_names().to_vec(),
        )
        .unwrap();
        let eval = loader_over(odd, BATCH, 0, LoaderMode::Eval);
        let (batches, error) = serve_until_error(&eval);
        assert_eq!(batches, 0);
        assert!(
            error.to_string().starts_with(
                "evaluation epoch 1: served 0 of 23 images, then item 0: image is 6x5"
            ),
            "{error}"
        );
    }

    /// An iterator over batches a hand-made producer sends: 2-image batches, 4 images due.
    fn iter_fed_by(
        producer: impl FnOnce(SyncSender<Result<HostBatch, LoadError>>) + Send + 'static,
    ) -> ImageBatchIter {
        let (sender, receiver) = sync_channel(PREFETCH);
        ImageBatchIter {
            receiver,
            producer: Some(std::thread::Builder::new().spawn(move || producer(sender))),
            device: Device::flex(),
            shape: [1, 1, 1],
            mode: LoaderMode::Train,
            epoch: 2,
            served: 0,
            total: 4,
            done: false,
        }
    }

    fn host_batch() -> Result<HostBatch, LoadError> {
        Ok(HostBatch {
            pixels: vec![0.0; 2],
            labels: vec![0, 1],
            epoch: 2,
            step: 0,
            part: 0,
            loss_weight: 1.0,
            partners: None,
        })
    }

    #[test]
    fn a_producer_that_dies_or_stops_early_is_an_error() {
        let mut panicking = iter_fed_by(|sender| {
            sender.send(host_batch()).unwrap();
            panic!("producer bug");
        });
        assert!(panicking.next().unwrap().is_ok());
        let error = panicking.next().unwrap().unwrap_err();
        assert_eq!(
            error.to_string(),
            "training epoch 2: served 2 of 4 images, then the batch producer thread panicked: \
             producer bug"
        );
        assert!(panicking.next().is_none());

        let mut stopping = iter_fed_by(|sender| sender.send(host_batch()).unwrap());
        assert!(stopping.next().unwrap().is_ok());
        let error = stopping.next().unwrap().unwrap_err();
        assert!(matches!(
            epoch_error(&error).cause,
            LoadError::ProducerStopped
        ));
        assert!(
            error.to_string().contains("served 2 of 4 images"),
            "{error}"
        );

        let mut complete = iter_fed_by(|sender| {
            sender.send(host_batch()).unwrap();
            sender.send(host_batch()).unwrap();
        });
        assert!(complete.next().unwrap().is_ok());
        assert!(complete.next().unwrap().is_ok());
        assert!(complete.next().is_none());
    }
}
