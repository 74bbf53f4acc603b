//! Output of the report commands (`eval`, `winrate`): the report on stdout (tables, or JSON,
//! [`render`]), the optional SVG plot ([`plot`]), and the optional per-row JSON lines.

pub mod plot;
pub mod render;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::args::ReportArgs;

/// Per-row JSON lines, written as rows are scored. The first write error is kept and reported
/// at the end (the run itself goes on).
pub struct RowsWriter {
    out: Option<(PathBuf, BufWriter<File>)>,
    error: Option<std::io::Error>,
}

impl RowsWriter {
    /// A writer to `path`, or one that writes nothing.
    pub fn create(path: Option<&Path>) -> anyhow::Result<Self> {
        let out = match path {
            Some(p) => {
                let f = File::create(p).with_context(|| format!("creating {}", p.display()))?;
                Some((p.to_path_buf(), BufWriter::new(f)))
            }
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

    /// Flushes; fails with the first write error.
    pub fn finish(self) -> anyhow::Result<()> {
        let Some((path, mut out)) = self.out else { return Ok(()) };
        if let Some(e) = self.error {
            return Err(e).with_context(|| format!("writing {}", path.display()));
        }
        out.flush().with_context(|| format!("writing {}", path.display()))
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
        std::fs::write(path, svg()).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, report).context("writing the report")?;
        writeln!(stdout).context("writing the report")?;
    } else {
        stdout.write_all(text.as_bytes()).context("writing the report")?;
    }
    stdout.flush().context("writing the report")
}
