//! The JSON bodies of the API (documented in the OpenAPI description) and their conversion to
//! the library's requests.

use pairrm::judge::{
    CompareInput, CompareMode, CompareRequest, CompareResult, ConversationPair, ReferenceMode, SelectMethod, Turn,
};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::backend::ModelInfo;

/// `POST /compare`: is A better than B, for each pair?
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with `pairs` (and optionally `mode`)")]
#[schema(example = json!({"pairs": [{"source": "What is 2+2?", "a": "4", "b": "5"}], "mode": "both"}))]
pub struct CompareBody {
    /// The comparisons: pairs of answers or pairs of conversations (at most
    /// `--max-client-batch-size`).
    pub pairs: Vec<PairItem>,
    /// How to compare (default `both`).
    #[serde(default)]
    pub mode: Mode,
}

/// How A is compared with B. In every mode, logit > 0 means A is better.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// logit(A, B): one pass.
    Ab,
    /// −logit(B, A): one pass.
    Ba,
    /// logit(A, B) − logit(B, A): two passes, cancels the position bias. The default.
    #[default]
    Both,
}

impl From<Mode> for CompareMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Ab => CompareMode::Ab,
            Mode::Ba => CompareMode::Ba,
            Mode::Both => CompareMode::Both,
        }
    }
}

/// One comparison: two answers to a prompt, or two conversations (an object with
/// `conversation_a` / `conversation_b` is a conversation pair).
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[serde(untagged)]
pub enum PairItem {
    /// Two answers to `instruction + source`.
    Answers(AnswerPair),
    /// Two conversations with the same USER turns, compared by their ASSISTANT turns.
    Conversations(ConversationItem),
}

impl<'de> Deserialize<'de> for PairItem {
    /// Chooses the variant by its fields ([`CompareInput::is_conversation`], as the CLI and `pairrm
    /// eval`), so that errors name the right fields.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if !value.is_object() {
            return Err(D::Error::custom(format!(
                "must be an object with `source`, `a` and `b`, or with `conversation_a` and `conversation_b`; got {}",
                crate::json::json_kind(&value)
            )));
        }
        if value.as_object().is_some_and(CompareInput::is_conversation) {
            serde_json::from_value(value).map(PairItem::Conversations).map_err(D::Error::custom)
        } else {
            serde_json::from_value(value).map(PairItem::Answers).map_err(D::Error::custom)
        }
    }
}

/// Two answers to one prompt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with `source`, `a` and `b` (and optionally `instruction`)")]
pub struct AnswerPair {
    /// Optional instruction, prepended to `source` without separator.
    #[serde(default)]
    pub instruction: Option<String>,
    /// The prompt.
    pub source: String,
    /// Answer A.
    pub a: String,
    /// Answer B.
    pub b: String,
}

/// Two conversations: alternating USER / ASSISTANT turns, starting with USER; the same USER
/// turns in both.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with `conversation_a` and `conversation_b`")]
pub struct ConversationItem {
    /// Conversation A.
    pub conversation_a: Vec<TurnItem>,
    /// Conversation B.
    pub conversation_b: Vec<TurnItem>,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a turn: an object with `role` and `content`")]
pub struct TurnItem {
    /// `USER` or `ASSISTANT` (any case).
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl PairItem {
    /// The library's request for this comparison.
    ///
    /// # Errors
    /// The conversation's validation error (field named).
    pub fn into_request(self) -> pairrm::Result<CompareRequest> {
        match self {
            PairItem::Answers(p) => Ok(CompareRequest { instruction: p.instruction, source: p.source, a: p.a, b: p.b }),
            PairItem::Conversations(c) => {
                let turns = |t: Vec<TurnItem>| t.into_iter().map(|t| Turn::new(t.role, t.content)).collect::<Vec<_>>();
                let pair = ConversationPair {
                    conversation_a: turns(c.conversation_a),
                    conversation_b: turns(c.conversation_b),
                };
                pairrm::judge::conversation_request(&pair.conversation_a, &pair.conversation_b)
            }
        }
    }
}

/// `POST /compare`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompareResponse {
    /// One result per pair, in order.
    pub results: Vec<Comparison>,
}

/// The outcome of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Comparison {
    /// > 0: A is better (in every mode).
    pub logit: f32,
    /// `logit > 0`.
    pub a_better: bool,
}

impl From<CompareResult> for Comparison {
    fn from(r: CompareResult) -> Self {
        Comparison { logit: r.logit, a_better: r.a_better }
    }
}

/// `/rank`'s default strategy: the full matrix (the library's default is the reference's bubble).
fn full_matrix() -> SelectMethod {
    SelectMethod::Full
}

/// `POST /rank`: rank candidate answers to a prompt.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with `source` and `candidates`")]
#[schema(example = json!({"source": "What is 2+2?", "candidates": ["4", "5", "four"]}))]
pub struct RankBody {
    /// Optional instruction, prepended to `source` without separator.
    #[serde(default)]
    pub instruction: Option<String>,
    /// The prompt.
    pub source: String,
    /// The candidates (1 to `--max-client-batch-size`).
    pub candidates: Vec<String>,
    /// `full` (default): scores and ranks; `bubble`: the best candidate only.
    #[serde(default = "full_matrix")]
    pub strategy: SelectMethod,
    /// Seed of the bubble order (the same seed gives the same order everywhere).
    #[serde(default)]
    pub seed: u64,
    /// With `bubble`: find the worst candidate instead of the best.
    #[serde(default)]
    pub worst: bool,
    /// Rank against this reference text instead of the full matrix (`full` only).
    #[serde(default)]
    pub reference: Option<String>,
    /// Rank against this candidate instead of the full matrix (`full` only).
    #[serde(default)]
    pub reference_mode: Option<ReferenceMode>,
    /// With the full matrix: also return it (`matrix[i][j]` = logit(cᵢ, cⱼ)).
    #[serde(default)]
    pub return_matrix: bool,
}

/// `POST /rank`'s answer: scores and ranks, or the chosen candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RankResponse {
    /// `full` strategy.
    Ranked(Ranked),
    /// `bubble` strategy.
    Best(BestOf),
    /// `bubble` strategy with `worst`.
    Worst(WorstOf),
}

/// Scores and ranks, in candidate order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ranked {
    /// Higher is better: the mean over j of (logit(cᵢ, cⱼ) − logit(cⱼ, cᵢ)), or against a
    /// reference how much better each candidate is than the reference.
    pub scores: Vec<f32>,
    /// 1 is best; equal scores share the better rank.
    pub ranks: Vec<usize>,
    /// The candidate used as reference (rank against a `reference_mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_index: Option<usize>,
    /// `matrix[i][j]` = logit(cᵢ, cⱼ), 0 on the diagonal (with `return_matrix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Vec<Vec<f32>>>,
}

/// The best candidate by one bubble pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BestOf {
    /// Index of the best candidate.
    pub best: usize,
    /// The winner, then the loser of each bubble step in step order.
    pub order: Vec<usize>,
}

/// The worst candidate by one bubble pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorstOf {
    /// Index of the worst candidate.
    pub worst: usize,
    /// The loser, then the winner of each bubble step in step order.
    pub order: Vec<usize>,
}

/// `POST /rerank`: texts ordered by how well they answer a query (TEI style). TEI's `truncate`,
/// `truncation_direction` and `raw_scores` are accepted with the values that describe what
/// PairRM does, and refused (422) with the others.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with `query` and `texts`")]
#[schema(example = json!({"query": "What is 2+2?", "texts": ["5", "4"], "top_n": 1}))]
pub struct RerankBody {
    /// The prompt.
    pub query: String,
    /// The texts to order (1 to `--max-client-batch-size`); `documents` is accepted too.
    #[serde(alias = "documents")]
    pub texts: Vec<String>,
    /// Optional instruction, prepended to `query` without separator.
    #[serde(default)]
    pub instruction: Option<String>,
    /// Return only the best `top_n` texts.
    #[serde(default)]
    pub top_n: Option<usize>,
    /// Include each text in the answer.
    #[serde(default)]
    pub return_text: bool,
    /// TEI's `truncate`: PairRM always truncates each text to the model's token limits
    /// (`source_max_length`, `candidate_max_length` in `/info`), so only `true` is accepted.
    #[serde(default)]
    pub truncate: Option<bool>,
    /// TEI's `truncation_direction`: PairRM truncates each text from the right, so only `right`
    /// (or `Right`) is accepted.
    #[serde(default)]
    pub truncation_direction: Option<TruncationDirection>,
    /// TEI's `raw_scores`: the scores are PairRM rank scores, which have no activation to skip,
    /// so only `true` is accepted.
    #[serde(default)]
    pub raw_scores: Option<bool>,
}

/// Which end of a text TEI's `truncate` cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TruncationDirection {
    /// Keep the start of the text (what PairRM does).
    #[serde(alias = "Right")]
    Right,
    /// Keep the end of the text (not supported).
    #[serde(alias = "Left")]
    Left,
}

impl RerankBody {
    /// Refuses the TEI options PairRM cannot honour, naming the field.
    ///
    /// # Errors
    /// The message for the first such field.
    pub fn check_tei_options(&self) -> Result<(), String> {
        if self.truncate == Some(false) {
            return Err("truncate: false is not supported: PairRM always truncates each text to the model's \
                        token limits (source_max_length, candidate_max_length in /info); send true or leave it out"
                .into());
        }
        if self.truncation_direction == Some(TruncationDirection::Left) {
            return Err("truncation_direction: left is not supported: PairRM truncates each text from the right; \
                        send right or leave it out"
                .into());
        }
        if self.raw_scores == Some(false) {
            return Err("raw_scores: false is not supported: the scores are PairRM rank scores, which have no \
                        activation to apply; send true or leave it out"
                .into());
        }
        Ok(())
    }
}

/// One reranked text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RerankItem {
    /// Index of the text in the request.
    pub index: usize,
    /// Its full-matrix rank score (higher is better).
    pub score: f32,
    /// The text (with `return_text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `GET /health`'s answer once the model is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /info`'s answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Info {
    /// The model.
    #[serde(flatten)]
    pub model: ModelInfo,
    /// The server's version.
    pub version: String,
    /// The server's limits.
    pub limits: LimitsInfo,
}

/// The limits in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimitsInfo {
    /// Most tokens in one batch of forward passes.
    pub max_batch_tokens: usize,
    /// Most scoring requests processed at once; more are answered 429.
    pub max_concurrent_requests: usize,
    /// Most pairs, candidates or texts in one request; more are answered 413.
    pub max_client_batch_size: usize,
    /// Largest request body in bytes; larger ones are answered 413.
    pub payload_limit: usize,
    /// Longest a request may take, in seconds, before it is answered 504 (none if absent).
    pub request_timeout_secs: Option<f64>,
    /// Longest a client may take to send a request head, in seconds (none if absent).
    pub header_timeout_secs: Option<f64>,
    /// Longest a client may take to send a request body, in seconds, before 408 (none if absent).
    pub body_timeout_secs: Option<f64>,
    /// Longest a kept-alive connection may stay idle, in seconds (none if absent).
    pub keep_alive_timeout_secs: Option<f64>,
    /// Longest the requests in flight may take to finish on shutdown, in seconds (none if absent).
    pub shutdown_timeout_secs: Option<f64>,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Whether the API needs `Authorization: Bearer <key>`.
    pub api_key_required: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_items_are_told_apart_by_their_fields() {
        let item: PairItem = serde_json::from_str(r#"{"source": "s", "a": "x", "b": "y"}"#).unwrap();
        assert!(matches!(item, PairItem::Answers(_)));
        let item: PairItem = serde_json::from_str(
            r#"{"conversation_a": [{"role": "USER", "content": "q"}, {"role": "ASSISTANT", "content": "x"}],
                "conversation_b": [{"role": "USER", "content": "q"}, {"role": "ASSISTANT", "content": "y"}]}"#,
        )
        .unwrap();
        let request = item.into_request().unwrap();
        assert_eq!(request.a, "<Response 1>: x");
        let err = serde_json::from_str::<PairItem>(r#"{"conversation_a": []}"#).unwrap_err();
        assert!(err.to_string().contains("conversation_b"), "{err}");
        let err = serde_json::from_str::<PairItem>(r#"{"source": "s", "a": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `b`"), "{err}");
    }

    #[test]
    fn invalid_conversations_name_the_field() {
        let item: PairItem = serde_json::from_str(
            r#"{"conversation_a": [{"role": "ASSISTANT", "content": "q"}, {"role": "USER", "content": "x"}],
                "conversation_b": []}"#,
        )
        .unwrap();
        let err = item.into_request().unwrap_err();
        assert!(err.to_string().contains("conversation_a[0].role"), "{err}");
    }

    #[test]
    fn rerank_accepts_documents_and_modes_parse() {
        let body: RerankBody = serde_json::from_str(r#"{"query": "q", "documents": ["a", "b"]}"#).unwrap();
        assert_eq!(body.texts, ["a", "b"]);
        let body: CompareBody = serde_json::from_str(r#"{"pairs": [], "mode": "ab"}"#).unwrap();
        assert_eq!(CompareMode::from(body.mode), CompareMode::Ab);
        let body: CompareBody = serde_json::from_str(r#"{"pairs": []}"#).unwrap();
        assert_eq!(CompareMode::from(body.mode), CompareMode::Both);
        assert!(serde_json::from_str::<CompareBody>(r#"{"pairs": [], "mode": "ba "}"#).is_err());
    }

    #[test]
    fn rank_answers_serialize_untagged() {
        let r = RankResponse::Best(BestOf { best: 2, order: vec![2, 0, 1] });
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"best":2,"order":[2,0,1]}"#);
        let r = RankResponse::Ranked(Ranked { scores: vec![0.5], ranks: vec![1], reference_index: None, matrix: None });
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"scores":[0.5],"ranks":[1]}"#);
    }
}
