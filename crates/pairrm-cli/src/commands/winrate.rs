//! `pairrm winrate`: how often a model's outputs beat a baseline's, matched by instruction
//! (AlpacaEval-style), with an interval, ties and output lengths.

use std::path::PathBuf;

use anyhow::Context;
use pairrm::judge::CompareMode;
use pairrm_eval::records::count_records;
use pairrm_eval::winrate::{winrate, PairOutcome};
use pairrm_eval::WinrateOptions;

use crate::args::{ModelArgs, ReportArgs, StatsArgs};
use crate::jsonl::Outcome;
use crate::progress::Progress;
use crate::report::{emit, plot, render, RowsWriter};

/// Arguments of `pairrm winrate`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The model's outputs: rows `{instruction, output, generator?, dataset?}` as JSON lines or a
    /// JSON array (AlpacaEval's model_outputs.json).
    #[arg(long, value_name = "FILE")]
    outputs: PathBuf,
    /// The baseline's outputs, in the same form, matched by instruction.
    #[arg(long, value_name = "FILE")]
    baseline: PathBuf,
    /// The model's name in the report (default: its `generator`, else the file name).
    #[arg(long)]
    name: Option<String>,
    /// The baseline's name in the report (default: its `generator`, else the file name).
    #[arg(long)]
    baseline_name: Option<String>,
    /// `both` (default): logit(A,B) − logit(B,A), the two orders; `ab` or `ba`: one pass.
    #[arg(long, default_value = "both")]
    mode: CompareMode,
    /// A tie when |logit| ≤ this (0: only an exact 0; identical outputs are always ties).
    #[arg(long, default_value_t = 0.0)]
    tie_threshold: f64,
    #[command(flatten)]
    stats: StatsArgs,
    #[command(flatten)]
    report: ReportArgs,
}

/// Runs `pairrm winrate`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    args.report.check_paths(&[("--outputs", &args.outputs), ("--baseline", &args.baseline)])?;
    let options =
        WinrateOptions { mode: args.mode, tie_threshold: args.tie_threshold, bootstrap: args.stats.bootstrap() };
    let total = count_records(&args.outputs).with_context(|| format!("reading {}", args.outputs.display()))?;
    let engine = args.model.load(!args.report.no_progress)?;
    let progress = Progress::new(Some(total as usize * args.mode.passes()), args.report.no_progress);
    let scorer = engine.scorer(progress.call_options());
    let mut rows = RowsWriter::create(args.report.rows.as_deref())?;
    let mut report = winrate(&scorer, &args.outputs, &args.baseline, options, |row| match row {
        PairOutcome::Compared(pair) => rows.write(pair),
        PairOutcome::Bad(bad) => rows.write(bad),
    })?;
    progress.finish();
    rows.finish()?;
    if let Some(name) = args.name {
        report.model = name;
    }
    if let Some(name) = args.baseline_name {
        report.baseline = name;
    }
    let title = format!("Win rate of {} against {} — {}", report.model, report.baseline, engine.model_id());
    emit(&args.report, &report, &render::winrate_text(&report), || plot::svg(&title, &report.summary, Some(0.5)))?;
    if !report.bad_rows.is_empty() {
        tracing::warn!(bad = report.bad_rows.len(), "some rows were not compared");
    }
    Ok(Outcome { failed: report.bad_rows.len() })
}
