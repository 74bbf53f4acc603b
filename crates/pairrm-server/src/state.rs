//! The state the handlers share: options, metrics, the concurrency limit and, once the model is
//! loaded, the batching queue. [`AppState::score`] is the one way a request reaches the model.

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use crate::backend::{Backend, ModelInfo};
use crate::batcher::{Batcher, QueueScorer};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::ServerOptions;

/// Cheap to clone: everything is behind one `Arc`.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

struct Inner {
    options: ServerOptions,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    ready: OnceLock<Ready>,
}

/// The loaded model and its queue.
struct Ready {
    info: ModelInfo,
    batcher: Batcher,
}

/// Decrements the in-flight gauge when the request ends, however it ends.
struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

impl AppState {
    /// A server that is still loading its model.
    pub(crate) fn new(options: ServerOptions) -> Self {
        let permits = Arc::new(Semaphore::new(options.max_concurrent_requests.max(1)));
        AppState(Arc::new(Inner { options, metrics: Arc::new(Metrics::new()), permits, ready: OnceLock::new() }))
    }

    /// The options in force.
    pub(crate) fn options(&self) -> &ServerOptions {
        &self.0.options
    }

    /// The metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Installs the loaded model and starts its batching worker; from now on requests are served.
    pub(crate) fn set_ready(&self, backend: Arc<dyn Backend>) {
        let mut info = backend.info();
        if let Some(name) = &self.0.options.served_model_name {
            info.model_id.clone_from(name);
        }
        let batcher = Batcher::start(backend, self.0.options.max_batch_tokens, self.0.metrics.clone());
        if self.0.ready.set(Ready { info, batcher }).is_err() {
            tracing::error!("the model was installed twice; keeping the first");
        }
    }

    /// The model, once loaded.
    pub(crate) fn model_info(&self) -> Option<&ModelInfo> {
        self.0.ready.get().map(|r| &r.info)
    }

    /// Stops the batching worker after the queued work (called once every request is answered).
    pub(crate) fn close(&self) {
        if let Some(ready) = self.0.ready.get() {
            ready.batcher.close();
        }
    }

    /// Checks the number of items of a request: at least one, at most `--max-client-batch-size`.
    pub(crate) fn check_items(&self, field: &str, count: usize) -> Result<(), ApiError> {
        let max = self.0.options.max_client_batch_size;
        if count == 0 {
            return Err(ApiError::invalid(format!("{field}: must not be empty")));
        }
        if count > max {
            return Err(ApiError::too_large(format!(
                "{field}: {count} items, more than the limit of {max} per request (--max-client-batch-size)"
            )));
        }
        Ok(())
    }

    /// Runs `work` (judge functions over the request's [`QueueScorer`]) in a blocking thread,
    /// under the concurrency limit and the request timeout. If this future is dropped (the client
    /// went away) or times out, the request's queued passes are dropped.
    ///
    /// # Errors
    /// 503 while the model loads, 429 over `--max-concurrent-requests`, 504 over
    /// `--request-timeout`, `work`'s own error otherwise.
    pub(crate) async fn score<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&QueueScorer) -> Result<T, ApiError> + Send + 'static,
    {
        let ready =
            self.0.ready.get().ok_or_else(|| {
                ApiError::unavailable("the model is still loading; retry once GET /health answers 200")
            })?;
        let _permit = self.0.permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::overloaded(format!(
                "the server is busy: {} requests are being processed (--max-concurrent-requests); retry later",
                self.0.options.max_concurrent_requests
            ))
        })?;
        self.0.metrics.in_flight.inc();
        let _in_flight = InFlight(self.0.metrics.clone());
        let (scorer, guard) = ready.batcher.request();
        let task = tokio::task::spawn_blocking(move || work(&scorer));
        let joined = match self.0.options.request_timeout {
            Some(limit) => tokio::time::timeout(limit, task).await.map_err(|_| {
                ApiError::timeout(format!(
                    "the request took longer than {:.3} s (--request-timeout)",
                    limit.as_secs_f64()
                ))
            })?,
            None => task.await,
        };
        match joined {
            Ok(result) => {
                guard.finish();
                result
            }
            Err(e) => Err(ApiError::backend(format!("the request failed: {e}"))),
        }
    }
}
