//! The conventions every `pairrm` command follows (docs/cli.md), through the real binary: a
//! closed stdout ends the run quietly with exit 0, logs (`--log` over `RUST_LOG`, bad filters,
//! no colours into a pipe), a byte order mark, completions and man pages, output files that are
//! never an input and never left truncated, path-like model names, and `--max-candidates`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{command, finish, jsonl, pairrm, spawn, tiny_model};
use serde_json::{json, Value};

/// Longest a run may take to notice its closed stdout and end (a hang detector, not a timing).
const QUICK: Duration = Duration::from_secs(20);

fn fixture(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(path).display().to_string()
}

fn rank_lines(n: usize) -> String {
    jsonl(&(0..n).map(|i| json!({"source": format!("q{i}"), "candidates": ["a", "bb", "ccc"]})).collect::<Vec<_>>())
}

/// Waits for `child` to end within `limit`; its exit code and stderr.
fn ended_within(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let mut stderr = child.stderr.take().unwrap();
    let err = thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("pairrm went on for {limit:?} after its stdout closed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    (status.code(), err.join().unwrap())
}

/// `pairrm rank … | head -1`: the reader takes one line and leaves. The run ends at once with
/// exit 0 and nothing on stderr — even though more input is still to come on stdin (it is held
/// open), so it stops the work rather than finishing it.
#[test]
fn a_closed_pipe_ends_the_run_quietly_and_at_once() {
    let model = tiny_model();
    let mut child = command(&["rank", "--model", &model, "--threads", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // 100 lines of 6 passes: the first chunk (256 passes) is written, the rest waits for more.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(rank_lines(100).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(serde_json::from_str::<Value>(&first).unwrap()["ranks"].is_array(), "{first}");
    drop(stdout);
    let (code, stderr) = ended_within(child, QUICK);
    drop(stdin);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
}

/// The write end of a pipe whose read end is already closed.
#[cfg(unix)]
fn closed_pipe() -> Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: `pipe` fills two new descriptors, each then owned exactly once.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        drop(OwnedFd::from_raw_fd(fds[0]));
        Stdio::from(OwnedFd::from_raw_fd(fds[1]))
    }
}

/// Every command that writes to stdout — results, reports, lists, scripts — ends quietly with
/// exit 0 when its stdout is closed, and an output file it was writing stays as it was.
#[cfg(unix)]
#[test]
fn every_command_ends_quietly_on_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(&rows, "OLD\n").unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, rank_lines(50)).unwrap();
    let (model, cache) = (tiny_model(), dir.path().join("cache"));
    let (input, rows_arg) = (input.display().to_string(), rows.display().to_string());
    let (pairs, winrate_out, winrate_base) = (
        fixture("eval/pairs.jsonl"),
        fixture("eval/winrate/model_outputs.json"),
        fixture("eval/winrate/baseline.jsonl"),
    );
    let runs: Vec<Vec<&str>> = vec![
        vec!["rank", "--model", &model, "--input", &input],
        vec!["compare", "--model", &model, "--input", &pairs],
        vec!["eval", "--model", &model, "--format", "jsonl", "--data", &pairs, "--rows", &rows_arg],
        vec!["winrate", "--model", &model, "--outputs", &winrate_out, "--baseline", &winrate_base],
        vec!["models"],
        vec!["completions", "bash"],
        vec!["man"],
    ];
    for args in runs {
        let mut cmd = command(&args);
        cmd.env("HF_HUB_CACHE", &cache).env("HF_HUB_OFFLINE", "1");
        let child = cmd.stdin(Stdio::null()).stdout(closed_pipe()).stderr(Stdio::piped()).spawn().unwrap();
        let (code, stderr) = ended_within(child, QUICK);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
    assert_eq!(std::fs::read_to_string(&rows).unwrap(), "OLD\n", "an unfinished --rows is not put in place");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file is left behind");
}

/// `--log` wins over `RUST_LOG`; `RUST_LOG` applies when `--log` is absent; a filter that does not
/// parse is an error naming where it came from.
#[test]
fn log_filters() {
    let model = tiny_model();
    let line = jsonl(&[json!({"source": "q", "a": "x", "b": "y"})]);
    let run = |extra: &[&str], rust_log: Option<&str>| {
        let mut args = vec!["compare", "--model", &model];
        args.extend(extra);
        let mut cmd = command(&args);
        if let Some(v) = rust_log {
            cmd.env("RUST_LOG", v);
        }
        finish(spawn(cmd, &line))
    };
    let loaded = "model loaded";
    let out = run(&["--log", "info"], Some("off"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains(loaded), "--log info wins over RUST_LOG=off: {:?}", out.stderr);
    let out = run(&["--log", "off"], Some("info"));
    assert!(!out.stderr.contains(loaded), "--log off wins over RUST_LOG=info: {:?}", out.stderr);
    let out = run(&[], Some("info"));
    assert!(out.stderr.contains(loaded), "RUST_LOG alone applies: {:?}", out.stderr);
    let mut cmd = command(&["compare", "--model", &model]);
    cmd.env("PAIRRM_LOG", "info").env("RUST_LOG", "off");
    assert!(finish(spawn(cmd, &line)).stderr.contains(loaded), "PAIRRM_LOG is --log");

    for (extra, rust_log, source) in [
        (&["--log", "pairrm=loud"][..], None, "--log"),
        (&[][..], Some("pairrm=loud"), "RUST_LOG"),
        (&["--log", "[{"][..], Some("info"), "--log"),
    ] {
        let out = run(extra, rust_log);
        assert_eq!(out.code, Some(2), "{extra:?} {rust_log:?}: {}", out.stderr);
        assert!(out.stderr.contains("invalid log filter") && out.stderr.contains(source), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

/// Logs into a pipe carry no ANSI colour codes.
#[test]
fn no_colours_when_stderr_is_not_a_terminal() {
    let out = pairrm(
        &["compare", "--model", &tiny_model(), "--log", "debug"],
        &jsonl(&[json!({"source": "q", "a": "x", "b": "y"})]),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("INFO"), "{}", out.stderr);
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
}

/// A UTF-8 byte order mark before the first line (as Windows editors write) is not part of it.
#[test]
fn a_byte_order_mark_on_the_first_line_is_accepted() {
    let lines =
        "\u{feff}{\"source\": \"q\", \"a\": \"x\", \"b\": \"y\"}\n{\"source\": \"q\", \"a\": \"x\", \"b\": \"y\"}\n";
    let out = pairrm(&["compare", "--model", &tiny_model()], lines);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert_eq!(out.lines.len(), 2);
    assert_eq!(out.lines[0], out.lines[1], "the marked line reads as the plain one");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, lines).unwrap();
    let out = pairrm(&["compare", "--model", &tiny_model(), "--input", file.to_str().unwrap()], "");
    assert_eq!(out.code, Some(0), "{}", out.stdout);
}

/// A run whose stdout is not JSON lines: exit code, stdout, stderr.
fn text_run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = command(args).stdin(Stdio::null()).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    for (shell, marker) in [("bash", "complete -F _pairrm"), ("zsh", "#compdef pairrm"), ("fish", "complete -c pairrm")]
    {
        let (code, script, stderr) = text_run(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {stderr}");
        assert!(script.contains(marker), "{shell}: {}", &script[..script.len().min(300)]);
        for word in ["best-of-n", "max-candidates", "completions"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    assert_eq!(text_run(&["completions", "tcsh"]).0, Some(2));
}

#[test]
fn man_pages() {
    let (code, page, stderr) = text_run(&["man"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(page.contains(".TH pairrm 1"), "{}", &page[..page.len().min(300)]);
    assert!(page.contains("best\\-of\\-n") && page.contains("completions"));
    let (code, page, stderr) = text_run(&["man", "rank"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(page.contains(".TH pairrm-rank 1") && page.contains("max\\-candidates"));
    let (code, _, stderr) = text_run(&["man", "nope"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no command \"nope\""), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let (code, stdout, stderr) = text_run(&["man", "--dir", pages.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty());
    for page in ["pairrm.1", "pairrm-compare.1", "pairrm-rank.1", "pairrm-serve.1", "pairrm-man.1"] {
        let text = std::fs::read_to_string(pages.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie"), "{page} is roff");
    }
}

/// Runs `args` and expects a refusal naming "same file" (or `expect`), with `protected` unchanged.
fn refused(args: &[&str], stdin: Option<&Path>, expect: &str, protected: &Path) {
    let before = std::fs::read(protected).unwrap();
    let mut cmd = command(args);
    if let Some(path) = stdin {
        cmd.stdin(std::fs::File::open(path).unwrap());
    } else {
        cmd.stdin(Stdio::null());
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(expect), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read(protected).unwrap(), before, "{args:?} changed {}", protected.display());
}

/// `-i x -o x` (also through a symlink, a hard link, or stdin) is refused and x stays intact; so
/// are report files that are an input, or both one file.
#[test]
fn an_output_that_is_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.jsonl");
    std::fs::write(&x, rank_lines(3)).unwrap();
    let link = dir.path().join("link.jsonl");
    let hard = dir.path().join("hard.jsonl");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&x, &link).unwrap();
    #[cfg(not(unix))]
    std::fs::copy(&x, &link).unwrap();
    std::fs::hard_link(&x, &hard).unwrap();
    let model = tiny_model();
    let s = |p: &PathBuf| p.display().to_string();
    for cmd in ["rank", "encode", "compare"] {
        refused(&[cmd, "--model", &model, "-i", &s(&x), "-o", &s(&x)], None, "same file", &x);
    }
    #[cfg(unix)]
    {
        refused(&["rank", "--model", &model, "-i", &s(&x), "-o", &s(&link)], None, "same file", &x);
        refused(&["rank", "--model", &model, "-i", &s(&link), "-o", &s(&x)], None, "same file", &x);
    }
    refused(&["rank", "--model", &model, "-i", &s(&x), "-o", &s(&hard)], None, "same file", &x);
    refused(&["rank", "--model", &model, "-o", &s(&x)], Some(&x), "stdin reads from", &x);
    let (xs, hards) = (s(&x), s(&hard));
    let gen = ["--generator", "http://127.0.0.1:9", "--generator-model", "m"];
    refused(&[&["best-of-n", "--model", &model, "-i", &xs, "-o", &hards][..], &gen].concat(), None, "same file", &x);

    let pairs = dir.path().join("pairs.jsonl");
    std::fs::copy(fixture("eval/pairs.jsonl"), &pairs).unwrap();
    let eval = ["eval", "--model", &model, "--format", "jsonl", "--data", &s(&pairs)];
    refused(&[&eval[..], &["--rows", &s(&pairs)]].concat(), None, "same file", &pairs);
    let svg = s(&dir.path().join("a.svg"));
    refused(&[&eval[..], &["--rows", &svg, "--plot", &svg]].concat(), None, "same file", &pairs);
    let base = dir.path().join("base.jsonl");
    std::fs::copy(fixture("eval/winrate/baseline.jsonl"), &base).unwrap();
    let outputs = fixture("eval/winrate/model_outputs.json");
    refused(
        &["winrate", "--model", &model, "--outputs", &outputs, "--baseline", &s(&base), "--plot", &s(&base)],
        None,
        "same file",
        &base,
    );
    assert!(!dir.path().join("a.svg").exists());
    // `pairrm label` and `pairrm label merge` (the output through a hard link of the input).
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(&rows, "{\"prompt\": \"p\", \"candidates\": [\"a\", \"b\"]}\n").unwrap();
    let rows_hard = dir.path().join("rows-hard.jsonl");
    std::fs::hard_link(&rows, &rows_hard).unwrap();
    refused(&["label", "--model", &model, "--input", &s(&rows), "--output", &s(&rows_hard)], None, "same file", &rows);
    refused(&["label", "merge", "--output", &s(&rows_hard), &s(&rows)], None, "same file", &rows);
}

/// Stdout appended to the input (`-i x >> x`) would read its own results back: refused.
#[cfg(unix)]
#[test]
fn stdout_into_the_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.jsonl");
    std::fs::write(&x, rank_lines(2)).unwrap();
    let before = std::fs::read(&x).unwrap();
    let append = std::fs::OpenOptions::new().append(true).open(&x).unwrap();
    let out = command(&["rank", "--model", &tiny_model(), "-i", x.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(append)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdout is redirected to --input"));
    assert_eq!(std::fs::read(&x).unwrap(), before);
}

/// A job interrupted by Ctrl-C (SIGINT) or SIGTERM leaves the old output as it was and no
/// temporary file; a job that ends replaces it.
#[cfg(unix)]
#[test]
fn an_interrupted_job_leaves_the_old_output() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.jsonl");
    std::fs::write(&out_path, "OLD\n").unwrap();
    let model = tiny_model();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let mut cmd = command(&["rank", "--model", &model, "-o", out_path.to_str().unwrap()]);
        // As a terminal's Ctrl-C would find it, even when these tests run as a background job
        // (which starts with SIGINT ignored).
        // SAFETY: `signal` is async-signal-safe, as required between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // Several chunks are scored and written (to the temporary file); stdin stays open.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(rank_lines(200).as_bytes()).unwrap();
        stdin.flush().unwrap();
        let start = Instant::now();
        let written = || {
            std::fs::read_to_string(&out_path).unwrap() != "OLD\n"
                || std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap()).any(|e| {
                    e.file_name().to_string_lossy().starts_with(".out.jsonl.") && e.metadata().unwrap().len() > 0
                })
        };
        while !written() {
            assert!(start.elapsed() < common::DEADLINE, "no results were written");
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "OLD\n", "results go to a temporary file first");
        // SAFETY: a plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        let status = child.wait().unwrap();
        drop(stdin);
        assert_eq!(status.signal(), Some(signal), "ends as the signal would: {status:?}");
        assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "OLD\n");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["out.jsonl"], "the temporary file is removed");
    }

    // Run to its end, the job replaces the file.
    let out = pairrm(&["rank", "--model", &model, "-o", out_path.to_str().unwrap()], &rank_lines(2));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&out_path).unwrap().lines().count(), 2);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// `models/nope` with a local `models/` directory is a missing path, not a hub repo to look up.
#[test]
fn an_org_name_path_under_a_local_directory_is_not_a_hub_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("models")).unwrap();
    let run = |model: &str| {
        let mut cmd = command(&["rank", "--model", model]);
        cmd.current_dir(dir.path()).env("HF_HUB_CACHE", dir.path().join("cache")).env("HF_HUB_OFFLINE", "1");
        finish(spawn(cmd, ""))
    };
    let out = run("models/nope");
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("no such directory") && out.stderr.contains("`models` is a local directory"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("Hugging Face cache"), "{}", out.stderr);
    // Without a local `models/`, `org/name` is a hub id.
    let out = run("elsewhere/nope");
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("Hugging Face cache"), "{}", out.stderr);
}

/// A rank line with more candidates than `--max-candidates` (default 100) gets an error record
/// naming the count and the limit, before any pass is run; the other lines are scored.
#[test]
fn max_candidates() {
    let model = tiny_model();
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let input = jsonl(&[json!({"source": "q", "candidates": many}), json!({"source": "q", "candidates": ["a", "b"]})]);
    let out = pairrm(&["rank", "--model", &model], &input);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let e = out.lines[0]["error"].as_str().unwrap();
    assert!(e.starts_with("line 1: ") && e.contains("101 candidates") && e.contains("limit of 100"), "{e}");
    assert!(e.contains("--max-candidates"), "{e}");
    assert!(out.lines[1]["ranks"].is_array());

    let four = jsonl(&[json!({"source": "q", "candidates": ["a", "b", "c", "d"]})]);
    let out = pairrm(&["rank", "--model", &model, "--max-candidates", "3", "--strategy", "bubble"], &four);
    assert!(out.lines[0]["error"].as_str().unwrap().contains("4 candidates, more than the limit of 3"));
    let out = pairrm(&["rank", "--model", &model, "--max-candidates", "4"], &four);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = pairrm(&["rank", "--model", &model, "--max-candidates", "0"], &four);
    assert_eq!(out.code, Some(0), "0: no limit");

    // best-of-n: n is every line's candidate count, so too many is refused before any request.
    let out = pairrm(
        &["best-of-n", "--model", &model, "--generator", "http://127.0.0.1:9", "--generator-model", "m", "--n", "101"],
        "",
    );
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("--n 101") && out.stderr.contains("--max-candidates 100"), "{}", out.stderr);
}
