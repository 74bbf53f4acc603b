//! Downloading hub repos into the Hugging Face cache, in the layout of Python's
//! `huggingface_hub` (see [`pairrm::checkpoint::hub`]), so that both share one cache both ways.
//!
//! [`HubDownloader`] is a [`SnapshotSource`]: asked for files of a repo at a revision, it answers
//! from the cache when everything asked for is there — no request at all — and downloads only what
//! is missing. To pick up a newer commit of a branch, make it [`HubDownloader::refresh`] (what
//! `pairrm download` does): it then asks the hub which commit the revision points to now.
//!
//! A refreshing downloader also checks every cached file it is asked for against the hub's size
//! and sha256 (LFS files; the others by size), and fetches again, atomically, what fails; with
//! [`HubDownloader::force`] it fetches everything again. A file that fails its check is never left
//! in the cache: its blob is removed before the new download, which is verified before it is
//! renamed into place.
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
use crate::{transfer, verify};

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
    force: bool,
    /// Commits pinned so far, by (repo, revision).
    pinned: Mutex<HashMap<(String, String), String>>,
}

impl std::fmt::Debug for HubDownloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubDownloader")
            .field("settings", &self.settings)
            .field("refresh", &self.refresh)
            .field("force", &self.force)
            .finish()
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
            force: false,
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
    /// revision) instead of taken from the cache's `refs/`, so that a newer commit is downloaded,
    /// and every cached file asked for is checked against the hub's size and sha256 and fetched
    /// again if it fails. A commit revision needs no request: its LFS files are checked against
    /// their blob's name (their sha256).
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    /// With `force`, every file asked for is downloaded again, whatever the cache holds (partial
    /// downloads included); implies [`HubDownloader::refresh`].
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self.refresh |= force;
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
    force: bool,
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

    /// Asks the hub for the newest commit of each revision and checks the cached files (see
    /// [`HubDownloader::refresh`]).
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    /// Downloads every file again (see [`HubDownloader::force`]).
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// The downloader, made on first use; an error when the environment gives no usable settings.
    pub fn downloader(&self) -> Result<&HubDownloader> {
        let made = self.downloader.get_or_init(|| {
            let mut dl = HubDownloader::from_env()?.refresh(self.refresh).force(self.force);
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
        if let Some(present) = group.iter().find(|f| self.is_present(f)) {
            if !self.dl.refresh || self.ensure(present)? == Outcome::Present {
                return Ok(());
            }
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
        if (self.is_present(file) && !self.dl.refresh) || self.is_known_missing(file) {
            return;
        }
        if let Err(e) = self.ensure(file) {
            tracing::warn!(repo = self.repo, file, error = %e, "optional file not downloaded");
        }
    }

    /// Makes sure `file` is in the snapshot, downloading it if needed (and, when refreshing,
    /// fetching it again if the cached one fails its check).
    fn ensure(&mut self, file: &str) -> Result<Outcome> {
        if let Some(commit) = self.commit.as_ref().filter(|_| self.is_present(file)) {
            if !self.dl.refresh {
                return Ok(Outcome::Present);
            }
            // A commit never changes: no request for it, but what can be checked locally is.
            let pointer = self.store.pointer(commit, file);
            if !self.dl.force && is_commit_hash(self.revision) && verify::matches_its_name(&pointer)? {
                return Ok(Outcome::Present);
            }
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
                let pointer = self.store.pointer(&remote.commit, file);
                if !pointer.is_file() || !self.is_sound(&pointer, file, &remote)? {
                    self.fetch_blob(file, &remote)?;
                    self.store.link(&remote.etag, &remote.commit, file)?;
                }
                Ok(Outcome::Present)
            }
        }
    }

    /// Whether the cached `path` of `file` is what the hub describes (checked when refreshing;
    /// never when forcing, which fetches it again anyway).
    fn is_sound(&self, path: &std::path::Path, file: &str, remote: &RemoteFile) -> Result<bool> {
        if self.dl.force {
            return Ok(false);
        }
        if !self.dl.refresh {
            return Ok(true);
        }
        let sound = verify::matches(path, remote.size, remote.sha256.as_deref())?;
        if !sound {
            tracing::warn!(
                repo = self.repo,
                file,
                "the cached file does not match the hub's size or sha256: fetching it again"
            );
        }
        Ok(sound)
    }

    /// Makes sure the blob of `file` is in the cache and sound (its size and sha256 those the hub
    /// gives): downloads it while holding its lock, unless a sound one is there already (or
    /// appears while waiting for the lock: another process fetched it). A blob that fails the
    /// check is removed first, so that it is never served again.
    fn fetch_blob(&self, file: &str, remote: &RemoteFile) -> Result<()> {
        let blob = self.store.blob(&remote.etag);
        let sound = |blob: &std::path::Path| -> Result<bool> {
            Ok(!self.dl.force && verify::matches(blob, remote.size, remote.sha256.as_deref())?)
        };
        let existed = blob.is_file();
        if existed && sound(&blob)? {
            return Ok(());
        }
        let progress = self.dl.progress.as_deref();
        let mut waited = false;
        let _lock = self.store.lock(&remote.etag, || {
            waited = true;
            tracing::info!(repo = self.repo, file, "waiting for another download of this file");
            if let Some(p) = progress {
                p.waiting(self.repo, file);
            }
        })?;
        if (waited || !existed) && blob.is_file() && sound(&blob)? {
            return Ok(());
        }
        if blob.is_file() {
            if !self.dl.force {
                tracing::warn!(repo = self.repo, file, blob = %blob.display(), "removing a corrupt cached blob");
            }
            transfer::remove(&blob);
        }
        let incomplete = self.store.incomplete(&remote.etag);
        if self.dl.force {
            transfer::remove_if_present(&incomplete);
        }
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
