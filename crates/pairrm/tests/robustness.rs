//! Broken models and absurd settings are errors, never silent wrong answers: NaN or infinite
//! weights fail the load naming the tensor, except in the word-embedding table (read row by row),
//! where they fail the results of the inputs that read the row; invalid configs, tensors the
//! config does not use, missing tensors and limits out of range fail at load, naming what is wrong.

mod common;

use std::path::{Path, PathBuf};

use pairrm::checkpoint::{Checkpoint, OpenOptions};
use pairrm::judge::{compare, rank, select_n, CompareMode, CompareRequest, RankRequest, SelectMethod, Target};
use pairrm::model::{ModelOptions, Precision, WeightDtype};
use pairrm::{Engine, EngineOptions, Error};
use serde_json::{json, Value};

/// A copy of fixture `name` in a temporary directory, its `model_name` made absolute.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = common::fixtures().join(name);
    let dst = tmp.path().join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    let config_path = dst.join("config.json");
    let mut config = read_json(&config_path);
    if let Some(model_name) = config.get("model_name").and_then(Value::as_str) {
        let backbone = src.join(model_name).canonicalize().unwrap();
        config["model_name"] = json!(backbone.to_str().unwrap());
        write_json(&config_path, &config);
    }
    (tmp, dst)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

/// The (dtype, shape, bytes) of every tensor of a safetensors file, and its metadata.
fn read_tensors(path: &Path) -> Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> =
        st.tensors().into_iter().map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn write_tensors(path: &Path, tensors: &[(String, safetensors::Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// Rewrites `file` with `edit` applied to its tensors.
fn edit_tensors(file: &Path, edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>)) {
    let mut tensors = read_tensors(file);
    edit(&mut tensors);
    write_tensors(file, &tensors);
}

/// Sets element `index` of f32 tensor `name` to `value`.
fn poison(file: &Path, name: &str, index: usize, value: f32) {
    edit_tensors(file, |tensors| {
        let t = tensors.iter_mut().find(|t| t.0 == name).unwrap_or_else(|| panic!("no tensor {name}"));
        t.3[4 * index..4 * index + 4].copy_from_slice(&value.to_le_bytes());
    });
}

fn load(dir: &Path) -> pairrm::Result<Engine> {
    Engine::load(dir.to_str().unwrap(), &OpenOptions::default(), EngineOptions { threads: 1, ..Default::default() })
}

fn load_err(dir: &Path) -> String {
    match load(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn pairs() -> Vec<CompareRequest> {
    ["hello", "what is 2+2?", "tell me a story"]
        .iter()
        .map(|s| CompareRequest {
            instruction: None,
            source: s.to_string(),
            a: "yes".into(),
            b: "no, not at all".into(),
        })
        .collect()
}

fn rank_request() -> RankRequest {
    RankRequest { instruction: None, source: "pick".into(), candidates: vec!["a".into(), "bb".into(), "ccc".into()] }
}

fn assert_non_finite<T: std::fmt::Debug>(result: &pairrm::Result<T>, context: &str) {
    match result {
        Err(Error::NonFinite { what, value }) => {
            assert!(!value.is_finite(), "{context}: {what} = {value}");
            let message = result.as_ref().unwrap_err().to_string();
            assert!(message.contains("a non-finite number") && message.contains("weights"), "{context}: {message}");
        }
        other => panic!("{context}: expected a non-finite error, got {other:?}"),
    }
}

#[test]
fn loading_is_strict_in_every_precision_and_weight_dtype() {
    // The packed paths (bf16, int8, f16/bf16 storage) read their weights through the same checks.
    let options = [
        (Precision::Bf16, WeightDtype::F32),
        (Precision::Int8, WeightDtype::F32),
        (Precision::F32, WeightDtype::F16),
        (Precision::F32, WeightDtype::Bf16),
    ];
    let load_err = |dir: &Path, precision, dtype| {
        let options = EngineOptions { threads: 1, precision, dtype, ..Default::default() };
        match Engine::load(dir.to_str().unwrap(), &OpenOptions::default(), options) {
            Ok(_) => panic!("{} loaded in {precision:?}/{dtype:?}", dir.display()),
            Err(e) => e.to_string(),
        }
    };
    let tensor = "pretrained_model.encoder.layer.0.intermediate.dense.weight";
    let (_poisoned, nan) = copy_fixture("tiny-original");
    poison(&nan.join("model.safetensors"), tensor, 9, f32::NAN);
    let (_stray, stray) = copy_fixture("tiny-original");
    edit_tensors(&stray.join("model.safetensors"), |t| {
        t.push(("head_layer.7.weight".into(), safetensors::Dtype::F32, vec![1], vec![0; 4]))
    });
    let (_missing, missing) = copy_fixture("tiny-original");
    edit_tensors(&missing.join("model.safetensors"), |t| t.retain(|t| t.0 != tensor));
    for (precision, dtype) in options {
        let e = load_err(&nan, precision, dtype);
        assert!(e.contains(&format!("`{tensor}` holds NaN at index 9")), "{precision:?}/{dtype:?}: {e}");
        let e = load_err(&stray, precision, dtype);
        assert!(e.contains("`head_layer.7.weight`"), "{precision:?}/{dtype:?}: {e}");
        let e = load_err(&missing, precision, dtype);
        assert!(e.contains(&format!("`{tensor}` is missing")), "{precision:?}/{dtype:?}: {e}");
    }
}

#[test]
fn non_finite_weights_fail_the_load_naming_the_tensor() {
    for (tensor, index, value, shown) in [
        ("head_layer.4.bias", 0, f32::NAN, "NaN"),
        ("head_layer.1.weight", 5, f32::INFINITY, "inf"),
        ("pretrained_model.embeddings.LayerNorm.weight", 3, f32::NAN, "NaN"),
        ("pretrained_model.encoder.layer.1.output.dense.weight", 0, f32::NEG_INFINITY, "-inf"),
        ("pretrained_model.encoder.rel_embeddings.weight", 7, f32::INFINITY, "inf"),
    ] {
        let (_tmp, dir) = copy_fixture("tiny-original");
        poison(&dir.join("model.safetensors"), tensor, index, value);
        let e = load_err(&dir);
        assert!(e.contains(&format!("`{tensor}` holds {shown} at index {index}: weights must be finite")), "{e}");
        assert!(e.contains("model.safetensors"), "{e}");
    }
}

#[test]
fn a_non_finite_embedding_row_every_input_reads_fails_every_result() {
    // The word-embedding table is read row by row, not scanned at load: a NaN in the [CLS] row
    // reaches every input, and every result is an error.
    let (_tmp, dir) = copy_fixture("tiny-original");
    let cls = 1;
    poison(
        &dir.join("model.safetensors"),
        "pretrained_model.embeddings.word_embeddings.weight",
        cls * 32 + 4,
        f32::NAN,
    );
    let engine = load(&dir).unwrap();
    for mode in [CompareMode::Ab, CompareMode::Ba, CompareMode::Both] {
        for result in compare(&engine, &pairs(), mode) {
            assert_non_finite(&result, &format!("compare {mode}"));
        }
    }
    assert_non_finite(&rank(&engine, &[rank_request()])[0], "rank");
    for method in [SelectMethod::Full, SelectMethod::Bubble] {
        let picked = select_n(&engine, &[rank_request()], Target::Best, method, 1);
        assert_non_finite(&picked[0], &format!("best-of-n {method}"));
    }
}

#[test]
fn a_nan_in_one_embedding_row_fails_only_the_inputs_that_read_it() {
    let (_tmp, dir) = copy_fixture("tiny-original");
    let engine = load(&dir).unwrap();
    let tokenizer = pairrm::tokenizer::PairTokenizer::from_dir(&common::fixtures().join("tiny-backbone")).unwrap();
    // A token of "zebra" that no other text below has gets a NaN row.
    let others: Vec<u32> = ["hello", "yes", "no"].iter().flat_map(|t| tokenizer.encode(t).unwrap()).collect();
    let zebra = engine.encode("zebra", "", "").unwrap().ids;
    let row = *zebra[2..].iter().find(|id| !others.contains(id)).expect("a token of its own") as usize;
    drop(engine);
    let h = 32;
    poison(&dir.join("model.safetensors"), "pretrained_model.embeddings.word_embeddings.weight", row * h, f32::NAN);
    let engine = load(&dir).unwrap();
    let requests = [
        CompareRequest { instruction: None, source: "hello".into(), a: "yes".into(), b: "no".into() },
        CompareRequest { instruction: None, source: "zebra".into(), a: "yes".into(), b: "no".into() },
    ];
    let results = compare(&engine, &requests, CompareMode::Both);
    assert!(results[0].as_ref().unwrap().logit.is_finite());
    assert_non_finite(&results[1], "zebra");
}

/// The tiny-original checkpoint with its backbone config changed by `edit`.
fn with_backbone_config(edit: impl FnOnce(&mut Value)) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = copy_fixture("tiny-original");
    let backbone = tmp.path().join("backbone");
    std::fs::create_dir_all(&backbone).unwrap();
    for f in ["config.json", "spm.model", "tokenizer_config.json"] {
        std::fs::copy(common::fixtures().join("tiny-backbone").join(f), backbone.join(f)).unwrap();
    }
    let mut config = read_json(&backbone.join("config.json"));
    edit(&mut config);
    write_json(&backbone.join("config.json"), &config);
    let mut ranker = read_json(&dir.join("config.json"));
    ranker["model_name"] = json!(backbone.to_str().unwrap());
    write_json(&dir.join("config.json"), &ranker);
    (tmp, dir)
}

#[test]
fn non_positive_or_non_finite_layer_norm_eps_is_rejected_at_load() {
    for eps in [json!(-1), json!(0.0), json!(-1e-7)] {
        let (_tmp, dir) = with_backbone_config(|c| c["layer_norm_eps"] = eps.clone());
        let e = load_err(&dir);
        assert!(e.contains("layer_norm_eps") && e.contains("positive finite"), "eps {eps}: {e}");
        assert!(e.contains("config.json"), "eps {eps}: {e}");
    }
}

#[test]
fn invalid_backbone_sizes_are_rejected_naming_the_field() {
    for (key, value, needle) in [
        ("intermediate_size", json!(0), "intermediate_size is 0"),
        ("hidden_size", json!(1u64 << 40), "hidden_size"),
        ("position_buckets", json!(1), "position_buckets"),
        ("max_relative_positions", json!(4), "position_buckets 8"),
        ("attention_head_size", json!(0), "attention_head_size is 0"),
    ] {
        let (_tmp, dir) = with_backbone_config(|c| c[key] = value);
        let e = load_err(&dir);
        assert!(e.contains(needle), "{key}: {e}");
    }
}

#[test]
fn tensors_the_config_does_not_use_fail_the_load_naming_them() {
    // The checkpoint has 2 layers; a config saying 1 leaves layer 1 unread.
    let (_tmp, dir) = with_backbone_config(|c| c["num_hidden_layers"] = json!(1));
    let e = load_err(&dir);
    assert!(e.contains("model.safetensors"), "{e}");
    assert!(e.contains("`pretrained_model.encoder.layer.1.*` (16 tensors)"), "{e}");
    assert!(e.contains("1 layers") && e.contains("does not match"), "{e}");

    // Without norm_rel_ebd the encoder's LayerNorm is unread.
    let (_tmp, dir) = with_backbone_config(|c| c["norm_rel_ebd"] = json!("none"));
    let e = load_err(&dir);
    assert!(
        e.contains("`pretrained_model.encoder.LayerNorm.bias`, `pretrained_model.encoder.LayerNorm.weight`"),
        "{e}"
    );

    // Any stray tensor.
    let (_tmp, dir) = copy_fixture("tiny-original");
    edit_tensors(&dir.join("model.safetensors"), |t| {
        t.push(("pretrained_model.extra.weight".into(), safetensors::Dtype::F32, vec![2], vec![0; 8]));
        t.push(("head_layer.7.weight".into(), safetensors::Dtype::F32, vec![1], vec![0; 4]));
    });
    let e = load_err(&dir);
    assert!(e.contains("2 tensors") && e.contains("`head_layer.7.weight`, `pretrained_model.extra.weight`"), "{e}");
}

#[test]
fn missing_tensors_fail_the_load_naming_them() {
    let (_tmp, dir) = with_backbone_config(|c| c["num_hidden_layers"] = json!(3));
    let e = load_err(&dir);
    assert!(e.contains("`pretrained_model.encoder.layer.2.") && e.contains("is missing"), "{e}");

    let (_tmp, dir) = copy_fixture("tiny-original");
    edit_tensors(&dir.join("model.safetensors"), |t| {
        t.retain(|t| t.0 != "pretrained_model.encoder.layer.0.output.dense.bias")
    });
    let e = load_err(&dir);
    assert!(e.contains("`pretrained_model.encoder.layer.0.output.dense.bias` is missing"), "{e}");
}

#[test]
fn buffers_the_reference_ignores_are_allowed() {
    // position_ids (saved by transformers < 4.31), int64, in any layout.
    let ids: Vec<u8> = (0..64i64).flat_map(|i| i.to_le_bytes()).collect();
    for fixture in ["tiny-original", "tiny-hf"] {
        let (_tmp, dir) = copy_fixture(fixture);
        edit_tensors(&dir.join("model.safetensors"), |t| {
            t.push((
                "pretrained_model.embeddings.position_ids".into(),
                safetensors::Dtype::I64,
                vec![1, 64],
                ids.clone(),
            ))
        });
        let engine = load(&dir).unwrap_or_else(|e| panic!("{fixture}: {e}"));
        assert!(compare(&engine, &pairs(), CompareMode::Both).iter().all(|r| r.is_ok()));
    }
    // Absolute position embeddings: transformers skips them in the PairRM-hf layout only.
    let table = vec![0u8; 64 * 32 * 4];
    let add = |t: &mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>| {
        t.push((
            "pretrained_model.embeddings.position_embeddings.weight".into(),
            safetensors::Dtype::F32,
            vec![64, 32],
            table.clone(),
        ))
    };
    let (_tmp, dir) = copy_fixture("tiny-hf");
    edit_tensors(&dir.join("model.safetensors"), add);
    load(&dir).unwrap();
    let (_tmp, dir) = copy_fixture("tiny-original");
    edit_tensors(&dir.join("model.safetensors"), add);
    assert!(load_err(&dir).contains("position_embeddings"));
}

#[test]
fn the_committed_fixtures_use_every_tensor() {
    let fixtures = ["tiny-original", "tiny-original-bin", "tiny-hf", "tiny-pair-ranker"];
    for (fixture, precision) in fixtures.into_iter().flat_map(|f| Precision::ALL.map(|p| (f, p))) {
        let checkpoint =
            Checkpoint::open(common::fixtures().join(fixture).to_str().unwrap(), &OpenOptions::default()).unwrap();
        let options = ModelOptions { precision, ..Default::default() };
        let model = pairrm::model::PairRm::load(&checkpoint, &options).unwrap();
        drop(model);
        let ignored: &[&str] =
            if fixture == "tiny-pair-ranker" { &["pretrained_model.embeddings.position_ids"] } else { &[] };
        assert_eq!(checkpoint.weights.unread(), ignored, "{fixture} in {precision:?}");
    }
}

#[test]
fn absurd_limits_are_rejected_before_loading() {
    let dir = common::fixtures().join("tiny-original");
    for (source, candidate, needle) in [
        (None, Some(usize::MAX), "candidate_max_length"),
        (Some(1usize << 23), None, "source_max_length"),
        (None, Some(2), "candidate_max_length"),
    ] {
        let options = OpenOptions { source_max_length: source, candidate_max_length: candidate, ..Default::default() };
        let e = Engine::load(dir.to_str().unwrap(), &options, EngineOptions::default()).err().unwrap().to_string();
        assert!(e.contains(needle), "{e}");
        assert!(e.contains("too large") || e.contains("too small"), "{e}");
    }
    // The largest limits load, and truncate as usual.
    let options = OpenOptions {
        source_max_length: Some(pairrm::config::PairRmConfig::MAX_LENGTH),
        candidate_max_length: Some(pairrm::config::PairRmConfig::MAX_LENGTH),
        ..Default::default()
    };
    let engine = Engine::load(dir.to_str().unwrap(), &options, EngineOptions::default()).unwrap();
    let input = engine.encode("a b c", "d e", "f").unwrap();
    assert_eq!(input.ids.len(), engine.encode("a b c", "d e", "f").unwrap().ids.len());
    // Limits in a config file are checked too.
    let (_tmp, dir) = copy_fixture("tiny-original");
    let mut config = read_json(&dir.join("config.json"));
    config["candidate_maxlength"] = json!(u64::MAX);
    write_json(&dir.join("config.json"), &config);
    let e = load_err(&dir);
    assert!(e.contains("candidate_max") && e.contains("config.json"), "{e}");
}
