//! Checkpoint reading: weight files (safetensors, torch zip), the HF cache resolver and layout
//! detection. Nothing here loads a tokenizer: `CheckpointFiles` is tested on its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pairrm::checkpoint::hub::{self, FileRequest, HubCache, SnapshotSource};
use pairrm::checkpoint::{
    CheckpointFiles, Layout, MarkerSpec, OpenOptions, WeightFormat, Weights, HEAD_HIDDEN_BIAS, HEAD_HIDDEN_WEIGHT,
    HEAD_OUT_BIAS, HEAD_OUT_WEIGHT, WORD_EMBEDDINGS,
};
use pairrm::config::MarkerIds;
use pairrm::Error;
use rand::{Rng, SeedableRng};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/torch-bin")
}

fn err_string<T: std::fmt::Debug>(r: pairrm::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

// ---------------------------------------------------------------- torch zip

fn check_torch_fixture(file: &str) {
    let path = fixtures().join(file);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap();
    let tensors = expected["tensors"].as_object().unwrap();
    let w = Weights::open(&path).unwrap();
    assert_eq!(w.format(), WeightFormat::TorchZip);
    assert_eq!(w.len(), tensors.len());
    for (name, e) in tensors {
        let shape: Vec<usize> = e["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        assert_eq!(w.shape(name), Some(shape.clone()), "{name}");
        if e["ok"].as_bool().unwrap() {
            let t = w.get(name, &shape).unwrap_or_else(|err| panic!("{name}: {err}"));
            let want: Vec<f32> = e["values"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            assert_eq!(&*t, &want[..], "{name}");
            assert_eq!(t.shape, shape);
            // torch stores records uncompressed and 64-byte aligned: f32 data is used in place.
            if e["dtype"] == "float32" && !want.is_empty() {
                assert!(t.is_mapped(), "{name} should be zero-copy");
            }
        } else {
            let msg = err_string(w.get(name, &shape));
            let needle = e["error_contains"].as_str().unwrap();
            assert!(msg.contains(needle) && msg.contains(file) && msg.contains(&format!("`{name}`")), "{msg}");
        }
    }
}

#[test]
fn torch_fixture_protocol_2() {
    check_torch_fixture("tiny.bin");
}

#[test]
fn torch_fixture_protocol_4() {
    check_torch_fixture("tiny-proto4.bin");
}

#[test]
fn torch_errors_name_file_and_tensor() {
    let path = fixtures().join("tiny.bin");
    let w = Weights::open(&path).unwrap();
    let msg = err_string(w.get("head_layer.1.weight", &[3, 2]));
    assert!(msg.contains("tiny.bin") && msg.contains("shape [2, 3], expected [3, 2]"), "{msg}");
    let msg = err_string(w.get("head_layer.9.weight", &[3, 2]));
    assert!(msg.contains("tiny.bin") && msg.contains("`head_layer.9.weight` is missing"), "{msg}");
    assert_eq!(w.shape("nope"), None);
    assert_eq!(w.get_any("view").unwrap().len(), 6);
}

#[test]
fn torch_legacy_format_is_rejected() {
    let msg = err_string(Weights::open(&fixtures().join("legacy.bin")));
    assert!(msg.contains("legacy.bin") && msg.contains("unsupported legacy torch format"), "{msg}");
}

#[test]
fn torch_corrupt_zip_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixtures().join("tiny.bin")).unwrap();
    // Damage the end-of-central-directory record.
    let mut bad = bytes.clone();
    let n = bad.len();
    for b in &mut bad[n - 22..n - 18] {
        *b = 0;
    }
    let path = dir.path().join("pytorch_model.bin");
    std::fs::write(&path, &bad).unwrap();
    let msg = err_string(Weights::open(&path));
    assert!(msg.contains("pytorch_model.bin") && msg.contains("zip"), "{msg}");
    // Not a zip at all.
    std::fs::write(&path, b"hello world").unwrap();
    let msg = err_string(Weights::open(&path));
    assert!(msg.contains("pytorch_model.bin") && msg.contains("not a torch checkpoint"), "{msg}");
    std::fs::write(&path, b"").unwrap();
    assert!(err_string(Weights::open(&path)).contains("empty file"));
    // A zip without data.pkl.
    let zip_path = dir.path().join("other.bin");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        z.start_file("x/readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut z, b"hi").unwrap();
        z.finish().unwrap();
    }
    let msg = err_string(Weights::open(&zip_path));
    assert!(msg.contains("other.bin") && msg.contains("data.pkl"), "{msg}");
}

#[test]
fn torch_deflated_records_are_inflated() {
    // Rewrite the fixture with every record deflated (as a zip tool might): still readable.
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::File::open(fixtures().join("tiny.bin")).unwrap();
    let mut src = zip::ZipArchive::new(src).unwrap();
    let path = dir.path().join("deflated.bin");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for i in 0..src.len() {
            let mut f = src.by_index(i).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut data).unwrap();
            z.start_file(f.name(), opts).unwrap();
            std::io::Write::write_all(&mut z, &data).unwrap();
        }
        z.finish().unwrap();
    }
    let w = Weights::open(&path).unwrap();
    let t = w.get("head_layer.1.weight", &[2, 3]).unwrap();
    assert_eq!(&*t, &[0.5, -1.25, 2.0, 3.5, -0.125, 1e-3]);
    assert!(!t.is_mapped());
    assert_eq!(&*w.get("view", &[2, 3]).unwrap(), &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
}

/// Reads every tensor the file claims to have; returns whether everything was readable.
fn read_all(path: &Path) -> bool {
    let Ok(w) = Weights::open(path) else {
        return false;
    };
    let mut ok = true;
    for name in w.names() {
        match w.shape(name) {
            Some(shape) => ok &= w.get(name, &shape).map(|t| t.iter().map(|x| x.to_bits() as u64).sum::<u64>()).is_ok(),
            None => ok = false,
        }
    }
    ok
}

fn fuzz(original: &Path, name: &str, must_fail_when_truncated: bool) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(original).unwrap();
    let path = dir.path().join(name);
    // Truncations: every length near both ends (headers, central directory), every 3rd between.
    let n = bytes.len();
    for len in (0..n).filter(|&l| l < 300 || l + 300 > n || l % 3 == 0) {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let all_ok = read_all(&path);
        if must_fail_when_truncated {
            assert!(!all_ok, "{name} truncated to {len} bytes was read without error");
        }
    }
    // Random byte flips: any outcome but a panic.
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    for _ in 0..1500 {
        let mut b = bytes.clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..b.len());
            b[i] = match rng.gen_range(0..3) {
                0 => b[i] ^ (1 << rng.gen_range(0..8)),
                1 => rng.gen(),
                _ => 0xff,
            };
        }
        std::fs::write(&path, &b).unwrap();
        read_all(&path);
    }
}

#[test]
fn torch_fuzz_never_panics() {
    fuzz(&fixtures().join("tiny.bin"), "pytorch_model.bin", true);
    fuzz(&fixtures().join("tiny-proto4.bin"), "pytorch_model.bin", true);
}

// ---------------------------------------------------------------- safetensors

fn write_safetensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>)]) {
    let data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, d, s)| {
            let numel: usize = s.iter().product();
            let size = match d {
                Dtype::F32 => 4,
                Dtype::I64 => 8,
                _ => 2,
            };
            let bytes: Vec<u8> = (0..numel * size).map(|i| (i % 251) as u8).collect();
            (n.to_string(), *d, s.clone(), bytes)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> =
        data.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn safetensors_f32_f16_bf16() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let f32s = [1.5f32, -2.0, 3.25, 0.0, 1e-30, -7.0];
    let f16s: Vec<u8> = f32s.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect();
    let bf16s: Vec<u8> = f32s.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect();
    let f32b: Vec<u8> = f32s.iter().flat_map(|x| x.to_le_bytes()).collect();
    let views = vec![
        ("f32", TensorView::new(Dtype::F32, vec![2, 3], &f32b).unwrap()),
        ("f16", TensorView::new(Dtype::F16, vec![3, 2], &f16s).unwrap()),
        ("bf16", TensorView::new(Dtype::BF16, vec![6], &bf16s).unwrap()),
    ];
    safetensors::serialize_to_file(views, None, &path).unwrap();
    let w = Weights::open(&path).unwrap();
    let t = w.get("f32", &[2, 3]).unwrap();
    assert!(t.is_mapped());
    assert_eq!(&*t, &f32s);
    let h: Vec<f32> = f32s.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect();
    assert_eq!(&*w.get("f16", &[3, 2]).unwrap(), &h[..]);
    let b: Vec<f32> = f32s.iter().map(|&x| half::bf16::from_f32(x).to_f32()).collect();
    assert_eq!(&*w.get("bf16", &[6]).unwrap(), &b[..]);
    // Tensors outlive the Weights they came from (the mapping is shared).
    drop(w);
    assert_eq!(t[2], 3.25);
}

#[test]
fn safetensors_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    write_safetensors(&path, &[("a", Dtype::F32, vec![4, 4]), ("ids", Dtype::I64, vec![3])]);
    let w = Weights::open(&path).unwrap();
    let msg = err_string(w.get("ids", &[3]));
    assert!(
        msg.contains("model.safetensors") && msg.contains("`ids`") && msg.contains("unsupported dtype I64"),
        "{msg}"
    );
    let msg = err_string(w.get("a", &[4, 5]));
    assert!(msg.contains("model.safetensors") && msg.contains("shape [4, 4], expected [4, 5]"), "{msg}");
    let msg = err_string(w.get("b", &[4]));
    assert!(msg.contains("model.safetensors") && msg.contains("`b` is missing"), "{msg}");

    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
    let msg = err_string(Weights::open(&cut));
    assert!(msg.contains("cut.safetensors") && msg.contains("truncated"), "{msg}");
    std::fs::write(&cut, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ").unwrap();
    let msg = err_string(Weights::open(&cut));
    assert!(msg.contains("cut.safetensors") && msg.contains("not a valid safetensors file"), "{msg}");
    std::fs::write(&cut, b"").unwrap();
    assert!(err_string(Weights::open(&cut)).contains("empty file"));
    let msg = err_string(Weights::open(&dir.path().join("absent.safetensors")));
    assert!(msg.contains("absent.safetensors"), "{msg}");
}

#[test]
fn safetensors_fuzz_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    write_safetensors(
        &path,
        &[
            ("a", Dtype::F32, vec![3, 4]),
            ("b", Dtype::F16, vec![5]),
            ("c", Dtype::BF16, vec![2, 2]),
            ("d", Dtype::I64, vec![1]),
        ],
    );
    // "d" is unreadable (I64), so reading everything never fully succeeds: only check for panics
    // on truncation via a file without it.
    fuzz(&path, "model.safetensors", false);
    let path2 = dir.path().join("clean.safetensors");
    write_safetensors(&path2, &[("a", Dtype::F32, vec![3, 4]), ("b", Dtype::F16, vec![5])]);
    fuzz(&path2, "model.safetensors", true);
}

// ---------------------------------------------------------------- HF cache

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const COMMIT2: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// Makes `models--<repo>` in `cache` with a snapshot `commit` holding `files`, and `refs/main`
/// pointing at it when `main` is set.
fn cache_repo(cache: &Path, repo: &str, commit: &str, main: bool, files: &[(&str, &[u8])]) -> PathBuf {
    let repo_dir = cache.join(hub::repo_folder_name(repo));
    let snap = repo_dir.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
    for (name, data) in files {
        // As huggingface_hub does: the snapshot file is a symlink to a blob.
        let blob = repo_dir.join("blobs").join(format!("{commit}-{}", name.replace('/', "_")));
        std::fs::write(&blob, data).unwrap();
        let link = snap.join(name);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&blob, &link).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&blob, &link).unwrap();
    }
    if main {
        std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
        std::fs::write(repo_dir.join("refs/main"), commit).unwrap();
    }
    snap
}

#[test]
fn hub_cache_resolution() {
    let cache = tempfile::tempdir().unwrap();
    let snap = cache_repo(cache.path(), "org/model", COMMIT, true, &[("config.json", b"{}"), ("a/b.txt", b"x")]);
    cache_repo(cache.path(), "org/model", COMMIT2, false, &[("config.json", b"{}")]);
    let hub = HubCache::new(cache.path());
    assert_eq!(hub.resolve_commit("org/model", "main").unwrap(), COMMIT);
    assert_eq!(hub.snapshot_dir("org/model", "main").unwrap(), snap);
    assert_eq!(hub.file("org/model", "main", "config.json").unwrap(), snap.join("config.json"));
    assert_eq!(hub.file("org/model", "main", "a/b.txt").unwrap(), snap.join("a/b.txt"));
    // A commit hash is a snapshot directly, without refs.
    assert_eq!(
        hub.snapshot_dir("org/model", COMMIT2).unwrap(),
        cache.path().join("models--org--model/snapshots").join(COMMIT2)
    );
    // Alternatives and optional files.
    let req = FileRequest::required(&["config.json"]).one_of(&["x.bin", "a/b.txt"]).optional(&["nope"]);
    assert_eq!(hub.snapshot("org/model", "main", &req).unwrap(), snap);
}

#[test]
fn hub_cache_errors() {
    let cache = tempfile::tempdir().unwrap();
    cache_repo(cache.path(), "org/model", COMMIT, true, &[("config.json", b"{}")]);
    cache_repo(cache.path(), "org/norefs", COMMIT, false, &[("config.json", b"{}")]);
    let hub = HubCache::new(cache.path());
    let cache_dir = cache.path().display().to_string();

    // Missing file in the snapshot.
    let e = hub.file("org/model", "main", "model.safetensors").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("model.safetensors of org/model@main is not in the Hugging Face cache at")
            && msg.contains(&cache_dir)
            && msg.contains("pairrm download org/model")
            && msg.contains("HF_HUB_OFFLINE"),
        "{msg}"
    );
    match e {
        Error::NotInCache { repo, revision, missing, .. } => {
            assert_eq!((repo.as_str(), revision.as_str()), ("org/model", "main"));
            assert_eq!(missing, vec!["model.safetensors".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    // Missing refs.
    let msg = hub.file("org/norefs", "main", "config.json").unwrap_err().to_string();
    assert!(
        msg.contains("config.json of org/norefs@main") && msg.contains("refs") && msg.contains("never downloaded"),
        "{msg}"
    );
    // Missing snapshot for a commit; other revisions mention the flag.
    let msg = hub.file("org/model", COMMIT2, "config.json").unwrap_err().to_string();
    assert!(
        msg.contains(&format!("org/model@{COMMIT2}")) && msg.contains("no snapshot") && msg.contains("--revision"),
        "{msg}"
    );
    // A ref pointing at a snapshot that is gone.
    std::fs::write(cache.path().join("models--org--model/refs/v2"), COMMIT2).unwrap();
    let msg = hub.file("org/model", "v2", "config.json").unwrap_err().to_string();
    assert!(msg.contains("no snapshot"), "{msg}");
    // Repo not cached at all; several files.
    let req = FileRequest::required(&["config.json"]).one_of(&["a", "b"]);
    let msg = hub.snapshot("org/absent", "main", &req).unwrap_err().to_string();
    assert!(msg.contains("config.json, a or b of org/absent@main are not in the Hugging Face cache"), "{msg}");
    // Bad ids and revisions never touch the file system outside the cache.
    assert!(hub.snapshot_dir("../etc", "main").is_err());
    assert!(hub.snapshot_dir("org/model", "../../x").is_err());
    // A corrupt ref.
    std::fs::write(cache.path().join("models--org--model/refs/bad"), "../../x").unwrap();
    let msg = hub.snapshot_dir("org/model", "bad").unwrap_err().to_string();
    assert!(msg.contains("refs/bad") && msg.contains("commit hash"), "{msg}");
}

// ---------------------------------------------------------------- layouts

fn deberta_config() -> serde_json::Value {
    json!({
        "model_type": "deberta-v2", "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 8, "vocab_size": 12, "max_position_embeddings": 16, "relative_attention": true,
        "position_buckets": 4, "norm_rel_ebd": "layer_norm", "share_att_key": true, "pos_att_type": "p2c|c2p",
        "layer_norm_eps": 1e-7, "max_relative_positions": -1, "position_biased_input": false, "type_vocab_size": 0
    })
}

fn hf_config() -> serde_json::Value {
    let mut c = deberta_config();
    let o = c.as_object_mut().unwrap();
    o.insert("vocab_size".into(), json!(14));
    o.insert("n_tasks".into(), json!(1));
    o.insert("drop_out".into(), json!(0.05));
    o.insert("source_prefix_id".into(), json!(10));
    o.insert("cand1_prefix_id".into(), json!(11));
    o.insert("cand2_prefix_id".into(), json!(12));
    o.insert("cand_prefix_id".into(), json!(13));
    o.insert("sep_token_id".into(), json!(2));
    c
}

fn ranker_config(model_name: &str) -> serde_json::Value {
    json!({
        "ranker_type": "pairranker", "model_type": "deberta", "model_name": model_name, "cache_dir": null,
        "load_checkpoint": null, "source_maxlength": 100, "candidate_maxlength": 40, "n_tasks": 1,
        "drop_out": 0.05, "fp16": true
    })
}

fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// A PairRM-shaped safetensors file: H = 4, `rows` embedding rows, `n_tasks` outputs.
fn write_pairrm_weights(path: &Path, rows: usize, h: usize, n_tasks: usize) {
    write_safetensors(
        path,
        &[
            (WORD_EMBEDDINGS, Dtype::F32, vec![rows, h]),
            ("pretrained_model.embeddings.LayerNorm.weight", Dtype::F32, vec![h]),
            (HEAD_HIDDEN_WEIGHT, Dtype::F32, vec![4, 8]),
            (HEAD_HIDDEN_BIAS, Dtype::F32, vec![4]),
            (HEAD_OUT_WEIGHT, Dtype::F32, vec![n_tasks, 4]),
            (HEAD_OUT_BIAS, Dtype::F32, vec![n_tasks]),
        ],
    );
}

fn hf_dir(root: &Path) -> PathBuf {
    let dir = root.join("PairRM-hf");
    write_json(&dir.join("config.json"), &hf_config());
    write_pairrm_weights(&dir.join("model.safetensors"), 14, 4, 1);
    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
    dir
}

/// An original-layout checkpoint whose backbone is the local directory `backbone`.
fn original_dir(root: &Path) -> PathBuf {
    let dir = root.join("PairRM");
    write_json(&dir.join("config.json"), &ranker_config("backbone"));
    write_json(&dir.join("backbone/config.json"), &deberta_config());
    std::fs::write(dir.join("backbone/spm.model"), "not parsed here").unwrap();
    write_pairrm_weights(&dir.join("model.safetensors"), 14, 4, 1);
    dir
}

fn no_hub() -> HubCache {
    HubCache::new("/nonexistent/hf-cache-for-tests")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn hf_layout() {
    let root = tempfile::tempdir().unwrap();
    let dir = hf_dir(root.path());
    let f = CheckpointFiles::locate_with(s(&dir), &OpenOptions::default(), &no_hub()).unwrap();
    assert_eq!(f.layout, Layout::Hf);
    assert_eq!(f.dir, dir);
    assert_eq!(f.tokenizer_dir, dir);
    assert_eq!(f.weights_path, dir.join("model.safetensors"));
    assert_eq!(f.backbone_config_path, dir.join("config.json"));
    assert_eq!((f.source_max_length, f.candidate_max_length, f.n_tasks), (1224, 412, 1));
    assert_eq!(f.markers, MarkerSpec::Explicit { source: 10, cand1: 11, cand2: 12, cand: Some(13) });
    assert_eq!(f.deberta.hidden_size, 4);

    // Markers as the tokenizer records them: agree, or absent.
    let recorded: HashMap<&str, u32> =
        [("<|source|>", 10), ("<|candidate1|>", 11), ("<|candidate2|>", 12), ("<|candidate|>", 13)].into();
    let cfg = f.pairrm_config(10, &|m| recorded.get(m).copied()).unwrap();
    assert_eq!(cfg.markers, MarkerIds { source: 10, cand1: 11, cand2: 12, cand: 13 });
    assert_eq!(f.pairrm_config(10, &|_| None).unwrap(), cfg);
    // Disagreement names both.
    let msg = err_string(f.pairrm_config(10, &|m| (m == "<|candidate2|>").then_some(99)));
    assert!(
        msg.contains("config.json") && msg.contains("`cand2_prefix_id` is 12") && msg.contains("<|candidate2|> as 99"),
        "{msg}"
    );

    // Weights check.
    let w = Weights::open(&f.weights_path).unwrap();
    let deberta = f.check_weights(&w, &cfg, 10).unwrap();
    assert_eq!(deberta.vocab_size, 14);
    let msg = err_string(f.check_weights(&w, &cfg, 15));
    assert!(msg.contains("model.safetensors") && msg.contains("14 rows") && msg.contains("15 ids"), "{msg}");

    // Options override the limits; limits are validated.
    let opts = OpenOptions { source_max_length: Some(50), candidate_max_length: Some(20), ..Default::default() };
    let f2 = CheckpointFiles::locate_with(s(&dir), &opts, &no_hub()).unwrap();
    assert_eq!((f2.source_max_length, f2.candidate_max_length), (50, 20));
    // A limit asked for fails before anything is read; one from the config names the file.
    let opts = OpenOptions { source_max_length: Some(2), ..Default::default() };
    let msg = err_string(CheckpointFiles::locate_with(s(&dir), &opts, &no_hub()));
    assert!(msg.contains("source_max_length") && msg.contains("too small"), "{msg}");
    let mut small = hf_config();
    small["source_maxlength"] = serde_json::json!(2);
    write_json(&dir.join("config.json"), &small);
    let f3 = CheckpointFiles::locate_with(s(&dir), &OpenOptions::default(), &no_hub()).unwrap();
    let msg = err_string(f3.pairrm_config(10, &|_| None));
    assert!(msg.contains("source_max_length") && msg.contains("config.json"), "{msg}");
}

#[test]
fn hf_layout_variants() {
    let root = tempfile::tempdir().unwrap();
    let dir = hf_dir(root.path());
    // Limits in the config are honoured; cand_prefix_id may come from the tokenizer.
    let mut c = hf_config();
    c["source_maxlength"] = json!(300);
    c["candidate_maxlength"] = json!(100);
    c.as_object_mut().unwrap().remove("cand_prefix_id");
    write_json(&dir.join("config.json"), &c);
    let f = CheckpointFiles::locate_with(s(&dir), &OpenOptions::default(), &no_hub()).unwrap();
    assert_eq!((f.source_max_length, f.candidate_max_length), (300, 100));
    assert_eq!(f.pairrm_config(10, &|m| (m == "<|candidate|>").then_some(13)).unwrap().markers.cand, 13);
    let msg = err_string(f.pairrm_config(10, &|_| None));
    assert!(msg.contains("`cand_prefix_id` is missing"), "{msg}");
    // Only some marker keys.
    c.as_object_mut().unwrap().remove("cand2_prefix_id");
    write_json(&dir.join("config.json"), &c);
    let msg = err_string(CheckpointFiles::locate_with(s(&dir), &OpenOptions::default(), &no_hub()));
    assert!(msg.contains("config.json") && msg.contains("without `cand2_prefix_id`"), "{msg}");
    // Duplicate marker ids.
    let mut c = hf_config();
    c["cand2_prefix_id"] = json!(11);
    write_json(&dir.join("config.json"), &c);
    let f = CheckpointFiles::locate_with(s(&dir), &OpenOptions::default(), &no_hub()).unwrap();
    assert!(err_string(f.pairrm_config(10, &|_| None)).contains("same id 11"));
    // No tokenizer files.
    write_json(&dir.join("config.json"), &hf_config());
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let msg = err_string(CheckpointFiles::locate_with(s(&dir), &OpenOptions::default(), &no_hub()));
    assert!(msg.contains("tokenizer.json or spm.model not found"), "{msg}");
    // pytorch_model.bin is used when there is no model.safetensors.
    std::fs::write(dir.join("spm.model"), "x").unwrap();
    std::fs::rename(dir.join("model.safetensors"), dir.join("pytorch_model.bin")).unwrap();
    let f = CheckpointFiles::locate_with(s(&dir), &OpenOptions::default(), &no_hub()).unwrap();
    assert_eq!(f.weights_path, dir.join("pytorch_model.bin"));
}

#[test]
fn original_layout_local_backbone() {
    let root = tempfile::tempdir().unwrap();
    let dir = original_dir(root.path());
    let f = CheckpointFiles::locate_with(s(&dir), &OpenOptions::default(), &no_hub()).unwrap();
    assert_eq!(f.layout, Layout::Original);
    assert_eq!(f.tokenizer_dir, dir.join("backbone"));
    assert_eq!(f.backbone_config_path, dir.join("backbone/config.json"));
    assert_eq!(f.weights_path, dir.join("model.safetensors"));
    assert_eq!((f.source_max_length, f.candidate_max_length, f.n_tasks), (100, 40, 1));
    assert_eq!(f.markers, MarkerSpec::AfterBase);
    assert_eq!(f.deberta.vocab_size, 12);
    // Markers follow the tokenizer's base length, in add_tokens order.
    let cfg = f.pairrm_config(10, &|_| None).unwrap();
    assert_eq!(cfg.markers, MarkerIds { source: 10, cand1: 11, cand2: 12, cand: 13 });
    let msg = err_string(f.pairrm_config(10, &|m| (m == "<|source|>").then_some(3)));
    assert!(msg.contains("base length 10") && msg.contains("<|source|> as 3"), "{msg}");
    let w = Weights::open(&f.weights_path).unwrap();
    assert_eq!(f.check_weights(&w, &cfg, 10).unwrap().vocab_size, 14);
    // Too few rows for the markers.
    let cfg_big = f.pairrm_config(11, &|_| None).unwrap();
    let msg = err_string(f.check_weights(&w, &cfg_big, 11));
    assert!(msg.contains("14 rows") && msg.contains("<|candidate|> has id 14"), "{msg}");

    // pytorch_model.bin wins over model.safetensors, as in LLM-Blender's load_ranker.
    std::fs::copy(fixtures().join("tiny.bin"), dir.join("pytorch_model.bin")).unwrap();
    let f = CheckpointFiles::locate_with(s(&dir), &OpenOptions::default(), &no_hub()).unwrap();
    assert_eq!(f.weights_path, dir.join("pytorch_model.bin"));

    // An absolute model_name; limits default when the config has none.
    let mut c = ranker_config(s(&dir.join("backbone")));
    c["source_maxlength"] = json!(null);
    c.as_object_mut().unwrap().remove("candidate_maxlength");
    write_json(&dir.join("config.json"), &c);
    let f = CheckpointFiles::locate_with(s(&dir), &OpenOptions::default(), &no_hub()).unwrap();
    assert_eq!(f.tokenizer_dir, dir.join("backbone"));
    assert_eq!((f.source_max_length, f.candidate_max_length), (1224, 412));
}

#[test]
fn original_layout_hub_backbone_and_hub_ranker() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("hub");
    let backbone = cache_repo(
        &cache,
        "microsoft/deberta-v3-large",
        COMMIT,
        true,
        &[
            ("config.json", &serde_json::to_vec(&deberta_config()).unwrap()),
            ("spm.model", b"x"),
            ("tokenizer_config.json", b"{}"),
        ],
    );
    let weights = root.path().join("w.safetensors");
    write_pairrm_weights(&weights, 14, 4, 1);
    let ranker = cache_repo(
        &cache,
        "llm-blender/PairRM",
        COMMIT2,
        true,
        &[
            ("config.json", &serde_json::to_vec(&ranker_config("microsoft/deberta-v3-large")).unwrap()),
            ("model.safetensors", &std::fs::read(&weights).unwrap()),
        ],
    );
    let hub = HubCache::new(&cache);
    let f = CheckpointFiles::locate_with("llm-blender/PairRM", &OpenOptions::default(), &hub).unwrap();
    assert_eq!(f.layout, Layout::Original);
    assert_eq!(f.model_id, "llm-blender/PairRM");
    assert_eq!(f.dir, ranker);
    assert_eq!(f.tokenizer_dir, backbone);
    assert_eq!(f.weights_path, ranker.join("model.safetensors"));
    let w = Weights::open(&f.weights_path).unwrap();
    f.check_weights(&w, &f.pairrm_config(10, &|_| None).unwrap(), 10).unwrap();
    // By commit.
    let opts = OpenOptions { revision: Some(COMMIT2.into()), ..Default::default() };
    assert_eq!(CheckpointFiles::locate_with("llm-blender/PairRM", &opts, &hub).unwrap().dir, ranker);
    // A revision that is not cached.
    let opts = OpenOptions { revision: Some("v9".into()), ..Default::default() };
    let msg = err_string(CheckpointFiles::locate_with("llm-blender/PairRM", &opts, &hub));
    assert!(msg.contains("config.json of llm-blender/PairRM@v9 is not in the Hugging Face cache"), "{msg}");
    // The backbone's tokenizer is missing from the cache.
    std::fs::remove_file(backbone.join("spm.model")).unwrap();
    let e = CheckpointFiles::locate_with("llm-blender/PairRM", &OpenOptions::default(), &hub).unwrap_err();
    assert!(matches!(&e, Error::NotInCache { repo, .. } if repo == "microsoft/deberta-v3-large"), "{e}");
    assert!(e.to_string().contains("tokenizer.json or spm.model of microsoft/deberta-v3-large@main"), "{e}");
    // A ranker not in the cache at all.
    let msg = err_string(CheckpointFiles::locate_with("llm-blender/PairRM-hf", &OpenOptions::default(), &hub));
    assert!(msg.contains("config.json of llm-blender/PairRM-hf@main is not in the Hugging Face cache"), "{msg}");
}

#[test]
fn checkpoint_errors() {
    let root = tempfile::tempdir().unwrap();
    let opts = OpenOptions::default();
    let locate = |dir: &Path| CheckpointFiles::locate_with(s(dir), &opts, &no_hub());

    // Missing config.
    let empty = root.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let msg = err_string(locate(&empty));
    assert!(msg.contains("config.json not found in") && msg.contains("empty"), "{msg}");

    // Bad JSON; not an object.
    std::fs::write(empty.join("config.json"), "{ nope").unwrap();
    let msg = err_string(locate(&empty));
    assert!(msg.contains("config.json") && msg.contains("invalid JSON"), "{msg}");
    std::fs::write(empty.join("config.json"), "[1]").unwrap();
    assert!(err_string(locate(&empty)).contains("expected a JSON object"));

    // Unknown layouts.
    write_json(&empty.join("config.json"), &deberta_config());
    let msg = err_string(locate(&empty));
    assert!(
        msg.contains("config.json") && msg.contains("unknown layout") && msg.contains("keys found: hidden_size"),
        "{msg}"
    );
    write_json(&empty.join("config.json"), &json!({"ranker_type": "summareranker", "model_name": "x"}));
    let msg = err_string(locate(&empty));
    assert!(
        msg.contains("unknown layout") && msg.contains("\"summareranker\"") && msg.contains("model_name, ranker_type"),
        "{msg}"
    );

    // Original layout problems.
    let dir = original_dir(root.path());
    let with_config = |c: serde_json::Value| {
        write_json(&dir.join("config.json"), &c);
        err_string(locate(&dir))
    };
    let mut c = ranker_config("backbone");
    c.as_object_mut().unwrap().remove("model_name");
    let msg = with_config(c);
    assert!(msg.contains("config.json") && msg.contains("`model_name` is missing"), "{msg}");
    let msg = with_config(ranker_config("not a dir or id!"));
    assert!(
        msg.contains("config.json") && msg.contains("neither a directory") && msg.contains("not a dir or id!"),
        "{msg}"
    );
    let msg = with_config(ranker_config("org/not-cached"));
    assert!(msg.contains("of org/not-cached@main are not in the Hugging Face cache"), "{msg}");
    let mut c = ranker_config("backbone");
    c["model_type"] = json!("roberta");
    assert!(with_config(c).contains("model_type \"roberta\""));
    let mut c = ranker_config("backbone");
    c["source_maxlength"] = json!("long");
    assert!(with_config(c).contains("`source_maxlength` must be a non-negative integer"));
    // Backbone config missing / invalid.
    write_json(&dir.join("config.json"), &ranker_config("backbone"));
    std::fs::write(dir.join("backbone/config.json"), "{}").unwrap();
    let msg = err_string(locate(&dir));
    assert!(msg.contains("backbone/config.json") && msg.contains("not a DeBERTa-v2 config"), "{msg}");
    std::fs::remove_file(dir.join("backbone/config.json")).unwrap();
    let msg = err_string(locate(&dir));
    assert!(msg.contains("config.json not found in") && msg.contains("backbone"), "{msg}");
    write_json(&dir.join("backbone/config.json"), &deberta_config());

    // Missing weights.
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let msg = err_string(locate(&dir));
    assert!(msg.contains("pytorch_model.bin or model.safetensors not found in"), "{msg}");
    std::fs::write(dir.join("model.safetensors.index.json"), "{}").unwrap();
    assert!(err_string(locate(&dir)).contains("sharded checkpoints are not supported"));

    // Weight problems: missing tensor, wrong shapes, truncated file.
    let f = {
        write_pairrm_weights(&dir.join("model.safetensors"), 14, 4, 1);
        locate(&dir).unwrap()
    };
    let cfg = f.pairrm_config(10, &|_| None).unwrap();
    let wpath = dir.join("model.safetensors");
    write_safetensors(&wpath, &[(WORD_EMBEDDINGS, Dtype::F32, vec![14, 4])]);
    let msg = err_string(f.check_weights(&Weights::open(&wpath).unwrap(), &cfg, 10));
    assert!(msg.contains("model.safetensors") && msg.contains("`head_layer.1.weight` is missing"), "{msg}");
    write_pairrm_weights(&wpath, 14, 6, 1);
    let msg = err_string(f.check_weights(&Weights::open(&wpath).unwrap(), &cfg, 10));
    assert!(msg.contains("model.safetensors") && msg.contains("[14, 6], expected [rows, 4]"), "{msg}");
    write_pairrm_weights(&wpath, 14, 4, 2);
    let msg = err_string(f.check_weights(&Weights::open(&wpath).unwrap(), &cfg, 10));
    assert!(
        msg.contains("`head_layer.4.weight` has shape [2, 4], expected [1, 4]") && msg.contains("n_tasks 1"),
        "{msg}"
    );
    let bytes = std::fs::read(&wpath).unwrap();
    std::fs::write(&wpath, &bytes[..bytes.len() / 2]).unwrap();
    let msg = err_string(Weights::open(&wpath));
    assert!(msg.contains("model.safetensors") && msg.contains("truncated"), "{msg}");

    // The model argument itself.
    let msg = err_string(CheckpointFiles::locate_with(s(&wpath), &opts, &no_hub()));
    assert!(msg.contains("is a file"), "{msg}");
    let msg = err_string(CheckpointFiles::locate_with("./no/such dir", &opts, &no_hub()));
    assert!(msg.contains("no such directory, and not a hub repo id"), "{msg}");
}

/// The cache-only source never creates anything (no network, no writes).
#[test]
fn cache_lookup_writes_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let hub = HubCache::new(cache.path());
    assert!(hub.snapshot("org/model", "main", &FileRequest::required(&["config.json"])).is_err());
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}
