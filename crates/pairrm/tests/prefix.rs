//! Bounded tokenization is exact: `encode_marked_prefix(text, keep)` gives the first `keep` ids
//! of `encode_marked(text)` (all of them when there are no more) on long texts of every kind, for
//! every tokenizer configuration: the real deberta-v3 spm.model with each of the four option
//! combinations, built from spm.model and from the tokenizer.json it serializes to, and the tiny
//! fixtures' tokenizers (identity normalization; lower case + punctuation split; tokenizer.json).

mod common;

use std::path::Path;
use std::sync::OnceLock;

use pairrm::tokenizer::{PairTokenizer, SpmOptions, TokenPrefix};

/// Every tokenizer configuration, named.
fn tokenizers() -> &'static [(String, PairTokenizer)] {
    static ALL: OnceLock<Vec<(String, PairTokenizer)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec![];
        for (do_lower_case, split_by_punct) in [(false, false), (true, false), (false, true), (true, true)] {
            let options = SpmOptions { do_lower_case, split_by_punct };
            let spm = PairTokenizer::from_spm(&common::spm_model(), &options).unwrap();
            let json_path = dir.path().join(format!("{do_lower_case}-{split_by_punct}.json"));
            std::fs::write(&json_path, spm.to_pairrm_hf_json().unwrap()).unwrap();
            let json = PairTokenizer::from_tokenizer_json(&json_path).unwrap();
            let name = format!("deberta-v3 lower={do_lower_case} punct={split_by_punct}");
            all.push((format!("{name} (spm.model)"), spm));
            all.push((format!("{name} (tokenizer.json)"), json));
        }
        for fixture in ["tiny-backbone", "tiny-backbone-lower", "tiny-hf"] {
            all.push((fixture.to_string(), PairTokenizer::from_dir(&common::fixtures().join(fixture)).unwrap()));
        }
        all
    })
}

/// The texts of the tokenizer goldens (hundreds of short cases of every kind).
fn golden_texts() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokenizer/goldens.json");
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut texts: Vec<String> = ["default", "lower_case", "split_by_punct", "lower_case_split_by_punct"]
        .iter()
        .flat_map(|section| goldens[section].as_array().unwrap().iter())
        .map(|case| case["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    texts.dedup();
    texts
}

/// `unit` repeated (joined by `sep`) until the text has at least `bytes` bytes.
fn repeat(unit: &str, sep: &str, bytes: usize) -> String {
    let mut text = String::new();
    while text.len() < bytes {
        text.push_str(unit);
        text.push_str(sep);
    }
    text
}

/// Long texts of every kind: the goldens repeated, unicode, no spaces, CJK, emoji, whitespace
/// runs, and every character class the cut rules single out placed right before and after spaces.
fn long_texts() -> Vec<(String, String)> {
    let n = 6_000;
    let goldens = golden_texts();
    let texts = vec![
        ("all goldens".to_string(), repeat(&goldens.join(" "), " ", n)),
        ("all goldens, no separator".to_string(), repeat(&goldens.concat(), "", n)),
        ("english".into(), repeat("The quick brown fox jumps over the lazy dog.", " ", n)),
        ("no spaces".into(), repeat("abcdefghij", "", n)),
        ("cjk".into(), repeat("日本語のテキストと中文と한국어", "", n)),
        ("cjk with spaces".into(), repeat("日本語の テキスト 中文 한국어", " ", n)),
        ("emoji".into(), repeat("👨‍👩‍👧‍👦 🇫🇷🇩🇪 👍🏽 🦙 ❤️", " ", n)),
        ("flags without spaces".into(), repeat("🇫🇷🇩🇪🇯🇵", "", n)),
        ("whitespace runs".into(), repeat("a \t\n  b   c\u{3000}\u{3000}d\u{a0}\u{a0}e\r\n\r\nf", "    ", n)),
        ("combining after spaces".into(), repeat("x \u{301}y \u{308}\u{301}z", " ", n)),
        ("prepend before spaces".into(), repeat("\u{600} \u{600}\u{661} \u{110bd} a\u{600}", " ", n)),
        ("removed chars before spaces".into(), repeat("a\u{200b} b\u{ad} c\u{200d} d\u{feff} e\u{1} f\u{7f}", " ", n)),
        ("full width and compatibility".into(), repeat("［ＵＮＫ］ ＦＵＬＬ ① ㍻ ﬁ ™ ½ ｶﾞ", " ", n)),
        ("special tokens".into(), repeat("[MASK] [CLS]x[SEP] y[PAD] [UNK][UNK] [MASK][MASK]", " ", n)),
        ("markers".into(), repeat("<|source|> <|candidate1|>x <|candidate2|> <|candidate|>", " ", n)),
        ("placeholder characters".into(), repeat("\u{F0001}\u{F0002}\u{F0003} x\u{F0001} \u{F0002}", " ", n)),
        ("metaspace characters".into(), repeat("a▁b ▁ ▁▁c d▁", " ", n)),
        ("punctuation".into(), repeat("a,b. c!? (d) «e» “f” —g— h...i", " ", n)),
        ("zalgo".into(), repeat(&format!("z{}", "\u{300}\u{301}\u{302}\u{303}".repeat(20)), " ", n)),
        ("accents and case".into(), repeat("Café NAÏVE résumé ÜBER İstanbul ß ǅ Σσς", " ", n)),
        ("numbers and code".into(), repeat("def f(x):\n    return x*2 # 3.14159 1,000,000", " ", n)),
        ("one long word then text".into(), format!("{} {}", "w".repeat(n), repeat("tail words", " ", n))),
        ("text then one long word".into(), format!("{} {}", repeat("head words", " ", n / 4), "w".repeat(n))),
        ("one letter".into(), "a".repeat(n)),
        ("two letters".into(), "ab".repeat(n / 2)),
        ("digits".into(), repeat("0123456789", "", n)),
        ("base64".into(), repeat("QmFzZTY0IGlzIGEgZ3JvdXAgb2YgYmluYXJ5LXRvLXRleHQgZW5jb2Rpbmcgc2NoZW1lcw==", "", n)),
        ("url".into(), repeat("https://example.com/a/b?query=value&x=1#frag", "/", n)),
        ("cjk and latin without spaces".into(), repeat("東京タワーはTokyoTowerと呼ばれ、高さは333mです。", "", n)),
        ("emoji without spaces".into(), repeat("🦙👍🏽👨‍👩‍👧🇫🇷❤️🎉", "", n)),
        ("unknown characters without spaces".into(), repeat("\u{10ffff}\u{e000}\u{f8ff}𓀀𓀁", "", n)),
        ("thai".into(), repeat("ภาษาไทยเป็นภาษาที่ไม่มีการเว้นวรรคระหว่างคำ", "", n)),
        ("leading spaces".into(), format!("     {}", repeat("x y", " ", n))),
        ("trailing spaces".into(), format!("{}     ", repeat("x y", " ", n))),
    ];
    texts
}

/// Each golden text on its own, repeated: every kind of text the reference was checked on.
fn repeated_goldens() -> Vec<(String, String)> {
    golden_texts()
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.trim().is_empty())
        .map(|(i, text)| (format!("golden {i} repeated"), repeat(text, " ", 1200)))
        .collect()
}

#[test]
fn every_configuration_cuts_long_texts() {
    for (name, tok) in tokenizers() {
        assert!(tok.cuts_long_texts(), "{name}: long texts would be tokenized whole");
    }
}

#[test]
fn bounded_encoding_equals_the_full_one_on_long_texts() {
    let texts = long_texts();
    let mut compared = 0;
    for (name, tok) in tokenizers() {
        for (kind, text) in &texts {
            let full = tok.encode_marked(text).unwrap();
            for keep in [3, 17, 300, 1000] {
                let want = if full.len() <= keep {
                    TokenPrefix { ids: full.clone(), complete: true }
                } else {
                    TokenPrefix { ids: full[..keep].to_vec(), complete: false }
                };
                let got = tok.encode_marked_prefix(text, keep).unwrap();
                assert_eq!(got, want, "{name}, {kind}, keep {keep}");
                compared += 1;
            }
        }
    }
    assert!(compared > 1_000, "only {compared} comparisons");
}

#[test]
fn bounded_encoding_equals_the_full_one_on_each_golden_text_repeated() {
    // The spm.model builds and the tiny fixtures (the tokenizer.json builds of the same
    // configurations are covered above).
    let texts = repeated_goldens();
    for (name, tok) in tokenizers().iter().filter(|(name, _)| !name.ends_with("(tokenizer.json)")) {
        for (kind, text) in &texts {
            let full = tok.encode_marked(text).unwrap();
            for keep in [3, 40, 200] {
                let want = TokenPrefix { ids: full[..keep.min(full.len())].to_vec(), complete: full.len() <= keep };
                assert_eq!(tok.encode_marked_prefix(text, keep).unwrap(), want, "{name}, {kind}, keep {keep}");
            }
        }
    }
}

#[test]
fn short_texts_are_complete() {
    for (name, tok) in tokenizers() {
        for text in ["", "hello", "a b c", "  x  "] {
            let got = tok.encode_marked_prefix(text, 100).unwrap();
            assert!(got.complete, "{name}: {text:?}");
            assert_eq!(got, common::expected_prefix(tok, text, 100), "{name}: {text:?}");
        }
    }
}

#[test]
fn cut_points_at_every_offset() {
    // Cuts tried at every byte of a short varied text: the search start moves over every kind of
    // position (inside clusters, before and after spaces, inside special tokens).
    let unit = "a [MASK]b \u{301}c ［ＵＮＫ］ 日本 \u{600} x\u{200b} 🇫🇷🇩🇪 ▁d e,f.  g\tz";
    let text = repeat(unit, " ", 4000);
    for (name, tok) in tokenizers() {
        let full = tok.encode_marked(&text).unwrap();
        for keep in 3..200 {
            let got = tok.encode_marked_prefix(&text, keep).unwrap();
            assert_eq!(got.ids, full[..keep], "{name}, keep {keep}");
        }
    }
}
