//! Collecting a line's n samples from requests that may each return fewer than asked.
//!
//! The first request asks for all `n` (`"n": n`). A server that returns fewer (one that ignores
//! `n`, or caps it) is asked again, in parallel, for the rest, each follow-up asking for as many
//! as the short answer gave, until `n` samples are in. Every request has an offset: the number
//! of samples that come before its own in the line's final order. It is fixed when the request is
//! planned, so the order of the samples never depends on which request finishes first. With a
//! `--seed`, the request at offset `o` is sent `seed + o`: requests of a line never share a seed
//! (a server ignoring `n` would otherwise answer the same sample every time).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::openai::{RequestError, Usage};

/// One planned request: `n` samples, placed from `offset` in the line's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Batch {
    /// Position of the first sample of this request in the line's order (also the seed offset).
    pub offset: usize,
    /// Samples asked for (`n` in the request).
    pub n: usize,
}

/// What the line needs after an answer came back.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Other requests of the line are still out.
    Wait,
    /// Send these requests.
    Send(Vec<Batch>),
    /// All `n` samples are in, in order.
    Done(Vec<String>, LineUsage),
    /// The line failed (reported once).
    Failed(String),
    /// The line had already failed: drop this answer.
    Ignore,
}

/// What a line cost: the server's token counts (summed over the answers that reported them) and
/// the HTTP requests made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LineUsage {
    /// Summed `usage` of the answers (absent when no answer reported any).
    #[serde(flatten)]
    pub tokens: Option<Usage>,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests that were retries of a failed one.
    pub retries: u64,
}

impl LineUsage {
    /// Counts one request that took `attempts` attempts.
    fn add_attempts(&mut self, attempts: u32) {
        self.requests += u64::from(attempts);
        self.retries += u64::from(attempts.saturating_sub(1));
    }
}

/// The sampling state of one line.
#[derive(Debug)]
pub struct Sampling {
    n: usize,
    /// Answers by offset.
    received: BTreeMap<usize, Vec<String>>,
    collected: usize,
    outstanding: usize,
    /// The offset of the next follow-up: past every sample received so far.
    next_offset: usize,
    failed: bool,
    usage: LineUsage,
}

impl Sampling {
    /// Starts a line of `n` samples (`n >= 1`). `per_request`: how many samples a request is known
    /// to return at most (0: unknown, ask for all `n` at once); the first requests are planned
    /// from it.
    pub fn start(n: usize, per_request: usize) -> (Sampling, Vec<Batch>) {
        let mut sampling = Sampling {
            n,
            received: BTreeMap::new(),
            collected: 0,
            outstanding: 0,
            next_offset: 0,
            failed: false,
            usage: LineUsage::default(),
        };
        let per_request = if per_request == 0 { n } else { per_request };
        let batches = sampling.plan(n, per_request);
        (sampling, batches)
    }

    /// Whether the line has failed (its queued requests need not be sent).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Records the answer to `batch`: its texts (more than asked are cut) and usage.
    pub fn on_answer(&mut self, batch: Batch, mut texts: Vec<String>, usage: Option<Usage>, attempts: u32) -> Next {
        self.outstanding -= 1;
        if self.failed {
            return Next::Ignore;
        }
        self.usage.add_attempts(attempts);
        if let Some(usage) = usage {
            *self.usage.tokens.get_or_insert_with(Usage::default) += usage;
        }
        if texts.is_empty() {
            self.failed = true;
            return Next::Failed(format!("the server answered a request for {} samples with no choices", batch.n));
        }
        texts.truncate(batch.n);
        let got = texts.len();
        self.collected += got;
        self.next_offset = self.next_offset.max(batch.offset + got);
        self.received.insert(batch.offset, texts);
        if self.outstanding > 0 {
            return Next::Wait;
        }
        if self.collected >= self.n {
            let mut samples: Vec<String> = std::mem::take(&mut self.received).into_values().flatten().collect();
            samples.truncate(self.n);
            return Next::Done(samples, self.usage);
        }
        Next::Send(self.plan(self.n - self.collected, got))
    }

    /// Records a request that failed for good: the line fails with its error.
    pub fn on_error(&mut self, error: &RequestError) -> Next {
        self.outstanding -= 1;
        if self.failed {
            return Next::Ignore;
        }
        self.failed = true;
        Next::Failed(error.to_string())
    }

    /// Plans requests for `remaining` samples, `per_request` at most each, from `next_offset`.
    fn plan(&mut self, remaining: usize, per_request: usize) -> Vec<Batch> {
        let per_request = per_request.max(1);
        let mut batches = Vec::new();
        let mut offset = self.next_offset;
        let end = self.next_offset + remaining;
        while offset < end {
            let n = per_request.min(end - offset);
            batches.push(Batch { offset, n });
            offset += n;
        }
        self.outstanding += batches.len();
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn usage(p: u64, c: u64) -> Option<Usage> {
        Some(Usage { prompt_tokens: p, completion_tokens: c, total_tokens: p + c })
    }

    #[test]
    fn a_server_honouring_n_takes_one_request() {
        let (mut s, batches) = Sampling::start(4, 0);
        assert_eq!(batches, [Batch { offset: 0, n: 4 }]);
        let next = s.on_answer(batches[0], texts("a", 4), usage(5, 20), 1);
        let expected = LineUsage { tokens: usage(5, 20), requests: 1, retries: 0 };
        assert_eq!(next, Next::Done(texts("a", 4), expected));
    }

    #[test]
    fn a_server_ignoring_n_is_asked_again_in_parallel() {
        let (mut s, first) = Sampling::start(4, 0);
        let Next::Send(follow) = s.on_answer(first[0], texts("a", 1), usage(5, 3), 2) else { panic!() };
        assert_eq!(follow, [Batch { offset: 1, n: 1 }, Batch { offset: 2, n: 1 }, Batch { offset: 3, n: 1 }]);
        // Answers come back out of order; the samples keep the planned order.
        assert_eq!(s.on_answer(follow[2], vec!["d".into()], usage(5, 3), 1), Next::Wait);
        assert_eq!(s.on_answer(follow[0], vec!["b".into()], None, 1), Next::Wait);
        let next = s.on_answer(follow[1], vec!["c".into()], usage(5, 3), 3);
        let expected = LineUsage { tokens: usage(15, 9), requests: 7, retries: 3 };
        assert_eq!(next, Next::Done(vec!["a0".into(), "b".into(), "c".into(), "d".into()], expected));
    }

    #[test]
    fn a_known_limit_plans_the_first_requests_and_shortfalls_are_refilled() {
        let (mut s, first) = Sampling::start(5, 2);
        assert_eq!(first, [Batch { offset: 0, n: 2 }, Batch { offset: 2, n: 2 }, Batch { offset: 4, n: 1 }]);
        assert_eq!(s.on_answer(first[0], texts("a", 2), None, 1), Next::Wait);
        // More than asked is cut.
        assert_eq!(s.on_answer(first[2], texts("c", 3), None, 1), Next::Wait);
        // One short: refilled from past the last sample received.
        let Next::Send(follow) = s.on_answer(first[1], texts("b", 1), None, 1) else { panic!() };
        assert_eq!(follow, [Batch { offset: 5, n: 1 }]);
        let Next::Done(samples, usage) = s.on_answer(follow[0], texts("d", 1), None, 1) else { panic!() };
        assert_eq!(samples, ["a0", "a1", "b0", "c0", "d0"]);
        assert_eq!(usage, LineUsage { tokens: None, requests: 4, retries: 0 });
    }

    #[test]
    fn a_partial_cap_is_refilled_in_batches_of_the_cap() {
        let (mut s, first) = Sampling::start(16, 0);
        let Next::Send(follow) = s.on_answer(first[0], texts("a", 6), None, 1) else { panic!() };
        assert_eq!(follow, [Batch { offset: 6, n: 6 }, Batch { offset: 12, n: 4 }]);
    }

    #[test]
    fn failures_fail_the_line_once() {
        let (mut s, first) = Sampling::start(3, 1);
        assert!(!s.failed());
        let error = RequestError { message: "HTTP 500".into(), attempts: 3, status: Some(500) };
        assert_eq!(s.on_error(&error), Next::Failed("HTTP 500 (gave up after 3 attempts)".into()));
        assert!(s.failed());
        assert_eq!(s.on_answer(first[1], texts("b", 1), None, 1), Next::Ignore);
        assert_eq!(s.on_error(&error), Next::Ignore);
    }

    #[test]
    fn an_answer_without_choices_fails_the_line() {
        let (mut s, first) = Sampling::start(2, 0);
        let next = s.on_answer(first[0], vec![], None, 1);
        assert_eq!(next, Next::Failed("the server answered a request for 2 samples with no choices".into()));
    }

    #[test]
    fn usage_serializes_flat() {
        let u = LineUsage { tokens: usage(1, 2), requests: 3, retries: 1 };
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"requests":3,"retries":1}"#
        );
        let u = LineUsage { tokens: None, requests: 1, retries: 0 };
        assert_eq!(serde_json::to_string(&u).unwrap(), r#"{"requests":1,"retries":0}"#);
    }
}
