//! A deterministic, parallel, prefetching data loader that burn-train's Learner can drive.
//!
//! Why not burn's `DataLoaderBuilder`: its multi-threaded loader splits the data set into one
//! partition per worker and interleaves their batches in arrival order, so batch composition
//! depends on thread timing, and its RNG state is not part of a checkpoint. Here an epoch's
//! order is a pure function of (seed, epoch), each sample's augmentation a pure function of
//! (seed, epoch, position), so a run resumed at epoch `e` sees exactly the batches an
//! uninterrupted run would. Samples are decoded and augmented in parallel (rayon) on a
//! producer thread that stays `PREFETCH` batches ahead of training.

use crate::data::{DataError, ImageDataset};
use crate::transform::SampleTransform;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use sal_core::seed::{Stream, stream_rng};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

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

/// Why a batch could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("sample {index}: {problem}")]
    Transform { index: usize, problem: String },
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
    /// `to_device`/`slice` copy so the trainer's handle can position a resumed run.
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
        // The producer stops on its own when the iterator is dropped (the send fails).
        std::thread::spawn(move || {
            let batches_per_epoch = order.len().div_ceil(shared.batch_size) as u64;
            for (batch_index, positions) in order.chunks(shared.batch_size).enumerate() {
                let step = (epoch as u64 - 1) * batches_per_epoch + batch_index as u64;
                let batch = build_batch(&shared, epoch, step, positions);
                let failed = batch.is_err();
                if sender.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        Box::new(ImageBatchIter {
            receiver,
            device: self.device.clone(),
            shape: [
                self.shared.transform.channels,
                self.shared.transform.height,
                self.shared.transform.width,
            ],
            served: 0,
            total,
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

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        let range = self.range.start + start..(self.range.start + end).min(self.range.end);
        Arc::new(Self {
            range,
            ..self.clone()
        })
    }
}

/// Decodes and augments the samples at `positions` in parallel into one host batch.
fn build_batch(
    shared: &Shared,
    epoch: usize,
    step: u64,
    positions: &[usize],
) -> Result<HostBatch, LoadError> {
    let sample_len = shared.transform.sample_len();
    let mut pixels = vec![0f32; positions.len() * sample_len];
    let labels = pixels
        .par_chunks_mut(sample_len)
        .zip(positions.par_iter())
        .map(|(out, &position)| {
            let item = shared.dataset.load(position)?;
            let result = match shared.mode {
                LoaderMode::Train => {
                    let mut rng = stream_rng(
                        shared.seed,
                        Stream::SampleAugment,
                        &[epoch as u64, position as u64],
                    );
                    shared.transform.apply(&item, Some(&mut rng), out)
                }
                LoaderMode::Eval => {
                    shared
                        .transform
                        .apply(&item, None::<&mut rand::rngs::StdRng>, out)
                }
            };
            result.map_err(|problem| LoadError::Transform {
                index: position,
                problem,
            })?;
            Ok(item.label)
        })
        .collect::<Result<Vec<usize>, LoadError>>()?;
    Ok(HostBatch {
        pixels,
        labels,
        epoch,
        step,
    })
}

struct ImageBatchIter {
    receiver: Receiver<Result<HostBatch, LoadError>>,
    device: Device,
    shape: [usize; 3],
    served: usize,
    total: usize,
}

impl Iterator for ImageBatchIter {
    type Item = Result<ImageBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let host = match self.receiver.recv().ok()? {
            Ok(host) => host,
            Err(e) => return Some(Err(DatasetError::new(e))),
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
