//! Memory budget: the documented bounds (docs/server.md, "Memory") hold for the binary.
//!
//! - The CLI on one very long line needs memory in proportion to the line (JSON parsing holds it
//!   and a few copies), not the hundred bytes per byte that tokenizing all of it would take.
//! - The server under N concurrent maximal requests (bodies just under `--payload-limit`) stays
//!   under `idle + N × 8 × payload-limit + 150 × payload-limit`: a few copies of each body in
//!   flight, and one text at a time tokenized whole (a run such as `aaaa…` that cannot be cut).
//!
//! Peak resident memory is read from `/proc/PID/status` (`VmHWM`): Linux only. Loopback only,
//! bounded in count and time.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

/// The real-tokenizer fixture as a local checkpoint: the real deberta-v3 spm.model (its
/// normalizer and 128k pieces: what the tokenizer costs in memory is real) in front of a tiny
/// random network.
fn realtok_model(root: &Path) -> String {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let backbone = root.join("backbone");
    std::fs::create_dir_all(&backbone).unwrap();
    for f in ["config.json", "tokenizer_config.json"] {
        std::fs::copy(fixtures.join("models/realtok-backbone").join(f), backbone.join(f)).unwrap();
    }
    std::fs::copy(fixtures.join("tokenizer/deberta-v3/spm.model"), backbone.join("spm.model")).unwrap();
    let model = root.join("model");
    std::fs::create_dir_all(&model).unwrap();
    let original = fixtures.join("models/realtok-original");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(original.join("config.json")).unwrap()).unwrap();
    config["model_name"] = json!("../backbone");
    std::fs::write(model.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(original.join("model.safetensors"), model.join("model.safetensors")).unwrap();
    model.display().to_string()
}

/// `VmHWM` or `VmRSS` of a process, in bytes.
fn status_bytes(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key}"));
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// `bytes` of text of a kind: words, CJK without spaces, or one letter repeated.
fn text(kind: &str, bytes: usize) -> String {
    let unit = match kind {
        "words" => "The quick brown fox jumps over the lazy dog, and then it runs away. ",
        "cjk" => "日本語のテキストと中文と한국어と漢字かな交じり文",
        _ => "a",
    };
    let mut text = unit.repeat(bytes / unit.len() + 1);
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

const MB: u64 = 1 << 20;

/// Peak memory of `pairrm compare` on `lines`, read once they are answered (a few short lines
/// follow them while stdin stays open, so that the process is still alive then).
fn cli_peak(model: &str, lines: &str) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pairrm"))
        .args(["compare", "--model", model, "--no-progress"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(lines.as_bytes()).unwrap();
    stdin.write_all(b"\n").unwrap();
    for _ in 0..200 {
        stdin.write_all(b"{\"source\": \"q\", \"a\": \"x\", \"b\": \"y\"}\n").unwrap();
    }
    stdin.flush().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for _ in lines.lines() {
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(&answer).unwrap()["logit"].is_f64(), "{answer}");
    }
    let peak = status_bytes(child.id(), "VmHWM");
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    peak
}

#[test]
fn the_cli_on_one_10_mb_line_needs_memory_in_proportion_to_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let model = realtok_model(tmp.path());
    let idle = cli_peak(&model, &json!({"source": "q", "a": "x", "b": "y"}).to_string());
    // Texts that can be cut: a few copies of the line (tokenizing it whole took ~100 bytes per byte).
    for kind in ["words", "cjk"] {
        let line = json!({"source": "Summarize this.", "a": text(kind, 10_000_000), "b": "Short."}).to_string();
        let peak = cli_peak(&model, &line);
        let bound = idle + 12 * line.len() as u64;
        eprintln!(
            "memory: pairrm compare, a 10 MB line of {kind}: idle {} MB, peak {} MB (bound {} MB)",
            idle / MB,
            peak / MB,
            bound / MB
        );
        assert!(peak < bound, "{kind}: peak {} MB over the bound {} MB", peak / MB, bound / MB);
    }
    // A run that cannot be cut (its first tokens depend on its end) is tokenized whole.
    let line = json!({"source": "Summarize this.", "a": text("one letter", 2_000_000), "b": "Short."}).to_string();
    let peak = cli_peak(&model, &line);
    let bound = idle + 150 * line.len() as u64;
    eprintln!(
        "memory: pairrm compare, a 2 MB line of one letter: idle {} MB, peak {} MB (bound {} MB)",
        idle / MB,
        peak / MB,
        bound / MB
    );
    assert!(peak < bound, "one letter: peak {} MB over the bound {} MB", peak / MB, bound / MB);
}

#[test]
fn the_cli_on_many_long_lines_holds_a_bounded_chunk_of_them() {
    // Lines are scored in chunks of at most 8 MiB of input (plus the line that passes it): 128
    // lines of 1 MB are not all held at once (they were: 128 lines make one chunk of passes).
    let tmp = tempfile::tempdir().unwrap();
    let model = realtok_model(tmp.path());
    let idle = cli_peak(&model, &json!({"source": "q", "a": "x", "b": "y"}).to_string());
    let line = json!({"source": "Summarize this.", "a": text("words", 1_000_000), "b": "Short."}).to_string();
    let input = vec![line.as_str(); 128].join("\n");
    let peak = cli_peak(&model, &input);
    let bound = idle + 100 * MB;
    eprintln!(
        "memory: pairrm compare, 128 lines of 1 MB: idle {} MB, peak {} MB (bound {} MB)",
        idle / MB,
        peak / MB,
        bound / MB
    );
    assert!(peak < bound, "peak {} MB over the bound {} MB", peak / MB, bound / MB);
}

/// A running `pairrm serve` on a free loopback port.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(model: &str, payload_limit: usize) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pairrm"))
            .args(["serve", "--model", model, "--host", "127.0.0.1", "--port", "0", "--log", "info"])
            .args(["--payload-limit", &payload_limit.to_string()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut addr = None;
        while addr.is_none() && Instant::now() < deadline {
            let line = lines.next().expect("the server's log").unwrap();
            if let Some(at) = line.find("ready on http://") {
                addr = Some(line[at + "ready on http://".len()..].split_whitespace().next().unwrap().to_string());
            }
        }
        // Keep draining the log so that the server never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr: addr.expect("the server did not get ready") }
    }

    /// POSTs `body` to `path`; the status code.
    fn post(addr: &str, path: &str, body: &[u8]) -> u16 {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_server_under_concurrent_maximal_requests_stays_under_the_documented_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let model = realtok_model(tmp.path());
    let payload_limit = 500_000;
    let clients = 6;
    for kind in ["words", "cjk", "one letter"] {
        let server = Server::start(&model, payload_limit);
        let idle = status_bytes(server.child.id(), "VmRSS");
        let envelope = json!({"pairs": [{"source": "Summarize this.", "a": "", "b": "Short."}]}).to_string().len();
        let body = json!({"pairs": [{"source": "Summarize this.", "a": text(kind, payload_limit - envelope - 8), "b": "Short."}]})
            .to_string()
            .into_bytes();
        assert!(body.len() <= payload_limit);
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> =
                (0..clients).map(|_| scope.spawn(|| Server::post(&server.addr, "/compare", &body))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(statuses.iter().all(|&s| s == 200), "{kind}: {statuses:?}");
        let peak = status_bytes(server.child.id(), "VmHWM");
        let limit = payload_limit as u64;
        let bound = idle + clients as u64 * 8 * limit + 150 * limit;
        eprintln!(
            "memory: pairrm serve, {clients} concurrent {} kB bodies of {kind}: idle {} MB, peak {} MB (bound {} MB)",
            body.len() / 1000,
            idle / MB,
            peak / MB,
            bound / MB
        );
        assert!(peak < bound, "{kind}: peak {} MB over the bound {} MB", peak / MB, bound / MB);
    }
}
