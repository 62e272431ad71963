//! Independent, reproducible random streams derived from the one experiment seed: the single
//! definition of how a run's randomness is seeded.
//!
//! Every random decision of a run draws from its own stream, seeded by hashing the experiment
//! seed with what the decision is about: the data pipeline's epoch order and each sample's crop
//! and flip (`Stream`, epoch, index), and each training step's batch mixing ([`step_rng`], keyed
//! by the global step the loader assigns), and each step's dropout masks ([`Stream::Dropout`],
//! keyed by the step). Nothing depends on thread scheduling or on how many
//! batches ran before, so a resumed run draws exactly what an uninterrupted one would.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// What a stream is for; part of its seed so streams never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// An epoch's sample order.
    Shuffle = 1,
    /// One sample's random crop and flip.
    SampleAugment = 2,
    /// One training step's batch mixing.
    Mixing = 3,
    /// One training step's dropout masks (drawn on the host, the same on every backend).
    Dropout = 4,
    /// The training subset of `[dataset] per_class_fraction` / `per_class`.
    Subset = 5,
    /// The batch mixing of part `p > 0` of a training step whose global batch is cut into
    /// parts (one per device, or per accumulated micro-batch); part 0 draws [`Stream::Mixing`].
    PartMixing = 6,
    /// A training step's pairing of its global batch with a permutation of itself, when the
    /// parts draw their mixing partners from the whole global batch (`mix_partner = "global"`).
    Partners = 7,
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

/// The random stream of one mixing call for training step `step` of a run seeded with `seed`.
pub fn step_rng(seed: u64, step: u64) -> StdRng {
    stream_rng(seed, Stream::Mixing, &[step])
}

/// The random stream of copy `copy` of step `step`'s batch when a step trains on several
/// independently mixed copies (`k_times`, Saliency Grafting §5.2): copy 0 is [`step_rng`], so
/// one copy mixes exactly as a step without copies.
pub fn copy_rng(seed: u64, step: u64, copy: u64) -> StdRng {
    part_rng(seed, step, 0, copy)
}

/// The random stream of copy `copy` of part `part` of step `step`'s global batch, when a step's
/// batch is cut into parts that mix on their own (data-parallel devices, accumulated
/// micro-batches): every part draws its own stream, a pure function of (seed, step, part,
/// copy), so a layout that cuts the same batch into the same parts on other devices draws the
/// same. Part 0 is [`copy_rng`]'s stream, so a run in one part mixes as it always did.
pub fn part_rng(seed: u64, step: u64, part: u64, copy: u64) -> StdRng {
    match (part, copy) {
        (0, 0) => step_rng(seed, step),
        (0, _) => stream_rng(seed, Stream::Mixing, &[step, copy]),
        _ => stream_rng(seed, Stream::PartMixing, &[step, part, copy]),
    }
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
        assert_ne!(a, derive_seed(0, Stream::Mixing, &[1]));
    }

    #[test]
    fn the_step_stream_is_a_pure_function_of_seed_and_step() {
        use rand::RngExt;
        let draw = |seed, step| {
            let mut r = step_rng(seed, step);
            (0..4).map(|_| r.random::<u64>()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7, 3), draw(7, 3));
        assert_ne!(draw(7, 3), draw(7, 4));
        assert_ne!(draw(7, 3), draw(8, 3));
    }

    #[test]
    fn copies_of_a_step_draw_distinct_streams_and_copy_0_is_the_steps() {
        use rand::RngExt;
        let first = |mut r: StdRng| r.random::<u64>();
        assert_eq!(first(copy_rng(7, 3, 0)), first(step_rng(7, 3)));
        let copies: Vec<u64> = (0..6).map(|c| first(copy_rng(7, 3, c))).collect();
        for (i, a) in copies.iter().enumerate() {
            assert!(!copies[i + 1..].contains(a), "copy {i} repeats a stream");
            assert_ne!(*a, first(step_rng(7, 4)));
        }
    }

    #[test]
    fn parts_of_a_step_draw_distinct_streams_and_part_0_is_the_steps() {
        use rand::RngExt;
        let first = |mut r: StdRng| r.random::<u64>();
        for copy in 0..3 {
            assert_eq!(first(part_rng(7, 3, 0, copy)), first(copy_rng(7, 3, copy)));
        }
        let mut seen: Vec<u64> = Vec::new();
        for part in 0..4 {
            for copy in 0..3 {
                let a = first(part_rng(7, 3, part, copy));
                assert!(
                    !seen.contains(&a),
                    "part {part} copy {copy} repeats a stream"
                );
                seen.push(a);
            }
        }
        assert_eq!(first(part_rng(7, 3, 2, 1)), first(part_rng(7, 3, 2, 1)));
        assert_ne!(first(part_rng(7, 3, 2, 1)), first(part_rng(7, 4, 2, 1)));
    }
}
