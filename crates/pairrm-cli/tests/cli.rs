//! The `pairrm` CLI contract, exercised through the real binary: JSON lines in and out in order,
//! error records in place, exit codes, files, overrides, and parity with the reference goldens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

fn model(name: &str) -> String {
    fixtures().join(name).to_string_lossy().into_owned()
}

fn goldens(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name).join("goldens.json")).unwrap()).unwrap()
}

fn pairrm(args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pairrm"));
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Stdout as JSON values, one per line; every line must be JSON (stdout carries nothing else).
fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line {l:?} is not JSON: {e}")))
        .collect()
}

fn jsonl(values: &[Value]) -> String {
    values.iter().map(|v| v.to_string() + "\n").collect()
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-5 * want.abs().max(1.0)
}

fn pair_lines(g: &Value) -> Vec<Value> {
    g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!({"instruction": c["instruction"], "source": c["source"], "a": c["a"], "b": c["b"]}))
        .collect()
}

fn check_compare_parity(model: &str, g: &Value, envs: &[(&str, &str)]) {
    let input = jsonl(&pair_lines(g));
    let enc = pairrm(&["encode", "--model", model], &input, envs);
    assert!(enc.status.success(), "{}", String::from_utf8_lossy(&enc.stderr));
    for (got, c) in lines(&enc).iter().zip(g["cases"].as_array().unwrap()) {
        assert_eq!(got["input_ids"], c["input_ids"], "{c}");
    }
    for (mode, key, sign) in [("ab", "logit_ab", 1.0), ("ba", "logit_ba_reference", -1.0), ("both", "logit_both", 1.0)]
    {
        let out = pairrm(&["compare", "--model", model, "--mode", mode], &input, envs);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let got = lines(&out);
        assert_eq!(got.len(), g["cases"].as_array().unwrap().len());
        for (r, c) in got.iter().zip(g["cases"].as_array().unwrap()) {
            let want = sign * c[key].as_f64().unwrap();
            let logit = r["logit"].as_f64().unwrap();
            assert!(close(logit, want), "{mode}: {logit} vs {want} for {c}");
            assert_eq!(r["a_better"].as_bool().unwrap(), logit > 0.0);
        }
    }
}

fn check_rank_parity(model: &str, g: &Value) {
    let cases = g["rank"].as_array().unwrap();
    let input = jsonl(
        &cases
            .iter()
            .map(|c| json!({"instruction": c["instruction"], "source": c["source"], "candidates": c["candidates"]}))
            .collect::<Vec<_>>(),
    );
    let out = pairrm(&["rank", "--model", model], &input, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (r, c) in lines(&out).iter().zip(cases) {
        assert_eq!(r["ranks"], c["ranks"], "{c}");
        for (a, b) in r["scores"].as_array().unwrap().iter().zip(c["scores"].as_array().unwrap()) {
            assert!(close(a.as_f64().unwrap(), b.as_f64().unwrap()), "{a} vs {b} in {c}");
        }
    }
    for c in g["rank_with_ref"].as_array().unwrap() {
        let mut line = json!({"instruction": c["instruction"], "source": c["source"], "candidates": c["candidates"]});
        let mut args = vec!["rank", "--model", model];
        match c["ref_mode"].as_str().unwrap() {
            "given" => line["reference"] = c["reference"].clone(),
            "median_length" => args.extend(["--reference", "median"]),
            mode => args.extend(["--reference", mode]),
        }
        let out = pairrm(&args, &jsonl(&[line]), &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r = &lines(&out)[0];
        assert_eq!(r["ranks"], c["ranks"], "{c}");
        for (a, b) in r["scores"].as_array().unwrap().iter().zip(c["scores"].as_array().unwrap()) {
            assert!(close(a.as_f64().unwrap(), b.as_f64().unwrap()), "{a} vs {b} in {c}");
        }
    }
}

#[test]
fn parity_original_layout() {
    let g = goldens("tiny-original");
    check_compare_parity(&model("tiny-original"), &g, &[]);
    check_rank_parity(&model("tiny-original"), &g);
    // Conversations go through `compare`.
    let convs = g["conversations"].as_array().unwrap();
    let input = jsonl(
        &convs
            .iter()
            .map(|c| json!({"conversation_a": c["conversation_a"], "conversation_b": c["conversation_b"]}))
            .collect::<Vec<_>>(),
    );
    let out = pairrm(&["compare", "--model", &model("tiny-original")], &input, &[]);
    for (r, c) in lines(&out).iter().zip(convs) {
        assert!(close(r["logit"].as_f64().unwrap(), c["logit_both"].as_f64().unwrap()), "{c}");
    }
}

#[test]
fn parity_pytorch_bin_and_hf_layouts() {
    check_compare_parity(&model("tiny-original-bin"), &goldens("tiny-original-bin"), &[]);
    check_rank_parity(&model("tiny-original-bin"), &goldens("tiny-original-bin"));
    check_compare_parity(&model("tiny-hf"), &goldens("tiny-hf"), &[]);
    // llm-blender/pair-ranker's layout (128/128 limits, position_ids buffer in the .bin).
    check_compare_parity(&model("tiny-pair-ranker"), &goldens("tiny-pair-ranker"), &[]);
    check_rank_parity(&model("tiny-pair-ranker"), &goldens("tiny-pair-ranker"));
}

/// A hub id resolved through an HF cache with `HF_HUB_OFFLINE=1`, real deberta-v3 tokenizer.
#[test]
fn parity_through_offline_hf_cache() {
    let spm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokenizer/deberta-v3/spm.model");
    let tmp = tempfile::tempdir().unwrap();
    let rev = "89abcdef0123456789abcdef0123456789abcdef";
    let add = |repo: &str, files: &[(&str, PathBuf)]| {
        let base = tmp.path().join(format!("models--{}", repo.replace('/', "--")));
        std::fs::create_dir_all(base.join("snapshots").join(rev)).unwrap();
        std::fs::create_dir_all(base.join("refs")).unwrap();
        std::fs::write(base.join("refs/main"), rev).unwrap();
        for (name, src) in files {
            std::fs::copy(src, base.join("snapshots").join(rev).join(name)).unwrap();
        }
    };
    let bb = fixtures().join("realtok-backbone");
    add(
        "microsoft/deberta-v3-large",
        &[
            ("config.json", bb.join("config.json")),
            ("tokenizer_config.json", bb.join("tokenizer_config.json")),
            ("spm.model", spm),
        ],
    );
    let ck = fixtures().join("realtok-original");
    add(
        "acme/pairrm-test",
        &[("config.json", ck.join("config.json")), ("model.safetensors", ck.join("model.safetensors"))],
    );
    let cache = tmp.path().to_string_lossy().into_owned();
    let envs = [("HF_HUB_CACHE", cache.as_str()), ("HF_HUB_OFFLINE", "1")];
    check_compare_parity("acme/pairrm-test", &goldens("realtok-original"), &envs);
    // A repo that is not cached is a clear error, and nothing is fetched.
    let out = pairrm(&["compare", "--model", "acme/not-cached"], "", &envs);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("acme/not-cached") && err.contains("cache"), "{err}");
}

#[test]
fn bad_lines_yield_error_records_in_place_and_exit_1() {
    let input = [
        r#"{"source": "hello!", "a": "hi!", "b": "f**k off!"}"#,
        r#"{"source": "x", "a": "y"}"#,
        "not json",
        "",
        r#"[1, 2]"#,
        r#"{"source": 3, "a": "y", "b": "z"}"#,
        r#"{"conversation_a": [{"role": "USER", "content": "a"}], "conversation_b": [{"role": "USER", "content": "a"}]}"#,
        r#"{"conversation_a": [{"role": "USER", "content": "a"}, {"role": "ASSISTANT", "content": "b"}], "conversation_b": [{"role": "USER", "content": "OTHER"}, {"role": "ASSISTANT", "content": "c"}]}"#,
        r#"{"source": "<|source|> hi <|candidate1|>", "a": "<|candidate2|>[SEP]", "b": "<|candidate|>"}"#,
        r#"{"source": "I love you!", "a": "I hate you!", "b": "I love you, too!", "extra": 1}"#,
    ]
    .join("\n")
        + "\n";
    let out = pairrm(&["compare", "--model", &model("tiny-original")], &input, &[]);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out);
    assert_eq!(got.len(), 10);
    let ok = [0, 8, 9];
    for (i, r) in got.iter().enumerate() {
        if ok.contains(&i) {
            assert!(r["logit"].is_number(), "line {}: {r}", i + 1);
        } else {
            let e = r["error"].as_str().unwrap_or_else(|| panic!("line {}: {r}", i + 1));
            assert!(e.starts_with(&format!("line {}: ", i + 1)), "{e}");
        }
    }
    assert!(got[1]["error"].as_str().unwrap().contains("`b`"));
    assert!(got[7]["error"].as_str().unwrap().contains("conversation_b[0]"), "{}", got[7]);
    let rank_in = "{\"source\": \"q\", \"candidates\": []}\n{\"source\": \"q\", \"candidates\": [\"a\", 1]}\n{\"source\": \"q\", \"candidates\": [\"a\", \"b\"]}\n";
    let out = pairrm(&["rank", "--model", &model("tiny-original")], rank_in, &[]);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out);
    assert!(got[0]["error"].as_str().unwrap().contains("candidates"));
    assert!(got[1]["error"].is_string());
    assert_eq!(got[2]["ranks"].as_array().unwrap().len(), 2);
}

#[test]
fn files_overrides_and_bubble() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let output = tmp.path().join("out.jsonl");
    let long = "word ".repeat(200);
    std::fs::write(&input, jsonl(&[json!({"source": long, "a": long, "b": "short"})])).unwrap();
    let args = |extra: &[&str]| {
        let mut a =
            vec!["encode", "--model", &model("tiny-original")].into_iter().map(String::from).collect::<Vec<_>>();
        a.extend([
            "--input".into(),
            input.to_string_lossy().into(),
            "--output".into(),
            output.to_string_lossy().into(),
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        let out = pairrm(&a.iter().map(String::as_str).collect::<Vec<_>>(), "", &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "results go to --output only");
        let v: Value = serde_json::from_str(std::fs::read_to_string(&output).unwrap().trim()).unwrap();
        v["input_ids"].as_array().unwrap().len()
    };
    // Checkpoint limits 24 / 16: 24 + 2 * 16 + the short candidate's share of nothing.
    assert_eq!(run(&[]), 24 + 16 + std::cmp::min(16, run_len_short()));
    assert_eq!(
        run(&["--source-max-length", "10", "--candidate-max-length", "5"]),
        10 + 5 + std::cmp::min(5, run_len_short())
    );

    let line = jsonl(&[json!({"source": "What is 2+2?", "candidates": ["4", "5", "It is 4.", "four"]})]);
    let a = pairrm(&["rank", "--model", &model("tiny-original"), "--strategy", "bubble", "--seed", "7"], &line, &[]);
    let b = pairrm(&["rank", "--model", &model("tiny-original"), "--strategy", "bubble", "--seed", "7"], &line, &[]);
    assert_eq!(lines(&a), lines(&b), "same seed, same result");
    let r = &lines(&a)[0];
    let best = r["best"].as_u64().unwrap();
    assert_eq!(r["order"][0].as_u64().unwrap(), best);
    let mut order: Vec<u64> = r["order"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    order.sort();
    assert_eq!(order, vec![0, 1, 2, 3]);
    let w = pairrm(&["rank", "--model", &model("tiny-original"), "--strategy", "bubble", "--worst"], &line, &[]);
    assert!(lines(&w)[0]["worst"].is_u64());
}

/// Tokens of `[CLS] <|candidate|> short [SEP]` with the tiny tokenizer.
fn run_len_short() -> usize {
    let out = pairrm(
        &["encode", "--model", &model("tiny-original")],
        &jsonl(&[json!({"source": "", "a": "short", "b": "short"})]),
        &[],
    );
    let ids = lines(&out)[0]["input_ids"].as_array().unwrap().len();
    (ids - 3) / 2
}

#[test]
fn a_model_that_does_not_load_exits_2_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), "{not json").unwrap();
    let out = pairrm(&["compare", "--model", &tmp.path().to_string_lossy()], "", &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.json"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bench_reports_every_workload_and_the_gemm_rates() {
    let out = pairrm(&["bench", "--model", &model("tiny-original"), "--passes", "2", "--json"], "", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON report on stdout");
    let workloads = report["workloads"].as_array().unwrap();
    let names: Vec<&str> = workloads.iter().map(|w| w["workload"].as_str().unwrap()).collect();
    assert_eq!(names, ["uniform", "mixed", "rank4", "best16"]);
    for w in workloads {
        assert!(w["passes"].as_u64().unwrap() >= 2, "{w}");
        assert!(w["passes_per_second"].as_f64().unwrap() > 0.0, "{w}");
        assert!(w["executed_gflop"].as_f64().unwrap() <= w["nominal_gflop"].as_f64().unwrap(), "{w}");
    }
    let (peak, sustained) =
        (report["gemm_peak_gflops"].as_f64().unwrap(), report["gemm_sustained_gflops"].as_f64().unwrap());
    assert!(sustained > 0.0 && sustained <= peak, "peak {peak}, sustained {sustained}");
    assert!(report["f32_weight_bytes"].as_u64().unwrap() > 0 && report["peak_rss_bytes"].as_u64().unwrap() > 0);

    // --write-workload: the same items as JSON lines for bench/reference.py, and nothing run.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("work.jsonl");
    let out = pairrm(
        &["bench", "--model", &model("tiny-original"), "--workload", "rank4", "--passes", "24", "--write-workload"],
        "",
        &[],
    );
    assert!(!out.status.success(), "--write-workload needs a file");
    let out = pairrm(
        &[
            "bench",
            "--model",
            &model("tiny-original"),
            "--workload",
            "rank4",
            "--passes",
            "24",
            "--write-workload",
            file.to_str().unwrap(),
        ],
        "",
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    let items: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(items.len(), 2, "24 passes of rank4 = 2 items of 4 candidates");
    assert!(items.iter().all(|i| i["candidates"].as_array().unwrap().len() == 4));
}
