//! `pairrm man [COMMAND]`: the manual page (roff) of `pairrm` or of one of its commands, on
//! stdout (`pairrm man | man -l -`); `--dir` writes every page into a directory instead.

use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;
use clap_mangen::Man;

use crate::jsonl::Outcome;
use crate::outfile::OutputFile;
use crate::stdout;

/// Arguments of `pairrm man`.
#[derive(clap::Args)]
pub struct Args {
    /// The command whose page to print (e.g. `rank` for pairrm-rank(1)); default: pairrm(1),
    /// which lists the commands.
    command: Option<String>,
    /// Write every page (`pairrm.1`, `pairrm-compare.1`, ...) into this directory instead.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    dir: Option<PathBuf>,
}

/// The `pairrm` command with its subcommands' page names (`pairrm-rank`) set.
fn built() -> clap::Command {
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The page of `cmd`; its footer names `pairrm` and its version, also on the commands' pages.
fn render(cmd: clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut page = Vec::new();
    Man::new(cmd)
        .source(format!("pairrm {}", env!("CARGO_PKG_VERSION")))
        .render(&mut page)
        .context("rendering the manual page")?;
    Ok(page)
}

/// Runs `pairrm man`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cmd = built();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut pages = vec![cmd.clone()];
        pages.extend(cmd.get_subcommands().cloned());
        for page in pages {
            let path = dir.join(Man::new(page.clone()).get_filename());
            let mut file = OutputFile::create(&path)?;
            std::io::Write::write_all(&mut file, &render(page)?)
                .with_context(|| format!("writing {}", path.display()))?;
            file.commit()?;
        }
        return Ok(Outcome { failed: 0 });
    }
    let page = match &args.command {
        None => cmd,
        Some(name) => cmd.find_subcommand(name).cloned().with_context(|| {
            let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
            format!("no command {name:?}; the commands are {}", names.join(", "))
        })?,
    };
    stdout::print(&render(page)?).context("writing the manual page")?;
    Ok(Outcome { failed: 0 })
}
