//! `pairrm serve`: the HTTP server (see the `pairrm-server` crate), with dynamic batching.

use std::time::Duration;

use pairrm_server::ServerOptions;

use crate::args::ModelArgs;
use crate::jsonl::Outcome;

/// Arguments of `pairrm serve`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on (`0.0.0.0` for every interface).
    #[arg(long, default_value = "127.0.0.1", env = "PAIRRM_HOST")]
    host: String,
    /// Port to listen on (0: any free port; the address is logged).
    #[arg(long, default_value_t = 8080, env = "PAIRRM_PORT")]
    port: u16,
    /// Most scoring requests processed at once; more are answered 429.
    #[arg(long, default_value_t = ServerOptions::default().max_concurrent_requests)]
    max_concurrent_requests: usize,
    /// Most pairs (/compare), candidates (/rank) or texts (/rerank) in one request; more are
    /// answered 413.
    #[arg(long, default_value_t = ServerOptions::default().max_client_batch_size)]
    max_client_batch_size: usize,
    /// Largest request body in bytes; larger ones are answered 413.
    #[arg(long, default_value_t = ServerOptions::default().payload_limit)]
    payload_limit: usize,
    /// Longest a scoring request may take, in seconds, before it is answered 504 and its work
    /// dropped (0: no limit).
    #[arg(long, default_value_t = 300.0)]
    request_timeout: f64,
}

/// Runs `pairrm serve` until SIGTERM or Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if !(args.request_timeout >= 0.0 && args.request_timeout.is_finite()) {
        anyhow::bail!("--request-timeout must be a number of seconds >= 0, got {}", args.request_timeout);
    }
    let options = ServerOptions {
        max_batch_tokens: args.model.max_batch_tokens.max(1),
        max_concurrent_requests: args.max_concurrent_requests.max(1),
        max_client_batch_size: args.max_client_batch_size.max(1),
        payload_limit: args.payload_limit,
        request_timeout: (args.request_timeout > 0.0).then(|| Duration::from_secs_f64(args.request_timeout)),
    };
    let model = args.model;
    pairrm_server::run(&args.host, args.port, options, move || model.load(true))?;
    Ok(Outcome { failed: 0 })
}
