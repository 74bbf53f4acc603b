//! The subcommands.

pub mod bench;
pub mod compare;
pub mod encode;
pub mod rank;
