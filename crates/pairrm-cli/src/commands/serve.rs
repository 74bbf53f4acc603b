//! `pairrm serve`: the HTTP server (see the `pairrm-server` crate), with dynamic batching. Every
//! option can also be set by a `PAIRRM_*` environment variable (the flag's name in capitals),
//! and every value is checked before anything starts.

use std::time::Duration;

use pairrm_server::{ApiKey, ServerOptions, MAX_PERMITS, MAX_TIMEOUT};

use crate::args::{parse_count, ModelArgs};
use crate::jsonl::Outcome;

/// Arguments of `pairrm serve`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on (`0.0.0.0` for every interface: then set an API key).
    #[arg(long, default_value = "127.0.0.1", env = "PAIRRM_HOST")]
    host: String,
    /// Port to listen on (0: any free port; the address is logged).
    #[arg(long, default_value_t = 8080, env = "PAIRRM_PORT")]
    port: u16,
    /// Most scoring requests processed at once; more are answered 429.
    #[arg(long, default_value_t = ServerOptions::default().max_concurrent_requests,
          env = "PAIRRM_MAX_CONCURRENT_REQUESTS", value_parser = parse_permits)]
    max_concurrent_requests: usize,
    /// Most pairs (/compare), candidates (/rank) or texts (/rerank) in one request; more are
    /// answered 413.
    #[arg(long, default_value_t = ServerOptions::default().max_client_batch_size,
          env = "PAIRRM_MAX_CLIENT_BATCH_SIZE", value_parser = parse_count)]
    max_client_batch_size: usize,
    /// Largest request body in bytes; larger ones are answered 413 (a declared length at once).
    #[arg(long, default_value_t = ServerOptions::default().payload_limit,
          env = "PAIRRM_PAYLOAD_LIMIT", value_parser = parse_count)]
    payload_limit: usize,
    /// Seconds a scoring request may take before it is answered 504 and its work dropped (0: no
    /// limit).
    #[arg(long, default_value = "300", env = "PAIRRM_REQUEST_TIMEOUT", value_parser = parse_timeout)]
    request_timeout: Timeout,
    /// Seconds a client may take to send a request's head (from connecting, or from the head's
    /// first byte on a kept-alive connection) before the connection is closed (0: no limit).
    #[arg(long, default_value = "10", env = "PAIRRM_HEADER_TIMEOUT", value_parser = parse_timeout)]
    header_timeout: Timeout,
    /// Seconds a client may take to send a request's body before it is answered 408 (0: no
    /// limit).
    #[arg(long, default_value = "30", env = "PAIRRM_BODY_TIMEOUT", value_parser = parse_timeout)]
    body_timeout: Timeout,
    /// Seconds an idle kept-alive connection stays open waiting for its next request (0: no
    /// limit).
    #[arg(long, default_value = "30", env = "PAIRRM_KEEP_ALIVE_TIMEOUT", value_parser = parse_timeout)]
    keep_alive_timeout: Timeout,
    /// Most connections open at once; more wait until one closes.
    #[arg(long, default_value_t = ServerOptions::default().max_connections,
          env = "PAIRRM_MAX_CONNECTIONS", value_parser = parse_permits)]
    max_connections: usize,
    /// On SIGTERM, seconds the requests in flight may take to finish before their connections
    /// are cut (0: wait for them however long).
    #[arg(long, default_value = "30", env = "PAIRRM_SHUTDOWN_TIMEOUT", value_parser = parse_timeout)]
    shutdown_timeout: Timeout,
    /// Require `Authorization: Bearer KEY` on every route but /health and the static pages.
    /// Prefer the environment variable: a command line is visible to other local users.
    #[arg(long, value_name = "KEY", env = "PAIRRM_API_KEY", hide_env_values = true, value_parser = parse_api_key)]
    api_key: Option<ApiKey>,
    /// Let web pages of this origin call the API (CORS), e.g. `https://example.org`; `*` for any.
    /// Repeat the flag, or separate origins by commas. Default: no CORS.
    #[arg(long = "cors-origin", value_name = "ORIGIN", env = "PAIRRM_CORS_ORIGIN", value_delimiter = ',',
          value_parser = parse_origin)]
    cors_origins: Vec<String>,
    /// The model name /info reports (default: the hub id, or the model directory's name).
    #[arg(long, value_name = "NAME", env = "PAIRRM_SERVED_MODEL_NAME")]
    served_model_name: Option<String>,
}

/// A timeout: `None` is no limit.
#[derive(Debug, Clone, Copy)]
struct Timeout(Option<Duration>);

/// Seconds from 0 (no limit) to a week, fractions allowed.
fn parse_timeout(value: &str) -> Result<Timeout, String> {
    let max = MAX_TIMEOUT.as_secs();
    let secs: f64 = value.trim().parse().map_err(|_| format!("{value:?} is not a number of seconds"))?;
    if !(0.0..=max as f64).contains(&secs) {
        return Err(format!("must be from 0 (no limit) to {max} seconds (a week)"));
    }
    Ok(Timeout((secs > 0.0).then(|| Duration::from_secs_f64(secs))))
}

/// A count of requests or connections at once: 1 to [`MAX_PERMITS`].
fn parse_permits(value: &str) -> Result<usize, String> {
    let n = parse_count(value)?;
    if n > MAX_PERMITS {
        return Err(format!("must be at most {MAX_PERMITS}"));
    }
    Ok(n)
}

fn parse_api_key(value: &str) -> Result<ApiKey, String> {
    ApiKey::new(value)
}

/// An origin (`https://host[:port]`) or `*`, checked as the server checks it.
fn parse_origin(value: &str) -> Result<String, String> {
    let origin = value.trim().to_string();
    let options = ServerOptions { cors_origins: vec![origin.clone()], ..ServerOptions::default() };
    options.check().map_err(|e| e.to_string())?;
    Ok(origin)
}

/// Runs `pairrm serve` until SIGTERM or Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let options = ServerOptions {
        max_batch_tokens: args.model.max_batch_tokens,
        max_concurrent_requests: args.max_concurrent_requests,
        max_client_batch_size: args.max_client_batch_size,
        payload_limit: args.payload_limit,
        request_timeout: args.request_timeout.0,
        header_timeout: args.header_timeout.0,
        body_timeout: args.body_timeout.0,
        keep_alive_timeout: args.keep_alive_timeout.0,
        max_connections: args.max_connections,
        shutdown_timeout: args.shutdown_timeout.0,
        api_key: args.api_key,
        cors_origins: args.cors_origins,
        served_model_name: args.served_model_name,
    };
    let model = args.model;
    pairrm_server::run(&args.host, args.port, options, move || model.load(true))?;
    Ok(Outcome { failed: 0 })
}

#[cfg(test)]
mod tests {
    use clap::Args as _;

    use super::*;

    /// Every option of `serve` (its own and the model's) can come from `PAIRRM_<FLAG>`, as TEI's
    /// do: an option added without one fails here.
    #[test]
    fn every_option_has_its_environment_variable() {
        let command = Args::augment_args(clap::Command::new("serve"));
        let mut checked = 0;
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let want = format!("PAIRRM_{}", long.to_uppercase().replace('-', "_"));
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(env.as_deref(), Some(want.as_str()), "--{long}");
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} options");
    }

    #[test]
    fn timeouts_are_checked_not_trusted() {
        assert_eq!(parse_timeout("0").unwrap().0, None);
        assert_eq!(parse_timeout("2.5").unwrap().0, Some(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("604800").unwrap().0, Some(MAX_TIMEOUT));
        for bad in ["1e20", "-1", "inf", "NaN", "soon", "604801"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
        assert!(parse_permits("0").is_err());
        assert!(parse_permits(&(MAX_PERMITS + 1).to_string()).is_err());
        assert!(parse_origin("https://example.org").is_ok());
        assert!(parse_origin("*").is_ok());
        assert!(parse_origin("example.org").is_err());
        assert!(parse_origin("https://example.org/page").is_err());
        assert!(parse_api_key("").is_err());
    }
}
