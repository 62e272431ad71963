//! Dropout whose masks are drawn on the host from a seeded stream, so that one run seed gives
//! the same masks on every backend (burn's `Dropout` draws them from the device's own
//! generator: a config trained on flex and on a GPU would drop different units).
//!
//! Every dropout layer of a model draws from the model's one [`DropoutStream`], in forward
//! order; the trainer reseeds it from the run seed and the global step before every step, so a
//! resumed run draws the masks an uninterrupted one would. The stream is one per thread: the
//! data-parallel strategies step copies of one model on several threads at once (one per
//! device), and each reseeds and draws its own, so no thread's masks depend on another's timing. Semantics are burn's `Dropout`
//! (burn-nn `modules/dropout.rs`): only on an autodiff device with the layer's training flag on
//! (a frozen copy or `valid()` passes the input through), `x * mask / (1 - prob)` with
//! `mask ~ Bernoulli(1 - prob)`.
//!
//! The cost is the mask's upload: one `u8` per activation per step, built on one host thread
//! (about 1 ns per element).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use burn::module::{Flag, Module, Param};
use burn::tensor::{Bool, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The random stream a model's dropout layers share, one per thread (a thread that never
/// reseeded starts from seed 0); see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct DropoutStream(Arc<Mutex<HashMap<ThreadId, StdRng>>>);

impl DropoutStream {
    /// Restarts the calling thread's stream from `seed`.
    pub fn reseed(&self, seed: u64) {
        self.streams()
            .insert(std::thread::current().id(), StdRng::seed_from_u64(seed));
    }

    /// `n` keep/drop decisions from the calling thread's stream, `true` with probability `keep`.
    fn draw(&self, n: usize, keep: f64) -> Vec<bool> {
        // A u32 below `keep * 2^32`: one word per decision, exact to 2^-32.
        let threshold = (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        let mut streams = self.streams();
        let rng = streams
            .entry(std::thread::current().id())
            .or_insert_with(|| StdRng::seed_from_u64(0));
        (0..n).map(|_| rng.next_u32() < threshold).collect()
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<ThreadId, StdRng>> {
        // A panic while the lock was held left at worst a half-advanced stream, which the next
        // reseed replaces.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// burn's `Dropout` with host-drawn masks (see the module documentation).
#[derive(Module, Debug)]
pub struct HostDropout {
    prob: f64,
    training: Param<Flag>,
    #[module(skip)]
    stream: DropoutStream,
}

impl HostDropout {
    /// Drops with probability `prob` (in `[0, 1)`, checked by the model config), drawing from
    /// `stream`.
    pub fn new(prob: f64, stream: DropoutStream) -> Self {
        Self {
            prob,
            training: Param::from_bool(true),
            stream,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let device = x.device();
        if !self.training.is_enabled() || !device.is_autodiff() || self.prob == 0.0 {
            return x;
        }
        let keep = 1.0 - self.prob;
        let shape = x.shape();
        let mask = self.stream.draw(shape.num_elements(), keep);
        let mask = Tensor::<D, Bool>::from_data(TensorData::new(mask, shape), &device);
        x * mask.float().mul_scalar(1.0 / keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn masks(device: &Device, seed: u64) -> Vec<f32> {
        let stream = DropoutStream::default();
        stream.reseed(seed);
        let dropout = HostDropout::new(0.3, stream);
        let x = Tensor::<2>::ones([64, 50], device);
        dropout.forward(x).into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn masks_are_a_function_of_the_seed_and_drop_the_right_share() {
        let device = Device::flex().autodiff();
        let a = masks(&device, 7);
        assert_eq!(a, masks(&device, 7));
        assert_ne!(a, masks(&device, 8));
        let dropped = a.iter().filter(|&&v| v == 0.0).count() as f64 / a.len() as f64;
        assert!((dropped - 0.3).abs() < 0.03, "dropped {dropped}");
        let scale = 1.0 / 0.7f32;
        assert!(a.iter().all(|&v| v == 0.0 || (v - scale).abs() < 1e-6));
    }

    #[test]
    fn threads_stepping_one_model_each_draw_their_own_stream() {
        // Two threads share one layer (as the data-parallel workers share a model's stream),
        // each reseeding and drawing many times, interleaved: each must see exactly what it
        // would see alone.
        let device = Device::flex().autodiff();
        let dropout = HostDropout::new(0.3, DropoutStream::default());
        let draws = |seed: u64| {
            let (dropout, device) = (&dropout, &device);
            move || {
                (0..20)
                    .map(|_| {
                        dropout.stream.reseed(seed);
                        let x = Tensor::<2>::ones([16, 16], device);
                        dropout.forward(x).into_data().try_to_vec::<f32>().unwrap()
                    })
                    .collect::<Vec<_>>()
            }
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(draws(7));
            let b = s.spawn(draws(8));
            (a.join().unwrap(), b.join().unwrap())
        });
        let alone = |seed| masks16(&device, seed);
        assert!(a.iter().all(|m| *m == alone(7)));
        assert!(b.iter().all(|m| *m == alone(8)));
        assert_ne!(alone(7), alone(8));
    }

    fn masks16(device: &Device, seed: u64) -> Vec<f32> {
        let stream = DropoutStream::default();
        stream.reseed(seed);
        let x = Tensor::<2>::ones([16, 16], device);
        HostDropout::new(0.3, stream)
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn inference_and_frozen_layers_pass_the_input_through() {
        let x = Tensor::<2>::ones([4, 4], &Device::flex());
        let dropout = HostDropout::new(0.5, DropoutStream::default());
        assert_eq!(
            dropout.forward(x.clone()).into_data(),
            x.clone().into_data()
        );
        let frozen = dropout.freeze();
        let y = frozen.forward(x.clone().autodiff());
        assert_eq!(y.into_data(), x.into_data());
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn the_same_seed_drops_the_same_units_on_flex_and_wgpu() {
        let wgpu = crate::wgpu_device().unwrap().autodiff();
        assert_eq!(masks(&Device::flex().autodiff(), 3), masks(&wgpu, 3));
    }
}
