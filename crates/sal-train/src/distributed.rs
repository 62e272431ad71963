//! The `[distributed]` table: how many devices train a run, with which of burn-train's
//! execution strategies, and how each step's global batch is cut between them
//! (docs/backends.md).
//!
//! `batch_size` is always the global batch, the images of one optimizer update. With
//! `devices = n` and `accumulation = a` every step is cut into `n * a` equal parts (the loader's
//! [`StepLayout`]); each part's mean loss is weighted by its share of the step, and burn-train
//! adds the parts' gradients, so the update is the global batch's mean-loss gradient whatever
//! the layout. What does depend on the layout is what a part sees on its own: BatchNorm
//! normalises each part with its own statistics (as PyTorch's DDP without SyncBatchNorm), and
//! the mixing methods mix within a part, each part with its own random stream, unless
//! `mix_partner = "global"` draws the partners from the whole global batch.
//!
//! burn 0.22.1's strategies, and what they need (read from its source):
//! - `multi-device` (`ExecutionStrategy::MultiDevice`): one thread per device, gradients moved
//!   to the first device and added there (or, `optimizer = "sharded"`, added and applied on the
//!   device owning each parameter). No collective operation: runs on every backend; on the CPU
//!   the "devices" are the one flex device, stepped by two threads.
//! - `ddp` (`ExecutionStrategy::DistributedDataParallel`): one optimizer per device, gradients
//!   summed by burn's collective all-reduce during the backward pass. Only CUDA implements it
//!   (NCCL); flex declares no collectives and wgpu has no transport between devices.
//!
//! burn 0.22.1 has no multi-node training (its `burn-collective` crate was removed before
//! 0.22), so there is no world size, rank or address to set.

use crate::config::BackendKind;
pub use crate::loader::StepLayout;
use burn::tensor::Device;
use burn::train::{ExecutionStrategy, MultiDeviceOptim};
use serde::{Deserialize, Serialize};

/// Which of burn-train's execution strategies trains the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// One device.
    Single,
    /// burn-train's `MultiDevice`: threads, gradients added on the host side.
    MultiDevice,
    /// burn-train's distributed data parallel: gradients all-reduced (CUDA only).
    Ddp,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Single => "single",
            Strategy::MultiDevice => "multi-device",
            Strategy::Ddp => "ddp",
        }
    }
}

/// Where a multi-device run applies the optimizer (burn's `MultiDeviceOptim`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerPlacement {
    /// Every gradient is moved to the first device, which updates the whole model.
    #[default]
    MainDevice,
    /// Each parameter is updated on one device, the parameters spread over all of them.
    Sharded,
}

/// Where a part's images find their mixing partners.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MixPartner {
    /// Within the part (each device's batch), as the method draws them.
    #[default]
    Part,
    /// Anywhere in the step's global batch: the loader pairs the global batch with a
    /// permutation of itself and serves each part its rows' partners (OpenMixup's cross-GPU
    /// shuffle). The pair methods only: Mixup, CutMix, ResizeMix, SaliencyMix.
    Global,
}

/// The `[distributed]` table; see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributedConfig {
    /// Devices the run trains on (`backend::devices`): the first `devices` GPUs on cuda and
    /// wgpu (wgpu: the discrete GPUs), the one CPU device `devices` times on the cpu backend.
    #[serde(default = "one")]
    pub devices: usize,
    /// `"single"`, `"multi-device"` or `"ddp"`; unset: single for one device, multi-device
    /// for more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Micro-batches each device runs, and adds the gradients of, before the step's one
    /// optimizer update (gradient accumulation): a global batch larger than fits at once.
    #[serde(default = "one")]
    pub accumulation: usize,
    /// Where a multi-device run applies the optimizer.
    #[serde(default)]
    pub optimizer: OptimizerPlacement,
    /// Where the mixing partners come from: `"part"` (within each device's part of the batch)
    /// or `"global"` (anywhere in the global batch).
    #[serde(default)]
    pub mix_partner: MixPartner,
}

fn one() -> usize {
    1
}

impl Default for DistributedConfig {
    /// One device, no accumulation.
    fn default() -> Self {
        Self {
            devices: 1,
            strategy: None,
            accumulation: 1,
            optimizer: OptimizerPlacement::MainDevice,
            mix_partner: MixPartner::Part,
        }
    }
}

impl DistributedConfig {
    /// The strategy, the unset one resolved.
    pub fn strategy(&self) -> Strategy {
        self.strategy.unwrap_or(match self.devices {
            1 => Strategy::Single,
            _ => Strategy::MultiDevice,
        })
    }

    /// How each step's batch is cut.
    pub fn layout(&self) -> StepLayout {
        StepLayout {
            devices: self.devices,
            accumulation: self.accumulation,
        }
    }

    /// Checks the table against the global `batch_size` and the `backend`; the error is the
    /// key and what is wrong with it.
    pub fn validate(
        &self,
        batch_size: usize,
        backend: BackendKind,
    ) -> Result<(), (&'static str, String)> {
        let (devices, strategy) = (self.devices, self.strategy());
        if devices == 0 {
            return Err(("distributed.devices", "must be at least 1".into()));
        }
        if self.accumulation == 0 {
            return Err(("distributed.accumulation", "must be at least 1".into()));
        }
        match strategy {
            Strategy::Single if devices > 1 => {
                return Err((
                    "distributed.strategy",
                    format!(
                        "= \"single\" with devices = {devices}: use \"multi-device\" (or \"ddp\" \
                         on cuda), or devices = 1"
                    ),
                ));
            }
            Strategy::MultiDevice | Strategy::Ddp if devices < 2 => {
                return Err((
                    "distributed.strategy",
                    format!("= \"{}\" needs devices >= 2", strategy.name()),
                ));
            }
            Strategy::Ddp if backend != BackendKind::Cuda => {
                return Err((
                    "distributed.strategy",
                    format!(
                        "= \"ddp\" all-reduces the gradients between devices, which burn 0.22.1 \
                         implements only on cuda (NCCL); the {} backend has no collective \
                         operations: use strategy = \"multi-device\"",
                        backend.name()
                    ),
                ));
            }
            _ => {}
        }
        let parts = self.layout().parts();
        if !batch_size.is_multiple_of(parts) {
            return Err((
                "batch_size",
                format!(
                    "= {batch_size} is the global batch and must split evenly into devices x \
                     accumulation = {devices} x {} = {parts} parts",
                    self.accumulation
                ),
            ));
        }
        Ok(())
    }

    /// burn-train's execution strategy over `devices`.
    pub fn execution_strategy(&self, devices: Vec<Device>) -> ExecutionStrategy {
        match self.strategy() {
            Strategy::Single => ExecutionStrategy::single(devices[0].clone()),
            Strategy::MultiDevice => ExecutionStrategy::multi(
                devices,
                match self.optimizer {
                    OptimizerPlacement::MainDevice => MultiDeviceOptim::OptimMainDevice,
                    OptimizerPlacement::Sharded => MultiDeviceOptim::OptimSharded,
                },
            ),
            // Summed, not averaged: each device's loss is already weighted by its share of the
            // global batch (the module documentation).
            Strategy::Ddp => ExecutionStrategy::ddp(
                devices,
                burn::tensor::distributed::DistributedConfig {
                    all_reduce_op: burn::tensor::distributed::ReduceOperation::Sum,
                },
            ),
        }
    }

    /// One line for the run's banner, `None` for one device without accumulation.
    pub fn describe(&self) -> Option<String> {
        let accumulation = match self.accumulation {
            1 => String::new(),
            a => format!(", {a} accumulated micro-batches each"),
        };
        match (self.devices, self.accumulation) {
            (1, 1) => None,
            (1, _) => Some(format!("1 device{accumulation}")),
            (n, _) => Some(format!(
                "{n} devices ({}){accumulation}",
                self.strategy().name()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> DistributedConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_strategy_follows_the_device_count_unless_set() {
        assert_eq!(table("").strategy(), Strategy::Single);
        assert_eq!(table("devices = 2").strategy(), Strategy::MultiDevice);
        let ddp = table("devices = 2\nstrategy = \"ddp\"");
        assert_eq!(ddp.strategy(), Strategy::Ddp);
        assert_eq!(table(""), DistributedConfig::default());
        let sharded = table("devices = 4\noptimizer = \"sharded\"\naccumulation = 2");
        assert_eq!(sharded.optimizer, OptimizerPlacement::Sharded);
        assert_eq!(sharded.layout().parts(), 8);
        assert_eq!(table("").mix_partner, MixPartner::Part);
        assert_eq!(
            table("mix_partner = \"global\"").mix_partner,
            MixPartner::Global
        );
        assert!(toml::from_str::<DistributedConfig>("world_size = 2").is_err());
    }

    #[test]
    fn bad_tables_name_the_key_and_the_problem() {
        let cases = [
            ("devices = 0", 8, BackendKind::Cpu, "distributed.devices"),
            (
                "accumulation = 0",
                8,
                BackendKind::Cpu,
                "distributed.accumulation",
            ),
            (
                "devices = 2\nstrategy = \"single\"",
                8,
                BackendKind::Cpu,
                "distributed.strategy",
            ),
            (
                "strategy = \"multi-device\"",
                8,
                BackendKind::Cpu,
                "distributed.strategy",
            ),
            (
                "devices = 2\nstrategy = \"ddp\"",
                8,
                BackendKind::Cpu,
                "distributed.strategy",
            ),
            (
                "devices = 2\nstrategy = \"ddp\"",
                8,
                BackendKind::Wgpu,
                "distributed.strategy",
            ),
            ("devices = 3", 8, BackendKind::Cpu, "batch_size"),
            (
                "devices = 2\naccumulation = 3",
                8,
                BackendKind::Cpu,
                "batch_size",
            ),
        ];
        for (text, batch, backend, key) in cases {
            let (k, message) = table(text).validate(batch, backend).unwrap_err();
            assert_eq!(k, key, "{text}: {message}");
        }
        let (_, ddp) = table("devices = 2\nstrategy = \"ddp\"")
            .validate(8, BackendKind::Cpu)
            .unwrap_err();
        assert!(ddp.contains("only on cuda"), "{ddp}");
        let (_, uneven) = table("devices = 3")
            .validate(8, BackendKind::Cpu)
            .unwrap_err();
        assert!(uneven.contains("3 x 1 = 3 parts"), "{uneven}");
        for ok in [
            "",
            "devices = 2",
            "devices = 4\naccumulation = 2",
            "accumulation = 8",
        ] {
            assert_eq!(table(ok).validate(8, BackendKind::Cpu), Ok(()), "{ok}");
        }
        let ddp = table("devices = 2\nstrategy = \"ddp\"");
        assert_eq!(ddp.validate(8, BackendKind::Cuda), Ok(()));
    }
}
