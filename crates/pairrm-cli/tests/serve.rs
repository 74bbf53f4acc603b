//! `pairrm serve` as a user runs it: the binary on a loopback port with the tiny fixture model,
//! giving exactly the CLI's numbers, and stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tiny_model() -> String {
    workspace().join("tests/fixtures/models/tiny-original").display().to_string()
}

/// A running `pairrm serve`, its address, and its log lines as they come.
struct Served {
    child: Child,
    url: String,
    log: mpsc::Receiver<String>,
}

impl Served {
    /// Starts `pairrm serve` on any free loopback port and reads its address from the log.
    fn start(extra: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pairrm"));
        cmd.args(["serve", "--model", &tiny_model(), "--host", "127.0.0.1", "--port", "0", "--log", "info"])
            .args(extra);
        Self::spawn(cmd)
    }

    /// Starts `cmd` (a `pairrm serve` that logs at level info) and reads its address from the log.
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut served = Served { child, url: String::new(), log };
        let line = served.wait_log("listening on http://");
        let start = line.find("http://").unwrap();
        served.url = line[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        served
    }

    /// Waits (bounded) for a log line containing `needle`.
    fn wait_log(&self, needle: &str) -> String {
        loop {
            match self.log.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {needle:?}: {e}"),
            }
        }
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut response = agent.post(format!("{}{path}", self.url)).send_json(body).unwrap();
        (response.status().as_u16(), response.body_mut().read_json().unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a JSON-lines command of the CLI over `input`; one JSON value per output line.
fn cli(args: &[&str], input: &str) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pairrm"))
        .args(args)
        .args(["--model", &tiny_model(), "--no-progress"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn example(name: &str) -> (String, Vec<Value>) {
    let text = std::fs::read_to_string(workspace().join("examples").join(name)).unwrap();
    let lines = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (text, lines)
}

#[test]
fn the_server_gives_the_cli_numbers_and_stops_on_sigterm() {
    let served = Served::start(&[]);
    served.wait_log("ready on http://");

    let (text, pairs) = example("pairs.jsonl");
    for mode in ["ab", "ba", "both"] {
        let want = cli(&["compare", "--mode", mode], &text);
        let (status, answer) = served.post("/compare", &serde_json::json!({"pairs": pairs, "mode": mode}));
        assert_eq!(status, 200, "{answer}");
        // The same JSON numbers, digit for digit.
        assert_eq!(answer["results"].as_array().unwrap(), &want, "mode {mode}");
    }

    let (text, ranks) = example("rank.jsonl");
    let want = cli(&["rank"], &text);
    let want_bubble = cli(&["rank", "--strategy", "bubble", "--seed", "3"], &text);
    for ((request, want), want_bubble) in ranks.iter().zip(&want).zip(&want_bubble) {
        assert_eq!(&served.post("/rank", request).1, want);
        let mut bubble = request.clone();
        bubble["strategy"] = "bubble".into();
        bubble["seed"] = 3.into();
        assert_eq!(&served.post("/rank", &bubble).1, want_bubble);
    }

    let mut served = served;
    let pid = served.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = served.child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let rest: Vec<String> = served.log.iter().collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn a_model_that_does_not_load_ends_the_server_with_exit_code_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_pairrm"))
        .args(["serve", "--model", "/nonexistent/model", "--port", "0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loading model /nonexistent/model"), "{stderr}");
}

/// `pairrm serve ARGS` with `env`, expected to refuse its options: (exit code, stderr).
fn refused(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pairrm"))
        .args(["serve", "--model", &tiny_model(), "--port", "0"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn nonsense_options_are_refused_with_a_clear_message_before_anything_starts() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 11] = [
        (&["--request-timeout", "1e20"], &[], "--request-timeout"),
        (&["--request-timeout=-1"], &[], "from 0 (no limit) to 604800 seconds"),
        (&["--header-timeout", "nan"], &[], "--header-timeout"),
        (&["--max-concurrent-requests", "0"], &[], "must be at least 1"),
        (&["--max-client-batch-size", "0"], &[], "--max-client-batch-size"),
        (&["--payload-limit", "0"], &[], "--payload-limit"),
        (&["--max-connections", "0"], &[], "--max-connections"),
        (&["--max-batch-tokens", "0"], &[], "--max-batch-tokens"),
        (&["--threads", "100000"], &[], "at most"),
        (&["--cors-origin", "example.org"], &[], "is not an origin"),
        (&[], &[("PAIRRM_REQUEST_TIMEOUT", "1e20")], "--request-timeout"),
    ];
    for (args, env, message) in cases {
        let (code, stderr) = refused(args, env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let (_, stderr) = refused(&["--threads", "100000"], &[]);
    assert!(stderr.contains(&format!("at most {} threads", 8 * cores)), "{stderr}");
}

#[test]
fn every_option_can_come_from_the_environment() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pairrm"));
    cmd.args(["serve", "--log", "info"]).envs([
        ("PAIRRM_MODEL", tiny_model().as_str()),
        ("PAIRRM_HOST", "127.0.0.1"),
        ("PAIRRM_PORT", "0"),
        ("PAIRRM_API_KEY", "k3y"),
        ("PAIRRM_MAX_CLIENT_BATCH_SIZE", "2"),
        ("PAIRRM_SERVED_MODEL_NAME", "judge"),
        ("PAIRRM_KEEP_ALIVE_TIMEOUT", "12.5"),
        ("PAIRRM_THREADS", "1"),
    ]);
    let served = Served::spawn(cmd);
    served.wait_log("ready on http://");
    let body = serde_json::json!({"source": "s", "candidates": ["a", "b", "c"]});
    assert_eq!(served.post("/rank", &body).0, 401);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let status = agent
        .post(format!("{}/rank", served.url))
        .header("authorization", "Bearer k3y")
        .send_json(&body)
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 413);
    let mut info = agent.get(format!("{}/info", served.url)).header("authorization", "Bearer k3y").call().unwrap();
    let info: Value = info.body_mut().read_json().unwrap();
    assert_eq!(info["model_id"], "judge");
    assert_eq!(info["threads"], 1);
    assert_eq!(info["limits"]["keep_alive_timeout_secs"], 12.5);
    assert_eq!(info["limits"]["max_client_batch_size"], 2);
}

#[test]
fn sigterm_is_not_held_up_by_a_stalled_client() {
    let mut served = Served::start(&["--header-timeout", "600", "--shutdown-timeout", "1"]);
    served.wait_log("ready on http://");
    let addr = served.url.trim_start_matches("http://").to_string();
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    stalled.write_all(b"POST /rank HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = std::time::Instant::now();
    let pid = served.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    // Bounded wait for the exit.
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "still running 20 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(start.elapsed() < Duration::from_secs(10), "exited {:?} after SIGTERM", start.elapsed());
    let rest: Vec<String> = served.log.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("--shutdown-timeout")), "{rest:?}");
    drop(stalled);
}
