//! The HTTP side: one blocking agent (connection pool) shared by all threads, attempts and
//! retries.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use pairrm::judge::SplitMix64;
use serde_json::Value;

use super::retry::{retry_after, retryable_status, RetryPolicy};
use super::wire::{error_message, parse_completion, Completion, Endpoint};

/// Largest response body read (a response with many long choices stays far below).
const MAX_BODY_BYTES: u64 = 256 << 20;

/// How to reach the server and how patient to be.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The server's base URL, with or without the trailing `/v1` (`http://localhost:8000`,
    /// `https://api.example.com/v1`).
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>` when given.
    pub api_key: Option<String>,
    /// Longest time one attempt may take, from connecting to the last byte of the answer.
    pub request_timeout: Duration,
    /// Longest time to establish a connection.
    pub connect_timeout: Duration,
    /// Retries of failed attempts.
    pub retry: RetryPolicy,
    /// Idle connections kept open for reuse (the number of concurrent requests).
    pub max_connections: usize,
}

/// A client of one OpenAI-compatible server, shared by any number of threads.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    api_key: Option<String>,
    request_timeout: Duration,
    retry: RetryPolicy,
    jitter: Mutex<SplitMix64>,
}

/// A successful request.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// What the server answered.
    pub completion: Completion,
    /// Attempts it took (1: no retry).
    pub attempts: u32,
}

/// A request that failed for good: the last attempt's reason and how many attempts were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// Why the last attempt failed.
    pub message: String,
    /// Attempts made (1: the failure was not worth retrying, or retries are off).
    pub attempts: u32,
    /// The HTTP status of the last attempt, when the server answered with an error status.
    pub status: Option<u16>,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attempts > 1 {
            write!(f, "{} (gave up after {} attempts)", self.message, self.attempts)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for RequestError {}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    message: String,
    /// The error status the server answered with, if it did.
    status: Option<u16>,
    /// Worth another attempt.
    transient: bool,
    /// The wait the server asked for (`Retry-After`).
    retry_after: Option<Duration>,
}

impl Failure {
    /// A failure another attempt would repeat.
    fn permanent(message: String, status: Option<u16>) -> Failure {
        Failure { message, status, transient: false, retry_after: None }
    }

    /// A failure worth another attempt.
    fn transient(message: String, status: Option<u16>, retry_after: Option<Duration>) -> Failure {
        Failure { message, status, transient: true, retry_after }
    }
}

impl Client {
    /// A client for `options`; fails when the URL is not `http://` or `https://`.
    pub fn new(options: ClientOptions) -> anyhow::Result<Client> {
        let base = options.base_url.trim().trim_end_matches('/');
        let Some((scheme, rest)) = base.split_once("://") else {
            bail!("generator URL {:?} must start with http:// or https://", options.base_url);
        };
        if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") || rest.is_empty() {
            bail!("generator URL {:?} must start with http:// or https:// and name a host", options.base_url);
        }
        let base = base.strip_suffix("/v1").unwrap_or(base).to_string();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.request_timeout))
            .timeout_connect(Some(options.connect_timeout))
            .max_idle_connections(options.max_connections.max(1))
            .max_idle_connections_per_host(options.max_connections.max(1))
            .user_agent(format!("pairrm/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Ok(Client {
            agent,
            base,
            api_key: options.api_key.filter(|k| !k.is_empty()),
            request_timeout: options.request_timeout,
            retry: options.retry,
            jitter: Mutex::new(SplitMix64::new(seed)),
        })
    }

    /// The full URL of `endpoint`: `<base>/v1/<path>`.
    pub fn url(&self, endpoint: Endpoint) -> String {
        format!("{}/v1/{}", self.base, endpoint.path())
    }

    /// POSTs `body` to `endpoint` and reads the choices, retrying transient failures (connection
    /// errors, timeouts, 408/409/429/5xx) per the retry policy. Answers that are not the
    /// expected JSON, and other HTTP errors (400, 401, 404, ...), fail at once.
    pub fn generate(&self, endpoint: Endpoint, body: &Value) -> Result<Response, RequestError> {
        let url = self.url(endpoint);
        let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(&url, endpoint, &bytes) {
                Ok(completion) => return Ok(Response { completion, attempts }),
                Err(failure) if !failure.transient || attempts > self.retry.max_retries => {
                    return Err(RequestError { message: failure.message, attempts, status: failure.status });
                }
                Err(failure) => {
                    let delay = self.retry.delay(attempts - 1, failure.retry_after, self.jitter_unit());
                    tracing::warn!(attempt = attempts, ?delay, "{}; retrying", failure.message);
                    std::thread::sleep(delay);
                }
            }
        }
    }

    /// One POST.
    fn attempt(&self, url: &str, endpoint: Endpoint, body: &[u8]) -> Result<Completion, Failure> {
        let mut request = self.agent.post(url).header("content-type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let response = request.send(body).map_err(|e| self.transport_failure(url, e))?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let wait =
            retry_after(header("retry-after-ms").as_deref(), header("retry-after").as_deref(), SystemTime::now());
        let body = response
            .into_body()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|e| self.transport_failure(url, e))?;
        if (200..300).contains(&status) {
            return parse_completion(endpoint, &body).map_err(|e| Failure::permanent(format!("POST {url}: {e}"), None));
        }
        let message = format!("POST {url}: HTTP {status}: {}", error_message(&body));
        if retryable_status(status) {
            Err(Failure::transient(message, Some(status), wait))
        } else {
            Err(Failure::permanent(message, Some(status)))
        }
    }

    /// Classifies a transport error: connection trouble and timeouts are transient, anything
    /// else (a bad URL, TLS, a body over the limit) is not.
    fn transport_failure(&self, url: &str, error: ureq::Error) -> Failure {
        let transient = |reason: String| Failure::transient(format!("POST {url}: {reason}"), None, None);
        match error {
            ureq::Error::Timeout(_) => {
                transient(format!("no complete answer within the request timeout ({:?})", self.request_timeout))
            }
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                transient("connection refused (is the server running?)".into())
            }
            ureq::Error::Io(e) => transient(format!("connection error: {e}")),
            ureq::Error::ConnectionFailed => transient("could not connect".into()),
            ureq::Error::HostNotFound => transient("host not found".into()),
            ureq::Error::Protocol(e) => transient(format!("the server broke the HTTP protocol: {e}")),
            other => Failure::permanent(format!("POST {url}: {other}"), None),
        }
    }

    /// A uniform draw in `[0, 1)` for jitter.
    fn jitter_unit(&self) -> f64 {
        let mut rng = self.jitter.lock().unwrap_or_else(|e| e.into_inner());
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str) -> ClientOptions {
        ClientOptions {
            base_url: url.into(),
            api_key: None,
            request_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            retry: RetryPolicy { max_retries: 0, initial_delay: Duration::ZERO, max_delay: Duration::ZERO },
            max_connections: 1,
        }
    }

    #[test]
    fn urls_with_or_without_v1() {
        for base in ["http://h:8000", "http://h:8000/", "http://h:8000/v1", "http://h:8000/v1/", " http://h:8000/v1 "] {
            let client = Client::new(options(base)).unwrap();
            assert_eq!(client.url(Endpoint::Completions), "http://h:8000/v1/completions", "{base}");
            assert_eq!(client.url(Endpoint::ChatCompletions), "http://h:8000/v1/chat/completions");
        }
        let client = Client::new(options("https://api.example.com/openai/v1")).unwrap();
        assert_eq!(client.url(Endpoint::Completions), "https://api.example.com/openai/v1/completions");
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in ["localhost:8000", "ftp://h", "http://", ""] {
            let err = Client::new(options(bad)).err().unwrap().to_string();
            assert!(err.contains("must start with http:// or https://"), "{bad}: {err}");
        }
    }

    #[test]
    fn errors_say_how_many_attempts_were_made() {
        let once = RequestError { message: "HTTP 400: bad".into(), attempts: 1, status: Some(400) };
        assert_eq!(once.to_string(), "HTTP 400: bad");
        let many = RequestError { message: "HTTP 503: busy".into(), attempts: 4, status: Some(503) };
        assert_eq!(many.to_string(), "HTTP 503: busy (gave up after 4 attempts)");
    }

    #[test]
    fn jitter_is_in_the_unit_interval() {
        let client = Client::new(options("http://h")).unwrap();
        for _ in 0..1000 {
            let u = client.jitter_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
