//! The DeBERTa-v3 tokenizer as transformers 4.x's fast tokenizer builds it, with PairRM's
//! marker tokens kept out of user text.
//!
//! Two ways to load it, as `AutoTokenizer.from_pretrained(dir)` does:
//! - `tokenizer.json` (the PairRM-hf layout, saved by transformers with the four PairRM markers
//!   as added tokens): the file is read as is, except that the markers are taken out of its added
//!   tokens (their ids are remembered, see [`PairTokenizer::marker_id`]).
//! - `spm.model` (+ optional `tokenizer_config.json`): the tokenizer is built the way
//!   transformers' `DebertaV2Converter` converts the slow tokenizer, plus the special tokens the
//!   Python side adds (`[UNK]`, matched after normalization, and `[MASK]` = the next free id).
//!   See [`spm`] for the details.
//!
//! Marker strings in text are ordinary text here: the reference (after LLM-Blender's
//! `add_tokens`) would turn `<|source|>` typed by a user into the marker id, which makes its input
//! builder find several markers and crash. This engine inserts markers structurally instead.

mod json;
pub mod prefix;
pub mod spm;
mod spm_proto;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::PoisonError;

use crate::error::{Error, Result};

pub use prefix::TokenPrefix;
pub use spm::SpmOptions;

/// The four PairRM marker strings, in the order LLM-Blender adds them (and so numbers them from
/// [`PairTokenizer::base_len`]): source, candidate 1, candidate 2, candidate.
pub const MARKERS: [&str; 4] = ["<|source|>", "<|candidate1|>", "<|candidate2|>", "<|candidate|>"];

/// Name of the fast-tokenizer file in a model directory.
pub const TOKENIZER_JSON: &str = "tokenizer.json";
/// Name of the SentencePiece model file in a model directory.
pub const SPM_MODEL: &str = "spm.model";
/// Name of the tokenizer configuration file in a model directory.
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";

/// Tokenizes texts exactly like the reference `DebertaV2TokenizerFast` (transformers 4.x), except
/// that the four PairRM marker strings (`<|source|>`, `<|candidate|>`, `<|candidate1|>`,
/// `<|candidate2|>`) are NOT recognised in text: they are ordinary text here, and the input
/// builder inserts the marker ids structurally.
#[derive(Debug, Clone)]
pub struct PairTokenizer {
    inner: tokenizers::Tokenizer,
    cls_id: u32,
    sep_id: u32,
    base_len: usize,
    /// Marker ids recorded by the loaded files, in [`MARKERS`] order.
    markers: [Option<u32>; 4],
    /// The id of [`MARKER_PLACEHOLDER`], registered in `inner` for [`Self::encode_marked`].
    placeholder_id: u32,
    /// The tokens of the placeholder's characters as ordinary text (what they are without the
    /// registration), spliced in wherever a text itself contains them.
    placeholder_plain: Vec<u32>,
    /// Whether long texts may be cut before tokenizing ([`Self::encode_marked_prefix`]).
    prefix: prefix::PrefixRules,
}

/// Stands in for a PairRM marker when a part is tokenized: private-use characters that no
/// normalizer changes, registered like the reference registers its markers (`add_tokens`: not
/// special, normalized), so `placeholder + text` tokenizes exactly as `marker + text` does there.
const MARKER_PLACEHOLDER: &str = "\u{F0001}\u{F0002}\u{F0003}";

impl PairTokenizer {
    /// Loads from a directory: `tokenizer.json` when present, else `spm.model`
    /// (+ optional `tokenizer_config.json` for `do_lower_case`, `split_by_punct`).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
        if !meta.is_dir() {
            return Err(Error::invalid_file(dir, "not a directory"));
        }
        let json_path = dir.join(TOKENIZER_JSON);
        if json_path.exists() {
            return Self::from_tokenizer_json(&json_path);
        }
        let spm_path = dir.join(SPM_MODEL);
        if !spm_path.exists() {
            return Err(Error::invalid_file(
                dir,
                format!("no tokenizer here: neither {TOKENIZER_JSON} nor {SPM_MODEL} exists"),
            ));
        }
        let config_path = dir.join(TOKENIZER_CONFIG);
        let config = if config_path.exists() {
            spm::TokenizerConfig::from_file(&config_path)?
        } else {
            spm::TokenizerConfig::default()
        };
        let built = spm::build(&spm_path, &config.options)?;
        let mut markers = [None; 4];
        config.check_added_tokens(&config_path, &built, &mut markers)?;
        Self::finish(built, markers, &spm_path)
    }

    /// Builds from a SentencePiece model file as transformers converts it (see [`spm`]), with
    /// the given options (those of `tokenizer_config.json`). No marker ids are recorded.
    pub fn from_spm(spm_model: &Path, options: &SpmOptions) -> Result<Self> {
        let built = spm::build(spm_model, options)?;
        Self::finish(built, [None; 4], spm_model)
    }

    /// Loads a transformers `tokenizer.json`. The PairRM marker tokens are removed from its added
    /// tokens (so they are not recognised in text) and their ids are remembered.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let (inner, markers) = json::load(path)?;
        Self::finish(inner, markers, path)
    }

    /// Common checks once the inner tokenizer is built; `origin` names the file for errors.
    fn finish(mut inner: tokenizers::Tokenizer, markers: [Option<u32>; 4], origin: &Path) -> Result<Self> {
        // The reference encodes untruncated and unpadded.
        inner
            .with_truncation(None)
            .map_err(|e| Error::invalid_file(origin, format!("cannot disable truncation: {e}")))?;
        inner.with_padding(None);
        let cls_id = inner
            .token_to_id("[CLS]")
            .ok_or_else(|| Error::invalid_file(origin, "the tokenizer has no [CLS] token"))?;
        let sep_id = inner
            .token_to_id("[SEP]")
            .ok_or_else(|| Error::invalid_file(origin, "the tokenizer has no [SEP] token"))?;
        let base_len = inner.get_vocab_size(true);
        let plain = run_encode(&inner, MARKER_PLACEHOLDER).map_err(|e| Error::invalid_file(origin, e.to_string()))?;
        let placeholder_plain = plain[1..plain.len().saturating_sub(1).max(1)].to_vec();
        inner.add_tokens(&[tokenizers::AddedToken::from(MARKER_PLACEHOLDER, false)]);
        let placeholder_id = inner
            .token_to_id(MARKER_PLACEHOLDER)
            .ok_or_else(|| Error::invalid_file(origin, "cannot register the marker placeholder"))?;
        let prefix = prefix::PrefixRules::of(&inner);
        let tokenizer =
            PairTokenizer { inner, cls_id, sep_id, base_len, markers, placeholder_id, placeholder_plain, prefix };
        // The input builder relies on `[CLS] ... [SEP]`: check the post-processor gives that.
        let empty = tokenizer.encode("").map_err(|e| Error::invalid_file(origin, e.to_string()))?;
        if empty != [cls_id, sep_id] {
            return Err(Error::unsupported(
                origin,
                format!(
                    "encoding \"\" gives {empty:?}, not [CLS]={cls_id} [SEP]={sep_id}: the \
                     post-processor must add `[CLS] $A [SEP]`"
                ),
            ));
        }
        Ok(tokenizer)
    }

    /// `[CLS] text [SEP]` ids, untruncated. Literal `[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`, `[MASK]`
    /// in the text are matched as those tokens, as in the reference.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let ids = run_encode(&self.inner, text)?;
        Ok(self.splice_placeholder(&ids))
    }

    /// `[CLS] <marker> text [SEP]` ids, untruncated, with a placeholder id at position 1 for the
    /// caller to replace by the marker id it needs.
    ///
    /// The reference tokenizes `"<|source|>" + text` (or `"<|candidate|>" + text`) with the
    /// markers as added tokens, and the normalizer sees the marker and the text as one string:
    /// that is not always `encode(text)` with a marker put in front (an identity-normalized
    /// model keeps a leading tab, say, that `encode(text)` strips). So the text is tokenized
    /// behind a placeholder that is registered exactly as the markers are, while the marker
    /// strings themselves stay ordinary text. A text that itself contains the placeholder's
    /// private-use characters gets those tokenized as ordinary text too.
    pub fn encode_marked(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = run_encoding(&self.inner, &format!("{MARKER_PLACEHOLDER}{text}"), false)?;
        Ok(self.marked_ids(encoding.get_ids()))
    }

    /// `[CLS] <placeholder> body…` from the ids of `placeholder + text`: the placeholder's slot
    /// at position 1, and the placeholder's characters elsewhere as ordinary text.
    fn marked_ids(&self, ids: &[u32]) -> Vec<u32> {
        // Were the placeholder not recognised at the front (it cannot be, with the normalizers
        // DeBERTa uses), the caller still gets its slot.
        let body = if ids.get(1) == Some(&self.placeholder_id) { &ids[2..] } else { ids.get(1..).unwrap_or(&[]) };
        let mut out = vec![self.cls_id, self.placeholder_id];
        out.extend(self.splice_placeholder(body));
        out
    }

    /// The first `keep` ids of [`Self::encode_marked`]`(text)`, or all of them when there are no
    /// more ([`TokenPrefix::complete`]), without tokenizing more of a long text than that needs.
    ///
    /// A prefix of `text` is tokenized, cut where the cut cannot change the tokens kept, and
    /// grown (doubling) until it gives enough; the ids are exactly those of `encode_marked`, as
    /// the [`prefix`] module shows. Memory and time then grow with `keep`, not with the text.
    /// A text with no usable cut (a run such as `aaaa…` whose first tokens depend on its end), or
    /// a tokenizer whose pipeline the argument does not cover, is tokenized whole. Any text
    /// (whole or prefix) over [`prefix::SERIAL_ABOVE`] bytes is tokenized one at a time,
    /// process-wide, so that its memory is needed once, not once per concurrent caller.
    pub fn encode_marked_prefix(&self, text: &str, keep: usize) -> Result<TokenPrefix> {
        if self.prefix.enabled() {
            let mut want = prefix::first_try(keep);
            let mut in_word = true;
            while want < text.len() {
                let Some(cut) = self.prefix.next_cut(&self.inner, text, want, in_word) else { break };
                let prefix_text = format!("{MARKER_PLACEHOLDER}{}", &text[..cut.at()]);
                // An in-word cut needs the tokens and words of the encoding (slower).
                let encoding = self.encode_bounded(&prefix_text, matches!(cut, prefix::Cut::InWord(_)))?;
                let ids = match cut {
                    prefix::Cut::Word(_) => {
                        let ids = encoding.get_ids();
                        ids[..ids.len().saturating_sub(1)].to_vec()
                    }
                    prefix::Cut::InWord(_) => match self.prefix.stable_ids(&self.inner, &encoding)? {
                        Some(ids) => ids,
                        None => {
                            // The word does not settle: look for word cuts only.
                            in_word = false;
                            continue;
                        }
                    },
                };
                let ids = self.marked_ids(&ids);
                if ids.len() >= keep {
                    return Ok(TokenPrefix::cut(ids, keep));
                }
                want = cut.at().saturating_mul(2);
            }
        }
        let encoding = self.encode_bounded(&format!("{MARKER_PLACEHOLDER}{text}"), false)?;
        Ok(TokenPrefix::of(self.marked_ids(encoding.get_ids()), keep))
    }

    /// [`run_encoding`], one at a time process-wide for texts over [`prefix::SERIAL_ABOVE`]
    /// bytes: tokenizing costs about a hundred bytes of memory per byte of text, which concurrent
    /// requests would otherwise each pay. Such a text is tokenized on a short-lived thread of its
    /// own, whose allocations come from the allocator arena every such thread reuses: their peak
    /// stays mapped once, not once per worker thread that ever tokenized a long text.
    fn encode_bounded(&self, text: &str, full: bool) -> Result<tokenizers::Encoding> {
        if text.len() <= prefix::SERIAL_ABOVE {
            return run_encoding(&self.inner, text, full);
        }
        let _one_at_a_time = prefix::LONG_TEXTS.lock().unwrap_or_else(PoisonError::into_inner);
        std::thread::scope(|scope| scope.spawn(|| run_encoding(&self.inner, text, full)).join())
            .unwrap_or_else(|_| Err(Error::Tokenizer("the tokenizer panicked".into())))
    }

    /// Whether [`Self::encode_marked_prefix`] cuts long texts for this tokenizer (its pipeline is
    /// DeBERTa-v3's); otherwise it tokenizes them whole.
    pub fn cuts_long_texts(&self) -> bool {
        self.prefix.enabled()
    }

    /// `ids` with every placeholder id replaced by the placeholder's ordinary tokens.
    fn splice_placeholder(&self, ids: &[u32]) -> Vec<u32> {
        if !ids.contains(&self.placeholder_id) {
            return ids.to_vec();
        }
        let mut out = Vec::with_capacity(ids.len() + self.placeholder_plain.len());
        for &id in ids {
            if id == self.placeholder_id {
                out.extend_from_slice(&self.placeholder_plain);
            } else {
                out.push(id);
            }
        }
        out
    }

    /// The `[CLS]` id.
    pub fn cls_id(&self) -> u32 {
        self.cls_id
    }

    /// The `[SEP]` id.
    pub fn sep_id(&self) -> u32 {
        self.sep_id
    }

    /// `len(tokenizer)` of the reference before PairRM adds its markers: the spm pieces plus the
    /// added special tokens such as `[MASK]`. The original LLM-Blender layout numbers the markers
    /// from here: `<|source|>` = this, then `<|candidate1|>`, `<|candidate2|>`, `<|candidate|>`.
    pub fn base_len(&self) -> usize {
        self.base_len
    }

    /// The id of a marker token as recorded in `tokenizer.json` (PairRM-hf layout), if any.
    ///
    /// Also reports markers listed in the `added_tokens_decoder` of a `tokenizer_config.json`
    /// read next to `spm.model`. `None` for strings that are not one of [`MARKERS`].
    pub fn marker_id(&self, marker: &str) -> Option<u32> {
        let index = MARKERS.iter().position(|m| *m == marker)?;
        self.markers[index]
    }

    /// The id of a token of the vocabulary (spm pieces and the added special tokens; not the
    /// markers, which are not part of this tokenizer).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Serializes this tokenizer as a transformers `tokenizer.json` in the PairRM-hf layout: the
    /// tokenizer itself plus the four markers as added tokens (not special, normalized, as
    /// `add_tokens` makes them), numbered with their recorded ids, or `base_len()`,
    /// `base_len()+1`, ... in [`MARKERS`] order when none were recorded. Loading the result with
    /// [`PairTokenizer::from_tokenizer_json`] gives back an equivalent tokenizer.
    pub fn to_pairrm_hf_json(&self) -> Result<String> {
        json::to_pairrm_hf_json(&self.inner, self.marker_ids_or_default(), MARKER_PLACEHOLDER)
    }

    /// The marker ids, recorded or numbered from `base_len()` as in the original layout.
    fn marker_ids_or_default(&self) -> [u32; 4] {
        let mut ids = [0u32; 4];
        for (i, id) in ids.iter_mut().enumerate() {
            *id = self.markers[i].unwrap_or((self.base_len + i) as u32);
        }
        ids
    }
}

/// Encodes with `[CLS] … [SEP]`. A model file can be well-formed enough to load yet make the
/// normalizer index out of bounds (a crafted `precompiled_charsmap`): that is an error, not a panic.
/// `full` also gives the token strings, words and offsets (`encode`, not `encode_fast`).
fn run_encoding(tokenizer: &tokenizers::Tokenizer, text: &str, full: bool) -> Result<tokenizers::Encoding> {
    let encode = || if full { tokenizer.encode(text, true) } else { tokenizer.encode_fast(text, true) };
    catch_unwind(AssertUnwindSafe(encode))
        .map_err(|_| Error::Tokenizer("the tokenizer panicked (corrupt model data?)".into()))?
        .map_err(|e| Error::Tokenizer(e.to_string()))
}

/// The ids of [`run_encoding`].
fn run_encode(tokenizer: &tokenizers::Tokenizer, text: &str) -> Result<Vec<u32>> {
    Ok(run_encoding(tokenizer, text, false)?.get_ids().to_vec())
}
