//! A model whose results are not finite numbers (NaN weights) answers 500 (`backend`), never a
//! result with `null` logits or an arbitrary pick.

mod common;

use std::path::Path;

use common::{post, TestServer};
use pairrm::checkpoint::OpenOptions;
use pairrm::{Engine, EngineOptions};
use pairrm_server::ServerOptions;
use serde_json::{json, Value};

/// Overwrites element `index` of f32 tensor `name` of a safetensors file with `value`.
fn poison(file: &Path, name: &str, index: usize, value: f32) {
    let mut bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let at = 8 + n + header[name]["data_offsets"][0].as_u64().unwrap() as usize + 4 * index;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn non_finite_results_answer_500() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = common::tiny_model().join("..");
    for name in ["tiny-original", "tiny-backbone"] {
        std::fs::create_dir_all(tmp.path().join(name)).unwrap();
        for entry in std::fs::read_dir(fixtures.join(name)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), tmp.path().join(name).join(entry.file_name())).unwrap();
        }
    }
    let dir = tmp.path().join("tiny-original");
    // The [CLS] row of the word embeddings (read row by row, not scanned at load): every input.
    poison(&dir.join("model.safetensors"), "pretrained_model.embeddings.word_embeddings.weight", 32, f32::NAN);
    let model = dir.to_str().unwrap().to_string();
    let server = TestServer::start(ServerOptions::default(), move || {
        Ok(Engine::load(&model, &OpenOptions::default(), EngineOptions::default())?)
    });
    server.wait_ready();
    for (route, body) in [
        ("/compare", json!({"pairs": [{"source": "hello", "a": "hi", "b": "go away"}]})),
        ("/rank", json!({"source": "pick", "candidates": ["a", "bb", "ccc"]})),
        ("/rank", json!({"source": "pick", "candidates": ["a", "bb", "ccc"], "strategy": "bubble"})),
        ("/rerank", json!({"query": "pick", "texts": ["a", "bb", "ccc"]})),
    ] {
        let (status, answer) = post(&server.url(route), &body);
        assert_eq!(status, 500, "{route}: {answer}");
        assert_eq!(answer["error_type"], "backend", "{route}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("a non-finite number"), "{route}: {answer}");
    }
}
