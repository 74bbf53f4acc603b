//! Starting and stopping: bind, load the model in the background (`/health` answers 503 until it
//! is loaded), serve, and on shutdown drain the requests in flight (up to the shutdown deadline)
//! before returning.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::backend::Backend;
use crate::connections::{self, Limits};
use crate::edge::{self, ApiKey};
use crate::state::AppState;
use crate::{openapi, routes};

/// The server's limits, timeouts and access rules. The defaults suit a single PairRM on a CPU.
/// `None` for a timeout means no limit.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Most tokens in one batch of forward passes (a longer single pass still runs, alone).
    pub max_batch_tokens: usize,
    /// Most scoring requests processed at once; more are answered 429 at once.
    pub max_concurrent_requests: usize,
    /// Most pairs (`/compare`), candidates (`/rank`) or texts (`/rerank`) in one request; more
    /// are answered 413.
    pub max_client_batch_size: usize,
    /// Largest request body in bytes; larger ones are answered 413 (a declared `Content-Length`
    /// at once, a chunked body as soon as it passes the limit).
    pub payload_limit: usize,
    /// Longest a scoring request may take; it is then answered 504 and its queued work dropped.
    pub request_timeout: Option<Duration>,
    /// Longest a client may take to send a request head (request line and headers), from the
    /// connection's opening or from the head's first byte on a kept-alive connection; the
    /// connection is then closed.
    pub header_timeout: Option<Duration>,
    /// Longest a client may take to send a request body once its head is read; the request is
    /// then answered 408 and the connection closed.
    pub body_timeout: Option<Duration>,
    /// Longest a kept-alive connection may stay idle between an answer and the next request; it
    /// is then closed.
    pub keep_alive_timeout: Option<Duration>,
    /// Most connections open at once; more wait (in the listener's backlog) until one closes.
    pub max_connections: usize,
    /// On shutdown, how long the requests in flight may take to finish before their
    /// connections are cut.
    pub shutdown_timeout: Option<Duration>,
    /// With a key, every route but `/health` and the static pages (`/`, `/docs`,
    /// `/openapi.json`) needs `Authorization: Bearer <key>`; others are answered 401.
    pub api_key: Option<ApiKey>,
    /// Origins whose web pages may call the API (CORS), e.g. `https://example.org`; `*` for any.
    /// Empty: no CORS headers, so browsers refuse cross-origin calls.
    pub cors_origins: Vec<String>,
    /// The model name `/info` reports instead of the backend's own.
    pub served_model_name: Option<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_batch_tokens: pairrm::EngineOptions::default().max_batch_tokens,
            max_concurrent_requests: 512,
            max_client_batch_size: 32,
            payload_limit: 2_000_000,
            request_timeout: Some(Duration::from_secs(300)),
            header_timeout: Some(Duration::from_secs(10)),
            body_timeout: Some(Duration::from_secs(30)),
            keep_alive_timeout: Some(Duration::from_secs(30)),
            max_connections: 512,
            shutdown_timeout: Some(Duration::from_secs(30)),
            api_key: None,
            cors_origins: Vec::new(),
            served_model_name: None,
        }
    }
}

impl ServerOptions {
    /// Checks that every limit allows something (counts and sizes at least 1, timeouts above
    /// zero) and that the CORS origins are origins.
    ///
    /// # Errors
    /// The first option that does not, by name.
    pub fn check(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("max_batch_tokens", self.max_batch_tokens),
            ("max_concurrent_requests", self.max_concurrent_requests),
            ("max_client_batch_size", self.max_client_batch_size),
            ("payload_limit", self.payload_limit),
            ("max_connections", self.max_connections),
        ] {
            anyhow::ensure!(value >= 1, "{name} must be at least 1, got {value}");
        }
        // Tokio's semaphores hold at most this many permits.
        for (name, value) in
            [("max_concurrent_requests", self.max_concurrent_requests), ("max_connections", self.max_connections)]
        {
            anyhow::ensure!(value <= MAX_PERMITS, "{name} must be at most {MAX_PERMITS}, got {value}");
        }
        for (name, value) in [
            ("request_timeout", self.request_timeout),
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("keep_alive_timeout", self.keep_alive_timeout),
            ("shutdown_timeout", self.shutdown_timeout),
        ] {
            if let Some(t) = value {
                anyhow::ensure!(
                    !t.is_zero() && t <= MAX_TIMEOUT,
                    "{name} must be above 0 and at most {} s (None: no limit), got {t:?}",
                    MAX_TIMEOUT.as_secs()
                );
            }
        }
        cors_layer(&self.cors_origins)?;
        Ok(())
    }
}

/// The longest timeout: a week (longer is no limit in practice, and timers cannot go much
/// further).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most requests or connections allowed at once.
pub const MAX_PERMITS: usize = 1 << 20;

/// The CORS layer for `origins` (`None` when empty).
fn cors_layer(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| {
                let origin = o.trim_end_matches('/');
                let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
                let valid =
                    host.is_some_and(|h| !h.is_empty() && !h.contains('/') && h.bytes().all(|b| b.is_ascii_graphic()));
                anyhow::ensure!(valid, "cors origin {o:?} is not an origin such as https://example.org or *");
                HeaderValue::from_str(origin).with_context(|| format!("cors origin {o:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(values)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .max_age(Duration::from_secs(3600)),
    ))
}

/// The application: every route over `state`, behind the API key, body and CORS rules.
fn router(state: AppState) -> anyhow::Result<Router> {
    let protected = Router::new()
        .route("/info", get(routes::info))
        .route("/metrics", get(routes::metrics))
        .route("/compare", post(routes::compare))
        .route("/rank", post(routes::rank))
        .route("/rerank", post(routes::rerank))
        .route_layer(from_fn_with_state(state.clone(), edge::read_body))
        .route_layer(from_fn_with_state(state.clone(), edge::authorize));
    let open = Router::new()
        .route("/", get(openapi::playground))
        .route("/docs", get(openapi::docs))
        .route("/openapi.json", get(openapi::openapi))
        .route("/health", get(routes::health))
        .route_layer(from_fn_with_state(state.clone(), edge::read_body));
    let app = open
        .merge(protected)
        .route_layer(from_fn_with_state(state.clone(), routes::track))
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        // The body is read whole (and limited) at the edge.
        .layer(DefaultBodyLimit::disable());
    let app = match cors_layer(&state.options().cors_origins)? {
        Some(cors) => app.layer(cors),
        None => app,
    };
    Ok(app.with_state(state))
}

/// The warning for a server reachable from other machines without an API key.
fn exposure_warning(ip: IpAddr, has_key: bool) -> Option<String> {
    (!ip.is_loopback() && !has_key).then(|| {
        format!(
            "listening on {ip}, reachable from other machines, without an API key: anyone who can reach it can \
             use it; set --api-key (PAIRRM_API_KEY) or listen on 127.0.0.1"
        )
    })
}

/// Serves on `listener` until `shutdown` completes, then stops accepting connections, finishes
/// the requests in flight (cutting the connections still open after
/// [`ServerOptions::shutdown_timeout`]) and returns.
///
/// The model is made by `load` in a blocking thread while the server already answers: until it
/// is loaded, `/health` and the scoring routes answer 503. Logs `listening on http://ADDR` when
/// bound and `ready` once loaded.
///
/// # Errors
/// When an option is invalid ([`ServerOptions::check`]), or `load` fails (the server then stops
/// at once).
pub async fn serve<B, L, S>(listener: TcpListener, options: ServerOptions, load: L, shutdown: S) -> anyhow::Result<()>
where
    B: Backend,
    L: FnOnce() -> anyhow::Result<B> + Send + 'static,
    S: Future<Output = ()> + Send + 'static,
{
    options.check()?;
    let addr = listener.local_addr().context("reading the listening address")?;
    let limits = Limits {
        header_timeout: options.header_timeout,
        keep_alive_timeout: options.keep_alive_timeout,
        max_connections: options.max_connections,
        shutdown_timeout: options.shutdown_timeout,
    };
    if let Some(warning) = exposure_warning(addr.ip(), options.api_key.is_some()) {
        tracing::warn!("{warning}");
    }
    let state = AppState::new(options);
    let app = router(state.clone())?;
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
    connections::serve(listener, app, limits, stop).await;
    loader.abort();
    let closing = state.clone();
    tokio::task::spawn_blocking(move || closing.close()).await.context("stopping the batching thread")?;
    if let Some(e) = load_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        return Err(e.context("loading the model"));
    }
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
/// When an option is invalid, the address cannot be bound, or the model does not load.
pub fn run<B, L>(host: &str, port: u16, options: ServerOptions, load: L) -> anyhow::Result<()>
where
    B: Backend,
    L: FnOnce() -> anyhow::Result<B> + Send + 'static,
{
    options.check()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachable_without_a_key_is_warned_about() {
        let warning = exposure_warning("0.0.0.0".parse().unwrap(), false).unwrap();
        assert!(warning.contains("without an API key") && warning.contains("--api-key"), "{warning}");
        assert!(exposure_warning("192.168.1.2".parse().unwrap(), false).is_some());
        assert!(exposure_warning("::".parse().unwrap(), false).is_some());
        assert!(exposure_warning("0.0.0.0".parse().unwrap(), true).is_none());
        assert!(exposure_warning("127.0.0.1".parse().unwrap(), false).is_none());
        assert!(exposure_warning("::1".parse().unwrap(), false).is_none());
    }

    #[test]
    fn defaults_pass_their_own_check_and_origins_are_checked() {
        ServerOptions::default().check().unwrap();
        let with = |origins: &[&str]| {
            ServerOptions { cors_origins: origins.iter().map(|o| o.to_string()).collect(), ..Default::default() }
                .check()
        };
        assert!(with(&["https://a.example", "http://localhost:3000", "https://b.example/"]).is_ok());
        assert!(with(&["*"]).is_ok());
        for bad in ["a.example", "https://", "https://a.example/path", "ftp://a.example", "https://a b"] {
            assert!(with(&[bad]).is_err(), "{bad}");
        }
    }
}
