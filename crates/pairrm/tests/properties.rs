//! Property tests over the tokenizer wrapper and the input builder, on generated texts that mix
//! every kind of character the pipeline treats specially (whitespace of all sorts, combining
//! marks, Prepend characters, CJK, emoji sequences, full-width forms, special-token and marker
//! strings, the placeholder's private-use characters, `▁`, `[SEP]`).
//!
//! Normal test runs try a few hundred cases per property; `bench/fuzz.sh` runs a million and more
//! (`PROPTEST_CASES`).

mod common;

use std::sync::OnceLock;

use pairrm::config::{MarkerIds, PairRmConfig};
use pairrm::input::InputBuilder;
use pairrm::tokenizer::{PairTokenizer, SpmOptions, TokenPrefix};
use proptest::prelude::*;

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
fn text(max_atoms: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(proptest::sample::select(ATOMS), 0..max_atoms).prop_map(|a| a.concat()),
        1 => any::<String>(),
        1 => proptest::collection::vec(any::<char>(), 0..max_atoms).prop_map(|c| c.into_iter().collect()),
    ]
}

/// The full encoding cut to `keep` ids.
fn expected(tok: &PairTokenizer, text: &str, keep: usize) -> TokenPrefix {
    let ids = tok.encode_marked(text).unwrap();
    if ids.len() <= keep {
        TokenPrefix { ids, complete: true }
    } else {
        TokenPrefix { ids: ids[..keep].to_vec(), complete: false }
    }
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

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Bounded tokenization equals the full one cut to `keep`, for every tokenizer.
    #[test]
    fn bounded_tokenization_is_exact(tok in 0..6usize, text in text(400), keep in 3usize..80) {
        let tok = &tokenizers()[tok];
        let got = tok.encode_marked_prefix(&text, keep).unwrap();
        prop_assert_eq!(got, expected(tok, &text, keep));
    }

    /// The wrapper never fails on any text, frames every encoding with `[CLS]` and `[SEP]`,
    /// never produces a marker id, and keeps marker-like text ordinary.
    #[test]
    fn encodings_are_framed_and_marker_free(tok in 0..6usize, text in text(60)) {
        let tok = &tokenizers()[tok];
        let plain = tok.encode(&text).unwrap();
        prop_assert_eq!(plain.first(), Some(&tok.cls_id()));
        prop_assert_eq!(plain.last(), Some(&tok.sep_id()));
        let marked = tok.encode_marked(&text).unwrap();
        prop_assert!(marked.len() >= 3);
        prop_assert_eq!(marked[0], tok.cls_id());
        prop_assert_eq!(marked.last(), Some(&tok.sep_id()));
        prop_assert!(marked[2..].iter().chain(&plain).all(|&id| (id as usize) < tok.base_len()));
    }

    /// The builder's input equals the reference construction from full encodings, with the
    /// markers at their recorded positions, under any limits.
    #[test]
    fn inputs_equal_the_reference_construction(
        tok in 0..6usize,
        source in text(300),
        left in text(300),
        right in text(300),
        source_max in 3usize..70,
        candidate_max in 3usize..70,
    ) {
        let tok = &tokenizers()[tok];
        let cfg = config(source_max, candidate_max);
        let builder = InputBuilder::new(tok, &cfg);
        let input = builder.build(&source, &left, &right).unwrap();
        prop_assert_eq!(&input.ids, &reference_input(tok, &cfg, [&source, &left, &right]));
        let [s, l, r] = input.marker_positions();
        prop_assert_eq!([input.ids[s], input.ids[l], input.ids[r]], [200_001, 200_002, 200_003]);
        prop_assert!(input.source_len <= source_max);
        prop_assert!(input.ids.len() - input.source_len - input.left_len <= builder.candidate_budget(input.source_len));
        prop_assert_eq!(input.ids.iter().filter(|&&id| id == tok.sep_id()).count() >= 3, true);
    }
}
