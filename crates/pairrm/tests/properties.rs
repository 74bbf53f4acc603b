//! Property tests over the JSON line parser (`CompareInput`, the one "answers or conversations"
//! rule of `pairrm compare` lines, the server's `/compare` pairs and eval's labelled pairs), the
//! tokenizer wrapper and the input builder, on generated inputs that mix every kind of character
//! the pipeline treats specially (whitespace of all sorts, combining marks, Prepend characters,
//! CJK, emoji sequences, full-width forms, special-token and marker strings, the placeholder's
//! private-use characters, `▁`, `[SEP]`) and JSON of every shape.
//!
//! A normal test run tries a few hundred cases per property (seconds); `bench/fuzz.sh` multiplies
//! them by `PAIRRM_FUZZ_SCALE` (a million and more in all) and prints the figures
//! (`fuzz: NAME: N cases, T s`).

mod common;

use std::sync::OnceLock;
use std::time::Instant;

use pairrm::config::{MarkerIds, PairRmConfig};
use pairrm::input::InputBuilder;
use pairrm::judge::CompareInput;
use pairrm::tokenizer::{PairTokenizer, SpmOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};
use serde_json::{Map, Value};

/// `PAIRRM_FUZZ_SCALE` (default 1): how many times the base case counts to run.
fn scale() -> u32 {
    std::env::var("PAIRRM_FUZZ_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

/// Runs `test` on `base × scale` generated cases; prints the figures; panics on a failure (the
/// smallest failing case proptest finds), a panic of the code under test included.
fn check<S: Strategy>(name: &str, base: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult) {
    let cases = base * scale();
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let start = Instant::now();
    let result = TestRunner::new(config).run(&strategy, test);
    eprintln!(
        "fuzz: {name}: {cases} cases, {:.1} s, {}",
        start.elapsed().as_secs_f64(),
        match &result {
            Ok(()) => "0 failures".to_string(),
            Err(e) => format!("FAILED: {e}"),
        }
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// The tokenizers: real deberta-v3 (default options; lower case + punctuation split), its
/// tokenizer.json round trip, and the tiny fixtures'.
fn tokenizers() -> &'static [PairTokenizer] {
    static ALL: OnceLock<Vec<PairTokenizer>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = vec![];
        for options in [SpmOptions::default(), SpmOptions { do_lower_case: true, split_by_punct: true }] {
            all.push(PairTokenizer::from_spm(&common::spm_model(), &options).unwrap());
        }
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("tokenizer.json");
        std::fs::write(&json, all[0].to_pairrm_hf_json().unwrap()).unwrap();
        all.push(PairTokenizer::from_tokenizer_json(&json).unwrap());
        for fixture in ["tiny-backbone", "tiny-backbone-lower", "tiny-hf"] {
            all.push(PairTokenizer::from_dir(&common::fixtures().join(fixture)).unwrap());
        }
        all
    })
}

/// Pieces texts are made of.
const ATOMS: &[&str] = &[
    "the",
    "quick",
    "Brown",
    "FOX",
    "jumps",
    "42",
    "3.14",
    "naïve",
    "Café",
    "İstanbul",
    "ß",
    "ǅ",
    "Σσς",
    "a",
    "I",
    "aaaaaaaa",
    "abab",
    " ",
    " ",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    "\u{a0}",
    "\u{3000}",
    "\u{2028}",
    "\u{200b}",
    "\u{ad}",
    "\u{feff}",
    "\u{1}",
    "\u{7f}",
    ",",
    ".",
    "!",
    "?",
    "(",
    ")",
    "«",
    "»",
    "“",
    "”",
    "—",
    "...",
    "-",
    "'",
    "\"",
    "\\",
    "/",
    "\u{301}",
    "\u{308}",
    "\u{200d}",
    "\u{fe0f}",
    "\u{600}",
    "\u{110bd}",
    "\u{93f}",
    "क",
    "्",
    "ष",
    "日本",
    "語",
    "中文",
    "한국어",
    "ภาษาไทย",
    "ｶﾞ",
    "ＦＵＬＬ",
    "［ＵＮＫ］",
    "①",
    "㍻",
    "ﬁ",
    "™",
    "½",
    "👍",
    "🏽",
    "👨‍👩‍👧",
    "🇫",
    "🇷",
    "🦙",
    "❤",
    "[SEP]",
    "[CLS]",
    "[MASK]",
    "[PAD]",
    "[UNK]",
    "<|source|>",
    "<|candidate|>",
    "<|candidate1|>",
    "<|candidate2|>",
    "\u{F0001}",
    "\u{F0002}",
    "\u{F0003}",
    "▁",
    "▁▁",
    "</s>",
    "<s>",
    "\u{10ffff}",
    "\u{e000}",
    "\u{fffd}",
];

/// Texts of 0 to `max_atoms` atoms, plus arbitrary strings.
fn text(max_atoms: usize) -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => proptest::collection::vec(proptest::sample::select(ATOMS), 0..max_atoms).prop_map(|a| a.concat()),
        1 => any::<String>(),
        1 => proptest::collection::vec(any::<char>(), 0..max_atoms).prop_map(|c| c.into_iter().collect()),
    ]
}

/// Keys of the line formats, and others.
const KEYS: &[&str] = &[
    "source",
    "a",
    "b",
    "instruction",
    "conversation_a",
    "conversation_b",
    "role",
    "content",
    "candidates",
    "reference",
    "mode",
    "extra",
    "",
];

/// Any JSON value, with the line formats' keys and texts.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text(12).prop_map(Value::String),
        proptest::sample::select(&["USER", "ASSISTANT", "user", "assistant", "system"][..])
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// A turn: usually well-formed, sometimes not.
fn turn() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (proptest::sample::select(&["USER", "ASSISTANT", "user", "Assistant", "bot"][..]), text(8))
            .prop_map(|(r, c)| serde_json::json!({"role": r, "content": c})),
        1 => json_value(),
    ]
}

/// A field value: a text (usually), or anything.
fn field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![6 => text(30).prop_map(|t| Some(Value::String(t))), 1 => Just(None), 1 => json_value().prop_map(Some)]
}

/// Compare lines: answers, conversations, or anything at all.
fn compare_line() -> impl Strategy<Value = Value> {
    let answers = (field(), field(), field(), field()).prop_map(|(s, a, b, i)| {
        let mut m = Map::new();
        for (k, v) in [("source", s), ("a", a), ("b", b), ("instruction", i)] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    });
    let conversations = (proptest::collection::vec(turn(), 0..6), proptest::collection::vec(turn(), 0..6), field())
        .prop_map(|(a, b, extra)| {
            let mut m = Map::new();
            m.insert("conversation_a".into(), Value::Array(a));
            m.insert("conversation_b".into(), Value::Array(b));
            if let Some(v) = extra {
                m.insert("source".into(), v);
            }
            Value::Object(m)
        });
    prop_oneof![3 => answers, 2 => conversations, 1 => json_value()]
}

fn config(source: usize, candidate: usize) -> PairRmConfig {
    PairRmConfig {
        source_max_length: source,
        candidate_max_length: candidate,
        n_tasks: 1,
        markers: MarkerIds { source: 200_001, cand1: 200_002, cand2: 200_003, cand: 200_004 },
    }
}

/// The input the reference builds, from full encodings: each part truncated from the right to its
/// budget with `[SEP]` kept, the candidate budget from the truncated source length.
fn reference_input(tok: &PairTokenizer, cfg: &PairRmConfig, texts: [&str; 3]) -> Vec<u32> {
    let sep = tok.sep_id();
    let part = |text: &str, max: usize, marker: u32| {
        let mut ids = tok.encode_marked(&text.replace("[SEP]", " ")).unwrap();
        if ids.len() > max {
            ids.truncate(max - 1);
            ids.push(sep);
        }
        ids[1] = marker;
        ids
    };
    let source = part(texts[0], cfg.source_max_length, cfg.markers.source);
    let budget = cfg.candidate_max_length + (cfg.source_max_length - source.len()) / 2;
    let mut ids = source;
    ids.extend(part(texts[1], budget, cfg.markers.cand1));
    ids.extend(part(texts[2], budget, cfg.markers.cand2));
    ids
}

/// The JSON line parser never panics, follows the one rule (conversations iff `conversation_a` or
/// `conversation_b` is present and not null), and what it accepts turns into a request or a
/// field-naming error, never a panic.
#[test]
fn compare_lines_parse_by_the_one_rule() {
    check("compare line parser (CompareInput)", 4000, compare_line(), |value| {
        let line = serde_json::to_string(&value).unwrap();
        let parsed: Result<CompareInput, _> = serde_json::from_str(&line);
        let conversation = value.as_object().is_some_and(CompareInput::is_conversation);
        match parsed {
            Ok(input) => {
                prop_assert_eq!(matches!(input, CompareInput::Conversations(_)), conversation);
                if let Err(e) = input.into_request() {
                    prop_assert!(matches!(e, pairrm::Error::InvalidInput { .. }), "{}", e);
                    prop_assert!(e.to_string().contains("conversation_"), "{}", e);
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    });
}

/// Arbitrary text, and mutilated JSON lines, are parse errors or values: never panics.
#[test]
fn arbitrary_lines_never_panic_the_parser() {
    let lines = prop_oneof![
        any::<String>(),
        (compare_line(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, at, byte)| {
            let mut bytes = serde_json::to_vec(&v).unwrap();
            let i = at.index(bytes.len() + 1);
            bytes.insert(i.min(bytes.len()), byte);
            bytes.truncate(at.index(bytes.len() + 1).max(i));
            String::from_utf8_lossy(&bytes).into_owned()
        }),
        (1usize..300).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
    ];
    check("arbitrary and mutilated lines (CompareInput)", 4000, lines, |line| {
        let _ = serde_json::from_str::<CompareInput>(&line).map(|i| i.into_request());
        Ok(())
    });
}

/// Bounded tokenization equals the full one cut to `keep`, for every tokenizer.
#[test]
fn bounded_tokenization_is_exact() {
    let strategy = (0..6usize, text(400), 3usize..80);
    check("bounded tokenization = full tokenization cut", 250, strategy, |(tok, text, keep)| {
        let tok = &tokenizers()[tok];
        let got = tok.encode_marked_prefix(&text, keep).unwrap();
        prop_assert_eq!(got, common::expected_prefix(tok, &text, keep));
        Ok(())
    });
}

/// The wrapper never fails on any text, frames every encoding with `[CLS]` and `[SEP]`, never
/// produces a marker id, and keeps marker-like text ordinary.
#[test]
fn encodings_are_framed_and_marker_free() {
    check("tokenizer wrapper framing", 250, (0..6usize, text(60)), |(tok, text)| {
        let tok = &tokenizers()[tok];
        let plain = tok.encode(&text).unwrap();
        prop_assert_eq!(plain.first(), Some(&tok.cls_id()));
        prop_assert_eq!(plain.last(), Some(&tok.sep_id()));
        let marked = tok.encode_marked(&text).unwrap();
        prop_assert!(marked.len() >= 3);
        prop_assert_eq!(marked[0], tok.cls_id());
        prop_assert_eq!(marked.last(), Some(&tok.sep_id()));
        prop_assert!(marked[2..].iter().chain(&plain).all(|&id| (id as usize) < tok.base_len()));
        Ok(())
    });
}

/// The builder's input equals the reference construction from full encodings, with the markers
/// at their recorded positions, under any limits.
#[test]
fn inputs_equal_the_reference_construction() {
    let strategy = (0..6usize, text(300), text(300), text(300), 3usize..70, 3usize..70);
    check("input builder = reference construction", 250, strategy, |(tok, source, left, right, smax, cmax)| {
        let tok = &tokenizers()[tok];
        let cfg = config(smax, cmax);
        let builder = InputBuilder::new(tok, &cfg);
        let input = builder.build(&source, &left, &right).unwrap();
        prop_assert_eq!(&input.ids, &reference_input(tok, &cfg, [&source, &left, &right]));
        let [s, l, r] = input.marker_positions();
        prop_assert_eq!([input.ids[s], input.ids[l], input.ids[r]], [200_001, 200_002, 200_003]);
        prop_assert!(input.source_len <= smax);
        prop_assert!(input.ids.len() - input.source_len - input.left_len <= builder.candidate_budget(input.source_len));
        Ok(())
    });
}
