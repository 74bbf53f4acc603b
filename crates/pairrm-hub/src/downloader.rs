//! Downloading hub repos into the Hugging Face cache, in the layout of Python's
//! `huggingface_hub` (see [`pairrm::checkpoint::hub`]), so that both share one cache both ways.
//!
//! [`HubDownloader`] is a [`SnapshotSource`]: asked for files of a repo at a revision, it answers
//! from the cache when everything asked for is there — no request at all — and downloads only what
//! is missing. To pick up a newer commit of a branch, make it [`HubDownloader::refresh`] (what
//! `pairrm download` does): it then asks the hub which commit the revision points to now.
//!
//! Within one downloader every file of a repo comes from the same commit: the first answer of the
//! hub (or the cached ref) pins it. Files that the hub says do not exist are recorded under
//! `.no_exist/` and not asked for again at that commit. With [`HubSettings::offline`] set, the
//! downloader never uses the network and behaves as [`HubCache`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use pairrm::checkpoint::hub::{is_commit_hash, FileRequest, HubCache, SnapshotSource};
use pairrm::{Error, Result};

use crate::http::{Head, HubClient, RemoteFile};
use crate::settings::HubSettings;
use crate::store::{self, RepoStore};
use crate::transfer;

/// Watches downloads (e.g. to draw progress bars). Called from the downloading thread.
pub trait DownloadProgress: Send + Sync {
    /// Another process or thread is downloading `file` of `repo`: this one waits for it to finish
    /// (and then uses its file).
    fn waiting(&self, repo: &str, file: &str);
    /// A download of `file` of `repo` starts: `total` bytes, of which `done` are already there
    /// (a resumed download).
    fn start(&self, repo: &str, file: &str, total: u64, done: u64) -> Box<dyn FileProgress>;
}

/// The progress of one file's download. Dropped without [`FileProgress::finish`] when it fails.
pub trait FileProgress {
    /// `bytes` more arrived.
    fn advance(&mut self, bytes: u64);
    /// The server could not resume: the download starts over from byte 0.
    fn restart(&mut self);
    /// The file is complete and verified.
    fn finish(&mut self);
}

/// A [`SnapshotSource`] that downloads what the cache lacks (see the module documentation).
pub struct HubDownloader {
    settings: HubSettings,
    cache: HubCache,
    client: HubClient,
    progress: Option<Arc<dyn DownloadProgress>>,
    refresh: bool,
    /// Commits pinned so far, by (repo, revision).
    pinned: Mutex<HashMap<(String, String), String>>,
}

impl std::fmt::Debug for HubDownloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubDownloader").field("settings", &self.settings).field("refresh", &self.refresh).finish()
    }
}

impl HubDownloader {
    /// A downloader with these settings.
    pub fn new(settings: HubSettings) -> Self {
        HubDownloader {
            cache: HubCache::new(&settings.cache_dir),
            client: HubClient::new(&settings),
            settings,
            progress: None,
            refresh: false,
            pinned: Mutex::new(HashMap::new()),
        }
    }

    /// A downloader with the settings of the process environment ([`HubSettings::from_env`]).
    pub fn from_env() -> Result<Self> {
        Ok(Self::new(HubSettings::from_env()?))
    }

    /// Reports downloads to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn DownloadProgress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// With `refresh`, the commit a branch or tag points to is asked of the hub (once per repo and
    /// revision) instead of taken from the cache's `refs/`, so that a newer commit is downloaded.
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// The cache written to.
    pub fn cache(&self) -> &HubCache {
        &self.cache
    }

    /// The path of `file` of `repo` at `revision`, downloaded if the cache lacks it.
    pub fn download_file(&self, repo: &str, revision: &str, file: &str) -> Result<PathBuf> {
        Ok(self.snapshot(repo, revision, &FileRequest::required(&[file]))?.join(file))
    }

    /// The commit already known for `repo` at `revision`, without asking the hub.
    fn known_commit(&self, repo: &str, revision: &str) -> Result<Option<String>> {
        if is_commit_hash(revision) {
            return Ok(Some(revision.to_ascii_lowercase()));
        }
        let pinned = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = pinned.get(&(repo.to_string(), revision.to_string())) {
            return Ok(Some(c.clone()));
        }
        if self.refresh {
            return Ok(None);
        }
        match self.cache.resolve_commit(repo, revision) {
            Ok(c) => Ok(Some(c)),
            Err(Error::NotInCache { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl SnapshotSource for HubDownloader {
    fn snapshot(&self, repo: &str, revision: &str, request: &FileRequest) -> Result<PathBuf> {
        self.cache.check_ids(repo, revision)?;
        if self.settings.offline {
            return self.cache.snapshot(repo, revision, request);
        }
        let mut fetch = Fetch {
            dl: self,
            store: RepoStore::new(&self.cache, repo),
            repo,
            revision,
            commit: self.known_commit(repo, revision)?,
        };
        for file in &request.required {
            fetch.required(file)?;
        }
        for group in &request.one_of {
            fetch.one_of(group)?;
        }
        for file in &request.optional {
            fetch.optional(file);
        }
        match &fetch.commit {
            Some(commit) => {
                let dir = fetch.store.snapshot_dir(commit);
                std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                Ok(dir)
            }
            None => self.cache.snapshot_dir(repo, revision),
        }
    }
}

/// The source the process environment names, made only when a hub id needs it (so that local
/// checkpoints never depend on the environment): a [`HubDownloader`] with
/// [`HubSettings::from_env`] — which reads the cache alone when `HF_HUB_OFFLINE` is set. This is
/// what the `pairrm` CLI loads hub models with.
#[derive(Default)]
pub struct EnvSource {
    progress: Option<Arc<dyn DownloadProgress>>,
    refresh: bool,
    downloader: OnceLock<Result<HubDownloader>>,
}

impl EnvSource {
    /// A source with the environment's settings, no progress reports, cache first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports downloads to `progress` (see [`HubDownloader::with_progress`]).
    pub fn with_progress(mut self, progress: Arc<dyn DownloadProgress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Asks the hub for the newest commit of each revision (see [`HubDownloader::refresh`]).
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    /// The downloader, made on first use; an error when the environment gives no usable settings.
    pub fn downloader(&self) -> Result<&HubDownloader> {
        let made = self.downloader.get_or_init(|| {
            let mut dl = HubDownloader::from_env()?.refresh(self.refresh);
            if let Some(p) = &self.progress {
                dl = dl.with_progress(p.clone());
            }
            Ok(dl)
        });
        made.as_ref().map_err(Error::clone)
    }
}

impl SnapshotSource for EnvSource {
    fn snapshot(&self, repo: &str, revision: &str, request: &FileRequest) -> Result<PathBuf> {
        self.downloader()?.snapshot(repo, revision, request)
    }
}

/// Whether a file is there after asking for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Present,
    Missing,
}

/// Fetching the files of one request: one repo, one revision, one commit.
struct Fetch<'a> {
    dl: &'a HubDownloader,
    store: RepoStore,
    repo: &'a str,
    revision: &'a str,
    /// The commit, once known (from the cache or the hub's first answer).
    commit: Option<String>,
}

impl Fetch<'_> {
    fn is_present(&self, file: &str) -> bool {
        self.commit.as_ref().is_some_and(|c| self.store.pointer(c, file).is_file())
    }

    fn is_known_missing(&self, file: &str) -> bool {
        self.commit.as_ref().is_some_and(|c| self.dl.cache.is_known_missing(self.repo, c, file))
    }

    fn not_found(&self, what: &str) -> Error {
        let at = match &self.commit {
            Some(c) if c != self.revision => format!("revision {} (commit {c})", self.revision),
            _ => format!("revision {}", self.revision),
        };
        Error::Hub(format!("{what} not found in {} at {at} on {}", self.repo, self.dl.client.endpoint()))
    }

    fn required(&mut self, file: &str) -> Result<()> {
        match self.ensure(file)? {
            Outcome::Present => Ok(()),
            Outcome::Missing => Err(self.not_found(file)),
        }
    }

    fn one_of(&mut self, group: &[String]) -> Result<()> {
        if group.iter().any(|f| self.is_present(f)) {
            return Ok(());
        }
        for file in group {
            if !self.is_known_missing(file) && self.ensure(file)? == Outcome::Present {
                return Ok(());
            }
        }
        Err(self.not_found(&group.join(" or ")))
    }

    /// Fetches `file` if the repo has it; a failure other than "no such file" is only logged.
    fn optional(&mut self, file: &str) {
        if self.is_present(file) || self.is_known_missing(file) {
            return;
        }
        if let Err(e) = self.ensure(file) {
            tracing::warn!(repo = self.repo, file, error = %e, "optional file not downloaded");
        }
    }

    /// Makes sure `file` is in the snapshot, downloading it if needed.
    fn ensure(&mut self, file: &str) -> Result<Outcome> {
        if self.is_present(file) {
            return Ok(Outcome::Present);
        }
        let rev = self.commit.clone().unwrap_or_else(|| self.revision.to_string());
        match self.dl.client.head(self.repo, &rev, file)? {
            Head::Missing { commit } => {
                if let Some(c) = commit {
                    self.pin(&c)?;
                    self.store.record_missing(&c, file);
                }
                tracing::debug!(repo = self.repo, revision = rev, file, "not in the repo");
                Ok(Outcome::Missing)
            }
            Head::Found(remote) => {
                self.pin(&remote.commit)?;
                if !self.store.pointer(&remote.commit, file).is_file() {
                    self.fetch_blob(file, &remote)?;
                    self.store.link(&remote.etag, &remote.commit, file)?;
                }
                Ok(Outcome::Present)
            }
        }
    }

    /// Makes sure the blob of `file` is in the cache: downloads it while holding its lock, unless
    /// it is there already (or appears while waiting for the lock: another process fetched it).
    fn fetch_blob(&self, file: &str, remote: &RemoteFile) -> Result<()> {
        let blob = self.store.blob(&remote.etag);
        if blob.is_file() {
            return Ok(());
        }
        let progress = self.dl.progress.as_deref();
        let _lock = self.store.lock(&remote.etag, || {
            tracing::info!(repo = self.repo, file, "waiting for another download of this file");
            if let Some(p) = progress {
                p.waiting(self.repo, file);
            }
        })?;
        if blob.is_file() {
            return Ok(());
        }
        let incomplete = self.store.incomplete(&remote.etag);
        store::create_parent(&incomplete)?;
        check_space(&incomplete, remote.size);
        let job = transfer::Job { repo: self.repo, file, remote };
        transfer::download(&self.dl.client, &job, &incomplete, self.dl.settings.retries, progress)?;
        store::rename(&incomplete, &blob)?;
        tracing::info!(repo = self.repo, file, size = remote.size, "downloaded");
        Ok(())
    }

    /// Fixes the commit of this fetch (and of the downloader for this repo and revision), and
    /// records the revision's ref.
    fn pin(&mut self, commit: &str) -> Result<()> {
        match &self.commit {
            Some(c) if c == commit => return Ok(()),
            Some(c) => {
                return Err(Error::Hub(format!(
                    "{} at {}: the hub answered commit {commit} while asked about commit {c}",
                    self.repo, self.revision
                )))
            }
            None => {}
        }
        if !is_commit_hash(self.revision) {
            self.store.write_ref(self.revision, commit)?;
        }
        let key = (self.repo.to_string(), self.revision.to_string());
        self.dl.pinned.lock().unwrap_or_else(|e| e.into_inner()).insert(key, commit.to_string());
        self.commit = Some(commit.to_string());
        Ok(())
    }
}

/// Warns when the disk holding `path` has less room than `size` bytes (the check is advisory:
/// some file systems report no figure).
fn check_space(path: &std::path::Path, size: u64) {
    let have = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let need = size.saturating_sub(have);
    if let Ok(available) = fs4::available_space(path.parent().unwrap_or(path)) {
        if available < need {
            tracing::warn!(path = %path.display(), need, available, "not enough free disk space for this download");
        }
    }
}
