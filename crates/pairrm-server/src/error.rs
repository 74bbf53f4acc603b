//! Error answers: `{"error": "...", "error_type": "..."}` with a status that fits. The library's
//! errors get their status in one place ([`ApiError::from`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The class of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorType {
    /// The request is malformed (400) or invalid (422), names no route (404) or a wrong method
    /// (405), or its body is not JSON (415).
    Validation,
    /// No API key, or a wrong one (401).
    Unauthorized,
    /// The request is too large: body over `--payload-limit` or too many items (413).
    Payload,
    /// Too many requests at once (429): retry later.
    Overloaded,
    /// The body did not arrive within `--body-timeout` (408), or the request took longer than
    /// `--request-timeout` (504).
    Timeout,
    /// The model is not ready (503) or failed (500).
    Backend,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, and what to do about it.
    pub error: String,
    /// The class of the error.
    pub error_type: ErrorType,
}

/// An error answer: status, class and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error_type: ErrorType, message: impl Into<String>) -> Self {
        ApiError { status, body: ErrorBody { error: message.into(), error_type } }
    }

    /// 400: the body is not JSON.
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorType::Validation, message)
    }

    /// 422: well-formed JSON that is not a valid request.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorType::Validation, message)
    }

    /// 401: no API key, or a wrong one.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorType::Unauthorized, message)
    }

    /// 415: a body that is not declared as JSON.
    pub(crate) fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorType::Validation, message)
    }

    /// 408: the body did not arrive in time.
    pub(crate) fn body_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, ErrorType::Timeout, message)
    }

    /// 404: no such route.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorType::Validation, message)
    }

    /// 405: a known route with the wrong method.
    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, ErrorType::Validation, message)
    }

    /// 413: over a size limit.
    pub(crate) fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorType::Payload, message)
    }

    /// 429: over the concurrency limit.
    pub(crate) fn overloaded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorType::Overloaded, message)
    }

    /// 504: over the time limit.
    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, ErrorType::Timeout, message)
    }

    /// 503: the model is not ready, or the server is stopping.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorType::Backend, message)
    }

    /// 500: the model failed.
    pub(crate) fn backend(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Backend, message)
    }

    /// Prefixes the message with the item it concerns (`pairs[3]: ...`).
    pub(crate) fn at(mut self, item: &str) -> Self {
        self.body.error = format!("{item}: {}", self.body.error);
        self
    }
}

impl From<pairrm::Error> for ApiError {
    /// The one place where library errors get their status: invalid input is the client's fault
    /// (422), a cancelled request is refused (503), anything else is the server's (500). Every
    /// variant is listed, so that a new one must be given its status here.
    fn from(e: pairrm::Error) -> Self {
        use pairrm::Error as E;
        match e {
            E::InvalidInput { .. } => ApiError::invalid(e.to_string()),
            E::Cancelled => ApiError::unavailable("the request was cancelled"),
            E::Io { .. }
            | E::InvalidFile { .. }
            | E::Model { .. }
            | E::Unsupported { .. }
            | E::Tokenizer(_)
            | E::Hub(_)
            | E::NotInCache { .. }
            // Broken weights: the server's fault, never a number in an answer.
            | E::NonFinite { .. } => ApiError::backend(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_map_to_statuses() {
        let e = ApiError::from(pairrm::Error::invalid_input("candidates", "must not be empty"));
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.body.error, "invalid input: candidates: must not be empty");
        assert_eq!(e.body.error_type, ErrorType::Validation);
        let e = ApiError::from(pairrm::Error::Tokenizer("boom".into()));
        assert_eq!((e.status, e.body.error_type), (StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Backend));
        let e = ApiError::from(pairrm::Error::NonFinite { what: "the logit".into(), value: f32::NAN });
        assert_eq!((e.status, e.body.error_type), (StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Backend));
        assert!(e.body.error.contains("a non-finite number"), "{}", e.body.error);
        let e = ApiError::from(pairrm::Error::Cancelled);
        assert_eq!((e.status, e.body.error_type), (StatusCode::SERVICE_UNAVAILABLE, ErrorType::Backend));
        assert_eq!(ApiError::invalid("x").at("pairs[2]").body.error, "pairs[2]: x");
        let e = ApiError::from(pairrm::Error::model("server", "the model gave a non-finite logit (NaN)"));
        assert_eq!((e.status, e.body.error_type), (StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Backend));
    }

    #[test]
    fn unauthorized_answers_name_the_scheme() {
        let response = ApiError::unauthorized("no key").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert!(ApiError::invalid("x").into_response().headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn error_types_serialize_lowercase() {
        let body = ErrorBody { error: "slow".into(), error_type: ErrorType::Timeout };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"error":"slow","error_type":"timeout"}"#);
    }
}
