//! `pairrm label`: preference pairs (chosen/rejected) for DPO and RLHF from a dataset of
//! candidate answers; resumable after any kill, splittable into shards (`--shard I/N`, then
//! `pairrm label merge`). The work is done by the `pairrm-label` crate.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use indicatif::ProgressBar;
use pairrm_label::input::InputFormat;
use pairrm_label::{Columns, JobSettings, OutputFormat, Shard, Strategy, Style, StyleChoice, DEFAULT_CHUNK_ROWS};

use crate::args::ModelArgs;
use crate::jsonl::Outcome;
use crate::progress::stderr_bar;
use crate::same_file::{self, Named};

/// Arguments of `pairrm label`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    // Two flattened groups, not one nesting the other: clap tells whether an optional group was
    // given only from its own arguments.
    #[command(flatten)]
    model: Option<ModelArgs>,
    #[command(flatten)]
    job: Option<JobArgs>,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Merge the outputs of `--shard 0/N` ... `--shard N-1/N` (given in that order) into the
    /// file one process would have written; their error side files are merged too.
    Merge(MergeArgs),
}

#[derive(clap::Args)]
struct MergeArgs {
    /// The merged output (format from its extension unless --output-format says).
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// Output format: jsonl or parquet.
    #[arg(long, value_parser = parse_output_format)]
    output_format: Option<OutputFormat>,
    /// The shard outputs, in shard order.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
}

/// The labelling job's arguments.
#[derive(clap::Args)]
struct JobArgs {
    /// Rows of candidates: JSON lines, JSON, Parquet, Arrow, or a folder of Parquet/Arrow files
    /// (`datasets.save_to_disk`, a hub split).
    #[arg(long, short = 'i')]
    input: PathBuf,
    /// Input format (jsonl, json, parquet, arrow); by default from the extension.
    #[arg(long, value_parser = parse_input_format)]
    input_format: Option<InputFormat>,
    /// The preference records (`.jsonl` or `.parquet`). Error records go to OUTPUT.errors.jsonl;
    /// work in progress is kept in OUTPUT.label-work/ until the end.
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// Output format (jsonl, parquet); by default from the output's extension.
    #[arg(long, value_parser = parse_output_format)]
    output_format: Option<OutputFormat>,
    /// best-worst: best and worst by a tournament (~3n passes); all-pairs: every pair above
    /// --min-margin by the full matrix; full: best and worst by the full matrix (n·(n−1) passes).
    #[arg(long, default_value = "best-worst", value_parser = parse_strategy)]
    strategy: Strategy,
    /// Keep a pair only if score_chosen − score_rejected is above this.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    min_margin: f32,
    /// Record format: standard (texts), conversational ([{role, content}] lists), or auto
    /// (conversational when the input has chat rows).
    #[arg(long, value_enum, default_value = "auto")]
    style: StyleArg,
    /// Label only shard I of N (contiguous row ranges); merge the N outputs with `pairrm label merge`.
    #[arg(long, value_parser = parse_shard, value_name = "I/N")]
    shard: Option<Shard>,
    /// Rows per chunk: scored together, and the most work an interruption loses.
    #[arg(long, default_value_t = DEFAULT_CHUNK_ROWS)]
    chunk_rows: usize,
    /// Column holding the prompt (default `prompt`, else `instruction`).
    #[arg(long, default_value = "prompt")]
    prompt_column: String,
    /// Column holding the chat history ([{role, content}]).
    #[arg(long, default_value = "messages")]
    messages_column: String,
    /// Column holding the candidates (default `candidates`, else `completions`).
    #[arg(long, default_value = "candidates")]
    candidates_column: String,
    /// Column holding the row id (carried to the output).
    #[arg(long, default_value = "id")]
    id_column: String,
    /// Never show a progress bar (of the work or of model downloads).
    #[arg(long)]
    no_progress: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum StyleArg {
    Auto,
    Standard,
    Conversational,
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse().map_err(|e: pairrm_label::LabelError| e.to_string())
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    s.parse().map_err(|e: pairrm_label::LabelError| e.to_string())
}

fn parse_input_format(s: &str) -> Result<InputFormat, String> {
    s.parse().map_err(|e: pairrm_label::LabelError| e.to_string())
}

fn parse_output_format(s: &str) -> Result<OutputFormat, String> {
    s.parse().map_err(|e: pairrm_label::LabelError| e.to_string())
}

/// The progress bar: rows done out of the job's rows, passes per second in the message.
struct Bar {
    bar: ProgressBar,
    passes: Mutex<(u64, Instant)>,
}

impl pairrm_label::Progress for Bar {
    fn start(&self, rows: u64, done: u64) {
        self.bar.set_length(rows);
        self.bar.set_position(done);
        self.bar.reset_eta();
        if done > 0 {
            self.bar.println(format!("resuming: {done} of {rows} rows already labelled"));
        }
    }

    fn chunk(&self, rows: u64, passes: u64) {
        let mut p = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        p.0 += passes;
        let rate = p.0 as f64 / p.1.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!("{rate:.1} passes/s"));
        self.bar.inc(rows);
    }

    fn assembling(&self) {
        self.bar.set_message("writing the output");
    }
}

/// Runs `pairrm label` (or `pairrm label merge`).
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if let Some(Sub::Merge(m)) = args.command {
        let shards: Vec<Named> = m.shards.iter().map(|p| ("shard", p.as_path())).collect();
        same_file::check(&shards, false, &[("--output", m.output.as_path())], false)?;
        let records = pairrm_label::merge(&m.shards, &m.output, m.output_format)
            .with_context(|| format!("merging into {}", m.output.display()))?;
        eprintln!("merged {} shards: {records} records in {}", m.shards.len(), m.output.display());
        return Ok(Outcome { failed: 0 });
    }
    let (Some(model), Some(a)) = (args.model, args.job) else {
        anyhow::bail!("missing arguments: see `pairrm label --help`");
    };
    same_file::check(&[("--input", a.input.as_path())], false, &[("--output", a.output.as_path())], false)?;
    let engine = model.load(!a.no_progress)?;
    let settings = JobSettings {
        input: a.input.clone(),
        input_format: a.input_format,
        output: a.output.clone(),
        output_format: a.output_format,
        strategy: a.strategy,
        min_margin: a.min_margin,
        style: match a.style {
            StyleArg::Auto => StyleChoice::Auto,
            StyleArg::Standard => StyleChoice::Fixed(Style::Standard),
            StyleArg::Conversational => StyleChoice::Fixed(Style::Conversational),
        },
        columns: Columns {
            prompt: a.prompt_column,
            messages: a.messages_column,
            candidates: a.candidates_column,
            id: a.id_column,
        },
        shard: a.shard.unwrap_or_default(),
        chunk_rows: a.chunk_rows,
        model: pairrm_label::model_identity(&engine),
    };
    let bar = Bar { bar: stderr_bar(None, a.no_progress, "rows"), passes: Mutex::new((0, Instant::now())) };
    let scorer = engine.scorer(Default::default());
    let summary = pairrm_label::run(&scorer, &settings, &bar)
        .with_context(|| format!("labelling {} into {}", a.input.display(), a.output.display()))?;
    bar.bar.finish_and_clear();
    let s = summary.stats;
    let secs = summary.elapsed.as_secs_f64();
    let errors = match &summary.errors_file {
        Some(path) => format!(", {} errors (in {})", s.errors, path.display()),
        None => ", 0 errors".to_string(),
    };
    eprintln!(
        "labelled {} rows into {}: {} pairs written, {} rows skipped{errors}; {} passes; {secs:.1} s{}",
        s.rows,
        a.output.display(),
        s.pairs,
        s.skipped,
        s.passes,
        if summary.resumed_rows > 0 {
            format!(" ({} rows from an earlier run)", summary.resumed_rows)
        } else {
            String::new()
        },
    );
    Ok(Outcome { failed: s.errors as usize })
}
