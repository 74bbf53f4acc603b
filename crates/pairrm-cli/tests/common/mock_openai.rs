//! A small OpenAI-compatible server for the tests, on 127.0.0.1 (an ephemeral port).
//!
//! It answers `/v1/completions` and `/v1/chat/completions` with deterministic samples
//! ([`sample`]) and can be told, per prompt, to fail (HTTP statuses with or without `Retry-After`,
//! closed connections, garbage, no choices), to hang, to wait for a [`Signal`], to ignore or cap
//! `n`, to require an API key, or to hold every request until a number of them are in flight. It
//! records every request and the most requests it ever had in flight at once.
//!
//! The prompt of a request is its `prompt`, or the content of its last message.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{json, Value};

/// Longest a held request waits (for a signal, a barrier, or a hang) before giving up: long
/// enough never to matter when the client behaves, short enough to end a broken test.
pub const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// The `i`-th sample of a request for `prompt` sent with `seed` (0 when the request has none).
/// Lengths vary so that the samples differ for PairRM.
pub fn sample(prompt: &str, seed: u64, i: usize) -> String {
    let detail = "and more detail ".repeat((seed as usize * 3 + i * 5) % 7);
    format!("Answer {seed}.{i} to {prompt}: {detail}the end.")
}

/// What to do with one request instead of answering it well.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status, a JSON error body, and `Retry-After` when given.
    Status(u16, Option<&'static str>),
    /// Read the request and close the connection without answering.
    Close,
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Answer 200 with a JSON object without `choices`.
    NoChoicesField,
    /// Answer 200 with an empty `choices` array.
    EmptyChoices,
    /// Never answer (until the server stops, or [`HOLD_LIMIT`]).
    Hang,
}

/// A flag threads can wait for.
#[derive(Default)]
pub struct Signal {
    set: Mutex<bool>,
    changed: Condvar,
}

impl Signal {
    /// Sets the flag and wakes the waiters.
    pub fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.changed.notify_all();
    }

    /// Waits until the flag is set, at most `limit`; whether it was set.
    pub fn wait(&self, limit: Duration) -> bool {
        let guard = self.set.lock().unwrap();
        let (guard, _) = self.changed.wait_timeout_while(guard, limit, |set| !*set).unwrap();
        *guard
    }
}

/// How the server behaves.
#[derive(Default)]
pub struct Config {
    /// Most choices per answer (`Some(1)`: the server ignores `n`).
    pub max_n: Option<usize>,
    /// Answer `n` other than 1 with HTTP 500, as llama.cpp's server does.
    pub refuse_n: bool,
    /// The bearer token every request must carry (401 otherwise).
    pub api_key: Option<String>,
    /// Per prompt: the faults of its first requests, in order (later requests succeed).
    pub faults: HashMap<String, Vec<Fault>>,
    /// Per prompt: a fault for every request.
    pub always: HashMap<String, Fault>,
    /// Per prompt: requests wait for this signal before answering (500 if it never comes).
    pub holds: HashMap<String, Arc<Signal>>,
    /// Per prompt: set this signal once a request for the prompt has been answered.
    pub signals_after: HashMap<String, Arc<Signal>>,
    /// Every request waits until this many are in flight, or all expected requests arrived.
    pub barrier: Option<Barrier>,
}

/// Holds requests until `in_flight` of them are in flight at once (or `total` requests arrived
/// in all, so that the last ones are not held): a client sending more at once than its limit
/// shows in [`MockServer::max_in_flight`].
pub struct Barrier {
    /// Requests in flight that release the waiting ones.
    pub in_flight: usize,
    /// Requests expected in all.
    pub total: usize,
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The path (`/v1/completions`, ...).
    pub path: String,
    /// The `authorization` header, if any.
    pub authorization: Option<String>,
    /// The JSON body.
    pub body: Value,
}

impl Recorded {
    /// The request's prompt (`prompt`, or the last message's content).
    pub fn prompt(&self) -> String {
        prompt_of(&self.body)
    }
}

#[derive(Default)]
struct Counters {
    in_flight: usize,
    max_in_flight: usize,
    arrived: usize,
    per_prompt: HashMap<String, usize>,
}

struct State {
    config: Config,
    requests: Mutex<Vec<Recorded>>,
    answered: Mutex<Vec<String>>,
    counters: Mutex<Counters>,
    counters_changed: Condvar,
    stopping: AtomicBool,
    stop: Signal,
}

/// The running server; stops when dropped.
pub struct MockServer {
    port: u16,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts a server with `config` on 127.0.0.1.
    pub fn start(config: Config) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            config,
            requests: Mutex::default(),
            answered: Mutex::default(),
            counters: Mutex::default(),
            counters_changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            stop: Signal::default(),
        });
        let acceptor = {
            let state = state.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if state.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let state = state.clone();
                        thread::spawn(move || serve(&state, stream));
                    }
                }
            })
        };
        MockServer { port, state, acceptor: Some(acceptor) }
    }

    /// The base URL to give `--generator` (`http://127.0.0.1:PORT/v1`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The requests for `prompt`.
    pub fn requests_for(&self, prompt: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.prompt() == prompt).collect()
    }

    /// The prompts of the requests answered well, in the order the answers were sent.
    pub fn answered(&self) -> Vec<String> {
        self.state.answered.lock().unwrap().clone()
    }

    /// The most requests in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.counters.lock().unwrap().max_in_flight
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        self.state.stop.set();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn prompt_of(body: &Value) -> String {
    match body.get("prompt") {
        Some(p) => p.as_str().unwrap_or_default().to_string(),
        None => body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string(),
    }
}

/// A parsed HTTP request: path, lower-case headers, body.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, HashMap<String, String>, Vec<u8>)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, headers, body))
}

/// What to send back.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    /// Whether it carries samples.
    sampled: bool,
}

fn reply(status: u16, body: impl Into<String>) -> Option<Reply> {
    Some(Reply { status, headers: vec![], body: body.into(), sampled: false })
}

fn respond(stream: &mut TcpStream, reply: &Reply) {
    let mut head = format!(
        "HTTP/1.1 {} Mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(reply.body.as_bytes());
    let _ = stream.flush();
}

fn serve(state: &State, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    let Some((path, headers, body)) = read_request(&mut reader) else { return };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let prompt = prompt_of(&body);
    state.requests.lock().unwrap().push(Recorded {
        path: path.clone(),
        authorization: headers.get("authorization").cloned(),
        body: body.clone(),
    });
    let nth = {
        let mut counters = state.counters.lock().unwrap();
        counters.in_flight += 1;
        counters.max_in_flight = counters.max_in_flight.max(counters.in_flight);
        counters.arrived += 1;
        let count = counters.per_prompt.entry(prompt.clone()).or_default();
        *count += 1;
        state.counters_changed.notify_all();
        *count - 1
    };
    let reply = answer(state, &path, &headers, &body, &prompt, nth);
    // Out of flight before the client can see the answer (and send its next request).
    state.counters.lock().unwrap().in_flight -= 1;
    state.counters_changed.notify_all();
    let Some(reply) = reply else { return };
    respond(&mut stream, &reply);
    if reply.sampled {
        state.answered.lock().unwrap().push(prompt.clone());
        if let Some(signal) = state.config.signals_after.get(&prompt) {
            signal.set();
        }
    }
}

/// The reply to a request (`None`: close the connection without one).
fn answer(
    state: &State,
    path: &str,
    headers: &HashMap<String, String>,
    body: &Value,
    prompt: &str,
    nth: usize,
) -> Option<Reply> {
    let config = &state.config;
    if let Some(barrier) = &config.barrier {
        let counters = state.counters.lock().unwrap();
        let _ = state
            .counters_changed
            .wait_timeout_while(counters, HOLD_LIMIT, |c| c.in_flight < barrier.in_flight && c.arrived < barrier.total)
            .unwrap();
    }
    if let Some(signal) = config.holds.get(prompt) {
        if !signal.wait(HOLD_LIMIT) {
            return reply(500, r#"{"error": {"message": "held request never released"}}"#);
        }
    }
    if let Some(key) = &config.api_key {
        if headers.get("authorization") != Some(&format!("Bearer {key}")) {
            return reply(401, r#"{"error": {"message": "Incorrect API key provided"}}"#);
        }
    }
    let fault = config.always.get(prompt).or_else(|| config.faults.get(prompt).and_then(|f| f.get(nth)));
    match fault {
        Some(Fault::Status(status, retry_after)) => {
            let message = json!({"error": {"message": format!("mock status {status}")}}).to_string();
            let headers = retry_after.iter().map(|v| ("retry-after", *v)).collect();
            return Some(Reply { status: *status, headers, body: message, sampled: false });
        }
        Some(Fault::Close) => return None,
        Some(Fault::Garbage) => return reply(200, "<html>not json</html>"),
        Some(Fault::NoChoicesField) => return reply(200, r#"{"id": "x", "object": "text_completion"}"#),
        Some(Fault::EmptyChoices) => return reply(200, r#"{"choices": []}"#),
        Some(Fault::Hang) => {
            state.stop.wait(HOLD_LIMIT);
            return None;
        }
        None => {}
    }
    let chat = path.ends_with("/chat/completions");
    if !chat && !path.ends_with("/completions") {
        return reply(404, r#"{"error": "no such route"}"#);
    }
    let asked = body["n"].as_u64().unwrap_or(1) as usize;
    if config.refuse_n && asked != 1 {
        return reply(500, r#"{"error": {"code": 500, "message": "Only one completion choice is allowed"}}"#);
    }
    let n = config.max_n.map_or(asked, |max| asked.min(max));
    let seed = body["seed"].as_u64().unwrap_or(0);
    let texts: Vec<String> = (0..n).map(|i| sample(prompt, seed, i)).collect();
    // Choices in reverse index order: clients must order them by `index`.
    let choices: Vec<Value> = texts
        .iter()
        .enumerate()
        .rev()
        .map(|(i, text)| {
            if chat {
                json!({"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
            } else {
                json!({"index": i, "text": text, "finish_reason": "stop"})
            }
        })
        .collect();
    let words = |s: &str| s.split_whitespace().count();
    let prompt_tokens = words(prompt);
    let completion_tokens: usize = texts.iter().map(|t| words(t)).sum();
    let answer = json!({
        "id": "mock",
        "object": if chat { "chat.completion" } else { "text_completion" },
        "model": body["model"],
        "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    });
    Some(Reply { status: 200, headers: vec![], body: answer.to_string(), sampled: true })
}
