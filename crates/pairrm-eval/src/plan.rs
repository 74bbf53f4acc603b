//! The scoring plan: the forward passes a chunk of comparisons needs, sent to the scorer in one
//! call (identical passes once), and each comparison's logits read back. The logit is the one
//! [`pairrm::judge::compare`] returns in the same mode, bit for bit; in mode `both` the two raw
//! logits are kept too, for the position statistics.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use pairrm::judge::{both_logit, CompareMode, CompareRequest, Pair, PairScorer};

/// The logits of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The comparison's logit in the mode asked (> 0: A is better).
    pub logit: f32,
    /// `logit(A, B)`: A in the left slot (modes `ab` and `both`).
    pub ab: Option<f32>,
    /// `logit(B, A)` as the model gives it, > 0 meaning B is better (modes `ba` and `both`).
    pub ba: Option<f32>,
}

/// Scores every request in `mode` with one call to `scorer`; a request whose pass fails gets the
/// scorer's message.
pub fn score_requests<S: PairScorer + ?Sized>(
    scorer: &S,
    requests: &[&CompareRequest],
    mode: CompareMode,
) -> Vec<Result<Scored, String>> {
    let mut pairs: Vec<Pair> = vec![];
    let mut slots: HashMap<Pair, usize> = HashMap::new();
    let mut add = |pair: Pair| -> usize {
        *slots.entry(pair.clone()).or_insert_with(|| {
            pairs.push(pair);
            pairs.len() - 1
        })
    };
    let plans: Vec<(Option<usize>, Option<usize>)> = requests
        .iter()
        .map(|r| {
            let source: Arc<str> = Arc::from(format!("{}{}", r.instruction.as_deref().unwrap_or(""), r.source));
            let (a, b): (Arc<str>, Arc<str>) = (Arc::from(r.a.as_str()), Arc::from(r.b.as_str()));
            let ab = matches!(mode, CompareMode::Ab | CompareMode::Both)
                .then(|| add(Pair { source: source.clone(), left: a.clone(), right: b.clone() }));
            let ba =
                matches!(mode, CompareMode::Ba | CompareMode::Both).then(|| add(Pair { source, left: b, right: a }));
            (ab, ba)
        })
        .collect();
    let logits: Vec<Result<f32, String>> = if pairs.is_empty() {
        vec![]
    } else {
        let results = scorer.logits(&pairs);
        if results.len() == pairs.len() {
            results.into_iter().map(|r| r.map_err(|e| e.to_string())).collect()
        } else {
            let message = format!("the scorer returned {} results for {} pairs", results.len(), pairs.len());
            vec![Err(message); pairs.len()]
        }
    };
    let get = |slot: Option<usize>| slot.map(|s| logits[s].clone()).transpose();
    plans
        .into_iter()
        .map(|(ab, ba)| {
            let (ab, ba) = (get(ab)?, get(ba)?);
            let logit = match (ab, ba) {
                (Some(ab), Some(ba)) => both_logit(ab, ba),
                (Some(ab), None) => ab,
                (None, Some(ba)) => -ba,
                (None, None) => unreachable!("every mode plans a pass"),
            };
            Ok(Scored { logit, ab, ba })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Fake scorers for the evaluation tests.

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
}

#[cfg(test)]
mod tests {
    use super::testing::LenScorer;
    use super::*;
    use pairrm::judge::compare;

    fn req(instruction: Option<&str>, source: &str, a: &str, b: &str) -> CompareRequest {
        CompareRequest { instruction: instruction.map(str::to_string), source: source.into(), a: a.into(), b: b.into() }
    }

    #[test]
    fn logits_equal_the_judge_compare_in_every_mode() {
        let requests = [
            req(Some("Do "), "it", "long answer", "short"),
            req(None, "s", "x", "yyy"),
            req(None, "s", "same", "same"),
        ];
        let refs: Vec<&CompareRequest> = requests.iter().collect();
        let scorer = LenScorer::new(0.375);
        for mode in [CompareMode::Ab, CompareMode::Ba, CompareMode::Both] {
            let got = score_requests(&scorer, &refs, mode);
            let want = compare(&scorer, &requests, mode);
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.as_ref().unwrap().logit.to_bits(), w.as_ref().unwrap().logit.to_bits(), "{mode}");
            }
        }
        let both = score_requests(&scorer, &refs, CompareMode::Both);
        let s = both[0].as_ref().unwrap();
        assert_eq!(s.ab, Some(scorer.logit("long answer", "short")));
        assert_eq!(s.ba, Some(scorer.logit("short", "long answer")));
        // Identical answers: logit(A, B) − logit(B, A) is exactly 0 despite the position bias.
        assert_eq!(both[2].as_ref().unwrap().logit, 0.0);
        let ab = score_requests(&scorer, &refs, CompareMode::Ab);
        assert_eq!((ab[0].as_ref().unwrap().ba, ab[2].as_ref().unwrap().logit), (None, 0.375));
    }

    #[test]
    fn identical_passes_are_sent_once_in_one_call() {
        let requests = [req(None, "s", "a", "bb"), req(None, "s", "bb", "a"), req(None, "s", "a", "bb")];
        let refs: Vec<&CompareRequest> = requests.iter().collect();
        let scorer = LenScorer::new(0.0);
        let got = score_requests(&scorer, &refs, CompareMode::Both);
        assert_eq!(*scorer.calls.lock().unwrap(), [2]);
        assert_eq!(got[0], got[2]);
        assert_eq!(got[0].as_ref().unwrap().logit, -got[1].as_ref().unwrap().logit);
        assert!(score_requests(&scorer, &[], CompareMode::Both).is_empty());
        assert_eq!(scorer.calls.lock().unwrap().len(), 1);
    }

    #[test]
    fn failures_stay_with_their_requests() {
        let requests = [req(None, "s", "FAIL", "b"), req(None, "s", "a", "b")];
        let refs: Vec<&CompareRequest> = requests.iter().collect();
        let got = score_requests(&LenScorer::new(0.0), &refs, CompareMode::Both);
        assert_eq!(got[0].as_ref().unwrap_err(), "tokenizer: cannot score \"FAIL\"");
        assert!(got[1].is_ok());
        struct Short;
        impl PairScorer for Short {
            fn logits(&self, _: &[Pair]) -> Vec<pairrm::Result<f32>> {
                vec![Ok(1.0)]
            }
        }
        let got = score_requests(&Short, &refs, CompareMode::Ab);
        assert!(got.iter().all(|r| r.as_ref().unwrap_err().contains("returned 1 results for 2 pairs")));
    }
}
