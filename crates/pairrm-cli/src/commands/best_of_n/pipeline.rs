//! The stages of `pairrm best-of-n`, each on its own thread(s), so that generation and ranking
//! overlap:
//!
//! 1. the reader parses input lines and queues each line's first requests (at most
//!    `max_in_flight` lines are between reading and writing);
//! 2. `max_concurrency` HTTP workers send requests, earliest line first, and hand each line whose
//!    samples are all in to the ranker;
//! 3. the ranker ranks whatever lines are ready, together, while the workers go on generating;
//! 4. the writer (the calling thread) writes results in input order as soon as they are next.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::Context;
use pairrm::Engine;

use super::line::{self, Judged, LineRequest};
use super::pick::{Output, Picker, Sampled};
use super::progress::Progress;
use super::queue::{Gate, WorkQueue};
use super::sampling::{Batch, Next, Sampling};
use crate::jsonl::{self, Outcome, RawLines};
use crate::openai::{Client, Params, Prompt};

/// Forward passes gathered at most into one ranking call (more lines: better batches, later
/// output).
const RANK_CHUNK_PASSES: usize = 512;

/// Added to the error of a request for several samples that the server answered with 400, 422
/// or 500 (invalid request, or an error): some servers refuse `n` > 1 instead of ignoring it.
const N_HINT: &str = " (if the server refuses `n` > 1, as llama.cpp's does, use --samples-per-request 1)";

/// What the generation side needs, shared by the reader and the workers.
pub struct Generation {
    /// The server.
    pub client: Client,
    /// Model and sampling settings.
    pub params: Params,
    /// Samples per line.
    pub n: usize,
    /// Most samples asked for in one request (0: all of a line's at once).
    pub samples_per_request: usize,
    /// The base seed (`seed + offset` per request), if any.
    pub seed: Option<u64>,
    /// Whether plain prompts go to the chat endpoint.
    pub chat: bool,
}

/// How many things run at once.
pub struct Limits {
    /// HTTP requests at once (worker threads).
    pub max_concurrency: usize,
    /// Lines between reading and writing.
    pub max_in_flight: usize,
}

/// A line being sampled.
struct Line {
    index: usize,
    prompt: Prompt,
    judged: Judged,
    sampling: Mutex<Sampling>,
}

/// One request to send.
struct Task {
    line: Arc<Line>,
    batch: Batch,
}

impl Task {
    fn key(&self) -> (usize, Batch) {
        (self.line.index, self.batch)
    }
}

impl PartialEq for Task {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Task {}

impl PartialOrd for Task {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Task {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// What the writer hears.
enum Event {
    /// The result of line `index` (from 0).
    Line(usize, Result<Output, String>),
    /// The input ended after this many lines.
    End(usize),
    /// The input could not be read.
    ReadFailed(anyhow::Error),
}

/// The state shared by the reader and the workers.
struct Shared {
    generation: Generation,
    queue: WorkQueue<Task>,
    /// Samples one request is known to return at most (0: unknown): plans new lines' requests.
    per_request: AtomicUsize,
    progress: Arc<Progress>,
}

impl Shared {
    /// Queues the first requests of a parsed line.
    fn submit(&self, index: usize, request: LineRequest) {
        let per_request = self.per_request.load(std::sync::atomic::Ordering::Relaxed);
        let (sampling, batches) = Sampling::start(self.generation.n, per_request);
        let line =
            Arc::new(Line { index, prompt: request.prompt, judged: request.judged, sampling: Mutex::new(sampling) });
        for batch in batches {
            self.queue.push(Task { line: line.clone(), batch });
        }
    }

    /// Sends one request and decides what the line needs next.
    fn run(&self, task: Task, ranker: &Sender<Result<Sampled, (usize, String)>>) {
        let Task { line, batch } = task;
        if lock(&line.sampling).failed() {
            return;
        }
        let g = &self.generation;
        let seed = g.seed.map(|s| s.wrapping_add(batch.offset as u64));
        let body = g.params.body(&line.prompt, batch.n, seed);
        let result = g.client.generate(line.prompt.endpoint(), &body);
        let next = match result {
            Ok(response) => {
                let got = response.completion.texts.len();
                self.progress.request_done(got, response.attempts);
                if got > 0 && got < batch.n {
                    self.per_request.store(got, std::sync::atomic::Ordering::Relaxed);
                }
                let completion = response.completion;
                lock(&line.sampling).on_answer(batch, completion.texts, completion.usage, response.attempts)
            }
            Err(error) => {
                self.progress.request_done(0, error.attempts);
                match lock(&line.sampling).on_error(&error) {
                    Next::Failed(message) if batch.n > 1 && matches!(error.status, Some(400 | 422 | 500)) => {
                        Next::Failed(format!("{message}{N_HINT}"))
                    }
                    next => next,
                }
            }
        };
        let ready = match next {
            Next::Wait | Next::Ignore => return,
            Next::Send(batches) => {
                for batch in batches {
                    self.queue.push(Task { line: line.clone(), batch });
                }
                return;
            }
            Next::Failed(message) => Err((line.index, message)),
            Next::Done(samples, usage) => match line.judged.rank_request(&samples) {
                Ok(request) => Ok(Sampled { index: line.index, samples, request, usage }),
                Err(message) => Err((line.index, message)),
            },
        };
        // The ranker is gone only when the job is being torn down.
        let _ = ranker.send(ready);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the job: lines from `input` to `output`, one output line per input line, in order.
pub fn run(
    input: Box<dyn BufRead + Send>,
    output: &mut dyn Write,
    generation: Generation,
    limits: Limits,
    engine: Engine,
    picker: Picker,
    progress: Arc<Progress>,
) -> anyhow::Result<Outcome> {
    let shared = Arc::new(Shared {
        per_request: AtomicUsize::new(generation.samples_per_request),
        generation,
        queue: WorkQueue::new(),
        progress: progress.clone(),
    });
    let gate = Arc::new(Gate::new(limits.max_in_flight));
    let (events, events_rx) = mpsc::channel::<Event>();
    let (ready, ready_rx) = mpsc::channel::<Result<Sampled, (usize, String)>>();

    let reader = {
        let (shared, gate, events) = (shared.clone(), gate.clone(), events.clone());
        thread::Builder::new().name("pairrm-read".into()).spawn(move || read(input, &shared, &gate, &events))?
    };
    let mut workers = Vec::with_capacity(limits.max_concurrency);
    for i in 0..limits.max_concurrency.max(1) {
        let (shared, ready) = (shared.clone(), ready.clone());
        workers.push(thread::Builder::new().name(format!("pairrm-http-{i}")).spawn(move || {
            while let Some(task) = shared.queue.pop() {
                shared.run(task, &ready);
            }
        })?);
    }
    drop(ready);
    let ranker = {
        let events = events.clone();
        thread::Builder::new().name("pairrm-rank".into()).spawn(move || rank(&engine, picker, &ready_rx, &events))?
    };
    drop(events);

    let written = write(output, &events_rx, &gate, &progress);
    // Stop everything: on success nothing is left; on failure (output closed, input unreadable)
    // the workers finish their current request and the reader its current line.
    gate.close();
    shared.queue.close();
    let outcome = written?;
    for worker in workers {
        worker.join().map_err(|_| anyhow::anyhow!("an HTTP worker panicked"))?;
    }
    ranker.join().map_err(|_| anyhow::anyhow!("the ranker panicked"))?;
    reader.join().map_err(|_| anyhow::anyhow!("the reader panicked"))?;
    Ok(outcome)
}

/// The reader: parses each line and queues its requests, or reports it as failed.
fn read(input: Box<dyn BufRead + Send>, shared: &Shared, gate: &Gate, events: &Sender<Event>) {
    let mut lines = RawLines::new(input);
    loop {
        match lines.next_line() {
            Ok(Some((number, raw))) => {
                if !gate.enter() {
                    return;
                }
                shared.progress.line_read();
                let index = number - 1;
                match jsonl::parse_object(raw).and_then(|value| line::parse(value, shared.generation.chat)) {
                    Ok(request) => shared.submit(index, request),
                    Err(e) => {
                        if events.send(Event::Line(index, Err(e))).is_err() {
                            return;
                        }
                    }
                }
            }
            Ok(None) => {
                let _ = events.send(Event::End(lines.count()));
                return;
            }
            Err(e) => {
                let _ = events.send(Event::ReadFailed(e));
                return;
            }
        }
    }
}

/// The ranker: ranks the lines that are ready, as many as fit in [`RANK_CHUNK_PASSES`] at once.
fn rank(engine: &Engine, picker: Picker, ready: &Receiver<Result<Sampled, (usize, String)>>, events: &Sender<Event>) {
    while let Ok(first) = ready.recv() {
        let mut batch = Vec::new();
        let mut passes = 0;
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Ok(sampled) => {
                    passes += picker.passes(sampled.samples.len());
                    batch.push(sampled);
                }
                Err((index, message)) => {
                    if events.send(Event::Line(index, Err(message))).is_err() {
                        return;
                    }
                }
            }
            if passes < RANK_CHUNK_PASSES {
                next = ready.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        for (index, result) in picker.pick(engine, batch) {
            if events.send(Event::Line(index, result)).is_err() {
                return;
            }
        }
    }
}

/// The writer: writes each line's result as soon as all earlier lines are written.
fn write(out: &mut dyn Write, events: &Receiver<Event>, gate: &Gate, progress: &Progress) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome { failed: 0 };
    let mut pending: BTreeMap<usize, Result<Output, String>> = BTreeMap::new();
    let mut next = 0;
    let mut total = None;
    while total != Some(next) {
        let event = events.recv().context("internal error: a stage of the job stopped early")?;
        match event {
            Event::Line(index, result) => {
                pending.insert(index, result);
            }
            Event::End(lines) => total = Some(lines),
            Event::ReadFailed(e) => return Err(e),
        }
        let mut wrote = false;
        while let Some(result) = pending.remove(&next) {
            let line = match result {
                Ok(output) => serde_json::to_string(&output).context("serializing a result")?,
                Err(e) => {
                    outcome.failed += 1;
                    serde_json::to_string(&serde_json::json!({ "error": format!("line {}: {e}", next + 1) }))
                        .expect("a string serializes")
                }
            };
            writeln!(out, "{line}").context("writing output")?;
            next += 1;
            wrote = true;
            gate.leave();
            progress.line_written();
        }
        if wrote {
            out.flush().context("writing output")?;
        }
    }
    Ok(outcome)
}
