//! `pairrm label` end to end on the tiny fixture model: every input format gives the same
//! records, kills at random points (SIGKILL) followed by a rerun give the bytes of an
//! uninterrupted run, shards merge into the single-process output, and a resume with other
//! settings is refused.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_ipc::writer::StreamWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model() -> PathBuf {
    root().join("tests/fixtures/models/tiny-original")
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/label").join(name)
}

fn label(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pairrm"));
    cmd.arg("label").arg("--model").arg(model()).arg("--no-progress").args(args);
    cmd
}

fn run_ok(mut cmd: Command) -> Output {
    let out = cmd.output().expect("runs");
    assert!(out.status.code().is_some_and(|c| c <= 1), "{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The fixture's rows as Arrow batches.
fn fixture_batches() -> Vec<RecordBatch> {
    let file = File::open(fixture("ultrafeedback.parquet")).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(|b| b.unwrap()).collect()
}

#[test]
fn every_input_format_gives_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let batches = fixture_batches();
    let schema = batches[0].schema();
    // JSON lines and a JSON array of the same rows.
    let mut rows = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            rows.push(pairrm_label::input::arrow_row(b, i).unwrap());
        }
    }
    let lines: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(d.join("rows.jsonl"), &lines).unwrap();
    std::fs::write(d.join("rows.json"), serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    // A `save_to_disk` folder: two Arrow IPC stream shards listed in state.json.
    let saved = d.join("saved");
    std::fs::create_dir(&saved).unwrap();
    for (k, chunk) in batches.chunks(1).enumerate() {
        let f = File::create(saved.join(format!("data-{k:05}-of-{:05}.arrow", batches.len()))).unwrap();
        let mut w = StreamWriter::try_new(f, &schema).unwrap();
        for b in chunk {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
    }
    let files: Vec<serde_json::Value> = (0..batches.len())
        .map(|k| serde_json::json!({"filename": format!("data-{k:05}-of-{:05}.arrow", batches.len())}))
        .collect();
    std::fs::write(saved.join("state.json"), serde_json::json!({"_data_files": files}).to_string()).unwrap();
    std::fs::write(saved.join("dataset_info.json"), "{}").unwrap();
    // zstd Parquet in a folder (as the hub lays out a split), several small row groups.
    let hub = d.join("hub");
    std::fs::create_dir(&hub).unwrap();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(7))
        .build();
    let mut w =
        ArrowWriter::try_new(File::create(hub.join("train-00000-of-00001.parquet")).unwrap(), schema, Some(props))
            .unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();

    let mut outputs = Vec::new();
    for input in [fixture("ultrafeedback.parquet"), d.join("rows.jsonl"), d.join("rows.json"), saved, hub] {
        let out = d.join(format!("out-{}.jsonl", outputs.len()));
        run_ok({
            let mut c = label(&["--strategy", "all-pairs", "--input", s(&input), "--output", s(&out)]);
            c.stderr(Stdio::piped());
            c
        });
        outputs.push(read(&out));
    }
    assert!(!outputs[0].is_empty());
    for (k, o) in outputs.iter().enumerate() {
        assert_eq!(o, &outputs[0], "input {k} differs");
    }
    // The records: ids carried, rows numbered, pairs ordered by margin sign, no equal texts.
    let text = String::from_utf8(outputs[0].clone()).unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["id"].as_str().unwrap().starts_with("uf-"));
        assert!(v["margin"].as_f64().unwrap() > 0.0);
        assert_ne!(v["chosen"], v["rejected"]);
        assert_ne!(v["row"], 5, "row 5 has only identical answers");
    }
}

#[test]
fn bad_rows_become_error_records_and_chat_rows_are_conversational() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let o = run_ok(label(&["--input", s(&fixture("rows.jsonl")), "--output", s(&out)]));
    assert_eq!(o.status.code(), Some(1), "bad rows make the exit code 1");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("labelled 10 rows") && stderr.contains("3 errors"), "{stderr}");
    let errors = String::from_utf8(read(&dir.path().join("out.jsonl.errors.jsonl"))).unwrap();
    let rows: Vec<u64> = errors
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, vec![6, 7, 8]);
    let records: Vec<serde_json::Value> =
        String::from_utf8(read(&out)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let chat = records.iter().find(|r| r["id"] == 4).expect("the chat row gives a pair");
    assert_eq!(chat["prompt"][0], serde_json::json!({"role": "system", "content": "Be brief."}));
    assert_eq!(chat["chosen"][0]["role"], "assistant");
    // Identical candidates and a single one give nothing; the duplicate "4" of row 1 is not paired with itself.
    assert!(records.iter().all(|r| r["id"] != 5 && r["id"] != 6 && r["chosen"] != r["rejected"]));
    // The standard style cannot hold chat rows: they become errors.
    let std_out = dir.path().join("std.jsonl");
    run_ok(label(&["--input", s(&fixture("rows.jsonl")), "--output", s(&std_out), "--style", "standard"]));
    let errors = String::from_utf8(read(&dir.path().join("std.jsonl.errors.jsonl"))).unwrap();
    assert!(errors.contains("conversational"), "{errors}");
}

/// A small deterministic generator for the kill times (SplitMix64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound.max(1)
    }
}

fn kill_and_resume(output_name: &str, strategy: &str, kills: usize) {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("ultrafeedback.parquet");
    let args = |out: &Path| -> Vec<String> {
        ["--input", s(&input), "--output", s(out), "--strategy", strategy, "--chunk-rows", "2"]
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    let reference = dir.path().join(format!("reference-{output_name}"));
    let started = Instant::now();
    run_ok(label(&args(&reference).iter().map(String::as_str).collect::<Vec<_>>()));
    let full_run = started.elapsed();
    let expected = read(&reference);

    let out = dir.path().join(output_name);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("kill seed {seed}");
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut killed = 0;
    for _ in 0..kills {
        if Instant::now() > deadline {
            break;
        }
        let mut child = label(&args(&out).iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let wait = Duration::from_micros(rng.below(full_run.as_micros() as u64 * 12 / 10));
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    assert!(killed > 0, "no run was killed (seed {seed})");
    run_ok(label(&args(&out).iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(read(&out), expected, "after {killed} kills (seed {seed}) the output differs");
    assert!(!dir.path().join(format!("{output_name}.label-work")).exists(), "work folder left behind");
    assert!(!dir.path().join(format!("{output_name}.label-work.removing")).exists(), "work folder left behind");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn killed_anywhere_and_rerun_gives_the_same_parquet_bytes() {
    kill_and_resume("out.parquet", "full", 20);
}

#[test]
fn killed_anywhere_and_rerun_gives_the_same_jsonl_bytes() {
    kill_and_resume("out.jsonl", "best-worst", 10);
}

#[test]
fn shards_merge_into_the_single_process_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = fixture("rows.jsonl");
    for ext in ["parquet", "jsonl"] {
        let single = d.join(format!("single.{ext}"));
        run_ok(label(&["--input", s(&input), "--output", s(&single), "--chunk-rows", "2"]));
        let shards: Vec<PathBuf> = (0..3).map(|i| d.join(format!("shard-{i}.{ext}"))).collect();
        for (i, shard) in shards.iter().enumerate() {
            run_ok(label(&["--input", s(&input), "--output", s(shard), "--shard", &format!("{i}/3")]));
        }
        let merged = d.join(format!("merged.{ext}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pairrm"));
        cmd.args(["label", "merge", "--output", s(&merged)]).args(&shards);
        let o = run_ok(cmd);
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(read(&merged), read(&single), "{ext}");
        assert_eq!(
            read(&d.join(format!("merged.{ext}.errors.jsonl"))),
            read(&d.join(format!("single.{ext}.errors.jsonl")))
        );
        if ext == "jsonl" {
            let cat: Vec<u8> = shards.iter().flat_map(|p| read(p)).collect();
            assert_eq!(cat, read(&single), "cat of the JSON-lines shards");
        }
    }
}

#[test]
fn a_resume_with_other_settings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let work = dir.path().join("out.jsonl.label-work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("manifest.json"), r#"{"version": 1, "options": {"strategy": "full"}}"#).unwrap();
    let o = label(&["--input", s(&fixture("rows.jsonl")), "--output", s(&out)]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("other settings") && stderr.contains("options.strategy"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn bad_settings_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let o = label(&["--input", s(&fixture("rows.jsonl")), "--output", s(&out)]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--output-format"));
    let o = label(&["--input", s(&fixture("rows.jsonl")), "--output", "x.jsonl", "--shard", "3/3"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad shard"));
}
