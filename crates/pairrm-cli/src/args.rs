//! Arguments shared by the commands: which model, and where lines come from and go.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use pairrm::checkpoint::{Checkpoint, OpenOptions};
use pairrm::model::WeightDtype;
use pairrm::Precision;
use pairrm::{Engine, EngineOptions};
use pairrm_hub::EnvSource;

use crate::download_bar::DownloadBars;
use crate::same_file::{self, Named};

/// Which model to load and how to run it.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A local checkpoint directory (either layout) or a hub id such as `llm-blender/PairRM`
    /// (read from the Hugging Face cache; what it lacks is downloaded unless HF_HUB_OFFLINE=1).
    #[arg(long, short = 'm', env = "PAIRRM_MODEL")]
    pub model: String,
    /// Hub revision (branch, tag or commit) when `--model` is a hub id.
    #[arg(long, env = "PAIRRM_REVISION")]
    pub revision: Option<String>,
    /// Override the checkpoint's source token limit.
    #[arg(long, env = "PAIRRM_SOURCE_MAX_LENGTH")]
    pub source_max_length: Option<usize>,
    /// Override the checkpoint's candidate token limit.
    #[arg(long, env = "PAIRRM_CANDIDATE_MAX_LENGTH")]
    pub candidate_max_length: Option<usize>,
    /// Worker threads (0: one per core; at most 8 per available core).
    #[arg(long, default_value_t = 0, env = "PAIRRM_THREADS", value_parser = parse_threads)]
    pub threads: usize,
    /// Most tokens in one forward batch (at least 1).
    #[arg(long, default_value_t = EngineOptions::default().max_batch_tokens, env = "PAIRRM_MAX_BATCH_TOKENS",
          value_parser = parse_count)]
    pub max_batch_tokens: usize,
    /// Weight storage: `f32` (exact), `f16` (about 0.6× the memory of f32, logits within 1e-2)
    /// or `bf16` (same memory, less precise). Arithmetic stays f32.
    #[arg(long, default_value = "f32", env = "PAIRRM_DTYPE")]
    pub dtype: WeightDtype,
    /// Arithmetic of the linear layers: `f32` (exact: the reference's numbers), `bf16` (faster,
    /// within a measured bound; see docs/precision.md) or `int8`.
    #[arg(long, default_value = "f32", env = "PAIRRM_PRECISION")]
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
            max_batch_tokens: self.max_batch_tokens,
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

/// Most threads per available core: more only slows the engine down (and 100 000 threads take
/// minutes to start).
const THREADS_PER_CORE: usize = 8;

/// `--threads`: 0 (one per core) up to [`THREADS_PER_CORE`] per available core.
pub fn parse_threads(value: &str) -> Result<usize, String> {
    let threads: usize = value.trim().parse().map_err(|_| format!("{value:?} is not a whole number"))?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let max = THREADS_PER_CORE * cores;
    if threads > max {
        return Err(format!(
            "at most {max} threads ({THREADS_PER_CORE} per available core, {cores} cores here); 0 uses one per core"
        ));
    }
    Ok(threads)
}

/// A count or size that must allow something: a whole number of at least 1.
pub fn parse_count(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{value:?} is not a whole number")),
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

impl IoArgs {
    /// Refuses an `--output` that is the input (`--input`, or the file stdin reads), and a stdout
    /// redirected into `--input` ([`crate::same_file`]).
    pub fn check_paths(&self) -> anyhow::Result<()> {
        let inputs: Vec<Named> = self.input.iter().map(|p| ("--input", p.as_path())).collect();
        let outputs: Vec<Named> = self.output.iter().map(|p| ("--output", p.as_path())).collect();
        same_file::check(&inputs, self.input.is_none(), &outputs, self.output.is_none())
    }
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
    pub fn bootstrap(&self) -> pairrm_eval::Bootstrap {
        pairrm_eval::Bootstrap { resamples: self.bootstrap, seed: self.seed, confidence: self.confidence }
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

impl ReportArgs {
    /// Refuses a `--rows` or `--plot` that is one of the command's `inputs`, or that both name
    /// one file, and a stdout redirected into an input ([`crate::same_file`]).
    pub fn check_paths(&self, inputs: &[Named]) -> anyhow::Result<()> {
        let mut outputs: Vec<Named> = self.rows.iter().map(|p| ("--rows", p.as_path())).collect();
        outputs.extend(self.plot.iter().map(|p| ("--plot", p.as_path())));
        same_file::check(inputs, false, &outputs, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_and_counts_are_bounded_with_clear_messages() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(parse_threads("0"), Ok(0));
        assert_eq!(parse_threads(&(8 * cores).to_string()), Ok(8 * cores));
        let error = parse_threads("100000").unwrap_err();
        assert!(error.contains(&format!("at most {} threads", 8 * cores)), "{error}");
        assert!(parse_threads("-1").unwrap_err().contains("not a whole number"));
        assert_eq!(parse_count("2048"), Ok(2048));
        assert_eq!(parse_count("0"), Err("must be at least 1".to_string()));
        assert!(parse_count("1e3").unwrap_err().contains("not a whole number"));
    }
}
