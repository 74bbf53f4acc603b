//! Judging with pairwise logits: compare (three modes), full-matrix rank, rank against a
//! reference, best/worst-of-n (full or bubble), and conversations. Pure logic over a
//! [`PairScorer`], replicating LLM-Blender's `Blender` methods.
//!
//! # Conventions
//! - `logit(left, right) > 0` means `left` is better; every result here keeps that meaning for
//!   the candidate named first (`A` in [`compare`]): see [`CompareMode`] for where this differs
//!   from the reference (`[B,A]`).
//! - The source of a pair is `instruction + source`, concatenated without separator, as the
//!   reference's `RankerDataset` does.
//! - Scores and ranks use the reference's float32 arithmetic bit for bit ([`numpy_mean_f32`],
//!   [`scores_from_matrix`], [`ranks_from_scores`], [`both_logit`]): equal logits give equal
//!   results.
//!
//! # Batching
//! Every operation collects all the forward passes of all its requests and hands them to
//! [`PairScorer::logits`] in as few calls as possible: one call for [`compare`], [`rank`],
//! [`rank_with_ref`], [`compare_conversations`] and full best/worst-of-n; one call per bubble step
//! for bubble best/worst-of-n (every request advances in lockstep). Within one call, identical
//! pairs (same source, left and right text) are sent once and their logit reused, so identical
//! candidates always tie exactly. A call with no pairs (only single candidates) is not made.
//!
//! # Errors
//! Each request gets its own `Result`: invalid input fails only that request (with
//! [`Error::InvalidInput`] naming the field), and a pair the scorer
//! fails fails only the requests that need it, with the scorer's error (the first failing pair of
//! the request, in the order the request would use them).

mod compare;
mod conversation;
mod numeric;
mod rank;
mod select;
#[cfg(test)]
mod testing;

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};

pub use compare::{compare, compare_logits, CompareLogits, CompareMode, CompareRequest, CompareResult};
pub use conversation::{
    compare_conversations, conversation_request, CompareInput, ConversationPair, Turn, CONVERSATION_INSTRUCTION,
};
pub use numeric::{both_logit, numpy_mean_f32, numpy_sum_f32, ranks_from_scores, scores_from_matrix};
pub use rank::{
    check_candidate_count, matrix_passes, python_len, rank, rank_with_ref, reference_passes, select_reference,
    RankRequest, RankResult, RankWithRefRequest, RankWithRefResult, Reference, ReferenceMode, DEFAULT_MAX_CANDIDATES,
};
pub use select::{
    best_of_n, bubble_with_permutations, seeded_permutation, select_n, worst_of_n, SelectMethod, SelectResult,
    SplitMix64, Target,
};

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

/// The pair source the reference builds: `instruction + source` (no separator).
fn full_source(instruction: Option<&str>, source: &str) -> Arc<str> {
    match instruction {
        Some(instruction) => Arc::from(format!("{instruction}{source}")),
        None => Arc::from(source),
    }
}

/// The pairs of one scorer call, deduplicated; each added pair gets a slot to read its logit
/// back from.
#[derive(Default)]
struct PairBatch {
    pairs: Vec<Pair>,
    slots: HashMap<Pair, usize>,
}

impl PairBatch {
    /// Adds the pair `(left, right)` for `source`; returns its slot.
    fn add(&mut self, source: &Arc<str>, left: &Arc<str>, right: &Arc<str>) -> usize {
        let pair = Pair { source: source.clone(), left: left.clone(), right: right.clone() };
        if let Some(&slot) = self.slots.get(&pair) {
            return slot;
        }
        let slot = self.pairs.len();
        self.pairs.push(pair.clone());
        self.slots.insert(pair, slot);
        slot
    }

    /// Runs the scorer once over all pairs (not at all when there are none).
    fn score<S: PairScorer + ?Sized>(self, scorer: &S) -> PairLogits {
        if self.pairs.is_empty() {
            return PairLogits(Vec::new());
        }
        let results = scorer.logits(&self.pairs);
        if results.len() != self.pairs.len() {
            // The results cannot be matched to the pairs: fail every pair.
            let message = format!("returned {} results for {} pairs", results.len(), self.pairs.len());
            return PairLogits((0..self.pairs.len()).map(|_| Err(Error::model("pair scorer", &message))).collect());
        }
        PairLogits(results)
    }
}

/// The scorer's answers for a [`PairBatch`], by slot.
struct PairLogits(Vec<Result<f32>>);

impl PairLogits {
    /// The logit in `slot`, or a copy of its error (a slot can be shared by several requests).
    /// A logit that is a non-finite number is [`Error::NonFinite`]: no judgement is made on it.
    fn get(&self, slot: usize) -> Result<f32> {
        match self.0.get(slot) {
            Some(Ok(logit)) => crate::error::finite(*logit, || "a logit".into()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(Error::model("pair scorer", format!("no result for pair {slot}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn full_source_concatenates_without_separator() {
        assert_eq!(&*full_source(Some("Do it. "), "now"), "Do it. now");
        assert_eq!(&*full_source(Some("Do it."), "now"), "Do it.now");
        assert_eq!(&*full_source(None, "now"), "now");
    }

    #[test]
    fn batch_deduplicates_and_skips_empty_calls() {
        let scorer = Recording::new(LenScorer);
        let s: Arc<str> = Arc::from("src");
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("aa"), Arc::from("b"));
        let mut batch = PairBatch::default();
        let s1 = batch.add(&s, &a, &b);
        let s2 = batch.add(&s, &b, &a);
        let s3 = batch.add(&s, &Arc::from("aa"), &b);
        assert_eq!((s1, s2, s3), (0, 1, 0));
        let logits = batch.score(&scorer);
        assert_eq!(scorer.calls().len(), 1);
        assert_eq!(scorer.calls()[0].len(), 2);
        assert_eq!(logits.get(s1).unwrap(), LenScorer.logit("aa", "b"));
        assert!(PairBatch::default().score(&scorer).0.is_empty());
        assert_eq!(scorer.calls().len(), 1);
    }

    #[test]
    fn a_scorer_returning_the_wrong_count_fails_every_pair() {
        struct Short;
        impl PairScorer for Short {
            fn logits(&self, _pairs: &[Pair]) -> Vec<Result<f32>> {
                vec![Ok(1.0)]
            }
        }
        let s: Arc<str> = Arc::from("src");
        let mut batch = PairBatch::default();
        batch.add(&s, &Arc::from("a"), &Arc::from("b"));
        batch.add(&s, &Arc::from("b"), &Arc::from("a"));
        let logits = batch.score(&Short);
        assert!(matches!(logits.get(0), Err(Error::Model { .. })));
        assert!(matches!(logits.get(1), Err(Error::Model { .. })));
        assert!(matches!(logits.get(2), Err(Error::Model { .. })));
    }

    #[test]
    fn a_shared_failing_pair_gives_each_request_its_error() {
        let s: Arc<str> = Arc::from("src");
        let mut batch = PairBatch::default();
        let slot = batch.add(&s, &Arc::from("FAIL"), &Arc::from("b"));
        let logits = batch.score(&Failing(LenScorer));
        for _ in 0..2 {
            let e = logits.get(slot).unwrap_err();
            assert!(matches!(e, Error::Tokenizer(_)), "{e}");
            assert_eq!(e.to_string(), "tokenizer: boom: FAIL|b");
        }
        let io = Error::io("f", std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
        let copy = io.clone();
        assert_eq!(copy.to_string(), io.to_string());
        assert!(matches!(copy, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
    }
}
