//! Dynamic batching: every request's forward passes go into one shared queue, and one worker
//! thread drains it into batches of at most `max_batch_tokens` tokens (first come, first served),
//! so that concurrent requests share batches.
//!
//! A request talks to the queue through a [`QueueScorer`], a [`PairScorer`] that encodes the
//! pairs of each call (once: the queue holds their model inputs, which the worker runs as they
//! are), enqueues them and blocks until the worker has scored them: the judge functions
//! (compare, rank, bubble, conversations) run unchanged on top of it, in a blocking thread. When
//! a request is cancelled (its client went away, or it timed out), its queued pairs are dropped
//! and its later calls return at once with [`Error::Cancelled`]; a batch already running is
//! finished. Results never depend on which requests share a batch (the backend guarantees it). A
//! non-finite logit is an error, never a number in an answer.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use pairrm::input::PairInput;
use pairrm::judge::{Pair, PairScorer};
use pairrm::{Error, Result};

use crate::backend::Backend;
use crate::metrics::Metrics;

/// The queue and its worker thread.
pub(crate) struct Batcher {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// What the request threads and the worker share.
struct Shared {
    backend: Arc<dyn Backend>,
    queue: Mutex<Queue>,
    /// Signalled when pairs are queued or the queue is closed.
    wake: Condvar,
    max_batch_tokens: usize,
    metrics: Arc<Metrics>,
    next_request: AtomicU64,
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    closed: bool,
}

/// One queued forward pass.
struct Entry {
    request: u64,
    input: PairInput,
    call: Arc<Call>,
    slot: usize,
    queued_at: Instant,
}

/// The results of one [`QueueScorer::logits`] call, filled in by the worker.
struct Call {
    state: Mutex<CallState>,
    done: Condvar,
}

struct CallState {
    results: Vec<Option<Result<f32>>>,
    missing: usize,
}

impl Call {
    fn new(n: usize) -> Self {
        Call {
            state: Mutex::new(CallState { results: (0..n).map(|_| None).collect(), missing: n }),
            done: Condvar::new(),
        }
    }

    /// Stores the result of `slot` and wakes the caller once every slot is filled.
    fn fill(&self, slot: usize, result: Result<f32>) {
        let mut state = lock(&self.state);
        if state.results[slot].is_none() {
            state.results[slot] = Some(result);
            state.missing -= 1;
            if state.missing == 0 {
                self.done.notify_all();
            }
        }
    }

    /// Blocks until every slot is filled; the results in slot order.
    fn wait(&self) -> Vec<Result<f32>> {
        let mut state = lock(&self.state);
        while state.missing > 0 {
            state = self.done.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.results.drain(..).map(|r| r.unwrap_or(Err(Error::Cancelled))).collect()
    }
}

/// Locks `m`, ignoring poisoning (no code holding these locks can leave them inconsistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Batcher {
    /// Starts the worker thread over `backend`.
    pub(crate) fn start(backend: Arc<dyn Backend>, max_batch_tokens: usize, metrics: Arc<Metrics>) -> Self {
        let shared = Arc::new(Shared {
            backend,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            max_batch_tokens: max_batch_tokens.max(1),
            metrics,
            next_request: AtomicU64::new(0),
        });
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("pairrm-batcher".into())
                .spawn(move || shared.run_worker())
                .expect("spawning the batching thread")
        };
        Batcher { shared, worker: Mutex::new(Some(worker)) }
    }

    /// A new request: its scorer (to use in a blocking thread) and the guard that cancels its work
    /// when dropped before [`RequestGuard::finish`].
    pub(crate) fn request(&self) -> (QueueScorer, RequestGuard) {
        let id = self.shared.next_request.fetch_add(1, Ordering::Relaxed);
        let cancel = Arc::new(AtomicBool::new(false));
        let scorer = QueueScorer { shared: self.shared.clone(), request: id, cancel: cancel.clone() };
        let guard = RequestGuard { shared: self.shared.clone(), request: id, cancel, finished: false };
        (scorer, guard)
    }

    /// Lets the worker finish the queued pairs, then stops it and waits for it. Later calls of a
    /// scorer fail.
    pub(crate) fn close(&self) {
        lock(&self.shared.queue).closed = true;
        self.shared.wake.notify_all();
        if let Some(worker) = lock(&self.worker).take() {
            if worker.join().is_err() {
                tracing::error!("the batching thread panicked");
            }
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// The worker: takes the oldest queued pairs up to the token budget (at least one pair),
    /// scores them in one backend call, hands out the results; until the queue is closed and empty.
    fn run_worker(&self) {
        while let Some(batch) = self.next_batch() {
            let inputs: Vec<&PairInput> = batch.iter().map(|e| &e.input).collect();
            let tokens: usize = inputs.iter().map(|i| i.ids.len()).sum();
            let start = Instant::now();
            for entry in &batch {
                self.metrics.queue_wait.observe(start.duration_since(entry.queued_at).as_secs_f64());
            }
            let results = catch_unwind(AssertUnwindSafe(|| self.backend.logits(&inputs))).unwrap_or_else(|_| {
                tracing::error!(pairs = inputs.len(), "the model panicked on a batch");
                Vec::new()
            });
            self.metrics.observe_batch(inputs.len(), tokens, start.elapsed());
            tracing::debug!(pairs = inputs.len(), tokens, elapsed = ?start.elapsed(), "batch");
            let (count, expected) = (results.len(), inputs.len());
            let mut results = results.into_iter();
            for entry in batch {
                let result = match results.next() {
                    Some(Ok(logit)) if !logit.is_finite() => Err(Error::model(
                        "server",
                        format!(
                            "the model gave a non-finite logit ({logit}) for a pair of {} tokens",
                            entry.input.ids.len()
                        ),
                    )),
                    Some(result) => result,
                    None => {
                        Err(Error::model("server", format!("the model returned {count} results for {expected} pairs")))
                    }
                };
                entry.call.fill(entry.slot, result);
            }
        }
    }

    /// Waits for queued pairs and takes the next batch; `None` once closed and empty.
    fn next_batch(&self) -> Option<Vec<Entry>> {
        let mut queue = lock(&self.queue);
        while queue.entries.is_empty() && !queue.closed {
            queue = self.wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
        }
        let mut batch = Vec::new();
        let mut tokens = 0;
        while let Some(entry) = queue.entries.front() {
            let len = entry.input.ids.len();
            if !batch.is_empty() && tokens + len > self.max_batch_tokens {
                break;
            }
            tokens += len;
            batch.extend(queue.entries.pop_front());
        }
        self.metrics.queue_pairs.set(queue.entries.len() as i64);
        (!batch.is_empty()).then_some(batch)
    }

    /// Drops the queued pairs of `request`; their calls get [`Error::Cancelled`].
    fn cancel(&self, request: u64) {
        let mut queue = lock(&self.queue);
        let mut dropped = Vec::new();
        queue.entries.retain(|e| {
            if e.request == request {
                dropped.push((e.call.clone(), e.slot));
                false
            } else {
                true
            }
        });
        self.metrics.queue_pairs.set(queue.entries.len() as i64);
        drop(queue);
        if !dropped.is_empty() {
            self.metrics.cancelled_pairs.inc_by(dropped.len() as u64);
            tracing::debug!(request, pairs = dropped.len(), "dropped the queued pairs of a cancelled request");
        }
        for (call, slot) in dropped {
            call.fill(slot, Err(Error::Cancelled));
        }
    }
}

/// A request's [`PairScorer`]: queues the pairs of each call and blocks until they are scored.
/// Use it in a blocking thread, never on an async task.
pub(crate) struct QueueScorer {
    shared: Arc<Shared>,
    request: u64,
    cancel: Arc<AtomicBool>,
}

impl PairScorer for QueueScorer {
    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>> {
        if self.cancel.load(Ordering::Acquire) {
            return pairs.iter().map(|_| Err(Error::Cancelled)).collect();
        }
        let inputs = self.shared.backend.encode(pairs);
        let call = Arc::new(Call::new(pairs.len()));
        let now = Instant::now();
        {
            let mut queue = lock(&self.shared.queue);
            // Checked under the lock: a cancellation either sees these entries or happened before.
            let refused: Option<fn() -> Error> = if queue.closed {
                Some(|| Error::model("server", "the server is shutting down"))
            } else if self.cancel.load(Ordering::Acquire) {
                Some(|| Error::Cancelled)
            } else {
                None
            };
            for (slot, input) in inputs.into_iter().enumerate() {
                match (input, refused) {
                    (Err(e), _) => call.fill(slot, Err(e)),
                    (Ok(_), Some(error)) => call.fill(slot, Err(error())),
                    (Ok(input), None) => queue.entries.push_back(Entry {
                        request: self.request,
                        input,
                        call: call.clone(),
                        slot,
                        queued_at: now,
                    }),
                }
            }
            self.shared.metrics.queue_pairs.set(queue.entries.len() as i64);
        }
        self.shared.wake.notify_one();
        call.wait()
    }
}

/// Cancels a request's queued work when dropped, unless [`RequestGuard::finish`] was called.
pub(crate) struct RequestGuard {
    shared: Arc<Shared>,
    request: u64,
    cancel: Arc<AtomicBool>,
    finished: bool,
}

impl RequestGuard {
    /// The request completed: nothing to cancel.
    pub(crate) fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.cancel.store(true, Ordering::Release);
            self.shared.cancel(self.request);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::ModelInfo;

    /// logit = len(left) − len(right), tokens = total length; holds every batch until opened;
    /// records the batches; a pair whose left text is "panic" makes it panic, "untokenizable"
    /// fails to encode, "nan" gives a NaN logit.
    #[derive(Default)]
    struct Fake {
        /// Batches the worker has started.
        entered: Mutex<usize>,
        open: Mutex<bool>,
        opened: Condvar,
        batches: Mutex<Vec<Vec<String>>>,
    }

    impl Fake {
        fn open(&self) {
            *lock(&self.open) = true;
            self.opened.notify_all();
        }
        fn batches(&self) -> Vec<Vec<String>> {
            lock(&self.batches).clone()
        }
    }

    /// The fake encoding: the bytes of source, left and right; tokens = total length.
    fn left_text(input: &PairInput) -> String {
        let left = &input.ids[input.source_len..input.source_len + input.left_len];
        left.iter().map(|&b| char::from(b as u8)).collect()
    }

    impl Backend for Fake {
        fn encode(&self, pairs: &[Pair]) -> Vec<Result<PairInput>> {
            pairs
                .iter()
                .map(|p| match &*p.left {
                    "untokenizable" => Err(Error::Tokenizer("cannot encode".into())),
                    _ => Ok(PairInput {
                        ids: [&p.source, &p.left, &p.right].iter().flat_map(|t| t.bytes().map(u32::from)).collect(),
                        source_len: p.source.len(),
                        left_len: p.left.len(),
                    }),
                })
                .collect()
        }
        fn logits(&self, inputs: &[&PairInput]) -> Vec<Result<f32>> {
            *lock(&self.entered) += 1;
            let mut open = lock(&self.open);
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            drop(open);
            let lefts: Vec<String> = inputs.iter().map(|i| left_text(i)).collect();
            lock(&self.batches).push(lefts.clone());
            assert!(lefts.iter().all(|l| l != "panic"), "asked to panic");
            inputs
                .iter()
                .map(|i| match left_text(i).as_str() {
                    "nan" => Ok(f32::NAN),
                    left => Ok(left.len() as f32 - (i.ids.len() - i.source_len - i.left_len) as f32),
                })
                .collect()
        }
        fn info(&self) -> ModelInfo {
            unreachable!("not used")
        }
    }

    /// Opens the gate when dropped, so that a failing test unblocks its threads instead of hanging.
    struct OpenOnDrop<'a>(&'a Fake);

    impl Drop for OpenOnDrop<'_> {
        fn drop(&mut self) {
            self.0.open();
        }
    }

    fn pairs(lefts: &[&str]) -> Vec<Pair> {
        lefts.iter().map(|l| Pair { source: "s".into(), left: (*l).into(), right: "r".into() }).collect()
    }

    /// Waits (bounded) until `n` passes are queued.
    fn wait_queued(metrics: &Metrics, n: i64) {
        wait_for(|| metrics.queue_pairs.get() == n, &format!("{n} passes queued"));
    }

    /// Waits (bounded) until the worker has started `n` batches.
    fn wait_entered(fake: &Fake, n: usize) {
        wait_for(|| *lock(&fake.entered) == n, &format!("{n} batches started"));
    }

    fn wait_for(done: impl Fn() -> bool, what: &str) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("never reached: {what}");
    }

    fn start(max_batch_tokens: usize) -> (Arc<Fake>, Arc<Metrics>, Batcher) {
        let fake = Arc::new(Fake::default());
        let metrics = Arc::new(Metrics::new());
        let batcher = Batcher::start(fake.clone(), max_batch_tokens, metrics.clone());
        (fake, metrics, batcher)
    }

    #[test]
    fn queued_calls_share_batches_under_the_token_budget_in_order() {
        // Each pair below has 1 + 2 + 1 = 4 tokens; a budget of 12 holds 3 pairs.
        let (fake, metrics, batcher) = start(12);
        std::thread::scope(|s| {
            let _open = OpenOnDrop(&fake);
            let (first, g1) = batcher.request();
            let h1 = s.spawn(move || (first.logits(&pairs(&["a0"])), g1));
            wait_entered(&fake, 1); // the worker took it and waits for the gate
            let (second, g2) = batcher.request();
            let h2 = s.spawn(move || (second.logits(&pairs(&["b0", "b1"])), g2));
            wait_queued(&metrics, 2);
            let (third, g3) = batcher.request();
            let h3 = s.spawn(move || (third.logits(&pairs(&["c0", "c1", "c2"])), g3));
            wait_queued(&metrics, 5);
            fake.open();
            for h in [h1, h2, h3] {
                let (results, guard) = h.join().unwrap();
                guard.finish();
                assert!(results.iter().all(|r| *r.as_ref().unwrap() == 1.0));
            }
        });
        assert_eq!(fake.batches(), [vec!["a0"], vec!["b0", "b1", "c0"], vec!["c1", "c2"]]);
        assert!(metrics.encode().contains("pairrm_batch_pairs_count 3"));
    }

    #[test]
    fn a_pass_over_the_budget_runs_alone() {
        let (fake, _metrics, batcher) = start(1);
        fake.open();
        let (scorer, guard) = batcher.request();
        let results = scorer.logits(&pairs(&["xx", "y"]));
        guard.finish();
        assert_eq!(results.iter().map(|r| *r.as_ref().unwrap()).collect::<Vec<_>>(), [1.0, 0.0]);
        assert_eq!(fake.batches(), [vec!["xx"], vec!["y"]]);
    }

    #[test]
    fn a_cancelled_request_loses_its_queued_passes_and_later_calls() {
        let (fake, metrics, batcher) = start(100);
        std::thread::scope(|s| {
            let _open = OpenOnDrop(&fake);
            let (blocker, g1) = batcher.request();
            let h1 = s.spawn(move || blocker.logits(&pairs(&["a"])));
            wait_entered(&fake, 1);
            let (victim, g2) = batcher.request();
            let h2 = s.spawn(move || {
                let first = victim.logits(&pairs(&["v0", "v1"]));
                let second = victim.logits(&pairs(&["v2"]));
                (first, second)
            });
            wait_queued(&metrics, 2);
            drop(g2);
            let (first, second) = h2.join().unwrap();
            assert!(first.iter().chain(&second).all(|r| matches!(r, Err(Error::Cancelled))));
            fake.open();
            assert_eq!(*h1.join().unwrap()[0].as_ref().unwrap(), 0.0);
            g1.finish();
        });
        assert_eq!(fake.batches(), [vec!["a"]]);
        assert!(metrics.encode().contains("pairrm_cancelled_pairs_total 2"));
    }

    #[test]
    fn bad_pairs_and_non_finite_logits_fail_alone_and_a_panicking_batch_does_not_stop_the_worker() {
        let (fake, _metrics, batcher) = start(1000);
        fake.open();
        let (scorer, guard) = batcher.request();
        let results = scorer.logits(&pairs(&["untokenizable", "ok"]));
        assert!(matches!(results[0], Err(Error::Tokenizer(_))));
        assert_eq!(*results[1].as_ref().unwrap(), 1.0);
        let results = scorer.logits(&pairs(&["panic"]));
        assert!(matches!(results[0], Err(Error::Model { .. })), "{results:?}");
        let results = scorer.logits(&pairs(&["fine"]));
        assert_eq!(*results[0].as_ref().unwrap(), 3.0);
        let results = scorer.logits(&pairs(&["nan", "ok"]));
        let error = results[0].as_ref().unwrap_err().to_string();
        assert!(error.contains("non-finite logit (NaN)"), "{error}");
        assert_eq!(*results[1].as_ref().unwrap(), 1.0);
        guard.finish();
    }

    #[test]
    fn after_close_calls_fail_and_the_worker_is_gone() {
        let (fake, _metrics, batcher) = start(1000);
        fake.open();
        let (scorer, guard) = batcher.request();
        batcher.close();
        assert!(lock(&batcher.worker).is_none());
        let results = scorer.logits(&pairs(&["a"]));
        assert!(results[0].as_ref().unwrap_err().to_string().contains("shutting down"));
        guard.finish();
    }
}
