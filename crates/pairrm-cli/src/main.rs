//! `pairrm`: exact, fast PairRM from the command line.
//!
//! The line commands (`encode`, `compare`, `rank`, `best-of-n`) read JSON lines (stdin or
//! `--input`) and write one JSON line per input line (stdout or `--output`), in order; the report
//! commands (`eval`, `winrate`, `bench`) read files and print a report; `download` and `models`
//! manage the model cache; `serve` serves HTTP; `completions` and `man` describe the CLI to
//! shells and to man(1). Logs and progress go to stderr. The conventions every command follows
//! (closed pipes, output files, logs) are in docs/cli.md.

mod args;
mod commands;
mod download_bar;
mod jsonl;
mod logging;
mod openai;
mod outfile;
mod progress;
mod report;
mod same_file;
mod stdout;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Exact, fast PairRM (LLM-Blender's pairwise reward model) inference.
#[derive(Parser)]
#[command(name = "pairrm", version, about, long_about = None)]
struct Cli {
    /// Log filter for stderr (e.g. `info`, `debug`, `pairrm=trace`); wins over `RUST_LOG`, which
    /// is used when neither this nor `PAIRRM_LOG` is set. Default: `info` for `serve`, `warn` for
    /// the other commands.
    #[arg(long, global = true, env = "PAIRRM_LOG")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the exact model input ids of each pair (A left, B right).
    Encode(commands::encode::Args),
    /// Compare two candidates (or two conversations) per line: logit > 0 means A is better.
    Compare(commands::compare::Args),
    /// Rank the candidates of each line (full matrix, against a reference, or bubble best-of-n).
    Rank(commands::rank::Args),
    /// Measure throughput, FLOP rate, memory and load time on standard workloads.
    Bench(commands::bench::Args),
    /// Sample n answers per prompt from an OpenAI-compatible server and keep the best.
    BestOfN(Box<commands::best_of_n::Args>),
    /// Download what a hub model needs into the Hugging Face cache (prints one JSON line per repo).
    Download(commands::download::Args),
    /// List the models in the Hugging Face cache (revisions, sizes, files).
    Models(commands::models::Args),
    /// Serve the model over HTTP (compare, rank, rerank) with dynamic batching, until SIGTERM.
    Serve(commands::serve::Args),
    /// Agreement with human preferences on a benchmark (RewardBench, Auto-J, HHH, MT-bench, labelled pairs).
    Eval(commands::eval::Args),
    /// Preference pairs (chosen/rejected) for DPO/RLHF from a dataset of candidates; resumable, shardable.
    Label(commands::label::Args),
    /// Win rate of a model's outputs against a baseline's, matched by instruction (AlpacaEval-style).
    Winrate(commands::winrate::Args),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(commands::completions::Args),
    /// Print the manual page (roff) of pairrm or of one command; `--dir` writes them all.
    Man(commands::man::Args),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let default_log = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    let log_source = match matches.value_source("log") {
        Some(ValueSource::EnvVariable) => logging::Source::PairrmLog,
        _ => logging::Source::Flag,
    };
    if let Err(e) = logging::init(cli.log.as_deref().map(|l| (l, log_source)), default_log) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    if results_on_stdout(&matches) {
        stdout::exit_when_closed();
    }
    let result = match cli.command {
        Command::Encode(a) => commands::encode::run(a),
        Command::Compare(a) => commands::compare::run(a),
        Command::Rank(a) => commands::rank::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::BestOfN(a) => commands::best_of_n::run(*a),
        Command::Download(a) => commands::download::run(a),
        Command::Models(a) => commands::models::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Label(a) => commands::label::run(a),
        Command::Winrate(a) => commands::winrate::run(a),
        Command::Completions(a) => commands::completions::run(a),
        Command::Man(a) => commands::man::run(a),
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        // The reader of stdout has what it wanted (`| head -1`): a normal end, as in ripgrep.
        Err(_) if stdout::closed() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether the command's results go to stdout: every command but `serve`, unless `--output`
/// sends them to a file.
fn results_on_stdout(matches: &ArgMatches) -> bool {
    match matches.subcommand() {
        Some(("serve", _)) | None => false,
        Some((_, sub)) => !matches!(sub.try_get_one::<PathBuf>("output"), Ok(Some(_))),
    }
}
