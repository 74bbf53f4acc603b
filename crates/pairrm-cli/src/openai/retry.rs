//! When failed requests are tried again: which failures, how often, and how long to wait.

use std::time::{Duration, SystemTime};

/// How failed requests are retried: up to `max_retries` times, waiting an exponentially growing,
/// jittered delay in between, or what the server asked for with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub max_retries: u32,
    /// The base delay before the first retry; it doubles with each further retry.
    pub initial_delay: Duration,
    /// The longest wait between two attempts, also for `Retry-After`.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The wait before retry `retry` (0 for the first retry): the server's `retry_after` if it
    /// sent one, else `d = min(max_delay, initial_delay · 2^retry)` with "equal jitter", a
    /// uniform draw in `[d/2, d)` taken from `unit` (in `[0, 1)`); never above `max_delay`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max_delay);
        }
        let factor = 2f64.powi(retry.min(62) as i32);
        let full = self.initial_delay.as_secs_f64() * factor;
        let capped = full.min(self.max_delay.as_secs_f64());
        Duration::from_secs_f64(capped * (0.5 + 0.5 * unit.clamp(0.0, 1.0)))
    }
}

/// Whether an HTTP status is worth retrying: request timeout (408), conflict (409, a lock held),
/// rate limited (429) and server errors (5xx), as the OpenAI clients do.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 500..=599)
}

/// The wait a server asks for: `retry-after-ms` (milliseconds, sent by some OpenAI-compatible
/// servers and gateways) or `Retry-After` (seconds, or an HTTP date counted from `now`).
/// Unparseable values are ignored.
pub fn retry_after(retry_after_ms: Option<&str>, retry_after: Option<&str>, now: SystemTime) -> Option<Duration> {
    // A number >= 0 (NaN is not); absurd waits become a day (the policy's cap applies later).
    let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| *v >= 0.0);
    let wait = |secs: f64| Duration::from_secs_f64(secs.min(86_400.0));
    if let Some(ms) = retry_after_ms.and_then(number) {
        return Some(wait(ms / 1000.0));
    }
    let value = retry_after?;
    if let Some(secs) = number(value) {
        return Some(wait(secs));
    }
    let date = httpdate::parse_http_date(value.trim()).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy =
        RetryPolicy { max_retries: 5, initial_delay: Duration::from_millis(500), max_delay: Duration::from_secs(8) };

    #[test]
    fn backoff_doubles_with_equal_jitter_and_is_capped() {
        let ms = |retry, unit| POLICY.delay(retry, None, unit).as_millis();
        assert_eq!([ms(0, 0.0), ms(1, 0.0), ms(2, 0.0), ms(3, 0.0)], [250, 500, 1000, 2000]);
        assert_eq!([ms(0, 0.5), ms(1, 0.5)], [375, 750]);
        assert!(ms(2, 0.999_999) < 2000 && ms(2, 0.999_999) >= 1999);
        // Capped at max_delay: the cap is jittered too.
        assert_eq!(ms(4, 0.0), 4000);
        assert_eq!(ms(10, 0.0), 4000);
        assert!(ms(1000, 0.999) <= 8000);
        // Out-of-range draws are clamped.
        assert_eq!(ms(0, -3.0), 250);
        assert_eq!(ms(0, 7.0), 500);
    }

    #[test]
    fn the_servers_wait_wins_up_to_the_cap() {
        assert_eq!(POLICY.delay(3, Some(Duration::ZERO), 0.7), Duration::ZERO);
        assert_eq!(POLICY.delay(0, Some(Duration::from_secs(3)), 0.7), Duration::from_secs(3));
        assert_eq!(POLICY.delay(0, Some(Duration::from_secs(300)), 0.7), Duration::from_secs(8));
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 409, 429, 500, 502, 503, 504, 599] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 413, 422, 600] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(retry_after(None, Some("3"), now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(None, Some(" 1.5 "), now), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(Some("250"), Some("3"), now), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(Some("soon"), Some("3"), now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(None, Some("Wed, 21 Oct 2015 07:28:30 GMT"), now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(None, Some("Wed, 21 Oct 2015 07:27:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(None, Some("-1"), now), None);
        assert_eq!(retry_after(None, Some("NaN"), now), None);
        assert_eq!(retry_after(Some("1e300"), None, now), Some(Duration::from_secs(86_400)));
        assert_eq!(retry_after(None, Some("inf"), now), Some(Duration::from_secs(86_400)));
        assert_eq!(retry_after(None, Some("later"), now), None);
        assert_eq!(retry_after(None, None, now), None);
    }
}
