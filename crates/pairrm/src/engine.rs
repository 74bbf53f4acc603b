//! The engine: owns the model, tokenizes, forms batches under a token budget and runs them on its
//! own thread pool. Every result depends only on its own pair.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::checkpoint::{Checkpoint, Layout, OpenOptions};
use crate::config::PairRmConfig;
use crate::error::{finite, Error, Result};
use crate::input::{EncodedPart, InputBuilder, PairInput};
use crate::judge::{Pair, PairScorer};
use crate::model::{KernelLevel, Kernels, ModelOptions, PairRm, Precision, WeightDtype};
use crate::tokenizer::PairTokenizer;

/// Reports progress in forward passes: called with the number of passes just finished.
pub type ProgressFn = Arc<dyn Fn(usize) + Send + Sync>;

/// How the engine runs.
#[derive(Clone)]
pub struct EngineOptions {
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Most tokens in one batch (a longer single pair still runs, alone).
    pub max_batch_tokens: usize,
    /// How the exact tier stores its weight matrices (f32, or 16 bits for less memory).
    pub dtype: WeightDtype,
    /// The arithmetic tier: exact f32 (the default), or bf16 / int8 for speed.
    pub precision: Precision,
    /// The highest instruction-set level the kernels may use (`None`: the `PAIRRM_KERNELS`
    /// variable, else the CPU's best).
    pub kernel_level: Option<KernelLevel>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: 0,
            max_batch_tokens: 2048,
            dtype: WeightDtype::F32,
            precision: Precision::F32,
            kernel_level: None,
        }
    }
}

/// Per-call controls: progress reporting and cancellation.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// Called after each batch with the passes it finished.
    pub progress: Option<ProgressFn>,
    /// When set to true, the remaining batches are not run and their pairs fail with
    /// [`Error::Cancelled`].
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Work done by an engine since it was loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Forward passes run.
    pub passes: u64,
    /// Tokens of those passes.
    pub tokens: u64,
    /// Batches run.
    pub batches: u64,
    /// FLOPs of those passes as a straightforward implementation counts them
    /// ([`PairRm::nominal_flop`]).
    pub nominal_flop: f64,
    /// FLOPs this engine executed for them ([`PairRm::executed_flop`]).
    pub executed_flop: f64,
}

/// A loaded PairRM model ready to score pairs.
pub struct Engine {
    model: PairRm,
    tokenizer: PairTokenizer,
    config: PairRmConfig,
    pool: rayon::ThreadPool,
    options: EngineOptions,
    model_id: String,
    layout: Layout,
    model_sha: Option<String>,
    counters: Mutex<Counters>,
}

impl Engine {
    /// Opens `model` (a local directory, or a hub id found in the HF cache: see
    /// [`Checkpoint::open`]) and loads it.
    pub fn load(model: &str, open: &OpenOptions, options: EngineOptions) -> Result<Self> {
        let checkpoint = Checkpoint::open(model, open)?;
        Self::from_checkpoint(checkpoint, options)
    }

    /// Builds the engine from an opened checkpoint.
    pub fn from_checkpoint(checkpoint: Checkpoint, options: EngineOptions) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads)
            .thread_name(|i| format!("pairrm-{i}"))
            .build()
            .map_err(|e| Error::invalid_input("threads", e.to_string()))?;
        let model_options =
            ModelOptions { precision: options.precision, dtype: options.dtype, kernel_level: options.kernel_level };
        let model = pool.install(|| PairRm::load(&checkpoint, &model_options))?;
        // Without AVX512-BF16 the bf16 products widen to f32 on FMAs and run slower than the exact
        // tier (measured on AVX2: about 0.75× f32, see docs/precision.md).
        let linear = model.kernels().linear;
        if options.precision == crate::Precision::Bf16 && linear != "bf16-avx512-bf16" {
            tracing::warn!(
                kernel = linear,
                "precision bf16 without AVX512-BF16 is slower than f32 on this CPU; int8 is the faster tier here"
            );
        }
        let Checkpoint { tokenizer, pairrm, model_id, layout, dir, .. } = checkpoint;
        let model_sha = snapshot_commit(&dir);
        Ok(Engine {
            model,
            tokenizer,
            config: pairrm,
            pool,
            options,
            model_id,
            layout,
            model_sha,
            counters: Mutex::default(),
        })
    }

    /// The ranker settings in effect (limits after overrides, marker ids).
    pub fn config(&self) -> &PairRmConfig {
        &self.config
    }

    /// The model as it was named when loaded.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The hub commit of the model's files: the Hugging Face cache snapshot it was loaded from
    /// (`…/snapshots/<commit>/`); `None` for a directory outside the cache.
    pub fn model_sha(&self) -> Option<&str> {
        self.model_sha.as_deref()
    }

    /// The checkpoint layout it was loaded from.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The underlying network.
    pub fn model(&self) -> &PairRm {
        &self.model
    }

    /// How the weight matrices are stored.
    pub fn dtype(&self) -> WeightDtype {
        self.options.dtype
    }

    /// The arithmetic tier of the linear layers.
    pub fn precision(&self) -> Precision {
        self.model.precision()
    }

    /// The kernels the model runs.
    pub fn kernels(&self) -> Kernels {
        self.model.kernels()
    }

    /// Runs `op` on the engine's thread pool: rayon work inside it (a parallel iterator, a
    /// product) uses the engine's threads instead of rayon's global pool.
    pub fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        self.pool.install(op)
    }

    /// Threads of the engine's pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The work done so far (all calls, all threads).
    pub fn counters(&self) -> Counters {
        *self.counters.lock().expect("counters")
    }

    /// The input builder for this model.
    pub fn input_builder(&self) -> InputBuilder<'_> {
        InputBuilder::new(&self.tokenizer, &self.config)
    }

    /// The exact model input for `source` (instruction already prepended) with `a` left, `b` right.
    pub fn encode(&self, source: &str, a: &str, b: &str) -> Result<PairInput> {
        self.input_builder().build(source, a, b)
    }

    /// The hidden states of the three marker rows of the pair `(source, a, b)` after the
    /// embeddings and after every layer (see [`PairRm::layer_states`]), on the engine's pool.
    pub fn layer_states(&self, source: &str, a: &str, b: &str) -> Result<Vec<[Vec<f32>; 3]>> {
        let input = self.encode(source, a, b)?;
        self.pool.install(|| self.model.layer_states(&input))
    }

    /// Scores pairs with per-call progress and cancellation: [`Engine::encode_pairs`], then
    /// [`Engine::logits_encoded`] on the pairs that could be encoded.
    pub fn logits_with(&self, pairs: &[Pair], call: &CallOptions) -> Vec<Result<f32>> {
        let inputs = self.encode_pairs(pairs);
        let encoded: Vec<&PairInput> = inputs.iter().filter_map(|r| r.as_ref().ok()).collect();
        let mut logits = self.logits_encoded(&encoded, call).into_iter();
        inputs
            .into_iter()
            .map(|input| match input {
                Ok(_) => logits.next().expect("one logit per encoded pair"),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// The exact model input of every pair (tokenizing each distinct text once, in parallel), or
    /// the error that keeps it from being scored. For callers that queue or batch the inputs
    /// themselves (the server) and then run them with [`Engine::logits_encoded`].
    pub fn encode_pairs(&self, pairs: &[Pair]) -> Vec<Result<PairInput>> {
        self.pool
            .install(|| self.build_inputs(pairs))
            .into_iter()
            .map(|r| r.map_err(|e| Error::invalid_input("pair", e.to_string())))
            .collect()
    }

    /// Scores already encoded inputs (from [`Engine::encode_pairs`] or [`Engine::encode`]) with
    /// per-call progress and cancellation: batched longest first under `max_batch_tokens`, run
    /// on the engine's pool, counted in [`Engine::counters`]. Each logit is the one
    /// [`Engine::logits_with`] gives for the same pair, bit for bit, however the inputs are
    /// grouped into calls.
    pub fn logits_encoded(&self, inputs: &[&PairInput], call: &CallOptions) -> Vec<Result<f32>> {
        let indexed: Vec<(usize, &PairInput)> = inputs.iter().copied().enumerate().collect();
        let mut results: Vec<Option<Result<f32>>> = (0..inputs.len()).map(|_| None).collect();
        for batch in self.batches(&indexed) {
            if call.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                for &(i, _) in &batch {
                    results[i] = Some(Err(Error::Cancelled));
                }
                continue;
            }
            let refs: Vec<&PairInput> = batch.iter().map(|&(_, inp)| inp).collect();
            match self.pool.install(|| self.model.logits(&refs)) {
                Ok(logits) => {
                    let mut c = self.counters.lock().expect("counters");
                    c.batches += 1;
                    for inp in &refs {
                        c.passes += 1;
                        c.tokens += inp.ids.len() as u64;
                        c.nominal_flop += self.model.nominal_flop(inp.ids.len());
                        c.executed_flop += self.model.executed_flop(inp.ids.len());
                    }
                    drop(c);
                    for (&(i, _), l) in batch.iter().zip(logits) {
                        // NaN or infinite weights (or a broken config) show here: an error, not a
                        // judgement made on a meaningless number.
                        results[i] = Some(finite(l, || "the logit".into()));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for &(i, _) in &batch {
                        results[i] = Some(Err(Error::invalid_input("pair", msg.clone())));
                    }
                }
            }
            if let Some(p) = &call.progress {
                p(batch.len());
            }
        }
        results.into_iter().map(|r| r.expect("every pair has a result")).collect()
    }

    /// Tokenizes each distinct text once (in parallel) and assembles every pair's input.
    fn build_inputs(&self, pairs: &[Pair]) -> Vec<Result<PairInput>> {
        let builder = self.input_builder();
        let mut texts: Vec<&str> = pairs.iter().flat_map(|p| [&*p.source, &*p.left, &*p.right]).collect();
        texts.sort_unstable();
        texts.dedup();
        let encoded: HashMap<&str, Result<EncodedPart>> =
            texts.par_iter().map(|&t| (t, builder.encode_part(t))).collect();
        let get =
            |t: &str| -> Result<&EncodedPart> { encoded[t].as_ref().map_err(|e| Error::Tokenizer(e.to_string())) };
        pairs.iter().map(|p| Ok(builder.assemble(get(&p.source)?, get(&p.left)?, get(&p.right)?))).collect()
    }

    /// Groups inputs, longest first, into batches of at most `max_batch_tokens` tokens.
    fn batches<'p>(&self, inputs: &[(usize, &'p PairInput)]) -> Vec<Vec<(usize, &'p PairInput)>> {
        let mut order: Vec<(usize, &PairInput)> = inputs.to_vec();
        order.sort_by_key(|&(i, inp)| (std::cmp::Reverse(inp.ids.len()), i));
        let mut batches = vec![];
        let mut current: Vec<(usize, &PairInput)> = vec![];
        let mut tokens = 0;
        for item in order {
            let len = item.1.ids.len();
            if !current.is_empty() && tokens + len > self.options.max_batch_tokens {
                batches.push(std::mem::take(&mut current));
                tokens = 0;
            }
            tokens += len;
            current.push(item);
        }
        if !current.is_empty() {
            batches.push(current);
        }
        batches
    }
}

/// The commit of a Hugging Face cache snapshot directory (`…/snapshots/<commit>/…`), if `dir` is
/// one or lies in one.
fn snapshot_commit(dir: &Path) -> Option<String> {
    let parts: Vec<_> = dir.components().map(|c| c.as_os_str().to_string_lossy()).collect();
    parts
        .windows(2)
        .rev()
        .find(|w| w[0] == "snapshots" && crate::checkpoint::hub::is_commit_hash(&w[1]))
        .map(|w| w[1].to_lowercase())
}

impl PairScorer for Engine {
    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>> {
        self.logits_with(pairs, &CallOptions::default())
    }
}

/// An [`Engine`] with fixed [`CallOptions`], usable wherever a [`PairScorer`] is expected (the
/// judge functions): progress and cancellation then apply to every pass they run.
pub struct ScopedScorer<'a> {
    engine: &'a Engine,
    call: CallOptions,
}

impl Engine {
    /// This engine as a scorer that reports progress and honours cancellation as `call` says.
    pub fn scorer(&self, call: CallOptions) -> ScopedScorer<'_> {
        ScopedScorer { engine: self, call }
    }
}

impl PairScorer for ScopedScorer<'_> {
    fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>> {
        self.engine.logits_with(pairs, &self.call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_commit_is_read_from_cache_paths_only() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let hub = format!("/c/hub/models--llm-blender--PairRM/snapshots/{commit}");
        assert_eq!(snapshot_commit(Path::new(&hub)).as_deref(), Some(commit));
        assert_eq!(snapshot_commit(&Path::new(&hub).join("sub")).as_deref(), Some(commit));
        assert_eq!(snapshot_commit(Path::new("/models/pairrm")), None);
        assert_eq!(snapshot_commit(Path::new("/x/snapshots/main")), None);
    }
}
