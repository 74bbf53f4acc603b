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

/// Lanes of the reductions below: independent partial results the compiler keeps in one vector.
const LANES: usize = 8;

dispatch! {
    /// `row = softmax(row · scale)` in place. The max and the sum are reduced over
    /// [`LANES`] partial results in a fixed order, so they vectorize and stay deterministic.
    pub fn softmax_scaled(row: &mut [f32], scale: f32) {
        let mut lanes = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for (v, m) in c.iter_mut().zip(lanes.iter_mut()) {
                *v *= scale;
                *m = if *v > *m { *v } else { *m };
            }
        }
        let mut max = lanes.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
        for v in chunks.into_remainder() {
            *v *= scale;
            max = if *v > max { *v } else { max };
        }
        for v in row.iter_mut() {
            *v = vmath::exp(*v - max);
        }
        let mut sums = [0.0f32; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for (v, s) in c.iter().zip(sums.iter_mut()) {
                *s += v;
            }
        }
        let sum = sums.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
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

    #[test]
    fn softmax_sums_to_one() {
        let mut r = vec![1.0, 2.0, 3.0, -1e9];
        softmax_scaled(&mut r, 0.5);
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(r[3], 0.0);
        assert!(r[2] > r[1] && r[1] > r[0]);
        assert!((r[2] / r[1] - 0.5f32.exp()).abs() < 1e-5);
    }
}
