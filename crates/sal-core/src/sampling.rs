//! Every random draw of the mixers, in one place, from one explicit stream.
//!
//! A mixer never owns mutable random state: each call gets a `&mut StdRng`. The stream for a
//! training step is derived from `(seed, step)` by [`crate::seed::step_rng`], so a run resumed at
//! step `s` draws exactly what the uninterrupted run drew at step `s` without checkpointing RNG
//! state.
//! Batch mixers draw the application coin first (as the official code does), then the
//! permutation, then their own parameters (lambda, box centre).

use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::{Beta, Distribution};

use crate::ConfigError;

/// `Beta(alpha, alpha)`: Mixup's and CutMix's lambda, Saliency Grafting's `p_B`.
#[derive(Debug, Clone, Copy)]
pub struct SymmetricBeta {
    alpha: f64,
    beta: Beta<f64>,
}

impl SymmetricBeta {
    /// `alpha` must be positive and finite (the official code's `alpha <= 0` means "no mixing";
    /// here that is `method = "none"` or `prob = 0`).
    pub fn new(field: &'static str, alpha: f64) -> Result<Self, ConfigError> {
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(ConfigError::Invalid {
                field,
                value: alpha.to_string(),
                expected: "a positive, finite number",
            });
        }
        let beta = Beta::new(alpha, alpha).map_err(|_| ConfigError::Invalid {
            field,
            value: alpha.to_string(),
            expected: "a valid Beta parameter",
        })?;
        Ok(Self { alpha, beta })
    }

    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// One draw in [0, 1] (`np.random.beta(alpha, alpha)`).
    pub fn sample(&self, rng: &mut StdRng) -> f64 {
        self.beta.sample(rng)
    }
}

/// An application probability in [0, 1] (config field `prob`).
pub fn probability(field: &'static str, p: f64) -> Result<f64, ConfigError> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(ConfigError::Invalid {
            field,
            value: p.to_string(),
            expected: "a probability in [0, 1]",
        })
    }
}

/// `r < p` with `r ~ U[0, 1)`: the official "apply with probability p" test
/// (`np.random.rand(1) < prob`). `p >= 1` always applies, `p <= 0` never does.
pub fn coin(rng: &mut StdRng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// A uniformly random permutation of `0..n` (`torch.randperm(n)`): fixed points allowed, as in
/// the official CutMix and SaliencyMix code.
pub fn permutation(rng: &mut StdRng, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    // Fisher-Yates, drawing from the end.
    for i in (1..n).rev() {
        p.swap(i, rng.random_range(0..=i));
    }
    p
}

/// `n` independent uniform indices in `0..n` (HybridMix's partner `z`, Algorithm 2 line 8).
pub fn independent_indices(rng: &mut StdRng, n: usize) -> Vec<usize> {
    (0..n).map(|_| rng.random_range(0..n)).collect()
}

/// A uniform integer in `0..n` (`np.random.randint(n)`); `n` must be positive.
pub fn below(rng: &mut StdRng, n: usize) -> usize {
    rng.random_range(0..n)
}

/// A uniform float in `[lo, hi)` (`np.random.uniform(lo, hi)`).
pub fn uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

/// `n` uniform floats in `[0, 1)`, for placements and Bernoulli masks computed on the device.
pub fn unit_floats(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random::<f32>()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::step_rng;

    #[test]
    fn permutations_are_permutations_and_uniform_in_the_first_slot() {
        let mut rng = step_rng(1, 0);
        let n = 5;
        let trials = 50_000;
        let mut first = [0usize; 5];
        for _ in 0..trials {
            let p = permutation(&mut rng, n);
            let mut sorted = p.clone();
            sorted.sort();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            first[p[0]] += 1;
        }
        // Each value lands first with probability 1/5; binomial sd = sqrt(t*0.2*0.8) ~ 89.
        // Tolerance: 5 sd (a false alarm every ~2 million runs), fixed seed.
        for count in first {
            let expected = trials as f64 / n as f64;
            assert!(
                (count as f64 - expected).abs() < 5.0 * 89.5,
                "first-slot counts {first:?}"
            );
        }
    }

    #[test]
    fn beta_rejects_bad_alphas_and_has_the_right_mean() {
        assert!(SymmetricBeta::new("alpha", 0.0).is_err());
        assert!(SymmetricBeta::new("alpha", f64::NAN).is_err());
        let b = SymmetricBeta::new("alpha", 0.4).unwrap();
        let mut rng = step_rng(2, 0);
        let n = 20_000;
        let mean = (0..n).map(|_| b.sample(&mut rng)).sum::<f64>() / n as f64;
        // Beta(a,a) has mean 1/2 and variance 1/(4(2a+1)) = 0.139 at a = 0.4: the mean of 20k
        // draws has sd 0.0026; tolerance 5 sd.
        assert!((mean - 0.5).abs() < 0.013, "mean {mean}");
    }
}
