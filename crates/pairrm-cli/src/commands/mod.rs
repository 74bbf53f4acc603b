//! The subcommands.

pub mod bench;
pub mod best_of_n;
pub mod compare;
pub mod completions;
pub mod download;
pub mod encode;
pub mod eval;
pub mod label;
pub mod man;
pub mod models;
pub mod rank;
pub mod serve;
pub mod winrate;
