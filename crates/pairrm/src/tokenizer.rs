//! The DeBERTa-v3 tokenizer as transformers 4.x's fast tokenizer builds it, with PairRM's
//! marker tokens kept out of user text.
//!
//! SKELETON: the helper implementing this module replaces every `todo!()`.

use std::path::Path;

use crate::error::Result;

/// Tokenizes texts exactly like the reference `DebertaV2TokenizerFast` (transformers 4.x), except
/// that the four PairRM marker strings (`<|source|>`, `<|candidate|>`, `<|candidate1|>`,
/// `<|candidate2|>`) are NOT recognised in text: they are ordinary text here, and the input
/// builder inserts the marker ids structurally.
pub struct PairTokenizer {
    _private: (),
}

impl PairTokenizer {
    /// Loads from a directory: `tokenizer.json` when present, else `spm.model`
    /// (+ optional `tokenizer_config.json` for `do_lower_case`, `split_by_punct`).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let _ = dir;
        todo!()
    }

    /// `[CLS] text [SEP]` ids, untruncated. Literal `[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`, `[MASK]`
    /// in the text are matched as those tokens, as in the reference.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let _ = text;
        todo!()
    }

    /// The `[CLS]` id.
    pub fn cls_id(&self) -> u32 {
        todo!()
    }

    /// The `[SEP]` id.
    pub fn sep_id(&self) -> u32 {
        todo!()
    }

    /// `len(tokenizer)` of the reference before PairRM adds its markers: the spm pieces plus the
    /// added special tokens such as `[MASK]`. The original LLM-Blender layout numbers the markers
    /// from here: `<|source|>` = this, then `<|candidate1|>`, `<|candidate2|>`, `<|candidate|>`.
    pub fn base_len(&self) -> usize {
        todo!()
    }

    /// The id of a marker token as recorded in `tokenizer.json` (PairRM-hf layout), if any.
    pub fn marker_id(&self, marker: &str) -> Option<u32> {
        let _ = marker;
        todo!()
    }
}

impl PairTokenizer {
    /// SKELETON placeholder for the marked encoding (see input.rs).
    pub fn encode_marked(&self, text: &str) -> Result<Vec<u32>> {
        let _ = text;
        todo!()
    }
}
