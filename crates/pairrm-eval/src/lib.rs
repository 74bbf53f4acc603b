//! Evaluation: agreement with human preferences on the benchmarks PairRM is reported on
//! (RewardBench, Auto-J pairwise, HHH-alignment, MT-bench human judgements, or any labelled
//! pairs), and win rates of one model's outputs against a baseline's (AlpacaEval-style).
//!
//! - [`records`] streams the rows of a file (JSON lines or one JSON array) with their positions;
//!   [`formats`] turns each benchmark's rows into comparisons with labels and categories.
//! - Each chunk of comparisons is scored in one scorer call by [`pairrm::judge::compare_logits`]
//!   (exactly [`pairrm::judge::compare`], with each pass's raw logit kept), in any
//!   [`pairrm::judge::CompareMode`] (`both` by default).
//! - [`metrics`] scores each row as its benchmark does (ties included); [`stats`] holds the
//!   percentile bootstrap, the interval percentiles and the tie-threshold search; [`summary`] makes
//!   the per-category tables.
//! - [`evaluator`] runs an evaluation, streaming: only each row's outcome is kept, bad rows are
//!   recorded with their positions and never stop the run. [`winrate`] does the same for win rates.
//!
//! - [`agreement`] compares two precisions (`pairrm eval --precision bf16 --against f32`).
//!
//! The reports are data (serializable); the `pairrm` CLI prints them as tables or JSON and draws
//! them as SVG.
//!
//! Results depend only on the rows, the options and the seed: not on chunking, batching, thread
//! count or platform.

pub mod agreement;
pub mod evaluator;
pub mod formats;
pub mod metrics;
pub mod records;
pub mod stats;
pub mod summary;
pub mod winrate;

#[cfg(test)]
mod testing;

pub use agreement::AgreementReport;
pub use evaluator::{
    count_rows, BadRow, EvalOptions, EvalReport, Evaluator, LabelCounts, Location, PositionStats, RowOutcome,
};
pub use formats::{Format, Item};
pub use stats::{Bootstrap, Estimate, Label, TieGrid, TieSearch};
pub use summary::Summary;
pub use winrate::{WinrateOptions, WinrateReport};
