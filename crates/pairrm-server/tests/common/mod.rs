//! Shared helpers of the server's integration tests: the tiny fixture model, a server on an
//! ephemeral loopback port, an HTTP client, and a backend that can hold its batches.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use pairrm::checkpoint::OpenOptions;
use pairrm::input::PairInput;
use pairrm::judge::Pair;
use pairrm::{Engine, EngineOptions};
use pairrm_server::{Backend, ModelInfo, ServerOptions};
use serde_json::Value;

/// The committed tiny checkpoint (original layout).
pub fn tiny_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/tiny-original")
}

/// The tiny model loaded as an engine.
pub fn tiny_engine() -> Engine {
    Engine::load(tiny_model().to_str().unwrap(), &OpenOptions::default(), EngineOptions::default()).unwrap()
}

/// A server running on its own thread and runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Serves on 127.0.0.1 (any free port) with `options`; the model comes from `load`.
    pub fn start<B: Backend>(
        options: ServerOptions,
        load: impl FnOnce() -> anyhow::Result<B> + Send + 'static,
    ) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                pairrm_server::serve(listener, options, load, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        TestServer { addr, stop: Some(stop), thread: Some(thread) }
    }

    /// The tiny model, default options.
    pub fn tiny() -> Self {
        Self::start(ServerOptions::default(), || Ok(tiny_engine()))
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts the shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and returns what `serve` returned.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        self.thread.take().unwrap().join().unwrap()
    }

    /// Waits for the server to stop by itself and returns what `serve` returned.
    pub fn join(mut self) -> anyhow::Result<()> {
        self.thread.take().unwrap().join().unwrap()
    }

    /// Waits (bounded) until `/health` answers 200.
    pub fn wait_ready(&self) {
        wait_for("the server to be ready", || get(&self.url("/health")).0 == 200);
    }

    /// The current value of a metric line (`name{labels}` exactly as exposed), 0 if absent.
    pub fn metric(&self, series: &str) -> f64 {
        let (_, text) = get_text(&self.url("/metrics"));
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// Polls `done` every 5 ms for up to 30 s; panics naming `what` if it never holds.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// POSTs `body` as JSON; (status, JSON answer).
pub fn post(url: &str, body: &Value) -> (u16, Value) {
    let mut response = agent().post(url).send_json(body).unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().unwrap())
}

/// POSTs raw bytes as JSON; (status, JSON answer).
pub fn post_raw(url: &str, body: &[u8]) -> (u16, Value) {
    let mut response = agent().post(url).header("content-type", "application/json").send(body).unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().with_config().limit(u64::MAX).read_json().unwrap())
}

/// GETs a JSON answer; (status, JSON).
pub fn get(url: &str) -> (u16, Value) {
    let mut response = agent().get(url).call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().unwrap())
}

/// GETs a text answer; (status, text).
pub fn get_text(url: &str) -> (u16, String) {
    let mut response = agent().get(url).call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// A backend that runs `inner` but holds every batch until [`Gated::open`], and records the
/// batches it ran (as the left texts of their pairs).
pub struct Gated<B> {
    inner: B,
    open: Mutex<bool>,
    opened: Condvar,
    /// Batches started (held or not).
    entered: Mutex<usize>,
    batches: Mutex<Vec<Vec<PairInput>>>,
}

impl<B: Backend> Gated<B> {
    /// Closed at first.
    pub fn new(inner: B) -> Arc<Self> {
        Arc::new(Gated {
            inner,
            open: Mutex::new(false),
            opened: Condvar::new(),
            entered: Mutex::new(0),
            batches: Mutex::new(vec![]),
        })
    }

    /// Lets every batch through, now and later.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Batches started so far.
    pub fn entered(&self) -> usize {
        *self.entered.lock().unwrap()
    }

    /// The batches run so far.
    pub fn batches(&self) -> Vec<Vec<PairInput>> {
        self.batches.lock().unwrap().clone()
    }
}

/// Shares a [`Gated`] backend with the server.
pub struct Shared<B>(pub Arc<Gated<B>>);

impl<B: Backend> Backend for Shared<B> {
    fn encode(&self, pairs: &[Pair]) -> Vec<pairrm::Result<PairInput>> {
        self.0.inner.encode(pairs)
    }

    fn logits(&self, inputs: &[&PairInput]) -> Vec<pairrm::Result<f32>> {
        *self.0.entered.lock().unwrap() += 1;
        let mut open = self.0.open.lock().unwrap();
        while !*open {
            open = self.0.opened.wait(open).unwrap();
        }
        drop(open);
        self.0.batches.lock().unwrap().push(inputs.iter().map(|i| (*i).clone()).collect());
        self.0.inner.logits(inputs)
    }

    fn info(&self) -> ModelInfo {
        self.0.inner.info()
    }
}

/// Opens a gate when dropped, so that a failing test does not leave threads blocked.
pub struct OpenOnDrop<B: Backend>(pub Arc<Gated<B>>);

impl<B: Backend> Drop for OpenOnDrop<B> {
    fn drop(&mut self) {
        self.0.open();
    }
}
