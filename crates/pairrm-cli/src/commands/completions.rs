//! `pairrm completions SHELL`: the shell completion script, on stdout.

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::jsonl::Outcome;
use crate::stdout;

/// Arguments of `pairrm completions`.
#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Runs `pairrm completions`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    // Rendered to memory first: clap_complete panics on a failed write, and a closed pipe must
    // end quietly.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut crate::Cli::command(), "pairrm", &mut script);
    stdout::print(&script).context("writing the completion script")?;
    Ok(Outcome { failed: 0 })
}
