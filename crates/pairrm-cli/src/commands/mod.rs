//! The subcommands.

pub mod compare;
pub mod encode;
pub mod rank;
pub mod serve;
