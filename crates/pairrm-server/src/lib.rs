//! PairRM over HTTP, shaped like text-embeddings-inference: request → API key → JSON body (read
//! whole under the size and time limits) → validate → encode each pair once → one shared queue of
//! model inputs → batches by token budget → engine → response. The `pairrm serve` command.
//!
//! - Scoring routes `POST /compare`, `/rank`, `/rerank` run the library's judge functions
//!   ([`pairrm::judge`]) unchanged, over a scorer that encodes and queues their forward passes:
//!   concurrent requests share batches, and every number is the one the library and the CLI give.
//! - Service routes: `GET /health` (200 once the model is loaded), `/info`, `/metrics`
//!   (Prometheus), `/openapi.json`, `/docs`, and the playground at `/`.
//! - Limits ([`ServerOptions`]): over one, a request is answered 408, 413 or 429; a request whose
//!   client goes away, or that times out (504), has its queued work dropped; a connection that
//!   stalls (head, idle keep-alive) is closed; at most `max_connections` are open; on shutdown the
//!   requests in flight are finished first, up to a deadline.
//! - Access: an optional API key ([`ApiKey`], Bearer), JSON-only POST bodies, CORS only for the
//!   origins given.
//!
//! Start it with [`run`] (its own runtime, SIGTERM/Ctrl-C) or [`serve`] (your runtime, listener
//! and shutdown signal) over any [`Backend`]; [`pairrm::Engine`] is one.

mod api;
mod backend;
mod batcher;
mod connections;
mod edge;
mod error;
mod json;
mod metrics;
mod openapi;
mod routes;
mod server;
mod state;

pub use backend::{Backend, ModelInfo};
pub use edge::ApiKey;
pub use error::{ErrorBody, ErrorType};
pub use server::{run, serve, shutdown_signal, ServerOptions, MAX_PERMITS, MAX_TIMEOUT};

/// The OpenAPI description of the API, as served at `/openapi.json`.
pub fn openapi_json() -> &'static str {
    openapi::openapi_json()
}
