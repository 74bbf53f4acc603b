//! `pairrm`: exact, fast PairRM from the command line.
//!
//! The scoring commands read JSON lines (stdin or `--input`) and write one JSON line per input
//! line (stdout or `--output`), in order; `download` and `models` manage the model cache. Logs
//! and progress go to stderr.
//! The pair commands read JSON lines (stdin or `--input`) and write one JSON line per input line
//! (stdout or `--output`), in order; the report commands (`eval`, `winrate`) read files and print
//! a report. Logs and progress go to stderr.

mod args;
mod commands;
mod download_bar;
mod jsonl;
mod openai;
mod progress;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exact, fast PairRM (LLM-Blender's pairwise reward model) inference.
#[derive(Parser)]
#[command(name = "pairrm", version, about, long_about = None)]
struct Cli {
    /// Log filter for stderr (e.g. `info`, `debug`, `pairrm=trace`); `RUST_LOG` works too.
    /// Default: `info` for `serve`, `warn` for the other commands.
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_log = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    init_logging(cli.log.as_deref().unwrap_or(default_log));
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
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "warn".into()))
        .init();
}
