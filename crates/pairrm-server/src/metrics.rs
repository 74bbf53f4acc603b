//! Prometheus metrics (`GET /metrics`, OpenMetrics text): requests by route and status, latency,
//! queue depth and wait, batch sizes in pairs and tokens, pairs and tokens processed.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::encode`]'s output.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The status label of a request whose client went away before the answer (nginx's 499).
pub(crate) const CLIENT_CLOSED: &str = "499";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the server.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RouteLabels>,
    /// Requests being scored now (holding a concurrency permit).
    pub(crate) in_flight: Gauge,
    /// Forward passes waiting in the queue.
    pub(crate) queue_pairs: Gauge,
    /// Time from queueing a pass to the start of its batch.
    pub(crate) queue_wait: Histogram,
    batch_pairs: Histogram,
    batch_tokens: Histogram,
    batch_duration: Histogram,
    pairs: Counter,
    tokens: Counter,
    /// Queued passes dropped because their request was cancelled.
    pub(crate) cancelled_pairs: Counter,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~9 min.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

impl Metrics {
    /// All metrics at zero, registered under the prefix `pairrm`.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("pairrm");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "HTTP requests answered, by route and status", requests.clone());
        let request_duration: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "request_duration",
            "Time to answer a request, by route",
            Unit::Seconds,
            request_duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("requests_in_flight", "Scoring requests being processed", in_flight.clone());
        let queue_pairs = Gauge::default();
        registry.register("queue_pairs", "Forward passes waiting in the batching queue", queue_pairs.clone());
        let queue_wait = latency_histogram();
        registry.register_with_unit(
            "queue_wait",
            "Time a forward pass waited in the queue",
            Unit::Seconds,
            queue_wait.clone(),
        );
        let batch_pairs = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register("batch_pairs", "Forward passes per batch", batch_pairs.clone());
        let batch_tokens = Histogram::new(exponential_buckets(16.0, 2.0, 14));
        registry.register("batch_tokens", "Tokens per batch", batch_tokens.clone());
        let batch_duration = latency_histogram();
        registry.register_with_unit(
            "batch_duration",
            "Time the model took for a batch",
            Unit::Seconds,
            batch_duration.clone(),
        );
        let pairs = Counter::default();
        registry.register("pairs", "Forward passes run", pairs.clone());
        let tokens = Counter::default();
        registry.register("tokens", "Tokens processed by the model", tokens.clone());
        let cancelled_pairs = Counter::default();
        registry.register(
            "cancelled_pairs",
            "Queued forward passes dropped because their request was cancelled",
            cancelled_pairs.clone(),
        );
        Metrics {
            registry,
            requests,
            request_duration,
            in_flight,
            queue_pairs,
            queue_wait,
            batch_pairs,
            batch_tokens,
            batch_duration,
            pairs,
            tokens,
            cancelled_pairs,
        }
    }

    /// Records an answered request (`status`: the HTTP status code, or [`CLIENT_CLOSED`]).
    pub(crate) fn observe_request(&self, route: &str, status: &str, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { route: route.to_string(), status: status.to_string() }).inc();
        self.request_duration.get_or_create(&RouteLabels { route: route.to_string() }).observe(elapsed.as_secs_f64());
    }

    /// Records a batch the model ran.
    pub(crate) fn observe_batch(&self, pairs: usize, tokens: usize, elapsed: Duration) {
        self.batch_pairs.observe(pairs as f64);
        self.batch_tokens.observe(tokens as f64);
        self.batch_duration.observe(elapsed.as_secs_f64());
        self.pairs.inc_by(pairs as u64);
        self.tokens.inc_by(tokens as u64);
    }

    /// The OpenMetrics text exposition of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_requests_batches_and_gauges() {
        let m = Metrics::new();
        m.observe_request("/rank", "200", Duration::from_millis(3));
        m.observe_request("/rank", "200", Duration::from_millis(5));
        m.observe_request("/compare", "429", Duration::from_millis(1));
        m.observe_batch(12, 300, Duration::from_millis(7));
        m.queue_pairs.set(4);
        let text = m.encode();
        assert!(text.contains(r#"pairrm_requests_total{route="/rank",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"pairrm_requests_total{route="/compare",status="429"} 1"#), "{text}");
        assert!(text.contains(r#"pairrm_request_duration_seconds_count{route="/rank"} 2"#), "{text}");
        assert!(text.contains("pairrm_batch_pairs_sum 12.0"), "{text}");
        assert!(text.contains("pairrm_batch_tokens_sum 300.0"), "{text}");
        assert!(text.contains("pairrm_pairs_total 12"), "{text}");
        assert!(text.contains("pairrm_tokens_total 300"), "{text}");
        assert!(text.contains("pairrm_queue_pairs 4"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
