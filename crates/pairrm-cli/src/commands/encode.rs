//! `pairrm encode`: the exact model input of each pair.

use pairrm::judge::CompareRequest;
use pairrm::Engine;
use serde::Serialize;
use serde_json::Value;

use crate::args::{IoArgs, ModelArgs};
use crate::jsonl::{self, LineJob, Outcome};
use crate::progress::Progress;

/// Arguments of `pairrm encode`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    io: IoArgs,
}

#[derive(Serialize)]
struct Output {
    input_ids: Vec<u32>,
}

struct Job {
    engine: Engine,
}

impl LineJob for Job {
    type Request = CompareRequest;
    type Output = Output;

    fn parse(&self, value: Value) -> Result<CompareRequest, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    fn passes(&self, _: &CompareRequest) -> usize {
        0
    }

    fn process(&self, requests: Vec<CompareRequest>, _: &Progress) -> Vec<Result<Output, String>> {
        requests
            .iter()
            .map(|r| {
                let source = format!("{}{}", r.instruction.as_deref().unwrap_or(""), r.source);
                self.engine
                    .encode(&source, &r.a, &r.b)
                    .map(|input| Output { input_ids: input.ids })
                    .map_err(|e| e.to_string())
            })
            .collect()
    }
}

/// Runs `pairrm encode`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    args.io.check_paths()?;
    let job = Job { engine: args.model.load(!args.io.no_progress)? };
    jsonl::run(&args.io, &job)
}
