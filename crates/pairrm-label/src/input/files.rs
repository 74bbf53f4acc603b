//! The file formats: finding the files of a folder, telling a file's format, and streaming its
//! rows.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::reader::{FileReader, StreamReader};
use arrow_schema::{DataType, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde_json::Value;

use super::{arrow_json, InputFormat, InputInfo, RawRow};
use crate::error::{LabelError, Result};
use crate::row::{Columns, IdKind};

/// Receives rows: `(row number, row)`.
pub type RowSink<'a> = dyn FnMut(u64, RawRow) -> Result<()> + 'a;

/// Rows decoded at a time from Parquet and Arrow files.
const BATCH_ROWS: usize = 1024;

/// The format of a file, from its extension (`.json`: from its first non-blank byte).
pub fn detect(path: &Path) -> Result<InputFormat> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "parquet" | "pq" => Ok(InputFormat::Parquet),
        "arrow" | "feather" | "ipc" | "arrows" => Ok(InputFormat::Arrow),
        "jsonl" | "ndjson" => Ok(InputFormat::Jsonl),
        "json" => {
            let mut reader = BufReader::new(File::open(path).map_err(|e| LabelError::io(path, e))?);
            loop {
                let buf = reader.fill_buf().map_err(|e| LabelError::io(path, e))?;
                let Some(pos) = buf.iter().position(|b| !b.is_ascii_whitespace()) else {
                    if buf.is_empty() {
                        return Ok(InputFormat::Jsonl); // empty file: no rows either way
                    }
                    let n = buf.len();
                    reader.consume(n);
                    continue;
                };
                return Ok(if buf[pos] == b'[' { InputFormat::Json } else { InputFormat::Jsonl });
            }
        }
        _ => Err(LabelError::Settings(format!(
            "{}: cannot tell the input format from the extension; use .jsonl, .json, .parquet or .arrow, or \
             say it with --input-format",
            path.display()
        ))),
    }
}

/// The data files of a folder and their format.
pub fn folder(dir: &Path) -> Result<(InputFormat, Vec<PathBuf>)> {
    if dir.join("dataset_dict.json").exists() {
        return Err(LabelError::Settings(format!(
            "{} is a DatasetDict folder: name one of its splits (e.g. {})",
            dir.display(),
            dir.join("train").display()
        )));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LabelError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    let with_ext = |ext: &str| -> Vec<PathBuf> {
        entries.iter().filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))).cloned().collect()
    };
    let parquet = with_ext("parquet");
    if !parquet.is_empty() {
        return Ok((InputFormat::Parquet, parquet));
    }
    let arrow = with_ext("arrow");
    if !arrow.is_empty() {
        // save_to_disk lists its shards in state.json; follow that order when it is there.
        let state = dir.join("state.json");
        if let Ok(text) = std::fs::read_to_string(&state) {
            let parsed: Value = serde_json::from_str(&text).map_err(|e| LabelError::invalid_file(&state, e))?;
            if let Some(list) = parsed.get("_data_files").and_then(Value::as_array) {
                let files = list
                    .iter()
                    .filter_map(|f| f.get("filename").and_then(Value::as_str))
                    .map(|name| dir.join(name))
                    .collect::<Vec<_>>();
                if !files.is_empty() {
                    return Ok((InputFormat::Arrow, files));
                }
            }
        }
        return Ok((InputFormat::Arrow, arrow));
    }
    Err(LabelError::Settings(format!("{} holds no .parquet or .arrow files", dir.display())))
}

fn id_kind_of(data_type: &DataType) -> IdKind {
    match data_type {
        DataType::Null => IdKind::None,
        t if t.is_integer() => IdKind::Int,
        _ => IdKind::Text,
    }
}

fn widen(a: IdKind, b: IdKind) -> IdKind {
    match (a, b) {
        (IdKind::None, k) | (k, IdKind::None) => k,
        (IdKind::Int, IdKind::Int) => IdKind::Int,
        _ => IdKind::Text,
    }
}

/// Adds what the schema tells (id type, chat) to `info`.
fn scan_schema(schema: &Schema, columns: &Columns, info: &mut InputInfo) {
    if let Ok(field) = schema.field_with_name(&columns.id) {
        info.id_kind = widen(info.id_kind, id_kind_of(field.data_type()));
    }
    info.chat |= schema.field_with_name(&columns.messages).is_ok();
}

/// Adds one file to `info`.
pub fn scan(format: InputFormat, path: &Path, columns: &Columns, info: &mut InputInfo) -> Result<()> {
    match format {
        InputFormat::Parquet => {
            let builder = parquet_builder(path)?;
            scan_schema(builder.schema(), columns, info);
            info.rows += builder.metadata().file_metadata().num_rows() as u64;
        }
        InputFormat::Arrow => {
            for_each_ipc_batch(path, columns, &mut |schema, batch| {
                scan_schema(schema, columns, info);
                info.rows += batch.map_or(0, |b| b.num_rows() as u64);
                Ok(true)
            })?;
        }
        InputFormat::Jsonl | InputFormat::Json => {
            for_each_json_row(format, path, &mut |row| {
                info.rows += 1;
                if let Ok(value) = row {
                    if let Some(id) = value.get(&columns.id) {
                        info.id_kind = info.id_kind.widen(id);
                    }
                    info.chat |= value.get(&columns.messages).is_some_and(|m| !m.is_null());
                }
                Ok(true)
            })?;
        }
    }
    Ok(())
}

/// Streams the rows of one file numbered `first..` that fall in `start..end` to `sink`; returns
/// the number of the row after the file's last (or `end` once reading stopped there).
pub fn read(
    format: InputFormat,
    path: &Path,
    columns: &Columns,
    first: u64,
    start: u64,
    end: u64,
    sink: &mut RowSink<'_>,
) -> Result<u64> {
    let mut next = first;
    let batch_rows = |batch: &RecordBatch, next: &mut u64, sink: &mut RowSink<'_>| -> Result<bool> {
        for i in 0..batch.num_rows() {
            let n = *next;
            *next += 1;
            if n >= end {
                return Ok(false);
            }
            if n >= start {
                sink(n, arrow_json::row(batch, i))?;
            }
        }
        Ok(*next < end)
    };
    match format {
        InputFormat::Parquet => {
            let builder = parquet_builder(path)?;
            let total = builder.metadata().file_metadata().num_rows() as u64;
            if first + total <= start {
                return Ok(first + total);
            }
            // Only the row groups that hold rows of start..end are read.
            let mut groups = Vec::new();
            let mut group_first = first;
            for (g, meta) in builder.metadata().row_groups().iter().enumerate() {
                let rows = meta.num_rows() as u64;
                if group_first + rows > start && group_first < end {
                    groups.push(g);
                } else if group_first + rows <= start {
                    next = group_first + rows;
                }
                group_first += rows;
            }
            let mask =
                projection(builder.schema(), columns, |roots| ProjectionMask::roots(builder.parquet_schema(), roots));
            let reader = builder
                .with_projection(mask)
                .with_row_groups(groups)
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| LabelError::invalid_file(path, e))?;
            for batch in reader {
                let batch = batch.map_err(|e| LabelError::invalid_file(path, e))?;
                if !batch_rows(&batch, &mut next, sink)? {
                    return Ok(end.max(next));
                }
            }
            Ok(first + total)
        }
        InputFormat::Arrow => {
            let mut stopped = false;
            for_each_ipc_batch(path, columns, &mut |_, batch| {
                let Some(batch) = batch else { return Ok(true) };
                let go_on = batch_rows(batch, &mut next, sink)?;
                stopped = !go_on;
                Ok(go_on)
            })?;
            Ok(if stopped { end.max(next) } else { next })
        }
        InputFormat::Jsonl | InputFormat::Json => {
            let mut stopped = false;
            for_each_json_row(format, path, &mut |row| {
                let n = next;
                next += 1;
                if n >= end {
                    stopped = true;
                    return Ok(false);
                }
                if n >= start {
                    sink(n, row)?;
                }
                Ok(true)
            })?;
            Ok(if stopped { end } else { next })
        }
    }
}

fn parquet_builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| LabelError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| LabelError::invalid_file(path, e))
}

/// The projection reading only the wanted columns present in `schema` (top-level indices).
fn projection<T>(schema: &Schema, columns: &Columns, make: impl FnOnce(Vec<usize>) -> T) -> T {
    let wanted = columns.wanted();
    let roots = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    make(roots)
}

/// Whether an Arrow file is in the IPC file format (`ARROW1` magic) rather than the stream format.
fn is_ipc_file(path: &Path) -> Result<bool> {
    let mut file = File::open(path).map_err(|e| LabelError::io(path, e))?;
    let mut magic = [0u8; 6];
    let n = file.read(&mut magic).map_err(|e| LabelError::io(path, e))?;
    file.seek(SeekFrom::Start(0)).map_err(|e| LabelError::io(path, e))?;
    Ok(n == 6 && &magic == b"ARROW1")
}

/// Calls `f` with the schema and each batch (projected on the wanted columns) of an Arrow IPC
/// file or stream; a file without batches gives one call with `None`. Stops when `f` says false.
fn for_each_ipc_batch(
    path: &Path,
    columns: &Columns,
    f: &mut dyn FnMut(&Schema, Option<&RecordBatch>) -> Result<bool>,
) -> Result<()> {
    let open = || File::open(path).map_err(|e| LabelError::io(path, e));
    let bad = |e: arrow_schema::ArrowError| LabelError::invalid_file(path, e);
    let batches: Box<dyn Iterator<Item = std::result::Result<RecordBatch, arrow_schema::ArrowError>>> =
        if is_ipc_file(path)? {
            let schema = FileReader::try_new(open()?, None).map_err(bad)?.schema();
            let mask = projection(&schema, columns, Some);
            Box::new(FileReader::try_new(open()?, mask).map_err(bad)?)
        } else {
            let schema = StreamReader::try_new(BufReader::new(open()?), None).map_err(bad)?.schema();
            let mask = projection(&schema, columns, Some);
            Box::new(StreamReader::try_new(BufReader::new(open()?), mask).map_err(bad)?)
        };
    let mut any = false;
    for batch in batches {
        let batch = batch.map_err(bad)?;
        any = true;
        if !f(&batch.schema(), Some(&batch))? {
            return Ok(());
        }
    }
    if !any {
        let schema = if is_ipc_file(path)? {
            FileReader::try_new(open()?, None).map_err(bad)?.schema()
        } else {
            StreamReader::try_new(BufReader::new(open()?), None).map_err(bad)?.schema()
        };
        f(&schema, None)?;
    }
    Ok(())
}

/// All record batches of Arrow IPC stream bytes (what the Python binding receives).
pub fn read_ipc_batches(bytes: &[u8]) -> std::result::Result<Vec<RecordBatch>, String> {
    let reader = StreamReader::try_new(bytes, None).map_err(|e| format!("reading the Arrow batch: {e}"))?;
    reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| format!("reading the Arrow batch: {e}"))
}

/// Calls `f` with each row of a JSON-lines file or JSON array (streamed); stops when `f` says
/// false. A line that is not a JSON value is a row error; a broken JSON array is a file error.
fn for_each_json_row(format: InputFormat, path: &Path, f: &mut dyn FnMut(RawRow) -> Result<bool>) -> Result<()> {
    let mut reader = BufReader::new(File::open(path).map_err(|e| LabelError::io(path, e))?);
    if format == InputFormat::Jsonl {
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(|e| LabelError::io(path, e))?;
            if n == 0 {
                return Ok(());
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let row = std::str::from_utf8(&line)
                .map_err(|_| "not valid UTF-8".to_string())
                .and_then(|text| serde_json::from_str::<Value>(text).map_err(|e| format!("invalid JSON: {e}")));
            if !f(row)? {
                return Ok(());
            }
        }
    }
    let mut failure = None;
    let mut stopped = false;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = Elements { f, failure: &mut failure, stopped: &mut stopped }.deserialize(&mut de);
    if let Some(e) = failure {
        return Err(e);
    }
    if stopped {
        return Ok(());
    }
    result.and_then(|()| de.end()).map_err(|e| LabelError::invalid_file(path, format!("invalid JSON array: {e}")))
}

/// Streams the elements of a JSON array to a callback (serde's sequence access, one element in
/// memory at a time).
struct Elements<'a, 'b> {
    f: &'a mut dyn FnMut(RawRow) -> Result<bool>,
    failure: &'b mut Option<LabelError>,
    stopped: &'b mut bool,
}

impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            match (self.f)(Ok(value)) {
                Ok(true) => {}
                Ok(false) => {
                    *self.stopped = true;
                    return Err(A::Error::custom("stopped"));
                }
                Err(e) => {
                    *self.failure = Some(e);
                    return Err(A::Error::custom("failed"));
                }
            }
        }
        Ok(())
    }
}
