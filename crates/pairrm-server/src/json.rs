//! The JSON body extractor: any content type, the payload limit as 413, syntax errors as 400 and
//! shape errors as 422, each naming the offending field (`pairs[2].b: missing field ...`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;
use crate::state::AppState;

/// A request body parsed as JSON into `T`.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(format!(
                    "the request body is larger than the payload limit of {} bytes (--payload-limit)",
                    state.options().payload_limit
                ))
            } else {
                ApiError::malformed(rejection.body_text())
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses `bytes` as one JSON value of type `T`.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if path == "." { inner.to_string() } else { format!("{path}: {inner}") };
        match inner.classify() {
            Category::Data => ApiError::invalid(message),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::malformed(format!("the body is not valid JSON: {message}"))
            }
        }
    })?;
    de.end().map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CompareBody;
    use crate::error::ErrorType;

    #[test]
    fn syntax_errors_are_400_and_shape_errors_422_with_the_path() {
        let e = parse::<CompareBody>(b"{\"pairs\": [").map(|_| ()).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body.error_type, ErrorType::Validation);
        let e = parse::<CompareBody>(br#"{"pairs": []} x"#).map(|_| ()).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = parse::<CompareBody>(
            br#"{"pairs": [{"source": "s", "a": "x", "b": "y"}, {"source": "s", "a": 1, "b": "y"}]}"#,
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.body.error.starts_with("pairs[1]: "), "{}", e.body.error);
        let e = parse::<CompareBody>(br#"{"pairs": [], "mode": "sideways"}"#).map(|_| ()).unwrap_err();
        assert!(e.body.error.starts_with("mode: unknown variant `sideways`"), "{}", e.body.error);
        let e = parse::<CompareBody>(b"[]").map(|_| ()).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
