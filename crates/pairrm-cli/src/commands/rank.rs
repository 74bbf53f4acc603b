//! `pairrm rank`: scores and ranks of each line's candidates (full matrix or against a
//! reference), or the best (worst) one by a seeded bubble pass.

use pairrm::judge::{
    check_candidate_count, rank, rank_with_ref, reference_passes, select_n, RankRequest, RankWithRefRequest, Reference,
    ReferenceMode, SelectMethod, Target, DEFAULT_MAX_CANDIDATES,
};
use pairrm::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::args::{IoArgs, ModelArgs};
use crate::jsonl::{self, LineJob, Outcome};
use crate::progress::Progress;

/// Arguments of `pairrm rank`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    io: IoArgs,
    /// `full`: scores and ranks; `bubble`: the best candidate by one seeded bubble pass.
    #[arg(long, value_enum, default_value = "full")]
    strategy: SelectMethod,
    /// Seed of the bubble order (the same seed gives the same order everywhere).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// With `--strategy bubble`: find the worst candidate instead of the best.
    #[arg(long)]
    worst: bool,
    /// Rank against a reference candidate instead of the full matrix. A line's own `"reference"`
    /// (a reference text) or `"reference_mode"` takes precedence.
    #[arg(long, value_enum)]
    reference: Option<ReferenceMode>,
    /// Most candidates in one line (0: no limit); a line with more gets an error record. A full
    /// rank of n candidates takes n·(n−1) forward passes.
    #[arg(long, default_value_t = DEFAULT_MAX_CANDIDATES)]
    max_candidates: usize,
}

/// A rank line.
#[derive(Deserialize)]
struct Line {
    #[serde(flatten)]
    request: RankRequest,
    /// A given reference text.
    #[serde(default)]
    reference: Option<String>,
    /// A reference mode (`longest`, `shortest`, `median`, `first`, `last`).
    #[serde(default)]
    reference_mode: Option<Reference>,
}

/// A parsed line: plain full rank, rank against a reference, or bubble selection.
pub struct Request {
    request: RankRequest,
    reference: Option<Reference>,
}

/// A request with its position in the chunk.
type Indexed = (usize, Request);

/// The result line.
#[derive(Serialize)]
#[serde(untagged)]
enum Output {
    Ranked { scores: Vec<f32>, ranks: Vec<usize> },
    Best { best: usize, order: Vec<usize> },
    Worst { worst: usize, order: Vec<usize> },
}

struct Job {
    engine: Engine,
    strategy: SelectMethod,
    seed: u64,
    worst: bool,
    reference: Option<Reference>,
    max_candidates: usize,
}

impl LineJob for Job {
    type Request = Request;
    type Output = Output;

    fn parse(&self, value: Value) -> Result<Request, String> {
        let line: Line = serde_json::from_value(value).map_err(|e| e.to_string())?;
        check_candidate_count(line.request.candidates.len(), self.max_candidates)
            .map_err(|e| format!("{e} (--max-candidates; 0 for no limit)"))?;
        let line_reference = match (line.reference, line.reference_mode) {
            (Some(_), Some(_)) => return Err("give either `reference` or `reference_mode`, not both".into()),
            (Some(text), None) => Some(Reference::Given(text)),
            (None, Some(Reference::Given(_))) => return Err("`reference_mode` must be a mode name".into()),
            (None, mode) => mode,
        };
        let reference = line_reference.or_else(|| self.reference.clone());
        if reference.is_some() && self.strategy == SelectMethod::Bubble {
            return Err("a reference cannot be used with --strategy bubble".into());
        }
        Ok(Request { request: line.request, reference })
    }

    fn passes(&self, r: &Request) -> usize {
        let n = r.request.candidates.len();
        match &r.reference {
            Some(_) => reference_passes(n),
            None => self.strategy.passes(n),
        }
    }

    fn process(&self, requests: Vec<Request>, progress: &Progress) -> Vec<Result<Output, String>> {
        let scorer = self.engine.scorer(progress.call_options());
        let (with_ref, plain): (Vec<Indexed>, Vec<Indexed>) =
            requests.into_iter().enumerate().partition(|(_, r)| r.reference.is_some());
        let mut results: Vec<Option<Result<Output, String>>> =
            (0..with_ref.len() + plain.len()).map(|_| None).collect();

        let ref_requests: Vec<RankWithRefRequest> = with_ref
            .iter()
            .map(|(_, r)| RankWithRefRequest {
                request: r.request.clone(),
                reference: r.reference.clone().expect("partitioned"),
            })
            .collect();
        for ((i, _), res) in with_ref.iter().zip(rank_with_ref(&scorer, &ref_requests)) {
            results[*i] =
                Some(res.map(|r| Output::Ranked { scores: r.scores, ranks: r.ranks }).map_err(|e| e.to_string()));
        }

        let plain_requests: Vec<RankRequest> = plain.iter().map(|(_, r)| r.request.clone()).collect();
        let outputs: Vec<Result<Output, String>> = match self.strategy {
            SelectMethod::Full => rank(&scorer, &plain_requests)
                .into_iter()
                .map(|r| r.map(|r| Output::Ranked { scores: r.scores, ranks: r.ranks }).map_err(|e| e.to_string()))
                .collect(),
            SelectMethod::Bubble => {
                let target = if self.worst { Target::Worst } else { Target::Best };
                select_n(&scorer, &plain_requests, target, SelectMethod::Bubble, self.seed)
                    .into_iter()
                    .map(|r| {
                        r.map(|s| {
                            if self.worst {
                                Output::Worst { worst: s.index, order: s.order }
                            } else {
                                Output::Best { best: s.index, order: s.order }
                            }
                        })
                        .map_err(|e| e.to_string())
                    })
                    .collect()
            }
        };
        for ((i, _), out) in plain.iter().zip(outputs) {
            results[*i] = Some(out);
        }
        results.into_iter().map(|r| r.expect("every request has a result")).collect()
    }
}

/// Runs `pairrm rank`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if args.worst && args.strategy != SelectMethod::Bubble {
        anyhow::bail!("--worst needs --strategy bubble (full ranks already order every candidate)");
    }
    args.io.check_paths()?;
    let job = Job {
        engine: args.model.load(!args.io.no_progress)?,
        strategy: args.strategy,
        seed: args.seed,
        worst: args.worst,
        reference: args.reference.map(Reference::from),
        max_candidates: args.max_candidates,
    };
    jsonl::run(&args.io, &job)
}
