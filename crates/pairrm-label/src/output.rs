//! Writing the output: JSON lines, or Parquet in row groups of [`ROW_GROUP_ROWS`] records with
//! fixed writer settings, so that the same records always give the same bytes however they
//! arrive (from one process's chunks, or from several shards' files merged).

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::error::{LabelError, Result};

/// Records per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 2048;

/// The output's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One JSON object per line.
    Jsonl,
    /// Parquet, snappy-compressed (pyarrow's default: `datasets`, pandas and polars read it).
    Parquet,
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Parquet => "parquet",
        })
    }
}

impl FromStr for OutputFormat {
    type Err = LabelError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "jsonl" => Ok(OutputFormat::Jsonl),
            "parquet" => Ok(OutputFormat::Parquet),
            _ => Err(LabelError::Settings(format!("unknown output format {s:?}; expected jsonl or parquet"))),
        }
    }
}

impl OutputFormat {
    /// The format `explicit` names, else the one `path`'s extension names (`.parquet`, `.pq`:
    /// Parquet; `.jsonl`, `.ndjson`, `.json`: JSON lines).
    pub fn for_path(path: &Path, explicit: Option<OutputFormat>) -> Result<OutputFormat> {
        if let Some(format) = explicit {
            return Ok(format);
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "parquet" | "pq" => Ok(OutputFormat::Parquet),
            "jsonl" | "ndjson" | "json" => Ok(OutputFormat::Jsonl),
            _ => Err(LabelError::Settings(format!(
                "{}: cannot tell the output format from the extension; use .jsonl or .parquet, or say it with \
                 --output-format",
                path.display()
            ))),
        }
    }
}

/// The side file of error records beside `output`: `OUTPUT.errors.jsonl`.
pub fn errors_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".errors.jsonl");
    output.with_file_name(name)
}

/// A temporary name beside `path` (same folder, so that renaming it over `path` is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes a file atomically: into a temporary file beside it, flushed to disk, then renamed over
/// it (and the folder synced), so that after a crash it is either whole or absent.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let file = File::create(&tmp).map_err(|e| LabelError::io(&tmp, e))?;
    let mut out = BufWriter::new(file);
    write(&mut out)?;
    let file = out.into_inner().map_err(|e| LabelError::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| LabelError::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| LabelError::io(path, e))?;
    sync_dir(path)
}

/// Syncs the folder holding `path` (so a rename in it survives a crash). Best effort where
/// folders cannot be opened.
pub fn sync_dir(path: &Path) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        d.sync_all().map_err(|e| LabelError::io(dir, e))?;
    }
    Ok(())
}

/// The schema without metadata, as every Parquet output is written.
fn plain(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(schema.fields().clone()))
}

/// The final output being written (to a temporary path).
pub enum FinalWriter {
    /// JSON lines: bytes copied as they come.
    Jsonl(BufWriter<File>, PathBuf),
    /// Parquet: records gathered into row groups of exactly [`ROW_GROUP_ROWS`] (the last one
    /// shorter).
    Parquet {
        /// The writer (boxed: it is much larger than the JSON-lines variant).
        writer: Box<ArrowWriter<BufWriter<File>>>,
        /// Records not yet written.
        pending: Vec<RecordBatch>,
        /// Rows in `pending`.
        pending_rows: usize,
        /// The schema of every batch.
        schema: SchemaRef,
        /// Where it is written.
        path: PathBuf,
    },
}

impl FinalWriter {
    /// Creates (truncates) `path` for `format`; `schema` is the records' (Parquet only).
    pub fn create(path: &Path, format: OutputFormat, schema: &Schema) -> Result<Self> {
        let file = BufWriter::new(File::create(path).map_err(|e| LabelError::io(path, e))?);
        Ok(match format {
            OutputFormat::Jsonl => FinalWriter::Jsonl(file, path.to_path_buf()),
            OutputFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_created_by(format!("pairrm label {}", env!("CARGO_PKG_VERSION")))
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .build();
                let schema = plain(schema);
                let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .map_err(|e| LabelError::invalid_file(path, e))?;
                FinalWriter::Parquet {
                    writer: Box::new(writer),
                    pending: Vec::new(),
                    pending_rows: 0,
                    schema,
                    path: path.to_path_buf(),
                }
            }
        })
    }

    /// Appends JSON-lines bytes (JSON lines output only).
    pub fn append_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            FinalWriter::Jsonl(out, path) => out.write_all(bytes).map_err(|e| LabelError::io(path, e)),
            FinalWriter::Parquet { path, .. } => Err(LabelError::invalid_file(path, "JSON lines into a Parquet file")),
        }
    }

    /// Appends records (Parquet output only).
    pub fn append_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let FinalWriter::Parquet { pending, pending_rows, schema, .. } = self else {
            return Err(LabelError::Settings("Arrow records into a JSON lines file".into()));
        };
        let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
            .map_err(|e| LabelError::Settings(format!("records do not match the output schema: {e}")))?;
        *pending_rows += batch.num_rows();
        pending.push(batch);
        while self.pending_rows() >= ROW_GROUP_ROWS {
            self.write_group(ROW_GROUP_ROWS)?;
        }
        Ok(())
    }

    fn pending_rows(&self) -> usize {
        match self {
            FinalWriter::Parquet { pending_rows, .. } => *pending_rows,
            FinalWriter::Jsonl(..) => 0,
        }
    }

    /// Writes the first `rows` pending records as one row group.
    fn write_group(&mut self, rows: usize) -> Result<()> {
        let FinalWriter::Parquet { writer, pending, pending_rows, schema, path } = self else { return Ok(()) };
        let all = arrow_select::concat::concat_batches(schema, pending.iter())
            .map_err(|e| LabelError::invalid_file(&*path, e))?;
        let group = all.slice(0, rows);
        writer.write(&group).map_err(|e| LabelError::invalid_file(&*path, e))?;
        writer.flush().map_err(|e| LabelError::invalid_file(&*path, e))?;
        let rest = all.slice(rows, all.num_rows() - rows);
        *pending_rows = rest.num_rows();
        *pending = if rest.num_rows() > 0 { vec![rest] } else { vec![] };
        Ok(())
    }

    /// Writes what is left, closes the file and flushes it to disk.
    pub fn finish(mut self) -> Result<()> {
        let rows = self.pending_rows();
        if rows > 0 {
            self.write_group(rows)?;
        }
        let (file, path) = match self {
            FinalWriter::Jsonl(out, path) => {
                (out.into_inner().map_err(|e| LabelError::io(&path, e.into_error()))?, path)
            }
            FinalWriter::Parquet { writer, path, .. } => {
                let out = writer.into_inner().map_err(|e| LabelError::invalid_file(&path, e))?;
                (out.into_inner().map_err(|e| LabelError::io(&path, e.into_error()))?, path)
            }
        };
        file.sync_all().map_err(|e| LabelError::io(&path, e))
    }
}

/// Merges shard outputs, given in shard order, into `output` (and their error side files into
/// `output`'s): the result is byte for byte the output one process would have written for the
/// whole input. JSON lines are concatenated; Parquet records are read back and written again in
/// the same row groups. Returns the number of records.
pub fn merge(inputs: &[PathBuf], output: &Path, format: Option<OutputFormat>) -> Result<u64> {
    let format = OutputFormat::for_path(output, format)?;
    let tmp = temp_path(output);
    let mut records = 0u64;
    match format {
        OutputFormat::Jsonl => {
            let mut writer = FinalWriter::create(&tmp, format, &Schema::empty())?;
            for input in inputs {
                let bytes = std::fs::read(input).map_err(|e| LabelError::io(input, e))?;
                records += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
                writer.append_bytes(&bytes)?;
            }
            writer.finish()?;
        }
        OutputFormat::Parquet => {
            let mut writer: Option<(FinalWriter, SchemaRef)> = None;
            for input in inputs {
                let file = File::open(input).map_err(|e| LabelError::io(input, e))?;
                let builder =
                    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| LabelError::invalid_file(input, e))?;
                let schema = plain(builder.schema());
                let (out, expected) = match &mut writer {
                    Some(w) => w,
                    None => writer.insert((FinalWriter::create(&tmp, format, &schema)?, schema.clone())),
                };
                if schema != *expected {
                    return Err(LabelError::invalid_file(input, "has another schema than the first shard"));
                }
                let reader =
                    builder.with_batch_size(ROW_GROUP_ROWS).build().map_err(|e| LabelError::invalid_file(input, e))?;
                for batch in reader {
                    let batch = batch.map_err(|e| LabelError::invalid_file(input, e))?;
                    records += batch.num_rows() as u64;
                    out.append_batch(&batch)?;
                }
            }
            let Some((writer, _)) = writer else {
                return Err(LabelError::Settings("nothing to merge: name the shard outputs".into()));
            };
            writer.finish()?;
        }
    }
    // The error side files, concatenated likewise (none when no shard has one).
    let error_files: Vec<PathBuf> = inputs.iter().map(|p| errors_path(p)).filter(|p| p.exists()).collect();
    let errors_out = errors_path(output);
    if error_files.is_empty() {
        remove_if_exists(&errors_out)?;
    } else {
        write_atomic(&errors_out, |out| {
            for f in &error_files {
                let bytes = std::fs::read(f).map_err(|e| LabelError::io(f, e))?;
                out.write_all(&bytes).map_err(|e| LabelError::io(&errors_out, e))?;
            }
            Ok(())
        })?;
    }
    std::fs::rename(&tmp, output).map_err(|e| LabelError::io(output, e))?;
    sync_dir(output)?;
    Ok(records)
}

/// Removes a file if it is there.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LabelError::io(path, e)),
        _ => Ok(()),
    }
}
