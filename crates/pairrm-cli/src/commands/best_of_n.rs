//! `pairrm best-of-n`: sample n answers to each prompt from an OpenAI-compatible server (vLLM,
//! TGI, llama.cpp, Ollama, ...) and keep the one PairRM likes best.
//!
//! Input lines: `{"prompt": str, "instruction"?: str, "source"?: str}` or
//! `{"messages": [chat messages]}` (see [`line`]). Output lines, in input order:
//! `{"best": str, "best_index": int, "candidates"?, "scores"?, "ranks"?, "order"?, "usage": {...}}`
//! (see [`pick::Output`]), or `{"error": "line N: ..."}`.

mod line;
mod pick;
mod pipeline;
mod progress;
mod queue;
mod sampling;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use pairrm::judge::{check_candidate_count, SelectMethod, DEFAULT_MAX_CANDIDATES};
use serde_json::{Map, Value};

use crate::args::{IoArgs, ModelArgs};
use crate::jsonl::{self, Outcome};
use crate::openai::{Client, ClientOptions, Params, RetryPolicy, RESERVED_FIELDS};
use pick::Picker;
use pipeline::{Generation, Limits};
use progress::Progress;

/// Arguments of `pairrm best-of-n`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    io: IoArgs,
    /// The generator's OpenAI-compatible base URL, with or without `/v1`
    /// (e.g. `http://localhost:8000/v1`).
    #[arg(long, env = "OPENAI_BASE_URL")]
    generator: String,
    /// The model name the generator serves (`model` in each request).
    #[arg(long)]
    generator_model: String,
    /// Samples per prompt.
    #[arg(long, short = 'n', default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    n: u32,
    /// Most samples asked for in one request (`n`); 1 for servers that refuse `n` > 1
    /// (llama.cpp). Default: all at once; a server that returns fewer is asked again for the rest.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    samples_per_request: Option<u32>,
    /// Send `prompt` lines to `/v1/chat/completions` as one user message (`messages` lines always
    /// go there).
    #[arg(long)]
    chat: bool,
    /// Sampling temperature (the server's default when not given).
    #[arg(long)]
    temperature: Option<f64>,
    /// Nucleus sampling `top_p` (the server's default when not given).
    #[arg(long)]
    top_p: Option<f64>,
    /// Most tokens per sample (the server's default when not given).
    #[arg(long)]
    max_tokens: Option<u64>,
    /// Sampling seed: a line's request whose samples start at position `o` is sent `seed + o`, so
    /// that repeated requests (servers that ignore `n`) differ.
    #[arg(long)]
    seed: Option<u64>,
    /// A stop sequence (repeat for several).
    #[arg(long)]
    stop: Vec<String>,
    /// More request fields, as a JSON object (e.g. `{"top_k": 20, "min_p": 0.05}`).
    #[arg(long, value_parser = parse_extra_body)]
    extra_body: Option<Map<String, Value>>,
    /// Sent as `Authorization: Bearer <key>`.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// `bubble`: one seeded bubble pass, 2·(n−1) comparisons (the reference's default);
    /// `full`: all n·(n−1) comparisons, the best by mean score (as `pairrm rank`).
    #[arg(long, value_enum, default_value = "bubble")]
    strategy: SelectMethod,
    /// Seed of the bubble order (as `pairrm rank --strategy bubble --seed`).
    #[arg(long, default_value_t = 0)]
    bubble_seed: u64,
    /// Also write every sample (`candidates`), the order, and with `--strategy full` the scores and
    /// ranks.
    #[arg(long)]
    return_all: bool,
    /// Most candidates per prompt (0: no limit): `--n` above it is refused. With `--strategy full`
    /// n candidates take n·(n−1) forward passes.
    #[arg(long, default_value_t = DEFAULT_MAX_CANDIDATES)]
    max_candidates: usize,
    /// Most HTTP requests at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_concurrency: u32,
    /// Seconds one request may take, from connecting to the end of the answer.
    #[arg(long, default_value = "600", value_parser = parse_timeout)]
    request_timeout: Duration,
    /// Seconds to wait for a connection.
    #[arg(long, default_value = "10", value_parser = parse_timeout)]
    connect_timeout: Duration,
    /// Retries of a request that failed with 408/409/429/5xx, a timeout or a connection error.
    #[arg(long, default_value_t = 5)]
    max_retries: u32,
    /// Seconds before the first retry; doubles with each retry (with jitter).
    #[arg(long, default_value = "1", value_parser = parse_delay)]
    retry_delay: Duration,
    /// Longest wait in seconds between retries (also caps the server's `Retry-After`).
    #[arg(long, default_value = "60", value_parser = parse_delay)]
    max_retry_delay: Duration,
}

/// Seconds as a non-negative number.
fn parse_delay(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("{s:?} must be between 0 and 1e9 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Seconds as a positive number.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_delay(s)?;
    if d.is_zero() {
        return Err("a timeout must be more than 0 seconds".into());
    }
    Ok(d)
}

/// A JSON object of extra request fields, none of them set by the command itself.
fn parse_extra_body(s: &str) -> Result<Map<String, Value>, String> {
    let Value::Object(map) = serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))? else {
        return Err("must be a JSON object".into());
    };
    if let Some(field) = RESERVED_FIELDS.iter().find(|f| map.contains_key(**f)) {
        return Err(format!("`{field}` is set by the command (use its own option, or the input lines)"));
    }
    Ok(map)
}

/// Lines in a file (a last line without a newline counts).
fn count_lines(path: &Path) -> anyhow::Result<usize> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let (mut lines, mut last) = (0, b'\n');
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
        last = buf[n - 1];
    }
    Ok(lines + usize::from(last != b'\n'))
}

/// The input: `--input`, else stdin.
fn open_input(io: &IoArgs) -> anyhow::Result<Box<dyn BufRead + Send>> {
    Ok(match &io.input {
        Some(path) => {
            Box::new(BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?))
        }
        None => Box::new(BufReader::new(std::io::stdin())),
    })
}

/// Runs `pairrm best-of-n`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if args.retry_delay > args.max_retry_delay {
        bail!("--retry-delay ({:?}) is longer than --max-retry-delay ({:?})", args.retry_delay, args.max_retry_delay);
    }
    if check_candidate_count(args.n as usize, args.max_candidates).is_err() {
        bail!(
            "--n {} is more candidates than --max-candidates {} allows (raise it, or 0 for no limit)",
            args.n,
            args.max_candidates
        );
    }
    args.io.check_paths()?;
    if args.temperature == Some(0.0) && args.n > 1 {
        tracing::warn!("--temperature 0 samples greedily: the {} samples will likely be the same", args.n);
    }
    let max_concurrency = args.max_concurrency as usize;
    let client = Client::new(ClientOptions {
        base_url: args.generator.clone(),
        api_key: args.api_key.clone(),
        request_timeout: args.request_timeout,
        connect_timeout: args.connect_timeout,
        retry: RetryPolicy {
            max_retries: args.max_retries,
            initial_delay: args.retry_delay,
            max_delay: args.max_retry_delay,
        },
        max_connections: max_concurrency,
    })?;
    let generation = Generation {
        client,
        params: Params {
            model: args.generator_model.clone(),
            temperature: args.temperature,
            top_p: args.top_p,
            max_tokens: args.max_tokens,
            stop: args.stop.clone(),
            extra: args.extra_body.clone().unwrap_or_default(),
        },
        n: args.n as usize,
        samples_per_request: args.samples_per_request.map_or(0, |k| k as usize),
        seed: args.seed,
        chat: args.chat,
    };
    let engine = args.model.load(!args.io.no_progress)?;
    let total = args.io.input.as_deref().map(count_lines).transpose()?;
    let input = open_input(&args.io)?;
    let mut output = jsonl::open_output(&args.io)?;
    let progress = Arc::new(Progress::new(total, args.io.no_progress));
    let picker = Picker { strategy: args.strategy, seed: args.bubble_seed, return_all: args.return_all };
    let limits = Limits { max_concurrency, max_in_flight: (4 * max_concurrency).max(32) };
    let outcome = pipeline::run(input, &mut output, generation, limits, engine, picker, progress.clone());
    progress.finish();
    let outcome = outcome?;
    output.finish()?;
    tracing::info!(failed = outcome.failed, "{}", progress.summary());
    if outcome.failed > 0 {
        tracing::warn!(failed = outcome.failed, "some lines failed");
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_seconds() {
        assert_eq!(parse_delay("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_delay("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_delay("-1").is_err());
        assert!(parse_delay("soon").is_err());
        assert!(parse_delay("inf").is_err());
        assert!(parse_delay("NaN").is_err());
        assert!(parse_timeout("0").unwrap_err().contains("more than 0"));
        assert_eq!(parse_timeout("0.25").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn extra_bodies_are_objects_without_reserved_fields() {
        let map = parse_extra_body(r#"{"top_k": 20}"#).unwrap();
        assert_eq!(map["top_k"], 20);
        assert!(parse_extra_body("[1]").unwrap_err().contains("JSON object"));
        assert!(parse_extra_body("{").unwrap_err().contains("not JSON"));
        for field in RESERVED_FIELDS {
            let e = parse_extra_body(&format!(r#"{{"{field}": 1}}"#)).unwrap_err();
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn lines_are_counted_with_or_without_a_last_newline() {
        let dir = std::env::temp_dir().join(format!("pairrm-count-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.jsonl");
        for (text, lines) in [("", 0), ("a\n", 1), ("a\nb", 2), ("a\n\nb\n", 3)] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(count_lines(&path).unwrap(), lines, "{text:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(count_lines(&dir.join("missing")).is_err());
    }
}
