//! Writing into the cache in `huggingface_hub`'s layout (see [`pairrm::checkpoint::hub`]), so that
//! a reader never sees a half-written file:
//! - blobs are downloaded to `blobs/<etag>.incomplete` and renamed when complete and verified;
//! - pointers (`snapshots/<commit>/<file>`) are relative symlinks to `../../blobs/<etag>`, or
//!   copies where symlinks cannot be made, created under a temporary name and renamed into place;
//! - refs are written to a temporary file and renamed;
//! - a blob is downloaded while holding an exclusive lock on
//!   `<cache>/.locks/models--<org>--<name>/<etag>.lock` — the file `huggingface_hub` locks too,
//!   so pairrm and Python processes wait for each other.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fs4::FileExt;

use pairrm::checkpoint::hub::{repo_folder_name, HubCache};
use pairrm::{Error, Result};

/// The cache folders of one repo.
pub(crate) struct RepoStore {
    repo_dir: PathBuf,
    locks_dir: PathBuf,
}

/// An exclusive lock on a blob, released when dropped.
pub(crate) struct BlobLock {
    _file: File,
}

impl RepoStore {
    /// The folders of `repo` in `cache` (created when written to).
    pub fn new(cache: &HubCache, repo: &str) -> Self {
        RepoStore { repo_dir: cache.repo_dir(repo), locks_dir: cache.dir().join(".locks").join(repo_folder_name(repo)) }
    }

    /// `snapshots/<commit>`.
    pub fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.repo_dir.join("snapshots").join(commit)
    }

    /// `snapshots/<commit>/<file>`.
    pub fn pointer(&self, commit: &str, file: &str) -> PathBuf {
        self.snapshot_dir(commit).join(file)
    }

    /// `blobs/<etag>`.
    pub fn blob(&self, etag: &str) -> PathBuf {
        self.repo_dir.join("blobs").join(etag)
    }

    /// `blobs/<etag>.incomplete`: a download in progress (or broken off, to be resumed).
    pub fn incomplete(&self, etag: &str) -> PathBuf {
        self.repo_dir.join("blobs").join(format!("{etag}.incomplete"))
    }

    /// Records that `file` does not exist at `commit` (`.no_exist/<commit>/<file>`), so that it
    /// is not asked for again. Failing to record it only costs a request later.
    pub fn record_missing(&self, commit: &str, file: &str) {
        let path = self.repo_dir.join(".no_exist").join(commit).join(file);
        let result = create_parent(&path).and_then(|()| File::create(&path).map_err(|e| Error::io(&path, e)));
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot record a missing file in the cache");
        }
    }

    /// Makes `refs/<revision>` hold `commit` (unless it already does).
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        let path = self.repo_dir.join("refs").join(revision);
        if std::fs::read_to_string(&path).is_ok_and(|c| c.trim() == commit) {
            return Ok(());
        }
        create_parent(&path)?;
        let tmp = temp_name(&path);
        std::fs::write(&tmp, commit).map_err(|e| Error::io(&tmp, e))?;
        rename(&tmp, &path)
    }

    /// Takes the exclusive lock of blob `etag`, calling `on_wait` first if another process or
    /// thread holds it (then waits for it).
    pub fn lock(&self, etag: &str, on_wait: impl FnOnce()) -> Result<BlobLock> {
        let path = self.locks_dir.join(format!("{etag}.lock"));
        create_parent(&path)?;
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                on_wait();
                FileExt::lock(&file).map_err(|e| Error::io(&path, e))?;
            }
            Err(fs4::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        Ok(BlobLock { _file: file })
    }

    /// Points `snapshots/<commit>/<file>` at blob `etag`: a relative symlink, or a copy of the
    /// blob where symlinks cannot be made. Replaces whatever was there, atomically.
    pub fn link(&self, etag: &str, commit: &str, file: &str) -> Result<PathBuf> {
        let pointer = self.pointer(commit, file);
        let blob = self.blob(etag);
        create_parent(&pointer)?;
        let tmp = temp_name(&pointer);
        let depth = file.split('/').count();
        let target = format!("{}blobs/{etag}", "../".repeat(depth + 1));
        if let Err(e) = symlink(&target, &tmp) {
            tracing::debug!(error = %e, pointer = %pointer.display(), "symlinks unavailable: copying the blob");
            std::fs::copy(&blob, &tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        rename(&tmp, &pointer)?;
        Ok(pointer)
    }
}

#[cfg(unix)]
fn symlink(target: &str, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &str, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target.replace('/', "\\"), link)
}

#[cfg(not(any(unix, windows)))]
fn symlink(_: &str, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no symlinks on this platform"))
}

/// Creates the parent folders of `path`.
pub(crate) fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e)),
        None => Ok(()),
    }
}

/// Renames `from` onto `to` (replacing it), removing `from` if that fails.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        let _ = std::fs::remove_file(from);
        Error::io(to, e)
    })
}

/// A name beside `path`, unique to this process and call, for writing before a rename.
fn temp_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_refs_pointers_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HubCache::new(dir.path());
        let store = RepoStore::new(&cache, "org/name");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        store.write_ref("main", commit).unwrap();
        store.write_ref("refs/pr/1", commit).unwrap();
        assert_eq!(cache.resolve_commit("org/name", "main").unwrap(), commit);
        assert_eq!(cache.resolve_commit("org/name", "refs/pr/1").unwrap(), commit);

        let blob = store.blob("etag1");
        create_parent(&blob).unwrap();
        std::fs::write(&blob, b"content").unwrap();
        let top = store.link("etag1", commit, "config.json").unwrap();
        let nested = store.link("etag1", commit, "a/b/c.txt").unwrap();
        for p in [&top, &nested] {
            assert_eq!(std::fs::read(p).unwrap(), b"content");
        }
        #[cfg(unix)]
        {
            assert_eq!(std::fs::read_link(&top).unwrap(), Path::new("../../blobs/etag1"));
            assert_eq!(std::fs::read_link(&nested).unwrap(), Path::new("../../../../blobs/etag1"));
        }
        // Relinking replaces the pointer; no temporary file stays behind.
        std::fs::write(store.blob("etag2"), b"new").unwrap();
        store.link("etag2", commit, "config.json").unwrap();
        assert_eq!(std::fs::read(&top).unwrap(), b"new");
        let names: Vec<_> =
            std::fs::read_dir(store.snapshot_dir(commit)).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");

        assert!(!cache.is_known_missing("org/name", commit, "tokenizer.json"));
        store.record_missing(commit, "tokenizer.json");
        assert!(cache.is_known_missing("org/name", commit, "tokenizer.json"));
    }

    #[test]
    fn lock_waits_for_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = RepoStore::new(&HubCache::new(dir.path()), "org/name");
        let held = store.lock("etag", || panic!("nobody holds it yet")).unwrap();
        assert!(dir.path().join(".locks/models--org--name/etag.lock").is_file());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _second = store.lock("etag", || tx.send(()).unwrap()).unwrap();
            });
            // The second locker reports that it waits; then the first lets go.
            rx.recv().unwrap();
            drop(held);
        });
    }
}
