//! One input row: its prompt (text or chat), its candidates and its id, read from a JSON value
//! whatever the file format was (Arrow and Parquet rows are converted to JSON values first, so
//! every format is parsed by the same code).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use pairrm::judge::{conversation_request, Turn};

/// The column (field) names rows are read from. The defaults read the three layouts:
/// `{prompt, candidates}`, `{messages, candidates}` and UltraFeedback's
/// `{instruction, completions: [{model, response}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Columns {
    /// The prompt text. When it is the default `prompt` and a row has none, `instruction` is
    /// read instead (UltraFeedback).
    pub prompt: String,
    /// The chat history (`[{role, content}]`, ending with a user turn); read before the prompt.
    pub messages: String,
    /// The candidates: strings, or objects with a `response` (UltraFeedback), `content` or
    /// `text` field. When it is the default `candidates` and a row has none, `completions` is
    /// read instead.
    pub candidates: String,
    /// The row id, carried to the output when present.
    pub id: String,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            prompt: "prompt".into(),
            messages: "messages".into(),
            candidates: "candidates".into(),
            id: "id".into(),
        }
    }
}

/// UltraFeedback's prompt column, read when the default prompt column is missing.
const FALLBACK_PROMPT: &str = "instruction";
/// UltraFeedback's candidates column, read when the default candidates column is missing.
const FALLBACK_CANDIDATES: &str = "completions";
/// The fields of a candidate object that hold its text, in the order they are tried.
const CANDIDATE_TEXT_FIELDS: [&str; 3] = ["response", "content", "text"];

impl Columns {
    /// Every column a row may be read from (the fallbacks included), for projecting files.
    pub fn wanted(&self) -> Vec<&str> {
        let mut names = vec![self.prompt.as_str(), self.messages.as_str(), self.candidates.as_str(), self.id.as_str()];
        if self.prompt == Columns::default().prompt {
            names.push(FALLBACK_PROMPT);
        }
        if self.candidates == Columns::default().candidates {
            names.push(FALLBACK_CANDIDATES);
        }
        names
    }

    fn field<'a>(&self, value: &'a Value, name: &str, fallback: Option<&str>, default: &str) -> Option<&'a Value> {
        let found = value.get(name).filter(|v| !v.is_null());
        match (found, fallback) {
            (None, Some(fallback)) if name == default => value.get(fallback).filter(|v| !v.is_null()),
            _ => found,
        }
    }
}

/// A row's prompt: a text, or a chat history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// A plain prompt.
    Text(String),
    /// Chat turns, the last one from the user; the candidates answer it.
    Chat(Vec<Turn>),
}

/// The id of a row, as carried to the output: an integer, or a text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RowId {
    /// An integer id.
    Int(i64),
    /// Any other id (strings as they are, other values as their JSON text).
    Text(String),
}

/// The type of the output's `id` column, decided once for the whole input (so that every chunk
/// and every shard writes the same schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdKind {
    /// The input has no id column: the output has none.
    None,
    /// Every id is an integer: a 64-bit integer column.
    Int,
    /// Ids of any other kind: a string column (integers written in decimal).
    Text,
}

impl IdKind {
    /// The kind that holds both `self` and an id `value`.
    pub fn widen(self, value: &Value) -> IdKind {
        match (self, value) {
            (_, Value::Null) => self,
            (IdKind::None | IdKind::Int, v) if v.as_i64().is_some() => IdKind::Int,
            _ => IdKind::Text,
        }
    }

    /// `value` as an id of this kind (`None` for a missing id or an input without ids).
    pub fn id(self, value: Option<&Value>) -> Option<RowId> {
        let value = value.filter(|v| !v.is_null())?;
        match (self, value) {
            (IdKind::None, _) => None,
            (IdKind::Int, v) if v.as_i64().is_some() => v.as_i64().map(RowId::Int),
            (_, Value::String(s)) => Some(RowId::Text(s.clone())),
            (_, other) => Some(RowId::Text(other.to_string())),
        }
    }
}

/// A parsed row, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    /// The prompt.
    pub prompt: Prompt,
    /// The candidate answers, in input order.
    pub candidates: Vec<String>,
}

/// The row's id under `columns`, of kind `kind`.
pub fn row_id(value: &Value, columns: &Columns, kind: IdKind) -> Option<RowId> {
    kind.id(value.get(&columns.id))
}

/// Parses one row. The error names the offending field.
pub fn parse_row(value: &Value, columns: &Columns) -> Result<LabelRow, String> {
    if !value.is_object() {
        return Err("expected an object".into());
    }
    let defaults = Columns::default();
    let prompt = if let Some(messages) = value.get(&columns.messages).filter(|v| !v.is_null()) {
        Prompt::Chat(parse_messages(messages, &columns.messages)?)
    } else {
        match columns.field(value, &columns.prompt, Some(FALLBACK_PROMPT), &defaults.prompt) {
            Some(Value::String(s)) => Prompt::Text(s.clone()),
            Some(_) => return Err(format!("{}: expected a string", columns.prompt)),
            None => {
                return Err(format!(
                    "no prompt: expected a `{}`{} or `{}` field",
                    columns.prompt,
                    if columns.prompt == defaults.prompt { format!(", `{FALLBACK_PROMPT}`") } else { String::new() },
                    columns.messages
                ))
            }
        }
    };
    let (name, list) = match value.get(&columns.candidates).filter(|v| !v.is_null()) {
        Some(list) => (columns.candidates.as_str(), list),
        None => match columns.field(value, &columns.candidates, Some(FALLBACK_CANDIDATES), &defaults.candidates) {
            Some(list) => (FALLBACK_CANDIDATES, list),
            None => return Err(format!("no candidates: expected a `{}` field", columns.candidates)),
        },
    };
    let items = list.as_array().ok_or_else(|| format!("{name}: expected a list"))?;
    if items.is_empty() {
        return Err(format!("{name}: must not be empty"));
    }
    let candidates = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            candidate_text(item).ok_or_else(|| {
                format!("{name}[{i}]: expected a string or an object with a string `response`, `content` or `text`")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LabelRow { prompt, candidates })
}

fn candidate_text(item: &Value) -> Option<String> {
    match item {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => {
            CANDIDATE_TEXT_FIELDS.iter().find_map(|k| map.get(*k).and_then(Value::as_str)).map(str::to_string)
        }
        _ => None,
    }
}

fn parse_messages(value: &Value, name: &str) -> Result<Vec<Turn>, String> {
    let items = value.as_array().ok_or_else(|| format!("{name}: expected a list of {{role, content}}"))?;
    if items.is_empty() {
        return Err(format!("{name}: must not be empty"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m.get("role").and_then(Value::as_str);
            let content = m.get("content").and_then(Value::as_str);
            match (role, content) {
                (Some(role), Some(content)) => Ok(Turn::new(role, content)),
                (None, _) => Err(format!("{name}[{i}].role: expected a string")),
                (_, None) => Err(format!("{name}[{i}].content: expected a string")),
            }
        })
        .collect()
}

/// What the model reads for a row: the instruction and source of every pair, and each
/// candidate's text in the candidate slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelView {
    /// Prepended to the source (the conversation instruction for chat rows).
    pub instruction: Option<String>,
    /// The source of every pair.
    pub source: String,
    /// Each candidate as the model reads it.
    pub texts: Vec<String>,
}

impl LabelRow {
    /// The model's view of this row. A text prompt is the source and the candidates are read as
    /// they are. A chat is rendered as `Blender.compare_conversations` renders it, each candidate
    /// completing the history as the last assistant turn; `system` turns are not part of that
    /// format and are left out of the model input (they stay in the output's prompt).
    ///
    /// # Errors
    /// A chat whose turns do not alternate user/assistant from a user turn to a final user turn.
    pub fn model_view(&self) -> Result<ModelView, String> {
        match &self.prompt {
            Prompt::Text(source) => {
                Ok(ModelView { instruction: None, source: source.clone(), texts: self.candidates.clone() })
            }
            Prompt::Chat(turns) => {
                let history: Vec<Turn> =
                    turns.iter().filter(|t| !t.role.eq_ignore_ascii_case("system")).cloned().collect();
                if history.last().is_none_or(|t| !t.role.eq_ignore_ascii_case("user")) {
                    return Err("messages: the last (non-system) turn must be from the user".into());
                }
                let conversation = |answer: &str| {
                    let mut turns = history.clone();
                    turns.push(Turn::new("assistant", answer));
                    turns
                };
                let first = conversation(&self.candidates[0]);
                let mut view: Option<ModelView> = None;
                for candidate in &self.candidates {
                    let request = conversation_request(&first, &conversation(candidate))
                        .map_err(|e| e.to_string().replace("conversation_a", "messages"))?;
                    let view = view.get_or_insert_with(|| ModelView {
                        instruction: request.instruction.clone(),
                        source: request.source.clone(),
                        texts: Vec::with_capacity(self.candidates.len()),
                    });
                    view.texts.push(request.b);
                }
                Ok(view.expect("candidates are not empty"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_three_layouts() {
        let c = Columns::default();
        let plain = parse_row(&json!({"prompt": "p", "candidates": ["a", "b"]}), &c).unwrap();
        assert_eq!(plain, LabelRow { prompt: Prompt::Text("p".into()), candidates: vec!["a".into(), "b".into()] });
        let uf = json!({"instruction": "p", "source": "evol", "completions": [
            {"model": "m1", "response": "a"}, {"model": "m2", "response": "b"}]});
        assert_eq!(parse_row(&uf, &c).unwrap(), plain);
        let chat = json!({"messages": [{"role": "user", "content": "hi"}], "candidates": ["a", "b"]});
        let row = parse_row(&chat, &c).unwrap();
        assert_eq!(row.prompt, Prompt::Chat(vec![Turn::new("user", "hi")]));
    }

    #[test]
    fn overridden_columns_have_no_fallback() {
        let c = Columns { prompt: "q".into(), candidates: "answers".into(), ..Columns::default() };
        let row = parse_row(&json!({"q": "p", "answers": [{"text": "a"}]}), &c).unwrap();
        assert_eq!(row.candidates, vec!["a".to_string()]);
        let err = parse_row(&json!({"instruction": "p", "answers": ["a"]}), &c).unwrap_err();
        assert!(err.contains("`q`"), "{err}");
    }

    #[test]
    fn bad_rows_name_the_field() {
        let c = Columns::default();
        let cases = [
            (json!({"prompt": 1, "candidates": ["a"]}), "prompt: expected a string"),
            (json!({"prompt": "p", "candidates": []}), "candidates: must not be empty"),
            (json!({"prompt": "p", "candidates": ["a", 2]}), "candidates[1]"),
            (json!({"prompt": "p"}), "no candidates"),
            (json!({"candidates": ["a"]}), "no prompt"),
            (json!({"messages": [{"role": "user"}], "candidates": ["a"]}), "messages[0].content"),
            (json!([1]), "expected an object"),
        ];
        for (value, expected) in cases {
            let err = parse_row(&value, &c).unwrap_err();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn id_kinds_widen_and_convert() {
        let kind = [json!(1), json!(null), json!(7)].iter().fold(IdKind::None, |k, v| k.widen(v));
        assert_eq!(kind, IdKind::Int);
        assert_eq!(kind.widen(&json!("x")), IdKind::Text);
        assert_eq!(IdKind::Text.id(Some(&json!(3))), Some(RowId::Text("3".into())));
        assert_eq!(IdKind::Int.id(Some(&json!(3))), Some(RowId::Int(3)));
        assert_eq!(IdKind::None.id(Some(&json!(3))), None);
        assert_eq!(IdKind::Text.id(Some(&json!(null))), None);
    }

    #[test]
    fn chat_view_is_the_conversation_rendering() {
        let turns = vec![
            Turn::new("system", "be nice"),
            Turn::new("user", "hi"),
            Turn::new("assistant", "hello"),
            Turn::new("user", "how?"),
        ];
        let row = LabelRow { prompt: Prompt::Chat(turns), candidates: vec!["well".into(), "badly".into()] };
        let view = row.model_view().unwrap();
        assert_eq!(view.instruction.as_deref(), Some(pairrm::judge::CONVERSATION_INSTRUCTION));
        assert_eq!(view.source, "USER: hi\nAssistant: <Response 1>\nUSER: how?\nAssistant: <Response 2>");
        assert_eq!(
            view.texts,
            vec!["<Response 1>: hello\n<Response 2>: well", "<Response 1>: hello\n<Response 2>: badly"]
        );
        let bad = LabelRow { prompt: Prompt::Chat(vec![Turn::new("assistant", "x")]), candidates: vec!["a".into()] };
        assert!(bad.model_view().is_err());
    }
}
