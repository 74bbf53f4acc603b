//! Shared helpers of the integration tests: fixture paths, the real-tokenizer HF cache, tolerances.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `tests/fixtures/models` of the workspace.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

/// The real deberta-v3 `spm.model`, committed under `tests/fixtures/tokenizer/deberta-v3/` (MIT).
pub fn spm_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokenizer/deberta-v3/spm.model")
}

/// A temporary HF hub cache holding `microsoft/deberta-v3-large` as the realtok fixture needs it
/// (config.json, tokenizer_config.json and the real spm.model), plus the realtok checkpoint
/// copied as the hub repo `test/realtok-pairrm`. Returns (tempdir guard, cache dir).
pub fn realtok_cache() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let add_repo = |repo: &str, files: &[(&str, PathBuf)]| {
        let base = cache.join(format!("models--{}", repo.replace('/', "--")));
        let snap = base.join("snapshots").join(rev);
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(base.join("refs")).unwrap();
        std::fs::write(base.join("refs/main"), rev).unwrap();
        for (name, src) in files {
            std::fs::copy(src, snap.join(name)).unwrap();
        }
    };
    let bb = fixtures().join("realtok-backbone");
    add_repo(
        "microsoft/deberta-v3-large",
        &[
            ("config.json", bb.join("config.json")),
            ("tokenizer_config.json", bb.join("tokenizer_config.json")),
            ("spm.model", spm_model()),
        ],
    );
    let ck = fixtures().join("realtok-original");
    add_repo(
        "test/realtok-pairrm",
        &[("config.json", ck.join("config.json")), ("model.safetensors", ck.join("model.safetensors"))],
    );
    (tmp, cache)
}

/// `|got - want| <= 1e-5 · max(1, |want|)`.
pub fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-5 * want.abs().max(1.0)
}

/// Reads a fixture's goldens.
pub fn goldens(fixture: &str) -> serde_json::Value {
    let p = fixtures().join(fixture).join("goldens.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// What `encode_marked_prefix` must return: the full encoding of `text` cut to `keep` ids.
pub fn expected_prefix(
    tok: &pairrm::tokenizer::PairTokenizer,
    text: &str,
    keep: usize,
) -> pairrm::tokenizer::TokenPrefix {
    let ids = tok.encode_marked(text).unwrap();
    if ids.len() <= keep {
        pairrm::tokenizer::TokenPrefix { ids, complete: true }
    } else {
        pairrm::tokenizer::TokenPrefix { ids: ids[..keep].to_vec(), complete: false }
    }
}
