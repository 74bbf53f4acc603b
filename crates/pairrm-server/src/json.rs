//! The JSON body extractor: syntax errors as 400 and shape errors as 422, each naming the
//! offending field (`pairs[2].b: missing field ...`) in the API's words, never a Rust type's. The
//! body arrives already read whole under the payload limit ([`crate::edge::read_body`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A request body parsed as JSON into `T`.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes =
            Bytes::from_request(req, state).await.map_err(|rejection| ApiError::malformed(rejection.body_text()))?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses `bytes` as one JSON value of type `T`: in two steps, so that only a body that is not
/// JSON is 400 and every JSON body of the wrong shape is 422.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid(format!("the body must be a JSON object, got {}", json_kind(&value))));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let what = plain_types(&e.into_inner().to_string());
        ApiError::invalid(if path == "." { what } else { format!("{path}: {what}") })
    })
}

/// The JSON type of `value`, as an error message names it.
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Serde names the expected Rust type of a number (`expected u64`); clients know JSON types.
fn plain_types(message: &str) -> String {
    const TYPES: [(&str, &str); 12] = [
        ("u8", "a non-negative integer"),
        ("u16", "a non-negative integer"),
        ("u32", "a non-negative integer"),
        ("u64", "a non-negative integer"),
        ("usize", "a non-negative integer"),
        ("i8", "an integer"),
        ("i16", "an integer"),
        ("i32", "an integer"),
        ("i64", "an integer"),
        ("isize", "an integer"),
        ("f32", "a number"),
        ("f64", "a number"),
    ];
    let mut message = message.to_string();
    for (rust, json) in TYPES {
        let expected = format!("expected {rust}");
        if let Some(at) = message.find(&expected) {
            let end = at + expected.len();
            if !message[end..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                message.replace_range(at..end, &format!("expected {json}"));
            }
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::api::{CompareBody, RankBody, RerankBody};
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

    /// Every shape error names the field in JSON's words: no Rust type (`CompareBody`, `u64`,
    /// `struct`) ever reaches a client.
    #[test]
    fn shape_errors_name_fields_never_rust_types() {
        fn message<T: DeserializeOwned>(body: &str) -> String {
            parse::<T>(body.as_bytes()).map(|_| ()).unwrap_err().body.error
        }
        let cases = [
            (message::<CompareBody>("[]"), "the body must be a JSON object, got an array"),
            (message::<CompareBody>("3"), "the body must be a JSON object, got a number"),
            (message::<CompareBody>(r#"{"pairs": [["s", "a", "b"]]}"#), "pairs[0]: must be an object with `source`"),
            (message::<CompareBody>(r#"{"pairs": ["x"]}"#), "pairs[0]: must be an object with `source`, `a` and `b`, or with `conversation_a` and `conversation_b`; got a string"),
            (message::<CompareBody>(r#"{"pairs": [{"source": "s", "a": "x", "b": "y", "c": 1}]}"#), "pairs[0]: unknown field `c`"),
            (message::<CompareBody>(r#"{"pairs": [], "extra": 1}"#), "unknown field `extra`, expected `pairs` or `mode`"),
            (message::<CompareBody>(r#"{"pairs": [], "mode": 3}"#), "mode: invalid type: integer `3`"),
            (message::<CompareBody>(r#"{"pairs": [{"conversation_a": [3], "conversation_b": []}]}"#), "expected a turn"),
            (message::<RankBody>(r#"{"source": "s", "candidates": [], "seed": "x"}"#), "seed: invalid type: string \"x\", expected a non-negative integer"),
            (message::<RankBody>(r#"{"source": "s", "candidates": [], "seed": -1}"#), "seed: invalid value: integer `-1`, expected a non-negative integer"),
            (message::<RankBody>(r#"{"source": "s", "candidates": [], "worst": "yes"}"#), "worst: invalid type: string \"yes\", expected a boolean"),
            (message::<RankBody>(r#"{"source": "s", "candidates": [], "strategy": "best"}"#), "strategy: unknown variant `best`"),
            (message::<RankBody>(r#"["s", ["a"]]"#), "the body must be a JSON object, got an array"),
            (message::<RankBody>(r#"{"candidates": []}"#), "missing field `source`"),
            (message::<RerankBody>(r#"{"query": "q", "texts": [], "top_n": 1.5}"#), "top_n: invalid type: floating point `1.5`, expected a non-negative integer"),
            (message::<RerankBody>(r#"{"query": "q", "texts": [], "model": "m"}"#), "unknown field `model`"),
            (message::<RerankBody>(r#"{"query": "q", "texts": [], "truncation_direction": "up"}"#), "truncation_direction: unknown variant `up`"),
            (message::<RerankBody>(r#"{"query": "q", "texts": [], "raw_scores": 1}"#), "raw_scores: invalid type: integer `1`, expected a boolean"),
        ];
        for (got, want) in cases {
            assert!(got.contains(want), "{got:?} lacks {want:?}");
            let words: Vec<&str> = got.split(|c: char| !c.is_alphanumeric()).collect();
            for rust in ["struct", "enum", "u64", "usize", "Option", "Vec"] {
                assert!(!words.contains(&rust), "{got:?} names the Rust type {rust:?}");
            }
            assert!(
                !words.iter().any(|w| w.ends_with("Body") || w.ends_with("Item") || w.ends_with("Pair")),
                "{got:?}"
            );
        }
    }
}
