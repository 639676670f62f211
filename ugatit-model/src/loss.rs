//! The U-GAT-IT losses (paper section 2.2), as the official code computes them.

use burn::prelude::*;
use burn::tensor::activation::relu;

/// Least-squares adversarial loss against a constant target: `mean((x - target)^2)`
/// (`nn.MSELoss` against `torch.ones_like` / `torch.zeros_like`).
pub fn mse_to<B: Backend, const D: usize>(x: Tensor<B, D>, target: f32) -> Tensor<B, 1> {
    (x - target).powi_scalar(2).mean()
}

/// Cycle and identity loss: `mean(|a - b|)` (`nn.L1Loss`).
pub fn l1<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, 1> {
    (a - b).abs().mean()
}

/// CAM loss: binary cross-entropy with logits against a constant float target
/// (`nn.BCEWithLogitsLoss`), in torch's stable form
/// `max(x, 0) - x * t + log(1 + exp(-|x|))`.
pub fn bce_with_logits_to<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    target: f32,
) -> Tensor<B, 1> {
    let stable = x.clone().abs().neg().exp().log1p();
    (relu(x.clone()) - x * target + stable).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn losses_match_their_definitions() {
        let d = Default::default();
        let x = Tensor::<Flex, 1>::from_floats([-30.0, -1.0, 0.0, 2.0, 40.0], &d);
        let y = Tensor::<Flex, 1>::from_floats([0.0, 0.0, 1.0, 1.0, 1.0], &d);
        let mse = mse_to(x.clone(), 1.0).into_scalar();
        assert!((mse - (961.0 + 4.0 + 1.0 + 1.0 + 1521.0) / 5.0).abs() < 1e-3);
        assert!(
            (l1(x.clone(), y).into_scalar() - (30.0 + 1.0 + 1.0 + 1.0 + 39.0) / 5.0).abs() < 1e-5
        );
        // Direct formula -t*log(sigmoid(x)) - (1-t)*log(1-sigmoid(x)), in f64, for t = 1.
        let want: f64 = [-30.0f64, -1.0, 0.0, 2.0, 40.0]
            .iter()
            .map(|&v| (1.0 + (-v).exp()).ln())
            .sum::<f64>()
            / 5.0;
        let got = bce_with_logits_to(x, 1.0).into_scalar() as f64;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
}
