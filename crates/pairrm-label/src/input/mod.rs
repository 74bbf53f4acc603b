//! Reading the input: JSON lines, a JSON array, Parquet, Arrow IPC (stream or file), or a folder
//! of Parquet or Arrow files as `datasets.save_to_disk` and the hub lay them out. Rows are
//! streamed (a Parquet row group or an Arrow batch at a time), never held all at once, and handed
//! on as JSON values so that one parser reads every format ([`crate::row`]).

mod arrow_json;
mod files;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{LabelError, Result};
use crate::row::{Columns, IdKind};

pub use arrow_json::row as arrow_row;
pub use files::{read_ipc_batches, RowSink};

/// The input's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// One JSON object per line (`.jsonl`, `.ndjson`, or `.json` not starting with `[`, as
    /// `datasets`' `to_json` writes it). Blank lines are skipped.
    Jsonl,
    /// A JSON array of objects (`.json` starting with `[`).
    Json,
    /// Parquet (`.parquet`): uncompressed, snappy or zstd.
    Parquet,
    /// Arrow IPC, stream or file format (`.arrow`, `.feather`, `.ipc`), uncompressed.
    Arrow,
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputFormat::Jsonl => "jsonl",
            InputFormat::Json => "json",
            InputFormat::Parquet => "parquet",
            InputFormat::Arrow => "arrow",
        })
    }
}

impl FromStr for InputFormat {
    type Err = LabelError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "jsonl" => Ok(InputFormat::Jsonl),
            "json" => Ok(InputFormat::Json),
            "parquet" => Ok(InputFormat::Parquet),
            "arrow" => Ok(InputFormat::Arrow),
            _ => {
                Err(LabelError::Settings(format!("unknown input format {s:?}; expected jsonl, json, parquet or arrow")))
            }
        }
    }
}

/// What a first pass over the input tells: its size and the shape of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputInfo {
    /// Rows in the input (over all its files).
    pub rows: u64,
    /// The type of the output's id column.
    pub id_kind: IdKind,
    /// Whether the input has chat rows (a messages column, or a row with messages).
    pub chat: bool,
}

/// Size and modification time of one input file, to tell on resume that the input changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub len: u64,
    /// Its modification time, nanoseconds since the Unix epoch.
    pub modified_ns: u128,
}

/// An opened input: its format and its files, in row order.
#[derive(Debug, Clone)]
pub struct Input {
    format: InputFormat,
    files: Vec<PathBuf>,
}

impl Input {
    /// Opens `path`: a file (format from `format`, else from its extension and first byte) or a
    /// folder of `.parquet` files (in name order) or of `.arrow` files (in the order of
    /// `state.json`, as `save_to_disk` writes it, else in name order).
    ///
    /// # Errors
    /// A missing path, an unknown extension, a folder with no data files (or a `DatasetDict`
    /// folder: name one of its splits).
    pub fn open(path: &Path, format: Option<InputFormat>) -> Result<Input> {
        let meta = std::fs::metadata(path).map_err(|e| LabelError::io(path, e))?;
        if meta.is_dir() {
            let (detected, files) = files::folder(path)?;
            if let Some(format) = format.filter(|f| *f != detected) {
                return Err(LabelError::Settings(format!("{} holds {detected} files, not {format}", path.display())));
            }
            return Ok(Input { format: detected, files });
        }
        let format = match format {
            Some(f) => f,
            None => files::detect(path)?,
        };
        Ok(Input { format, files: vec![path.to_path_buf()] })
    }

    /// The format.
    pub fn format(&self) -> InputFormat {
        self.format
    }

    /// The files, in row order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Size and modification time of every file.
    pub fn stamps(&self) -> Result<Vec<FileStamp>> {
        self.files
            .iter()
            .map(|p| {
                let meta = std::fs::metadata(p).map_err(|e| LabelError::io(p, e))?;
                let modified_ns = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                Ok(FileStamp { path: std::path::absolute(p).unwrap_or(p.clone()), len: meta.len(), modified_ns })
            })
            .collect()
    }

    /// A first pass: the row count, the id column's type and whether there are chat rows.
    /// Parquet files answer from their footers and schemas; JSON is parsed, and Arrow streams
    /// are read through (both streamed).
    pub fn scan(&self, columns: &Columns) -> Result<InputInfo> {
        let mut info = InputInfo { rows: 0, id_kind: IdKind::None, chat: false };
        for file in &self.files {
            files::scan(self.format, file, columns, &mut info)?;
        }
        Ok(info)
    }

    /// Calls `sink` with every row numbered `start..end` (row numbers over all files, from 0),
    /// in order: its JSON value, or why it could not be read (a line that is not JSON).
    /// Parquet row groups and files before `start` are skipped unread; reading stops at `end`.
    pub fn read(&self, columns: &Columns, start: u64, end: u64, sink: &mut RowSink<'_>) -> Result<()> {
        let mut first = 0u64;
        for file in &self.files {
            if first >= end {
                break;
            }
            first = files::read(self.format, file, columns, first, start, end, sink)?;
        }
        Ok(())
    }
}

/// The JSON value of a row, or why it cannot be read.
pub type RawRow = std::result::Result<Value, String>;
