//! `Blender.rank` (full comparison matrix) and `Blender.rank_with_ref`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::compare::{CompareMode, PlannedCompare};
use super::numeric::{ranks_from_scores, scores_from_matrix};
use super::{full_source, PairBatch, PairLogits, PairScorer};
use crate::error::{finite, Error, Result};

/// Candidates to rank as answers to `instruction + source`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RankRequest {
    /// Optional instruction, prepended to `source` without separator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    /// The input (prompt).
    pub source: String,
    /// The candidates (at least one).
    pub candidates: Vec<String>,
}

/// Scores and ranks of a request's candidates, in candidate order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankResult {
    /// Higher is better.
    pub scores: Vec<f32>,
    /// 1 is best; equal scores share the better rank ([`ranks_from_scores`]).
    pub ranks: Vec<usize>,
}

impl RankResult {
    fn from_scores(scores: Vec<f32>) -> Self {
        let ranks = ranks_from_scores(&scores);
        RankResult { scores, ranks }
    }
}

/// Checks a candidate list: it must not be empty.
pub(super) fn check_candidates(candidates: &[String]) -> Result<()> {
    if candidates.is_empty() {
        return Err(Error::invalid_input("candidates", "must not be empty"));
    }
    Ok(())
}

/// The candidate limit front ends apply by default ([`check_candidate_count`]): a full rank of
/// 100 candidates is already 9,900 forward passes.
pub const DEFAULT_MAX_CANDIDATES: usize = 100;

/// Checks that a request with `count` candidates stays within `max` (0: no limit). The judge
/// functions take any number; front ends (the CLI's `--max-candidates`) use this to refuse, with
/// a clear error, a request whose cost they did not mean to allow: a full rank of n candidates
/// takes n·(n−1) passes.
///
/// # Errors
/// [`Error::InvalidInput`] naming `candidates`, with the count and the limit.
pub fn check_candidate_count(count: usize, max: usize) -> Result<()> {
    if max > 0 && count > max {
        return Err(Error::invalid_input("candidates", format!("{count} candidates, more than the limit of {max}")));
    }
    Ok(())
}

/// A request's source and candidates as shared strings, ready to make pairs.
pub(super) struct Prepared {
    pub(super) source: Arc<str>,
    pub(super) candidates: Vec<Arc<str>>,
}

impl Prepared {
    pub(super) fn new(request: &RankRequest) -> Result<Self> {
        check_candidates(&request.candidates)?;
        Ok(Prepared {
            source: full_source(request.instruction.as_deref(), &request.source),
            candidates: request.candidates.iter().map(|c| Arc::from(c.as_str())).collect(),
        })
    }
}

/// The slots of a full comparison matrix: `slots[i * (n - 1) + k]` holds `logit(c_i, c_j)` for
/// the k-th `j != i`.
pub(super) struct PlannedMatrix {
    n: usize,
    slots: Vec<usize>,
}

impl PlannedMatrix {
    /// Adds the `n * (n - 1)` passes `logit(c_i, c_j)`, `i != j`, in row-major order.
    pub(super) fn add(batch: &mut PairBatch, prepared: &Prepared) -> Self {
        let c = &prepared.candidates;
        let n = c.len();
        let mut slots = Vec::with_capacity(matrix_passes(n));
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                slots.push(batch.add(&prepared.source, &c[i], &c[j]));
            }
        }
        PlannedMatrix { n, slots }
    }

    /// The scores once the batch is scored: `M[i][j] = logit(c_i, c_j)`, `M[i][i] = 0`, then
    /// [`scores_from_matrix`]. The first failing pass (row-major) fails the request.
    pub(super) fn scores(&self, logits: &PairLogits) -> Result<Vec<f32>> {
        let n = self.n;
        let mut matrix = vec![vec![0.0f32; n]; n];
        let mut slots = self.slots.iter();
        for (i, row) in matrix.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                if i != j {
                    // One slot per off-diagonal cell, by construction.
                    let slot = slots.next().copied().unwrap_or(usize::MAX);
                    *cell = logits.get(slot)?;
                }
            }
        }
        let scores = scores_from_matrix(&matrix)?;
        for (i, &score) in scores.iter().enumerate() {
            finite(score, || format!("the score of candidate {i}"))?;
        }
        Ok(scores)
    }
}

/// Ranks every request's candidates with the full comparison matrix, as `Blender.rank` with a
/// pairranker: `M[i][j] = logit(c_i, c_j)` for `i != j` (`n * (n - 1)` passes), `M[i][i] = 0`,
/// `score_i = mean_j (M[i][j] - M[j][i])` in float32 exactly as numpy ([`scores_from_matrix`]),
/// ranks by [`ranks_from_scores`]. All passes of all requests go in one [`PairScorer::logits`]
/// call. A single candidate needs no pass: score 0, rank 1. Unlike the reference, requests may
/// have different numbers of candidates.
///
/// # Errors
/// Per request: [`Error::InvalidInput`] naming `candidates` if there are none; the scorer's error
/// for a pass the request needs.
pub fn rank<S: PairScorer + ?Sized>(scorer: &S, requests: &[RankRequest]) -> Vec<Result<RankResult>> {
    let mut batch = PairBatch::default();
    let plans: Vec<Result<PlannedMatrix>> =
        requests.iter().map(|r| Prepared::new(r).map(|p| PlannedMatrix::add(&mut batch, &p))).collect();
    let logits = batch.score(scorer);
    plans.into_iter().map(|plan| plan.and_then(|plan| plan.scores(&logits)).map(RankResult::from_scores)).collect()
}

/// The reference candidate of [`rank_with_ref`] (`ref_mode` / `ref_candidates` in the reference).
/// Lengths are Python's `len`: Unicode code points ([`python_len`]).
///
/// Serialized as `"longest"`, `"shortest"`, `"median"`, `"first"`, `"last"` or
/// `{"given": "text"}`; `"median_length"` (the reference's name) is accepted too. [`FromStr`]
/// parses the five names (a given reference has no string form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// The longest candidate; the first of equally long ones (`max(c, key=len)`). The default.
    #[default]
    Longest,
    /// The shortest candidate; the first of equally short ones (`min(c, key=len)`).
    Shortest,
    /// `sorted(c, key=len)[n // 2]` with Python's stable sort (`median_length`).
    #[serde(alias = "median_length")]
    Median,
    /// The first candidate.
    First,
    /// The last candidate.
    Last,
    /// This text (need not be one of the candidates).
    Given(String),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Longest => f.write_str("longest"),
            Reference::Shortest => f.write_str("shortest"),
            Reference::Median => f.write_str("median"),
            Reference::First => f.write_str("first"),
            Reference::Last => f.write_str("last"),
            Reference::Given(text) => write!(f, "given {text:?}"),
        }
    }
}

impl FromStr for Reference {
    type Err = Error;

    /// Parses a [`ReferenceMode`] name.
    fn from_str(s: &str) -> Result<Self> {
        s.parse::<ReferenceMode>().map(Reference::from)
    }
}

/// The named rules of [`Reference`]: which candidate is the reference (every [`Reference`] but
/// [`Reference::Given`]). What the CLI's `--reference` and the server's `reference_mode` take.
///
/// Serialized as `"longest"`, `"shortest"`, `"median"`, `"first"`, `"last"` (the server's wire
/// names); [`FromStr`] also takes the reference's `median_length` and ignores case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(description = "Which candidate is the reference of a rank against a reference.")
)]
pub enum ReferenceMode {
    /// The longest candidate (first of equals).
    Longest,
    /// The shortest candidate (first of equals).
    Shortest,
    /// The median-length candidate.
    Median,
    /// The first candidate.
    First,
    /// The last candidate.
    Last,
}

impl From<ReferenceMode> for Reference {
    fn from(mode: ReferenceMode) -> Self {
        match mode {
            ReferenceMode::Longest => Reference::Longest,
            ReferenceMode::Shortest => Reference::Shortest,
            ReferenceMode::Median => Reference::Median,
            ReferenceMode::First => Reference::First,
            ReferenceMode::Last => Reference::Last,
        }
    }
}

impl FromStr for ReferenceMode {
    type Err = Error;

    /// Parses `longest`, `shortest`, `median` (or `median_length`), `first`, `last`
    /// (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_lowercase().as_str() {
            "longest" => Ok(ReferenceMode::Longest),
            "shortest" => Ok(ReferenceMode::Shortest),
            "median" | "median_length" => Ok(ReferenceMode::Median),
            "first" => Ok(ReferenceMode::First),
            "last" => Ok(ReferenceMode::Last),
            _ => Err(Error::invalid_input(
                "reference",
                format!("unknown reference mode {s:?}; expected longest, shortest, median, first or last"),
            )),
        }
    }
}

/// Forward passes the full comparison matrix of `n` candidates takes ([`rank`]): `n * (n - 1)`,
/// none for a single candidate.
pub fn matrix_passes(n: usize) -> usize {
    n * n.saturating_sub(1)
}

/// Forward passes ranking `n` candidates against a reference takes ([`rank_with_ref`]): two per
/// candidate (one fewer when the reference is a candidate: its pair with itself is sent once).
pub fn reference_passes(n: usize) -> usize {
    2 * n
}

/// Python's `len(str)`: the number of Unicode code points (not bytes, not graphemes).
pub fn python_len(s: &str) -> usize {
    s.chars().count()
}

/// Picks the reference text for `candidates`: `(Some(index), text)` for a candidate,
/// `(None, text)` for [`Reference::Given`].
///
/// # Errors
/// [`Error::InvalidInput`] naming `candidates` if there are none.
pub fn select_reference<'a>(candidates: &'a [String], reference: &'a Reference) -> Result<(Option<usize>, &'a str)> {
    check_candidates(candidates)?;
    let lens: Vec<usize> = candidates.iter().map(|c| python_len(c)).collect();
    let n = candidates.len();
    let index = match reference {
        Reference::Given(text) => return Ok((None, text)),
        // Strict comparisons keep the first of equal lengths, as Python's max/min do.
        Reference::Longest => (1..n).fold(0, |best, i| if lens[i] > lens[best] { i } else { best }),
        Reference::Shortest => (1..n).fold(0, |best, i| if lens[i] < lens[best] { i } else { best }),
        Reference::Median => {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| lens[i]); // stable, as Python's sorted
            order[n / 2]
        }
        Reference::First => 0,
        Reference::Last => n - 1,
    };
    Ok((Some(index), &candidates[index]))
}

/// A [`RankRequest`] ranked against a reference candidate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RankWithRefRequest {
    /// The candidates and their source.
    #[serde(flatten)]
    pub request: RankRequest,
    /// Which reference to compare them with (default: the longest candidate).
    #[serde(default)]
    pub reference: Reference,
}

/// Scores and ranks against a reference, in candidate order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankWithRefResult {
    /// `score_j = -compare(reference, c_j)` in mode `[A,B]+[B,A]`: how much better `c_j` is than
    /// the reference. Higher is better.
    pub scores: Vec<f32>,
    /// 1 is best; equal scores share the better rank.
    pub ranks: Vec<usize>,
    /// The candidate used as reference, or `None` for [`Reference::Given`].
    pub reference_index: Option<usize>,
}

/// Ranks every request's candidates against a reference, as `Blender.rank_with_ref`:
/// `logit_j = compare(ref, c_j)` in mode `[A,B]+[B,A]` (2 passes per candidate; the reference
/// itself, when it is a candidate, is compared with itself too: its passes are the same pair, sent
/// once, so its logit is exactly 0), `score_j = -logit_j`, ranks by [`ranks_from_scores`]. All
/// passes of all requests go in one [`PairScorer::logits`] call.
///
/// The reference stores these scores in a float64 array; they are float32 values negated, so the
/// float32 scores here are the same numbers and give the same ranks.
///
/// # Errors
/// Per request: [`Error::InvalidInput`] naming `candidates` if there are none; the scorer's error
/// for a pass the request needs.
pub fn rank_with_ref<S: PairScorer + ?Sized>(
    scorer: &S,
    requests: &[RankWithRefRequest],
) -> Vec<Result<RankWithRefResult>> {
    let mut batch = PairBatch::default();
    let plans: Vec<Result<(Option<usize>, Vec<PlannedCompare>)>> = requests
        .iter()
        .map(|r| {
            let prepared = Prepared::new(&r.request)?;
            let (index, text) = select_reference(&r.request.candidates, &r.reference)?;
            let reference: Arc<str> = match index {
                Some(i) => prepared.candidates[i].clone(),
                None => Arc::from(text),
            };
            let compares = prepared
                .candidates
                .iter()
                .map(|c| PlannedCompare::add(&mut batch, &prepared.source, &reference, c, CompareMode::Both))
                .collect();
            Ok((index, compares))
        })
        .collect();
    let logits = batch.score(scorer);
    plans
        .into_iter()
        .map(|plan| {
            let (reference_index, compares) = plan?;
            let scores = compares.iter().map(|c| c.logit(&logits).map(|logit| -logit)).collect::<Result<Vec<f32>>>()?;
            let ranks = ranks_from_scores(&scores);
            Ok(RankWithRefResult { scores, ranks, reference_index })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn req(candidates: &[&str]) -> RankRequest {
        RankRequest { instruction: None, source: "src".into(), candidates: strings(candidates) }
    }

    #[test]
    fn candidate_count_checks_name_the_count_and_the_limit() {
        assert!(check_candidate_count(100, 100).is_ok());
        assert!(check_candidate_count(1000, 0).is_ok(), "0: no limit");
        let e = check_candidate_count(1000, 100).unwrap_err();
        assert_eq!(e.to_string(), "invalid input: candidates: 1000 candidates, more than the limit of 100");
    }

    #[test]
    fn non_finite_logits_or_scores_are_errors() {
        let mut entries = vec![];
        for l in ["x", "y", "z"] {
            for r in ["x", "y", "z"] {
                if l != r {
                    entries.push((l, r, if (l, r) == ("y", "z") { f32::NAN } else { 1.0 }));
                }
            }
        }
        let out = rank(&TableScorer::new(&entries), &[req(&["x", "y", "z"]), req(&["x", "z"])]);
        assert!(matches!(out[0], Err(Error::NonFinite { .. })), "{:?}", out[0]);
        assert!(out[1].is_ok(), "a request without the bad pass is scored");
        // Finite logits whose mean overflows.
        let huge = TableScorer::new(&[("x", "y", 3e38), ("y", "x", -3e38)]);
        let e = rank(&huge, &[req(&["x", "y"])])[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("score of candidate 0 is inf"), "{e}");
    }

    #[test]
    fn full_rank_on_known_logits() {
        // M = [[0, 1, 2], [0.5, 0, -1], [2, 3, 0]] -> scores [0.16666667, -1.5, 1.3333334] (numpy),
        // ranks [2, 3, 1].
        let scorer = TableScorer::new(&[
            ("x", "y", 1.0),
            ("x", "z", 2.0),
            ("y", "x", 0.5),
            ("y", "z", -1.0),
            ("z", "x", 2.0),
            ("z", "y", 3.0),
        ]);
        let out = rank(&scorer, &[req(&["x", "y", "z"])]);
        let r = out[0].as_ref().unwrap();
        assert_eq!(r.scores, vec![0.166_666_67, -1.5, 1.333_333_4]);
        assert_eq!(r.ranks, vec![2, 3, 1]);
    }

    #[test]
    fn full_rank_sends_all_pairs_of_all_requests_in_one_call() {
        let scorer = Recording::new(LenScorer);
        let out = rank(&scorer, &[req(&["a", "bb", "ccc"]), req(&["only"]), req(&["dddd", "e"])]);
        assert!(out.iter().all(|r| r.is_ok()));
        let calls = scorer.call_strings();
        assert_eq!(calls.len(), 1);
        let pairs: Vec<(&str, &str)> = calls[0].iter().map(|(_, l, r)| (l.as_str(), r.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("a", "bb"),
                ("a", "ccc"),
                ("bb", "a"),
                ("bb", "ccc"),
                ("ccc", "a"),
                ("ccc", "bb"),
                ("dddd", "e"),
                ("e", "dddd"),
            ]
        );
        // Single candidate: no pass, score 0, rank 1.
        assert_eq!(out[1].as_ref().unwrap(), &RankResult { scores: vec![0.0], ranks: vec![1] });
        // LenScorer: D[i][j] = len_i - len_j, so longer is better.
        assert_eq!(out[0].as_ref().unwrap().ranks, vec![3, 2, 1]);
        assert_eq!(out[2].as_ref().unwrap().scores, vec![1.5, -1.5]);
        let scorer = Recording::new(LenScorer);
        rank(&scorer, &[req(&["one"])]);
        assert!(scorer.calls().is_empty());
    }

    #[test]
    fn identical_candidates_tie_exactly() {
        let scorer = Recording::new(LenScorer);
        let out = rank(&scorer, &[req(&["same", "xy", "same", "longer one"])]);
        let r = out[0].as_ref().unwrap();
        assert_eq!(r.scores[0].to_bits(), r.scores[2].to_bits());
        assert_eq!(r.ranks, vec![2, 4, 2, 1]);
        // (same, xy) is needed twice, (same, same) twice...: 12 passes, 7 distinct.
        assert_eq!(scorer.calls()[0].len(), 7);
    }

    #[test]
    fn empty_candidates_and_failures_fail_only_their_request() {
        let scorer = Failing(LenScorer);
        let out = rank(&scorer, &[req(&[]), req(&["a", "FAIL", "b"]), req(&["a", "b"])]);
        assert_eq!(invalid_field(out[0].as_ref().unwrap_err()), "candidates");
        assert_eq!(out[1].as_ref().unwrap_err().to_string(), "tokenizer: boom: a|FAIL");
        assert!(out[2].is_ok());
    }

    #[test]
    fn reference_selection_follows_python() {
        let c = strings(&["ab", "ééé", "xyz", "q", "p", "🙂🙂🙂"]);
        // Code points: 2, 3, 3, 1, 1, 3 ("ééé" is 6 bytes, the emoji run 12).
        let pick = |r: Reference| select_reference(&c, &r).unwrap().0.unwrap();
        assert_eq!(pick(Reference::Longest), 1);
        assert_eq!(pick(Reference::Shortest), 3);
        // sorted by len (stable): q p ab ééé xyz 🙂🙂🙂 -> [6 // 2] = ééé.
        assert_eq!(pick(Reference::Median), 1);
        assert_eq!(pick(Reference::First), 0);
        assert_eq!(pick(Reference::Last), 5);
        let given = Reference::Given("gold".into());
        assert_eq!(select_reference(&c, &given).unwrap(), (None, "gold"));
        let c2 = strings(&["bbb", "a", "cc", "dd"]);
        // sorted: a cc dd bbb -> [2] = dd (index 3).
        assert_eq!(select_reference(&c2, &Reference::Median).unwrap(), (Some(3), "dd"));
        let err = select_reference(&[], &Reference::First).unwrap_err();
        assert_eq!(invalid_field(&err), "candidates");
        assert_eq!(python_len("🙂é"), 2);
    }

    #[test]
    fn reference_modes_parse_and_serialize() {
        assert_eq!("median_length".parse::<Reference>().unwrap(), Reference::Median);
        assert_eq!("Longest".parse::<Reference>().unwrap(), Reference::Longest);
        assert_eq!(invalid_field(&"middle".parse::<Reference>().unwrap_err()), "reference");
        let r: RankWithRefRequest =
            serde_json::from_str(r#"{"source":"s","candidates":["a"],"reference":{"given":"g"}}"#).unwrap();
        assert_eq!(r.reference, Reference::Given("g".into()));
        let r: RankWithRefRequest =
            serde_json::from_str(r#"{"source":"s","candidates":["a"],"reference":"median_length"}"#).unwrap();
        assert_eq!(r.reference, Reference::Median);
        let r: RankWithRefRequest = serde_json::from_str(r#"{"source":"s","candidates":["a"]}"#).unwrap();
        assert_eq!(r.reference, Reference::Longest);
        assert_eq!(serde_json::to_string(&Reference::Median).unwrap(), "\"median\"");
    }

    #[test]
    fn rank_with_ref_scores_are_negated_both_mode_logits() {
        let scorer = Recording::new(LenScorer);
        let requests = [
            RankWithRefRequest { request: req(&["aa", "bbbb", "c"]), reference: Reference::Longest },
            RankWithRefRequest { request: req(&["aa", "c"]), reference: Reference::Given("xyz".into()) },
            RankWithRefRequest { request: req(&[]), reference: Reference::First },
        ];
        let out = rank_with_ref(&scorer, &requests);
        // compare(ref, c_j) in Both mode with LenScorer = len(ref) - len(c_j); score = -that.
        let r0 = out[0].as_ref().unwrap();
        assert_eq!(r0.scores, vec![-2.0, -0.0, -3.0]);
        assert_eq!(r0.scores[1].to_bits(), (-0.0f32).to_bits());
        assert_eq!(r0.ranks, vec![2, 1, 3]);
        assert_eq!(r0.reference_index, Some(1));
        let r1 = out[1].as_ref().unwrap();
        assert_eq!(r1.scores, vec![-1.0, -2.0]);
        assert_eq!(r1.reference_index, None);
        assert_eq!(invalid_field(out[2].as_ref().unwrap_err()), "candidates");
        let calls = scorer.call_strings();
        assert_eq!(calls.len(), 1);
        let pairs: Vec<(&str, &str)> = calls[0].iter().map(|(_, l, r)| (l.as_str(), r.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("bbbb", "aa"),
                ("aa", "bbbb"),
                ("bbbb", "bbbb"),
                ("bbbb", "c"),
                ("c", "bbbb"),
                ("xyz", "aa"),
                ("aa", "xyz"),
                ("xyz", "c"),
                ("c", "xyz"),
            ]
        );
    }

    #[test]
    fn rank_with_ref_failure_is_per_request() {
        let scorer = Failing(LenScorer);
        let requests = [
            RankWithRefRequest { request: req(&["a", "FAIL"]), reference: Reference::First },
            RankWithRefRequest { request: req(&["a", "b"]), reference: Reference::First },
        ];
        let out = rank_with_ref(&scorer, &requests);
        assert_eq!(out[0].as_ref().unwrap_err().to_string(), "tokenizer: boom: a|FAIL");
        assert_eq!(out[1].as_ref().unwrap().ranks, vec![1, 1]);
    }
}
