//! PairRM's head: `f(x) = W2 · tanh(W1 · x + b1) + b2` on `[h_source; h_candidate]`, and the
//! pair logit `mean over tasks of f([s; left]) − f([s; right])`.

use crate::checkpoint::{Tensor, Weights, HEAD_HIDDEN_BIAS, HEAD_HIDDEN_WEIGHT, HEAD_OUT_BIAS, HEAD_OUT_WEIGHT};
use crate::error::Result;

/// The head's two linear layers (tensor names: [`crate::checkpoint::HEAD_HIDDEN_WEIGHT`] and its
/// neighbours).
pub(crate) struct Head {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    hidden: usize,
    n_tasks: usize,
}

impl Head {
    pub(crate) fn load(w: &Weights, hidden: usize, n_tasks: usize) -> Result<Self> {
        Ok(Head {
            w1: w.get(HEAD_HIDDEN_WEIGHT, &[hidden, 2 * hidden])?,
            b1: w.get(HEAD_HIDDEN_BIAS, &[hidden])?,
            w2: w.get(HEAD_OUT_WEIGHT, &[n_tasks, hidden])?,
            b2: w.get(HEAD_OUT_BIAS, &[n_tasks])?,
            hidden,
            n_tasks,
        })
    }

    /// Outputs of the last layer.
    pub(crate) fn n_tasks(&self) -> usize {
        self.n_tasks
    }

    /// Bytes of the head's weights.
    pub(crate) fn weight_bytes(&self) -> u64 {
        4 * (self.w1.len() + self.b1.len() + self.w2.len() + self.b2.len()) as u64
    }

    /// `f([source; candidate])` for every task. Dot products accumulate in f64, in a fixed order,
    /// so the result depends on nothing but the two vectors.
    fn scores(&self, source: &[f32], candidate: &[f32]) -> Vec<f32> {
        let h = self.hidden;
        let hidden: Vec<f32> = (0..h)
            .map(|o| {
                let w = &self.w1[o * 2 * h..(o + 1) * 2 * h];
                let dot: f64 = w.iter().zip(source.iter().chain(candidate)).map(|(a, b)| *a as f64 * *b as f64).sum();
                (dot as f32 + self.b1[o]).tanh()
            })
            .collect();
        (0..self.n_tasks)
            .map(|t| {
                let w = &self.w2[t * h..(t + 1) * h];
                let dot: f64 = w.iter().zip(&hidden).map(|(a, b)| *a as f64 * *b as f64).sum();
                dot as f32 + self.b2[t]
            })
            .collect()
    }

    /// `logit(left, right)` from the final hidden states of the three marker tokens.
    pub(crate) fn logit(&self, source: &[f32], left: &[f32], right: &[f32]) -> f32 {
        let l = self.scores(source, left);
        let r = self.scores(source, right);
        let sum: f32 = l.iter().zip(&r).map(|(a, b)| a - b).sum();
        sum / self.n_tasks as f32
    }
}
