//! MT-bench human judgements (`lmsys/mt_bench_human_judgments`): `{question_id, model_a,
//! model_b, winner, judge, conversation_a, conversation_b, turn}`; A = model_a's conversation.
//!
//! A judgement of turn `t` concerns the conversations up to their `t`-th exchange: the first
//! `2t` messages of each are compared, a single exchange as a plain pair and longer ones in
//! PairRM's conversation format (`compare_conversations`). `winner` is `model_a`, `model_b`, or a
//! tie (`tie`, `tie (bothbad)`: any value starting with `tie`, as FastChat's
//! `compute_agreement.py` treats them). Every judgement row counts once, as each human vote does
//! there. Rows are reported by turn and by judge kind (`expert`, `author`: the judge id without its
//! number).

use serde_json::Value;

use super::fields::{conversation_pair, kind, Fields};
use super::{Benchmark, Context, FormatInfo, Item};
use crate::stats::Label;

/// The judge kind: a judge id such as `expert_12` without its number; a list (`["gpt-4",
/// "pair-v2"]`) joined with `/`.
fn judge_kind(judge: Option<&Value>) -> Result<String, String> {
    match judge {
        None => Ok("unknown".into()),
        Some(Value::String(s)) => Ok(match s.rsplit_once('_') {
            Some((kind, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => kind.to_string(),
            _ => s.clone(),
        }),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join("/")),
        Some(v) => Err(format!("field `judge` must be a string or a list, got {}", kind(v))),
    }
}

/// MT-bench human judgements (multi-turn, ties) (`--format mtbench`).
pub(super) struct MtBench;

impl Benchmark for MtBench {
    fn info(&self) -> &'static FormatInfo {
        &FormatInfo { name: "mtbench", title: "MT-bench human judgements", dimensions: &["turn", "judge"], has_ties: true }
    }

    fn parse(&self, fields: &Fields, context: &Context) -> Result<Item, String> {
        parse(fields, context)
    }
}

pub(super) fn parse(f: &Fields, context: &Context) -> Result<Item, String> {
    let label = match f.str("winner")? {
        "model_a" => Label::A,
        "model_b" => Label::B,
        w if w.starts_with("tie") => Label::Tie,
        w => return Err(format!("field `winner` must be model_a, model_b or a tie, got {w:?}")),
    };
    let turn = f.value("turn")?;
    let turn = turn
        .as_u64()
        .filter(|&t| t >= 1)
        .ok_or_else(|| format!("field `turn` must be a positive integer, got {turn}"))?;
    let mut a = f.turns("conversation_a")?;
    let mut b = f.turns("conversation_b")?;
    let needed = usize::try_from(turn.saturating_mul(2)).unwrap_or(usize::MAX);
    for (conv, name) in [(&mut a, "conversation_a"), (&mut b, "conversation_b")] {
        if conv.len() < needed {
            return Err(format!("{name} has {} messages but turn {turn} needs {needed}", conv.len()));
        }
        conv.truncate(needed);
    }
    let request = conversation_pair(&a, &b, context.conversation)?;
    let keys = vec![format!("turn {turn}"), judge_kind(f.get("judge"))?];
    Ok(Item { request, label, keys, id: f.opt_scalar("question_id")? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pairrm::judge::CONVERSATION_INSTRUCTION;

    fn row(winner: &str, turn: u64, judge: &str) -> String {
        format!(
            r#"{{"question_id": 81, "model_a": "m1", "model_b": "m2", "winner": "{winner}", "judge": {judge}, "turn": {turn},
            "conversation_a": [{{"role": "user", "content": "Q1"}}, {{"role": "assistant", "content": "A1"}}, {{"role": "user", "content": "Q2"}}, {{"role": "assistant", "content": "A2"}}],
            "conversation_b": [{{"role": "user", "content": "Q1"}}, {{"role": "assistant", "content": "B1"}}, {{"role": "user", "content": "Q2"}}, {{"role": "assistant", "content": "B2"}}]}}"#
        )
    }

    fn parse_text(text: &str, conversation: bool) -> Result<Item, String> {
        parse(&Fields::parse(text.as_bytes()).unwrap(), &Context { conversation, subset: "f".into() })
    }

    #[test]
    fn turns_select_the_exchanges_compared() {
        let one = parse_text(&row("model_a", 1, "\"expert_3\""), false).unwrap();
        assert_eq!((one.request.source.as_str(), one.request.a.as_str(), one.request.b.as_str()), ("Q1", "A1", "B1"));
        assert_eq!(
            (one.label, one.keys.clone(), one.id.as_deref()),
            (Label::A, vec!["turn 1".into(), "expert".into()], Some("81"))
        );
        let two = parse_text(&row("model_b", 2, "\"author_0\""), false).unwrap();
        assert_eq!(two.request.instruction.as_deref(), Some(CONVERSATION_INSTRUCTION));
        assert_eq!(two.request.a, "<Response 1>: A1\n<Response 2>: A2");
        assert_eq!((two.label, two.keys[1].as_str()), (Label::B, "author"));
        let conv = parse_text(&row("tie (bothbad)", 1, "[\"gpt-4\", \"pair-v2\"]"), true).unwrap();
        assert_eq!(conv.request.instruction.as_deref(), Some(CONVERSATION_INSTRUCTION));
        assert_eq!((conv.label, conv.keys[1].as_str()), (Label::Tie, "gpt-4/pair-v2"));
        assert_eq!(parse_text(&row("tie", 1, "\"me\""), false).unwrap().keys[1], "me");
    }

    #[test]
    fn bad_judgements_say_why() {
        for (text, want) in [
            (row("model_c", 1, "\"e_1\""), "field `winner` must be model_a, model_b or a tie, got \"model_c\""),
            (row("model_a", 3, "\"e_1\""), "conversation_a has 4 messages but turn 3 needs 6"),
            (row("model_a", 0, "\"e_1\""), "field `turn` must be a positive integer, got 0"),
            (row("model_a", 1, "3"), "field `judge` must be a string or a list, got a number"),
        ] {
            let err = parse_text(&text, false).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        let differing = row("model_a", 2, "\"e_1\"").replacen("\"Q2\"", "\"Q2?\"", 1);
        assert!(parse_text(&differing, false).unwrap_err().contains("USER turns must be the same"));
    }
}
