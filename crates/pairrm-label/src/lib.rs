//! Preference data for DPO and RLHF, labelled with PairRM at dataset scale.
//!
//! Rows of candidate answers ([`row`]: `{prompt, candidates}`, `{messages, candidates}` or
//! UltraFeedback's `{instruction, completions}`, read from JSON lines, JSON, Parquet or Arrow
//! files by [`input`]) are scored with the core's judge functions and turned into chosen/rejected
//! pairs ([`strategy`]), written as TRL preference records ([`record`]) to JSON lines or Parquet
//! ([`output`]) by a job that survives being killed and can be split over machines ([`job`]).
//! [`chunk::label_chunk`] is the single implementation behind the `pairrm label` command and the
//! Python binding.

pub mod chunk;
pub mod error;
pub mod input;
pub mod job;
pub mod output;
pub mod record;
pub mod row;
pub mod strategy;

pub use chunk::{label_chunk, ChunkOutput, ChunkStats, LabelOptions};
pub use error::{LabelError, Result};
pub use job::{
    model_identity, run, JobSettings, NoProgress, Progress, Shard, StyleChoice, Summary, DEFAULT_CHUNK_ROWS,
};
pub use output::{merge, OutputFormat};
pub use record::Style;
pub use row::{Columns, IdKind};
pub use strategy::Strategy;
