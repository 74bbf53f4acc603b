//! Arguments shared by the commands: which model, and where lines come from and go.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use pairrm::checkpoint::{Checkpoint, EnvSource, OpenOptions};
use pairrm::model::WeightDtype;
use pairrm::Precision;
use pairrm::{Engine, EngineOptions};

use crate::download_bar::DownloadBars;

/// Which model to load and how to run it.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A local checkpoint directory (either layout) or a hub id such as `llm-blender/PairRM`
    /// (read from the Hugging Face cache; what it lacks is downloaded unless HF_HUB_OFFLINE=1).
    #[arg(long, short = 'm', env = "PAIRRM_MODEL")]
    pub model: String,
    /// Hub revision (branch, tag or commit) when `--model` is a hub id.
    #[arg(long)]
    pub revision: Option<String>,
    /// Override the checkpoint's source token limit.
    #[arg(long)]
    pub source_max_length: Option<usize>,
    /// Override the checkpoint's candidate token limit.
    #[arg(long)]
    pub candidate_max_length: Option<usize>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Most tokens in one forward batch.
    #[arg(long, default_value_t = EngineOptions::default().max_batch_tokens)]
    pub max_batch_tokens: usize,
    /// Weight storage: `f32` (exact), `f16` (about 0.6× the memory of f32, logits within 1e-2)
    /// or `bf16` (same memory, less precise). Arithmetic stays f32.
    #[arg(long, default_value = "f32")]
    pub dtype: WeightDtype,
    /// Arithmetic of the linear layers: `f32` (exact: the reference's numbers), `bf16` (faster,
    /// within a measured bound; see docs/precision.md) or `int8`.
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
}

impl ModelArgs {
    /// Loads the engine, downloading what a hub model lacks (with progress bars on stderr if
    /// `progress`), with the file or setting at fault named on error.
    pub fn load(&self, progress: bool) -> anyhow::Result<Engine> {
        let start = Instant::now();
        let open = OpenOptions {
            revision: self.revision.clone(),
            source_max_length: self.source_max_length,
            candidate_max_length: self.candidate_max_length,
        };
        let options = EngineOptions {
            threads: self.threads,
            max_batch_tokens: self.max_batch_tokens.max(1),
            dtype: self.dtype,
            precision: self.precision,
            kernel_level: None,
        };
        let source = if progress { EnvSource::new().with_progress(Arc::new(DownloadBars)) } else { EnvSource::new() };
        let context = || format!("loading model {}", self.model);
        let checkpoint = Checkpoint::open_with(&self.model, &open, &source).with_context(context)?;
        let engine = Engine::from_checkpoint(checkpoint, options).with_context(context)?;
        tracing::info!(
            model = %self.model,
            threads = engine.threads(),
            precision = %engine.precision(),
            kernels = %engine.kernels(),
            elapsed = ?start.elapsed(),
            "model loaded"
        );
        Ok(engine)
    }
}

/// Where the JSON lines come from and go.
#[derive(clap::Args, Debug, Clone)]
pub struct IoArgs {
    /// Read JSON lines from this file instead of stdin.
    #[arg(long, short = 'i')]
    pub input: Option<PathBuf>,
    /// Write JSON lines to this file instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Never show a progress bar (of the work or of model downloads).
    #[arg(long)]
    pub no_progress: bool,
}

/// Bootstrap settings of `eval` and `winrate`.
#[derive(clap::Args, Debug, Clone)]
pub struct StatsArgs {
    /// Bootstrap resamples for the confidence intervals (0: no intervals).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap draws (the same seed gives the same intervals everywhere).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Coverage of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
}

impl StatsArgs {
    /// The library's bootstrap settings.
    pub fn bootstrap(&self) -> pairrm::eval::Bootstrap {
        pairrm::eval::Bootstrap { resamples: self.bootstrap, seed: self.seed, confidence: self.confidence }
    }
}

/// Where the reports of `eval` and `winrate` go.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also draw the per-category rates with their intervals as an SVG file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Also write one JSON line per input row (its logits and outcome, or its error) to this file.
    #[arg(long, value_name = "FILE")]
    pub rows: Option<PathBuf>,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}
