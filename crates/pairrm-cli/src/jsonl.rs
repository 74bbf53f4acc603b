//! The JSON-lines loop shared by the commands: read lines (streaming, in chunks), parse each,
//! score the chunk at once, write one result line per input line in order, with an
//! `{"error": "..."}` record in place of any line that failed.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::args::IoArgs;
use crate::outfile::OutputFile;
use crate::progress::Progress;
use crate::stdout;

/// Forward passes gathered before a chunk is scored (more lines: better batches, later output).
const CHUNK_PASSES: usize = 256;
/// Lines gathered at most before a chunk is scored.
const CHUNK_LINES: usize = 1024;
/// Bytes of input lines gathered at most before a chunk is scored (plus the line that passes
/// it): the parsed requests hold their texts whole until scored, so without it 128 lines of
/// 10 MB would be held at once. Chunking never changes results, only when they are written.
const CHUNK_BYTES: usize = 8 << 20;

/// What a command did.
pub struct Outcome {
    /// Lines that failed (an error record was written for each).
    pub failed: usize,
}

impl Outcome {
    /// Non-zero when any line failed.
    pub fn exit_code(&self) -> ExitCode {
        if self.failed > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// One command's line handling.
pub trait LineJob {
    /// A parsed line.
    type Request;
    /// The result written for a line.
    type Output: Serialize;
    /// Parses one JSON value; the error is the reason, shown as `line N: reason`.
    fn parse(&self, value: Value) -> Result<Self::Request, String>;
    /// Forward passes the request needs (for chunking and progress).
    fn passes(&self, request: &Self::Request) -> usize;
    /// Scores a chunk of requests at once, one result per request.
    fn process(&self, requests: Vec<Self::Request>, progress: &Progress) -> Vec<Result<Self::Output, String>>;
}

enum Line<R> {
    Ok(R),
    Err(String),
}

/// Runs `job` over the input lines.
pub fn run<J: LineJob>(io: &IoArgs, job: &J) -> anyhow::Result<Outcome> {
    let (reader, total): (Box<dyn BufRead>, Option<usize>) = match &io.input {
        Some(path) => {
            let total = count_passes(path, job)?;
            let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            (Box::new(BufReader::new(f)), Some(total))
        }
        None => (Box::new(BufReader::new(std::io::stdin().lock())), None),
    };
    let mut out = open_output(io)?;
    let progress = Progress::new(total, io.no_progress);
    let mut outcome = Outcome { failed: 0 };
    let mut chunk: Vec<Line<J::Request>> = vec![];
    let (mut chunk_passes, mut chunk_bytes) = (0, 0);
    let mut lines = RawLines::new(reader);
    while let Some((number, raw)) = lines.next_line()? {
        chunk_bytes += raw.len();
        let line = match parse_line(job, raw) {
            Ok(r) => {
                chunk_passes += job.passes(&r);
                Line::Ok(r)
            }
            Err(e) => Line::Err(format!("line {number}: {e}")),
        };
        chunk.push(line);
        if chunk_passes >= CHUNK_PASSES || chunk.len() >= CHUNK_LINES || chunk_bytes >= CHUNK_BYTES {
            flush_chunk(
                job,
                std::mem::take(&mut chunk),
                chunk_passes,
                &progress,
                &mut out,
                &mut outcome,
                lines.count(),
            )?;
            (chunk_passes, chunk_bytes) = (0, 0);
        }
    }
    flush_chunk(job, chunk, chunk_passes, &progress, &mut out, &mut outcome, lines.count())?;
    progress.finish();
    out.finish()?;
    if outcome.failed > 0 {
        tracing::warn!(failed = outcome.failed, "some lines failed");
    }
    Ok(outcome)
}

/// Where a job's result lines go.
pub enum Sink {
    /// Stdout.
    Stdout(BufWriter<stdout::Results>),
    /// `--output`, through a temporary file renamed over it by [`Sink::finish`].
    File(BufWriter<OutputFile>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::File(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File(w) => w.flush(),
        }
    }
}

impl Sink {
    /// Ends a job that ran to its end: flushes stdout, or puts `--output` in place. (Dropping a
    /// sink instead leaves an existing `--output` as it was.)
    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(mut w) => w.flush().context("writing output"),
            Sink::File(w) => w.into_inner().map_err(|e| e.into_error()).context("writing output")?.commit(),
        }
    }
}

/// The output of a job: `--output` (replaced when the job ends, see [`OutputFile`]), else
/// stdout; buffered. Refuses an `--output` that is the input ([`IoArgs::check_paths`]).
pub fn open_output(io: &IoArgs) -> anyhow::Result<Sink> {
    io.check_paths()?;
    Ok(match &io.output {
        Some(path) => Sink::File(BufWriter::new(OutputFile::create(path)?)),
        None => Sink::Stdout(stdout::results()),
    })
}

fn parse_line<J: LineJob>(job: &J, raw: Vec<u8>) -> Result<J::Request, String> {
    job.parse(parse_object(raw)?)
}

/// Reads one raw input line as a JSON object; the error is the reason (`not valid UTF-8`,
/// `empty line`, `invalid JSON: ...`, `expected a JSON object`).
pub fn parse_object(raw: Vec<u8>) -> Result<Value, String> {
    let text = String::from_utf8(raw).map_err(|_| "not valid UTF-8".to_string())?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return Err("empty line".into());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if !value.is_object() {
        return Err("expected a JSON object".into());
    }
    Ok(value)
}

fn flush_chunk<J: LineJob>(
    job: &J,
    chunk: Vec<Line<J::Request>>,
    passes: usize,
    progress: &Progress,
    out: &mut dyn Write,
    outcome: &mut Outcome,
    last_line: usize,
) -> anyhow::Result<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    progress.plan(passes);
    let first_line = last_line + 1 - chunk.len();
    let mut slots: Vec<Option<Result<J::Output, String>>> = Vec::with_capacity(chunk.len());
    let mut requests = vec![];
    let mut positions = vec![];
    for (i, line) in chunk.into_iter().enumerate() {
        match line {
            Line::Ok(r) => {
                positions.push(i);
                requests.push(r);
                slots.push(None);
            }
            Line::Err(e) => slots.push(Some(Err(e))),
        }
    }
    let results = job.process(requests, progress);
    for (pos, result) in positions.into_iter().zip(results) {
        slots[pos] = Some(result.map_err(|e| format!("line {}: {e}", first_line + pos)));
    }
    for slot in slots {
        let line = match slot.expect("every line has a result") {
            Ok(v) => serde_json::to_string(&v).context("serializing a result")?,
            Err(e) => {
                outcome.failed += 1;
                serde_json::to_string(&serde_json::json!({ "error": e })).expect("a string serializes")
            }
        };
        writeln!(out, "{line}").context("writing output")?;
    }
    out.flush().context("writing output")?;
    progress.lines_done(last_line);
    Ok(())
}

/// Counts the forward passes of an input file (for the progress bar), parsing each line once.
fn count_passes<J: LineJob>(path: &std::path::Path, job: &J) -> anyhow::Result<usize> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = RawLines::new(BufReader::new(f));
    let mut total = 0;
    while let Some((_, raw)) = lines.next_line()? {
        if let Ok(r) = parse_line(job, raw) {
            total += job.passes(&r);
        }
    }
    Ok(total)
}

/// The UTF-8 encoding of U+FEFF.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Lines as raw bytes (a line that is not UTF-8 is an error record, not a fatal error).
pub struct RawLines<R: BufRead> {
    reader: R,
    number: usize,
}

impl<R: BufRead> RawLines<R> {
    /// Lines of `reader`.
    pub fn new(reader: R) -> Self {
        RawLines { reader, number: 0 }
    }

    /// Lines read so far.
    pub fn count(&self) -> usize {
        self.number
    }

    /// The next line (numbered from 1) with its line ending, or `None` at the end. A UTF-8 byte
    /// order mark opening the first line (Windows editors write one) is dropped.
    pub fn next_line(&mut self) -> anyhow::Result<Option<(usize, Vec<u8>)>> {
        let mut buf = vec![];
        let n = self.reader.read_until(b'\n', &mut buf).context("reading input")?;
        if n == 0 {
            return Ok(None);
        }
        if self.number == 0 && buf.starts_with(UTF8_BOM) {
            buf.drain(..UTF8_BOM.len());
        }
        self.number += 1;
        Ok(Some((self.number, buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_opens_the_first_line_only() {
        let text = b"\xEF\xBB\xBF{\"a\": 1}\n\xEF\xBB\xBF{\"b\": 2}\n";
        let mut lines = RawLines::new(&text[..]);
        let (n, first) = lines.next_line().unwrap().unwrap();
        assert_eq!((n, parse_object(first).unwrap()), (1, serde_json::json!({"a": 1})));
        let (_, second) = lines.next_line().unwrap().unwrap();
        assert!(parse_object(second).unwrap_err().contains("invalid JSON"), "only a leading mark is dropped");
    }
}
