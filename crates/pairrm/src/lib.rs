//! Exact, fast inference for PairRM, the pairwise reward model of LLM-Blender.
//!
//! The data path: [`tokenizer`] → [`input`] (pair input, truncation, markers) → [`model`]
//! (DeBERTa-v2 encoder and PairRM head) → [`engine`] (batching, threads) → [`judge`]
//! (compare, rank, best-of-n, conversations). [`checkpoint`] finds and reads models.
//!
//! Neighbouring crates build on this one: `pairrm-hub` downloads hub models into the Hugging Face
//! cache (a [`checkpoint::SnapshotSource`]), `pairrm-eval` runs benchmarks over a
//! [`judge::PairScorer`]; see ARCHITECTURE.md.

pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod error;
pub mod input;
pub mod judge;
pub mod model;
pub mod tokenizer;

pub use engine::{CallOptions, Counters, Engine, EngineOptions, ScopedScorer};
pub use error::{Error, Result};
pub use model::Precision;
