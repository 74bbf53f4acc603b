//! Labelling a chunk of rows: parse, score, pick pairs, make records. The one implementation
//! behind the CLI's job and the Python binding (so Ray and the CLI give identical records).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use pairrm::judge::{Pair, PairScorer};

use crate::input::RawRow;
use crate::record::{ErrorRecord, PreferenceRecord, Style};
use crate::row::{parse_row, row_id, Columns, IdKind, ModelView, Prompt};
use crate::strategy::{choose, Strategy};

/// What decides the records of a row (everything but the model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelOptions {
    /// How pairs are picked.
    pub strategy: Strategy,
    /// A pair is kept only if its margin is above this (strictly).
    pub min_margin: f32,
    /// Standard or conversational records.
    pub style: Style,
    /// Where rows are read from.
    pub columns: Columns,
    /// The type of the output's id column.
    pub id_kind: IdKind,
}

/// What labelling a chunk gave.
#[derive(Debug, Default)]
pub struct ChunkOutput {
    /// The preference records, in row order (a row's pairs in the strategy's order).
    pub records: Vec<PreferenceRecord>,
    /// The error records of bad rows, in row order.
    pub errors: Vec<ErrorRecord>,
    /// Counts.
    pub stats: ChunkStats,
}

/// Counts of a chunk (summed for the job's summary).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkStats {
    /// Rows read.
    pub rows: u64,
    /// Records written.
    pub pairs: u64,
    /// Rows that gave no pair (one distinct candidate, ties, margins not above the minimum).
    pub skipped: u64,
    /// Rows that failed (error records).
    pub errors: u64,
    /// Forward passes run.
    pub passes: u64,
}

impl ChunkStats {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &ChunkStats) {
        self.rows += other.rows;
        self.pairs += other.pairs;
        self.skipped += other.skipped;
        self.errors += other.errors;
        self.passes += other.passes;
    }
}

/// A scorer that counts the passes it runs.
struct Counting<'a, S: ?Sized> {
    inner: &'a S,
    passes: AtomicU64,
}

impl<S: PairScorer + ?Sized> PairScorer for Counting<'_, S> {
    fn logits(&self, pairs: &[Pair]) -> Vec<pairrm::Result<f32>> {
        self.passes.fetch_add(pairs.len() as u64, Ordering::Relaxed);
        self.inner.logits(pairs)
    }
}

/// Labels `rows` (numbered rows as read) with `scorer`: all of them go to the scorer together.
/// A row that cannot be read or scored gives an error record; the others are labelled.
pub fn label_chunk<S: PairScorer + ?Sized>(
    scorer: &S,
    rows: Vec<(u64, RawRow)>,
    options: &LabelOptions,
) -> ChunkOutput {
    let mut out = ChunkOutput::default();
    out.stats.rows = rows.len() as u64;
    struct Ready {
        row: u64,
        id: Option<crate::row::RowId>,
        prompt: Arc<Prompt>,
        candidates: Vec<String>,
    }
    let mut ready: Vec<Ready> = Vec::new();
    let mut views: Vec<ModelView> = Vec::new();
    // Rows in input order; a `None` slot is filled by an error record.
    for (row, raw) in rows {
        let id = raw.as_ref().ok().and_then(|v| row_id(v, &options.columns, options.id_kind));
        let parsed = raw.and_then(|value| parse_row(&value, &options.columns)).and_then(|parsed| {
            if options.style == Style::Standard && matches!(parsed.prompt, Prompt::Chat(_)) {
                return Err("chat rows (messages) need the conversational style".to_string());
            }
            let view = parsed.model_view()?;
            Ok((parsed, view))
        });
        match parsed {
            Ok((parsed, view)) => {
                views.push(view);
                ready.push(Ready { row, id, prompt: Arc::new(parsed.prompt), candidates: parsed.candidates });
            }
            Err(error) => out.errors.push(ErrorRecord { row, id, error }),
        }
    }
    let counting = Counting { inner: scorer, passes: AtomicU64::new(0) };
    let choices = choose(&counting, &views, options.strategy, options.min_margin);
    out.stats.passes = counting.passes.load(Ordering::Relaxed);
    for (r, choices) in ready.into_iter().zip(choices) {
        match choices {
            Err(error) => out.errors.push(ErrorRecord { row: r.row, id: r.id, error }),
            Ok(choices) if choices.is_empty() => out.stats.skipped += 1,
            Ok(choices) => {
                for c in choices {
                    out.records.push(PreferenceRecord {
                        prompt: r.prompt.clone(),
                        chosen: r.candidates[c.chosen].clone(),
                        rejected: r.candidates[c.rejected].clone(),
                        score_chosen: c.score_chosen,
                        score_rejected: c.score_rejected,
                        margin: c.margin(),
                        chosen_index: c.chosen,
                        rejected_index: c.rejected,
                        row: r.row,
                        id: r.id.clone(),
                    });
                }
            }
        }
    }
    out.errors.sort_by_key(|e| e.row);
    out.stats.pairs = out.records.len() as u64;
    out.stats.errors = out.errors.len() as u64;
    out
}
