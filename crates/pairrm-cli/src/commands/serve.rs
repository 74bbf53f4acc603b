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

    /// The `PAIRRM_…` variable names in `text`.
    fn pairrm_variables(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("PAIRRM_") {
            let name: String =
                rest[at..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
            rest = &rest[at + name.len()..];
            // `PAIRRM_*` stands for all of them.
            if name.len() > "PAIRRM_".len() {
                names.push(name.trim_end_matches('_').to_string());
            }
        }
        names
    }

    /// The container files are checked here, where the options they use are defined: no engine
    /// can build the image in CI (no container registry is reachable there), so this keeps the
    /// Dockerfile, the compose example, the README and docs/server.md in step with the code
    /// and with each other.
    #[test]
    fn the_container_files_agree_with_the_code_and_the_docs() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (dockerfile, compose, readme, docs) =
            (read("Dockerfile"), read("compose.yaml"), read("README.md"), read("docs/server.md"));
        let lines: Vec<&str> = dockerfile.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();

        // The build stage: the workspace's toolchain, the README's build of the CLI.
        let manifest = read("Cargo.toml");
        let rust_version = manifest
            .lines()
            .find_map(|l| l.strip_prefix("rust-version = "))
            .map(|v| v.trim_matches('"'))
            .expect("rust-version in Cargo.toml");
        assert!(lines.contains(&format!("FROM rust:{rust_version}-slim-bookworm AS build").as_str()), "{dockerfile}");
        assert!(dockerfile.contains("cargo build --release --locked -p pairrm-cli"), "{dockerfile}");
        assert!(dockerfile.contains("target/release/pairrm /usr/local/bin/pairrm"));
        assert!(dockerfile.contains("COPY --from=build /usr/local/bin/pairrm /usr/local/bin/pairrm"));

        // The run stage: not root; the HF cache is the volume; the port is the one exposed.
        let users: Vec<&&str> = lines.iter().filter(|l| l.starts_with("USER ")).collect();
        assert_eq!(users, [&"USER pairrm"], "the last USER is the unprivileged one");
        assert!(dockerfile.contains("useradd --system --uid 10001"));
        assert!(lines.contains(&r#"VOLUME ["/data/huggingface"]"#));
        assert!(dockerfile.contains("ENV HF_HOME=/data/huggingface"));
        assert!(lines.contains(&"EXPOSE 8080") && dockerfile.contains("PAIRRM_PORT=8080"));
        assert!(dockerfile.contains("PAIRRM_HOST=0.0.0.0"));
        assert!(lines.contains(&r#"ENTRYPOINT ["pairrm"]"#) && lines.contains(&r#"CMD ["serve"]"#));
        let ignore = read(".dockerignore");
        assert!(ignore.lines().any(|l| l == "target/") && ignore.lines().any(|l| l == ".git/"), "{ignore}");

        // The compose example builds this Dockerfile, mounts the same cache and maps the same port.
        assert!(compose.contains("build: .") && compose.contains("hf-cache:/data/huggingface"), "{compose}");
        assert!(compose.contains(r#""127.0.0.1:8080:8080""#), "{compose}");
        assert!(compose.contains("HF_HUB_OFFLINE"), "{compose}");

        // The README and the docs run the image as it is built.
        for (name, text) in [("README.md", &readme), ("docs/server.md", &docs)] {
            assert!(text.contains("docker build -t pairrm ."), "{name} lacks the build command");
            let run =
                text.lines().find(|l| l.starts_with("docker run ")).unwrap_or_else(|| panic!("{name}: no docker run"));
            assert!(run.contains(":/data/huggingface") && run.contains(":8080"), "{name}: {run}");
        }

        // Every PAIRRM_* variable they name is one that `pairrm serve` reads.
        let command = Args::augment_args(clap::Command::new("serve"));
        let mut known: Vec<String> =
            command.get_arguments().filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned())).collect();
        known.push("PAIRRM_LOG".into());
        for (name, text) in [("Dockerfile", &dockerfile), ("compose.yaml", &compose), ("docs/server.md", &docs)] {
            for variable in pairrm_variables(text) {
                assert!(known.contains(&variable), "{name} names {variable}, which pairrm serve does not read");
            }
        }
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
