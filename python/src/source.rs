//! Hub models: the Hugging Face cache first, then (optionally) a downloader — a Python callable
//! (e.g. `huggingface_hub`'s) or the library's own [`HubDownloader`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pairrm::checkpoint::{FileRequest, HubCache, SnapshotSource};
use pairrm::{Error, Result};
use pairrm_hub::{DownloadProgress, FileProgress, HubDownloader, HubSettings};
use pyo3::prelude::*;

/// Who fetches the files a hub model lacks in the cache.
pub enum Fetcher {
    /// Nobody: a missing file is a `NotInCacheError`.
    Never,
    /// The Python callable `download(repo, revision, cache_dir, required, one_of, optional)`,
    /// which puts the files into the cache.
    Python(Py<PyAny>),
    /// The library's [`HubDownloader`], with the environment's settings (`HF_ENDPOINT`,
    /// `HF_TOKEN`, `HF_HUB_OFFLINE`, timeouts, proxies) and the cache the source reads.
    Builtin,
}

/// A [`SnapshotSource`] that answers from a [`HubCache`] and, when files are missing, has its
/// [`Fetcher`] put them in that cache, then looks again.
pub struct FetchingSource {
    /// The cache directory given by the caller (else the environment's, looked up when needed).
    cache_dir: Option<PathBuf>,
    /// Who fetches missing files.
    fetcher: Fetcher,
    /// The Python exception the downloader raised, re-raised as it was once loading returns.
    raised: Mutex<Option<PyErr>>,
}

impl FetchingSource {
    /// A source over `cache_dir` (else the environment's cache) with `fetcher` for what it lacks.
    pub fn new(cache_dir: Option<PathBuf>, fetcher: Fetcher) -> Self {
        FetchingSource { cache_dir, fetcher, raised: Mutex::new(None) }
    }

    /// The exception the downloader raised, if it did.
    pub fn take_raised(&self) -> Option<PyErr> {
        self.raised.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn cache(&self) -> Result<HubCache> {
        match &self.cache_dir {
            Some(dir) => Ok(HubCache::new(dir)),
            None => HubCache::from_env(),
        }
    }

    fn call_python(
        &self,
        download: &Py<PyAny>,
        cache: &HubCache,
        repo: &str,
        revision: &str,
        request: &FileRequest,
    ) -> Result<()> {
        let dir = cache.dir().display().to_string();
        let called = Python::attach(|py| {
            download
                .call1(
                    py,
                    (repo, revision, dir, request.required.clone(), request.one_of.clone(), request.optional.clone()),
                )
                .map(|_| ())
        });
        called.map_err(|e| {
            let message = format!("downloading {repo}@{revision}: {e}");
            *self.raised.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            Error::Hub(message)
        })
    }
}

impl SnapshotSource for FetchingSource {
    fn snapshot(&self, repo: &str, revision: &str, request: &FileRequest) -> Result<PathBuf> {
        let cache = self.cache()?;
        let missing = match cache.snapshot(repo, revision, request) {
            Err(e @ Error::NotInCache { .. }) => e,
            other => return other,
        };
        match &self.fetcher {
            Fetcher::Never => Err(missing),
            Fetcher::Python(download) => {
                self.call_python(download, &cache, repo, revision, request)?;
                cache.snapshot(repo, revision, request)
            }
            Fetcher::Builtin => {
                let mut settings = HubSettings::from_env()?;
                settings.cache_dir = cache.dir().to_path_buf();
                HubDownloader::new(settings).with_progress(Arc::new(StderrProgress)).snapshot(repo, revision, request)
            }
        }
    }
}

/// Download reports on stderr, one line when a file starts and one when it is done (Python
/// programs have no terminal progress bar of ours; these lines are what `pairrm download` shows
/// in short).
struct StderrProgress;

impl DownloadProgress for StderrProgress {
    fn waiting(&self, repo: &str, file: &str) {
        eprintln!("pairrm: waiting for another process downloading {repo}/{file}");
    }

    fn start(&self, repo: &str, file: &str, total: u64, done: u64) -> Box<dyn FileProgress> {
        let resumed = if done > 0 { format!(", resuming at {}", megabytes(done)) } else { String::new() };
        eprintln!("pairrm: downloading {repo}/{file} ({}{resumed})", megabytes(total));
        Box::new(FileLine { name: format!("{repo}/{file}"), bytes: 0, started: Instant::now() })
    }
}

/// One file's download, reported when it finishes.
struct FileLine {
    name: String,
    bytes: u64,
    started: Instant,
}

impl FileProgress for FileLine {
    fn advance(&mut self, bytes: u64) {
        self.bytes += bytes;
    }

    fn restart(&mut self) {
        self.bytes = 0;
        self.started = Instant::now();
    }

    fn finish(&mut self) {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        eprintln!(
            "pairrm: downloaded {} ({} in {seconds:.1} s, {}/s)",
            self.name,
            megabytes(self.bytes),
            megabytes((self.bytes as f64 / seconds) as u64)
        );
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
