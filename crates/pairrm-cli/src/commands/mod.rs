//! The subcommands.

pub mod compare;
pub mod encode;
pub mod eval;
pub mod rank;
pub mod winrate;
