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

/// One mini-batch on the training device.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// Normalised images, `[N, C, H, W]`.
    pub images: Tensor<4>,
    /// Class indices, `[N]`.
    pub labels: Tensor<1, Int>,
    /// The epoch this batch belongs to, 1-based as burn-train counts.
    pub epoch: usize,
    /// The global training step, 0-based over the whole run: `(epoch - 1) * batches_per_epoch +
    /// batch index`. The mixing methods derive the batch's random stream from it.
    pub step: u64,
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
    batch_size: usize,
    seed: u64,
    mode: LoaderMode,
}

/// See the module documentation.
#[derive(Clone)]
pub struct ImageLoader {
    shared: Arc<Shared>,
    /// The data set positions this loader serves (all of them unless sliced).
    range: Range<usize>,
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
        let range = 0..dataset.len();
        Self {
            shared: Arc::new(Shared {
                dataset,
                transform,
                batch_size,
                seed,
                mode,
            }),
            range,
            device,
            next_epoch: Arc::new(AtomicUsize::new(1)),
        }
    }

    /// Makes the next `iter()` serve epoch `epoch` (1-based): used when resuming.
    pub fn start_at_epoch(&self, epoch: usize) {
        self.next_epoch.store(epoch, Ordering::SeqCst);
    }

    /// Batches per epoch, counting a final partial batch.
    pub fn batches_per_epoch(&self) -> usize {
        self.range.len().div_ceil(self.shared.batch_size)
    }

    /// The positions of `epoch` in the order they are served.
    fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = self.range.clone().collect();
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
        let total = order.len();
        let shared = self.shared.clone();
        let (sender, receiver) = sync_channel(PREFETCH);
        // The producer stops on its own when the iterator is dropped (the send fails). A spawn
        // failure drops the closure, and with it the sender: the iterator then reports it.
        let producer = std::thread::Builder::new()
            .name(format!("loader-epoch-{epoch}"))
            .spawn(move || produce(&shared, epoch, &order, &sender));
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
        self.range.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(Self {
            device: device.clone(),
            ..self.clone()
        })
    }

    /// A shard of this loader's positions. It counts epochs on its own, from this loader's
    /// next epoch: burn's multi-device strategies iterate every shard once per epoch, and a
    /// shared counter would advance once per shard, putting the shards on different epochs.
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        let end = (self.range.start + end).min(self.range.end);
        let start = (self.range.start + start).min(end);
        Arc::new(Self {
            range: start..end,
            next_epoch: Arc::new(AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst))),
            ..self.clone()
        })
    }
}

/// The producer thread: builds the epoch's batches in order and sends them, stopping after the
/// first error (sent too) or when the consumer has gone.
fn produce(
    shared: &Shared,
    epoch: usize,
    order: &[usize],
    sender: &SyncSender<Result<HostBatch, LoadError>>,
) {
    let batches_per_epoch = order.len().div_ceil(shared.batch_size) as u64;
    for (batch_index, positions) in order.chunks(shared.batch_size).enumerate() {
        let step = (epoch as u64).saturating_sub(1) * batches_per_epoch + batch_index as u64;
        let batch = build_batch(shared, epoch, step, positions);
        let failed = batch.is_err();
        if sender.send(batch).is_err() || failed {
            return;
        }
    }
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
        let label_values: Vec<i64> = host.labels.iter().map(|&l| l as i64).collect();
        let labels = Tensor::<1, Int>::from_data(TensorData::new(label_values, [n]), &self.device);
        Some(Ok(ImageBatch {
            images,
            labels,
            epoch: host.epoch,
            step: host.step,
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

    #[test]
    fn slices_serve_exactly_their_range_and_cover_the_set_once() {
        for mode in [LoaderMode::Train, LoaderMode::Eval] {
            let whole = loader(BATCH, 5, mode);
            let unsliced = serve(&loader(BATCH, 5, mode));
            let reference = unsliced.by_position();
            let bounds = [(0, 8), (8, 15), (15, 40)];
            let shards: Vec<_> = bounds.iter().map(|&(s, e)| whole.slice(s, e)).collect();
            let mut all = vec![];
            for (shard, &(start, end)) in shards.iter().zip(&bounds) {
                let range = start..end.min(N);
                assert_eq!(shard.num_items(), range.len());
                let served = serve(&**shard);
                assert!(
                    is_permutation(&served.labels, range.clone()),
                    "{mode:?} {range:?}"
                );
                if mode == LoaderMode::Eval {
                    assert_eq!(served.labels, range.collect::<Vec<_>>());
                }
                // Every shard serves the same epoch, with the whole set's augmentation.
                assert!(served.epochs.iter().all(|&e| e == 1), "{mode:?}");
                for (label, sample) in served.by_position() {
                    assert_eq!(sample, reference[&label], "{mode:?} item {label}");
                }
                all.extend(served.labels);
            }
            assert!(is_permutation(&all, 0..N), "{mode:?} {all:?}");
            // A slice of a slice is relative to its parent; out-of-range bounds are clamped.
            let nested = serve(&*shards[1].slice(2, 4)).labels;
            assert!(is_permutation(&nested, 10..12), "{nested:?}");
            assert_eq!(whole.slice(30, 40).num_items(), 0);
            assert_eq!(serve(&*whole.slice(30, 40)).labels, Vec::<usize>::new());
        }
    }

    #[test]
    fn steps_count_every_batch_of_the_run_including_the_final_partial_one() {
        let train = loader(BATCH, 1, LoaderMode::Train);
        assert_eq!(train.batches_per_epoch(), 5);
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
        assert_eq!(even.batches_per_epoch(), 1);
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
