//! `pairrm compare`: one logit per pair (or pair of conversations); > 0 means A is better.

use pairrm::judge::{compare, compare_conversations, CompareMode, CompareRequest, CompareResult, ConversationPair};
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
    #[arg(long, default_value = "both", value_parser = parse_mode)]
    mode: CompareMode,
}

fn parse_mode(s: &str) -> Result<CompareMode, String> {
    s.parse().map_err(|e: pairrm::Error| e.to_string())
}

/// A compare line: a pair of answers, or a pair of conversations.
pub enum Request {
    Pair(CompareRequest),
    Conversation(ConversationPair),
}

struct Job {
    engine: Engine,
    mode: CompareMode,
}

impl LineJob for Job {
    type Request = Request;
    type Output = CompareResult;

    fn parse(&self, value: Value) -> Result<Request, String> {
        let is_conversation = value.get("conversation_a").is_some() || value.get("conversation_b").is_some();
        if is_conversation {
            serde_json::from_value(value).map(Request::Conversation).map_err(|e| e.to_string())
        } else {
            serde_json::from_value(value).map(Request::Pair).map_err(|e| e.to_string())
        }
    }

    fn passes(&self, _: &Request) -> usize {
        self.mode.passes()
    }

    fn process(&self, requests: Vec<Request>, progress: &Progress) -> Vec<Result<CompareResult, String>> {
        let scorer = self.engine.scorer(progress.call_options());
        let mut pairs = vec![];
        let mut convs = vec![];
        for r in &requests {
            match r {
                Request::Pair(p) => pairs.push(p.clone()),
                Request::Conversation(c) => convs.push(c.clone()),
            }
        }
        let mut pair_results = compare(&scorer, &pairs, self.mode).into_iter();
        let mut conv_results = compare_conversations(&scorer, &convs, self.mode).into_iter();
        requests
            .iter()
            .map(|r| {
                let next = match r {
                    Request::Pair(_) => pair_results.next(),
                    Request::Conversation(_) => conv_results.next(),
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
