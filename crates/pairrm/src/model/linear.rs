//! The two parameterised building blocks of the encoder: a torch `Linear` and a `LayerNorm`.

use super::matrix::{Matrix, WeightDtype};
use super::ops::{add_bias, layer_norm};
use crate::checkpoint::{Tensor, WeightScope};
use crate::error::Result;

/// A torch `Linear`: `weight` `[n_out, n_in]`, `bias` `[n_out]`.
pub(crate) struct Linear {
    weight: Matrix,
    pub(crate) bias: Tensor,
    n_out: usize,
    n_in: usize,
}

impl Linear {
    /// Reads `weight` and `bias` of scope `w`, the weight stored as `dtype`.
    pub(crate) fn load(w: &WeightScope, n_out: usize, n_in: usize, dtype: WeightDtype) -> Result<Self> {
        Ok(Linear {
            weight: Matrix::load(w, "weight", n_out, n_in, dtype)?,
            bias: w.get("bias", &[n_out])?,
            n_out,
            n_in,
        })
    }

    /// Output features.
    pub(crate) fn n_out(&self) -> usize {
        self.n_out
    }

    /// Bytes of the weight and bias.
    pub(crate) fn bytes(&self) -> u64 {
        self.weight.bytes() + 4 * self.bias.len() as u64
    }

    /// `out = x · Wᵀ` for `rows` rows, without the bias (which the caller fuses into its epilogue).
    pub(crate) fn product(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.weight.product(rows, self.n_out, self.n_in, &x[..rows * self.n_in], &mut out[..rows * self.n_out]);
    }

    /// `out = x · Wᵀ + b` for `rows` rows.
    pub(crate) fn forward(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.product(x, rows, out);
        add_bias(&mut out[..rows * self.n_out], &self.bias);
    }
}

/// A `LayerNorm` over rows of `gamma.len()` values.
pub(crate) struct LayerNorm {
    pub(crate) gamma: Tensor,
    pub(crate) beta: Tensor,
    pub(crate) eps: f64,
}

impl LayerNorm {
    /// Reads `weight` (γ) and `bias` (β) of scope `w`, both `[n]`.
    pub(crate) fn load(w: &WeightScope, n: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm { gamma: w.get("weight", &[n])?, beta: w.get("bias", &[n])?, eps })
    }

    /// Normalises every row of `x` in place.
    pub(crate) fn forward(&self, x: &mut [f32]) {
        layer_norm(x, &self.gamma, &self.beta, self.eps);
    }

    /// Bytes of γ and β.
    pub(crate) fn bytes(&self) -> u64 {
        4 * (self.gamma.len() + self.beta.len()) as u64
    }
}
