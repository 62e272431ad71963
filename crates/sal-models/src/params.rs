//! Counting parameters the way the papers' tables do.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Number of trainable parameters: every float parameter except BatchNorm's running mean and
/// variance, which burn stores as module state (so [`Module::num_params`] counts them) while
/// PyTorch keeps them as buffers, outside `parameters()`. This is the figure the papers and
/// `sum(p.numel() for p in model.parameters())` report. Counted from shapes: lazy parameters
/// stay lazy.
pub fn num_trainable_params<M: Module>(module: &M) -> usize {
    let mut counter = TrainableCounter::default();
    module.visit(&mut counter);
    counter.count
}

/// Sums parameter sizes, skipping the fields burn's `BatchNorm` keeps its running statistics in.
#[derive(Default)]
struct TrainableCounter {
    /// The (field, container) path of the module being visited.
    path: Vec<(String, String)>,
    count: usize,
}

impl TrainableCounter {
    fn in_running_statistics(&self) -> bool {
        self.path.last().is_some_and(|(field, container)| {
            container == "Struct:BatchNorm" && (field == "running_mean" || field == "running_var")
        })
    }
}

impl ModuleVisitor for TrainableCounter {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path
            .push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.in_running_statistics() {
            self.count += param.lazy_shape().num_elements();
        }
    }
}

/// Draws every lazy parameter (see `ModelConfig::try_init`).
pub(crate) struct Materializer;

impl ModuleVisitor for Materializer {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // `val` runs a lazy parameter's initialiser once and caches the tensor.
        let _ = param.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Device;

    #[test]
    fn batch_norm_running_statistics_are_not_trainable() {
        let bn = BatchNormConfig::new(10).init(&Device::flex());
        assert_eq!(bn.num_params(), 40);
        assert_eq!(num_trainable_params(&bn), 20);
    }
}
