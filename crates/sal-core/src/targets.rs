//! Soft targets: `N x classes` rows that sum to 1, built on the labels' device.
//!
//! Every mixer's target is `w * onehot(y) + (1 - w) * onehot(y[source])`, where `w` is the weight
//! of the sample's own label (CutMix's area-adjusted lambda, Saliency Grafting's calibrated
//! `1 - lambda_src`, ...), followed by optional label smoothing
//! `t * (1 - eps) + eps / classes` (Szegedy et al. 2016), which keeps rows summing to 1.
//!
//! One-hot rows come from `one_hot_fill`, not `one_hot`: burn's `one_hot` validates the labels
//! by reading them back to the host on every call (a device sync) and panics on a bad label.
//! Labels are not checked here (that needs the same read); one outside `0..classes` gives an
//! all-zero row.

use burn::tensor::{Int, Tensor};

use crate::ConfigError;

/// The weight of each sample's own label.
// One value per batch: a tensor handle is larger than a Vec, and boxing it buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum OwnWeight {
    /// One weight for the batch (Mixup, CutMix, SaliencyMix with batch scope).
    Batch(f64),
    /// One weight per sample, `[N]` on the device.
    PerSample(Tensor<1>),
}

/// Label smoothing `eps` in `[0, 1)`; 0 (the default) leaves targets as they are.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LabelSmoothing(f64);

impl LabelSmoothing {
    pub fn new(eps: f64) -> Result<Self, ConfigError> {
        if !(0.0..1.0).contains(&eps) {
            return Err(ConfigError::Invalid {
                field: "label_smoothing",
                value: eps.to_string(),
                expected: "a number in [0, 1)",
            });
        }
        Ok(Self(eps))
    }

    pub fn eps(&self) -> f64 {
        self.0
    }

    fn apply(&self, targets: Tensor<2>, num_classes: usize) -> Tensor<2> {
        if self.0 == 0.0 {
            targets
        } else {
            targets
                .mul_scalar(1.0 - self.0)
                .add_scalar(self.0 / num_classes as f64)
        }
    }
}

/// Hard labels as (smoothed) one-hot rows: the target of a batch left unmixed.
pub fn one_hot_targets(
    labels: Tensor<1, Int>,
    num_classes: usize,
    smoothing: LabelSmoothing,
) -> Tensor<2> {
    smoothing.apply(one_hot(labels, num_classes), num_classes)
}

/// `[N, classes]` float one-hot rows, computed on the device without reading the labels.
fn one_hot(labels: Tensor<1, Int>, num_classes: usize) -> Tensor<2> {
    labels.one_hot_fill::<2>(num_classes, 1.0, 0.0, -1).float()
}

/// `w * onehot(y) + (1 - w) * onehot(y[source_index])`, then smoothing.
pub fn mixed_targets(
    labels: Tensor<1, Int>,
    source_index: Tensor<1, Int>,
    own_weight: &OwnWeight,
    num_classes: usize,
    smoothing: LabelSmoothing,
) -> Tensor<2> {
    let other = labels.clone().select(0, source_index);
    mixed_targets_with(labels, other, own_weight, num_classes, smoothing)
}

/// [`mixed_targets`] with the mixed-in labels given, `[N]` each: `w * y + (1 - w) * y_other`.
pub fn mixed_targets_with(
    labels: Tensor<1, Int>,
    other_labels: Tensor<1, Int>,
    own_weight: &OwnWeight,
    num_classes: usize,
    smoothing: LabelSmoothing,
) -> Tensor<2> {
    let own = one_hot(labels, num_classes);
    let other = one_hot(other_labels, num_classes);
    let mixed = match own_weight {
        OwnWeight::Batch(w) => own.mul_scalar(*w) + other.mul_scalar(1.0 - *w),
        OwnWeight::PerSample(w) => {
            let [n] = w.dims();
            let w = w.clone().reshape([n, 1]);
            let rest = w.clone().neg().add_scalar(1.0);
            own * w + other * rest
        }
    };
    smoothing.apply(mixed, num_classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device_ops::{float_tensor, index_tensor};
    use crate::testing::{devices, host_vec};

    #[test]
    fn mixed_rows_put_the_weights_on_the_right_classes() {
        for device in devices() {
            let labels = index_tensor(&[0, 2, 1], &device);
            let perm = index_tensor(&[1, 2, 0], &device);
            let t = mixed_targets(
                labels,
                perm,
                &OwnWeight::Batch(0.75),
                3,
                LabelSmoothing(0.0),
            );
            assert_eq!(
                host_vec::<f32, 2>(t),
                vec![0.75, 0.0, 0.25, 0.0, 0.25, 0.75, 0.25, 0.75, 0.0]
            );
        }
    }

    #[test]
    fn smoothing_keeps_rows_summing_to_one() {
        for device in devices() {
            let labels = index_tensor(&[3, 0], &device);
            let w = float_tensor(vec![0.3, 1.0], [2], &device);
            let t = mixed_targets(
                labels.clone(),
                index_tensor(&[1, 0], &device),
                &OwnWeight::PerSample(w),
                4,
                LabelSmoothing::new(0.1).unwrap(),
            );
            let v = host_vec::<f32, 2>(t);
            for row in v.chunks(4) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
            }
            assert!((v[3] - (0.3 * 0.9 + 0.025)).abs() < 1e-6);
            let hard = host_vec::<f32, 2>(one_hot_targets(labels, 4, LabelSmoothing(0.0)));
            assert_eq!(hard, vec![0., 0., 0., 1., 1., 0., 0., 0.]);
        }
        assert!(LabelSmoothing::new(1.0).is_err());
    }
}
