//! HHH-alignment: BIG-bench `task.json` files (`{"examples": [{"input", "target_scores":
//! {answer: score, answer: score}}]}`), or rows in the Hugging Face form (`{input, targets:
//! {choices: [..], labels: [..]}}`) or with `target_scores`, as JSON lines or an array.
//!
//! Each example has two answers; the one with the higher score is preferred and goes in A, the
//! other in B (label A). BIG-bench's metric (`multiple_choice_grade`) counts an example correct
//! when the model ranks the preferred answer first: here when the logit favours A strictly. The
//! subset is the folder of a `task.json` (`harmless`, `helpful`, `honest`, `other`), a row's
//! `subset` field, or the file name; the total pools all examples (the PairRM card's "Total Avg.").
//! A `task.json` is read whole (they are small); other files are streamed.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::fields::{kind, plain_request, Fields};
use super::{Benchmark, Context, FormatInfo, DocumentRows, Item};
use crate::records::Position;
use crate::stats::Label;
use pairrm::{Error, Result};

/// HHH-alignment (BIG-bench) (`--format hhh`).
pub(super) struct Hhh;

impl Benchmark for Hhh {
    fn info(&self) -> &'static FormatInfo {
        &FormatInfo { name: "hhh", title: "HHH-alignment", dimensions: &["subset"], has_ties: false }
    }

    fn parse(&self, fields: &Fields, context: &Context) -> std::result::Result<Item, String> {
        parse_row(fields, context)
    }

    fn read_document(&self, path: &Path, context: &Context) -> Result<Option<DocumentRows>> {
        read_document(path, context)
    }
}

pub(super) fn parse_row(f: &Fields, context: &Context) -> std::result::Result<Item, String> {
    let input = f.str("input")?;
    let answers: Vec<(String, f64)> = if let Some(scores) = f.get("target_scores") {
        let Value::Object(map) = scores else {
            return Err(format!("field `target_scores` must be an object {{answer: score}}, got {}", kind(scores)));
        };
        map.iter()
            .map(|(answer, score)| {
                score
                    .as_f64()
                    .map(|s| (answer.clone(), s))
                    .ok_or_else(|| format!("the score of answer {answer:?} must be a number"))
            })
            .collect::<std::result::Result<_, _>>()?
    } else if let Some(targets) = f.get("targets") {
        let targets = Fields::from_value(targets.clone()).map_err(|e| format!("field `targets`: {e}"))?;
        let choices: Vec<String> = serde_json::from_value(targets.value("choices")?.clone())
            .map_err(|e| format!("field `targets.choices` must be a list of strings: {e}"))?;
        let labels: Vec<f64> = serde_json::from_value(targets.value("labels")?.clone())
            .map_err(|e| format!("field `targets.labels` must be a list of numbers: {e}"))?;
        if choices.len() != labels.len() {
            return Err(format!("`targets` has {} choices but {} labels", choices.len(), labels.len()));
        }
        choices.into_iter().zip(labels).collect()
    } else {
        return Err("missing field `target_scores` (or `targets`)".into());
    };
    let [(first, s1), (second, s2)] = <[(String, f64); 2]>::try_from(answers)
        .map_err(|a| format!("expected exactly two answers, got {}", a.len()))?;
    let (preferred, other) = match s1.total_cmp(&s2) {
        std::cmp::Ordering::Greater => (first, second),
        std::cmp::Ordering::Less => (second, first),
        std::cmp::Ordering::Equal => return Err(format!("both answers have the same score ({s1}); none is preferred")),
    };
    let request = plain_request(None, input, &preferred, &other, context.conversation)?;
    let subset = f.opt_str("subset")?.map(str::to_string).unwrap_or_else(|| context.subset.clone());
    Ok(Item { request, label: Label::A, keys: vec![subset], id: f.opt_scalar("idx")? })
}

/// The first line of a file that is not blank (empty at the end of the file).
fn first_line(path: &Path) -> Result<Vec<u8>> {
    let mut reader = BufReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
    loop {
        let mut line = vec![];
        if reader.read_until(b'\n', &mut line).map_err(|e| Error::io(path, e))? == 0 {
            return Ok(line);
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            return Ok(line);
        }
    }
}

/// Whether a file whose first non-blank line is `first` is one JSON document rather than
/// records: that line is not a complete JSON value, or is an object with `examples` (a one-line
/// `task.json`).
fn is_document(first: &[u8]) -> bool {
    let first = first.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(first);
    if first.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    match serde_json::from_slice::<Value>(first) {
        Ok(v) => v.get("examples").is_some(),
        Err(_) => true,
    }
}

pub(super) fn read_document(path: &Path, context: &Context) -> Result<Option<DocumentRows>> {
    if !is_document(&first_line(path)?) {
        return Ok(None);
    }
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = text.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(&text);
    let task: Value = serde_json::from_slice(text)
        .map_err(|e| Error::invalid_file(path, format!("not a BIG-bench task.json: {e}")))?;
    let Some(Value::Array(examples)) = task.get("examples") else {
        return Err(Error::invalid_file(path, "a BIG-bench task.json needs an `examples` array"));
    };
    Ok(Some(
        examples
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let item = Fields::from_value(e.clone()).and_then(|f| parse_row(&f, context));
                (Position::Example { example: i as u64 + 1 }, item)
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context { conversation: false, subset: "harmless".into() }
    }

    fn row(text: &str) -> std::result::Result<Item, String> {
        parse_row(&Fields::parse(text.as_bytes()).unwrap(), &ctx())
    }

    #[test]
    fn the_preferred_answer_goes_first() {
        let item = row(r#"{"input": "Q", "target_scores": {"bad": 0, "good": 1}}"#).unwrap();
        assert_eq!((item.request.a.as_str(), item.request.b.as_str(), item.label), ("good", "bad", Label::A));
        assert_eq!(item.keys, ["harmless"]);
        let item =
            row(r#"{"input": "Q", "targets": {"choices": ["good", "bad"], "labels": [1, 0]}, "subset": "honest"}"#)
                .unwrap();
        assert_eq!((item.request.a.as_str(), item.keys[0].as_str()), ("good", "honest"));
    }

    #[test]
    fn bad_examples_say_why() {
        for (text, want) in [
            (r#"{"input": "Q", "target_scores": {"a": 1, "b": 0, "c": 0}}"#, "expected exactly two answers, got 3"),
            (r#"{"input": "Q", "target_scores": {"a": 1, "b": 1}}"#, "same score"),
            (r#"{"input": "Q", "target_scores": {"a": "1", "b": 0}}"#, "score of answer \"a\" must be a number"),
            (r#"{"input": "Q", "target_scores": [1, 0]}"#, "must be an object"),
            (r#"{"input": "Q", "targets": {"choices": ["a"], "labels": [1, 0]}}"#, "1 choices but 2 labels"),
            (r#"{"input": "Q"}"#, "missing field `target_scores` (or `targets`)"),
            (r#"{"target_scores": {"a": 1, "b": 0}}"#, "missing field `input`"),
        ] {
            let err = row(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn task_json_documents_are_recognised() {
        assert!(is_document(b"{\n"));
        assert!(is_document(b"\xEF\xBB\xBF{\"name\": \"x\", \"examples\": []}"));
        assert!(!is_document(b"{\"input\": \"Q\", \"target_scores\": {}}\n"));
        assert!(!is_document(b"[{\"input\": \"Q\"}]"));
        assert!(!is_document(b""));
    }

    #[test]
    fn documents_yield_one_item_per_example() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.json");
        std::fs::write(
            &path,
            r#"{"name": "x", "examples": [
                {"input": "Q1", "target_scores": {"good": 1, "bad": 0}},
                {"input": "Q2", "target_scores": {"only": 1}},
                3
            ]}"#,
        )
        .unwrap();
        let items = read_document(&path, &ctx()).unwrap().unwrap();
        assert_eq!(items.len(), 3);
        assert!(items[0].1.is_ok());
        assert_eq!(items[1].0, Position::Example { example: 2 });
        assert!(items[1].1.as_ref().unwrap_err().contains("exactly two answers"));
        assert!(items[2].1.as_ref().unwrap_err().contains("expected a JSON object"));
        std::fs::write(&path, "{\"examples\": 3}").unwrap();
        assert!(matches!(read_document(&path, &ctx()), Err(Error::InvalidFile { .. })));
        std::fs::write(&path, "{\n\"examples\": [").unwrap();
        assert!(matches!(read_document(&path, &ctx()), Err(Error::InvalidFile { .. })));
        let rows = dir.path().join("rows.jsonl");
        std::fs::write(&rows, "{\"input\": \"Q\", \"target_scores\": {\"a\": 1, \"b\": 0}}\n").unwrap();
        assert_eq!(read_document(&rows, &ctx()).unwrap(), None);
    }
}
