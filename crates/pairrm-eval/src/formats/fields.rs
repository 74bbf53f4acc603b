//! Reading the fields of one JSON object with messages that name the field and what was found.

use serde_json::{Map, Value};

use pairrm::judge::{conversation_request, CompareRequest, Turn};

/// One row's JSON object.
pub struct Fields(Map<String, Value>);

/// What kind of JSON value `v` is, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Fields {
    /// Parses `bytes` as one JSON object.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        Self::from_value(value)
    }

    /// Takes a parsed value, which must be an object.
    pub fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Object(map) => Ok(Fields(map)),
            other => Err(format!("expected a JSON object, got {}", kind(&other))),
        }
    }

    /// The whole object.
    pub fn object(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The field's value, if present and not null.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A required value.
    pub fn value(&self, name: &str) -> Result<&Value, String> {
        self.get(name).ok_or_else(|| format!("missing field `{name}`"))
    }

    /// A required string.
    pub fn str(&self, name: &str) -> Result<&str, String> {
        let v = self.value(name)?;
        v.as_str().ok_or_else(|| format!("field `{name}` must be a string, got {}", kind(v)))
    }

    /// An optional string.
    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, String> {
        self.get(name)
            .map(|v| v.as_str().ok_or_else(|| format!("field `{name}` must be a string, got {}", kind(v))))
            .transpose()
    }

    /// An optional string or number, as text (ids, question ids).
    pub fn opt_scalar(&self, name: &str) -> Result<Option<String>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(v) => Err(format!("field `{name}` must be a string or a number, got {}", kind(v))),
        }
    }

    /// A required conversation: an array of `{"role", "content"}` turns.
    pub fn turns(&self, name: &str) -> Result<Vec<Turn>, String> {
        turns_of(self.value(name)?, name)
    }
}

/// Reads an array of `{"role", "content"}` turns; `name` is the field, for messages.
pub fn turns_of(v: &Value, name: &str) -> Result<Vec<Turn>, String> {
    serde_json::from_value::<Vec<Turn>>(v.clone())
        .map_err(|e| format!("field `{name}` must be an array of {{\"role\", \"content\"}} turns: {e}"))
}

/// The request for a single-turn pair: `instruction + source` with answers `a` and `b`; with
/// `conversation`, the same pair as a one-turn conversation (`USER: …`), as RewardBench runs PairRM.
pub fn plain_request(
    instruction: Option<&str>,
    source: &str,
    a: &str,
    b: &str,
    conversation: bool,
) -> Result<CompareRequest, String> {
    if conversation {
        let user = format!("{}{source}", instruction.unwrap_or(""));
        let conv = |answer: &str| [Turn::new("USER", user.clone()), Turn::new("ASSISTANT", answer)];
        return conversation_request(&conv(a), &conv(b)).map_err(|e| e.to_string());
    }
    Ok(CompareRequest { instruction: instruction.map(str::to_string), source: source.into(), a: a.into(), b: b.into() })
}

/// The request for two conversations, checked as `compare_conversations` checks them. A single
/// exchange becomes a plain pair (the USER turn as source, the ASSISTANT turns as answers) unless
/// `conversation` is set — LLM-Blender's own rule for its evaluation sets; longer conversations
/// always use the conversation format.
pub fn conversation_pair(a: &[Turn], b: &[Turn], conversation: bool) -> Result<CompareRequest, String> {
    let request = conversation_request(a, b).map_err(|e| e.to_string())?;
    if a.len() == 2 && !conversation {
        return Ok(CompareRequest {
            instruction: None,
            source: a[0].content.clone(),
            a: a[1].content.clone(),
            b: b[1].content.clone(),
        });
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pairrm::judge::CONVERSATION_INSTRUCTION;

    #[test]
    fn fields_explain_what_is_wrong() {
        let f = Fields::parse(br#"{"s": "x", "n": 3, "z": null, "l": [1]}"#).unwrap();
        assert_eq!(f.str("s").unwrap(), "x");
        assert_eq!(f.str("missing").unwrap_err(), "missing field `missing`");
        assert_eq!(f.str("z").unwrap_err(), "missing field `z`");
        assert_eq!(f.str("n").unwrap_err(), "field `n` must be a string, got a number");
        assert_eq!(f.opt_str("z").unwrap(), None);
        assert_eq!(f.opt_str("l").unwrap_err(), "field `l` must be a string, got an array");
        assert_eq!(f.opt_scalar("n").unwrap().as_deref(), Some("3"));
        assert_eq!(f.opt_scalar("s").unwrap().as_deref(), Some("x"));
        assert!(f.opt_scalar("l").is_err());
        assert!(f.turns("l").unwrap_err().starts_with("field `l` must be an array of"));
        assert_eq!(Fields::parse(b"[1]").err().unwrap(), "expected a JSON object, got an array");
        assert!(Fields::parse(b"{").err().unwrap().starts_with("invalid JSON: "));
    }

    #[test]
    fn single_exchanges_are_plain_pairs_unless_asked() {
        let a = [Turn::new("user", "Q"), Turn::new("assistant", "A1")];
        let b = [Turn::new("user", "Q"), Turn::new("assistant", "B1")];
        let plain = conversation_pair(&a, &b, false).unwrap();
        assert_eq!(plain, CompareRequest { instruction: None, source: "Q".into(), a: "A1".into(), b: "B1".into() });
        let conv = conversation_pair(&a, &b, true).unwrap();
        assert_eq!(conv, conversation_request(&a, &b).unwrap());
        assert_eq!(conv.instruction.as_deref(), Some(CONVERSATION_INSTRUCTION));
        assert_eq!(plain_request(None, "Q", "A1", "B1", true).unwrap(), conv);
        assert_eq!(plain_request(Some("Do: "), "Q", "x", "y", false).unwrap().instruction.as_deref(), Some("Do: "));
        let bad = [Turn::new("assistant", "Q"), Turn::new("user", "A1")];
        assert!(conversation_pair(&bad, &b, false).unwrap_err().contains("conversation_a[0].role"));
    }
}
