//! Broken models and absurd settings through the real binary: a job that cannot run exits 2 with
//! a message naming the problem; results that are not finite numbers are error records, counted
//! in the exit code (1), never `{"logit": null}` or an arbitrary pick.

mod common;

use std::path::{Path, PathBuf};

use common::pairrm;
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

/// A copy of the tiny-original checkpoint and of its backbone in a temporary directory.
fn tiny_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["tiny-original", "tiny-backbone"] {
        std::fs::create_dir_all(tmp.path().join(name)).unwrap();
        for entry in std::fs::read_dir(fixtures().join(name)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), tmp.path().join(name).join(entry.file_name())).unwrap();
        }
    }
    let dir = tmp.path().join("tiny-original");
    (tmp, dir)
}

/// Overwrites element `index` of f32 tensor `name` of a safetensors file with `value`.
fn poison(file: &Path, name: &str, index: usize, value: f32) {
    let mut bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header[name]["dtype"], "F32");
    let at = 8 + n + header[name]["data_offsets"][0].as_u64().unwrap() as usize + 4 * index;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(file, bytes).unwrap();
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, value.to_string()).unwrap();
}

const PAIRS: &str = "{\"source\": \"hello\", \"a\": \"hi\", \"b\": \"go away\"}\n\
                     {\"source\": \"2+2?\", \"a\": \"4\", \"b\": \"5\"}\n";
const RANK: &str = "{\"source\": \"pick\", \"candidates\": [\"a\", \"bb\", \"ccc\", \"dddd\"]}\n";

#[test]
fn non_finite_results_are_error_records_and_exit_1() {
    // A NaN in the [CLS] row of the word embeddings (a lookup table, not scanned at load) reaches
    // every input.
    let (_tmp, dir) = tiny_copy();
    poison(&dir.join("model.safetensors"), "pretrained_model.embeddings.word_embeddings.weight", 32 + 3, f32::NAN);
    let model = dir.to_str().unwrap();
    for (args, input, n) in [
        (vec!["compare", "--model", model], PAIRS, 2),
        (vec!["compare", "--model", model, "--mode", "ab"], PAIRS, 2),
        (vec!["rank", "--model", model], RANK, 1),
        (vec!["rank", "--model", model, "--strategy", "bubble"], RANK, 1),
        (vec!["rank", "--model", model, "--reference", "longest"], RANK, 1),
    ] {
        let out = pairrm(&args, input);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        let lines = &out.lines;
        assert_eq!(lines.len(), n, "{args:?}");
        for (i, line) in lines.iter().enumerate() {
            let error = line["error"].as_str().unwrap_or_else(|| panic!("{args:?}: {line}"));
            assert!(
                error.starts_with(&format!("line {}: ", i + 1)) && error.contains("a non-finite number"),
                "{error}"
            );
        }
    }
}

#[test]
fn non_finite_weights_stop_the_job_naming_the_tensor() {
    let (_tmp, dir) = tiny_copy();
    poison(&dir.join("model.safetensors"), "head_layer.4.bias", 0, f32::INFINITY);
    let out = pairrm(&["compare", "--model", dir.to_str().unwrap()], PAIRS);
    assert_eq!(out.code, Some(2));
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("`head_layer.4.bias` holds inf at index 0"), "{}", out.stderr);
}

#[test]
fn a_bad_config_stops_the_job_naming_the_field() {
    let (_tmp, dir) = tiny_copy();
    edit_json(&dir.join("../tiny-backbone/config.json"), |c| c["layer_norm_eps"] = json!(-1));
    let out = pairrm(&["compare", "--model", dir.to_str().unwrap()], PAIRS);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("layer_norm_eps is -1"), "{}", out.stderr);

    // A config with fewer layers than the checkpoint.
    let (_tmp, dir) = tiny_copy();
    edit_json(&dir.join("../tiny-backbone/config.json"), |c| c["num_hidden_layers"] = json!(1));
    let out = pairrm(&["rank", "--model", dir.to_str().unwrap()], RANK);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("`pretrained_model.encoder.layer.1.*` (16 tensors)"), "{}", out.stderr);
}

#[test]
fn absurd_limits_stop_the_job() {
    let model = fixtures().join("tiny-original");
    let model = model.to_str().unwrap();
    for (flag, value) in [
        ("--candidate-max-length", "18446744073709551615"),
        ("--source-max-length", "4194305"),
        ("--candidate-max-length", "2"),
    ] {
        let out = pairrm(&["compare", "--model", model, flag, value], PAIRS);
        assert_eq!(out.code, Some(2), "{flag} {value}: {}", out.stderr);
        assert!(out.stdout.is_empty());
        let name = flag.trim_start_matches("--").replace('-', "_");
        assert!(out.stderr.contains(&name) && out.stderr.contains(value), "{flag} {value}: {}", out.stderr);
    }
    // Every command that loads a model refuses it the same way, before any work.
    let eval = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/eval");
    let data = |f: &str| eval.join(f).display().to_string();
    let (rewardbench, outputs, baseline) =
        (data("rewardbench.jsonl"), data("winrate/model_outputs.json"), data("winrate/baseline.jsonl"));
    let huge = "18446744073709551615";
    let tmp = tempfile::tempdir().unwrap();
    let rows = tmp.path().join("rows.jsonl");
    std::fs::write(&rows, "{\"prompt\": \"q\", \"candidates\": [\"a\", \"b\"]}\n").unwrap();
    let (rows, labelled) = (rows.display().to_string(), tmp.path().join("labelled.jsonl").display().to_string());
    for args in [
        vec!["encode"],
        vec!["rank"],
        vec!["best-of-n", "--generator", "http://127.0.0.1:9", "--generator-model", "m"],
        vec!["eval", "--data", &rewardbench, "--format", "rewardbench"],
        vec!["winrate", "--outputs", &outputs, "--baseline", &baseline],
        vec!["serve", "--host", "127.0.0.1", "--port", "0"],
        vec!["label", "--input", &rows, "--output", &labelled],
    ] {
        let args = [&args[..], &["--model", model, "--candidate-max-length", huge]].concat();
        let out = pairrm(&args, "{\"source\": \"q\", \"a\": \"x\", \"b\": \"y\", \"candidates\": [\"x\"]}\n");
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}");
        let e = &out.stderr;
        assert!(e.contains(&format!("candidate_max_length: {huge} is too large")), "{args:?}: {e}");
    }
    assert!(!Path::new(&labelled).exists(), "label wrote nothing");
    // The largest limit works.
    let out = pairrm(&["compare", "--model", model, "--candidate-max-length", "4194304"], PAIRS);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.lines.iter().all(|l| l["logit"].is_f64()));
}
