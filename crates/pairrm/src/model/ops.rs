//! Row-wise operations of the encoder: bias, LayerNorm, GELU, softmax.

/// Adds `bias` to every row of `x` (rows of `bias.len()` values).
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// LayerNorm of each row of `x` in place: `(x - mean) / sqrt(var + eps) * gamma + beta`, with the
/// biased variance. Statistics are accumulated in f64.
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f64) {
    let n = gamma.len();
    for row in x.chunks_exact_mut(n) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = row.iter().map(|&v| (v as f64 - mean) * (v as f64 - mean)).sum::<f64>() / n as f64;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (((*v as f64 - mean) * inv) as f32) * g + b;
        }
    }
}

/// `x = LayerNorm(x + bias + residual)`: the output-projection epilogue of a DeBERTa block.
/// `x` holds `input · Wᵀ`; the sum is associated as torch's `(dense(input)) + residual`.
pub fn bias_residual_layer_norm(x: &mut [f32], bias: &[f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f64) {
    for (row, res) in x.chunks_exact_mut(bias.len()).zip(residual.chunks_exact(bias.len())) {
        for ((v, b), r) in row.iter_mut().zip(bias).zip(res) {
            *v = (*v + b) + r;
        }
    }
    layer_norm(x, gamma, beta, eps);
}

/// Exact (erf) GELU of every element, after adding `bias` to each row.
pub fn bias_gelu(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            let t = *v + b;
            *v = 0.5 * t * (1.0 + libm::erff(t * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

/// Softmax of `row` in place.
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_normalises() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0, -1.0, -1.0, -1.0, -1.0];
        layer_norm(&mut x, &[1.0; 4], &[0.0; 4], 1e-7);
        let m: f32 = x[..4].iter().sum::<f32>() / 4.0;
        assert!(m.abs() < 1e-6);
        assert!((x[3] - 1.3416407).abs() < 1e-5);
        assert_eq!(&x[4..], &[0.0; 4]);
    }

    #[test]
    fn gelu_matches_erf_form() {
        let mut x = vec![-3.0, -1.0, 0.0, 0.5, 2.0];
        bias_gelu(&mut x, &[0.0]);
        let want = [-0.0040496946, -0.15865526, 0.0, 0.34573123, 1.9544997];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut r = vec![1.0, 2.0, 3.0, -1e9];
        softmax(&mut r);
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(r[3], 0.0);
        assert!(r[2] > r[1] && r[1] > r[0]);
    }
}
