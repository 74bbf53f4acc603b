//! The resumable, shardable labelling job.
//!
//! The rows of the job's range (the whole input, or one shard's contiguous part) are labelled in
//! chunks of `chunk_rows`. Each finished chunk is stored in a work folder beside the output
//! (`OUTPUT.label-work/`): its records (JSON lines, or an Arrow IPC stream for Parquet output),
//! its error records and, last, a small `.done` file with its counts, each written to a temporary
//! file, synced and renamed. A `manifest.json` there records the settings; a run finding the
//! folder checks them (refusing other settings) and skips the chunks already done. When every
//! chunk is done, the output is assembled from the chunks in order with fixed writer settings
//! (written to a temporary file, synced, renamed), then the error side file, then the folder is
//! renamed away and removed. Killing the job anywhere and running it again therefore gives the same bytes as an
//! uninterrupted run.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use pairrm::judge::PairScorer;

use crate::chunk::{label_chunk, ChunkOutput, ChunkStats, LabelOptions};
use crate::error::{LabelError, Result};
use crate::input::{Input, InputFormat, RawRow};
use crate::output::{errors_path, remove_if_exists, sync_dir, temp_path, write_atomic, FinalWriter, OutputFormat};
use crate::record::{schema, to_batch, Style};
use crate::row::Columns;
use crate::strategy::Strategy;

/// Rows per chunk by default: the most work a kill can lose, and the rows scored together.
pub const DEFAULT_CHUNK_ROWS: usize = 256;

/// Which part of the input a process labels: shard `index` of `count` (from 0), the
/// `index`-th of `count` contiguous, equal (±1 row) ranges of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u64,
    /// The number of shards.
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl FromStr for Shard {
    type Err = LabelError;

    /// Parses `I/N` (`0 <= I < N`).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || LabelError::Settings(format!("bad shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The rows of this shard among `rows`: `[index·rows/count, (index+1)·rows/count)`.
    pub fn range(&self, rows: u64) -> (u64, u64) {
        let at = |i: u64| (u128::from(rows) * u128::from(i) / u128::from(self.count)) as u64;
        (at(self.index), at(self.index + 1))
    }
}

/// Whether records are written in TRL's standard or conversational format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StyleChoice {
    /// Conversational when the input has chat rows, else standard.
    #[default]
    Auto,
    /// This style.
    Fixed(Style),
}

/// A labelling job's settings.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// The input file or folder.
    pub input: PathBuf,
    /// Its format (detected when `None`).
    pub input_format: Option<InputFormat>,
    /// The output file.
    pub output: PathBuf,
    /// Its format (from the extension when `None`).
    pub output_format: Option<OutputFormat>,
    /// How pairs are picked.
    pub strategy: Strategy,
    /// A pair is kept only if its margin is above this.
    pub min_margin: f32,
    /// The record style.
    pub style: StyleChoice,
    /// Where rows are read from.
    pub columns: Columns,
    /// Which part of the input.
    pub shard: Shard,
    /// Rows per chunk (the resume granularity).
    pub chunk_rows: usize,
    /// What identifies the model's results (name, weights' precision, token limits), recorded
    /// in the manifest so that a resume with another model is refused.
    pub model: Value,
}

/// Told how the job advances (the CLI draws a progress bar with it).
pub trait Progress {
    /// The job's rows, and how many were already done by an earlier run.
    fn start(&self, rows: u64, done: u64);
    /// A chunk was finished: its rows and forward passes.
    fn chunk(&self, rows: u64, passes: u64);
    /// All chunks are done; the output is being assembled.
    fn assembling(&self);
}

/// No progress reports.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64, _: u64) {}
    fn chunk(&self, _: u64, _: u64) {}
    fn assembling(&self) {}
}

/// What a finished job did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Counts over the whole job (earlier interrupted runs included).
    pub stats: ChunkStats,
    /// Rows that an earlier run had already labelled.
    pub resumed_rows: u64,
    /// Time this run took.
    pub elapsed: Duration,
    /// Where the error records went (when there were any).
    pub errors_file: Option<PathBuf>,
}

/// What identifies an engine's results, for [`JobSettings::model`]: the model, the weights'
/// storage and the token limits (threads and batch sizes do not change results).
pub fn model_identity(engine: &pairrm::Engine) -> Value {
    json!({
        "model": engine.model_id(),
        "dtype": engine.dtype().to_string(),
        "source_max_length": engine.config().source_max_length,
        "candidate_max_length": engine.config().candidate_max_length,
    })
}

/// The work folder of an output: `OUTPUT.label-work` beside it.
pub fn work_dir(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".label-work");
    output.with_file_name(name)
}

/// Where a finished job's work folder goes to be deleted: `OUTPUT.label-work.removing`.
fn trash_dir(work: &Path) -> PathBuf {
    let mut name = work.file_name().unwrap_or_default().to_os_string();
    name.push(".removing");
    work.with_file_name(name)
}

const MANIFEST: &str = "manifest.json";
const MANIFEST_VERSION: u32 = 1;

/// Runs (or resumes) the job with `scorer`.
///
/// # Errors
/// Unreadable input or settings that cannot work; a work folder holding a job with other
/// settings; failing writes. Bad rows are not errors: they become error records.
pub fn run<S: PairScorer + ?Sized>(scorer: &S, settings: &JobSettings, progress: &dyn Progress) -> Result<Summary> {
    let started = Instant::now();
    if settings.chunk_rows == 0 {
        return Err(LabelError::Settings("chunk rows must be at least 1".into()));
    }
    if !settings.min_margin.is_finite() {
        return Err(LabelError::Settings("the minimum margin must be a finite number".into()));
    }
    let output_format = OutputFormat::for_path(&settings.output, settings.output_format)?;
    let input = Input::open(&settings.input, settings.input_format)?;
    let info = input.scan(&settings.columns)?;
    let style = match settings.style {
        StyleChoice::Fixed(style) => style,
        StyleChoice::Auto if info.chat => Style::Conversational,
        StyleChoice::Auto => Style::Standard,
    };
    let options = LabelOptions {
        strategy: settings.strategy,
        min_margin: settings.min_margin,
        style,
        columns: settings.columns.clone(),
        id_kind: info.id_kind,
    };
    let (start, end) = settings.shard.range(info.rows);
    let manifest = json!({
        "version": MANIFEST_VERSION,
        "input": input.stamps()?,
        "input_format": input.format(),
        "rows": info.rows,
        "shard": settings.shard.to_string(),
        "options": options,
        "output_format": output_format,
        "chunk_rows": settings.chunk_rows,
        "model": settings.model,
    });
    let work = work_dir(&settings.output);
    prepare_work_dir(&work, &manifest)?;

    let chunk_rows = settings.chunk_rows as u64;
    let chunks = (end - start).div_ceil(chunk_rows);
    let chunk_range = |k: u64| (start + k * chunk_rows, (start + (k + 1) * chunk_rows).min(end));
    let done: Vec<bool> = (0..chunks).map(|k| chunk_file(&work, k, "done").exists()).collect();
    let resumed_rows: u64 =
        (0..chunks).filter(|&k| done[k as usize]).map(|k| chunk_range(k).1 - chunk_range(k).0).sum();
    progress.start(end - start, resumed_rows);

    // Read from the first chunk not done; chunks done further on are skipped as they come.
    if let Some(first) = done.iter().position(|d| !d) {
        let (read_from, _) = chunk_range(first as u64);
        let mut pending: Vec<(u64, RawRow)> = Vec::new();
        let mut k = first as u64;
        let record_schema = schema(style, info.id_kind);
        input.read(&settings.columns, read_from, end, &mut |row, raw| {
            while row >= chunk_range(k).1 {
                k += 1;
            }
            if done[k as usize] {
                return Ok(());
            }
            pending.push((row, raw));
            if row + 1 == chunk_range(k).1 {
                let rows = std::mem::take(&mut pending);
                let out = label_chunk(scorer, rows, &options);
                store_chunk(&work, k, &out, output_format, &record_schema, &options)?;
                progress.chunk(out.stats.rows, out.stats.passes);
            }
            Ok(())
        })?;
        if let Some(missing) = (0..chunks).find(|&k| !chunk_file(&work, k, "done").exists()) {
            return Err(LabelError::invalid_file(
                &settings.input,
                format!("ended before row {} (the rows were counted as {})", chunk_range(missing).0, info.rows),
            ));
        }
    }

    progress.assembling();
    let mut stats = ChunkStats::default();
    for k in 0..chunks {
        let path = chunk_file(&work, k, "done");
        let text = std::fs::read_to_string(&path).map_err(|e| LabelError::io(&path, e))?;
        let chunk: ChunkStats = serde_json::from_str(&text).map_err(|e| LabelError::invalid_file(&path, e))?;
        stats.add(&chunk);
    }
    assemble(&work, chunks, &settings.output, output_format, &schema(style, info.id_kind))?;
    let errors_file = errors_path(&settings.output);
    if stats.errors > 0 {
        write_atomic(&errors_file, |out| {
            for k in 0..chunks {
                copy_into(&chunk_file(&work, k, "errors.jsonl"), out, &errors_file)?;
            }
            Ok(())
        })?;
    } else {
        remove_if_exists(&errors_file)?;
    }
    let tmp = temp_path(&settings.output);
    std::fs::rename(&tmp, &settings.output).map_err(|e| LabelError::io(&settings.output, e))?;
    sync_dir(&settings.output)?;
    // Renamed away first, so that a kill while it is being deleted never leaves a work folder
    // whose manifest and markers outlive some of its chunks.
    let trash = trash_dir(&work);
    std::fs::rename(&work, &trash).map_err(|e| LabelError::io(&work, e))?;
    sync_dir(&work)?;
    std::fs::remove_dir_all(&trash).map_err(|e| LabelError::io(&trash, e))?;
    Ok(Summary {
        stats,
        resumed_rows,
        elapsed: started.elapsed(),
        errors_file: (stats.errors > 0).then_some(errors_file),
    })
}

/// Creates the work folder with its manifest, or checks an existing one's manifest against
/// `manifest` (a folder without a manifest is an interrupted start or removal: emptied).
fn prepare_work_dir(work: &Path, manifest: &Value) -> Result<()> {
    let trash = trash_dir(work);
    if trash.exists() {
        std::fs::remove_dir_all(&trash).map_err(|e| LabelError::io(&trash, e))?;
    }
    let path = work.join(MANIFEST);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let old: Value = serde_json::from_str(&text).map_err(|e| LabelError::invalid_file(&path, e))?;
            let differences = differences(&old, manifest);
            if !differences.is_empty() {
                return Err(LabelError::ResumeMismatch {
                    work: work.to_path_buf(),
                    differences: differences.join("; "),
                });
            }
            tracing::info!(work = %work.display(), "resuming");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if work.exists() {
                std::fs::remove_dir_all(work).map_err(|e| LabelError::io(work, e))?;
            }
            std::fs::create_dir_all(work).map_err(|e| LabelError::io(work, e))?;
            write_atomic(&path, |out| {
                serde_json::to_writer_pretty(&mut *out, manifest).map_err(|e| LabelError::invalid_file(&path, e))
            })
        }
        Err(e) => Err(LabelError::io(&path, e)),
    }
}

/// `name: was X, now Y` for each setting (leaf, by dotted path) that differs.
fn differences(old: &Value, new: &Value) -> Vec<String> {
    fn walk(prefix: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
        match (old, new) {
            (Value::Object(a), Value::Object(b)) => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&name, a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null), out);
                }
            }
            (a, b) if a != b => out.push(format!("{prefix}: was {a}, now {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out
}

fn chunk_file(work: &Path, k: u64, ext: &str) -> PathBuf {
    work.join(format!("chunk-{k:09}.{ext}"))
}

/// Stores a finished chunk: records, error records, then the `.done` marker with its counts.
fn store_chunk(
    work: &Path,
    k: u64,
    out: &ChunkOutput,
    format: OutputFormat,
    record_schema: &arrow_schema::SchemaRef,
    options: &LabelOptions,
) -> Result<()> {
    match format {
        OutputFormat::Jsonl => {
            let path = chunk_file(work, k, "jsonl");
            write_atomic(&path, |w| {
                for r in &out.records {
                    let line = r.to_json_line(options.style, options.id_kind);
                    writeln!(w, "{line}").map_err(|e| LabelError::io(&path, e))?;
                }
                Ok(())
            })?;
        }
        OutputFormat::Parquet => {
            let path = chunk_file(work, k, "arrow");
            let batch = to_batch(&out.records, options.style, options.id_kind);
            write_atomic(&path, |w| {
                let mut writer =
                    StreamWriter::try_new(w, record_schema).map_err(|e| LabelError::invalid_file(&path, e))?;
                writer.write(&batch).map_err(|e| LabelError::invalid_file(&path, e))?;
                writer.finish().map_err(|e| LabelError::invalid_file(&path, e))
            })?;
        }
    }
    let path = chunk_file(work, k, "errors.jsonl");
    write_atomic(&path, |w| {
        for e in &out.errors {
            let line = serde_json::to_string(e).map_err(|e| LabelError::invalid_file(&path, e))?;
            writeln!(w, "{line}").map_err(|e| LabelError::io(&path, e))?;
        }
        Ok(())
    })?;
    let path = chunk_file(work, k, "done");
    write_atomic(&path, |w| serde_json::to_writer(w, &out.stats).map_err(|e| LabelError::invalid_file(&path, e)))
}

fn copy_into(from: &Path, out: &mut impl Write, to: &Path) -> Result<()> {
    let mut file = BufReader::new(File::open(from).map_err(|e| LabelError::io(from, e))?);
    std::io::copy(&mut file, out).map_err(|e| LabelError::io(to, e))?;
    Ok(())
}

/// Writes the output's temporary file from the chunks, in order.
fn assemble(
    work: &Path,
    chunks: u64,
    output: &Path,
    format: OutputFormat,
    record_schema: &arrow_schema::SchemaRef,
) -> Result<()> {
    let tmp = temp_path(output);
    let mut writer = FinalWriter::create(&tmp, format, record_schema)?;
    for k in 0..chunks {
        match format {
            OutputFormat::Jsonl => {
                let path = chunk_file(work, k, "jsonl");
                let mut bytes = Vec::new();
                File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| LabelError::io(&path, e))?;
                writer.append_bytes(&bytes)?;
            }
            OutputFormat::Parquet => {
                let path = chunk_file(work, k, "arrow");
                let file = BufReader::new(File::open(&path).map_err(|e| LabelError::io(&path, e))?);
                let reader = StreamReader::try_new(file, None).map_err(|e| LabelError::invalid_file(&path, e))?;
                for batch in reader {
                    writer.append_batch(&batch.map_err(|e| LabelError::invalid_file(&path, e))?)?;
                }
            }
        }
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_contiguously_and_cover_everything() {
        for rows in [0u64, 1, 5, 10, 1001] {
            for count in 1..6 {
                let mut next = 0;
                for index in 0..count {
                    let (a, b) = Shard { index, count }.range(rows);
                    assert_eq!(a, next);
                    assert!(b >= a);
                    next = b;
                }
                assert_eq!(next, rows);
            }
        }
        assert_eq!("1/4".parse::<Shard>().unwrap(), Shard { index: 1, count: 4 });
        for bad in ["4/4", "1", "a/b", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn differences_name_the_settings() {
        let a = json!({"options": {"strategy": "full", "min_margin": 0.0}, "rows": 3});
        let b = json!({"options": {"strategy": "best-worst", "min_margin": 0.0}, "rows": 3});
        assert_eq!(differences(&a, &b), vec![r#"options.strategy: was "full", now "best-worst""#.to_string()]);
        assert!(differences(&a, &a).is_empty());
    }
}
