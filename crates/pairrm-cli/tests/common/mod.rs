//! Shared helpers of the CLI tests: the fixture model, and running the `pairrm` binary with a
//! deadline.
#![allow(dead_code)]

pub mod mock_openai;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest a `pairrm` run may take before the test fails (a hang is a failure, not a wait).
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The committed tiny checkpoint (original layout), usable as `--model`.
pub fn tiny_model() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/tiny-original").display().to_string()
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: Option<i32>,
    /// Stdout, one JSON value per line.
    pub lines: Vec<Value>,
    /// Stdout as text.
    pub stdout: String,
    /// Stderr as text.
    pub stderr: String,
}

/// A `pairrm` command with an environment that cannot leak into the test: no OpenAI variables,
/// no proxies, no model or log settings.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pairrm"));
    cmd.args(args);
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "PAIRRM_MODEL",
        "PAIRRM_LOG",
        "RUST_LOG",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Starts `cmd` with piped stdio and writes `input` to its stdin (then closes it).
pub fn spawn(mut cmd: Command, input: &str) -> Child {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    child
}

/// Waits for `child` up to [`DEADLINE`] (killing it and failing the test after that), reading
/// whatever of stdout and stderr is still unread.
pub fn finish(mut child: Child) -> Run {
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut s) = stream {
                s.read_to_string(&mut text).unwrap();
            }
            text
        })
    };
    let stdout = reader(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("pairrm did not finish within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line {l:?} is not JSON: {e}")))
        .collect();
    Run { code: status.code(), lines, stdout, stderr }
}

/// Runs `pairrm ARGS` on `input`.
pub fn pairrm(args: &[&str], input: &str) -> Run {
    finish(spawn(command(args), input))
}

/// The arguments of a `pairrm best-of-n` run against `url` on the tiny model, with fast retries,
/// followed by `extra`.
pub fn best_of_n_args(url: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "best-of-n",
        "--model",
        &tiny_model(),
        "--threads",
        "2",
        "--no-progress",
        "--generator",
        url,
        "--generator-model",
        "mock-model",
        "--retry-delay",
        "0.001",
        "--max-retry-delay",
        "0.01",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs `pairrm best-of-n` against `url` on `input` ([`best_of_n_args`]).
pub fn best_of_n(url: &str, extra: &[&str], input: &str) -> Run {
    let args = best_of_n_args(url, extra);
    pairrm(&args.iter().map(String::as_str).collect::<Vec<_>>(), input)
}

/// JSON lines of `values`.
pub fn jsonl(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}
