//! What the server needs from a model: token counts (to batch by a token budget), logits, and a
//! description for `/info`. [`Engine`] is the backend of `pairrm serve`; the trait lets an
//! embedder (or a test) wrap it.

use std::collections::HashMap;

use pairrm::input::EncodedPart;
use pairrm::judge::Pair;
use pairrm::{CallOptions, Engine, Error, Result};
use serde::Serialize;
use utoipa::ToSchema;

/// A model the server can run. Every method may be called from several threads at once.
pub trait Backend: Send + Sync + 'static {
    /// The number of tokens of each pair's model input, in order; an error for a pair that
    /// cannot be encoded (it is then not scored).
    fn pair_tokens(&self, pairs: &[Pair]) -> Vec<Result<usize>>;

    /// `logit(left, right)` of every pair, in order (> 0: left is better). Called by the batching
    /// worker with one batch at a time; results must not depend on the batch's composition.
    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>>;

    /// The model and its limits, as `/info` shows them.
    fn info(&self) -> ModelInfo;
}

/// The model as `/info` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModelInfo {
    /// The model as it was named when loaded (a directory or a hub id).
    pub model_id: String,
    /// The checkpoint layout (`original` or `hf`).
    pub layout: String,
    /// How the exact tier stores its weights (`f32`, `f16`, `bf16`).
    pub dtype: String,
    /// The arithmetic of the linear layers: `f32` (exact), `bf16` or `int8`.
    pub precision: String,
    /// The compute kernels that run.
    pub kernels: KernelsInfo,
    /// Most tokens of the source (instruction + input) in a pair.
    pub source_max_length: usize,
    /// Most tokens of each candidate in a pair.
    pub candidate_max_length: usize,
    /// Threads of the engine.
    pub threads: usize,
}

/// The compute kernels a model runs, as `/info` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KernelsInfo {
    /// The linear layers' products (e.g. `f32-gemm`, `bf16-avx512-bf16`).
    pub linear: String,
    /// The attention's products.
    pub attention: String,
    /// The instruction-set level they were chosen at (`scalar`, `avx2`, `avx512`).
    pub level: String,
}

impl Backend for Engine {
    /// Tokenizes each distinct text once and assembles every pair's input, exactly as the engine
    /// does before a forward pass.
    fn pair_tokens(&self, pairs: &[Pair]) -> Vec<Result<usize>> {
        let builder = self.input_builder();
        let mut parts: HashMap<&str, Result<EncodedPart>> = HashMap::new();
        for pair in pairs {
            for text in [&*pair.source, &*pair.left, &*pair.right] {
                parts.entry(text).or_insert_with(|| builder.encode_part(text));
            }
        }
        let part = |text: &str| -> Result<&EncodedPart> {
            parts[text].as_ref().map_err(|e| Error::invalid_input("pair", e.to_string()))
        };
        pairs
            .iter()
            .map(|p| Ok(builder.assemble(part(&p.source)?, part(&p.left)?, part(&p.right)?).ids.len()))
            .collect()
    }

    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>> {
        self.logits_with(pairs, &CallOptions::default())
    }

    fn info(&self) -> ModelInfo {
        let config = self.config();
        ModelInfo {
            model_id: self.model_id().to_string(),
            layout: format!("{:?}", self.layout()).to_lowercase(),
            dtype: self.dtype().to_string(),
            precision: self.precision().to_string(),
            kernels: {
                let k = self.kernels();
                KernelsInfo { linear: k.linear.into(), attention: k.attention.into(), level: k.level.to_string() }
            },
            source_max_length: config.source_max_length,
            candidate_max_length: config.candidate_max_length,
            threads: self.threads(),
        }
    }
}
