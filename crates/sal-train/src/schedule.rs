//! Learning-rate schedules that change once per EPOCH.
//!
//! burn-train's Learner calls `LrScheduler::step()` once per optimizer iteration, before the
//! update (burn-train `learner/supervised/strategies/single/epoch.rs`), and burn has no
//! MultiStep scheduler. The papers' recipes are PyTorch schedulers stepped once per epoch:
//!
//! - `MultiStepLR`: epoch `e` (0-based) trains at `lr * gamma^(number of milestones <= e)`;
//! - `CosineAnnealingLR(T_max = epochs)` (yhhhli/RegNet-Pytorch, SalfMix Table 6's RegNet): epoch
//!   `e` trains at `lr * (1 + cos(pi * e / epochs)) / 2` (its closed form, `eta_min = 0`).
//!
//! [`MultiStepLr`] reproduces both by counting iterations and dividing by the iterations per
//! epoch.
//!
//! Note on SaliencyMix's released code: it calls `scheduler.step(epoch)` at the END of each
//! epoch, which shifts every drop one epoch later (epochs 0-60 at 0.1, not 0-59). The configs
//! that reproduce that code say so and list milestones `[61, 121, 161]`.

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use serde::{Deserialize, Serialize};

/// The shape of the schedule (`[schedule] kind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// PyTorch `MultiStepLR`: `gamma` at each of the `milestones`.
    #[default]
    MultiStep,
    /// PyTorch `CosineAnnealingLR` over the run's epochs, down to 0.
    Cosine,
}

impl ScheduleKind {
    pub fn is_multi_step(&self) -> bool {
        *self == Self::MultiStep
    }
}

/// PyTorch's per-epoch schedules (`MultiStepLR` with milestones in epochs, or
/// `CosineAnnealingLR` over `epochs`), stepped per iteration.
#[derive(Clone, Debug)]
pub struct MultiStepLr {
    base_lr: LearningRate,
    kind: ScheduleKind,
    /// The cosine's period (`T_max`): the run's epochs.
    epochs: usize,
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
            kind: ScheduleKind::MultiStep,
            epochs: 1,
            gamma,
            milestones,
            iterations_per_epoch,
            iteration: 0,
        }
    }

    /// PyTorch `CosineAnnealingLR(T_max = epochs, eta_min = 0)` stepped per epoch.
    pub fn cosine(base_lr: LearningRate, epochs: usize, iterations_per_epoch: usize) -> Self {
        Self {
            kind: ScheduleKind::Cosine,
            epochs: epochs.max(1),
            ..Self::new(base_lr, 1.0, Vec::new(), iterations_per_epoch)
        }
    }

    /// The rate used for every iteration of `epoch` (0-based).
    pub fn rate_at_epoch(&self, epoch: usize) -> LearningRate {
        match self.kind {
            ScheduleKind::MultiStep => {
                let drops = self.milestones.iter().filter(|&&m| m <= epoch).count();
                self.base_lr * self.gamma.powi(drops as i32)
            }
            ScheduleKind::Cosine => {
                let phase = std::f64::consts::PI * epoch as f64 / self.epochs as f64;
                self.base_lr * (1.0 + phase.cos()) / 2.0
            }
        }
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
    fn cosine_follows_pytorch_cosineannealinglr_per_epoch() {
        // CosineAnnealingLR's closed form (PyTorch docs) at T_max = 4: 0.1 (1 + cos(pi e / 4)) / 2.
        let mut s = MultiStepLr::cosine(0.1, 4, 3);
        let expect = [0.1, 0.08535533905932738, 0.05, 0.014644660940672627];
        for (epoch, epoch_rates) in rates(&mut s, 4).iter().enumerate() {
            for lr in epoch_rates {
                assert!((lr - expect[epoch]).abs() < 1e-12, "epoch {epoch}: {lr}");
            }
        }
        let mut b = MultiStepLr::cosine(0.1, 4, 3);
        b.load_record(MultiStepLr::cosine(0.1, 4, 3).to_record());
        assert_eq!(b.step(), 0.1);
    }

    #[test]
    fn no_milestones_is_a_constant_rate() {
        let mut s = MultiStepLr::new(0.05, 0.1, vec![], 2);
        assert!(rates(&mut s, 3).iter().flatten().all(|&lr| lr == 0.05));
    }
}
