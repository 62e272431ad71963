//! Learning-rate schedules whose milestones are given in EPOCHS.
//!
//! burn-train's Learner calls `LrScheduler::step()` once per optimizer iteration, before the
//! update (burn-train `learner/supervised/strategies/single/epoch.rs`), and burn has no
//! MultiStep scheduler. The papers' recipes are PyTorch `MultiStepLR` stepped once per epoch:
//! epoch `e` (0-based) trains at `lr * gamma^(number of milestones <= e)`. [`MultiStepLr`]
//! reproduces exactly that by counting iterations and dividing by the iterations per epoch.
//!
//! Note on SaliencyMix's released code: it calls `scheduler.step(epoch)` at the END of each
//! epoch, which shifts every drop one epoch later (epochs 0-60 at 0.1, not 0-59). The configs
//! that reproduce that code say so and list milestones `[61, 121, 161]`.

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};

/// PyTorch `MultiStepLR` semantics with milestones in epochs, stepped per iteration.
#[derive(Clone, Debug)]
pub struct MultiStepLr {
    base_lr: LearningRate,
    gamma: f64,
    milestones: Vec<usize>,
    iterations_per_epoch: usize,
    /// Optimizer iterations already taken (the next `step()` returns the rate for this one).
    iteration: u64,
}

const ITERATION_KEY: &str = "iteration";

impl MultiStepLr {
    /// `milestones` must be sorted ascending; `iterations_per_epoch` > 0 (the trainer derives
    /// it from the data set size and batch size, counting a final partial batch).
    pub fn new(
        base_lr: LearningRate,
        gamma: f64,
        milestones: Vec<usize>,
        iterations_per_epoch: usize,
    ) -> Self {
        assert!(iterations_per_epoch > 0, "iterations_per_epoch must be > 0");
        Self {
            base_lr,
            gamma,
            milestones,
            iterations_per_epoch,
            iteration: 0,
        }
    }

    /// The rate used for every iteration of `epoch` (0-based).
    pub fn rate_at_epoch(&self, epoch: usize) -> LearningRate {
        let drops = self.milestones.iter().filter(|&&m| m <= epoch).count();
        self.base_lr * self.gamma.powi(drops as i32)
    }
}

impl LrScheduler for MultiStepLr {
    fn step(&mut self) -> LearningRate {
        let epoch = (self.iteration / self.iterations_per_epoch as u64) as usize;
        self.iteration += 1;
        self.rate_at_epoch(epoch)
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar(ITERATION_KEY, self.iteration)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(iteration) = record.scalar::<u64>(ITERATION_KEY) {
            self.iteration = iteration;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rate of every iteration of a 5-epoch run with 3 iterations per epoch.
    fn rates(s: &mut MultiStepLr, epochs: usize) -> Vec<Vec<f64>> {
        (0..epochs)
            .map(|_| (0..3).map(|_| s.step()).collect())
            .collect()
    }

    #[test]
    fn drops_exactly_at_the_milestone_epochs_like_pytorch_multisteplr() {
        let mut s = MultiStepLr::new(0.1, 0.2, vec![2, 4], 3);
        let r = rates(&mut s, 5);
        let expect = [0.1, 0.1, 0.02, 0.02, 0.004];
        for (epoch, epoch_rates) in r.iter().enumerate() {
            for lr in epoch_rates {
                assert!((lr - expect[epoch]).abs() < 1e-15, "epoch {epoch}: {lr}");
            }
        }
    }

    #[test]
    fn resumes_from_its_record_at_the_same_iteration() {
        let mut a = MultiStepLr::new(0.1, 0.1, vec![1], 4);
        for _ in 0..5 {
            a.step();
        }
        let mut b = MultiStepLr::new(0.1, 0.1, vec![1], 4);
        b.load_record(a.to_record());
        for _ in 0..6 {
            assert_eq!(a.step(), b.step());
        }
    }

    #[test]
    fn no_milestones_is_a_constant_rate() {
        let mut s = MultiStepLr::new(0.05, 0.1, vec![], 2);
        assert!(rates(&mut s, 3).iter().flatten().all(|&lr| lr == 0.05));
    }
}
