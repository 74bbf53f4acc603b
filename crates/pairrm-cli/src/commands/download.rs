//! `pairrm download MODEL`: puts everything a model needs into the Hugging Face cache, checks
//! the files already there against the hub (size, sha256) and fetches again those that fail (all
//! of them with `--force`), checks that the model opens, and prints one JSON line per hub repo
//! used (the model first).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use pairrm::checkpoint::hub::{FileRequest, SnapshotSource};
use pairrm::checkpoint::{Checkpoint, OpenOptions};
use pairrm_hub::cache_scan::snapshot_files;
use pairrm_hub::EnvSource;
use serde::Serialize;

use crate::download_bar::DownloadBars;
use crate::jsonl::Outcome;
use crate::stdout;

/// Arguments of `pairrm download`.
#[derive(clap::Args)]
pub struct Args {
    /// A hub id such as `llm-blender/PairRM` (a local checkpoint directory works too: then only
    /// the backbone its `model_name` names is fetched).
    model: String,
    /// Branch, tag or commit of the model's repo (default `main`; the backbone of an original
    /// checkpoint is always taken at `main`, as LLM-Blender does).
    #[arg(long)]
    revision: Option<String>,
    /// Download every file again, even those the cache holds and that pass their check.
    #[arg(long)]
    force: bool,
}

/// One output line: a repo snapshot in the cache.
#[derive(Serialize)]
struct Line {
    repo: String,
    revision: String,
    commit: String,
    path: PathBuf,
    files: Vec<String>,
    size: u64,
}

/// Remembers which snapshots a source handed out, in order.
struct Recording<'a> {
    inner: &'a dyn SnapshotSource,
    seen: Mutex<Vec<(String, String, PathBuf)>>,
}

impl SnapshotSource for Recording<'_> {
    fn snapshot(&self, repo: &str, revision: &str, request: &FileRequest) -> pairrm::Result<PathBuf> {
        let dir = self.inner.snapshot(repo, revision, request)?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.iter().any(|(r, v, _)| r == repo && v == revision) {
            seen.push((repo.to_string(), revision.to_string(), dir.clone()));
        }
        Ok(dir)
    }
}

/// Runs `pairrm download`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let source = EnvSource::new().with_progress(Arc::new(DownloadBars)).refresh(true).force(args.force);
    let settings = source.downloader()?.settings();
    if settings.offline {
        eprintln!("HF_HUB_OFFLINE is set: checking the cache at {} only", settings.cache_dir.display());
    }
    let recording = Recording { inner: &source, seen: Mutex::new(Vec::new()) };
    let open = OpenOptions { revision: args.revision.clone(), ..Default::default() };
    Checkpoint::open_with(&args.model, &open, &recording).with_context(|| format!("downloading {}", args.model))?;

    let seen = recording.seen.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut text = String::new();
    for (repo, revision, dir) in seen {
        let files = snapshot_files(&dir)?;
        let line = Line {
            repo,
            revision,
            commit: dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            size: files.iter().map(|f| f.size).sum(),
            files: files.into_iter().map(|f| f.name).collect(),
            path: dir,
        };
        text += &(serde_json::to_string(&line)? + "\n");
    }
    stdout::print(text.as_bytes()).context("writing the list")?;
    Ok(Outcome { failed: 0 })
}
