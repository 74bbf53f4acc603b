//! Downloading models from a hub into the Hugging Face cache, against a fake hub on 127.0.0.1
//! (crate `fake-hub`) that serves the committed tiny checkpoints with the hub's URL layout and
//! headers. Settings (endpoint, cache, token, offline) are passed explicitly: no test touches the
//! process environment.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fake_hub::{sha256_hex, FakeFile, FakeHub, Fault, Gate, Logged};
use pairrm::checkpoint::hub::{FileRequest, HubCache, SnapshotSource};
use pairrm::checkpoint::{Checkpoint, Layout, OpenOptions};
use pairrm::judge::Pair;
use pairrm::{CallOptions, Engine, EngineOptions, Error};
use pairrm_hub::{DownloadProgress, FileProgress, HubDownloader, HubSettings};

const RANKER: &str = "test/pairrm";
const BACKBONE: &str = "test/backbone";
const HF: &str = "test/pairrm-hf";

fn fixture(dir: &str, file: &str) -> Vec<u8> {
    std::fs::read(common::fixtures().join(dir).join(file)).unwrap()
}

/// The tiny original checkpoint with `model_name` pointing at the backbone repo.
fn ranker_files() -> Vec<FakeFile> {
    let mut config: serde_json::Value = serde_json::from_slice(&fixture("tiny-original", "config.json")).unwrap();
    config["model_name"] = BACKBONE.into();
    vec![
        FakeFile::git("config.json", serde_json::to_vec_pretty(&config).unwrap()),
        FakeFile::git("README.md", "# tiny PairRM\n"),
        FakeFile::lfs("model.safetensors", fixture("tiny-original", "model.safetensors")),
    ]
}

/// The tiny backbone, with weights that must never be downloaded.
fn backbone_files() -> Vec<FakeFile> {
    vec![
        FakeFile::git("config.json", fixture("tiny-backbone", "config.json")),
        FakeFile::git("tokenizer_config.json", fixture("tiny-backbone", "tokenizer_config.json")),
        FakeFile::lfs("spm.model", fixture("tiny-backbone", "spm.model")),
        FakeFile::lfs("pytorch_model.bin", vec![7u8; 50_000]),
        FakeFile::lfs("tf_model.h5", vec![8u8; 1_000]),
    ]
}

fn hf_files() -> Vec<FakeFile> {
    let mut files: Vec<FakeFile> =
        ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
            .iter()
            .map(|f| FakeFile::git(f, fixture("tiny-hf", f)))
            .collect();
    files.push(FakeFile::lfs("model.safetensors", fixture("tiny-hf", "model.safetensors")));
    files
}

/// A hub serving the original checkpoint, its backbone and the PairRM-hf checkpoint.
struct Models {
    hub: FakeHub,
    ranker: String,
    backbone: String,
}

fn hub_with_models() -> Models {
    let hub = FakeHub::start();
    let ranker = hub.commit(RANKER, &["main"], ranker_files());
    let backbone = hub.commit(BACKBONE, &["main"], backbone_files());
    hub.commit(HF, &["main"], hf_files());
    Models { hub, ranker, backbone }
}

fn settings(hub: &FakeHub, cache: &Path) -> HubSettings {
    HubSettings { endpoint: hub.url().to_string(), retries: 0, ..HubSettings::new(cache) }
}

fn downloader(hub: &FakeHub, cache: &Path) -> HubDownloader {
    HubDownloader::new(settings(hub, cache))
}

fn offline(cache: &Path) -> HubDownloader {
    HubDownloader::new(HubSettings { offline: true, endpoint: "http://127.0.0.1:9".into(), ..HubSettings::new(cache) })
}

fn open(model: &str, source: &dyn SnapshotSource) -> pairrm::Result<Checkpoint> {
    Checkpoint::open_with(model, &OpenOptions::default(), source)
}

fn gets(log: &[Logged]) -> Vec<String> {
    log.iter().filter(|r| r.method == "GET").map(|r| r.path.split('?').next().unwrap().to_string()).collect()
}

fn logit(checkpoint: Checkpoint) -> f32 {
    let engine = Engine::from_checkpoint(checkpoint, EngineOptions { threads: 1, ..Default::default() }).unwrap();
    let pair = Pair { source: "Say hi.".into(), left: "Hi there!".into(), right: "No.".into() };
    engine.logits_with(&[pair], &CallOptions::default()).remove(0).unwrap()
}

fn local_logit(dir: &str) -> f32 {
    let local = common::fixtures().join(dir);
    logit(Checkpoint::open(local.to_str().unwrap(), &OpenOptions::default()).unwrap())
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn err<T>(r: pairrm::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn original_layout_first_run_downloads_second_run_is_silent_offline_works() {
    let Models { hub, ranker: commit, backbone: bb_commit } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();

    let checkpoint = open(RANKER, &downloader(&hub, cache.path())).unwrap();
    assert_eq!(checkpoint.layout, Layout::Original);
    assert_eq!(logit(checkpoint), local_logit("tiny-original"), "same model, same bits");

    // Only what the model needs was fetched: never the backbone's weights. Plain files come
    // from the commit the hub named first; LFS files from the CDN.
    let weights_sha = sha256_hex(&fixture("tiny-original", "model.safetensors"));
    let spm_sha = sha256_hex(&fixture("tiny-backbone", "spm.model"));
    let mut fetched = gets(&hub.requests());
    fetched.sort();
    let mut expected = vec![
        format!("/cdn/{weights_sha}/model.safetensors"),
        format!("/cdn/{spm_sha}/spm.model"),
        format!("/{BACKBONE}/resolve/{bb_commit}/config.json"),
        format!("/{BACKBONE}/resolve/{bb_commit}/tokenizer_config.json"),
        format!("/{RANKER}/resolve/{commit}/config.json"),
    ];
    expected.sort();
    assert_eq!(fetched, expected);
    assert!(hub.requests().iter().all(|r| !r.path.contains("pytorch_model.bin") || r.method == "HEAD"));

    // The layout huggingface_hub writes.
    let repo = cache.path().join("models--test--pairrm");
    assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), commit);
    let names = tree(&repo);
    assert!(names.contains(&format!("blobs/{weights_sha}")), "{names:?}");
    assert!(names.contains(&format!("snapshots/{commit}/model.safetensors")), "{names:?}");
    assert!(names.contains(&format!("snapshots/{commit}/config.json")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("README") || n.ends_with(".incomplete")), "{names:?}");
    #[cfg(unix)]
    assert_eq!(
        std::fs::read_link(repo.join("snapshots").join(&commit).join("model.safetensors")).unwrap(),
        Path::new("../../blobs").join(&weights_sha)
    );
    let backbone = tree(&cache.path().join("models--test--backbone"));
    for missing in ["tokenizer.json", "special_tokens_map.json", "added_tokens.json"] {
        assert!(backbone.contains(&format!(".no_exist/{bb_commit}/{missing}")), "{backbone:?}");
    }
    assert!(!backbone.iter().any(|n| n.contains("pytorch_model") || n.contains("tf_model")), "{backbone:?}");
    assert!(cache.path().join(".locks/models--test--pairrm").join(format!("{weights_sha}.lock")).is_file());

    // Second run: everything comes from the cache, not one request.
    hub.clear_requests();
    let again = open(RANKER, &downloader(&hub, cache.path())).unwrap();
    assert_eq!(logit(again), local_logit("tiny-original"));
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());

    // Offline, and with the plain cache reader.
    let offline_checkpoint = open(RANKER, &offline(cache.path())).unwrap();
    assert_eq!(logit(offline_checkpoint), local_logit("tiny-original"));
    open(RANKER, &HubCache::new(cache.path())).unwrap();
    assert!(hub.requests().is_empty());
}

#[test]
fn hf_layout_downloads_config_weights_and_tokenizer() {
    let Models { hub, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    let checkpoint = open(HF, &downloader(&hub, cache.path())).unwrap();
    assert_eq!(checkpoint.layout, Layout::Hf);
    assert_eq!(logit(checkpoint), local_logit("tiny-hf"));
    let snapshot = HubCache::new(cache.path()).snapshot_dir(HF, "main").unwrap();
    let mut files = tree(&snapshot);
    files.sort();
    assert_eq!(
        files,
        ["config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    );
    hub.clear_requests();
    open(HF, &downloader(&hub, cache.path())).unwrap();
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
}

#[test]
fn offline_without_the_files_names_what_is_missing() {
    let cache = tempfile::tempdir().unwrap();
    let e = open(RANKER, &offline(cache.path())).err().unwrap();
    assert!(matches!(&e, Error::NotInCache { repo, .. } if repo == RANKER), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("config.json of test/pairrm@main is not in the Hugging Face cache"), "{msg}");
    assert!(msg.contains("pairrm download test/pairrm"), "{msg}");
}

#[test]
fn missing_files_and_repos_give_clear_errors_and_a_clean_cache() {
    let hub = FakeHub::start();
    let commit = hub.commit("test/no-weights", &["main"], vec![ranker_files().remove(0)]);
    hub.commit(BACKBONE, &["main"], backbone_files());
    let cache = tempfile::tempdir().unwrap();
    let msg = err(open("test/no-weights", &downloader(&hub, cache.path())));
    assert!(
        msg.contains("pytorch_model.bin or model.safetensors not found in test/no-weights at revision main")
            && msg.contains(&commit)
            && msg.contains(hub.url()),
        "{msg}"
    );
    let names = tree(&cache.path().join("models--test--no-weights"));
    assert_eq!(names.len(), 5, "{names:?}");
    for name in [
        format!(".no_exist/{commit}/model.safetensors"),
        format!(".no_exist/{commit}/pytorch_model.bin"),
        "refs/main".to_string(),
        format!("snapshots/{commit}/config.json"),
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert_eq!(names.iter().filter(|n| n.starts_with("blobs/")).count(), 1, "only config.json was stored");

    let dl = downloader(&hub, cache.path());
    let msg = err(dl.download_file("test/absent", "main", "config.json"));
    assert!(msg.contains("repository test/absent not found on") && msg.contains("set HF_TOKEN"), "{msg}");
    let msg = err(dl.download_file(BACKBONE, "v9", "config.json"));
    assert!(msg.contains("revision \"v9\" not found in test/backbone"), "{msg}");
    let msg = err(dl.download_file(BACKBONE, "main", "nope.json"));
    assert!(msg.contains("nope.json not found in test/backbone at revision main"), "{msg}");
    assert!(!cache.path().join("models--test--absent/snapshots").exists());
}

#[test]
fn private_repos_need_the_token_which_is_sent_as_bearer() {
    let Models { hub, .. } = hub_with_models();
    hub.require_token(HF, "hf_secret");
    let cache = tempfile::tempdir().unwrap();
    let msg = err(open(HF, &downloader(&hub, cache.path())));
    assert!(msg.contains("repository test/pairrm-hf not found") && msg.contains("HF_TOKEN"), "{msg}");

    let with_token = HubSettings { token: Some("hf_wrong".into()), ..settings(&hub, cache.path()) };
    let msg = err(open(HF, &HubDownloader::new(with_token)));
    assert!(msg.contains("the token that was sent may lack access"), "{msg}");

    hub.clear_requests();
    let with_token = HubSettings { token: Some("hf_secret".into()), ..settings(&hub, cache.path()) };
    open(HF, &HubDownloader::new(with_token)).unwrap();
    let log = hub.requests();
    assert!(!log.is_empty());
    for r in log.iter().filter(|r| r.path.contains("/resolve/")) {
        assert_eq!(r.header("authorization"), Some("Bearer hf_secret"), "{r:?}");
        assert!(r.header("user-agent").is_some_and(|ua| ua.starts_with("pairrm/")), "{r:?}");
    }
}

#[test]
fn gated_and_renamed_repos() {
    let Models { hub, .. } = hub_with_models();
    hub.gate(HF, "hf_granted");
    let cache = tempfile::tempdir().unwrap();
    let msg = err(open(HF, &downloader(&hub, cache.path())));
    assert!(msg.contains("test/pairrm-hf is gated: accept its conditions at") && msg.contains("(401"), "{msg}");
    let other = HubSettings { token: Some("hf_other".into()), ..settings(&hub, cache.path()) };
    let msg = err(open(HF, &HubDownloader::new(other)));
    assert!(msg.contains("is gated") && msg.contains("(403: Access to this model is restricted)"), "{msg}");
    let granted = HubSettings { token: Some("hf_granted".into()), ..settings(&hub, cache.path()) };
    open(HF, &HubDownloader::new(granted)).unwrap();

    // A renamed repo answers through a relative redirect; the cache keeps the name asked for.
    hub.rename("test/old-name", RANKER);
    let checkpoint = open("test/old-name", &downloader(&hub, cache.path())).unwrap();
    assert_eq!(logit(checkpoint), local_logit("tiny-original"));
    assert!(HubCache::new(cache.path()).snapshot_dir("test/old-name", "main").is_ok());
}

#[test]
fn an_interrupted_download_keeps_its_part_and_the_next_run_resumes_it() {
    let Models { hub, ranker: commit, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    let weights = fixture("tiny-original", "model.safetensors");
    let sha = sha256_hex(&weights);
    hub.fault("model.safetensors", Fault::DropAfter(10_000));

    let msg = err(open(RANKER, &downloader(&hub, cache.path())));
    assert!(
        msg.contains(&format!(
            "download of model.safetensors from test/pairrm broke off at 10000 of {} bytes",
            weights.len()
        )) && msg.contains("the next run resumes it"),
        "{msg}"
    );
    let repo = cache.path().join("models--test--pairrm");
    let partial = repo.join("blobs").join(format!("{sha}.incomplete"));
    assert_eq!(std::fs::read(&partial).unwrap(), weights[..10_000]);
    assert!(!repo.join("blobs").join(&sha).exists());
    assert!(!repo.join("snapshots").join(&commit).join("model.safetensors").exists());
    // A cache reader sees the file as missing, not as a broken file.
    let e = open(RANKER, &HubCache::new(cache.path())).err().unwrap();
    assert!(e.to_string().contains("pytorch_model.bin or model.safetensors of test/pairrm@main"), "{e}");

    hub.clear_requests();
    let checkpoint = open(RANKER, &downloader(&hub, cache.path())).unwrap();
    assert_eq!(logit(checkpoint), local_logit("tiny-original"));
    let resumed: Vec<Logged> = hub.requests().into_iter().filter(|r| r.path.starts_with("/cdn/")).collect();
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0].header("range"), Some("bytes=10000-"));
    assert_eq!(std::fs::read(repo.join("blobs").join(&sha)).unwrap(), weights);
    assert!(!partial.exists());
}

#[test]
fn a_broken_connection_is_retried_within_the_run() {
    let Models { hub, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    hub.fault("model.safetensors", Fault::DropAfter(5_000));
    hub.fault("model.safetensors", Fault::DropAfter(5_000));
    let dl = HubDownloader::new(HubSettings { retries: 1, ..settings(&hub, cache.path()) });
    assert_eq!(logit(open(RANKER, &dl).unwrap()), local_logit("tiny-original"));
    let ranges: Vec<Option<String>> = hub
        .requests()
        .iter()
        .filter(|r| r.path.contains("model.safetensors") && r.path.starts_with("/cdn/"))
        .map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges, [None, Some("bytes=5000-".into()), Some("bytes=10000-".into())]);
}

#[test]
fn a_corrupt_download_is_removed_and_downloaded_again() {
    let Models { hub, ranker: commit, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    hub.fault("model.safetensors", Fault::Corrupt);
    let msg = err(open(RANKER, &downloader(&hub, cache.path())));
    assert!(msg.contains("test/pairrm/model.safetensors: checksum mismatch") && msg.contains("removed"), "{msg}");
    let blobs = tree(&cache.path().join("models--test--pairrm/blobs"));
    assert_eq!(blobs.len(), 1, "only config.json's blob: {blobs:?}");
    assert!(!cache.path().join("models--test--pairrm/snapshots").join(&commit).join("model.safetensors").exists());
    assert_eq!(logit(open(RANKER, &downloader(&hub, cache.path())).unwrap()), local_logit("tiny-original"));
}

/// The requests since the last clear that fetched file contents.
fn fetched(hub: &FakeHub) -> Vec<String> {
    let mut paths = gets(&hub.requests());
    paths.sort();
    paths
}

#[test]
fn a_corrupt_cached_blob_is_checked_and_fetched_again_on_refresh() {
    let Models { hub, ranker: commit, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    open(RANKER, &downloader(&hub, cache.path())).unwrap();
    let snapshot = cache.path().join("models--test--pairrm/snapshots").join(&commit);
    let weights = fixture("tiny-original", "model.safetensors");
    let config = std::fs::read(snapshot.join("config.json")).unwrap();
    // Bit rot in the weights (same size, one byte changed) and a truncated config (written
    // through the snapshot entries, i.e. into the blobs).
    let mut rotten = weights.clone();
    *rotten.last_mut().unwrap() ^= 0x55;
    std::fs::write(snapshot.join("model.safetensors"), &rotten).unwrap();
    std::fs::write(snapshot.join("config.json"), &config[..config.len() / 2]).unwrap();

    // A load trusts the cache and asks nothing; a refresh (`pairrm download`) checks every
    // file against the hub's size and sha256 and fetches the bad ones again.
    hub.clear_requests();
    open(RANKER, &downloader(&hub, cache.path())).err();
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
    let repaired = open(RANKER, &downloader(&hub, cache.path()).refresh(true)).unwrap();
    assert_eq!(logit(repaired), local_logit("tiny-original"));
    assert_eq!(std::fs::read(snapshot.join("model.safetensors")).unwrap(), weights);
    assert_eq!(std::fs::read(snapshot.join("config.json")).unwrap(), config);
    let weights_sha = sha256_hex(&weights);
    assert_eq!(
        fetched(&hub),
        [format!("/cdn/{weights_sha}/model.safetensors"), format!("/{RANKER}/resolve/{commit}/config.json")]
    );
    let names = tree(&cache.path().join("models--test--pairrm"));
    assert!(!names.iter().any(|n| n.ends_with(".incomplete") || n.contains(".tmp-")), "{names:?}");

    // Sound files are checked, not fetched.
    hub.clear_requests();
    open(RANKER, &downloader(&hub, cache.path()).refresh(true)).unwrap();
    assert!(fetched(&hub).is_empty(), "{:?}", hub.requests());

    // At a commit, a refresh asks nothing of the hub for sound files (a commit never changes),
    // but still checks LFS files against their names, and fetches a bad one again.
    let at_commit = |hub: &FakeHub| {
        let dl = downloader(hub, cache.path()).refresh(true);
        std::fs::read(dl.download_file(RANKER, &commit, "model.safetensors").unwrap()).unwrap()
    };
    hub.clear_requests();
    assert_eq!(at_commit(&hub), weights);
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
    std::fs::write(snapshot.join("model.safetensors"), &rotten).unwrap();
    assert_eq!(at_commit(&hub), weights);
    assert_eq!(fetched(&hub), [format!("/cdn/{weights_sha}/model.safetensors")]);
}

#[test]
fn a_blob_that_stays_bad_is_never_left_in_the_cache() {
    let Models { hub, ranker: commit, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    open(RANKER, &downloader(&hub, cache.path())).unwrap();
    let snapshot = cache.path().join("models--test--pairrm/snapshots").join(&commit);
    std::fs::write(snapshot.join("model.safetensors"), b"not the weights").unwrap();
    // The hub cannot deliver it now: the bad blob is removed all the same, and the cache says the
    // file is missing instead of handing out a corrupt one.
    hub.fault("model.safetensors", Fault::Corrupt);
    let msg = err(open(RANKER, &downloader(&hub, cache.path()).refresh(true)));
    assert!(msg.contains("checksum mismatch"), "{msg}");
    let blobs = tree(&cache.path().join("models--test--pairrm/blobs"));
    assert_eq!(blobs.len(), 1, "only config.json's blob: {blobs:?}");
    let msg = err(open(RANKER, &HubCache::new(cache.path())));
    assert!(msg.contains("model.safetensors") && msg.contains("not in the Hugging Face cache"), "{msg}");
}

#[test]
fn force_fetches_every_file_again() {
    let Models { hub, ranker: commit, backbone: bb_commit } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    open(RANKER, &downloader(&hub, cache.path())).unwrap();
    let first = fetched(&hub);
    hub.clear_requests();
    let forced = open(RANKER, &downloader(&hub, cache.path()).force(true)).unwrap();
    assert_eq!(logit(forced), local_logit("tiny-original"));
    assert_eq!(fetched(&hub), first);
    assert_eq!(first.len(), 5, "{first:?}");
    for (repo, c) in [("models--test--pairrm", &commit), ("models--test--backbone", &bb_commit)] {
        let names = tree(&cache.path().join(repo));
        assert!(!names.iter().any(|n| n.ends_with(".incomplete") || n.contains(".tmp-")), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with(&format!("snapshots/{c}/"))), "{names:?}");
    }
}

#[test]
fn a_server_that_ignores_the_range_gets_a_fresh_download() {
    let Models { hub, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    hub.fault("model.safetensors", Fault::DropAfter(3_000));
    err(open(RANKER, &downloader(&hub, cache.path())));
    hub.fault("model.safetensors", Fault::IgnoreRange);
    let recorder = Recorder::default();
    let dl = downloader(&hub, cache.path()).with_progress(Arc::new(recorder.clone()));
    assert_eq!(logit(open(RANKER, &dl).unwrap()), local_logit("tiny-original"));
    let size = fixture("tiny-original", "model.safetensors").len();
    assert_eq!(
        *recorder.events.lock().unwrap(),
        [
            format!("start test/pairrm model.safetensors 3000/{size}"),
            "restart model.safetensors".to_string(),
            "finish model.safetensors".to_string()
        ]
    );
}

#[test]
fn a_partial_file_longer_than_the_file_is_discarded() {
    let Models { hub, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    let weights = fixture("tiny-original", "model.safetensors");
    let blobs = cache.path().join("models--test--pairrm/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(format!("{}.incomplete", sha256_hex(&weights))), vec![0u8; weights.len() + 10]).unwrap();
    assert_eq!(logit(open(RANKER, &downloader(&hub, cache.path())).unwrap()), local_logit("tiny-original"));
}

/// Records what a downloader reports; when it is told to wait, opens `gate`.
#[derive(Default)]
struct Events {
    events: Mutex<Vec<String>>,
    gate: Mutex<Option<Arc<Gate>>>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Events>);

impl std::ops::Deref for Recorder {
    type Target = Events;
    fn deref(&self) -> &Events {
        &self.0
    }
}

struct FileRecorder(Recorder, String);

impl DownloadProgress for Recorder {
    fn waiting(&self, repo: &str, file: &str) {
        self.events.lock().unwrap().push(format!("wait {repo} {file}"));
        if let Some(g) = self.gate.lock().unwrap().take() {
            g.release();
        }
    }

    fn start(&self, repo: &str, file: &str, total: u64, done: u64) -> Box<dyn FileProgress> {
        self.events.lock().unwrap().push(format!("start {repo} {file} {done}/{total}"));
        Box::new(FileRecorder(self.clone(), file.to_string()))
    }
}

impl FileProgress for FileRecorder {
    fn advance(&mut self, bytes: u64) {
        assert!(bytes > 0);
    }

    fn restart(&mut self) {
        self.0.events.lock().unwrap().push(format!("restart {}", self.1));
    }

    fn finish(&mut self) {
        self.0.events.lock().unwrap().push(format!("finish {}", self.1));
    }
}

#[test]
fn two_downloads_of_the_same_file_at_once_share_one_transfer() {
    let Models { hub, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    let weights = fixture("tiny-original", "model.safetensors");
    // The first download stops half-way until the second one is seen waiting for the lock.
    let paused = Gate::new();
    hub.fault("model.safetensors", Fault::Pause(weights.len() / 2, paused.clone()));
    let recorder = Recorder::default();
    *recorder.gate.lock().unwrap() = Some(paused.clone());
    let request = FileRequest::required(&["model.safetensors"]);

    let paths: Vec<PathBuf> = std::thread::scope(|s| {
        let first = s.spawn(|| downloader(&hub, cache.path()).snapshot(RANKER, "main", &request).unwrap());
        paused.wait_started();
        let second = s.spawn(|| {
            let dl = downloader(&hub, cache.path()).with_progress(Arc::new(recorder.clone()));
            dl.snapshot(RANKER, "main", &request).unwrap()
        });
        vec![first.join().unwrap(), second.join().unwrap()]
    });
    assert_eq!(paths[0], paths[1]);
    assert_eq!(std::fs::read(paths[0].join("model.safetensors")).unwrap(), weights);
    let transfers = hub.requests().iter().filter(|r| r.path.starts_with("/cdn/")).count();
    assert_eq!(transfers, 1, "the second download waited and used the first one's file");
    assert_eq!(*recorder.events.lock().unwrap(), ["wait test/pairrm model.safetensors"]);
    let blobs = tree(&cache.path().join("models--test--pairrm/blobs"));
    assert!(blobs.iter().all(|b| !b.ends_with(".incomplete")), "{blobs:?}");
}

#[test]
fn progress_is_reported_per_file() {
    let Models { hub, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    let recorder = Recorder::default();
    let dl = downloader(&hub, cache.path()).with_progress(Arc::new(recorder.clone()));
    dl.download_file(RANKER, "main", "model.safetensors").unwrap();
    let size = fixture("tiny-original", "model.safetensors").len();
    assert_eq!(
        *recorder.events.lock().unwrap(),
        [format!("start test/pairrm model.safetensors 0/{size}"), "finish model.safetensors".to_string()]
    );
}

#[test]
fn revisions_branches_tags_commits_and_refresh() {
    let hub = FakeHub::start();
    let v1 = hub.commit("test/rev", &["main", "v1"], vec![FakeFile::git("config.json", "{\"v\": 1}")]);
    let pr = hub.commit("test/rev", &["refs/pr/1"], vec![FakeFile::git("config.json", "{\"v\": \"pr\"}")]);
    let cache = tempfile::tempdir().unwrap();
    let read = |dl: &HubDownloader, rev: &str| {
        std::fs::read_to_string(dl.download_file("test/rev", rev, "config.json").unwrap()).unwrap()
    };

    let dl = downloader(&hub, cache.path());
    assert_eq!(read(&dl, "main"), "{\"v\": 1}");
    assert_eq!(read(&dl, "refs/pr/1"), "{\"v\": \"pr\"}");
    assert!(hub.requests().iter().any(|r| r.path == "/test/rev/resolve/refs%2Fpr%2F1/config.json"));
    let repo = cache.path().join("models--test--rev");
    assert_eq!(std::fs::read_to_string(repo.join("refs/refs/pr/1")).unwrap(), pr);

    // A new commit on main: a plain downloader keeps using the cached one, without a request...
    let v2 = hub.commit("test/rev", &["main"], vec![FakeFile::git("config.json", "{\"v\": 2}")]);
    hub.clear_requests();
    assert_eq!(read(&downloader(&hub, cache.path()), "main"), "{\"v\": 1}");
    assert!(hub.requests().is_empty());
    // ... a refreshing one asks the hub and moves refs/main.
    let fresh = downloader(&hub, cache.path()).refresh(true);
    assert_eq!(read(&fresh, "main"), "{\"v\": 2}");
    assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), v2);
    assert_eq!(read(&fresh, "v1"), "{\"v\": 1}");
    // Commits are fixed: once cached, no request even when refreshing.
    hub.clear_requests();
    assert_eq!(read(&fresh, &v1), "{\"v\": 1}");
    assert_eq!(read(&offline(cache.path()), &v1), "{\"v\": 1}");
    assert_eq!(read(&offline(cache.path()), "v1"), "{\"v\": 1}");
    assert!(hub.requests().is_empty());
    // Both commits' files share the cache: one blob per distinct content.
    assert_eq!(tree(&repo.join("blobs")).len(), 3);
}

#[test]
fn an_unreachable_hub_is_reported_but_the_cache_still_serves() {
    let Models { hub, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    open(RANKER, &downloader(&hub, cache.path())).unwrap();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nowhere = HubSettings { endpoint: format!("http://{closed}"), ..HubSettings::new(cache.path()) };
    open(RANKER, &HubDownloader::new(nowhere.clone())).unwrap();
    let msg = err(open(HF, &HubDownloader::new(nowhere)));
    assert!(msg.contains(&format!("cannot reach http://{closed}")) && msg.contains("HF_HUB_OFFLINE=1"), "{msg}");
    assert!(!cache.path().join("models--test--pairrm-hf").exists());
}

#[test]
fn a_cache_without_symlinks_is_read_too() {
    // Where symlinks are unavailable, huggingface_hub stores copies in snapshots/.
    let Models { hub, ranker: commit, .. } = hub_with_models();
    let cache = tempfile::tempdir().unwrap();
    open(RANKER, &downloader(&hub, cache.path())).unwrap();
    let snap = cache.path().join("models--test--pairrm/snapshots").join(&commit);
    for f in ["config.json", "model.safetensors"] {
        let content = std::fs::read(snap.join(f)).unwrap();
        std::fs::remove_file(snap.join(f)).unwrap();
        std::fs::write(snap.join(f), content).unwrap();
    }
    std::fs::remove_dir_all(cache.path().join("models--test--pairrm/blobs")).unwrap();
    hub.clear_requests();
    assert_eq!(logit(open(RANKER, &downloader(&hub, cache.path())).unwrap()), local_logit("tiny-original"));
    assert!(hub.requests().is_empty());
}
