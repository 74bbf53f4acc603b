//! Building the fast tokenizer from a SentencePiece model, as transformers 4.x does for
//! DeBERTa-v2/v3 (`DebertaV2TokenizerFast` converted from `spm.model` by `DebertaV2Converter`).
//!
//! What gets built:
//! - model: Unigram over the spm pieces with their scores, unk id from the trainer spec, **no
//!   byte fallback** (the converter drops it even though DeBERTa-v3's spm.model has byte pieces:
//!   a run of unknown characters becomes one `[UNK]`);
//! - normalizer: Sequence\[Lowercase (only if `do_lower_case`), Strip (both sides),
//!   Precompiled(charsmap of the file, if it has one), Replace(regex ` {2,}` -> ` `)\];
//! - pre-tokenizer: Sequence\[Punctuation(isolated) (only if `split_by_punct`),
//!   Metaspace(`▁`, prepend always, split)\];
//! - post-processor: `[CLS] $A [SEP]` (pair: `[CLS] $A [SEP] $B [SEP]`); decoder: Metaspace;
//! - added tokens, in this order: the spm control pieces (special, not normalized) and
//!   user-defined pieces (not special, not normalized), as the converter adds them; then the
//!   special tokens transformers adds itself when they are not there yet: `[UNK]` (special,
//!   normalized: `DebertaV2Tokenizer` makes it so, so e.g. a full-width `［UNK］` is matched after
//!   NFKC) and `[CLS]`, `[SEP]`, `[PAD]`, `[MASK]` (special, not normalized). For DeBERTa-v3,
//!   `[PAD]`, `[CLS]`, `[SEP]` are control pieces 0..2, `[UNK]` is piece 3 and `[MASK]` is new
//!   and gets the next id, 128000.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use serde_json::Value;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, Precompiled, Replace, Sequence, Strip};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::punctuation::Punctuation;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::error::{Error, Result};

use super::spm_proto::{self, PieceType};
use super::MARKERS;

/// The options of `DebertaV2Tokenizer` that change how text is tokenized, as read from
/// `tokenizer_config.json`. The defaults are those of `DebertaV2Tokenizer` (both `false`), which
/// is what microsoft/deberta-v3-large uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpmOptions {
    /// `do_lower_case`: lowercase the text before everything else.
    pub do_lower_case: bool,
    /// `split_by_punct`: isolate every punctuation character before the Metaspace split.
    pub split_by_punct: bool,
}

/// Special tokens of `DebertaV2Tokenizer` in the order transformers adds the missing ones
/// (`bos`, `eos`, `unk`, `sep`, `pad`, `cls`, `mask`, without repeats), with the `normalized`
/// flag each gets. The value the config keys must have when present.
const SPECIAL_TOKENS: [(&str, &str, bool); 7] = [
    ("bos_token", "[CLS]", false),
    ("eos_token", "[SEP]", false),
    ("unk_token", "[UNK]", true),
    ("sep_token", "[SEP]", false),
    ("pad_token", "[PAD]", false),
    ("cls_token", "[CLS]", false),
    ("mask_token", "[MASK]", false),
];

/// What this module reads from `tokenizer_config.json`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenizerConfig {
    /// The tokenization options.
    pub options: SpmOptions,
    /// `added_tokens_decoder` entries: (id, content).
    added_tokens: Vec<(u32, String)>,
}

impl TokenizerConfig {
    /// Reads and checks a `tokenizer_config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| Error::invalid_file(path, format!("not valid JSON: {e}")))?;
        let obj =
            value.as_object().ok_or_else(|| Error::invalid_file(path, "expected a JSON object at the top level"))?;
        let flag = |key: &str| -> Result<bool> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(Error::invalid_file(path, format!("`{key}` must be true or false, not {other}"))),
            }
        };
        let options = SpmOptions { do_lower_case: flag("do_lower_case")?, split_by_punct: flag("split_by_punct")? };

        if let Some(class) = obj.get("tokenizer_class") {
            let known =
                class.is_null() || matches!(class.as_str(), Some("DebertaV2Tokenizer" | "DebertaV2TokenizerFast"));
            if !known {
                return Err(Error::unsupported(
                    path,
                    format!("tokenizer_class {class}: only DebertaV2Tokenizer is implemented"),
                ));
            }
        }
        for (key, expected, _) in SPECIAL_TOKENS {
            let Some(value) = obj.get(key) else { continue };
            let content = match value {
                Value::Null => continue,
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) => o.get("content").and_then(Value::as_str),
                _ => None,
            };
            match content {
                Some(c) if c == expected => {}
                Some(c) => {
                    let message = format!("`{key}` is {c:?}; only {expected:?} is implemented");
                    return Err(Error::unsupported(path, message));
                }
                None => {
                    return Err(Error::invalid_file(
                        path,
                        format!("`{key}` must be a string or an object with a \"content\" string"),
                    ))
                }
            }
        }
        if let Some(extra) = obj.get("additional_special_tokens") {
            let empty = extra.is_null() || extra.as_array().is_some_and(|a| a.is_empty());
            if !empty {
                return Err(Error::unsupported(path, "`additional_special_tokens` is not implemented"));
            }
        }
        let mut added_tokens = Vec::new();
        if let Some(decoder) = obj.get("added_tokens_decoder") {
            let entries = decoder
                .as_object()
                .ok_or_else(|| Error::invalid_file(path, "`added_tokens_decoder` must be an object {id: token}"))?;
            for (id, token) in entries {
                let id: u32 = id.parse().map_err(|_| {
                    Error::invalid_file(path, format!("`added_tokens_decoder` key {id:?} is not an id"))
                })?;
                let content = token.get("content").and_then(Value::as_str).ok_or_else(|| {
                    Error::invalid_file(path, format!("`added_tokens_decoder` entry {id} has no \"content\" string"))
                })?;
                added_tokens.push((id, content.to_string()));
            }
        }
        Ok(TokenizerConfig { options, added_tokens })
    }

    /// Checks the `added_tokens_decoder` entries against the tokenizer built from spm.model:
    /// markers are recorded into `markers` (and not added), the other entries must be tokens
    /// the tokenizer already has with the same id (anything else is not implemented).
    pub fn check_added_tokens(&self, path: &Path, built: &Tokenizer, markers: &mut [Option<u32>; 4]) -> Result<()> {
        for (id, content) in &self.added_tokens {
            if let Some(index) = MARKERS.iter().position(|m| m == content) {
                markers[index] = Some(*id);
                continue;
            }
            match built.token_to_id(content) {
                Some(have) if have == *id => {}
                Some(have) => {
                    return Err(Error::unsupported(
                        path,
                        format!(
                            "`added_tokens_decoder` gives {content:?} id {id}, but spm.model makes \
                             it {have}"
                        ),
                    ))
                }
                None => {
                    return Err(Error::unsupported(
                        path,
                        format!(
                            "`added_tokens_decoder` adds {content:?} (id {id}): extra added tokens are not implemented"
                        ),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Reads `spm_path` and builds the tokenizer (see the module documentation).
pub(crate) fn build(spm_path: &Path, options: &SpmOptions) -> Result<Tokenizer> {
    let bytes = std::fs::read(spm_path).map_err(|e| Error::io(spm_path, e))?;
    build_guarded(&bytes, spm_path, options)
}

/// [`build_from_bytes`], with a panic inside the `tokenizers` crate (which a crafted
/// `precompiled_charsmap` can cause when the normalizer first runs) reported as an error.
fn build_guarded(bytes: &[u8], path: &Path, options: &SpmOptions) -> Result<Tokenizer> {
    catch_unwind(AssertUnwindSafe(|| build_from_bytes(bytes, path, options))).unwrap_or_else(|_| {
        Err(Error::invalid_file(path, "building the tokenizer failed (panicked): corrupt model data"))
    })
}

fn build_from_bytes(bytes: &[u8], path: &Path, options: &SpmOptions) -> Result<Tokenizer> {
    let model = spm_proto::parse(bytes)
        .map_err(|e| Error::invalid_file(path, format!("not a SentencePiece model (protobuf decoding failed: {e})")))?;
    if model.model_type != 1 {
        return Err(Error::unsupported(
            path,
            format!(
                "SentencePiece model type {} ({}): only Unigram is implemented",
                model.model_type,
                match model.model_type {
                    2 => "BPE",
                    3 => "WORD",
                    4 => "CHAR",
                    _ => "unknown",
                }
            ),
        ));
    }
    let pieces = &model.pieces;
    if pieces.is_empty() {
        return Err(Error::invalid_file(path, "the SentencePiece model has no pieces"));
    }
    let unk_id = usize::try_from(model.unk_id).ok().filter(|&id| id < pieces.len()).ok_or_else(|| {
        Error::invalid_file(path, format!("unk_id {} is not the id of a piece ({} pieces)", model.unk_id, pieces.len()))
    })?;
    let vocab: Vec<(String, f64)> = pieces.iter().map(|p| (p.piece.clone(), f64::from(p.score))).collect();
    let unigram = Unigram::from(vocab, Some(unk_id), false)
        .map_err(|e| Error::invalid_file(path, format!("cannot build the Unigram model: {e}")))?;

    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    if options.do_lower_case {
        normalizers.push(Lowercase.into());
    }
    normalizers.push(Strip::new(true, true).into());
    let charsmap = model.precompiled_charsmap.as_slice();
    if !charsmap.is_empty() {
        check_charsmap(charsmap, path)?;
        let precompiled = Precompiled::from(charsmap)
            .map_err(|e| Error::invalid_file(path, format!("bad precompiled_charsmap in the normalizer spec: {e}")))?;
        normalizers.push(precompiled.into());
    }
    let collapse = Replace::new(ReplacePattern::Regex(" {2,}".into()), " ")
        .map_err(|e| Error::Tokenizer(format!("cannot build the space-collapsing regex: {e}")))?;
    normalizers.push(collapse.into());

    let mut pre_tokenizers: Vec<PreTokenizerWrapper> = Vec::new();
    if options.split_by_punct {
        pre_tokenizers.push(Punctuation::new(SplitDelimiterBehavior::Isolated).into());
    }
    let metaspace = Metaspace::new('\u{2581}', PrependScheme::Always, true);
    pre_tokenizers.push(metaspace.clone().into());

    let mut tokenizer = Tokenizer::new(unigram);
    tokenizer
        .with_normalizer(Some(Sequence::new(normalizers)))
        .with_pre_tokenizer(Some(PreSequence::new(pre_tokenizers)))
        .with_decoder(Some(metaspace));

    // The converter: control pieces are special, user-defined ones are not; none is normalized.
    let spm_added: Vec<AddedToken> = pieces
        .iter()
        .filter_map(|p| match p.kind {
            PieceType::Control => Some(AddedToken::from(p.piece.as_str(), true).normalized(false)),
            PieceType::UserDefined => Some(AddedToken::from(p.piece.as_str(), false).normalized(false)),
            _ => None,
        })
        .collect();
    tokenizer.add_tokens(&spm_added);

    // transformers: the special tokens not yet in the added vocabulary.
    let mut python_added: Vec<AddedToken> = Vec::new();
    for (_, content, normalized) in SPECIAL_TOKENS {
        let present = tokenizer.get_added_vocabulary().get_vocab().contains_key(content)
            || python_added.iter().any(|t| t.content == content);
        if !present {
            python_added.push(AddedToken::from(content, true).normalized(normalized));
        }
    }
    tokenizer.add_special_tokens(&python_added);

    let id_of = |token: &str| {
        tokenizer
            .token_to_id(token)
            .ok_or_else(|| Error::invalid_file(path, format!("the tokenizer has no {token} token")))
    };
    let (cls, sep) = (id_of("[CLS]")?, id_of("[SEP]")?);
    let template = TemplateProcessing::builder()
        .try_single("[CLS]:0 $A:0 [SEP]:0")
        .and_then(|b| b.try_pair("[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1"))
        .map_err(|e| Error::Tokenizer(format!("bad post-processor template: {e}")))?
        .special_tokens(vec![("[CLS]", cls), ("[SEP]", sep)])
        .build()
        .map_err(|e| Error::Tokenizer(format!("cannot build the post-processor: {e}")))?;
    tokenizer.with_post_processor(Some(template));
    Ok(tokenizer)
}

/// Structural checks of a SentencePiece `precompiled_charsmap` (`u32` trie size in bytes, the
/// trie as `u32` units, then the NUL-separated replacement strings), so that an obviously
/// truncated or corrupt one is reported at load time rather than failing while encoding.
fn check_charsmap(charsmap: &[u8], path: &Path) -> Result<()> {
    let bad =
        |what: &str| Err(Error::invalid_file(path, format!("bad precompiled_charsmap in the normalizer spec: {what}")));
    let Some(head) = charsmap.get(..4) else {
        return bad("shorter than its 4-byte header");
    };
    let trie_size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if trie_size == 0 || !trie_size.is_multiple_of(4) {
        return bad("trie size is not a positive multiple of 4");
    }
    if trie_size > charsmap.len() - 4 {
        return bad("trie size runs past the end of the data");
    }
    if std::str::from_utf8(&charsmap[4 + trie_size..]).is_err() {
        return bad("replacement strings are not UTF-8");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TokenizerConfig> {
        TokenizerConfig::parse(text, Path::new("tokenizer_config.json"))
    }

    #[test]
    fn config_defaults_and_flags() {
        let c = parse(r#"{"do_lower_case": false, "vocab_type": "spm"}"#).unwrap();
        assert_eq!(c.options, SpmOptions::default());
        let c = parse(r#"{"do_lower_case": true, "split_by_punct": true}"#).unwrap();
        assert_eq!(c.options, SpmOptions { do_lower_case: true, split_by_punct: true });
        let c = parse(r#"{"do_lower_case": null, "unk_token": {"content": "[UNK]"}}"#).unwrap();
        assert_eq!(c.options, SpmOptions::default());
    }

    #[test]
    fn config_errors_name_the_problem() {
        for (text, needle) in [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "JSON object"),
            (r#"{"do_lower_case": "yes"}"#, "do_lower_case"),
            (r#"{"split_by_punct": 1}"#, "split_by_punct"),
            (r#"{"mask_token": "<mask>"}"#, "mask_token"),
            (r#"{"unk_token": 3}"#, "unk_token"),
            (r#"{"tokenizer_class": "BertTokenizer"}"#, "tokenizer_class"),
            (r#"{"additional_special_tokens": ["<x>"]}"#, "additional_special_tokens"),
            (r#"{"added_tokens_decoder": []}"#, "added_tokens_decoder"),
            (r#"{"added_tokens_decoder": {"x": {"content": "a"}}}"#, "not an id"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("tokenizer_config.json"), "{text}: {err}");
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn charsmap_checks() {
        let p = Path::new("spm.model");
        assert!(check_charsmap(&[1, 0], p).is_err());
        assert!(check_charsmap(&[0, 0, 0, 0], p).is_err());
        assert!(check_charsmap(&[8, 0, 0, 0, 1, 2, 3, 4], p).is_err());
        assert!(check_charsmap(&[4, 0, 0, 0, 1, 2, 3, 4, 0xff], p).is_err());
        assert!(check_charsmap(&[4, 0, 0, 0, 1, 2, 3, 4, b'a', 0], p).is_ok());
    }

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field(number: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    /// A tiny spm model: [PAD] [CLS] [SEP] (control), [UNK] (unknown, unk_id 3), ▁a, b; with
    /// the given precompiled_charsmap.
    fn tiny_model(charsmap: &[u8]) -> Vec<u8> {
        let mut model = Vec::new();
        for (text, kind) in [("[PAD]", 3), ("[CLS]", 3), ("[SEP]", 3), ("[UNK]", 2), ("▁a", 1), ("b", 1)] {
            let mut piece = Vec::new();
            field(1, text.as_bytes(), &mut piece);
            varint(2 << 3 | 5, &mut piece);
            piece.extend_from_slice(&(-1.0f32).to_le_bytes());
            varint(3 << 3, &mut piece);
            varint(kind, &mut piece);
            field(1, &piece, &mut model);
        }
        let mut trainer = Vec::new();
        varint(40 << 3, &mut trainer);
        varint(3, &mut trainer);
        field(2, &trainer, &mut model);
        if !charsmap.is_empty() {
            let mut normalizer = Vec::new();
            field(2, charsmap, &mut normalizer);
            field(3, &normalizer, &mut model);
        }
        model
    }

    #[test]
    fn tiny_model_builds() {
        let path = Path::new("spm.model");
        let tok = build_guarded(&tiny_model(&[]), path, &SpmOptions::default()).unwrap();
        let ids = tok.encode_fast("a b [MASK] c", true).unwrap().get_ids().to_vec();
        // [MASK] gets the next id after the 6 pieces; "c" is unknown; "▁" alone too.
        assert_eq!(ids, [1, 4, 3, 5, 6, 3, 2]);
    }

    #[test]
    fn crafted_charsmap_is_an_error_not_a_panic() {
        // Passes the structural checks, but its trie points far out of bounds.
        let charsmap = [4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, b'x', 0];
        assert!(check_charsmap(&charsmap, Path::new("spm.model")).is_ok());
        let result = build_guarded(&tiny_model(&charsmap), Path::new("spm.model"), &SpmOptions::default());
        let err = result.unwrap_err().to_string();
        assert!(err.contains("spm.model"), "{err}");
    }

    #[test]
    fn garbage_is_not_a_model() {
        let err = build_from_bytes(b"\xff\xff\xff\xff garbage", Path::new("spm.model"), &SpmOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("spm.model") && err.contains("SentencePiece"), "{err}");
        // An empty protobuf message decodes fine but has no pieces.
        let err = build_from_bytes(b"", Path::new("spm.model"), &SpmOptions::default()).unwrap_err().to_string();
        assert!(err.contains("no pieces"), "{err}");
    }
}
