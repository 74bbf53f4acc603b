//! `pairrm compare`: one logit per pair (or pair of conversations); > 0 means A is better.

use pairrm::judge::{compare, compare_conversations, CompareInput, CompareMode, CompareResult};
use pairrm::Engine;
use serde_json::Value;

use crate::args::{IoArgs, ModelArgs};
use crate::jsonl::{self, LineJob, Outcome};
use crate::progress::Progress;

/// Arguments of `pairrm compare`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    io: IoArgs,
    /// `ab`: logit(A,B); `ba`: −logit(B,A); `both`: logit(A,B) − logit(B,A). In every mode
    /// logit > 0 means A is better.
    #[arg(long, default_value = "both")]
    mode: CompareMode,
}

struct Job {
    engine: Engine,
    mode: CompareMode,
}

impl LineJob for Job {
    type Request = CompareInput;
    type Output = CompareResult;

    fn parse(&self, value: Value) -> Result<CompareInput, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    fn passes(&self, _: &CompareInput) -> usize {
        self.mode.passes()
    }

    fn process(&self, requests: Vec<CompareInput>, progress: &Progress) -> Vec<Result<CompareResult, String>> {
        let scorer = self.engine.scorer(progress.call_options());
        let mut pairs = vec![];
        let mut convs = vec![];
        for r in &requests {
            match r {
                CompareInput::Answers(p) => pairs.push(p.clone()),
                CompareInput::Conversations(c) => convs.push(c.clone()),
            }
        }
        let mut pair_results = compare(&scorer, &pairs, self.mode).into_iter();
        let mut conv_results = compare_conversations(&scorer, &convs, self.mode).into_iter();
        requests
            .iter()
            .map(|r| {
                let next = match r {
                    CompareInput::Answers(_) => pair_results.next(),
                    CompareInput::Conversations(_) => conv_results.next(),
                };
                next.expect("one result per request").map_err(|e| e.to_string())
            })
            .collect()
    }
}

/// Runs `pairrm compare`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    args.io.check_paths()?;
    let job = Job { engine: args.model.load(!args.io.no_progress)?, mode: args.mode };
    jsonl::run(&args.io, &job)
}
