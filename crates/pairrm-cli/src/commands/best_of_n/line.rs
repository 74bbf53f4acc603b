//! Input lines of `pairrm best-of-n`: what to ask the generator, and how PairRM sees the answers.
//!
//! - `{"prompt": str, "instruction"?: str, "source"?: str}`: the prompt goes to
//!   `/v1/completions` (or, with `--chat`, to `/v1/chat/completions` as one user message). PairRM
//!   reads `instruction + source` as the source, `source` defaulting to the prompt (give it when
//!   the prompt carries a chat template PairRM should not see), and the samples as candidates.
//! - `{"messages": [...]}`: the messages go to `/v1/chat/completions` unchanged. PairRM reads the
//!   conversation as `compare_conversations` renders it, the sample being the last assistant turn
//!   (see [`Judged::rank_request`]).

use pairrm::judge::{conversation_request, RankRequest, Turn};
use serde_json::{json, Value};

use crate::openai::Prompt;

/// A parsed line: the prompt to sample and how the samples are judged.
#[derive(Debug, Clone, PartialEq)]
pub struct LineRequest {
    /// What is sent to the generator.
    pub prompt: Prompt,
    /// How PairRM reads the samples.
    pub judged: Judged,
}

/// How PairRM reads a line's samples.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    /// Source `instruction + source`; the samples are the candidates as they are.
    Text {
        /// Prepended to the source without separator.
        instruction: Option<String>,
        /// The source text.
        source: String,
    },
    /// A conversation ending with a user turn; each sample completes it as the last assistant turn.
    Conversation {
        /// The user and assistant turns (system messages left out), starting and ending with USER.
        turns: Vec<Turn>,
    },
}

impl Judged {
    /// The ranking request for `samples`.
    ///
    /// For a conversation, sample `k` completes the turns as conversation `k`, and the request is
    /// what `compare_conversations` builds for any two of them ([`conversation_request`]):
    /// instruction [`pairrm::judge::CONVERSATION_INSTRUCTION`], source
    /// `"USER: <u1>\nAssistant: <Response 1>\n...\nUSER: <uK>\nAssistant: <Response K>"`, and
    /// candidate `k` = `"<Response 1>: <a1>\n...\n<Response K>: <sample k>"` (earlier assistant
    /// turns included, as in the reference). Ranking these candidates is thus exactly comparing
    /// the completed conversations pairwise.
    pub fn rank_request(&self, samples: &[String]) -> Result<RankRequest, String> {
        match self {
            Judged::Text { instruction, source } => Ok(RankRequest {
                instruction: instruction.clone(),
                source: source.clone(),
                candidates: samples.to_vec(),
            }),
            Judged::Conversation { turns } => {
                let mut conversation = turns.clone();
                conversation.push(Turn::new("ASSISTANT", ""));
                let mut rendered = None;
                let mut candidates = Vec::with_capacity(samples.len());
                for sample in samples {
                    conversation.last_mut().expect("pushed above").content = sample.clone();
                    let request = conversation_request(&conversation, &conversation).map_err(|e| e.to_string())?;
                    candidates.push(request.a);
                    rendered.get_or_insert((request.instruction, request.source));
                }
                let (instruction, source) = rendered.ok_or("no samples to rank")?;
                Ok(RankRequest { instruction, source, candidates })
            }
        }
    }
}

/// Parses one line (a JSON object). `chat`: send plain prompts to the chat endpoint.
pub fn parse(value: Value, chat: bool) -> Result<LineRequest, String> {
    let Value::Object(mut fields) = value else { return Err("expected a JSON object".into()) };
    let mut text_field = |name: &str| match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` must be a string")),
    };
    let prompt = text_field("prompt")?;
    let instruction = text_field("instruction")?;
    let source = text_field("source")?;
    let messages = fields.remove("messages").filter(|m| !m.is_null());
    match (prompt, messages) {
        (Some(_), Some(_)) => Err("give either `prompt` or `messages`, not both".into()),
        (None, None) => Err("a line needs `prompt` (a string) or `messages` (chat messages)".into()),
        (Some(prompt), None) => {
            let judged = Judged::Text { instruction, source: source.unwrap_or_else(|| prompt.clone()) };
            let prompt = if chat {
                Prompt::Messages(vec![json!({"role": "user", "content": prompt})])
            } else {
                Prompt::Text(prompt)
            };
            Ok(LineRequest { prompt, judged })
        }
        (None, Some(messages)) => {
            if instruction.is_some() || source.is_some() {
                return Err("`instruction` and `source` apply to `prompt` lines only (a conversation is judged with \
                            the conversation instruction)"
                    .into());
            }
            let Value::Array(messages) = messages else { return Err("`messages` must be an array".into()) };
            let turns = conversation_turns(&messages)?;
            Ok(LineRequest { prompt: Prompt::Messages(messages), judged: Judged::Conversation { turns } })
        }
    }
}

/// The USER/ASSISTANT turns of chat messages: any `system` (or `developer`) messages first, left
/// out; then `user` and `assistant` alternating, from a user message to a user message.
fn conversation_turns(messages: &[Value]) -> Result<Vec<Turn>, String> {
    let mut turns = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("messages[{i}] must be an object with a string `role`"))?;
        let lower = role.to_ascii_lowercase();
        if (lower == "system" || lower == "developer") && turns.is_empty() {
            continue;
        }
        let expected = if turns.len() % 2 == 0 { "user" } else { "assistant" };
        if lower != expected {
            return Err(format!(
                "messages[{i}].role: expected {expected:?}, got {role:?} (after any system messages, turns \
                 alternate user, assistant, ..., and end with user)"
            ));
        }
        let content = message
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("messages[{i}].content must be a string (PairRM reads text)"))?;
        turns.push(Turn::new(if expected == "user" { "USER" } else { "ASSISTANT" }, content));
    }
    if turns.is_empty() {
        return Err("`messages` needs at least one user message".into());
    }
    if turns.len() % 2 == 0 {
        return Err("`messages` must end with a user message (the samples answer it)".into());
    }
    Ok(turns)
}

#[cfg(test)]
mod tests {
    use pairrm::judge::CONVERSATION_INSTRUCTION;

    use super::*;

    fn ok(line: Value, chat: bool) -> LineRequest {
        parse(line, chat).unwrap()
    }

    fn err(line: Value) -> String {
        parse(line, false).unwrap_err()
    }

    fn samples(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prompt_lines() {
        let line = ok(json!({"prompt": "2+2?", "id": 7}), false);
        assert_eq!(line.prompt, Prompt::Text("2+2?".into()));
        assert_eq!(line.judged, Judged::Text { instruction: None, source: "2+2?".into() });
        let request = line.judged.rank_request(&samples(&["4", "5"])).unwrap();
        assert_eq!(request, RankRequest { instruction: None, source: "2+2?".into(), candidates: samples(&["4", "5"]) });
        // Instruction and an explicit source.
        let line = ok(json!({"prompt": "<|user|>2+2?<|assistant|>", "source": "2+2?", "instruction": "Math: "}), false);
        assert_eq!(line.judged, Judged::Text { instruction: Some("Math: ".into()), source: "2+2?".into() });
        // --chat: one user message, judged as plain text.
        let line = ok(json!({"prompt": "hi", "messages": null}), true);
        assert_eq!(line.prompt, Prompt::Messages(vec![json!({"role": "user", "content": "hi"})]));
        assert_eq!(line.judged, Judged::Text { instruction: None, source: "hi".into() });
    }

    #[test]
    fn message_lines_are_judged_as_conversations() {
        let messages = json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello!"},
            {"role": "user", "content": "how are you?"}
        ]);
        let line = ok(json!({"messages": messages.clone()}), false);
        assert_eq!(line.prompt, Prompt::Messages(messages.as_array().unwrap().clone()));
        let request = line.judged.rank_request(&samples(&["fine", "bad"])).unwrap();
        assert_eq!(request.instruction.as_deref(), Some(CONVERSATION_INSTRUCTION));
        assert_eq!(request.source, "USER: hi\nAssistant: <Response 1>\nUSER: how are you?\nAssistant: <Response 2>");
        assert_eq!(
            request.candidates,
            ["<Response 1>: hello!\n<Response 2>: fine", "<Response 1>: hello!\n<Response 2>: bad"]
        );
        // The same strings compare_conversations builds.
        let conv = |last: &str| {
            vec![
                Turn::new("USER", "hi"),
                Turn::new("ASSISTANT", "hello!"),
                Turn::new("USER", "how are you?"),
                Turn::new("ASSISTANT", last),
            ]
        };
        let pair = conversation_request(&conv("fine"), &conv("bad")).unwrap();
        assert_eq!((pair.instruction, pair.source), (request.instruction, request.source));
        assert_eq!((pair.a, pair.b), (request.candidates[0].clone(), request.candidates[1].clone()));
        // One user turn; any case of role names.
        let line = ok(json!({"messages": [{"role": "User", "content": "q"}]}), false);
        let request = line.judged.rank_request(&samples(&["a"])).unwrap();
        assert_eq!(request.source, "USER: q\nAssistant: <Response 1>");
        assert_eq!(request.candidates, ["<Response 1>: a"]);
        assert!(line.judged.rank_request(&[]).is_err());
    }

    #[test]
    fn invalid_lines_say_what_is_wrong() {
        assert!(err(json!({})).contains("needs `prompt`"));
        assert!(err(json!({"prompt": 3})).contains("`prompt` must be a string"));
        assert!(err(json!({"prompt": "p", "instruction": ["x"]})).contains("`instruction` must be a string"));
        assert!(err(json!({"prompt": "p", "messages": []})).contains("not both"));
        assert!(err(json!({"messages": "hi"})).contains("must be an array"));
        assert!(err(json!({"messages": [{"role": "user", "content": "q"}], "instruction": "x"}))
            .contains("`prompt` lines only"));
        assert!(err(json!({"messages": []})).contains("at least one user message"));
        assert!(err(json!({"messages": [{"role": "system", "content": "s"}]})).contains("at least one user message"));
        let e = err(json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}));
        assert!(e.contains("must end with a user message"), "{e}");
        let e = err(json!({"messages": [{"role": "assistant", "content": "a"}]}));
        assert!(e.starts_with("messages[0].role: expected \"user\", got \"assistant\""), "{e}");
        let e = err(json!({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"}]}));
        assert!(e.starts_with("messages[1].role: expected \"assistant\", got \"system\""), "{e}");
        let e = err(json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}]}));
        assert!(e.starts_with("messages[0].content must be a string"), "{e}");
        assert!(err(json!({"messages": ["hi"]})).starts_with("messages[0] must be an object"));
        assert_eq!(parse(json!([1]), false).unwrap_err(), "expected a JSON object");
    }
}
