//! Class activation maps (Zhou et al., "Learning Deep Features for Discriminative
//! Localization", CVPR 2016).
//!
//! For a network ending in global average pooling + linear, the map of class c is
//! `M_c(x, y) = sum_k w_{k,c} f_k(x, y)` over the last feature map's channels k (Zhou et al.
//! eq. 2, bias excluded). Its mean over positions plus the bias is exactly the logit of c, which
//! the tests check. As in the authors' code the map is upsampled bilinearly to the input size;
//! it is returned raw (not min-max normalised), so callers choose their normalisation.

use crate::config::ModelError;
use crate::model::Model;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Int, Tensor, TensorData};

/// CAM of `classes[i]` for image `i`, at the input's resolution.
///
/// Runs one forward pass of the feature extractor. Use
/// [`class_activation_map_from_features`] when the features are already computed (e.g. by
/// [`Model::forward_with_features`]).
///
/// # Shapes
/// - `x`: `[batch, in_channels, height, width]`
/// - output: `[batch, height, width]`
///
/// # Errors
/// When `classes.len()` is not the batch size or a class is out of range.
pub fn class_activation_map(
    model: &Model,
    x: Tensor<4>,
    classes: &[usize],
) -> Result<Tensor<3>, ModelError> {
    let [_, _, height, width] = x.dims();
    check_classes(model, x.dims()[0], classes)?;
    class_activation_map_from_features(model, model.features(x), classes, [height, width])
}

/// CAM of `classes[i]` from the feature map of image `i`, bilinearly upsampled (half-pixel
/// centres, as OpenCV's `resize` in Zhou et al.'s code) to `output_size` = `[height, width]`.
/// With `output_size` equal to the feature map's size this is the map at feature resolution.
///
/// # Shapes
/// - `features`: `[batch, feature_channels, h, w]`, as [`Model::features`] returns it
/// - output: `[batch, output_size[0], output_size[1]]`
pub fn class_activation_map_from_features(
    model: &Model,
    features: Tensor<4>,
    classes: &[usize],
    output_size: [usize; 2],
) -> Result<Tensor<3>, ModelError> {
    let [batch, channels, h, w] = features.dims();
    check_classes(model, batch, classes)?;
    let device = features.device();
    let indices: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
    let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [batch]), &device);
    // The linear weight is stored [channels, classes]; row c of its transpose weighs class c.
    let class_weights = model
        .classifier()
        .fc
        .weight
        .val()
        .transpose()
        .select(0, indices)
        .reshape([batch, 1, channels]);
    let maps = class_weights
        .matmul(features.reshape([batch, channels, h * w]))
        .reshape([batch, 1, h, w]);
    let maps = if [h, w] == output_size {
        maps
    } else {
        interpolate(
            maps,
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(false)
                .with_output_size(output_size),
        )
    };
    Ok(maps.reshape([batch, output_size[0], output_size[1]]))
}

fn check_classes(model: &Model, batch: usize, classes: &[usize]) -> Result<(), ModelError> {
    if classes.len() != batch {
        return Err(ModelError::ClassCount {
            classes: classes.len(),
            batch,
        });
    }
    let num_classes = model.num_classes();
    match classes.iter().find(|&&c| c >= num_classes) {
        Some(&class) => Err(ModelError::ClassOutOfRange { class, num_classes }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Architecture, ModelConfig};
    use burn::tensor::{Device, Distribution, Tolerance};

    fn small_model(device: &Device) -> Model {
        ModelConfig::new("wrn-16-8".parse::<Architecture>().unwrap(), 5)
            .with_base_width(Some(2))
            .init(device)
    }

    /// Zhou et al. eq. 2-3: with global average pooling, the mean of M_c over positions plus
    /// the bias is the logit of class c.
    #[test]
    fn cam_mean_plus_bias_is_the_logit() {
        let device = Device::flex();
        assert_cam_means_are_the_logits(&small_model(&device), &device);
    }

    /// The same for every architecture of the zoo, at a small width.
    #[test]
    fn every_architecture_has_its_cam() {
        let device = Device::flex();
        for &architecture in Architecture::all() {
            let model = ModelConfig::new(architecture, 5)
                .with_base_width(architecture.test_width())
                .with_dropout(Some(0.0))
                .init(&device);
            assert_cam_means_are_the_logits(&model, &device);
        }
    }

    /// CAMs of classes 4, 0, 2 for three random images of a 5-class `model`.
    fn assert_cam_means_are_the_logits(model: &Model, device: &Device) {
        let x = Tensor::<4>::random([3, 3, 32, 32], Distribution::Default, device);
        let (logits, features) = model.forward_with_features(x);
        let [_, _, h, w] = features.dims();
        let classes = [4, 0, 2];
        let maps = class_activation_map_from_features(model, features, &classes, [h, w]).unwrap();
        assert_eq!(maps.dims(), [3, h, w]);
        let bias = model
            .classifier()
            .fc
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data();
        let bias = bias.try_to_vec::<f32>().unwrap();
        let means = maps.reshape([3, h * w]).mean_dim(1).into_data();
        let logits = logits.into_data().try_to_vec::<f32>().unwrap();
        let from_cam: Vec<f32> = means
            .try_to_vec::<f32>()
            .unwrap()
            .iter()
            .zip(classes)
            .map(|(m, c)| m + bias[c])
            .collect();
        let expected: Vec<f32> = classes
            .iter()
            .enumerate()
            .map(|(i, &c)| logits[i * 5 + c])
            .collect();
        // f32 sums: the error grows with the terms' size, and an untrained deep network's
        // logits reach the thousands (measured: 1e-3 off at 1,700).
        let scale = logits.iter().fold(0f32, |m, v| m.max(v.abs()));
        TensorData::new(from_cam, [3]).assert_approx_eq::<f32>(
            &TensorData::new(expected, [3]),
            Tolerance::absolute(1e-4 + 2e-6 * scale),
        );
    }

    #[test]
    fn cam_is_at_input_resolution_and_upsampling_keeps_a_constant_map() {
        let device = Device::flex();
        let model = small_model(&device);
        let x = Tensor::<4>::random([2, 3, 32, 24], Distribution::Default, &device);
        assert_eq!(
            class_activation_map(&model, x, &[1, 3]).unwrap().dims(),
            [2, 32, 24]
        );
        // A constant feature map gives a constant CAM at any size.
        let channels = model.feature_channels();
        let features = Tensor::<4>::ones([1, channels, 8, 8], &device);
        let map = class_activation_map_from_features(&model, features, &[2], [32, 32]).unwrap();
        let values = map.into_data().try_to_vec::<f32>().unwrap();
        let first = values[0];
        assert!(
            values
                .iter()
                .all(|v| (v - first).abs() < 1e-4 * first.abs().max(1.0))
        );
    }

    #[test]
    fn bad_class_lists_are_errors() {
        let device = Device::flex();
        let model = small_model(&device);
        let x = Tensor::<4>::zeros([2, 3, 32, 32], &device);
        assert_eq!(
            class_activation_map(&model, x.clone(), &[1]).unwrap_err(),
            ModelError::ClassCount {
                classes: 1,
                batch: 2
            }
        );
        assert_eq!(
            class_activation_map(&model, x, &[1, 5]).unwrap_err(),
            ModelError::ClassOutOfRange {
                class: 5,
                num_classes: 5
            }
        );
    }
}
