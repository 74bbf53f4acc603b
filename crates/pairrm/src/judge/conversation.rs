//! `Blender.compare_conversations`: compare two multi-turn conversations that share their USER
//! turns, by their ASSISTANT turns.

use serde::{Deserialize, Deserializer, Serialize};

use super::compare::{compare, CompareMode, CompareRequest, CompareResult};
use super::PairScorer;
use crate::error::{Error, Result};

/// The instruction the reference prepends to a conversation's source (its typo, "coversation",
/// kept: the model was used with this exact text).
pub const CONVERSATION_INSTRUCTION: &str =
    "Finish the following coversation in each i-th turn by filling in <Response i> with your response.";

/// One turn of a conversation: `{"role": "USER" | "ASSISTANT", "content": "..."}`.
///
/// Roles are matched ASCII-case-insensitively: `user`/`assistant` (the usual chat-API spelling)
/// are accepted as well as the reference's `USER`/`ASSISTANT`, which are the only ones the
/// reference's asserts let through. The spelling does not change the model input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// `USER` or `ASSISTANT` (any ASCII case).
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl Turn {
    /// A turn with `role` and `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Turn { role: role.into(), content: content.into() }
    }
}

/// Two conversations to compare: the same USER turns, different ASSISTANT turns.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConversationPair {
    /// Conversation A.
    pub conversation_a: Vec<Turn>,
    /// Conversation B.
    pub conversation_b: Vec<Turn>,
}

/// One comparison as an input line gives it: two answers (`{source, a, b, instruction?}`) or two
/// conversations (`{conversation_a, conversation_b}`).
///
/// Deserialized by [`CompareInput::is_conversation`], the one rule every input that takes both
/// follows (`pairrm compare` lines, the server's `/compare` pairs, `pairrm eval`'s labelled
/// pairs), so that a bad line's error names the fields of the kind it meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareInput {
    /// Two answers to `instruction + source`.
    Answers(CompareRequest),
    /// Two conversations with the same USER turns.
    Conversations(ConversationPair),
}

impl CompareInput {
    /// Whether a JSON object is a pair of conversations: it has `conversation_a` or
    /// `conversation_b` (a null field counts as absent). Anything else is a pair of answers.
    pub fn is_conversation(object: &serde_json::Map<String, serde_json::Value>) -> bool {
        ["conversation_a", "conversation_b"].iter().any(|k| object.get(*k).is_some_and(|v| !v.is_null()))
    }

    /// The comparison as a [`CompareRequest`] (conversations as [`conversation_request`] builds
    /// them).
    ///
    /// # Errors
    /// The conversations' validation errors (field named).
    pub fn into_request(self) -> Result<CompareRequest> {
        match self {
            CompareInput::Answers(request) => Ok(request),
            CompareInput::Conversations(pair) => conversation_request(&pair.conversation_a, &pair.conversation_b),
        }
    }
}

impl<'de> Deserialize<'de> for CompareInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(d)?;
        let conversation = value.as_object().is_some_and(CompareInput::is_conversation);
        let parsed = if conversation {
            serde_json::from_value(value).map(CompareInput::Conversations)
        } else {
            serde_json::from_value(value).map(CompareInput::Answers)
        };
        parsed.map_err(D::Error::custom)
    }
}

/// Checks one conversation: non-empty, an even number of turns, USER at even positions and
/// ASSISTANT at odd ones. `name` is the field name used in errors.
fn check_roles(turns: &[Turn], name: &str) -> Result<()> {
    if turns.is_empty() {
        return Err(Error::invalid_input(name, "must not be empty"));
    }
    if !turns.len().is_multiple_of(2) {
        return Err(Error::invalid_input(
            name,
            format!("must have an even number of turns (USER, ASSISTANT pairs), got {}", turns.len()),
        ));
    }
    for (i, turn) in turns.iter().enumerate() {
        let expected = if i % 2 == 0 { "USER" } else { "ASSISTANT" };
        if !turn.role.eq_ignore_ascii_case(expected) {
            return Err(Error::invalid_input(
                format!("{name}[{i}].role"),
                format!("expected {expected}, got {:?}", turn.role),
            ));
        }
    }
    Ok(())
}

/// The [`CompareRequest`] the reference builds for two conversations:
/// - instruction: [`CONVERSATION_INSTRUCTION`];
/// - source: for each USER turn `k` (from 1), `"USER: " + content + "\nAssistant: <Response k>"`,
///   joined with `"\n"`;
/// - `a` / `b`: for each ASSISTANT turn `k`, `"<Response k>: " + content`, joined with `"\n"`.
///
/// # Errors
/// [`Error::InvalidInput`] naming the field, checked in the reference's order (A, then B, then
/// both): `conversation_a` / `conversation_b` if empty or of odd length,
/// `conversation_a[i].role` for a wrong role, `conversation_b` if it has a different number of
/// turns, `conversation_b[i].content` if a USER turn differs from A's.
pub fn conversation_request(conversation_a: &[Turn], conversation_b: &[Turn]) -> Result<CompareRequest> {
    check_roles(conversation_a, "conversation_a")?;
    check_roles(conversation_b, "conversation_b")?;
    if conversation_a.len() != conversation_b.len() {
        return Err(Error::invalid_input(
            "conversation_b",
            format!(
                "has {} turns but conversation_a has {}; both must have the same number of turns",
                conversation_b.len(),
                conversation_a.len()
            ),
        ));
    }
    for (i, (a, b)) in conversation_a.iter().zip(conversation_b).enumerate().step_by(2) {
        if a.content != b.content {
            return Err(Error::invalid_input(
                format!("conversation_b[{i}].content"),
                format!("USER turns must be the same in both conversations; differs from conversation_a[{i}].content"),
            ));
        }
    }
    let source = conversation_a
        .iter()
        .step_by(2)
        .enumerate()
        .map(|(k, turn)| format!("USER: {}\nAssistant: <Response {}>", turn.content, k + 1))
        .collect::<Vec<_>>()
        .join("\n");
    let responses = |turns: &[Turn]| {
        turns
            .iter()
            .skip(1)
            .step_by(2)
            .enumerate()
            .map(|(k, turn)| format!("<Response {}>: {}", k + 1, turn.content))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(CompareRequest {
        instruction: Some(CONVERSATION_INSTRUCTION.to_string()),
        source,
        a: responses(conversation_a),
        b: responses(conversation_b),
    })
}

/// Compares every pair of conversations, as `Blender.compare_conversations`: each pair becomes
/// a [`conversation_request`], then [`compare`] in `mode` (the reference's default is
/// [`CompareMode::Both`]); all passes go in one [`PairScorer::logits`] call. `logit > 0`: A's
/// answers are better.
///
/// # Errors
/// Per pair: the validation errors of [`conversation_request`]; the scorer's error for a pass.
pub fn compare_conversations<S: PairScorer + ?Sized>(
    scorer: &S,
    pairs: &[ConversationPair],
    mode: CompareMode,
) -> Vec<Result<CompareResult>> {
    let requests: Vec<Result<CompareRequest>> =
        pairs.iter().map(|p| conversation_request(&p.conversation_a, &p.conversation_b)).collect();
    let valid: Vec<CompareRequest> = requests.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let mut compared = compare(scorer, &valid, mode).into_iter();
    requests
        .into_iter()
        .map(|request| {
            request
                .and_then(|_| compared.next().unwrap_or_else(|| Err(Error::model("pair scorer", "missing comparison"))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn conv(turns: &[(&str, &str)]) -> Vec<Turn> {
        turns.iter().map(|&(r, c)| Turn::new(r, c)).collect()
    }

    #[test]
    fn inputs_are_told_apart_by_their_fields() {
        let input: CompareInput = serde_json::from_str(r#"{"source": "s", "a": "x", "b": "y"}"#).unwrap();
        assert_eq!(
            input.into_request().unwrap(),
            CompareRequest { instruction: None, source: "s".into(), a: "x".into(), b: "y".into() }
        );
        let text = r#"{"conversation_a": [{"role": "USER", "content": "q"}, {"role": "ASSISTANT", "content": "x"}],
                       "conversation_b": [{"role": "USER", "content": "q"}, {"role": "ASSISTANT", "content": "y"}]}"#;
        let input: CompareInput = serde_json::from_str(text).unwrap();
        assert!(matches!(input, CompareInput::Conversations(_)));
        assert_eq!(input.into_request().unwrap().a, "<Response 1>: x");
        // Errors name the fields of the kind the line meant; a null conversation is absent.
        let err = serde_json::from_str::<CompareInput>(r#"{"conversation_a": []}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `conversation_b`"), "{err}");
        let err = serde_json::from_str::<CompareInput>(r#"{"source": "s", "a": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `b`"), "{err}");
        let input: CompareInput =
            serde_json::from_str(r#"{"source": "s", "a": "x", "b": "y", "conversation_b": null}"#).unwrap();
        assert!(matches!(input, CompareInput::Answers(_)));
    }

    #[test]
    fn formats_like_the_reference() {
        let a = conv(&[("USER", "hi"), ("ASSISTANT", "hello!"), ("USER", "how are you?"), ("ASSISTANT", "fine")]);
        let b = conv(&[("USER", "hi"), ("ASSISTANT", "go away"), ("USER", "how are you?"), ("ASSISTANT", "bad")]);
        let r = conversation_request(&a, &b).unwrap();
        assert_eq!(
            r.instruction.as_deref(),
            Some("Finish the following coversation in each i-th turn by filling in <Response i> with your response.")
        );
        assert_eq!(r.source, "USER: hi\nAssistant: <Response 1>\nUSER: how are you?\nAssistant: <Response 2>");
        assert_eq!(r.a, "<Response 1>: hello!\n<Response 2>: fine");
        assert_eq!(r.b, "<Response 1>: go away\n<Response 2>: bad");
        let one = conversation_request(&a[..2], &b[..2]).unwrap();
        assert_eq!(one.source, "USER: hi\nAssistant: <Response 1>");
        assert_eq!(one.a, "<Response 1>: hello!");
    }

    #[test]
    fn lowercase_roles_are_accepted() {
        let a = conv(&[("user", "q"), ("Assistant", "x")]);
        let b = conv(&[("USER", "q"), ("assistant", "yy")]);
        assert!(conversation_request(&a, &b).is_ok());
    }

    #[test]
    fn every_validation_error_names_its_field() {
        let good = conv(&[("USER", "q"), ("ASSISTANT", "x"), ("USER", "q2"), ("ASSISTANT", "x2")]);
        let field = |a: &[Turn], b: &[Turn]| invalid_field(&conversation_request(a, b).unwrap_err()).to_string();
        assert_eq!(field(&[], &good), "conversation_a");
        assert_eq!(field(&good, &[]), "conversation_b");
        assert_eq!(field(&good[..3], &good), "conversation_a");
        assert_eq!(field(&good, &good[..3]), "conversation_b");
        let mut bad = good.clone();
        bad[2].role = "ASSISTANT".into();
        assert_eq!(field(&bad, &good), "conversation_a[2].role");
        let mut bad = good.clone();
        bad[1].role = "SYSTEM".into();
        assert_eq!(field(&good, &bad), "conversation_b[1].role");
        assert_eq!(field(&good, &good[..2]), "conversation_b");
        let mut other = good.clone();
        other[2].content = "different".into();
        assert_eq!(field(&good, &other), "conversation_b[2].content");
        // ASSISTANT turns may differ, that is the point.
        let mut other = good.clone();
        other[3].content = "different".into();
        assert!(conversation_request(&good, &other).is_ok());
        // A and B are checked before they are compared with each other.
        let mut bad = good.clone();
        bad[0].role = "assistant".into();
        assert_eq!(field(&good[..2], &bad), "conversation_b[0].role");
    }

    #[test]
    fn turns_deserialize_from_the_reference_format() {
        let json = r#"{"conversation_a":[{"content":"hello","role":"USER"},{"content":"hi","role":"ASSISTANT"}],
                       "conversation_b":[{"content":"hello","role":"USER"},{"content":"yo","role":"ASSISTANT"}]}"#;
        let p: ConversationPair = serde_json::from_str(json).unwrap();
        assert_eq!(p.conversation_a[1], Turn::new("ASSISTANT", "hi"));
    }

    #[test]
    fn compares_valid_pairs_in_one_call_and_reports_invalid_ones() {
        let scorer = Recording::new(LenScorer);
        let a = conv(&[("USER", "q"), ("ASSISTANT", "long answer")]);
        let b = conv(&[("USER", "q"), ("ASSISTANT", "short")]);
        let pairs = [
            ConversationPair { conversation_a: a.clone(), conversation_b: b.clone() },
            ConversationPair { conversation_a: a.clone(), conversation_b: vec![] },
            ConversationPair { conversation_a: b.clone(), conversation_b: a.clone() },
        ];
        let out = compare_conversations(&scorer, &pairs, CompareMode::Both);
        // "<Response 1>: " + answer: lengths differ by 11 - 5 = 6.
        assert_eq!(out[0].as_ref().unwrap().logit, 6.0);
        assert_eq!(invalid_field(out[1].as_ref().unwrap_err()), "conversation_b");
        assert_eq!(out[2].as_ref().unwrap().logit, -6.0);
        let calls = scorer.call_strings();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].len(), 2); // pair 2 reuses pair 0's passes, in the other order
        let (source, left, right) = &calls[0][0];
        assert_eq!(source, &format!("{CONVERSATION_INSTRUCTION}USER: q\nAssistant: <Response 1>"));
        assert_eq!(left, "<Response 1>: long answer");
        assert_eq!(right, "<Response 1>: short");
        let out = compare_conversations(
            &Failing(LenScorer),
            &[ConversationPair { conversation_a: conv(&[("USER", "q"), ("ASSISTANT", "FAIL")]), conversation_b: b }],
            CompareMode::Ab,
        );
        assert!(matches!(out[0], Err(Error::Tokenizer(_))));
    }
}
