//! The engine: owns the model, tokenizes, forms batches under a token budget and runs them on its
//! own thread pool. Every result depends only on its own pair.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::checkpoint::{Checkpoint, Layout, OpenOptions};
use crate::config::PairRmConfig;
use crate::error::{Error, Result};
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
    counters: Mutex<Counters>,
}

impl Engine {
    /// Opens `model` (a local directory, or a hub id from the HF cache, downloaded if missing: see
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
        let Checkpoint { tokenizer, pairrm, model_id, layout, .. } = checkpoint;
        Ok(Engine { model, tokenizer, config: pairrm, pool, options, model_id, layout, counters: Mutex::default() })
    }

    /// The ranker settings in effect (limits after overrides, marker ids).
    pub fn config(&self) -> &PairRmConfig {
        &self.config
    }

    /// The model as it was named when loaded.
    pub fn model_id(&self) -> &str {
        &self.model_id
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

    /// Scores pairs with per-call progress and cancellation.
    pub fn logits_with(&self, pairs: &[Pair], call: &CallOptions) -> Vec<Result<f32>> {
        let inputs = self.pool.install(|| self.build_inputs(pairs));
        let ok: Vec<(usize, &PairInput)> =
            inputs.iter().enumerate().filter_map(|(i, r)| r.as_ref().ok().map(|inp| (i, inp))).collect();
        let mut results: Vec<Option<Result<f32>>> =
            inputs.iter().map(|r| r.as_ref().err().map(|e| Err(Error::invalid_input("pair", e.to_string())))).collect();
        for batch in self.batches(&ok) {
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
                        results[i] = Some(Ok(l));
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
