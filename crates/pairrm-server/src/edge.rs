//! What every request meets before its handler: the API key (`Authorization: Bearer`), the
//! content type of a POST (JSON only), and the body, read whole under the payload limit and the
//! body timeout. A declared `Content-Length` over the limit is refused before a byte of the body
//! is read; a body without one (chunked) is refused as soon as it passes the limit.

use std::fmt;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The key clients must send as `Authorization: Bearer <key>`. Compared in constant time; never
/// printed (its `Debug` hides it).
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key: 1 to 4096 visible ASCII characters (what an `Authorization` header can carry).
    ///
    /// # Errors
    /// An empty key, or one with spaces, control or non-ASCII characters.
    pub fn new(key: impl Into<String>) -> Result<Self, String> {
        let key = key.into();
        if key.is_empty() || key.len() > 4096 {
            return Err(format!("must be 1 to 4096 characters, got {}", key.len()));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be visible ASCII characters only (no spaces)".into());
        }
        Ok(ApiKey(key))
    }

    /// Whether `given` is this key, in time independent of where they differ.
    pub fn matches(&self, given: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(given.as_bytes()))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

/// Middleware of the protected routes: with an API key set, answers 401 unless the request
/// carries `Authorization: Bearer <key>`.
pub(crate) async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.options().api_key {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
        if !given.is_some_and(|given| key.matches(given)) {
            return ApiError::unauthorized(
                "this server needs an API key: send `Authorization: Bearer <key>` with the key it was given \
                 (--api-key / PAIRRM_API_KEY)",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// The credentials of an `Authorization: Bearer <credentials>` header (scheme in any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim_start())
}

/// Middleware of every route: refuses a POST body that is not declared as JSON (415), a declared
/// length over the payload limit (413, at once), then reads the body whole under the limit
/// (413) and the body timeout (408). A request refused before its body was read closes its
/// connection.
pub(crate) async fn read_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let options = state.options();
    let limit = options.payload_limit;
    if request.method() == Method::POST && !is_json(request.headers()) {
        return ApiError::unsupported_media_type("the body must be JSON, sent with `Content-Type: application/json`")
            .into_response();
    }
    let too_large = || {
        ApiError::too_large(format!(
            "the request body is larger than the payload limit of {limit} bytes (--payload-limit)"
        ))
    };
    if declared_length(request.headers()).is_some_and(|length| length > limit as u64) {
        return closing(too_large());
    }
    let (parts, body) = request.into_parts();
    let read = Limited::new(body, limit).collect();
    let collected = match options.body_timeout {
        Some(limit) => match tokio::time::timeout(limit, read).await {
            Ok(collected) => collected,
            Err(_) => {
                return closing(ApiError::body_timeout(format!(
                    "the request body did not arrive within {} s (--body-timeout)",
                    limit.as_secs_f64()
                )))
            }
        },
        None => read.await,
    };
    match collected {
        Ok(body) => next.run(Request::from_parts(parts, Body::from(body.to_bytes()))).await,
        Err(e) if e.is::<LengthLimitError>() => closing(too_large()),
        Err(e) => closing(ApiError::malformed(format!("the request body could not be read: {e}"))),
    }
}

/// Whether the `Content-Type` is `application/json` (parameters such as `charset` allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The declared `Content-Length` (hyper has already refused malformed or conflicting ones).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The error answer with `Connection: close`: the rest of the body is never read, so the
/// connection cannot carry another request.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_whole_and_never_shown() {
        let key = ApiKey::new("s3cret-key").unwrap();
        assert!(key.matches("s3cret-key"));
        for wrong in ["", "s3cret", "s3cret-key ", "s3cret-kez", "S3CRET-KEY"] {
            assert!(!key.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{key:?}"), "ApiKey(..)");
        assert!(ApiKey::new("").is_err());
        assert!(ApiKey::new("with space").is_err());
        assert!(ApiKey::new("naïve").is_err());
    }

    #[test]
    fn bearer_credentials_and_json_content_types() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
