//! Tokenizing only as much of a long text as truncation keeps.
//!
//! A part of a pair keeps at most a few hundred tokens, but a request may carry megabytes of text.
//! Tokenizing all of it costs memory in proportion to the text (the `tokenizers` crate keeps an
//! alignment per byte, a lattice node per byte, a string per token...), only to throw nearly
//! everything away. Instead a prefix of the text is tokenized, cut where the cut provably cannot
//! change the tokens kept; the prefix grows (doubling) until it yields more tokens than are kept.
//!
//! # The pipeline
//! This applies to DeBERTa-v3's pipeline (checked at load by [`PrefixRules::of`]; any other is
//! tokenized whole): added tokens are split out of the raw text; each remaining segment is
//! normalized by `[Lowercase] Strip Precompiled Replace(" {2,}" → " ")`, split out of the
//! normalized added tokens, pre-tokenized by `[Punctuation(isolated)] Metaspace(split)` into words
//! (a word starts at a `▁`, or at a punctuation character), and each word is tokenized on its own
//! by the Unigram model (Viterbi over its pieces; unknown characters fused into one `[UNK]`); the
//! post-processor puts `[CLS]` before and `[SEP]` after.
//!
//! # Why a cut keeps the tokens before it
//! A cut at byte `q` of a text `S`, giving the prefix `A = S[..q]`, is taken only where
//! 1. `q` is an extended grapheme cluster boundary of `S`, and the character before it is not
//!    whitespace;
//! 2. either `S[q]` is an ASCII space that is a cluster of its own (a *word cut*), and the last
//!    grapheme of `A`, normalized alone, is not empty and does not end with a space; or `S[q]` is
//!    not whitespace either (an *in-word cut*), the 16 graphemes on each side hold no whitespace
//!    and, normalized, no space, and neither they nor their normalization hold any added token;
//!
//! and the tokenizer satisfies (checked once): no added token contains whitespace, and the
//! normalizer maps `"a b"` to itself. Then, step by step:
//! - No added token can match across `q` (a word cut: it would contain the space; an in-word cut:
//!   none is near), so the added tokens found in `A` are those of `S` before `q`.
//! - Lowercase works per character; Strip removes the same leading whitespace, and no trailing
//!   whitespace from `A` (1). The Precompiled normalizer maps each grapheme cluster on its own,
//!   and the clusters of `A` are those of `S` up to `q` (1; cluster rules only look back). So
//!   `S`'s segment normalizes to `N(A) + N(rest)`; the collapsing of space runs cannot join across
//!   `q`, as `N(A)` does not end with a space (2). Normalized added tokens cannot match across it.
//! - Pre-tokenization splits at local marks (`▁`, punctuation), so the words of `A` are the words
//!   of `S` before `q`, except that the last word of `A` may be only the beginning `w[..p]` of a
//!   word `w` of `S` (in-word cut); a word cut ends `A`'s last word where `S`'s ends.
//! - Every word but that last one is tokenized alone, identically.
//! - The last word of an in-word cut: Viterbi's best path over `w` passes through some piece
//!   boundary `b` in `[p - L, p]` (`L`, the longest piece, in bytes), and up to `b` it is the best
//!   path to `b`, which depends on `w[..b]` only: it is the tokenization of `w[..b]`. So the
//!   tokens on which the tokenizations of `w[..b]` agree for *every* `b` in that window are the
//!   tokens of `w` (a final `[UNK]` agreeing on its start only is kept too: the run of unknown
//!   characters it fuses may go on, but it stays one `[UNK]`). Periodic runs (say `aaaa…`) can
//!   depend on their very end: they agree on nothing, and are tokenized whole.
//!
//! Hence the kept ids of `A` are a prefix of the ids of `S`; once they number at least `keep`,
//! the first `keep` ids of `S` are known. Texts with no usable cut are tokenized whole. Texts
//! longer than [`SERIAL_ABOVE`] bytes, whole or cut, are tokenized one at a time. The equality is
//! tested on long texts of every kind, for every tokenizer configuration the fixtures have.

use std::sync::Mutex;

use serde_json::Value;
use tokenizers::{Encoding, Model, ModelWrapper, NormalizedString, Normalizer, Tokenizer};
use unicode_segmentation::{GraphemeCursor, UnicodeSegmentation};

use crate::error::{Error, Result};

/// Bytes of text tried first per token kept (doubled while too few tokens come out).
const BYTES_PER_TOKEN: usize = 8;
/// Bytes of text tried first in any case.
const MIN_BYTES: usize = 256;
/// Graphemes checked on each side of an in-word cut.
const CONTEXT_GRAPHEMES: usize = 16;
/// How far past `from` a word cut is looked for before an in-word cut is taken.
const WORD_CUT_REACH: usize = 64;
/// How far past `from` an in-word cut is looked for before the next word cut is taken.
const IN_WORD_CUT_REACH: usize = 4096;

/// Texts (whole or prefixes) longer than this are tokenized one at a time, process-wide
/// ([`LONG_TEXTS`]): their memory (about a hundred bytes per byte of text) is then paid once, not
/// once per concurrent caller. Above the first prefix tried for PairRM's limits (about 10 kB),
/// so that ordinary texts are tokenized in parallel.
pub const SERIAL_ABOVE: usize = 64 * 1024;

/// Held while a text longer than [`SERIAL_ABOVE`] bytes is tokenized.
pub(super) static LONG_TEXTS: Mutex<()> = Mutex::new(());

/// The first ids of an encoding, and whether they are all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPrefix {
    /// The ids: all of them when `complete`, else exactly the first `keep` asked for.
    pub ids: Vec<u32>,
    /// Whether `ids` is the whole encoding (ending with `[SEP]`).
    pub complete: bool,
}

impl TokenPrefix {
    /// A whole encoding `ids`, cut to `keep` ids when longer (`complete` when they all fit).
    pub(super) fn of(mut ids: Vec<u32>, keep: usize) -> Self {
        if ids.len() <= keep {
            return TokenPrefix { ids, complete: true };
        }
        ids.truncate(keep);
        ids.shrink_to_fit();
        TokenPrefix { ids, complete: false }
    }

    /// The first `keep` ids of an encoding of which `ids` (at least `keep` of them) are the start.
    pub(super) fn cut(mut ids: Vec<u32>, keep: usize) -> Self {
        ids.truncate(keep);
        ids.shrink_to_fit();
        TokenPrefix { ids, complete: false }
    }
}

/// Where a text is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// Before a space: the last word of the prefix is whole.
    Word(usize),
    /// Inside a word: the last word of the prefix is the beginning of a longer one.
    InWord(usize),
}

impl Cut {
    /// The byte position of the cut.
    pub(super) fn at(self) -> usize {
        match self {
            Cut::Word(q) | Cut::InWord(q) => q,
        }
    }
}

/// Whether (and how) texts may be cut for a tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PrefixRules {
    /// The pipeline is one the cut argument holds for.
    enabled: bool,
    /// The longest piece of the model, in bytes (at least 4: an unknown character).
    longest_piece: usize,
    /// The contents of every added token.
    added: Vec<String>,
    /// The longest of them, in bytes (at least 1).
    longest_added: usize,
}

impl PrefixRules {
    /// The rules for `tokenizer` (after its added tokens are final): enabled only for the pipeline
    /// the module documentation describes.
    pub(super) fn of(tokenizer: &Tokenizer) -> Self {
        let enabled = match supported_pipeline(tokenizer) {
            Ok(()) => true,
            Err(why) => {
                tracing::debug!(why, "long texts are tokenized whole");
                false
            }
        };
        let longest_piece = tokenizer.get_model().get_vocab().keys().map(String::len).max().unwrap_or(0).max(4);
        let added: Vec<String> = tokenizer.get_added_tokens_decoder().into_values().map(|t| t.content).collect();
        let longest_added = added.iter().map(String::len).max().unwrap_or(0).max(1);
        PrefixRules { enabled, longest_piece, added, longest_added }
    }

    /// Whether texts are cut at all.
    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    /// The first position `q >= from` where `text` may be cut (see the module documentation): a
    /// word cut within a few bytes, else (if `in_word`) an in-word cut within a few kilobytes,
    /// else the next word cut anywhere.
    pub(super) fn next_cut(&self, tokenizer: &Tokenizer, text: &str, from: usize, in_word: bool) -> Option<Cut> {
        let from = from.max(1);
        if let Some(q) = next_word_cut(tokenizer, text, from, from.saturating_add(WORD_CUT_REACH)) {
            return Some(Cut::Word(q));
        }
        if in_word {
            let end = from.saturating_add(IN_WORD_CUT_REACH).min(text.len());
            if let Some(q) = (from..end).find(|&q| text.is_char_boundary(q) && self.is_in_word_cut(tokenizer, text, q))
            {
                return Some(Cut::InWord(q));
            }
        }
        next_word_cut(tokenizer, text, from, text.len()).map(Cut::Word)
    }

    /// Whether `text` may be cut at `q` inside a word.
    fn is_in_word_cut(&self, tokenizer: &Tokenizer, text: &str, q: usize) -> bool {
        if q == 0 || q >= text.len() || !is_boundary(text, q) {
            return false;
        }
        let (head, tail) = text.split_at(q);
        let Some(start) = nth_boundary_before(text, q, CONTEXT_GRAPHEMES) else { return false };
        let left = &head[start..];
        let right: String = tail.graphemes(true).take(CONTEXT_GRAPHEMES).collect();
        if left.chars().chain(right.chars()).any(char::is_whitespace) {
            return false;
        }
        let (Some(nl), Some(nr)) = (normalize(tokenizer, left), normalize(tokenizer, &right)) else { return false };
        if nl.contains(' ') || nr.contains(' ') {
            return false;
        }
        // Long enough that an added token across `q` would show in the windows.
        if [left.len(), right.len(), nl.len(), nr.len()].iter().any(|&n| n < self.longest_added) {
            return false;
        }
        let raw = format!("{left}{right}");
        let normalized = format!("{nl}{nr}");
        !self.added.iter().any(|t| raw.contains(t.as_str()) || normalized.contains(t.as_str()))
    }

    /// For an in-word cut: the ids of `encoding` (of the prefix, with its tokens and words: not
    /// `encode_fast`'s) without its final `[SEP]`, with
    /// its last word's tokens replaced by those every tokenization of a longer text shares (see
    /// the module documentation). `None` when those cover less than half of a long last word
    /// (a periodic run: cutting it does not pay).
    pub(super) fn stable_ids(&self, tokenizer: &Tokenizer, encoding: &Encoding) -> Result<Option<Vec<u32>>> {
        let (ids, words, tokens) = (encoding.get_ids(), encoding.get_word_ids(), encoding.get_tokens());
        // The last token is the post-processor's [SEP]; the last word ends just before it.
        let end = ids.len().saturating_sub(1);
        let Some(Some(word)) = end.checked_sub(1).and_then(|i| words.get(i)) else { return Ok(None) };
        let start = words[..end].iter().rposition(|w| *w != Some(*word)).map_or(0, |i| i + 1);
        let last_word = tokens[start..end].concat();
        let stable = self.stable_tokens(tokenizer.get_model(), &last_word)?;
        let covered: usize = stable.iter().map(|t| t.value.len()).sum();
        if last_word.len() >= 4 * self.longest_piece && covered * 2 < last_word.len() {
            return Ok(None);
        }
        let mut out = ids[..start].to_vec();
        out.extend(stable.iter().map(|t| t.id));
        Ok(Some(out))
    }

    /// The tokens on which the tokenizations of `word[..b]` agree for every boundary `b` within
    /// the longest piece of the end. Two tokenizations agree on a token when it has the same id
    /// and the same bytes; or, for the last one, when both are the unknown token from the same
    /// byte: the run of unknown characters it fuses may go on past `b`, but its id is the same.
    fn stable_tokens(&self, model: &ModelWrapper, word: &str) -> Result<Vec<tokenizers::Token>> {
        let mut first = word.len().saturating_sub(self.longest_piece);
        while !word.is_char_boundary(first) {
            first += 1;
        }
        let tokenize = |b: usize| model.tokenize(&word[..b]).map_err(|e| Error::Tokenizer(e.to_string()));
        // An unknown token is text that is not the piece of its id.
        let unknown = |t: &tokenizers::Token| model.token_to_id(&t.value) != Some(t.id);
        let mut common = tokenize(word.len())?;
        for b in (first..word.len()).filter(|&b| word.is_char_boundary(b)) {
            if common.is_empty() {
                break;
            }
            let other = tokenize(b)?;
            let mut agree = 0;
            for (x, y) in common.iter().zip(&other) {
                if x.id == y.id && x.offsets == y.offsets {
                    agree += 1;
                } else {
                    if x.id == y.id && x.offsets.0 == y.offsets.0 && unknown(x) && unknown(y) {
                        agree += 1;
                    }
                    break;
                }
            }
            common.truncate(agree);
        }
        Ok(common)
    }
}

/// Why `tokenizer`'s pipeline is not one a cut is proven safe for, if it is not.
fn supported_pipeline(tokenizer: &Tokenizer) -> std::result::Result<(), String> {
    match tokenizer.get_model() {
        ModelWrapper::Unigram(u) if !u.byte_fallback() => {}
        _ => return Err("the model is not Unigram without byte fallback".into()),
    }
    if let Some(token) = tokenizer.get_added_tokens_decoder().values().find(|t| t.content.contains(char::is_whitespace))
    {
        return Err(format!("added token {:?} contains whitespace", token.content));
    }
    let normalizer = tokenizer.get_normalizer().map(serde_json::to_value).transpose().map_err(|e| e.to_string())?;
    if let Some(n) = &normalizer {
        check_normalizer(n)?;
    }
    let pre = tokenizer.get_pre_tokenizer().map(serde_json::to_value).transpose().map_err(|e| e.to_string())?;
    check_pre_tokenizer(pre.as_ref().ok_or("no pre-tokenizer")?, true)?;
    if normalize(tokenizer, "a b").as_deref() != Some("a b") {
        return Err("the normalizer changes \"a b\"".into());
    }
    Ok(())
}

fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Normalizers that work per character or grapheme (Lowercase, Strip, Precompiled) or only
/// collapse runs of spaces.
fn check_normalizer(n: &Value) -> std::result::Result<(), String> {
    match type_of(n) {
        "Sequence" => n
            .get("normalizers")
            .and_then(Value::as_array)
            .ok_or("a normalizer sequence without a list")?
            .iter()
            .try_for_each(check_normalizer),
        "Lowercase" | "Strip" | "Precompiled" => Ok(()),
        "Replace" if n.get("pattern") == Some(&serde_json::json!({"Regex": " {2,}"})) && n["content"] == " " => Ok(()),
        other => Err(format!("normalizer {other:?}")),
    }
}

/// Pre-tokenizers: `[Punctuation(isolated)] Metaspace(split)`, Metaspace last.
fn check_pre_tokenizer(p: &Value, last: bool) -> std::result::Result<(), String> {
    match type_of(p) {
        "Sequence" => {
            let items =
                p.get("pretokenizers").and_then(Value::as_array).ok_or("a pre-tokenizer sequence without a list")?;
            let n = items.len();
            if n == 0 {
                return Err("an empty pre-tokenizer sequence".into());
            }
            items.iter().enumerate().try_for_each(|(i, item)| check_pre_tokenizer(item, last && i + 1 == n))
        }
        "Punctuation" if !last && p["behavior"] == "Isolated" => Ok(()),
        "Metaspace" if last && p["split"] == true => Ok(()),
        other => Err(format!("pre-tokenizer {other:?} (in this position)")),
    }
}

/// `text` through the tokenizer's normalizer (itself when there is none); `None` if it fails.
fn normalize(tokenizer: &Tokenizer, text: &str) -> Option<String> {
    let mut n = NormalizedString::from(text);
    if let Some(normalizer) = tokenizer.get_normalizer() {
        normalizer.normalize(&mut n).ok()?;
    }
    Some(n.get().to_string())
}

/// Whether `q` is an extended grapheme cluster boundary of `text`.
fn is_boundary(text: &str, q: usize) -> bool {
    GraphemeCursor::new(q, text.len(), true).is_boundary(text, 0) == Ok(true)
}

/// The cluster boundary `n` clusters before `q` (a boundary), or the start of the text.
fn nth_boundary_before(text: &str, q: usize, n: usize) -> Option<usize> {
    let mut cursor = GraphemeCursor::new(q, text.len(), true);
    let mut at = q;
    for _ in 0..n {
        match cursor.prev_boundary(text, 0) {
            Ok(Some(b)) => at = b,
            Ok(None) => break,
            Err(_) => return None,
        }
    }
    Some(at)
}

/// The first word cut in `from..end` (`end` may be past the text).
fn next_word_cut(tokenizer: &Tokenizer, text: &str, from: usize, end: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let end = end.min(bytes.len());
    let mut q = from;
    while q < end {
        q += bytes[q..end].iter().position(|&b| b == b' ')?;
        if is_word_cut(tokenizer, text, q) {
            return Some(q);
        }
        q += 1;
    }
    None
}

/// Whether `text` may be cut at `q` before a space.
fn is_word_cut(tokenizer: &Tokenizer, text: &str, q: usize) -> bool {
    let head = &text[..q];
    if head.chars().next_back().is_none_or(char::is_whitespace) {
        return false;
    }
    // Clusters on both sides of the space: `q` ends the head's last one, and the space is a
    // cluster of its own (no combining mark follows it), so it normalizes to a space.
    if !is_boundary(text, q) || !is_boundary(text, q + 1) {
        return false;
    }
    let Some(start) = nth_boundary_before(text, q, 1) else { return false };
    match normalize(tokenizer, &head[start..]) {
        Some(n) => !n.is_empty() && !n.ends_with(' '),
        None => false,
    }
}

/// How many bytes of text to try first for `keep` ids.
pub(super) fn first_try(keep: usize) -> usize {
    keep.saturating_mul(BYTES_PER_TOKEN).max(MIN_BYTES)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{PairTokenizer, SpmOptions};
    use super::*;

    fn deberta() -> PairTokenizer {
        let spm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokenizer/deberta-v3/spm.model");
        PairTokenizer::from_spm(&spm, &SpmOptions::default()).unwrap()
    }

    /// The cut chosen at `from`, and the ids the prefix contributes (`None`: the word does not settle).
    fn cut_and_ids(tok: &PairTokenizer, text: &str, from: usize) -> (Option<Cut>, Option<Vec<u32>>) {
        let cut = tok.prefix.next_cut(&tok.inner, text, from, true);
        let ids = cut.map(|c| {
            let encoding = tok.inner.encode(&text[..c.at()], true).unwrap();
            match c {
                Cut::Word(_) => Some(encoding.get_ids()[..encoding.len() - 1].to_vec()),
                Cut::InWord(_) => tok.prefix.stable_ids(&tok.inner, &encoding).unwrap(),
            }
        });
        (cut, ids.flatten())
    }

    #[test]
    fn texts_with_spaces_are_cut_between_words() {
        let tok = deberta();
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(100);
        let (cut, ids) = cut_and_ids(&tok, &text, 1000);
        let q = match cut {
            Some(Cut::Word(q)) => q,
            other => panic!("{other:?}"),
        };
        assert!((1000..1064).contains(&q) && text.as_bytes()[q] == b' ');
        let full = tok.inner.encode_fast(text.as_str(), true).unwrap();
        let ids = ids.unwrap();
        assert_eq!(ids[..], full.get_ids()[..ids.len()]);
    }

    #[test]
    fn natural_text_without_spaces_is_cut_inside_its_word() {
        let tok = deberta();
        for unit in
            ["日本語のテキストと中文と한국어", "東京タワーはTokyoTowerと呼ばれる", "ภาษาไทยเป็นภาษาที่ไม่มีการเว้นวรรค"]
        {
            let text = unit.repeat(400);
            let (cut, ids) = cut_and_ids(&tok, &text, 2000);
            assert!(matches!(cut, Some(Cut::InWord(q)) if (2000..2100).contains(&q)), "{unit}: {cut:?}");
            let ids = ids.unwrap_or_else(|| panic!("{unit}: the word did not settle"));
            assert!(ids.len() > 200, "{unit}: only {} ids", ids.len());
            let full = tok.inner.encode_fast(text.as_str(), true).unwrap();
            assert_eq!(ids[..], full.get_ids()[..ids.len()], "{unit}");
        }
    }

    #[test]
    fn a_run_of_unknown_characters_settles_on_its_one_unknown_token() {
        // The tiny fixture's vocabulary has no CJK: the whole run is one [UNK], whatever its end.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/tiny-backbone");
        let tok = PairTokenizer::from_dir(&dir).unwrap();
        let text = format!("hello {}", "日本語".repeat(2000));
        let (cut, ids) = cut_and_ids(&tok, &text, 3000);
        assert!(matches!(cut, Some(Cut::InWord(_))), "{cut:?}");
        let ids = ids.expect("the run settles");
        let full = tok.inner.encode_fast(text.as_str(), true).unwrap();
        assert_eq!(ids[..], full.get_ids()[..ids.len()]);
        assert_eq!(ids.last().copied(), tok.inner.token_to_id("[UNK]"));
    }

    #[test]
    fn periodic_runs_do_not_settle() {
        // The tokens of "aaaa…" depend on its length: no prefix of them is safe.
        let tok = deberta();
        for unit in ["a", "ab"] {
            let text = unit.repeat(5000);
            let (cut, ids) = cut_and_ids(&tok, &text, 2000);
            assert!(matches!(cut, Some(Cut::InWord(_))), "{unit}: {cut:?}");
            assert_eq!(ids, None, "{unit}");
        }
        // The prefix then is the whole text, tokenized as such.
        let text = "a".repeat(5000);
        assert_eq!(
            tok.encode_marked_prefix(&text, 50).unwrap(),
            TokenPrefix::of(tok.encode_marked(&text).unwrap(), 50)
        );
    }

    #[test]
    fn in_word_cuts_keep_away_from_added_tokens_and_whitespace() {
        let tok = deberta();
        let text = format!("{}[MASK]{}", "日本語".repeat(400), "日本語".repeat(400));
        let mask = text.find("[MASK]").unwrap();
        for from in mask - 40..mask + 40 {
            if let Some(Cut::InWord(q)) = tok.prefix.next_cut(&tok.inner, &text, from, true) {
                assert!(q <= mask || q >= mask + 6, "cut at {q}, [MASK] at {mask}");
            }
        }
        // Full-width brackets normalize to an added token.
        let text = format!("{}［ＵＮＫ］{}", "語".repeat(400), "語".repeat(400));
        let at = text.find('［').unwrap();
        for from in at - 30..at + 30 {
            if let Some(Cut::InWord(q)) = tok.prefix.next_cut(&tok.inner, &text, from, true) {
                assert!(q <= at || q >= at + 15, "cut at {q}, ［ＵＮＫ］ at {at}");
            }
        }
    }
}
