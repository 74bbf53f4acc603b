//! `Blender.compare`: is candidate A better than candidate B?

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::numeric::both_logit;
use super::{full_source, PairBatch, PairLogits, PairScorer};
use crate::error::{finite, Error, Result};

/// How [`compare`] scores A against B. In every mode the returned logit is > 0 when A is better.
///
/// | mode   | reference name  | passes | logit                                        |
/// |--------|-----------------|--------|----------------------------------------------|
/// | `Ab`   | `[A,B]`         | 1      | `logit(A, B)`                                |
/// | `Ba`   | `[B,A]`         | 1      | `-logit(B, A)`                               |
/// | `Both` | `[A,B]+[B,A]`   | 2      | `logit(A, B) - logit(B, A)` ([`both_logit`]) |
///
/// **Deliberate difference:** in mode `[B,A]` the reference returns `logit(B, A)` unchanged, whose
/// sign means "B is better" (and its boolean result is `logit(B, A) > 0`). This engine negates it
/// so that one sign convention holds everywhere; `a_better` is then `logit(B, A) < 0`.
/// `Both` is the reference's default and the recommended mode: it cancels the model's position
/// bias. Its value is a difference, not an average.
///
/// Parsed (case-insensitively, spaces ignored) from `ab`, `ba`, `both` and from the reference's
/// strings `[A,B]`, `[B,A]`, `[A,B]+[B,A]`; serialized as `ab`, `ba`, `both`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum CompareMode {
    /// `[A,B]`: A in the left slot, one pass.
    Ab,
    /// `[B,A]`: B in the left slot, one pass, negated.
    Ba,
    /// `[A,B]+[B,A]`: both orders, two passes.
    #[default]
    Both,
}

impl CompareMode {
    /// The short name: `ab`, `ba` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareMode::Ab => "ab",
            CompareMode::Ba => "ba",
            CompareMode::Both => "both",
        }
    }

    /// The reference's name: `[A,B]`, `[B,A]` or `[A,B]+[B,A]`.
    pub fn reference_name(self) -> &'static str {
        match self {
            CompareMode::Ab => "[A,B]",
            CompareMode::Ba => "[B,A]",
            CompareMode::Both => "[A,B]+[B,A]",
        }
    }

    /// Forward passes per comparison (1 or 2).
    pub fn passes(self) -> usize {
        match self {
            CompareMode::Both => 2,
            CompareMode::Ab | CompareMode::Ba => 1,
        }
    }
}

impl fmt::Display for CompareMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompareMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let key: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
        match key.as_str() {
            "ab" | "[a,b]" => Ok(CompareMode::Ab),
            "ba" | "[b,a]" => Ok(CompareMode::Ba),
            "both" | "[a,b]+[b,a]" => Ok(CompareMode::Both),
            _ => Err(Error::invalid_input(
                "mode",
                format!("unknown compare mode {s:?}; expected ab, ba, both, [A,B], [B,A] or [A,B]+[B,A]"),
            )),
        }
    }
}

/// `--mode` of the CLI's commands parses with [`FromStr`] (the reference's names included).
#[cfg(feature = "clap")]
impl clap::builder::ValueParserFactory for CompareMode {
    type Parser = fn(&str) -> Result<CompareMode>;

    fn value_parser() -> Self::Parser {
        str::parse
    }
}

impl TryFrom<String> for CompareMode {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// One comparison: is `a` better than `b` as an answer to `instruction + source`?
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompareRequest {
    /// Optional instruction, prepended to `source` without separator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    /// The input (prompt).
    pub source: String,
    /// Candidate A.
    pub a: String,
    /// Candidate B.
    pub b: String,
}

/// The outcome of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareResult {
    /// > 0: A is better (in every [`CompareMode`]).
    pub logit: f32,
    /// `logit > 0` (false for NaN).
    pub a_better: bool,
}

impl CompareResult {
    /// The result for `logit`.
    pub fn from_logit(logit: f32) -> Self {
        CompareResult { logit, a_better: logit > 0.0 }
    }
}

/// A comparison's logit with the raw logits of the passes it was made of (for statistics of the
/// position bias, as `pairrm eval` reports them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareLogits {
    /// The comparison's logit in the mode asked (> 0: A is better): what [`compare`] returns.
    pub logit: f32,
    /// `logit(A, B)`: A in the left slot (modes `ab` and `both`).
    pub ab: Option<f32>,
    /// `logit(B, A)` as the model gives it, > 0 meaning B is better (modes `ba` and `both`).
    pub ba: Option<f32>,
}

/// Compares A with B for every request, sending all `requests.len() * mode.passes()` forward
/// passes in one [`PairScorer::logits`] call. Results are in request order.
///
/// # Errors
/// Per request: the scorer's error for a pair the request needs.
pub fn compare<S: PairScorer + ?Sized>(
    scorer: &S,
    requests: &[CompareRequest],
    mode: CompareMode,
) -> Vec<Result<CompareResult>> {
    compare_logits(scorer, requests, mode).into_iter().map(|r| r.map(|l| CompareResult::from_logit(l.logit))).collect()
}

/// [`compare`], keeping the raw logit of each pass: the same passes in the same one scorer call,
/// and [`CompareLogits::logit`] is [`compare`]'s logit bit for bit.
///
/// # Errors
/// Per request: the scorer's error for a pair the request needs (the first in pass order).
pub fn compare_logits<'r, S: PairScorer + ?Sized>(
    scorer: &S,
    requests: impl IntoIterator<Item = &'r CompareRequest>,
    mode: CompareMode,
) -> Vec<Result<CompareLogits>> {
    let mut batch = PairBatch::default();
    let plans: Vec<PlannedCompare> = requests
        .into_iter()
        .map(|r| {
            let source = full_source(r.instruction.as_deref(), &r.source);
            PlannedCompare::add(&mut batch, &source, &Arc::from(r.a.as_str()), &Arc::from(r.b.as_str()), mode)
        })
        .collect();
    let logits = batch.score(scorer);
    plans.iter().map(|p| p.logits(&logits)).collect()
}

/// The slots of one comparison's passes in a [`PairBatch`].
#[derive(Debug, Clone, Copy)]
pub(super) enum PlannedCompare {
    /// `logit(A, B)`.
    Ab(usize),
    /// `logit(B, A)`.
    Ba(usize),
    /// `logit(A, B)`, `logit(B, A)`.
    Both(usize, usize),
}

impl PlannedCompare {
    /// Adds the passes comparing `a` with `b` in `mode` to `batch`.
    pub(super) fn add(batch: &mut PairBatch, source: &Arc<str>, a: &Arc<str>, b: &Arc<str>, mode: CompareMode) -> Self {
        match mode {
            CompareMode::Ab => PlannedCompare::Ab(batch.add(source, a, b)),
            CompareMode::Ba => PlannedCompare::Ba(batch.add(source, b, a)),
            CompareMode::Both => {
                let ab = batch.add(source, a, b);
                let ba = batch.add(source, b, a);
                PlannedCompare::Both(ab, ba)
            }
        }
    }

    /// The comparison logit (> 0: A better) once the batch is scored.
    pub(super) fn logit(self, logits: &PairLogits) -> Result<f32> {
        self.logits(logits).map(|l| l.logit)
    }

    /// The comparison logit and the raw logits of its passes once the batch is scored.
    fn logits(self, logits: &PairLogits) -> Result<CompareLogits> {
        Ok(match self {
            PlannedCompare::Ab(ab) => {
                let ab = logits.get(ab)?;
                CompareLogits { logit: ab, ab: Some(ab), ba: None }
            }
            PlannedCompare::Ba(ba) => {
                let ba = logits.get(ba)?;
                CompareLogits { logit: -ba, ab: None, ba: Some(ba) }
            }
            PlannedCompare::Both(ab, ba) => {
                let (ab, ba) = (logits.get(ab)?, logits.get(ba)?);
                let logit = finite(both_logit(ab, ba), || "logit(A, B) - logit(B, A)".into())?;
                CompareLogits { logit, ab: Some(ab), ba: Some(ba) }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn req(source: &str, a: &str, b: &str) -> CompareRequest {
        CompareRequest { instruction: None, source: source.into(), a: a.into(), b: b.into() }
    }

    #[test]
    fn non_finite_logits_are_errors_in_every_mode() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let scorer = TableScorer::new(&[("a", "b", bad), ("b", "a", 0.5), ("c", "d", 1.0), ("d", "c", -1.0)]);
            for mode in [CompareMode::Ab, CompareMode::Ba, CompareMode::Both] {
                let out = compare(&scorer, &[req("s", "a", "b"), req("s", "c", "d")], mode);
                // Mode ba runs only (b, a), whose logit is finite.
                if mode != CompareMode::Ba {
                    assert!(matches!(out[0], Err(Error::NonFinite { .. })), "{bad} {mode}: {:?}", out[0]);
                } else {
                    assert!(out[0].is_ok(), "{bad} {mode}");
                }
                assert!(out[1].is_ok(), "{bad} {mode}: the other request is scored");
            }
        }
        // Finite logits whose difference overflows.
        let scorer = TableScorer::new(&[("a", "b", 3e38), ("b", "a", -3e38)]);
        let out = compare(&scorer, &[req("s", "a", "b")], CompareMode::Both);
        let e = out[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("logit(A, B) - logit(B, A) is inf"), "{e}");
    }

    #[test]
    fn modes_parse_from_short_and_reference_names() {
        for (s, m) in [
            ("ab", CompareMode::Ab),
            ("BA", CompareMode::Ba),
            ("both", CompareMode::Both),
            ("[A,B]", CompareMode::Ab),
            ("[B,A]", CompareMode::Ba),
            ("[A,B]+[B,A]", CompareMode::Both),
            (" [A, B] + [B, A] ", CompareMode::Both),
        ] {
            assert_eq!(s.parse::<CompareMode>().unwrap(), m, "{s}");
        }
        for m in [CompareMode::Ab, CompareMode::Ba, CompareMode::Both] {
            assert_eq!(m.as_str().parse::<CompareMode>().unwrap(), m);
            assert_eq!(m.reference_name().parse::<CompareMode>().unwrap(), m);
            assert_eq!(m.to_string(), m.as_str());
        }
        let err = "[A,B]+".parse::<CompareMode>().unwrap_err();
        assert_eq!(invalid_field(&err), "mode");
        assert_eq!(CompareMode::default(), CompareMode::Both);
    }

    #[test]
    fn modes_round_trip_through_serde() {
        assert_eq!(serde_json::to_string(&CompareMode::Both).unwrap(), "\"both\"");
        let m: CompareMode = serde_json::from_str("\"[B,A]\"").unwrap();
        assert_eq!(m, CompareMode::Ba);
        assert!(serde_json::from_str::<CompareMode>("\"sideways\"").is_err());
        let r: CompareRequest = serde_json::from_str(r#"{"source":"s","a":"x","b":"y"}"#).unwrap();
        assert_eq!(r, req("s", "x", "y"));
    }

    #[test]
    fn every_mode_keeps_a_better_positive() {
        // LenScorer: logit(l, r) = (len l - len r)/2 + 1/8. A = "aaaa" (4), B = "b" (1).
        let requests = [req("s", "aaaa", "b"), req("s", "b", "aaaa"), req("s", "x", "y")];
        let ab = compare(&LenScorer, &requests, CompareMode::Ab);
        let ba = compare(&LenScorer, &requests, CompareMode::Ba);
        let both = compare(&LenScorer, &requests, CompareMode::Both);
        let logits =
            |v: &[Result<CompareResult>]| -> Vec<f32> { v.iter().map(|r| r.as_ref().unwrap().logit).collect() };
        assert_eq!(logits(&ab), vec![1.625, -1.375, 0.125]);
        // -logit(B, A): logit("b", "aaaa") = -1.375 -> 1.375.
        assert_eq!(logits(&ba), vec![1.375, -1.625, -0.125]);
        // logit(A,B) - logit(B,A): the left-slot bias cancels.
        assert_eq!(logits(&both), vec![3.0, -3.0, 0.0]);
        let better =
            |v: &[Result<CompareResult>]| -> Vec<bool> { v.iter().map(|r| r.as_ref().unwrap().a_better).collect() };
        assert_eq!(better(&ab), vec![true, false, true]);
        assert_eq!(better(&ba), vec![true, false, false]);
        assert_eq!(better(&both), vec![true, false, false]);
    }

    #[test]
    fn both_uses_the_reference_arithmetic() {
        let tiny = f32::from_bits(1);
        let scorer = TableScorer::new(&[("a", "b", 0.75), ("b", "a", -0.5), ("c", "d", tiny), ("d", "c", 0.0)]);
        let out = compare(&scorer, &[req("s", "a", "b"), req("s", "c", "d")], CompareMode::Both);
        assert_eq!(out[0].as_ref().unwrap().logit, 1.25);
        // The reference halves the difference, and half the smallest subnormal rounds to 0.
        assert_eq!(out[1].as_ref().unwrap().logit.to_bits(), 0);
        assert!(!out[1].as_ref().unwrap().a_better);
    }

    #[test]
    fn all_passes_go_in_one_call_with_the_instruction_prepended() {
        let scorer = Recording::new(LenScorer);
        let mut r1 = req("input", "A1", "B1");
        r1.instruction = Some("Instr: ".into());
        let r2 = req("other", "A2", "B2");
        let out = compare(&scorer, &[r1, r2], CompareMode::Both);
        assert!(out.iter().all(|r| r.is_ok()));
        let calls = scorer.call_strings();
        assert_eq!(calls.len(), 1);
        let expect = |s: &str, l: &str, r: &str| (s.to_string(), l.to_string(), r.to_string());
        assert_eq!(
            calls[0],
            vec![
                expect("Instr: input", "A1", "B1"),
                expect("Instr: input", "B1", "A1"),
                expect("other", "A2", "B2"),
                expect("other", "B2", "A2"),
            ]
        );
        let scorer = Recording::new(LenScorer);
        compare(&scorer, &[req("s", "a", "b")], CompareMode::Ba);
        assert_eq!(scorer.call_strings(), vec![vec![expect("s", "b", "a")]]);
        let scorer = Recording::new(LenScorer);
        assert!(compare(&scorer, &[], CompareMode::Both).is_empty());
        assert!(scorer.calls().is_empty());
    }

    #[test]
    fn a_failing_pair_fails_only_its_request() {
        let scorer = Failing(LenScorer);
        let out = compare(&scorer, &[req("s", "ok", "fine"), req("s", "FAIL", "x")], CompareMode::Both);
        assert_eq!(out[0].as_ref().unwrap().logit, -2.0);
        let err = out[1].as_ref().unwrap_err();
        // The first pass the request needs is (A, B).
        assert_eq!(err.to_string(), "tokenizer: boom: FAIL|x");
    }

    #[test]
    fn raw_logits_come_with_the_compare_logit() {
        let requests = [req("s", "long answer", "short"), req("s", "same", "same")];
        for mode in [CompareMode::Ab, CompareMode::Ba, CompareMode::Both] {
            let scorer = Recording::new(LenScorer);
            let got = compare_logits(&scorer, &requests, mode);
            let want = compare(&LenScorer, &requests, mode);
            assert_eq!(scorer.calls().len(), 1);
            for (g, w) in got.iter().zip(&want) {
                let g = g.as_ref().unwrap();
                assert_eq!(g.logit.to_bits(), w.as_ref().unwrap().logit.to_bits(), "{mode}");
                assert_eq!(g.ab.is_some(), mode != CompareMode::Ba);
                assert_eq!(g.ba.is_some(), mode != CompareMode::Ab);
            }
        }
        let both = compare_logits(&LenScorer, &requests, CompareMode::Both);
        let first = both[0].as_ref().unwrap();
        assert_eq!(
            (first.ab, first.ba),
            (Some(LenScorer.logit("long answer", "short")), Some(LenScorer.logit("short", "long answer")))
        );
        // Identical answers: logit(A, B) − logit(B, A) is exactly 0 despite the position bias.
        assert_eq!(both[1].as_ref().unwrap().logit, 0.0);
        let refs: Vec<&CompareRequest> = requests.iter().collect();
        assert_eq!(
            compare_logits(&LenScorer, refs, CompareMode::Ab)[1].as_ref().unwrap().logit,
            LenScorer.logit("same", "same")
        );
    }

    #[test]
    fn results_serialize() {
        let json = serde_json::to_string(&CompareResult::from_logit(-0.5)).unwrap();
        assert_eq!(json, r#"{"logit":-0.5,"a_better":false}"#);
        assert!(!CompareResult::from_logit(f32::NAN).a_better);
    }
}
