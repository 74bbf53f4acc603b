//! `pairrm eval`: agreement with human preferences on a benchmark file (RewardBench, Auto-J,
//! HHH-alignment, MT-bench human judgements, labelled pairs), per category, with bootstrap
//! intervals; with `--against`, also how often two precisions agree on it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use pairrm::judge::{CompareMode, CompareRequest};
use pairrm::{Engine, Precision};
use pairrm_eval::{count_rows, AgreementReport, EvalOptions, EvalReport, Evaluator, Format, RowOutcome, TieGrid};
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
    /// Also score the data in this precision (e.g. `--precision bf16 --against f32`) and report
    /// how often the two agree: decisions, flips by the margin of `--against`'s logit, the logit
    /// error's percentiles, and the hidden states' error layer by layer on the first pairs.
    #[arg(long, value_name = "PRECISION")]
    against: Option<Precision>,
    /// With `--against`: the pairs whose hidden states are compared layer by layer.
    #[arg(long, default_value_t = 8, value_name = "N")]
    layer_pairs: usize,
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
    let layer_pairs = if args.against.is_some() { args.layer_pairs } else { 0 };
    let mut rows = RowsWriter::create(args.report.rows.as_deref())?;
    let run = evaluate(&engine, &args, options, total, layer_pairs, Some(&mut rows))?;
    rows.finish()?;
    let mut report = run.report;
    report.model = Some(engine.model_id().to_string());
    let agreement = match args.against {
        None => None,
        Some(against) => {
            let precision = engine.precision();
            let states = layer_states(&engine, &run.first)?;
            drop(engine);
            let model = crate::args::ModelArgs { precision: against, ..args.model.clone() };
            let reference = model.load(!args.report.no_progress)?;
            let other = evaluate(&reference, &args, options, total, 0, None)?;
            let against_states = layer_states(&reference, &run.first)?;
            let mut a =
                AgreementReport::new(precision.name(), against.name(), &run.logits, &other.logits, args.tie_threshold)
                    .with_layers(&states, &against_states);
            a.metric = headline(&report).zip(headline(&other.report)).map(|((name, x), (_, y))| (name, x, y));
            Some(a)
        }
    };
    let title = format!("{} — {}", report.title, report.model.as_deref().unwrap_or_default());
    let mut text = render::eval_text(&report);
    let svg = || plot::svg(&title, &report.summary, None);
    match &agreement {
        None => emit(&args.report, &report, &text, svg)?,
        Some(a) => {
            text.push_str(&render::agreement_text(a));
            emit(&args.report, &WithAgreement { report: &report, agreement: a }, &text, svg)?
        }
    }
    if !report.bad_rows.is_empty() {
        tracing::warn!(bad = report.bad_rows.len(), "some rows were not evaluated");
    }
    Ok(Outcome { failed: report.bad_rows.len() })
}

/// The report with `--against`: the evaluation and, beside it, the agreement.
#[derive(Serialize)]
struct WithAgreement<'a> {
    #[serde(flatten)]
    report: &'a EvalReport,
    agreement: &'a AgreementReport,
}

/// One evaluation of the data: its report, every row's logit in file order (`None` for a bad
/// row), and the first `keep` comparisons.
struct Run {
    report: EvalReport,
    logits: Vec<Option<f32>>,
    first: Vec<CompareRequest>,
}

fn evaluate(
    engine: &Engine,
    args: &Args,
    options: EvalOptions,
    total: u64,
    keep: usize,
    mut rows: Option<&mut RowsWriter>,
) -> anyhow::Result<Run> {
    let progress = Progress::new(Some(total as usize * args.mode.passes()), args.report.no_progress);
    let scorer = engine.scorer(progress.call_options());
    let dimensions = args.format.dimensions();
    let (mut logits, mut first) = (vec![], vec![]);
    let mut evaluator = Evaluator::new(&scorer, args.format, options)?.on_row(|row| {
        match &row {
            RowOutcome::Scored { item, scored, .. } => {
                logits.push(Some(scored.logit));
                if first.len() < keep {
                    first.push(item.request.clone());
                }
            }
            RowOutcome::Bad(_) => logits.push(None),
        }
        let Some(rows) = rows.as_deref_mut() else { return };
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
    let report = evaluator.finish();
    progress.finish();
    Ok(Run { report, logits, first })
}

/// The hidden states of the marker rows, layer by layer, of each comparison (as `logit(A, B)`
/// reads them).
fn layer_states(engine: &Engine, requests: &[CompareRequest]) -> anyhow::Result<Vec<Vec<[Vec<f32>; 3]>>> {
    requests
        .iter()
        .map(|r| {
            let source = format!("{}{}", r.instruction.as_deref().unwrap_or(""), r.source);
            engine.layer_states(&source, &r.a, &r.b).context("computing the hidden states")
        })
        .collect()
}

/// The headline metric's name and overall value.
fn headline(report: &EvalReport) -> Option<(String, f64)> {
    let metric = report.summary.metrics.first()?;
    Some((metric.title.clone(), report.summary.overall.values.get(&metric.key)?.value?))
}
