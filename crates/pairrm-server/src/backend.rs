//! What the server needs from a model: the exact model input of a pair (encoded once, before it
//! is queued), logits of encoded inputs, and a description for `/info`. [`Engine`] is the backend
//! of `pairrm serve`; the trait lets an embedder (or a test) wrap it.

use std::path::Path;
use std::sync::Arc;

use pairrm::input::PairInput;
use pairrm::judge::Pair;
use pairrm::{CallOptions, Engine, Result};
use serde::Serialize;
use utoipa::ToSchema;

/// A model the server can run. Every method may be called from several threads at once.
pub trait Backend: Send + Sync + 'static {
    /// The exact model input of each pair, in order; an error for a pair that cannot be encoded
    /// (it is then not scored). Called once per pair, before it is queued: the queue holds the
    /// inputs and batches them by their token counts.
    fn encode(&self, pairs: &[Pair]) -> Vec<Result<PairInput>>;

    /// `logit(left, right)` of every encoded pair, in order (> 0: left is better). Called by the
    /// batching worker with one batch at a time; results must not depend on the batch's
    /// composition.
    fn logits(&self, inputs: &[&PairInput]) -> Vec<Result<f32>>;

    /// The model and its limits, as `/info` shows them.
    fn info(&self) -> ModelInfo;
}

/// The model as `/info` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModelInfo {
    /// The model's name: a hub id, or the name of a local directory (never its path; `pairrm
    /// serve --served-model-name` sets any name).
    pub model_id: String,
    /// The hub commit of the model's files (`null` for a directory outside the Hugging Face
    /// cache).
    pub model_sha: Option<String>,
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
    /// The linear layers' products (e.g. `f32-avx512`, `f32-gemm`, `bf16-avx512-bf16`).
    pub linear: String,
    /// The attention's products.
    pub attention: String,
    /// The instruction-set level they were chosen at (`scalar`, `avx2`, `avx512`).
    pub level: String,
}

impl Backend for Engine {
    fn encode(&self, pairs: &[Pair]) -> Vec<Result<PairInput>> {
        self.encode_pairs(pairs)
    }

    fn logits(&self, inputs: &[&PairInput]) -> Vec<Result<f32>> {
        self.logits_encoded(inputs, &CallOptions::default())
    }

    fn info(&self) -> ModelInfo {
        let config = self.config();
        ModelInfo {
            model_id: public_name(self.model_id()),
            model_sha: self.model_sha().map(str::to_string),
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

/// A shared backend is a backend (one engine behind several servers, or kept by the caller).
impl<B: Backend + ?Sized> Backend for Arc<B> {
    fn encode(&self, pairs: &[Pair]) -> Vec<Result<PairInput>> {
        (**self).encode(pairs)
    }

    fn logits(&self, inputs: &[&PairInput]) -> Vec<Result<f32>> {
        (**self).logits(inputs)
    }

    fn info(&self) -> ModelInfo {
        (**self).info()
    }
}

/// The name of a model as the world may see it: a local directory (which the engine prefers to a
/// hub id of the same spelling) by its final component only, so that `/info` never shows where
/// the server's files are; a hub id as it is.
fn public_name(model_id: &str) -> String {
    let path = Path::new(model_id);
    if path.is_dir() {
        if let Some(name) = path.canonicalize().ok().as_deref().and_then(Path::file_name) {
            return name.to_string_lossy().into_owned();
        }
    }
    model_id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_directories_are_named_by_their_last_component_only() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("my-pairrm");
        std::fs::create_dir(&model).unwrap();
        assert_eq!(public_name(model.to_str().unwrap()), "my-pairrm");
        assert_eq!(public_name(&format!("{}/", model.display())), "my-pairrm");
        assert_eq!(public_name(&format!("{}/.", model.display())), "my-pairrm");
        assert_eq!(public_name("llm-blender/PairRM"), "llm-blender/PairRM");
    }
}
