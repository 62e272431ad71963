//! The reductions that turn model outputs into the saliency tensors the model-guided methods
//! take. sal-core knows no model: the trainer runs the forward/backward pass and calls these.

use burn::tensor::Tensor;

/// SalfMix eq. (3): `M[n, i, j] = max_c |g[n, c, i, j]|` of the input gradient `g = dL/dx`
/// (cross-entropy with the true labels), `[N, C, H, W]` -> `[N, H, W]`.
pub fn input_gradient_saliency(gradient: Tensor<4>) -> Tensor<3> {
    let [n, _, h, w] = gradient.dims();
    gradient.abs().max_dim(1).reshape([n, h, w])
}

/// Saliency Grafting §4.3: `S[n] = sum_c |A[n, c]|` of a (detached) feature map
/// `[N, C, h, w]` -> `[N, h, w]`.
pub fn feature_map_saliency(features: Tensor<4>) -> Tensor<3> {
    let [n, _, h, w] = features.dims();
    features.detach().abs().sum_dim(1).reshape([n, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{devices, host_vec};
    use burn::tensor::TensorData;

    #[test]
    fn reductions_over_channels() {
        for device in devices() {
            let g = Tensor::<4>::from_data(
                TensorData::new(
                    vec![1.0f32, -3.0, 2.0, 0.5, -2.0, 1.0, -1.0, 4.0],
                    [1, 2, 2, 2],
                ),
                &device,
            );
            assert_eq!(
                host_vec::<f32, 3>(input_gradient_saliency(g.clone())),
                vec![2.0, 3.0, 2.0, 4.0]
            );
            assert_eq!(
                host_vec::<f32, 3>(feature_map_saliency(g)),
                vec![3.0, 4.0, 3.0, 4.5]
            );
        }
    }
}
