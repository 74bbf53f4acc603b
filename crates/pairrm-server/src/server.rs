//! Starting and stopping: bind, load the model in the background (`/health` answers 503 until it
//! is loaded), serve, and on shutdown drain the requests in flight before returning.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::backend::Backend;
use crate::state::AppState;
use crate::{openapi, routes};

/// The server's limits. The defaults suit a single PairRM on a CPU.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerOptions {
    /// Most tokens in one batch of forward passes (a longer single pass still runs, alone).
    pub max_batch_tokens: usize,
    /// Most scoring requests processed at once; more are answered 429 at once.
    pub max_concurrent_requests: usize,
    /// Most pairs (`/compare`), candidates (`/rank`) or texts (`/rerank`) in one request; more
    /// are answered 413.
    pub max_client_batch_size: usize,
    /// Largest request body in bytes; larger ones are answered 413.
    pub payload_limit: usize,
    /// Longest a scoring request may take; it is then answered 504 and its queued work dropped.
    /// `None`: no limit.
    pub request_timeout: Option<Duration>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_batch_tokens: pairrm::EngineOptions::default().max_batch_tokens,
            max_concurrent_requests: 512,
            max_client_batch_size: 32,
            payload_limit: 2_000_000,
            request_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// The application: every route over `state`.
fn router(state: AppState) -> Router {
    let payload_limit = state.options().payload_limit;
    Router::new()
        .route("/", get(openapi::playground))
        .route("/docs", get(openapi::docs))
        .route("/openapi.json", get(openapi::openapi))
        .route("/health", get(routes::health))
        .route("/info", get(routes::info))
        .route("/metrics", get(routes::metrics))
        .route("/compare", post(routes::compare))
        .route("/rank", post(routes::rank))
        .route("/rerank", post(routes::rerank))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), routes::track))
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(payload_limit))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` completes, then stops accepting connections, finishes
/// the requests in flight and returns.
///
/// The model is made by `load` in a blocking thread while the server already answers: until it
/// is loaded, `/health` and the scoring routes answer 503. Logs `listening on http://ADDR` when
/// bound and `ready` once loaded.
///
/// # Errors
/// When `load` fails (the server then stops at once), or the listener fails.
pub async fn serve<B, L, S>(listener: TcpListener, options: ServerOptions, load: L, shutdown: S) -> anyhow::Result<()>
where
    B: Backend,
    L: FnOnce() -> anyhow::Result<B> + Send + 'static,
    S: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr().context("reading the listening address")?;
    let state = AppState::new(options);
    tracing::info!("listening on http://{addr} (loading the model)");

    let load_failed = Arc::new(Notify::new());
    let load_error: Arc<Mutex<Option<anyhow::Error>>> = Arc::default();
    let loader = {
        let (state, load_failed, load_error) = (state.clone(), load_failed.clone(), load_error.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let loaded = tokio::task::spawn_blocking(load).await.map_err(anyhow::Error::from).and_then(|r| r);
            match loaded {
                Ok(backend) => {
                    let info = backend.info();
                    state.set_ready(Arc::new(backend));
                    tracing::info!(model = %info.model_id, threads = info.threads, elapsed = ?start.elapsed(), "ready on http://{addr}");
                }
                Err(e) => {
                    *load_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                    load_failed.notify_one();
                }
            }
        })
    };

    let stop = async move {
        tokio::select! {
            () = shutdown => tracing::info!("shutting down: finishing the requests in flight"),
            () = load_failed.notified() => {}
        }
    };
    let served = axum::serve(listener, router(state.clone())).with_graceful_shutdown(stop).await;
    loader.abort();
    let closing = state.clone();
    tokio::task::spawn_blocking(move || closing.close()).await.context("stopping the batching thread")?;
    if let Some(e) = load_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        return Err(e.context("loading the model"));
    }
    served.context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Binds `host:port` and serves until SIGTERM or Ctrl-C, on a runtime of its own: what
/// `pairrm serve` runs.
///
/// # Errors
/// When the address cannot be bound, the model does not load, or the server fails.
pub fn run<B, L>(host: &str, port: u16, options: ServerOptions, load: L) -> anyhow::Result<()>
where
    B: Backend,
    L: FnOnce() -> anyhow::Result<B> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pairrm-http")
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async {
        let listener = TcpListener::bind((host, port)).await.with_context(|| format!("binding {host}:{port}"))?;
        serve(listener, options, load, shutdown_signal()).await
    });
    // Every request is answered by now; only a model still loading (shutdown during the load)
    // can be left, and it need not finish.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}
