//! `Blender.get_best_of_n` / `get_worst_of_n`: pick one candidate, by the full comparison matrix
//! or by one bubble pass.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::rank::{matrix_passes, rank, Prepared, RankRequest};
use super::{PairBatch, PairScorer};
use crate::error::{Error, Result};

/// Whether to pick the best or the worst candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The best candidate (`get_best_of_n`).
    #[default]
    Best,
    /// The worst candidate (`get_worst_of_n`).
    Worst,
}

/// How to find the best (or worst) candidate (`pairrm_cmp_type` in the reference); the CLI's
/// `--strategy` and the server's `strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Strategy, description = "How `/rank` ranks."))]
pub enum SelectMethod {
    /// The full comparison matrix of [`rank`]: `n * (n - 1)` passes, one scorer call.
    #[cfg_attr(feature = "clap", value(help = "All n·(n−1) comparisons: the reference's scores and ranks"))]
    Full,
    /// One bubble pass over a seeded random permutation: `2 * (n - 1)` passes in `n - 1` scorer
    /// calls. The reference's default.
    #[cfg_attr(
        feature = "clap",
        value(help = "One bubble pass over a seeded random order (2·(n−1) comparisons): the best candidate only")
    )]
    #[default]
    Bubble,
}

impl SelectMethod {
    /// Forward passes picking among `n` candidates takes: [`matrix_passes`]`(n)` for `Full`,
    /// `2 * (n - 1)` for `Bubble`.
    pub fn passes(self, n: usize) -> usize {
        match self {
            SelectMethod::Full => matrix_passes(n),
            SelectMethod::Bubble => 2 * n.saturating_sub(1),
        }
    }
}

impl fmt::Display for SelectMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SelectMethod::Full => "full",
            SelectMethod::Bubble => "bubble",
        })
    }
}

impl FromStr for SelectMethod {
    type Err = Error;

    /// Parses `full` or `bubble` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_lowercase().as_str() {
            "full" => Ok(SelectMethod::Full),
            "bubble" => Ok(SelectMethod::Bubble),
            _ => {
                Err(Error::invalid_input("method", format!("unknown selection method {s:?}; expected full or bubble")))
            }
        }
    }
}

/// The chosen candidate and the reference's `return_all` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectResult {
    /// Index of the best (or worst) candidate; `order[0]`.
    pub index: usize,
    /// All candidate indices, the chosen one first (what the reference returns with
    /// `return_all=True`, as indices). [`SelectMethod::Full`]: sorted by rank (best-first for
    /// [`Target::Best`], worst-first for [`Target::Worst`]), equal ranks by index.
    /// [`SelectMethod::Bubble`]: the final winner, then the loser of each bubble step in step
    /// order.
    pub order: Vec<usize>,
}

/// SplitMix64 (Steele, Lea & Flood 2014), the generator behind [`seeded_permutation`]: a 64-bit
/// state advanced by `0x9E3779B97F4A7C15`, output mixed with the `splitmix64` finalizer. Fixed
/// here so that a seed gives the same permutation on every platform and in every version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state starts at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound > 0`): the high 64 bits of `next_u64() * bound`
    /// (multiply-shift; its bias, below `bound / 2^64`, is irrelevant here). `0` for `bound == 0`.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// The permutation of `0..n` used by bubble selection with `seed`: Fisher–Yates from the end,
/// `for i in (1..n).rev() { swap(i, rng.below(i + 1)) }`, with [`SplitMix64::new`]`(seed)`. It
/// depends only on `n` and `seed`, so all requests with the same number of candidates share it (the
/// reference also uses one permutation for a whole batch, but unseeded: `torch.randperm`).
pub fn seeded_permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    perm
}

/// Best-of-n for every request ([`select_n`] with [`Target::Best`]).
pub fn best_of_n<S: PairScorer + ?Sized>(
    scorer: &S,
    requests: &[RankRequest],
    method: SelectMethod,
    seed: u64,
) -> Vec<Result<SelectResult>> {
    select_n(scorer, requests, Target::Best, method, seed)
}

/// Worst-of-n for every request ([`select_n`] with [`Target::Worst`]).
pub fn worst_of_n<S: PairScorer + ?Sized>(
    scorer: &S,
    requests: &[RankRequest],
    method: SelectMethod,
    seed: u64,
) -> Vec<Result<SelectResult>> {
    select_n(scorer, requests, Target::Worst, method, seed)
}

/// Picks the best or worst candidate of every request, as `get_best_of_n` / `get_worst_of_n`.
///
/// - [`SelectMethod::Full`]: [`rank`], then the candidates sorted by rank (ascending for best,
///   descending for worst: the reference's `np.argsort(ranks)` / `np.argsort(-ranks)`), ties by
///   index. **Reference quirk:** numpy's default argsort is not stable on x86 builds with
///   AVX2/AVX-512 (x86-simd-sort; e.g. `np.argsort([2, 2, 1, 1])` gives `[3, 2, 1, 0]` there), so
///   which of several equally ranked candidates the reference returns depends on the machine; this
///   engine always returns the first.
/// - [`SelectMethod::Bubble`]: one bubble pass over [`seeded_permutation`]`(n, seed)` (see
///   [`bubble_with_permutations`]).
///
/// A request with one candidate needs no pass: index 0. `seed` is used by `Bubble` only.
///
/// # Errors
/// Per request: [`Error::InvalidInput`] naming `candidates` if there are none; the scorer's error
/// for a pass the request needs.
pub fn select_n<S: PairScorer + ?Sized>(
    scorer: &S,
    requests: &[RankRequest],
    target: Target,
    method: SelectMethod,
    seed: u64,
) -> Vec<Result<SelectResult>> {
    match method {
        SelectMethod::Full => rank(scorer, requests)
            .into_iter()
            .map(|ranked| {
                let ranks = ranked?.ranks;
                let mut order: Vec<usize> = (0..ranks.len()).collect();
                match target {
                    Target::Best => order.sort_by_key(|&i| ranks[i]),
                    Target::Worst => order.sort_by_key(|&i| std::cmp::Reverse(ranks[i])),
                }
                Ok(SelectResult { index: order[0], order })
            })
            .collect(),
        SelectMethod::Bubble => {
            let permutations: Vec<Vec<usize>> =
                requests.iter().map(|r| seeded_permutation(r.candidates.len(), seed)).collect();
            bubble_with_permutations(scorer, requests, target, &permutations)
        }
    }
}

/// One bubble pass per request over the given permutation of its candidate indices, as the
/// reference's `_bubble_predict` (`num_runs=1`).
///
/// The current holder starts as `permutation[0]`; step `k` (`k = 0..n-1`) compares it with
/// `next = permutation[k + 1]`: `d = logit(cur, next) + (-logit(next, cur))` in float32. For
/// [`Target::Best`], `cur` stays the holder ("moves up") if `d > 0`, else `next` takes over; for
/// [`Target::Worst`], `cur` stays if `d < 0`, else `next` takes over. The last holder is the
/// result; [`SelectResult::order`] is it followed by each step's other candidate. A NaN `d`, on
/// which the reference's assert fails, hands over to `next`.
///
/// All requests advance in lockstep: step `k` of every request that has one goes to the scorer in
/// one [`PairScorer::logits`] call (2 passes per request), so there are `max(n) - 1` calls. A
/// request whose pass fails stops there with that error; the others go on.
///
/// # Errors
/// Per request: [`Error::InvalidInput`] naming `candidates` if there are none, or
/// `permutations[r]` if it is not a permutation of the request's candidate indices (or
/// `permutations` for every request if the counts differ); the scorer's error for a failing pass.
pub fn bubble_with_permutations<S: PairScorer + ?Sized>(
    scorer: &S,
    requests: &[RankRequest],
    target: Target,
    permutations: &[Vec<usize>],
) -> Vec<Result<SelectResult>> {
    if permutations.len() != requests.len() {
        return requests
            .iter()
            .map(|_| {
                Err(Error::invalid_input(
                    "permutations",
                    format!("{} permutations for {} requests", permutations.len(), requests.len()),
                ))
            })
            .collect();
    }
    let mut states: Vec<Result<BubbleState>> = requests
        .iter()
        .zip(permutations)
        .enumerate()
        .map(|(r, (request, perm))| BubbleState::new(request, perm, r))
        .collect();
    for step in 0.. {
        let mut batch = PairBatch::default();
        let mut planned = Vec::new();
        for (r, state) in states.iter_mut().enumerate() {
            if let Ok(state) = state {
                if let Some(next) = state.perm.get(step + 1).copied() {
                    let c = &state.prepared.candidates;
                    let (cur, source) = (state.holder, &state.prepared.source);
                    let forward = batch.add(source, &c[cur], &c[next]);
                    let backward = batch.add(source, &c[next], &c[cur]);
                    planned.push((r, next, forward, backward));
                }
            }
        }
        if planned.is_empty() {
            break;
        }
        let logits = batch.score(scorer);
        for (r, next, forward, backward) in planned {
            let outcome = logits.get(forward).and_then(|x| Ok((x, logits.get(backward)?)));
            match (outcome, &mut states[r]) {
                (Ok((x, y)), Ok(state)) => state.step(next, x + (-y), target),
                (Err(e), state) => *state = Err(e),
                (Ok(_), Err(_)) => {}
            }
        }
    }
    states
        .into_iter()
        .map(|state| {
            let state = state?;
            let mut order = Vec::with_capacity(state.perm.len());
            order.push(state.holder);
            order.extend(state.losers);
            Ok(SelectResult { index: state.holder, order })
        })
        .collect()
}

/// One request's bubble pass in progress.
struct BubbleState {
    prepared: Prepared,
    perm: Vec<usize>,
    /// The candidate carried up so far.
    holder: usize,
    /// The other candidate of each step so far.
    losers: Vec<usize>,
}

impl BubbleState {
    fn new(request: &RankRequest, perm: &[usize], r: usize) -> Result<Self> {
        let prepared = Prepared::new(request)?;
        let n = prepared.candidates.len();
        let mut seen = vec![false; n];
        let valid = perm.len() == n && perm.iter().all(|&i| i < n && !std::mem::replace(&mut seen[i], true));
        if !valid {
            return Err(Error::invalid_input(
                format!("permutations[{r}]"),
                format!("{perm:?} is not a permutation of 0..{n}"),
            ));
        }
        Ok(BubbleState { prepared, perm: perm.to_vec(), holder: perm[0], losers: Vec::with_capacity(n - 1) })
    }

    /// Applies one comparison of the holder with `next`, `d = logit(holder, next) - logit(next, holder)`.
    fn step(&mut self, next: usize, d: f32, target: Target) {
        let holder_moves_up = match target {
            Target::Best => d > 0.0,
            Target::Worst => d < 0.0,
        };
        if holder_moves_up {
            self.losers.push(next);
        } else {
            self.losers.push(self.holder);
            self.holder = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn req(candidates: &[&str]) -> RankRequest {
        RankRequest { instruction: None, source: "src".into(), candidates: strings(candidates) }
    }

    /// Cross-checked with an independent Python implementation:
    /// ```python
    /// M = 2**64 - 1
    /// def perm(n, seed):
    ///     s = seed; p = list(range(n))
    ///     for i in range(n - 1, 0, -1):
    ///         s = (s + 0x9E3779B97F4A7C15) & M; z = s
    ///         z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    ///         z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    ///         z ^= z >> 31
    ///         j = (z * (i + 1)) >> 64; p[i], p[j] = p[j], p[i]
    ///     return p
    /// ```
    #[test]
    fn seeded_permutations_are_fixed() {
        // SplitMix64 reference output for seed 0 (Vigna's splitmix64.c).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(seeded_permutation(0, 0), Vec::<usize>::new());
        assert_eq!(seeded_permutation(1, 0), vec![0]);
        assert_eq!(seeded_permutation(5, 0), PERM_5_SEED_0.to_vec());
        assert_eq!(seeded_permutation(8, 42), PERM_8_SEED_42.to_vec());
        assert_eq!(seeded_permutation(5, 0), seeded_permutation(5, 0));
        assert_ne!(seeded_permutation(8, 0), seeded_permutation(8, 1));
        let mut p = seeded_permutation(100, 7);
        p.sort_unstable();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }

    const PERM_5_SEED_0: [usize; 5] = [2, 3, 0, 1, 4];
    const PERM_8_SEED_42: [usize; 8] = [4, 3, 2, 0, 7, 6, 1, 5];

    /// Logits where candidate quality is its length, with no position bias, as a table.
    fn quality_scorer(items: &[&str]) -> TableScorer {
        let mut entries = Vec::new();
        for &l in items {
            for &r in items {
                entries.push((l, r, (l.len() as f32 - r.len() as f32) / 2.0 + 0.25));
            }
        }
        TableScorer(entries.into_iter().map(|(l, r, v)| ((l.to_string(), r.to_string()), v)).collect())
    }

    #[test]
    fn bubble_on_known_logits_with_a_fixed_permutation() {
        let items = ["bb", "dddd", "a", "ccc"];
        let scorer = Recording::new(quality_scorer(&items));
        let out = bubble_with_permutations(&scorer, &[req(&items)], Target::Best, &[vec![2, 0, 3, 1]]);
        // a vs bb -> bb; bb vs ccc -> ccc; ccc vs dddd -> dddd. Losers in step order: a, bb, ccc.
        assert_eq!(out[0].as_ref().unwrap(), &SelectResult { index: 1, order: vec![1, 2, 0, 3] });
        let calls = scorer.call_strings();
        let pairs: Vec<Vec<(&str, &str)>> =
            calls.iter().map(|call| call.iter().map(|(_, l, r)| (l.as_str(), r.as_str())).collect()).collect();
        assert_eq!(
            pairs,
            vec![
                vec![("a", "bb"), ("bb", "a")],
                vec![("bb", "ccc"), ("ccc", "bb")],
                vec![("ccc", "dddd"), ("dddd", "ccc")],
            ]
        );
        // The best first: the holder keeps winning.
        let out = bubble_with_permutations(&scorer, &[req(&items)], Target::Best, &[vec![1, 0, 2, 3]]);
        assert_eq!(out[0].as_ref().unwrap(), &SelectResult { index: 1, order: vec![1, 0, 2, 3] });
        // Worst: the holder stays while it is worse.
        let out = bubble_with_permutations(&scorer, &[req(&items)], Target::Worst, &[vec![1, 3, 0, 2]]);
        // dddd vs ccc -> ccc; ccc vs bb -> bb; bb vs a -> a.
        assert_eq!(out[0].as_ref().unwrap(), &SelectResult { index: 2, order: vec![2, 1, 3, 0] });
    }

    #[test]
    fn bubble_ties_hand_over_to_next() {
        // d = 0 for equal candidates: best and worst both hand over to `next`.
        let scorer = LenScorer;
        let r = req(&["xx", "yy", "zz"]);
        for target in [Target::Best, Target::Worst] {
            let out = bubble_with_permutations(&scorer, std::slice::from_ref(&r), target, &[vec![0, 1, 2]]);
            assert_eq!(out[0].as_ref().unwrap(), &SelectResult { index: 2, order: vec![2, 0, 1] });
        }
    }

    #[test]
    fn non_finite_logits_are_errors_not_picks() {
        // A NaN or infinite logit (broken weights) never decides a step: the request fails.
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let scorer = TableScorer::new(&[("p", "q", bad), ("q", "p", 0.0)]);
            for target in [Target::Best, Target::Worst] {
                for method in [SelectMethod::Bubble, SelectMethod::Full] {
                    let out = select_n(&scorer, &[req(&["p", "q"])], target, method, 0);
                    assert!(matches!(out[0], Err(Error::NonFinite { .. })), "{bad} {method}: {:?}", out[0]);
                }
            }
        }
    }

    #[test]
    fn bubble_d_is_forward_minus_backward() {
        // Position bias: logit(p, q) = 1.0 but logit(q, p) = 1.5, so d = -0.5: q is better.
        let scorer = TableScorer::new(&[("p", "q", 1.0), ("q", "p", 1.5)]);
        let best = bubble_with_permutations(&scorer, &[req(&["p", "q"])], Target::Best, &[vec![0, 1]]);
        assert_eq!(best[0].as_ref().unwrap().index, 1);
        let worst = bubble_with_permutations(&scorer, &[req(&["p", "q"])], Target::Worst, &[vec![0, 1]]);
        assert_eq!(worst[0].as_ref().unwrap(), &SelectResult { index: 0, order: vec![0, 1] });
    }

    #[test]
    fn bubble_requests_advance_in_lockstep() {
        let scorer = Recording::new(LenScorer);
        let requests = [req(&["a", "bbb", "cc"]), req(&["one"]), req(&["x", "yy"]), req(&["p", "qq", "r", "ssss"])];
        let perms = [vec![0, 1, 2], vec![0], vec![1, 0], vec![3, 2, 1, 0]];
        let out = bubble_with_permutations(&scorer, &requests, Target::Best, &perms);
        let calls = scorer.call_strings();
        // Steps: 3 requests at step 0, 2 at step 1, 1 at step 2.
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), vec![6, 4, 2]);
        assert_eq!(out[0].as_ref().unwrap().index, 1);
        assert_eq!(out[1].as_ref().unwrap(), &SelectResult { index: 0, order: vec![0] });
        assert_eq!(out[2].as_ref().unwrap(), &SelectResult { index: 1, order: vec![1, 0] });
        assert_eq!(out[3].as_ref().unwrap(), &SelectResult { index: 3, order: vec![3, 2, 1, 0] });
        // Single candidates only: no call at all.
        let scorer = Recording::new(LenScorer);
        let out = bubble_with_permutations(&scorer, &[req(&["solo"])], Target::Worst, &[vec![0]]);
        assert_eq!(out[0].as_ref().unwrap().index, 0);
        assert!(scorer.calls().is_empty());
    }

    #[test]
    fn bubble_failures_stop_only_their_request() {
        let scorer = Recording::new(Failing(LenScorer));
        let requests = [req(&["a", "FAIL", "ccc", "dddd"]), req(&["x", "yy", "zzz"])];
        let perms = [vec![0, 1, 2, 3], vec![0, 1, 2]];
        let out = bubble_with_permutations(&scorer, &requests, Target::Best, &perms);
        assert_eq!(out[0].as_ref().unwrap_err().to_string(), "tokenizer: boom: a|FAIL");
        assert_eq!(out[1].as_ref().unwrap().index, 2);
        // The failed request sends nothing after its failing step.
        assert_eq!(scorer.calls().iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 2]);
    }

    #[test]
    fn bubble_validates_permutations_and_candidates() {
        let out = bubble_with_permutations(&LenScorer, &[req(&["a", "b"])], Target::Best, &[]);
        assert_eq!(invalid_field(out[0].as_ref().unwrap_err()), "permutations");
        for bad in [vec![0, 0], vec![0], vec![0, 2], vec![1, 0, 2]] {
            let out = bubble_with_permutations(&LenScorer, &[req(&["a", "b"])], Target::Best, &[bad]);
            assert_eq!(invalid_field(out[0].as_ref().unwrap_err()), "permutations[0]");
        }
        let out = bubble_with_permutations(&LenScorer, &[req(&[])], Target::Best, &[vec![]]);
        assert_eq!(invalid_field(out[0].as_ref().unwrap_err()), "candidates");
        let out = best_of_n(&LenScorer, &[req(&[])], SelectMethod::Bubble, 0);
        assert_eq!(invalid_field(out[0].as_ref().unwrap_err()), "candidates");
        let out = worst_of_n(&LenScorer, &[req(&[])], SelectMethod::Full, 0);
        assert_eq!(invalid_field(out[0].as_ref().unwrap_err()), "candidates");
    }

    #[test]
    fn seeded_bubble_is_deterministic_and_uses_the_seeded_permutation() {
        let items = ["bb", "dddd", "a", "ccc", "eeeee", "ff"];
        let requests = [req(&items), req(&items)];
        let seed = 1234;
        let a = best_of_n(&LenScorer, &requests, SelectMethod::Bubble, seed);
        let b = best_of_n(&LenScorer, &requests, SelectMethod::Bubble, seed);
        let expected = bubble_with_permutations(
            &LenScorer,
            &requests,
            Target::Best,
            &[seeded_permutation(6, seed), seeded_permutation(6, seed)],
        );
        let unwrap = |v: Vec<Result<SelectResult>>| v.into_iter().map(Result::unwrap).collect::<Vec<_>>();
        let (a, b, expected) = (unwrap(a), unwrap(b), unwrap(expected));
        assert_eq!(a, b);
        assert_eq!(a, expected);
        // With a clear quality order, any permutation finds the longest (best) and shortest (worst).
        assert_eq!(a[0].index, 4);
        for seed in 0..20 {
            let best = best_of_n(&LenScorer, &requests[..1], SelectMethod::Bubble, seed);
            assert_eq!(best[0].as_ref().unwrap().index, 4);
            let worst = worst_of_n(&LenScorer, &requests[..1], SelectMethod::Bubble, seed);
            assert_eq!(worst[0].as_ref().unwrap().index, 2);
            let mut order = worst[0].as_ref().unwrap().order.clone();
            order.sort_unstable();
            assert_eq!(order, (0..6).collect::<Vec<_>>());
        }
    }

    #[test]
    fn full_selection_orders_by_rank_with_ties_by_index() {
        let scorer = Recording::new(LenScorer);
        // Lengths 2, 4, 2, 1, 4: ranks 3, 1, 3, 5, 1.
        let requests = [req(&["bb", "dddd", "cc", "a", "eeee"]), req(&["single"])];
        let best = best_of_n(&scorer, &requests, SelectMethod::Full, 0);
        assert_eq!(best[0].as_ref().unwrap(), &SelectResult { index: 1, order: vec![1, 4, 0, 2, 3] });
        assert_eq!(best[1].as_ref().unwrap(), &SelectResult { index: 0, order: vec![0] });
        // One scorer call with all n(n-1) pairs (identical texts would be deduplicated; none here).
        assert_eq!(scorer.calls().len(), 1);
        assert_eq!(scorer.calls()[0].len(), 20);
        let worst = worst_of_n(&LenScorer, &requests, SelectMethod::Full, 0);
        assert_eq!(worst[0].as_ref().unwrap(), &SelectResult { index: 3, order: vec![3, 0, 2, 1, 4] });
    }

    #[test]
    fn methods_and_targets_parse_and_serialize() {
        assert_eq!("Full".parse::<SelectMethod>().unwrap(), SelectMethod::Full);
        assert_eq!("bubble".parse::<SelectMethod>().unwrap(), SelectMethod::Bubble);
        assert_eq!(invalid_field(&"quick".parse::<SelectMethod>().unwrap_err()), "method");
        assert_eq!(SelectMethod::default(), SelectMethod::Bubble);
        assert_eq!(SelectMethod::Full.to_string(), "full");
        assert_eq!(serde_json::to_string(&Target::Worst).unwrap(), "\"worst\"");
        let r = SelectResult { index: 1, order: vec![1, 0] };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"index":1,"order":[1,0]}"#);
    }
}
