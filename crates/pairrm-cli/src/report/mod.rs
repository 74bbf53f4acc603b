//! Output of the report commands (`eval`, `winrate`): the report on stdout (tables, or JSON,
//! [`render`]), the optional SVG plot ([`plot`]), and the optional per-row JSON lines. The files
//! are put in place only when the run succeeds ([`OutputFile`]).

pub mod plot;
pub mod render;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::args::ReportArgs;
use crate::outfile::OutputFile;
use crate::stdout;

/// Per-row JSON lines, written as rows are scored. The first write error is kept and reported
/// at the end (the run itself goes on).
pub struct RowsWriter {
    out: Option<(PathBuf, BufWriter<OutputFile>)>,
    error: Option<std::io::Error>,
}

impl RowsWriter {
    /// A writer to `path`, or one that writes nothing.
    pub fn create(path: Option<&Path>) -> anyhow::Result<Self> {
        let out = match path {
            Some(p) => Some((p.to_path_buf(), BufWriter::new(OutputFile::create(p)?))),
            None => None,
        };
        Ok(RowsWriter { out, error: None })
    }

    /// Writes one line.
    pub fn write(&mut self, value: &impl Serialize) {
        let Some((_, out)) = &mut self.out else { return };
        if self.error.is_some() {
            return;
        }
        let line = serde_json::to_string(value).expect("row records serialize");
        if let Err(e) = writeln!(out, "{line}") {
            self.error = Some(e);
        }
    }

    /// Puts the file in place; fails with the first write error (the old file then stays).
    pub fn finish(self) -> anyhow::Result<()> {
        let Some((path, out)) = self.out else { return Ok(()) };
        if let Some(e) = self.error {
            return Err(e).with_context(|| format!("writing {}", path.display()));
        }
        out.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", path.display()))?.commit()
    }
}

/// Prints the report (JSON with `--json`, else `text`) and writes the plot.
pub fn emit(
    args: &ReportArgs,
    report: &impl Serialize,
    text: &str,
    svg: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if let Some(path) = &args.plot {
        let mut file = OutputFile::create(path)?;
        file.write_all(svg().as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        file.commit()?;
    }
    let mut stdout = stdout::results();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, report).context("writing the report")?;
        writeln!(stdout).context("writing the report")?;
    } else {
        stdout.write_all(text.as_bytes()).context("writing the report")?;
    }
    stdout.flush().context("writing the report")
}
