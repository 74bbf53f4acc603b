//! The JSON of the OpenAI-compatible API: request bodies and the parts of responses we read.

use serde::Serialize;
use serde_json::{Map, Value};

/// Which API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/completions`: a plain prompt, choices carry `text`.
    Completions,
    /// `/v1/chat/completions`: chat messages, choices carry `message.content`.
    ChatCompletions,
}

impl Endpoint {
    /// The path below `/v1`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "completions",
            Endpoint::ChatCompletions => "chat/completions",
        }
    }
}

/// What to sample answers to.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// A plain prompt, sent to [`Endpoint::Completions`] as `prompt`.
    Text(String),
    /// Chat messages, sent to [`Endpoint::ChatCompletions`] as `messages`, unchanged.
    Messages(Vec<Value>),
}

impl Prompt {
    /// The endpoint this prompt is sent to.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            Prompt::Text(_) => Endpoint::Completions,
            Prompt::Messages(_) => Endpoint::ChatCompletions,
        }
    }
}

/// Body fields set by [`Params::body`] itself, which `extra` may not hold.
pub const RESERVED_FIELDS: [&str; 6] = ["model", "prompt", "messages", "n", "seed", "stream"];

/// The model and sampling settings sent with every request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// The served model's name (`model`).
    pub model: String,
    /// `temperature`, when given.
    pub temperature: Option<f64>,
    /// `top_p`, when given.
    pub top_p: Option<f64>,
    /// `max_tokens`, when given.
    pub max_tokens: Option<u64>,
    /// `stop` sequences, when any.
    pub stop: Vec<String>,
    /// More fields sent as given (server-specific settings such as `top_k`); the fields above win
    /// over them, and none may be one of [`RESERVED_FIELDS`].
    pub extra: Map<String, Value>,
}

impl Params {
    /// The request body asking for `n` samples of `prompt` (not streamed), with `seed` when given.
    pub fn body(&self, prompt: &Prompt, n: usize, seed: Option<u64>) -> Value {
        let mut body = self.extra.clone();
        body.insert("model".into(), self.model.clone().into());
        match prompt {
            Prompt::Text(text) => body.insert("prompt".into(), text.clone().into()),
            Prompt::Messages(messages) => body.insert("messages".into(), Value::Array(messages.clone())),
        };
        body.insert("n".into(), n.into());
        body.insert("stream".into(), false.into());
        if let Some(seed) = seed {
            body.insert("seed".into(), seed.into());
        }
        if let Some(t) = self.temperature {
            body.insert("temperature".into(), t.into());
        }
        if let Some(p) = self.top_p {
            body.insert("top_p".into(), p.into());
        }
        if let Some(k) = self.max_tokens {
            body.insert("max_tokens".into(), k.into());
        }
        if !self.stop.is_empty() {
            body.insert("stop".into(), self.stop.clone().into());
        }
        Value::Object(body)
    }
}

/// Token counts reported by the server (`usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens of the prompt (counted once per request by most servers).
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Their sum, as the server reports it.
    pub total_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// The answer to one request: the sampled texts in choice order, and the token usage if the
/// server reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// One text per choice, ordered by the choices' `index`.
    pub texts: Vec<String>,
    /// The server's `usage`, when present.
    pub usage: Option<Usage>,
}

/// Reads a successful (2xx) response body of `endpoint`.
///
/// Choices are ordered by their `index` (position when absent). A chat choice's `content` may be
/// `null` (an empty answer). The error says what is wrong and quotes the start of the body.
pub fn parse_completion(endpoint: Endpoint, body: &[u8]) -> Result<Completion, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the response is not valid JSON ({e}): {}", snippet(body)))?;
    let Some(object) = value.as_object() else {
        return Err(format!("the response is not a JSON object: {}", snippet(body)));
    };
    let Some(choices) = object.get("choices").and_then(Value::as_array) else {
        return Err(match object.get("error").and_then(message_of) {
            Some(message) => format!("the server answered with an error: {message}"),
            None => format!("the response has no `choices` array: {}", snippet(body)),
        });
    };
    let mut indexed = Vec::with_capacity(choices.len());
    for (position, choice) in choices.iter().enumerate() {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
        indexed.push((index, choice_text(endpoint, choice).map_err(|e| format!("choice {position}: {e}"))?));
    }
    indexed.sort_by_key(|&(index, _)| index);
    let usage = object.get("usage").filter(|u| u.is_object()).map(|u| {
        let count = |field: &str| u.get(field).and_then(Value::as_u64);
        let (prompt, completion) = (count("prompt_tokens").unwrap_or(0), count("completion_tokens").unwrap_or(0));
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: count("total_tokens").unwrap_or(prompt + completion),
        }
    });
    Ok(Completion { texts: indexed.into_iter().map(|(_, text)| text).collect(), usage })
}

/// The text of one choice: `text` (completions) or `message.content` (chat).
fn choice_text(endpoint: Endpoint, choice: &Value) -> Result<String, String> {
    let text = match endpoint {
        Endpoint::Completions => choice.get("text").ok_or("no `text`")?,
        Endpoint::ChatCompletions => {
            choice.get("message").ok_or("no `message`")?.get("content").unwrap_or(&Value::Null)
        }
    };
    match text {
        Value::String(s) => Ok(s.clone()),
        Value::Null if endpoint == Endpoint::ChatCompletions => Ok(String::new()),
        other => Err(format!("the text is not a string: {}", truncate(&other.to_string()))),
    }
}

/// What an error response says: `error.message`, `error` (a string), `message` or `detail`, else
/// the start of the body.
pub fn error_message(body: &[u8]) -> String {
    let said = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.get("error").and_then(message_of).or_else(|| v.get("message").or(v.get("detail")).and_then(message_of))
    });
    said.unwrap_or_else(|| snippet(body))
}

/// A message from an error value: a string, or an object's `message`.
fn message_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(truncate(s)),
        Value::Object(o) => o.get("message").and_then(Value::as_str).map(truncate),
        _ => None,
    }
}

/// Longest text quoted from a server in an error.
const QUOTE_CHARS: usize = 200;

/// The start of a body, as text, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        format!("{:?}", truncate(text))
    }
}

/// `s` cut to [`QUOTE_CHARS`] characters, with `…` when cut.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_carry_the_prompt_n_seed_and_set_settings_only() {
        let params = Params { model: "m".into(), ..Default::default() };
        assert_eq!(
            params.body(&Prompt::Text("hi".into()), 4, None),
            json!({"model": "m", "prompt": "hi", "n": 4, "stream": false})
        );
        let messages = vec![json!({"role": "user", "content": "hi", "name": "x"})];
        let mut extra = Map::new();
        extra.insert("top_k".into(), json!(20));
        extra.insert("temperature".into(), json!(0.1));
        let params = Params {
            model: "m".into(),
            temperature: Some(0.7),
            top_p: Some(0.9),
            max_tokens: Some(64),
            stop: vec!["\n\n".into()],
            extra,
        };
        assert_eq!(
            params.body(&Prompt::Messages(messages.clone()), 1, Some(7)),
            json!({"model": "m", "messages": messages, "n": 1, "stream": false, "seed": 7,
                   "temperature": 0.7, "top_p": 0.9, "max_tokens": 64, "stop": ["\n\n"], "top_k": 20})
        );
        assert_eq!(Prompt::Text(String::new()).endpoint(), Endpoint::Completions);
        assert_eq!(Prompt::Messages(vec![]).endpoint(), Endpoint::ChatCompletions);
        assert_eq!(Endpoint::ChatCompletions.path(), "chat/completions");
    }

    #[test]
    fn completions_are_read_in_index_order_with_usage() {
        let body = json!({
            "choices": [{"index": 1, "text": "b"}, {"index": 0, "text": "a"}, {"text": "c"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
        });
        let c = parse_completion(Endpoint::Completions, body.to_string().as_bytes()).unwrap();
        assert_eq!(c.texts, ["a", "b", "c"]);
        assert_eq!(c.usage, Some(Usage { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 }));
        // Missing usage, and a usage without total.
        let c = parse_completion(Endpoint::Completions, br#"{"choices": [{"text": "x"}]}"#).unwrap();
        assert_eq!(c.usage, None);
        let body = br#"{"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}"#;
        let c = parse_completion(Endpoint::Completions, body).unwrap();
        assert!(c.texts.is_empty());
        assert_eq!(c.usage.unwrap().total_tokens, 3);
    }

    #[test]
    fn chat_choices_read_message_content_and_null_is_empty() {
        let body = json!({"choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hello"}},
            {"index": 1, "message": {"role": "assistant", "content": null}},
            {"index": 2, "message": {"role": "assistant"}}
        ]});
        let c = parse_completion(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap();
        assert_eq!(c.texts, ["hello", "", ""]);
    }

    #[test]
    fn garbage_is_an_error_that_quotes_the_body() {
        let err = |endpoint, body: &str| parse_completion(endpoint, body.as_bytes()).unwrap_err();
        let e = err(Endpoint::Completions, "<html>oops</html>");
        assert!(e.starts_with("the response is not valid JSON"), "{e}");
        assert!(e.contains("<html>oops</html>"), "{e}");
        assert!(err(Endpoint::Completions, "").contains("(empty body)"));
        assert!(err(Endpoint::Completions, "[1]").starts_with("the response is not a JSON object"));
        assert!(err(Endpoint::Completions, r#"{"id": 1}"#).starts_with("the response has no `choices` array"));
        assert_eq!(
            err(Endpoint::Completions, r#"{"error": {"message": "model not loaded"}}"#),
            "the server answered with an error: model not loaded"
        );
        assert_eq!(err(Endpoint::Completions, r#"{"choices": [{"message": {}}]}"#), "choice 0: no `text`");
        assert_eq!(err(Endpoint::ChatCompletions, r#"{"choices": [{"text": "x"}]}"#), "choice 0: no `message`");
        assert_eq!(
            err(Endpoint::Completions, r#"{"choices": [{"text": "a"}, {"text": 5}]}"#),
            "choice 1: the text is not a string: 5"
        );
        let long = format!("{{\"x\": \"{}\"", "y".repeat(1000));
        let e = err(Endpoint::Completions, &long);
        assert!(e.len() < 400 && e.contains('…'), "{e}");
    }

    #[test]
    fn error_messages_come_from_the_usual_fields() {
        assert_eq!(error_message(br#"{"error": {"message": "slow down", "type": "rate"}}"#), "slow down");
        assert_eq!(error_message(br#"{"error": "overloaded"}"#), "overloaded");
        assert_eq!(error_message(br#"{"message": "no such model"}"#), "no such model");
        assert_eq!(error_message(br#"{"detail": "Not Found"}"#), "Not Found");
        assert_eq!(error_message(b"Bad Gateway"), "\"Bad Gateway\"");
        assert_eq!(error_message(b""), "(empty body)");
    }

    #[test]
    fn usage_adds_up() {
        let mut u = Usage { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 };
        u += Usage { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 };
        assert_eq!(u, Usage { prompt_tokens: 11, completion_tokens: 22, total_tokens: 33 });
    }
}
