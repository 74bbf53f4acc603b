//! Dynamic batching: every request's forward passes go into one shared queue, and one worker
//! thread drains it into batches of at most `max_batch_tokens` tokens (first come, first served),
//! so that concurrent requests share batches.
//!
//! A request talks to the queue through a [`QueueScorer`], a [`PairScorer`] that enqueues the
//! pairs of each call and blocks until the worker has scored them: the judge functions
//! (compare, rank, bubble, conversations) run unchanged on top of it, in a blocking thread. When
//! a request is cancelled (its client went away, or it timed out), its queued pairs are dropped
//! and its later calls return at once with [`Error::Cancelled`]; a batch already running is
//! finished. Results never depend on which requests share a batch (the backend guarantees it).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

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
    pair: Pair,
    tokens: usize,
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
            let pairs: Vec<Pair> = batch.iter().map(|e| e.pair.clone()).collect();
            let tokens: usize = batch.iter().map(|e| e.tokens).sum();
            let start = Instant::now();
            for entry in &batch {
                self.metrics.queue_wait.observe(start.duration_since(entry.queued_at).as_secs_f64());
            }
            let results = catch_unwind(AssertUnwindSafe(|| self.backend.logits(&pairs))).unwrap_or_else(|_| {
                tracing::error!(pairs = pairs.len(), "the model panicked on a batch");
                Vec::new()
            });
            self.metrics.observe_batch(pairs.len(), tokens, start.elapsed());
            tracing::debug!(pairs = pairs.len(), tokens, elapsed = ?start.elapsed(), "batch");
            let count = results.len();
            let mut results = results.into_iter();
            for entry in batch {
                let result = results.next().unwrap_or_else(|| {
                    Err(Error::model("server", format!("the model returned {count} results for {} pairs", pairs.len())))
                });
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
            if !batch.is_empty() && tokens + entry.tokens > self.max_batch_tokens {
                break;
            }
            tokens += entry.tokens;
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
        let tokens = self.shared.backend.pair_tokens(pairs);
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
            for (slot, (pair, tokens)) in pairs.iter().zip(tokens).enumerate() {
                match (tokens, refused) {
                    (Err(e), _) => call.fill(slot, Err(e)),
                    (Ok(_), Some(error)) => call.fill(slot, Err(error())),
                    (Ok(tokens), None) => queue.entries.push_back(Entry {
                        request: self.request,
                        pair: pair.clone(),
                        tokens,
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
