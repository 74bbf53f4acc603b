//! Logs on stderr through `tracing`. The filter is `--log` (or `PAIRRM_LOG`), else `RUST_LOG`,
//! else the command's default; a filter that does not parse is an error naming where it came
//! from, not a silent fallback. Colours only when stderr is a terminal and `NO_COLOR` is unset.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Where the filter came from (for the error message).
pub enum Source {
    /// `--log`.
    Flag,
    /// `PAIRRM_LOG` (clap's `env` for `--log`).
    PairrmLog,
}

/// Installs the stderr logger: `given` (from `source`) wins over `RUST_LOG`, which wins over
/// `default`.
pub fn init(given: Option<(&str, Source)>, default: &str) -> anyhow::Result<()> {
    let rust_log = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let (filter, source) = match (given, &rust_log) {
        (Some((filter, Source::Flag)), _) => (filter, "--log"),
        (Some((filter, Source::PairrmLog)), _) => (filter, "PAIRRM_LOG"),
        (None, Some(filter)) => (filter.as_str(), "RUST_LOG"),
        (None, None) => (default, "the default"),
    };
    let filter = EnvFilter::builder().parse(filter).map_err(|e| {
        anyhow::anyhow!("invalid log filter {filter:?} (from {source}): {e}; e.g. `info`, `pairrm=debug`")
    })?;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(colour).with_env_filter(filter).init();
    Ok(())
}
