//! Load test of the HTTP server (loopback only, bounded in time and count, stops by itself).
//!
//! 1. Offline: the engine ranks the whole workload in one library call, repeatedly, for
//!    `--seconds` (forward passes per second: the reference throughput); then one request per
//!    call (what a single client gets without HTTP and the queue).
//! 2. Served: a server on 127.0.0.1 over the same engine; 1, 4 and 16 (`--clients`) closed-loop
//!    clients send the workload's `/rank` requests for `--seconds` each: throughput against
//!    offline, p50/p99 latency; every answer is checked against the offline scores, bit for bit.
//! 3. Overload: a second server with `--max-concurrent-requests` = `--overload-limit`, hit by
//!    `--overload-clients` clients (a client that gets 429 waits 5 ms and tries its next
//!    request): it must answer 429s, and every accepted request must come back complete and
//!    correct (checked against the offline scores and against the server's own counts).
//!
//! Run it with `bench/server_load.sh` (release build, tiny and medium models), or
//! `cargo run --release -p pairrm-server --example server_load -- --model DIR [options]`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pairrm::checkpoint::OpenOptions;
use pairrm::judge::{self, RankRequest, SplitMix64};
use pairrm::{Engine, EngineOptions};
use pairrm_server::ServerOptions;
use serde_json::{json, Value};

/// Most requests one client sends in a phase (the phases are bounded by time first).
const MAX_REQUESTS_PER_CLIENT: usize = 100_000;

struct Options {
    model: String,
    seconds: f64,
    clients: Vec<usize>,
    candidates: usize,
    requests: usize,
    threads: usize,
    max_batch_tokens: usize,
    overload_limit: usize,
    overload_clients: usize,
}

fn parse_options() -> Options {
    let mut o = Options {
        model: String::new(),
        seconds: 10.0,
        clients: vec![1, 4, 16],
        candidates: 4,
        requests: 64,
        threads: 0,
        max_batch_tokens: EngineOptions::default().max_batch_tokens,
        overload_limit: 4,
        overload_clients: 32,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.chunks(2);
    while let Some([key, value]) = it.next() {
        let number = || value.parse::<usize>().unwrap_or_else(|e| panic!("{key} {value}: {e}"));
        match key.as_str() {
            "--model" => o.model = value.clone(),
            "--seconds" => o.seconds = value.parse().expect("--seconds: a number"),
            "--clients" => o.clients = value.split(',').map(|c| c.trim().parse().expect("--clients: 1,4,16")).collect(),
            "--candidates" => o.candidates = number().max(2),
            "--requests" => o.requests = number().max(1),
            "--threads" => o.threads = number(),
            "--max-batch-tokens" => o.max_batch_tokens = number().max(1),
            "--overload-limit" => o.overload_limit = number().max(1),
            "--overload-clients" => o.overload_clients = number().max(1),
            _ => panic!("unknown option {key}"),
        }
    }
    assert!(!o.model.is_empty(), "usage: server_load --model DIR [--seconds S] [--clients 1,4,16] ...");
    o
}

const WORDS: &[&str] = &[
    "the",
    "model",
    "answer",
    "question",
    "water",
    "boils",
    "at",
    "sea",
    "level",
    "degrees",
    "is",
    "a",
    "of",
    "and",
    "to",
    "in",
    "that",
    "it",
    "for",
    "on",
    "with",
    "as",
    "was",
    "be",
    "by",
    "this",
    "an",
    "which",
    "or",
    "from",
    "quickly",
    "because",
    "temperature",
    "pressure",
    "Paris",
    "capital",
    "France",
    "history",
    "I",
    "think",
    "not",
    "sure",
    "maybe",
    "clearly",
    "correct",
    "wrong",
    "explain",
    "why",
    "how",
    "what",
    "when",
];

fn sentence(rng: &mut SplitMix64, min: u64, max: u64) -> String {
    let n = min + rng.below(max - min + 1);
    let words: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len() as u64) as usize]).collect();
    format!("{}.", words.join(" "))
}

/// The workload: `requests` rank requests of `candidates` candidates each, fixed by a seed.
fn workload(requests: usize, candidates: usize) -> Vec<RankRequest> {
    let mut rng = SplitMix64::new(2024);
    (0..requests)
        .map(|_| RankRequest {
            instruction: None,
            source: sentence(&mut rng, 6, 30),
            candidates: (0..candidates).map(|_| sentence(&mut rng, 4, 50)).collect(),
        })
        .collect()
}

/// A server on its own thread and runtime; stopped (gracefully) on drop.
struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(engine: Arc<Engine>, options: ServerOptions) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let shutdown = async {
                    let _ = stopped.await;
                };
                pairrm_server::serve(listener, options, move || Ok(engine), shutdown).await.unwrap();
            });
        });
        let server = Server { url, stop: Some(stop), thread: Some(thread) };
        for _ in 0..2000 {
            if agent().get(format!("{}/health", server.url)).call().is_ok_and(|r| r.status() == 200) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the server did not become ready");
    }

    fn metrics(&self) -> String {
        agent().get(format!("{}/metrics", self.url)).call().unwrap().body_mut().read_to_string().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// A metric's value (`series` exactly as exposed), 0 if absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// What the clients of one phase saw.
#[derive(Default)]
struct Phase {
    latencies: Vec<Duration>,
    passes: usize,
    rejected: usize,
    wrong: usize,
    failed: Vec<String>,
    elapsed: Duration,
}

impl Phase {
    fn percentile(&self, p: f64) -> f64 {
        let mut l: Vec<f64> = self.latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        l.sort_by(f64::total_cmp);
        if l.is_empty() {
            return f64::NAN;
        }
        l[((l.len() as f64 - 1.0) * p).round() as usize]
    }
}

/// `clients` closed-loop clients send the workload's requests to `url` for `seconds`.
fn run_phase(
    url: &str,
    bodies: &[Value],
    expected: &[Vec<f32>],
    passes: &[usize],
    clients: usize,
    seconds: f64,
) -> Phase {
    let stop = AtomicBool::new(false);
    let phase = Mutex::new(Phase::default());
    let start = Instant::now();
    std::thread::scope(|s| {
        for client in 0..clients {
            let (stop, phase) = (&stop, &phase);
            s.spawn(move || {
                let agent = agent();
                let mut seen = Phase::default();
                for k in 0..MAX_REQUESTS_PER_CLIENT {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = (client + k * clients) % bodies.len();
                    let sent = Instant::now();
                    let mut response = agent.post(format!("{url}/rank")).send_json(&bodies[i]).unwrap();
                    let status = response.status().as_u16();
                    let answer: Value = response.body_mut().read_json().unwrap();
                    match status {
                        200 => {
                            seen.latencies.push(sent.elapsed());
                            seen.passes += passes[i];
                            let scores: Vec<f32> = answer["scores"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|x| x.as_f64().unwrap() as f32)
                                .collect();
                            if scores != expected[i] {
                                seen.wrong += 1;
                            }
                        }
                        429 => {
                            seen.rejected += 1;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        _ => seen.failed.push(format!("{status}: {answer}")),
                    }
                }
                let mut all = phase.lock().unwrap();
                all.latencies.extend(seen.latencies);
                all.passes += seen.passes;
                all.rejected += seen.rejected;
                all.wrong += seen.wrong;
                all.failed.extend(seen.failed);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let mut phase = phase.into_inner().unwrap();
    phase.elapsed = start.elapsed();
    phase
}

fn main() {
    let o = parse_options();
    let mut options = EngineOptions { threads: o.threads, ..Default::default() };
    options.max_batch_tokens = o.max_batch_tokens;
    let engine = Arc::new(Engine::load(&o.model, &OpenOptions::default(), options).expect("loading the model"));
    let requests = workload(o.requests, o.candidates);
    let passes: Vec<usize> = requests.iter().map(|r| r.candidates.len() * (r.candidates.len() - 1)).collect();
    let total_passes: usize = passes.iter().sum();
    let tokens: Vec<usize> = requests
        .iter()
        .flat_map(|r| {
            let source = r.source.clone();
            r.candidates.iter().flat_map(move |a| {
                let source = source.clone();
                r.candidates.iter().filter(move |b| *b != a).map(move |b| (source.clone(), a.clone(), b.clone()))
            })
        })
        .map(|(s, a, b)| engine.encode(&s, &a, &b).unwrap().ids.len())
        .collect();
    let mean_tokens = tokens.iter().sum::<usize>() as f64 / tokens.len() as f64;

    println!("# Server load test\n");
    println!(
        "model `{}` ({} threads), workload: {} /rank requests of {} candidates ({} passes each, {:.0} tokens per pass on average), {} s per phase, max-batch-tokens {}\n",
        o.model,
        engine.threads(),
        o.requests,
        o.candidates,
        passes[0],
        mean_tokens,
        o.seconds,
        o.max_batch_tokens
    );

    // Offline: the whole workload in one library call, repeated.
    let start = Instant::now();
    let mut rounds = 0;
    let mut expected: Vec<Vec<f32>> = vec![];
    while rounds == 0 || start.elapsed().as_secs_f64() < o.seconds {
        expected = judge::rank(&*engine, &requests).into_iter().map(|r| r.unwrap().scores).collect();
        rounds += 1;
    }
    let offline = (rounds * total_passes) as f64 / start.elapsed().as_secs_f64();

    // Offline, one request per library call (what one client gets, without HTTP and queue).
    let start = Instant::now();
    let mut single = 0;
    while single == 0 || (start.elapsed().as_secs_f64() < o.seconds && single < MAX_REQUESTS_PER_CLIENT) {
        let i = single % requests.len();
        let scores = judge::rank(&*engine, std::slice::from_ref(&requests[i])).remove(0).unwrap().scores;
        assert_eq!(scores, expected[i], "a request alone must give the batched scores");
        single += 1;
    }
    let single_elapsed = start.elapsed().as_secs_f64();
    let single_throughput = (0..single).map(|k| passes[k % requests.len()]).sum::<usize>() as f64 / single_elapsed;

    let bodies: Vec<Value> = requests.iter().map(|r| json!({"source": r.source, "candidates": r.candidates})).collect();
    let server =
        Server::start(engine.clone(), ServerOptions { max_batch_tokens: o.max_batch_tokens, ..Default::default() });
    run_phase(&server.url, &bodies, &expected, &passes, 2, 0.5); // warm-up
    let before = server.metrics();

    println!("| run | clients | requests | passes/s | vs offline | p50 ms | p99 ms | mean passes/batch |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| offline, whole workload per library call | – | {} | {offline:.1} | 100% | – | – | – |",
        rounds * o.requests
    );
    println!(
        "| offline, one request per library call | 1 | {single} | {single_throughput:.1} | {:.0}% | {:.1} | – | {:.1} |",
        100.0 * single_throughput / offline,
        1000.0 * single_elapsed / single as f64,
        passes[0] as f64
    );
    let mut problems = vec![];
    let mut last = before;
    for &clients in &o.clients {
        let phase = run_phase(&server.url, &bodies, &expected, &passes, clients, o.seconds);
        let now = server.metrics();
        let batches = metric(&now, "pairrm_batch_pairs_count") - metric(&last, "pairrm_batch_pairs_count");
        let batch_passes = metric(&now, "pairrm_batch_pairs_sum") - metric(&last, "pairrm_batch_pairs_sum");
        last = now;
        let throughput = phase.passes as f64 / phase.elapsed.as_secs_f64();
        println!(
            "| served | {clients} | {} | {throughput:.1} | {:.0}% | {:.1} | {:.1} | {:.1} |",
            phase.latencies.len(),
            100.0 * throughput / offline,
            phase.percentile(0.5),
            phase.percentile(0.99),
            batch_passes / batches.max(1.0),
        );
        if phase.wrong > 0 || !phase.failed.is_empty() || phase.rejected > 0 {
            problems.push(format!(
                "{clients} clients: {} wrong answers, {} rejected, failures: {:?}",
                phase.wrong, phase.rejected, phase.failed
            ));
        }
    }
    drop(server);

    // Overload: a low concurrency limit and many clients.
    let overload = Server::start(
        engine.clone(),
        ServerOptions {
            max_batch_tokens: o.max_batch_tokens,
            max_concurrent_requests: o.overload_limit,
            ..Default::default()
        },
    );
    let phase = run_phase(&overload.url, &bodies, &expected, &passes, o.overload_clients, o.seconds);
    let text = overload.metrics();
    let served_ok = metric(&text, r#"pairrm_requests_total{route="/rank",status="200"}"#) as usize;
    let served_429 = metric(&text, r#"pairrm_requests_total{route="/rank",status="429"}"#) as usize;
    let statuses: HashMap<&str, usize> = [("200", phase.latencies.len()), ("429", phase.rejected)].into();
    println!(
        "\nOverload: --max-concurrent-requests {} and {} clients for {} s: {} accepted (all answered, {} wrong), {} answered 429, {} other failures; \
         the server counted {served_ok} answered 200 and {served_429} answered 429; accepted p50 {:.1} ms, p99 {:.1} ms, {:.1} passes/s ({:.0}% of offline).",
        o.overload_limit,
        o.overload_clients,
        o.seconds,
        statuses["200"],
        phase.wrong,
        statuses["429"],
        phase.failed.len(),
        phase.percentile(0.5),
        phase.percentile(0.99),
        phase.passes as f64 / phase.elapsed.as_secs_f64(),
        100.0 * phase.passes as f64 / phase.elapsed.as_secs_f64() / offline,
    );
    if phase.rejected == 0 {
        problems.push("overload: no request was answered 429".into());
    }
    // Every request warm-up aside was counted by both sides: nothing accepted was lost.
    if phase.wrong > 0 || !phase.failed.is_empty() || served_ok != phase.latencies.len() || served_429 != phase.rejected
    {
        problems.push(format!(
            "overload: {} wrong, failures {:?}, server counted {served_ok}/{served_429} vs clients {}/{}",
            phase.wrong,
            phase.failed,
            phase.latencies.len(),
            phase.rejected
        ));
    }
    drop(overload);
    if problems.is_empty() {
        println!("\nAll answers matched the offline scores bit for bit; no accepted request was lost.");
    } else {
        println!("\nPROBLEMS:\n- {}", problems.join("\n- "));
        std::process::exit(1);
    }
}
