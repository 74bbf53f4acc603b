//! `pairrm eval`: agreement with human preferences on a benchmark file (RewardBench, Auto-J,
//! HHH-alignment, MT-bench human judgements, labelled pairs), per category, with bootstrap
//! intervals.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use pairrm::judge::CompareMode;
use pairrm_eval::{count_rows, EvalOptions, Evaluator, Format, RowOutcome, TieGrid};
use serde::Serialize;

use crate::args::{ModelArgs, ReportArgs, StatsArgs};
use crate::jsonl::Outcome;
use crate::progress::Progress;
use crate::report::{emit, plot, render, RowsWriter};

/// Arguments of `pairrm eval`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The dataset: JSON lines or a JSON array (a BIG-bench task.json for hhh). Repeat for several
    /// files (e.g. the four HHH subsets).
    #[arg(long, short = 'd', required = true, value_name = "FILE")]
    data: Vec<PathBuf>,
    // The help lists the registry's formats (`pairrm_eval::formats::FORMATS`).
    #[arg(long, short = 'f', value_parser = Format::from_str, help = format!("The dataset format: {}", Format::names()))]
    format: Format,
    /// `both` (default): logit(A,B) − logit(B,A), the two orders; `ab` or `ba`: one pass.
    #[arg(long, default_value = "both")]
    mode: CompareMode,
    /// The model predicts a tie when |logit| ≤ this (0: only an exact 0).
    #[arg(long, default_value_t = 0.0)]
    tie_threshold: f64,
    /// Largest tie threshold tried by the search (benchmarks with tie labels; Auto-J: 2.0).
    #[arg(long, default_value_t = TieGrid::default().max)]
    tie_search_max: f64,
    /// Spacing of the tie thresholds tried (Auto-J: 0.01).
    #[arg(long, default_value_t = TieGrid::default().step)]
    tie_search_step: f64,
    /// Compare single-turn pairs as one-turn conversations, as RewardBench's PairRM pipeline does.
    #[arg(long)]
    conversation: bool,
    #[command(flatten)]
    stats: StatsArgs,
    #[command(flatten)]
    report: ReportArgs,
}

/// A line of `--rows`.
#[derive(Serialize)]
#[serde(untagged)]
enum RowLine<'r> {
    Scored {
        #[serde(flatten)]
        location: &'r pairrm_eval::Location,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'r str>,
        keys: BTreeMap<&'static str, &'r str>,
        label: pairrm_eval::Label,
        logit: f32,
        #[serde(skip_serializing_if = "Option::is_none")]
        logit_ab: Option<f32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        logit_ba: Option<f32>,
    },
    Bad(&'r pairrm_eval::BadRow),
}

/// Runs `pairrm eval`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let inputs: Vec<_> = args.data.iter().map(|p| ("--data", p.as_path())).collect();
    args.report.check_paths(&inputs)?;
    let options = EvalOptions {
        mode: args.mode,
        tie_threshold: args.tie_threshold,
        tie_grid: TieGrid { max: args.tie_search_max, step: args.tie_search_step },
        bootstrap: args.stats.bootstrap(),
        conversation: args.conversation,
    };
    options.validate()?;
    let mut total = 0;
    for path in &args.data {
        total += count_rows(args.format, path).with_context(|| format!("reading {}", path.display()))?;
    }
    let engine = args.model.load(!args.report.no_progress)?;
    let progress = Progress::new(Some(total as usize * args.mode.passes()), args.report.no_progress);
    let scorer = engine.scorer(progress.call_options());
    let mut rows = RowsWriter::create(args.report.rows.as_deref())?;
    let dimensions = args.format.dimensions();
    let mut evaluator = Evaluator::new(&scorer, args.format, options)?.on_row(|row| {
        let line = match &row {
            RowOutcome::Scored { location, item, scored } => RowLine::Scored {
                location,
                id: item.id.as_deref(),
                keys: dimensions.iter().copied().zip(item.keys.iter().map(String::as_str)).collect(),
                label: item.label,
                logit: scored.logit,
                logit_ab: scored.ab,
                logit_ba: scored.ba,
            },
            RowOutcome::Bad(bad) => RowLine::Bad(bad),
        };
        rows.write(&line);
    });
    for path in &args.data {
        evaluator.add_file(path).with_context(|| format!("reading {}", path.display()))?;
    }
    let mut report = evaluator.finish();
    progress.finish();
    rows.finish()?;
    report.model = Some(engine.model_id().to_string());
    let title = format!("{} — {}", report.title, engine.model_id());
    emit(&args.report, &report, &render::eval_text(&report), || plot::svg(&title, &report.summary, None))?;
    if !report.bad_rows.is_empty() {
        tracing::warn!(bad = report.bad_rows.len(), "some rows were not evaluated");
    }
    Ok(Outcome { failed: report.bad_rows.len() })
}
