//! The JSON-lines loop under generated input, through the real binary: `encode`, `compare` and
//! `rank` read lines of every shape (valid requests, JSON of any shape, mutilated JSON, invalid
//! UTF-8, empty lines, deep nesting, texts of hundreds of kilobytes) and must write exactly one
//! valid JSON line per input line, in order: the result for a valid request, an error record
//! `{"error": "line N: ..."}` otherwise; exit 0 if no line failed, 1 if some did; never a crash.
//!
//! A normal test run sends a few thousand lines per command; `bench/fuzz.sh` multiplies them by
//! `PAIRRM_FUZZ_SCALE` and prints the figures (`fuzz: NAME: N cases, T s`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/tiny-original")
}

/// `PAIRRM_FUZZ_SCALE` (default 1): how many times the base line counts to run.
fn scale() -> usize {
    std::env::var("PAIRRM_FUZZ_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

/// Pieces texts are made of.
const ATOMS: &[&str] = &[
    "the",
    "quick",
    "Brown",
    "fox",
    "42",
    "naïve",
    "İ",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\u{a0}",
    "\u{200b}",
    ",",
    ".",
    "\u{301}",
    "\u{600}",
    "日本",
    "語",
    "한국어",
    "［ＵＮＫ］",
    "👨‍👩‍👧",
    "🇫",
    "🦙",
    "[SEP]",
    "[MASK]",
    "<|source|>",
    "<|candidate|>",
    "\u{F0001}",
    "▁",
    "\u{10ffff}",
    "\u{0}",
    "\"",
    "\\",
    "aaaaaaaa",
];

fn text(max_atoms: usize) -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => proptest::collection::vec(proptest::sample::select(ATOMS), 0..max_atoms).prop_map(|a| a.concat()),
        1 => any::<String>(),
        // Long texts: the bounded tokenizer through the whole path.
        1 => (proptest::sample::select(ATOMS), 100usize..3000).prop_map(|(a, n)| a.repeat(n)),
    ]
}

const KEYS: &[&str] =
    &["source", "a", "b", "instruction", "conversation_a", "conversation_b", "role", "content", "candidates", "x"];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::collection::vec(proptest::sample::select(ATOMS), 0..6).prop_map(|a| Value::String(a.concat())),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// One generated line and whether it is a valid request (then it must not fail).
#[derive(Debug, Clone)]
struct Line {
    bytes: Vec<u8>,
    valid: bool,
}

fn line_of(value: Value, valid: bool) -> Line {
    Line { bytes: serde_json::to_vec(&value).unwrap(), valid }
}

/// A valid request of the command.
fn request(command: &'static str) -> BoxedStrategy<Line> {
    match command {
        "rank" => (text(20), proptest::collection::vec(text(12), 1..6), proptest::option::of(text(5)))
            .prop_map(|(s, c, i)| {
                let mut v = json!({"source": s, "candidates": c});
                if let Some(i) = i {
                    v["instruction"] = json!(i);
                }
                line_of(v, true)
            })
            .boxed(),
        _ => {
            let answers = (text(20), text(20), text(20), proptest::option::of(text(5))).prop_map(|(s, a, b, i)| {
                let mut v = json!({"source": s, "a": a, "b": b});
                if let Some(i) = i {
                    v["instruction"] = json!(i);
                }
                line_of(v, true)
            });
            if command == "compare" {
                let turns = proptest::collection::vec((text(6), text(6)), 1..4);
                let conversations = (turns.clone(), proptest::collection::vec(text(6), 1..4)).prop_map(|(t, other)| {
                    let a: Vec<Value> = t
                        .iter()
                        .flat_map(|(u, x)| {
                            [json!({"role": "USER", "content": u}), json!({"role": "ASSISTANT", "content": x})]
                        })
                        .collect();
                    let b: Vec<Value> = t
                        .iter()
                        .zip(other.iter().cycle())
                        .flat_map(|((u, _), y)| {
                            [json!({"role": "user", "content": u}), json!({"role": "assistant", "content": y})]
                        })
                        .collect();
                    line_of(json!({"conversation_a": a, "conversation_b": b}), true)
                });
                prop_oneof![3 => answers, 1 => conversations].boxed()
            } else {
                answers.boxed()
            }
        }
    }
}

/// Lines of every shape for `command`.
fn line(command: &'static str) -> impl Strategy<Value = Line> {
    let field = prop_oneof![4 => text(10).prop_map(Value::String), 1 => json_value()];
    let near_miss = proptest::collection::vec((proptest::sample::select(KEYS), field), 0..5).prop_map(|kv| {
        line_of(Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()), false)
    });
    let mutilated = (request(command), any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>())
        .prop_map(|(l, cut, at, byte)| {
            let mut bytes = l.bytes;
            bytes.truncate(cut.index(bytes.len() + 1));
            let i = at.index(bytes.len() + 1);
            bytes.insert(i, byte);
            Line { bytes, valid: false }
        });
    let raw = proptest::collection::vec(any::<u8>(), 0..200).prop_map(|bytes| Line { bytes, valid: false });
    let odd = proptest::sample::select(
        &[
            "",
            " ",
            "\r",
            "\u{feff}",
            "null",
            "[]",
            "{}",
            "1e999999",
            "{\"source\": 1e400}",
            "\"just a string\"",
            "{\"source\": \"\\ud800\", \"a\": \"x\", \"b\": \"y\"}",
            "{\"a\": \"x\", \"a\": \"y\"}",
        ][..],
    )
    .prop_map(|s| Line { bytes: s.as_bytes().to_vec(), valid: false });
    let deep = (1usize..400)
        .prop_map(|d| Line { bytes: format!("{}{}", "[".repeat(d), "]".repeat(d)).into_bytes(), valid: false });
    prop_oneof![
        8 => request(command),
        2 => json_value().prop_map(|v| line_of(v, false)),
        2 => near_miss,
        2 => mutilated,
        1 => raw,
        1 => odd,
        1 => deep,
    ]
    .prop_map(|mut l| {
        // One line each: the loop splits at '\n' (JSON escapes it inside strings).
        l.bytes.retain(|&b| b != b'\n');
        if l.valid && l.bytes.is_empty() {
            l.valid = false;
        }
        l
    })
}

/// Whether output `out` is a correct answer for input line `n` (from 1).
fn check_output(command: &str, n: usize, line: &Line, out: &Value) -> Result<(), String> {
    let object = out.as_object().ok_or("not an object")?;
    if let Some(error) = object.get("error") {
        let error = error.as_str().ok_or("error is not a string")?;
        if !error.starts_with(&format!("line {n}: ")) {
            return Err(format!("error without its line number: {error}"));
        }
        if line.valid {
            return Err(format!("a valid line failed: {error}"));
        }
        return Ok(());
    }
    let ok = match command {
        "encode" => out["input_ids"].as_array().is_some_and(|ids| ids.len() >= 9 && ids.iter().all(Value::is_u64)),
        "compare" => out["logit"].as_f64().is_some_and(f64::is_finite) && out["a_better"].is_boolean(),
        _ => {
            let (scores, ranks) = (out["scores"].as_array(), out["ranks"].as_array());
            scores
                .zip(ranks)
                .is_some_and(|(s, r)| s.len() == r.len() && s.iter().all(|x| x.as_f64().is_some_and(f64::is_finite)))
        }
    };
    if ok {
        Ok(())
    } else {
        Err("not a result of the command".into())
    }
}

/// Generates `count` lines for `command`, runs the binary on them in batches, checks every
/// output line; prints the figures.
fn fuzz(command: &'static str, base: usize) {
    let count = base * scale();
    let batch = 20_000;
    let mut runner = TestRunner::new(Config { failure_persistence: None, ..Config::default() });
    let strategy = line(command);
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let (mut done, mut failed_lines) = (0, 0);
    while done < count {
        let lines: Vec<Line> =
            (0..batch.min(count - done)).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect();
        let input = dir.path().join("in.jsonl");
        let output = dir.path().join("out.jsonl");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for l in &lines {
            file.write_all(&l.bytes).unwrap();
            file.write_all(b"\n").unwrap();
        }
        file.into_inner().unwrap().sync_all().unwrap();
        let result = Command::new(env!("CARGO_BIN_EXE_pairrm"))
            .args([command, "--model", model().to_str().unwrap(), "--no-progress", "--max-batch-tokens", "8192"])
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        let text = std::fs::read_to_string(&output).unwrap_or_else(|e| panic!("{command}: no output ({e}); {stderr}"));
        let outputs: Vec<&str> = text.lines().collect();
        assert_eq!(outputs.len(), lines.len(), "{command}: one output line per input line; {stderr}");
        let mut failed = 0;
        for (i, (line, out)) in lines.iter().zip(&outputs).enumerate() {
            let value: Value = serde_json::from_str(out)
                .unwrap_or_else(|e| panic!("{command}: output line {} is not JSON ({e}): {out}", i + 1));
            failed += usize::from(value.get("error").is_some());
            if let Err(why) = check_output(command, i + 1, line, &value) {
                let shown = String::from_utf8_lossy(&line.bytes).chars().take(300).collect::<String>();
                panic!("{command}: line {}: {why}\n  input: {shown}\n  output: {out}", i + 1);
            }
        }
        let expected_code = if failed > 0 { 1 } else { 0 };
        assert_eq!(result.status.code(), Some(expected_code), "{command}: exit status; {stderr}");
        done += lines.len();
        failed_lines += failed;
    }
    eprintln!(
        "fuzz: pairrm {command} lines: {count} cases ({failed_lines} error records), {:.1} s, 0 failures, every output line valid JSON",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn encode_lines() {
    fuzz("encode", 1000);
}

#[test]
fn compare_lines() {
    fuzz("compare", 600);
}

#[test]
fn rank_lines() {
    fuzz("rank", 300);
}
