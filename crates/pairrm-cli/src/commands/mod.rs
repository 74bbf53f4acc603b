//! The subcommands.

pub mod compare;
pub mod download;
pub mod encode;
pub mod models;
pub mod rank;
