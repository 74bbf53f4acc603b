//! The routes: scoring (`/compare`, `/rank`, `/rerank`) over the library's judge functions, and
//! the service routes (`/health`, `/info`, `/metrics`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pairrm::judge::{self, CompareRequest, Pair, PairScorer, RankRequest, RankWithRefRequest, SelectMethod, Target};

use crate::api::{
    BestOf, CompareBody, CompareResponse, Health, Info, LimitsInfo, RankBody, RankResponse, Ranked, RerankBody,
    RerankItem, WorstOf,
};
use crate::error::{ApiError, ErrorBody};
use crate::json::ApiJson;
use crate::metrics::{self, CLIENT_CLOSED};
use crate::state::AppState;

/// Compare pairs of answers (or of conversations): logit > 0 means A is better.
#[utoipa::path(
    post, path = "/compare", tag = "scoring",
    security((), ("bearer" = [])),
    request_body = CompareBody,
    responses(
        (status = 200, description = "One result per pair, in order", body = CompareResponse),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No API key, or a wrong one (with --api-key)", body = ErrorBody),
        (status = 408, description = "The body did not arrive within --body-timeout", body = ErrorBody),
        (status = 413, description = "Body or pair count over the limits", body = ErrorBody),
        (status = 415, description = "The body is not declared as JSON", body = ErrorBody),
        (status = 422, description = "Invalid request (the field is named)", body = ErrorBody),
        (status = 429, description = "Too many requests at once", body = ErrorBody),
        (status = 503, description = "The model is still loading", body = ErrorBody),
        (status = 500, description = "The model failed, or gave a non-finite number", body = ErrorBody),
        (status = 504, description = "Over the request timeout", body = ErrorBody),
    )
)]
pub(crate) async fn compare(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CompareBody>,
) -> Result<Json<CompareResponse>, ApiError> {
    state.check_items("pairs", body.pairs.len())?;
    let requests = body
        .pairs
        .into_iter()
        .enumerate()
        .map(|(i, item)| item.into_request().map_err(|e| ApiError::from(e).at(&format!("pairs[{i}]"))))
        .collect::<Result<Vec<CompareRequest>, ApiError>>()?;
    let mode = body.mode.into();
    let results = state.score(move |scorer| collect(judge::compare(scorer, &requests, mode))).await?;
    finite("logit", results.iter().map(|r| r.logit))?;
    Ok(Json(CompareResponse { results: results.into_iter().map(Into::into).collect() }))
}

/// Rank candidates: scores and ranks from the full comparison matrix (optionally against a
/// reference), or the best (worst) candidate by one seeded bubble pass.
#[utoipa::path(
    post, path = "/rank", tag = "scoring",
    security((), ("bearer" = [])),
    request_body = RankBody,
    responses(
        (status = 200, description = "Scores and ranks (full) or the chosen candidate (bubble)", body = RankResponse),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No API key, or a wrong one (with --api-key)", body = ErrorBody),
        (status = 408, description = "The body did not arrive within --body-timeout", body = ErrorBody),
        (status = 413, description = "Body or candidate count over the limits", body = ErrorBody),
        (status = 415, description = "The body is not declared as JSON", body = ErrorBody),
        (status = 422, description = "Invalid request (the field is named)", body = ErrorBody),
        (status = 429, description = "Too many requests at once", body = ErrorBody),
        (status = 503, description = "The model is still loading", body = ErrorBody),
        (status = 500, description = "The model failed, or gave a non-finite number", body = ErrorBody),
        (status = 504, description = "Over the request timeout", body = ErrorBody),
    )
)]
pub(crate) async fn rank(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RankBody>,
) -> Result<Json<RankResponse>, ApiError> {
    state.check_items("candidates", body.candidates.len())?;
    let reference = match (body.reference, body.reference_mode) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("give either `reference` or `reference_mode`, not both")),
        (Some(text), None) => Some(judge::Reference::Given(text)),
        (None, mode) => mode.map(Into::into),
    };
    let invalid = |m: &str| Err(ApiError::invalid(m));
    match body.strategy {
        SelectMethod::Bubble if reference.is_some() => {
            return invalid("a reference cannot be used with strategy bubble")
        }
        SelectMethod::Bubble if body.return_matrix => return invalid("return_matrix needs strategy full"),
        SelectMethod::Full if body.worst => {
            return invalid("worst needs strategy bubble (full ranks order every candidate)")
        }
        SelectMethod::Full if body.return_matrix && reference.is_some() => {
            return invalid("return_matrix cannot be used with a reference")
        }
        _ => {}
    }
    let request = RankRequest { instruction: body.instruction, source: body.source, candidates: body.candidates };
    let (strategy, seed, worst, return_matrix) = (body.strategy, body.seed, body.worst, body.return_matrix);
    let response = state
        .score(move |scorer| match (strategy, reference) {
            (SelectMethod::Full, Some(reference)) => {
                let r = one(judge::rank_with_ref(scorer, &[RankWithRefRequest { request, reference }]))?;
                Ok(RankResponse::Ranked(Ranked {
                    scores: r.scores,
                    ranks: r.ranks,
                    reference_index: r.reference_index,
                    matrix: None,
                }))
            }
            (SelectMethod::Full, None) if return_matrix => {
                let recording = Recording::new(scorer);
                let r = one(judge::rank(&recording, std::slice::from_ref(&request)))?;
                let matrix = recording.matrix(&request)?;
                Ok(RankResponse::Ranked(Ranked { scores: r.scores, ranks: r.ranks, reference_index: None, matrix }))
            }
            (SelectMethod::Full, None) => {
                let r = one(judge::rank(scorer, &[request]))?;
                Ok(RankResponse::Ranked(Ranked {
                    scores: r.scores,
                    ranks: r.ranks,
                    reference_index: None,
                    matrix: None,
                }))
            }
            (SelectMethod::Bubble, _) => {
                let target = if worst { Target::Worst } else { Target::Best };
                let s = one(judge::select_n(scorer, &[request], target, SelectMethod::Bubble, seed))?;
                Ok(if worst {
                    RankResponse::Worst(WorstOf { worst: s.index, order: s.order })
                } else {
                    RankResponse::Best(BestOf { best: s.index, order: s.order })
                })
            }
        })
        .await?;
    if let RankResponse::Ranked(r) = &response {
        finite("score", r.scores.iter().copied())?;
        finite("matrix", r.matrix.iter().flatten().flatten().copied())?;
    }
    Ok(Json(response))
}

/// Order texts by how well they answer the query (TEI / vLLM `rerank`): the score of a text is its
/// full-matrix rank score among all the texts; best first.
#[utoipa::path(
    post, path = "/rerank", tag = "scoring",
    security((), ("bearer" = [])),
    request_body = RerankBody,
    responses(
        (status = 200, description = "The texts, best first", body = Vec<RerankItem>),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No API key, or a wrong one (with --api-key)", body = ErrorBody),
        (status = 408, description = "The body did not arrive within --body-timeout", body = ErrorBody),
        (status = 413, description = "Body or text count over the limits", body = ErrorBody),
        (status = 415, description = "The body is not declared as JSON", body = ErrorBody),
        (status = 422, description = "Invalid request (the field is named)", body = ErrorBody),
        (status = 429, description = "Too many requests at once", body = ErrorBody),
        (status = 503, description = "The model is still loading", body = ErrorBody),
        (status = 500, description = "The model failed, or gave a non-finite number", body = ErrorBody),
        (status = 504, description = "Over the request timeout", body = ErrorBody),
    )
)]
pub(crate) async fn rerank(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RerankBody>,
) -> Result<Json<Vec<RerankItem>>, ApiError> {
    body.check_tei_options().map_err(ApiError::invalid)?;
    state.check_items("texts", body.texts.len())?;
    let request = RankRequest { instruction: body.instruction, source: body.query, candidates: body.texts };
    let (texts, ranked) = state
        .score(move |scorer| {
            let ranked = one(judge::rank(scorer, std::slice::from_ref(&request)))?;
            Ok((request.candidates, ranked))
        })
        .await?;
    finite("score", ranked.scores.iter().copied())?;
    Ok(Json(reranked(texts, &ranked.scores, body.top_n, body.return_text)))
}

/// The texts best first (equal scores in request order), cut to `top_n`.
fn reranked(texts: Vec<String>, scores: &[f32], top_n: Option<usize>, return_text: bool) -> Vec<RerankItem> {
    let mut items: Vec<RerankItem> = texts
        .into_iter()
        .zip(scores)
        .enumerate()
        .map(|(index, (text, &score))| RerankItem { index, score, text: return_text.then_some(text) })
        .collect();
    items.sort_by(|x, y| y.score.total_cmp(&x.score).then(x.index.cmp(&y.index)));
    items.truncate(top_n.unwrap_or(usize::MAX));
    items
}

/// Ready: 200 once the model is loaded, 503 before.
#[utoipa::path(
    get, path = "/health", tag = "service",
    responses(
        (status = 200, description = "The model is loaded", body = Health),
        (status = 503, description = "The model is still loading", body = ErrorBody),
    )
)]
pub(crate) async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match state.model_info() {
        Some(_) => Ok(Json(Health { status: "ok".into() })),
        None => Err(ApiError::unavailable("the model is still loading")),
    }
}

/// The model, its limits and the server's.
#[utoipa::path(
    get, path = "/info", tag = "service",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Model and limits", body = Info),
        (status = 401, description = "No API key, or a wrong one (with --api-key)", body = ErrorBody),
        (status = 503, description = "The model is still loading", body = ErrorBody),
    )
)]
pub(crate) async fn info(State(state): State<AppState>) -> Result<Json<Info>, ApiError> {
    let model = state.model_info().ok_or_else(|| ApiError::unavailable("the model is still loading"))?.clone();
    let o = state.options();
    Ok(Json(Info {
        model,
        version: env!("CARGO_PKG_VERSION").to_string(),
        limits: LimitsInfo {
            max_batch_tokens: o.max_batch_tokens,
            max_concurrent_requests: o.max_concurrent_requests,
            max_client_batch_size: o.max_client_batch_size,
            payload_limit: o.payload_limit,
            request_timeout_secs: secs(o.request_timeout),
            header_timeout_secs: secs(o.header_timeout),
            body_timeout_secs: secs(o.body_timeout),
            keep_alive_timeout_secs: secs(o.keep_alive_timeout),
            shutdown_timeout_secs: secs(o.shutdown_timeout),
            max_connections: o.max_connections,
            api_key_required: o.api_key.is_some(),
        },
    }))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    get, path = "/metrics", tag = "service",
    security((), ("bearer" = [])),
    responses((status = 200, description = "The metrics", content_type = "application/openmetrics-text", body = String))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], state.metrics().encode()).into_response()
}

/// Any other path: 404 as a JSON error.
pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}; see /docs", uri.path()))
}

/// A known path with the wrong method: 405 as a JSON error.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(format!("{method} is not allowed on {}; see /docs", uri.path()))
}

/// Middleware: counts every answer by route and status, and its latency. A request whose client
/// went away before the answer is counted with status 499.
pub(crate) async fn track(State(state): State<AppState>, path: MatchedPath, req: Request, next: Next) -> Response {
    struct Unanswered<'a> {
        state: &'a AppState,
        route: &'a str,
        start: Instant,
        answered: bool,
    }
    impl Drop for Unanswered<'_> {
        fn drop(&mut self) {
            if !self.answered {
                self.state.metrics().observe_request(self.route, CLIENT_CLOSED, self.start.elapsed());
            }
        }
    }
    let mut pending = Unanswered { state: &state, route: path.as_str(), start: Instant::now(), answered: false };
    let response = next.run(req).await;
    pending.answered = true;
    state.metrics().observe_request(path.as_str(), response.status().as_str(), pending.start.elapsed());
    response
}

/// 200 with `body` as `content_type`.
pub(crate) fn static_page(content_type: &'static str, body: &'static str) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A timeout in seconds, `None` for no limit.
fn secs(t: Option<std::time::Duration>) -> Option<f64> {
    t.map(|t| t.as_secs_f64())
}

/// 500 unless every value is finite: a number the model could not compute is an error, never a
/// `null` (which is how JSON would write it) in a 200 answer.
fn finite(what: &str, values: impl IntoIterator<Item = f32>) -> Result<(), ApiError> {
    match values.into_iter().find(|v| !v.is_finite()) {
        Some(v) => Err(ApiError::backend(format!("the model gave a non-finite {what} ({v})"))),
        None => Ok(()),
    }
}

/// The only result of a one-request judge call, library errors as API errors.
fn one<T>(results: Vec<pairrm::Result<T>>) -> Result<T, ApiError> {
    results.into_iter().next().unwrap_or_else(|| Err(pairrm::Error::model("server", "no result"))).map_err(Into::into)
}

/// All results of a judge call, or the first error.
fn collect<T>(results: Vec<pairrm::Result<T>>) -> Result<Vec<T>, ApiError> {
    results.into_iter().collect::<pairrm::Result<Vec<T>>>().map_err(Into::into)
}

/// A scorer that remembers every logit it returned, to rebuild a rank's comparison matrix.
struct Recording<'a, S> {
    inner: &'a S,
    seen: Mutex<HashMap<Pair, f32>>,
}

impl<'a, S: PairScorer> Recording<'a, S> {
    fn new(inner: &'a S) -> Self {
        Recording { inner, seen: Mutex::new(HashMap::new()) }
    }

    /// `matrix[i][j]` = logit(cᵢ, cⱼ) as the rank used it, 0 on the diagonal.
    fn matrix(&self, request: &RankRequest) -> Result<Option<Vec<Vec<f32>>>, ApiError> {
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let source: std::sync::Arc<str> =
            format!("{}{}", request.instruction.as_deref().unwrap_or(""), request.source).into();
        let c = &request.candidates;
        let mut matrix = vec![vec![0.0f32; c.len()]; c.len()];
        for (i, row) in matrix.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate().filter(|&(j, _)| j != i) {
                let pair = Pair { source: source.clone(), left: c[i].as_str().into(), right: c[j].as_str().into() };
                *cell = *seen
                    .get(&pair)
                    .ok_or_else(|| ApiError::backend(format!("no logit recorded for candidates {i} and {j}")))?;
            }
        }
        Ok(Some(matrix))
    }
}

impl<S: PairScorer> PairScorer for Recording<'_, S> {
    fn logits(&self, pairs: &[Pair]) -> Vec<pairrm::Result<f32>> {
        let results = self.inner.logits(pairs);
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (pair, result) in pairs.iter().zip(&results) {
            if let Ok(logit) = result {
                seen.insert(pair.clone(), *logit);
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerank_orders_best_first_ties_by_index_and_cuts() {
        let texts = vec!["a".to_string(), "b".into(), "c".into(), "d".into()];
        let items = reranked(texts.clone(), &[0.5, 2.0, 0.5, -1.0], None, false);
        let order: Vec<usize> = items.iter().map(|i| i.index).collect();
        assert_eq!(order, [1, 0, 2, 3]);
        assert!(items.iter().all(|i| i.text.is_none()));
        let items = reranked(texts, &[0.5, 2.0, 0.5, -1.0], Some(2), true);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].text.as_deref(), Some("b"));
        assert_eq!(items[1].score, 0.5);
    }

    /// logit(left, right) = len(left) - len(right).
    struct Lengths;
    impl PairScorer for Lengths {
        fn logits(&self, pairs: &[Pair]) -> Vec<pairrm::Result<f32>> {
            pairs.iter().map(|p| Ok(p.left.len() as f32 - p.right.len() as f32)).collect()
        }
    }

    #[test]
    fn the_recorded_matrix_is_the_one_rank_used() {
        let request = RankRequest {
            instruction: Some("i ".into()),
            source: "s".into(),
            candidates: vec!["aaa".into(), "b".into(), "aaa".into()],
        };
        let recording = Recording::new(&Lengths);
        let ranked = one(judge::rank(&recording, std::slice::from_ref(&request))).unwrap();
        let matrix = recording.matrix(&request).unwrap().unwrap();
        assert_eq!(matrix, vec![vec![0.0, 2.0, 0.0], vec![-2.0, 0.0, -2.0], vec![0.0, 2.0, 0.0]]);
        assert_eq!(judge::scores_from_matrix(&matrix).unwrap(), ranked.scores);
    }
}
