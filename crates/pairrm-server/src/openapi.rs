//! The OpenAPI description (`GET /openapi.json`) and the pages served as-is: the playground
//! (`GET /`) and the interactive API docs (`GET /docs`).

use std::sync::OnceLock;

use axum::response::Response;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

/// The API as OpenAPI 3.1.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pairrm",
        description = "PairRM (LLM-Blender's pairwise reward model) over HTTP: compare answers, rank and rerank \
                       candidates. Requests are batched together dynamically; logit > 0 always means the first \
                       (A, left) candidate is better. Errors are `{\"error\", \"error_type\"}`."
    ),
    paths(routes::compare, routes::rank, routes::rerank, routes::health, routes::info, routes::metrics),
    modifiers(&BearerKey),
    tags(
        (name = "scoring", description = "Score, rank and rerank candidates"),
        (name = "service", description = "Health, model information and metrics"),
    )
)]
pub(crate) struct ApiDoc;

/// The `bearer` security scheme of the routes that need the API key (servers started with
/// `--api-key`).
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The OpenAPI document as JSON (built once).
pub(crate) fn openapi_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serializes"))
}

/// `GET /openapi.json`.
pub(crate) async fn openapi() -> Response {
    routes::static_page("application/json", openapi_json())
}

/// `GET /docs`: interactive documentation of `/openapi.json`.
pub(crate) async fn docs() -> Response {
    routes::static_page("text/html; charset=utf-8", include_str!("../static/docs.html"))
}

/// `GET /`: the playground.
pub(crate) async fn playground() -> Response {
    routes::static_page("text/html; charset=utf-8", include_str!("../static/playground.html"))
}
