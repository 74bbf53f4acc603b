//! `pairrm download`, `pairrm models` and `--model <hub id>` as a user runs them, against a fake
//! hub on 127.0.0.1 reached through `HF_ENDPOINT`, with the cache in a temporary `HF_HUB_CACHE`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fake_hub::{FakeFile, FakeHub};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

fn fixture(dir: &str, file: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(dir).join(file)).unwrap()
}

/// A hub with the tiny original checkpoint as `test/pairrm` and its backbone as `test/backbone`.
fn hub() -> FakeHub {
    let hub = FakeHub::start();
    let mut config: Value = serde_json::from_slice(&fixture("tiny-original", "config.json")).unwrap();
    config["model_name"] = "test/backbone".into();
    hub.commit(
        "test/pairrm",
        &["main"],
        vec![
            FakeFile::git("config.json", serde_json::to_vec(&config).unwrap()),
            FakeFile::lfs("model.safetensors", fixture("tiny-original", "model.safetensors")),
        ],
    );
    hub.commit(
        "test/backbone",
        &["main"],
        vec![
            FakeFile::git("config.json", fixture("tiny-backbone", "config.json")),
            FakeFile::git("tokenizer_config.json", fixture("tiny-backbone", "tokenizer_config.json")),
            FakeFile::lfs("spm.model", fixture("tiny-backbone", "spm.model")),
            FakeFile::lfs("pytorch_model.bin", vec![1u8; 20_000]),
        ],
    );
    hub
}

/// Runs `pairrm ARGS` with the hub and cache in its environment (and nothing else of the hub
/// variables or proxies of this process), `stdin` as input.
fn pairrm(hub: &FakeHub, cache: &Path, extra_env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pairrm"));
    for var in [
        "HF_HOME",
        "HF_TOKEN",
        "HF_TOKEN_PATH",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HUGGINGFACE_HUB_CACHE",
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "PAIRRM_MODEL",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HF_ENDPOINT", hub.url()).env("HF_HUB_CACHE", cache).env("HOME", cache.join("home"));
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}\n{}", o.status, String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

const PAIR: &str = "{\"source\": \"Say hi.\", \"a\": \"Hi there!\", \"b\": \"No.\"}\n";

#[test]
fn download_then_compare_offline_then_list() {
    let hub = hub();
    let cache = tempfile::tempdir().unwrap();
    let out = stdout(&pairrm(&hub, cache.path(), &[], &["download", "test/pairrm"], ""));
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["repo"], "test/pairrm");
    assert_eq!(lines[0]["revision"], "main");
    assert_eq!(lines[0]["files"], serde_json::json!(["config.json", "model.safetensors"]));
    assert_eq!(lines[1]["repo"], "test/backbone");
    assert_eq!(lines[1]["files"], serde_json::json!(["config.json", "spm.model", "tokenizer_config.json"]));
    for line in &lines {
        let path = Path::new(line["path"].as_str().unwrap());
        assert!(path.starts_with(cache.path()) && path.is_dir(), "{line}");
        assert!(path.ends_with(line["commit"].as_str().unwrap()));
    }
    assert!(!hub.requests().iter().any(|r| r.method == "GET" && r.path.contains("pytorch_model.bin")));

    // Offline, the hub id works like the local checkpoint, and asks nothing of the hub.
    hub.clear_requests();
    let offline =
        stdout(&pairrm(&hub, cache.path(), &[("HF_HUB_OFFLINE", "1")], &["compare", "-m", "test/pairrm"], PAIR));
    let local_model = fixtures().join("tiny-original");
    let local = stdout(&pairrm(&hub, cache.path(), &[], &["compare", "-m", local_model.to_str().unwrap()], PAIR));
    assert_eq!(offline, local);
    // Online too, the cache answers: still no request.
    stdout(&pairrm(&hub, cache.path(), &[], &["compare", "-m", "test/pairrm"], PAIR));
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());

    let table = stdout(&pairrm(&hub, cache.path(), &[], &["models"], ""));
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("REPO") && rows[0].contains("COMMIT"), "{table}");
    assert!(rows[1].starts_with("test/backbone") && rows[1].contains("main") && rows[1].ends_with('3'), "{table}");
    assert!(rows[2].starts_with("test/pairrm") && rows[2].ends_with('2'), "{table}");
    assert!(table.contains("2 repos, ") && table.contains(cache.path().to_str().unwrap()), "{table}");

    let json = stdout(&pairrm(&hub, cache.path(), &[], &["models", "--json"], ""));
    let repos: Vec<Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(repos.len(), 2);
    assert_eq!(repos[1]["repo"], "test/pairrm");
    assert_eq!(repos[1]["refs"]["main"], lines[0]["commit"]);
    let files = &repos[1]["revisions"][0]["files"];
    assert_eq!(files[1]["name"], "model.safetensors");
    assert_eq!(files[1]["size"], fixture("tiny-original", "model.safetensors").len());
}

#[test]
fn download_repairs_a_corrupt_cache_and_force_fetches_everything_again() {
    let hub = hub();
    let cache = tempfile::tempdir().unwrap();
    let out = stdout(&pairrm(&hub, cache.path(), &[], &["download", "test/pairrm"], ""));
    let snapshot =
        PathBuf::from(serde_json::from_str::<Value>(out.lines().next().unwrap()).unwrap()["path"].as_str().unwrap());
    let weights = fixture("tiny-original", "model.safetensors");
    std::fs::write(snapshot.join("model.safetensors"), &weights[..weights.len() - 1]).unwrap();
    let local_model = fixtures().join("tiny-original");
    let local = stdout(&pairrm(&hub, cache.path(), &[], &["compare", "-m", local_model.to_str().unwrap()], PAIR));

    // `download` checks what the cache holds and fetches the bad file again.
    hub.clear_requests();
    assert_eq!(stdout(&pairrm(&hub, cache.path(), &[], &["download", "test/pairrm"], "")), out);
    assert_eq!(std::fs::read(snapshot.join("model.safetensors")).unwrap(), weights);
    let gets: Vec<String> = hub
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.split('?').next().unwrap().to_string())
        .collect();
    assert!(gets.len() == 1 && gets[0].ends_with("/model.safetensors"), "{gets:?}");
    let offline = [("HF_HUB_OFFLINE", "1")];
    assert_eq!(stdout(&pairrm(&hub, cache.path(), &offline, &["compare", "-m", "test/pairrm"], PAIR)), local);

    // `--force` fetches every file the model needs again.
    hub.clear_requests();
    assert_eq!(stdout(&pairrm(&hub, cache.path(), &[], &["download", "test/pairrm", "--force"], "")), out);
    let gets = hub.requests().iter().filter(|r| r.method == "GET").count();
    assert_eq!(gets, 5, "{:?}", hub.requests());
}

#[test]
fn a_hub_model_is_downloaded_on_first_use() {
    let hub = hub();
    let cache = tempfile::tempdir().unwrap();
    let first = stdout(&pairrm(&hub, cache.path(), &[], &["compare", "-m", "test/pairrm"], PAIR));
    let local_model = fixtures().join("tiny-original");
    let local = stdout(&pairrm(&hub, cache.path(), &[], &["compare", "-m", local_model.to_str().unwrap()], PAIR));
    assert_eq!(first, local);
}

#[test]
fn errors_exit_2_with_a_message() {
    let hub = hub();
    let cache = tempfile::tempdir().unwrap();
    let o = pairrm(&hub, cache.path(), &[], &["download", "test/absent"], "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("downloading test/absent") && err.contains("repository test/absent not found"), "{err}");
    assert!(o.stdout.is_empty());

    let o = pairrm(&hub, cache.path(), &[("HF_HUB_OFFLINE", "1")], &["download", "test/pairrm"], "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("HF_HUB_OFFLINE is set") && err.contains("not in the Hugging Face cache"), "{err}");

    let o = pairrm(&hub, cache.path(), &[], &["download", "test/pairrm", "--revision", "v9"], "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("revision \"v9\" not found in test/pairrm"), "{err}");

    let empty = stdout(&pairrm(&hub, cache.path(), &[], &["models"], ""));
    assert!(empty.starts_with("no models in the cache at"), "{empty}");
}
