//! Mock scorers for the judge tests.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Pair, PairScorer};
use crate::error::{Error, Result};

/// `logit = (chars(left) - chars(right)) / 2 + 1/8`: longer is better, with a small bias towards
/// the left slot so that the compare modes differ (`logit(x, x) = 1/8`). Exact in float32.
pub struct LenScorer;

impl LenScorer {
    pub fn logit(&self, left: &str, right: &str) -> f32 {
        (left.chars().count() as f32 - right.chars().count() as f32) / 2.0 + 0.125
    }
}

impl PairScorer for LenScorer {
    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>> {
        pairs.iter().map(|p| Ok(self.logit(&p.left, &p.right))).collect()
    }
}

/// Logits from a table keyed by `(left, right)`; a missing pair fails with a tokenizer error
/// naming it.
pub struct TableScorer(pub HashMap<(String, String), f32>);

impl TableScorer {
    pub fn new(entries: &[(&str, &str, f32)]) -> Self {
        TableScorer(entries.iter().map(|&(l, r, v)| ((l.to_string(), r.to_string()), v)).collect())
    }
}

impl PairScorer for TableScorer {
    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>> {
        pairs
            .iter()
            .map(|p| {
                self.0
                    .get(&(p.left.to_string(), p.right.to_string()))
                    .copied()
                    .ok_or_else(|| Error::Tokenizer(format!("no logit for ({}, {})", p.left, p.right)))
            })
            .collect()
    }
}

/// Fails (with `Error::Tokenizer("boom: <left>|<right>")`) every pair whose left or right text
/// contains `FAIL`; delegates the rest.
pub struct Failing<S>(pub S);

impl<S: PairScorer> PairScorer for Failing<S> {
    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>> {
        let mut inner = self.0.logits(pairs);
        for (p, r) in pairs.iter().zip(inner.iter_mut()) {
            if p.left.contains("FAIL") || p.right.contains("FAIL") {
                *r = Err(Error::Tokenizer(format!("boom: {}|{}", p.left, p.right)));
            }
        }
        inner
    }
}

/// Records every call's pairs, then delegates.
pub struct Recording<S> {
    inner: S,
    calls: Mutex<Vec<Vec<Pair>>>,
}

impl<S> Recording<S> {
    pub fn new(inner: S) -> Self {
        Recording { inner, calls: Mutex::new(Vec::new()) }
    }

    /// The pairs of every call so far.
    pub fn calls(&self) -> Vec<Vec<Pair>> {
        self.calls.lock().unwrap().clone()
    }

    /// Every call's pairs as `(source, left, right)` strings.
    pub fn call_strings(&self) -> Vec<Vec<(String, String, String)>> {
        self.calls()
            .iter()
            .map(|call| call.iter().map(|p| (p.source.to_string(), p.left.to_string(), p.right.to_string())).collect())
            .collect()
    }
}

impl<S: PairScorer> PairScorer for Recording<S> {
    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>> {
        self.calls.lock().unwrap().push(pairs.to_vec());
        self.inner.logits(pairs)
    }
}

/// The field of an `InvalidInput` error, or a panic (tests only).
pub fn invalid_field(e: &Error) -> &str {
    match e {
        Error::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

/// Strings to owned strings.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
