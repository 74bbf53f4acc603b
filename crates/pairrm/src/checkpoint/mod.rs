//! Finding and reading a PairRM checkpoint: a local directory in either layout, or a hub id
//! resolved through the Hugging Face cache.
//!
//! SKELETON: the helper implementing this module replaces every `todo!()`.

mod weights;

use std::path::PathBuf;

pub use weights::{Tensor, Weights};

use crate::config::{DebertaConfig, PairRmConfig};
use crate::error::Result;
use crate::tokenizer::PairTokenizer;

/// The two checkpoint layouts PairRM is published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `llm-blender/PairRM`: LLM-Blender's ranker `config.json` (`ranker_type: "pairranker"`);
    /// backbone config and tokenizer come from `model_name`.
    Original,
    /// `llm-blender/PairRM-hf`: a DeBERTa-v2 `config.json` with the marker ids; tokenizer files
    /// beside it.
    Hf,
}

/// How to find a model.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Hub revision (branch, tag or commit); `main` when unset.
    pub revision: Option<String>,
    /// Override of the checkpoint's `source_maxlength`.
    pub source_max_length: Option<usize>,
    /// Override of the checkpoint's `candidate_maxlength`.
    pub candidate_max_length: Option<usize>,
}

/// A checkpoint ready to build a model from.
pub struct Checkpoint {
    /// The model as the user named it (path or hub id).
    pub model_id: String,
    /// The directory holding the ranker's `config.json` and weights.
    pub dir: PathBuf,
    /// Which layout it is in.
    pub layout: Layout,
    /// Backbone architecture.
    pub deberta: DebertaConfig,
    /// Ranker settings (limits already overridden by [`OpenOptions`]).
    pub pairrm: PairRmConfig,
    /// The tokenizer.
    pub tokenizer: PairTokenizer,
    /// The weight tensors (memory-mapped where possible).
    pub weights: Weights,
}

impl Checkpoint {
    /// Opens `model`: an existing local directory, else a hub id (`org/name`) looked up in the HF
    /// cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`).
    pub fn open(model: &str, options: &OpenOptions) -> Result<Self> {
        let _ = (model, options);
        todo!()
    }
}
