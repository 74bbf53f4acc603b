//! A fake scorer for the evaluation tests.

use std::sync::Mutex;

use pairrm::judge::{Pair, PairScorer};
use pairrm::{Error, Result};

/// `logit = (chars(left) − chars(right)) / 2 + bias`, recording the size of every call;
/// pairs whose left text contains `FAIL` fail.
pub struct LenScorer {
    pub bias: f32,
    pub calls: Mutex<Vec<usize>>,
}

impl LenScorer {
    pub fn new(bias: f32) -> Self {
        LenScorer { bias, calls: Mutex::new(vec![]) }
    }

    pub fn logit(&self, left: &str, right: &str) -> f32 {
        (left.chars().count() as f32 - right.chars().count() as f32) / 2.0 + self.bias
    }
}

impl PairScorer for LenScorer {
    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>> {
        self.calls.lock().unwrap().push(pairs.len());
        pairs
            .iter()
            .map(|p| {
                if p.left.contains("FAIL") {
                    Err(Error::Tokenizer(format!("cannot score {:?}", &*p.left)))
                } else {
                    Ok(self.logit(&p.left, &p.right))
                }
            })
            .collect()
    }
}
