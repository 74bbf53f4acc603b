//! Generic labelled pairs: the `pairrm compare` input line plus a label, `{source, a, b, label,
//! instruction?, subset?, id?}` or `{conversation_a, conversation_b, label, subset?, id?}`, with
//! `label` one of `a`, `b`, `tie` (any case).

use pairrm::judge::CompareInput;

use super::fields::{conversation_pair, plain_request, Fields};
use super::{Benchmark, Context, FormatInfo, Item};
use crate::stats::Label;

/// Generic labelled pairs (`--format jsonl`).
pub(super) struct Jsonl;

impl Benchmark for Jsonl {
    fn info(&self) -> &'static FormatInfo {
        &FormatInfo { name: "jsonl", title: "labelled pairs", dimensions: &["subset"], has_ties: true }
    }

    fn parse(&self, fields: &Fields, context: &Context) -> Result<Item, String> {
        parse(fields, context)
    }
}

pub(super) fn parse(f: &Fields, context: &Context) -> Result<Item, String> {
    let raw = f.str("label")?;
    let label = match raw.to_ascii_lowercase().as_str() {
        "a" => Label::A,
        "b" => Label::B,
        "tie" => Label::Tie,
        _ => return Err(format!("field `label` must be \"a\", \"b\" or \"tie\", got {raw:?}")),
    };
    let request = if CompareInput::is_conversation(f.object()) {
        conversation_pair(&f.turns("conversation_a")?, &f.turns("conversation_b")?, context.conversation)?
    } else {
        plain_request(f.opt_str("instruction")?, f.str("source")?, f.str("a")?, f.str("b")?, context.conversation)?
    };
    let subset = f.opt_str("subset")?.map(str::to_string).unwrap_or_else(|| context.subset.clone());
    Ok(Item { request, label, keys: vec![subset], id: f.opt_scalar("id")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Item, String> {
        parse(&Fields::parse(text.as_bytes()).unwrap(), &Context { conversation: false, subset: "pairs".into() })
    }

    #[test]
    fn pairs_and_conversations_with_labels() {
        let item =
            parse_text(r#"{"instruction": "I: ", "source": "S", "a": "x", "b": "y", "label": "TIE", "id": "q1"}"#)
                .unwrap();
        assert_eq!((item.label, item.keys[0].as_str(), item.id.as_deref()), (Label::Tie, "pairs", Some("q1")));
        assert_eq!(item.request.instruction.as_deref(), Some("I: "));
        let conv = parse_text(
            r#"{"conversation_a": [{"role": "USER", "content": "Q"}, {"role": "ASSISTANT", "content": "x"}],
                "conversation_b": [{"role": "USER", "content": "Q"}, {"role": "ASSISTANT", "content": "y"}], "label": "b", "subset": "s"}"#,
        )
        .unwrap();
        assert_eq!((conv.request.source.as_str(), conv.label, conv.keys[0].as_str()), ("Q", Label::B, "s"));
    }

    #[test]
    fn bad_pairs_say_why() {
        for (text, want) in [
            (
                r#"{"source": "S", "a": "x", "b": "y", "label": "c"}"#,
                "field `label` must be \"a\", \"b\" or \"tie\", got \"c\"",
            ),
            (r#"{"source": "S", "a": "x", "b": "y"}"#, "missing field `label`"),
            (r#"{"source": "S", "a": "x", "label": "a"}"#, "missing field `b`"),
            (r#"{"conversation_a": [], "label": "a"}"#, "missing field `conversation_b`"),
        ] {
            let err = parse_text(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
