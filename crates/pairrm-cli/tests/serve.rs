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
        let mut child = Command::new(env!("CARGO_BIN_EXE_pairrm"))
            .args(["serve", "--model", &tiny_model(), "--host", "127.0.0.1", "--port", "0", "--log", "info"])
            .args(extra)
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
        let addr: String = line[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        served.url = addr;
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
