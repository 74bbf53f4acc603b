//! Tokenizer tests against the reference (transformers 4.46.3 `DebertaV2TokenizerFast`).
//!
//! Reads the real DeBERTa-v3 `spm.model` committed under `tests/fixtures/tokenizer/deberta-v3/`.
//! Goldens: `tests/fixtures/tokenizer/goldens.json`, made by `tools/gen_tokenizer_goldens.py`. The
//! slow-tokenizer vectors of a third party are not committed: their test runs when the shared
//! folder (`PAIRRM_SHARED_DIR`, else `../shared` beside the workspace) holds them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use pairrm::tokenizer::{PairTokenizer, SpmOptions, MARKERS};
use pairrm::Error;
use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed deberta-v3 tokenizer fixture.
fn deberta_dir() -> PathBuf {
    workspace_root().join("tests/fixtures/tokenizer/deberta-v3")
}

/// The shared folder's copy of the deberta-v3 tokenizer data, when it is there.
fn shared_deberta_dir() -> Option<PathBuf> {
    let shared = match std::env::var_os("PAIRRM_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared"),
    };
    let dir = shared.join("tokenizers/deberta-v3");
    dir.is_dir().then_some(dir)
}

fn spm_path() -> PathBuf {
    let path = deberta_dir().join("spm.model");
    assert!(
        path.is_file(),
        "the real DeBERTa-v3 spm.model is missing at {} (it is committed: is the checkout complete?)",
        path.display()
    );
    path
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

fn goldens() -> &'static Value {
    static GOLDENS: OnceLock<Value> = OnceLock::new();
    GOLDENS.get_or_init(|| read_json(&workspace_root().join("tests/fixtures/tokenizer/goldens.json")))
}

fn default_tokenizer() -> &'static PairTokenizer {
    static TOKENIZER: OnceLock<PairTokenizer> = OnceLock::new();
    TOKENIZER
        .get_or_init(|| PairTokenizer::from_spm(&spm_path(), &SpmOptions::default()).expect("build from spm.model"))
}

/// A fresh, empty temporary directory (removed by the caller with `cleanup`).
fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("pairrm-tok-test-{}-{n}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

fn ids(value: &Value) -> Vec<u32> {
    value.as_array().expect("ids array").iter().map(|v| v.as_u64().expect("id") as u32).collect()
}

/// Checks every case of a golden section; returns how many were checked.
fn check_cases(tok: &PairTokenizer, section: &str) -> usize {
    let cases = goldens()[section].as_array().unwrap_or_else(|| panic!("no section {section}"));
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let text = case["text"].as_str().expect("text");
        let want = ids(&case["ids"]);
        let got = tok.encode(text).expect("encode");
        if got != want {
            let shown: String = text.chars().take(80).collect();
            failures.push(format!("{section}[{i}] {shown:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    cases.len()
}

#[test]
fn default_goldens() {
    let n = check_cases(default_tokenizer(), "default");
    assert!(n > 300, "only {n} golden cases");
}

#[test]
fn metadata_matches_reference() {
    let tok = default_tokenizer();
    let meta = &goldens()["meta"];
    assert_eq!(tok.base_len() as u64, meta["base_len"].as_u64().unwrap());
    assert_eq!(tok.base_len(), 128_001);
    assert_eq!(tok.cls_id(), 1);
    assert_eq!(tok.sep_id(), 2);
    for (token, id) in meta["special_ids"].as_object().unwrap() {
        assert_eq!(tok.token_to_id(token), Some(id.as_u64().unwrap() as u32), "{token}");
    }
    // The original layout numbers the markers from base_len, in MARKERS order.
    for (i, marker) in MARKERS.iter().enumerate() {
        assert_eq!(meta["marker_ids"][marker].as_u64().unwrap(), (tok.base_len() + i) as u64);
        // spm.model records no marker ids, and the markers are not tokens here.
        assert_eq!(tok.marker_id(marker), None);
        assert_eq!(tok.token_to_id(marker), None);
    }
    assert_eq!(tok.marker_id("[CLS]"), None);
    // The Python side found the markers can be inserted structurally.
    let checks = &meta["checks"];
    assert_eq!(checks["marker_prefix"]["failures"].as_array().unwrap().len(), 0);
    assert_eq!(checks["markers_change_nothing_without_markers"], Value::Bool(true));
    assert_eq!(checks["tokenizer_json_same_ids_as_spm_path"], Value::Bool(true));
}

#[test]
fn marker_strings_are_ordinary_text() {
    let tok = default_tokenizer();
    for marker in MARKERS {
        for text in [marker.to_string(), format!("a {marker} b"), format!("{marker}{marker}")] {
            let got = tok.encode(&text).unwrap();
            assert!(got.iter().all(|&id| id < 128_000), "{text:?} -> {got:?}");
        }
    }
}

#[test]
fn variant_goldens() {
    let cases = [
        ("lower_case", SpmOptions { do_lower_case: true, split_by_punct: false }),
        ("split_by_punct", SpmOptions { do_lower_case: false, split_by_punct: true }),
        ("lower_case_split_by_punct", SpmOptions { do_lower_case: true, split_by_punct: true }),
    ];
    for (section, options) in cases {
        let tok = PairTokenizer::from_spm(&spm_path(), &options).unwrap();
        assert_eq!(tok.base_len(), 128_001);
        let n = check_cases(&tok, section);
        assert!(n >= 30, "{section}: only {n} cases");
    }
}

#[test]
fn from_dir_with_spm_and_config() {
    let spm = std::fs::read(spm_path()).unwrap();
    // Without tokenizer_config.json: the defaults.
    let dir = temp_dir("spm-default");
    std::fs::write(dir.join("spm.model"), &spm).unwrap();
    let tok = PairTokenizer::from_dir(&dir).unwrap();
    check_cases(&tok, "default");
    // With the config microsoft/deberta-v3-large has.
    std::fs::write(dir.join("tokenizer_config.json"), r#"{"do_lower_case": false, "vocab_type": "spm"}"#).unwrap();
    let tok = PairTokenizer::from_dir(&dir).unwrap();
    assert_eq!(tok.encode("Hello World").unwrap(), [1, 5365, 964, 2]);
    // A lower-casing, punctuation-splitting config.
    std::fs::write(dir.join("tokenizer_config.json"), r#"{"do_lower_case": true, "split_by_punct": true}"#).unwrap();
    let tok = PairTokenizer::from_dir(&dir).unwrap();
    check_cases(&tok, "lower_case_split_by_punct");
    // A config as transformers saves it, with the markers in added_tokens_decoder.
    let saved = goldens()["meta"]["added_tokens"].as_array().unwrap();
    let mut decoder = serde_json::Map::new();
    for token in saved {
        let mut entry = token.as_object().unwrap().clone();
        let id = entry.remove("id").unwrap();
        decoder.insert(id.to_string(), Value::Object(entry));
    }
    let config = serde_json::json!({
        "added_tokens_decoder": decoder, "bos_token": "[CLS]", "cls_token": "[CLS]",
        "do_lower_case": false, "eos_token": "[SEP]", "mask_token": "[MASK]", "pad_token": "[PAD]",
        "sep_token": "[SEP]", "split_by_punct": false, "tokenizer_class": "DebertaV2Tokenizer",
        "unk_token": {"content": "[UNK]", "normalized": true, "special": true}, "vocab_type": "spm"
    });
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    let tok = PairTokenizer::from_dir(&dir).unwrap();
    check_cases(&tok, "default");
    for (i, marker) in MARKERS.iter().enumerate() {
        assert_eq!(tok.marker_id(marker), Some(128_001 + i as u32));
    }
    cleanup(&dir);
}

/// Loads a tokenizer.json written to a temp dir and checks it against the default goldens.
fn check_tokenizer_json(json: &str, tag: &str) -> PairTokenizer {
    let dir = temp_dir(tag);
    std::fs::write(dir.join("tokenizer.json"), json).unwrap();
    // A tokenizer.json takes precedence over spm.model: a broken spm.model next to it is unused.
    std::fs::write(dir.join("spm.model"), b"not read").unwrap();
    let tok = PairTokenizer::from_dir(&dir).unwrap();
    cleanup(&dir);
    check_cases(&tok, "default");
    assert_eq!(tok.base_len(), 128_001);
    let marker_ids = &goldens()["meta"]["marker_ids"];
    for marker in MARKERS {
        let want = marker_ids[marker].as_u64().unwrap() as u32;
        assert_eq!(tok.marker_id(marker), Some(want), "{marker}");
        assert_eq!(tok.token_to_id(marker), None, "{marker} must not be a token");
    }
    tok
}

#[test]
fn tokenizer_json_written_by_us() {
    let json = default_tokenizer().to_pairrm_hf_json().unwrap();
    let tok = check_tokenizer_json(&json, "ours");
    // Round trip: the same markers again.
    let again = tok.to_pairrm_hf_json().unwrap();
    let a: Value = serde_json::from_str(&json).unwrap();
    let b: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(a["added_tokens"], b["added_tokens"]);
}

/// Rebuilds the tokenizer.json transformers' save_pretrained writes for the PairRM-hf layout from
/// the skeleton in the goldens (vocab and charsmap filled from spm.model), and checks it. Also
/// checks that what we build from spm.model is that same tokenizer, component by component.
#[test]
fn tokenizer_json_as_transformers_saves_it() {
    let ours: Value = serde_json::from_str(&default_tokenizer().to_pairrm_hf_json().unwrap()).unwrap();
    let mut reference = goldens()["tokenizer_json_skeleton"].clone();
    reference["model"]["vocab"] = ours["model"]["vocab"].clone();
    let charsmap = ours["normalizer"]["normalizers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "Precompiled")
        .expect("Precompiled normalizer")["precompiled_charsmap"]
        .clone();
    for norm in reference["normalizer"]["normalizers"].as_array_mut().unwrap() {
        if norm["type"] == "Precompiled" {
            norm["precompiled_charsmap"] = charsmap.clone();
        }
    }
    check_tokenizer_json(&reference.to_string(), "transformers");

    // Same components as the reference (the parts both tokenizers versions write alike).
    for key in ["added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"] {
        assert_eq!(ours[key], reference[key], "{key} differs from transformers' tokenizer.json");
    }
    for key in ["type", "unk_id", "byte_fallback", "vocab"] {
        assert_eq!(ours["model"][key], reference["model"][key], "model.{key}");
    }
}

#[test]
fn shared_pairrm_vectors() {
    let path = deberta_dir().join("pairrm_tokenizer_vectors.transformers-4.44.2.json");
    let file = read_json(&path);
    let tok = default_tokenizer();
    let cases = file["cases"].as_array().unwrap();
    for case in cases {
        let text = case["input"].as_str().unwrap();
        assert_eq!(tok.encode(text).unwrap(), ids(&case["fast_ids"]), "{text:?}");
    }
    assert_eq!(cases.len(), 50);
    // The notebook's example pairs: markers inserted structurally reproduce the reference input.
    for pair in file["pairrm_notebook_example"]["pairs"].as_array().unwrap() {
        let mut input = Vec::new();
        for (key, marker) in [("source", 128_001), ("candidate_A", 128_002), ("candidate_B", 128_003)] {
            let ids = tok.encode(pair[key].as_str().unwrap()).unwrap();
            input.push(ids[0]);
            input.push(marker);
            input.extend_from_slice(&ids[1..]);
        }
        assert_eq!(input, ids(&pair["fast_input_ids"]));
    }
}

/// The HF slow-tokenizer vectors: slow ids equal the fast ones only where the pairrm vectors
/// say `slow_equals_fast` (the slow tokenizer honours byte fallback, the fast one gives [UNK]);
/// those cases are checked, the others are left out. The vectors are a third party's and are not
/// committed: the test runs when the shared folder holds them.
#[test]
fn shared_hf_slow_vectors_where_slow_equals_fast() {
    let Some(path) = shared_deberta_dir().map(|d| d.join("hf_slow_reference_vectors.deberta-v3-large.json")) else {
        eprintln!("skipped: the shared folder with hf_slow_reference_vectors.deberta-v3-large.json is not here");
        return;
    };
    if !path.is_file() {
        eprintln!("skipped: {} not found", path.display());
        return;
    }
    let slow = read_json(&path);
    let pairrm = read_json(&deberta_dir().join("pairrm_tokenizer_vectors.transformers-4.44.2.json"));
    let tok = default_tokenizer();
    let (mut checked, mut skipped) = (0, 0);
    for case in slow["datasets"].as_array().unwrap() {
        let text = case["input"].as_str().unwrap();
        let same = pairrm["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["input"] == text)
            .is_some_and(|c| c["slow_equals_fast"] == Value::Bool(true));
        if same {
            assert_eq!(tok.encode(text).unwrap(), ids(&case["ids"]), "{text:?}");
            checked += 1;
        } else {
            skipped += 1;
        }
    }
    assert_eq!((checked, skipped), (31, 6));
    for (token, id) in slow["special_tokens"].as_object().unwrap() {
        assert_eq!(tok.token_to_id(token), Some(id.as_u64().unwrap() as u32));
    }
}

#[test]
fn long_text_is_fast() {
    let tok = default_tokenizer();
    let unit = "The quick brown fox, naïve café 生活的真谛是 😀 [SEP] jumps over 3.14 lazy dogs!\n";
    let mut text = String::new();
    while text.chars().count() < 100_000 {
        text.push_str(unit);
    }
    let no_spaces: String = "生活的真谛是abcdé".chars().cycle().take(100_000).collect();
    tok.encode("warm up").unwrap();
    for t in [&text, &no_spaces] {
        let start = Instant::now();
        let ids = tok.encode(t).unwrap();
        let elapsed = start.elapsed();
        assert!(ids.len() > 10_000);
        eprintln!("encoded {} characters into {} ids in {elapsed:?}", t.chars().count(), ids.len());
        assert!(elapsed.as_secs_f64() < 1.0, "100k characters took {elapsed:?}");
    }
}

fn assert_error_names(err: Error, file: &str, needle: &str) {
    let msg = err.to_string();
    assert!(msg.contains(file), "error should name {file}: {msg}");
    assert!(msg.to_lowercase().contains(&needle.to_lowercase()), "error should say {needle:?}: {msg}");
}

#[test]
fn error_missing_dir_and_files() {
    let missing = std::env::temp_dir().join("pairrm-tok-test-does-not-exist");
    let err = PairTokenizer::from_dir(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_error_names(err, "pairrm-tok-test-does-not-exist", "");

    let dir = temp_dir("empty");
    let err = PairTokenizer::from_dir(&dir).unwrap_err();
    assert_error_names(err, &dir.display().to_string(), "neither tokenizer.json nor spm.model");
    let err = PairTokenizer::from_spm(&dir.join("spm.model"), &SpmOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    let err = PairTokenizer::from_tokenizer_json(&dir.join("tokenizer.json")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    // A file where a directory is expected.
    std::fs::write(dir.join("file"), b"x").unwrap();
    let err = PairTokenizer::from_dir(&dir.join("file")).unwrap_err();
    assert_error_names(err, "file", "not a directory");
    cleanup(&dir);
}

#[test]
fn error_corrupt_spm_model() {
    let real = std::fs::read(spm_path()).unwrap();
    let dir = temp_dir("corrupt-spm");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\xff\xfe this is not a protobuf \x00\x01".to_vec()),
        ("truncated", real[..real.len() / 2].to_vec()),
        ("json", br#"{"model": "unigram"}"#.to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in cases {
        std::fs::write(dir.join("spm.model"), &bytes).unwrap();
        let err = PairTokenizer::from_dir(&dir).unwrap_err();
        assert!(matches!(err, Error::InvalidFile { .. } | Error::Unsupported { .. }), "{what}: {err}");
        assert_error_names(err, "spm.model", "");
    }
    cleanup(&dir);
}

#[test]
fn error_bad_tokenizer_config() {
    let dir = temp_dir("bad-config");
    std::fs::copy(spm_path(), dir.join("spm.model")).unwrap();
    for (text, needle) in [
        ("{\"do_lower_case\": fal", "not valid JSON"),
        ("\"just a string\"", "JSON object"),
        (r#"{"do_lower_case": "no"}"#, "do_lower_case"),
        (r#"{"split_by_punct": 0}"#, "split_by_punct"),
        (r#"{"unk_token": "<unk>"}"#, "unk_token"),
        (r#"{"added_tokens_decoder": {"5": {"content": "<new>"}}}"#, "<new>"),
        (r#"{"added_tokens_decoder": {"7": {"content": "[MASK]"}}}"#, "[MASK]"),
    ] {
        std::fs::write(dir.join("tokenizer_config.json"), text).unwrap();
        let err = PairTokenizer::from_dir(&dir).unwrap_err();
        assert_error_names(err, "tokenizer_config.json", needle);
    }
    cleanup(&dir);
}

#[test]
fn error_corrupt_tokenizer_json() {
    let good: Value = serde_json::from_str(&default_tokenizer().to_pairrm_hf_json().unwrap()).unwrap();
    let mut no_model = good.clone();
    no_model.as_object_mut().unwrap().remove("model");
    let mut bad_marker = good.clone();
    for t in bad_marker["added_tokens"].as_array_mut().unwrap() {
        if t["content"] == "<|source|>" {
            t["id"] = Value::from(-1);
        }
    }
    let mut marker_in_vocab = good.clone();
    marker_in_vocab["model"]["vocab"].as_array_mut().unwrap().push(serde_json::json!(["<|candidate|>", -5.0]));
    let mut no_cls = good.clone();
    no_cls["post_processor"] = Value::Null;
    let mut bad_vocab = good.clone();
    bad_vocab["model"]["vocab"] = Value::from("oops");
    let dir = temp_dir("bad-json");
    for (what, text, needle) in [
        ("truncated", r#"{"version": "1.0", "added_tokens": ["#.to_string(), "not valid JSON"),
        ("not an object", "[1, 2, 3]".to_string(), "JSON object"),
        ("no model", no_model.to_string(), "not a valid tokenizer.json"),
        ("bad vocab", bad_vocab.to_string(), "not a valid tokenizer.json"),
        ("bad marker id", bad_marker.to_string(), "no valid id"),
        ("marker in vocab", marker_in_vocab.to_string(), "vocabulary"),
        ("no post-processor", no_cls.to_string(), "post-processor"),
        ("added_tokens not a list", r#"{"added_tokens": 3}"#.to_string(), "must be a list"),
    ] {
        std::fs::write(dir.join("tokenizer.json"), &text).unwrap();
        let err = PairTokenizer::from_dir(&dir).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("tokenizer.json"), "{what}: {msg}");
        assert!(msg.contains(needle), "{what}: {msg}");
    }
    cleanup(&dir);
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PairTokenizer>();
}
