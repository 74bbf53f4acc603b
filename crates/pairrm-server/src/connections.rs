//! Connections: accepted under `--max-connections`, each watched by a deadline that depends on
//! what it is doing, and all of them stopped within `--shutdown-timeout` on shutdown.
//!
//! A connection is always in one of three phases:
//! - **waiting** for the first byte of a request: a new connection has `--header-timeout` from
//!   its opening to send a complete request head, a kept-alive one `--keep-alive-timeout` from
//!   its last answer to start the next request;
//! - **reading a head** (request line and headers): `--header-timeout` from its first byte;
//! - **busy** with a request: no deadline here (the body has `--body-timeout`, the work
//!   `--request-timeout`, both answered with an error by the request's own path).
//!
//! A connection past its deadline is closed. On shutdown the listener closes, waiting
//! connections close at once, busy ones finish their request and close, and whatever is still
//! open at the shutdown deadline is cut.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// The connection limits (see [`crate::ServerOptions`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_timeout: Option<Duration>,
    pub(crate) keep_alive_timeout: Option<Duration>,
    pub(crate) max_connections: usize,
    pub(crate) shutdown_timeout: Option<Duration>,
}

/// Accepts connections on `listener` and serves `app` on each until `stop` completes; then
/// closes the listener and stops every connection as the module describes.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    let mut at_limit = false;
    loop {
        while connections.try_join_next().is_some() {}
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                at_limit = false;
                permit
            }
            Err(_) => {
                if !at_limit {
                    tracing::warn!(
                        "{} connections are open (--max-connections): new ones wait until one closes",
                        limits.max_connections
                    );
                    at_limit = true;
                }
                tokio::select! {
                    () = &mut stop => break,
                    permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                }
            }
        };
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                connections.spawn(connection(stream, app.clone(), limits, closing_rx.clone(), permit));
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of file descriptors or similar: wait before trying again rather than spin.
                tracing::error!("accepting a connection: {e}");
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let open = connections.len();
    if open > 0 {
        tracing::info!(connections = open, "closing the connections (requests in flight are finished first)");
    }
    let drained = async { while connections.join_next().await.is_some() {} };
    match limits.shutdown_timeout {
        Some(limit) => {
            if tokio::time::timeout(limit, drained).await.is_err() {
                tracing::warn!(
                    connections = connections.len(),
                    "cutting the connections still open {:.3} s after shutdown began (--shutdown-timeout)",
                    limit.as_secs_f64()
                );
                connections.shutdown().await;
            }
        }
        None => drained.await,
    }
}

/// Errors of one connection that do not concern the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, passes its deadline, or is stopped by shutdown.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    // Answers are written whole; waiting to coalesce them only adds latency.
    let _ = stream.set_nodelay(true);
    let clock = Arc::new(Clock::new(limits));
    let io = TokioIo::new(Watched { stream, clock: clock.clone() });
    let service = {
        let clock = clock.clone();
        service_fn(move |request: hyper::Request<Incoming>| {
            clock.busy();
            let (app, clock) = (app.clone(), clock.clone());
            async move {
                let response = app.oneshot(request).await;
                clock.answered();
                response
            }
        })
    };
    let conn = http1::Builder::new().header_read_timeout(None).serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let deadline = clock.deadline();
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            () = clock.changed.notified() => {}
            () = sleep_until(deadline) => {
                if clock.deadline().is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!("closing a connection past its deadline ({})", clock.what());
                    return;
                }
            }
            _ = closing.wait_for(|&closing| closing), if !draining => {
                if clock.is_waiting() {
                    return;
                }
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// Completes at `deadline`, never without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What a connection is doing, and its deadline.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No byte of the next request yet. `restart`: the head's own clock starts at the first byte
    /// (a kept-alive connection); else it started with the connection.
    Waiting { deadline: Option<Instant>, restart: bool },
    /// Part of a request head has arrived.
    Head { deadline: Option<Instant> },
    /// A request is being answered.
    Busy,
}

/// A connection's phase, moved by its reads and its requests; `changed` wakes its driver.
struct Clock {
    phase: Mutex<Phase>,
    changed: Notify,
    limits: Limits,
}

impl Clock {
    /// A new connection: waiting, with the head's clock running.
    fn new(limits: Limits) -> Self {
        let deadline = limits.header_timeout.map(|t| Instant::now() + t);
        Clock { phase: Mutex::new(Phase::Waiting { deadline, restart: false }), changed: Notify::new(), limits }
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
        self.changed.notify_one();
    }

    fn get(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: a waiting connection is now reading a head.
    fn bytes_arrived(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Waiting { deadline, restart } = *phase {
            let deadline = if restart { self.limits.header_timeout.map(|t| Instant::now() + t) } else { deadline };
            *phase = Phase::Head { deadline };
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// A request's head is complete: it is being answered.
    fn busy(&self) {
        self.set(Phase::Busy);
    }

    /// A request is answered: the connection waits for the next one.
    fn answered(&self) {
        let deadline = self.limits.keep_alive_timeout.map(|t| Instant::now() + t);
        self.set(Phase::Waiting { deadline, restart: true });
    }

    fn deadline(&self) -> Option<Instant> {
        match self.get() {
            Phase::Waiting { deadline, .. } | Phase::Head { deadline } => deadline,
            Phase::Busy => None,
        }
    }

    fn is_waiting(&self) -> bool {
        matches!(self.get(), Phase::Waiting { .. })
    }

    /// The limit a connection past its deadline broke.
    fn what(&self) -> &'static str {
        match self.get() {
            Phase::Waiting { restart: true, .. } => "--keep-alive-timeout",
            Phase::Waiting { restart: false, .. } | Phase::Head { .. } => "--header-timeout",
            Phase::Busy => "none",
        }
    }
}

/// The connection's socket, telling its clock when bytes arrive.
struct Watched {
    stream: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
