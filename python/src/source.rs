//! Hub models: the Hugging Face cache first, then (optionally) a Python downloader.

use std::path::PathBuf;
use std::sync::Mutex;

use pairrm::checkpoint::{FileRequest, HubCache, SnapshotSource};
use pairrm::{Error, Result};
use pyo3::prelude::*;

/// A [`SnapshotSource`] that answers from a [`HubCache`] and, when files are missing, asks the
/// Python callable `download(repo, revision, cache_dir, required, one_of, optional)` to put them
/// in that cache, then looks again.
pub struct FetchingSource {
    /// The cache directory given by the caller (else the environment's, looked up when needed).
    cache_dir: Option<PathBuf>,
    /// The downloader, if any.
    download: Option<Py<PyAny>>,
    /// The Python exception the downloader raised, re-raised as it was once loading returns.
    raised: Mutex<Option<PyErr>>,
}

impl FetchingSource {
    /// A source over `cache_dir` (else the environment's cache) with an optional downloader.
    pub fn new(cache_dir: Option<PathBuf>, download: Option<Py<PyAny>>) -> Self {
        FetchingSource { cache_dir, download, raised: Mutex::new(None) }
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
}

impl SnapshotSource for FetchingSource {
    fn snapshot(&self, repo: &str, revision: &str, request: &FileRequest) -> Result<PathBuf> {
        let cache = self.cache()?;
        let missing = match cache.snapshot(repo, revision, request) {
            Err(e @ Error::NotInCache { .. }) => e,
            other => return other,
        };
        let Some(download) = &self.download else { return Err(missing) };
        let dir = cache.dir().display().to_string();
        let called = Python::attach(|py| {
            download
                .call1(
                    py,
                    (repo, revision, dir, request.required.clone(), request.one_of.clone(), request.optional.clone()),
                )
                .map(|_| ())
        });
        if let Err(e) = called {
            let message = format!("downloading {repo}@{revision}: {e}");
            *self.raised.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            return Err(Error::Hub(message));
        }
        cache.snapshot(repo, revision, request)
    }
}
