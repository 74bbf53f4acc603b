//! Row-wise operations of the encoder: bias, LayerNorm, GELU, softmax. The row-wise passes over
//! whole activations run on the rayon pool, by blocks of rows; each row is computed by the same
//! code whatever the split, so results do not depend on the number of threads.

use rayon::prelude::*;

use super::vmath::{self, dispatch};

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 16;

/// Runs `f` on every row of `x` (rows of `width` values) in parallel blocks.
fn par_rows(x: &mut [f32], width: usize, f: impl Fn(&mut [f32]) + Sync) {
    x.par_chunks_mut(width * ROWS_PER_TASK).for_each(|block| block.chunks_exact_mut(width).for_each(&f));
}

/// Adds `bias` to every row of `x` (rows of `bias.len()` values).
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    par_rows(x, bias.len(), |row| {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    });
}

/// LayerNorm of one row in place: `(x - mean) / sqrt(var + eps) * gamma + beta`, with the biased
/// variance. Statistics are accumulated in f64.
fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f64) {
    let n = row.len() as f64;
    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = row.iter().map(|&v| (v as f64 - mean) * (v as f64 - mean)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (((*v as f64 - mean) * inv) as f32) * g + b;
    }
}

/// LayerNorm of each row of `x` in place (rows of `gamma.len()` values).
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f64) {
    par_rows(x, gamma.len(), |row| layer_norm_row(row, gamma, beta, eps));
}

/// `x = LayerNorm((x + bias) + residual)`: the output-projection epilogue of a DeBERTa block,
/// where `x` holds `input · Wᵀ` (the sum associated as torch's `dense(input) + residual`).
pub fn bias_residual_layer_norm(x: &mut [f32], bias: &[f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f64) {
    let w = bias.len();
    x.par_chunks_mut(w * ROWS_PER_TASK).zip(residual.par_chunks(w * ROWS_PER_TASK)).for_each(|(block, res)| {
        for (row, r) in block.chunks_exact_mut(w).zip(res.chunks_exact(w)) {
            for ((v, b), r) in row.iter_mut().zip(bias).zip(r) {
                *v = (*v + b) + r;
            }
            layer_norm_row(row, gamma, beta, eps);
        }
    });
}

/// Erf-form GELU of every element, after adding `bias` to each row.
pub fn bias_gelu(x: &mut [f32], bias: &[f32]) {
    par_rows(x, bias.len(), |row| bias_gelu_row(row, bias));
}

dispatch! {
    /// `row[i] = gelu(row[i] + bias[i])`.
    pub fn bias_gelu_row(row: &mut [f32], bias: &[f32]) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = vmath::gelu(*v + b);
        }
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
}
