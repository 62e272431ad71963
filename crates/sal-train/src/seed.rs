//! Independent, reproducible random streams derived from the one experiment seed.
//!
//! Every random decision of the data pipeline (the epoch's sample order, each sample's crop and
//! flip) draws from its own stream, seeded by hashing the experiment seed with what the decision
//! is about (`Stream`, epoch, index). Batch mixing draws from sal-core's per-step stream
//! (`sal_core::sampling::step_rng(seed, step)`), keyed by the global step the loader assigns. Nothing depends on thread scheduling or on
//! how many batches ran before, so a resumed run draws exactly what an uninterrupted one would.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// What a stream is for; part of its seed so streams never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    Shuffle = 1,
    SampleAugment = 2,
}

/// SplitMix64's finaliser: a bijective mix with full avalanche.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of stream `stream` at coordinates `parts` (e.g. `[epoch, index]`).
pub fn derive_seed(seed: u64, stream: Stream, parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(mix(seed ^ mix(stream as u64)), |acc, &p| mix(acc ^ mix(p)))
}

/// A generator for stream `stream` at `parts`.
pub fn stream_rng(seed: u64, stream: Stream, parts: &[u64]) -> StdRng {
    StdRng::seed_from_u64(derive_seed(seed, stream, parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_coordinates_give_distinct_seeds() {
        let a = derive_seed(0, Stream::Shuffle, &[1]);
        assert_ne!(a, derive_seed(0, Stream::SampleAugment, &[1]));
        assert_ne!(a, derive_seed(0, Stream::Shuffle, &[2]));
        assert_ne!(a, derive_seed(1, Stream::Shuffle, &[1]));
        assert_ne!(
            derive_seed(0, Stream::Shuffle, &[1, 2]),
            derive_seed(0, Stream::Shuffle, &[2, 1])
        );
        assert_eq!(a, derive_seed(0, Stream::Shuffle, &[1]));
    }
}
