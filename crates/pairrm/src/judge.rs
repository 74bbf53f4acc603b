//! Judging with pairwise logits: compare (three modes), full-matrix rank, rank against a
//! reference, bubble best/worst-of-n, and conversations. Pure logic over a [`PairScorer`].
//!
//! SKELETON: the helper implementing this module replaces every `todo!()`.

use std::sync::Arc;

use crate::error::Result;

/// One forward pass to run: the source (instruction already prepended) and the two candidates,
/// `left` in the `<|candidate1|>` slot and `right` in the `<|candidate2|>` slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pair {
    /// Instruction + input, concatenated without separator as the reference does.
    pub source: Arc<str>,
    /// Left candidate.
    pub left: Arc<str>,
    /// Right candidate.
    pub right: Arc<str>,
}

/// Anything that gives `logit(left, right)` (> 0: left is better) for many pairs at once.
/// Results are in request order; one failing pair does not fail the others.
pub trait PairScorer: Sync {
    /// Scores all `pairs`.
    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>>;
}
