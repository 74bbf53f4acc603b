//! What the Hugging Face cache holds: every model repo, whoever downloaded it (pairrm or Python's
//! `huggingface_hub`), with its refs, its snapshots (revisions) and their files and sizes.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use pairrm::{Error, Result};

/// A model repo in the cache (`models--<org>--<name>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CachedRepo {
    /// The repo id (`org/name`).
    pub repo: String,
    /// Its folder in the cache.
    pub path: PathBuf,
    /// Bytes it takes on disk: its complete blobs, plus snapshot files stored as copies.
    pub size_on_disk: u64,
    /// Bytes of downloads in progress or broken off (`blobs/*.incomplete`).
    pub partial_bytes: u64,
    /// Its refs: revision (branch, tag, `refs/pr/N`) → commit.
    pub refs: BTreeMap<String, String>,
    /// Its snapshots, those that refs point to first, then by commit.
    pub revisions: Vec<CachedRevision>,
}

/// A snapshot: the files of a repo at one commit that are in the cache.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CachedRevision {
    /// The commit hash (the snapshot folder's name).
    pub commit: String,
    /// The refs pointing to it.
    pub refs: Vec<String>,
    /// Its folder.
    pub path: PathBuf,
    /// Its files, by path in the repo.
    pub files: Vec<CachedFile>,
    /// The files' total size.
    pub size: u64,
}

/// A file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CachedFile {
    /// The path in the repo (`/`-separated).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The model repos in the cache at `dir`, sorted by repo id (none when `dir` does not exist).
/// Snapshot entries whose blob is gone are left out (and logged).
pub fn scan_cache(dir: &Path) -> Result<Vec<CachedRepo>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut repos = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("models--") else { continue };
        let path = entry.path();
        if rest.is_empty() || !path.is_dir() {
            continue;
        }
        repos.push(scan_repo(rest.split("--").collect::<Vec<_>>().join("/"), path)?);
    }
    repos.sort_by(|a, b| a.repo.cmp(&b.repo));
    Ok(repos)
}

fn scan_repo(repo: String, path: PathBuf) -> Result<CachedRepo> {
    let mut refs = BTreeMap::new();
    for (name, file) in walk(&path.join("refs"))? {
        let commit = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        refs.insert(name, commit.trim().to_string());
    }

    let (mut size_on_disk, mut partial_bytes) = (0, 0);
    for (name, file) in walk(&path.join("blobs"))? {
        let len = std::fs::metadata(&file).map_err(|e| Error::io(&file, e))?.len();
        if name.ends_with(".incomplete") {
            partial_bytes += len;
        } else {
            size_on_disk += len;
        }
    }

    let mut revisions = Vec::new();
    let snapshots = path.join("snapshots");
    for commit in list_dirs(&snapshots)? {
        let dir = snapshots.join(&commit);
        let entries = snapshot_entries(&dir)?;
        size_on_disk += entries.iter().filter(|(_, copy)| *copy).map(|(f, _)| f.size).sum::<u64>();
        let files: Vec<CachedFile> = entries.into_iter().map(|(f, _)| f).collect();
        let size = files.iter().map(|f| f.size).sum();
        let refs_here: Vec<String> = refs.iter().filter(|(_, c)| **c == commit).map(|(r, _)| r.clone()).collect();
        revisions.push(CachedRevision { commit, refs: refs_here, path: dir, files, size });
    }
    revisions.sort_by(|a, b| a.refs.is_empty().cmp(&b.refs.is_empty()).then_with(|| a.commit.cmp(&b.commit)));
    Ok(CachedRepo { repo, path, size_on_disk, partial_bytes, refs, revisions })
}

/// The files of the snapshot folder `dir` with their sizes (following the symlinks into
/// `blobs/`), sorted by name. Entries whose blob is gone are left out (and logged).
pub fn snapshot_files(dir: &Path) -> Result<Vec<CachedFile>> {
    Ok(snapshot_entries(dir)?.into_iter().map(|(f, _)| f).collect())
}

/// [`snapshot_files`], each with whether it is a copy (a regular file, not a symlink).
fn snapshot_entries(dir: &Path) -> Result<Vec<(CachedFile, bool)>> {
    let mut files = Vec::new();
    for (name, file) in walk(dir)? {
        match std::fs::metadata(&file) {
            Ok(m) => {
                let copy = std::fs::symlink_metadata(&file).is_ok_and(|l| !l.file_type().is_symlink());
                files.push((CachedFile { name, size: m.len() }, copy));
            }
            Err(e) => tracing::warn!(file = %file.display(), error = %e, "broken file in the cache"),
        }
    }
    Ok(files)
}

/// The folder names in `dir` (none if it does not exist).
fn list_dirs(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.path().is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The files under `dir` (following no folder symlinks), as (`/`-separated relative name, path),
/// sorted by name; none if `dir` does not exist.
fn walk(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    fn go(dir: &Path, prefix: &str, seen: &mut HashSet<PathBuf>, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
            if kind.is_dir() {
                if seen.insert(path.clone()) {
                    go(&path, &format!("{name}/"), seen, out)?;
                }
            } else {
                out.push((name, path));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(dir, "", &mut HashSet::new(), &mut out)?;
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_what_huggingface_hub_writes() {
        let cache = tempfile::tempdir().unwrap();
        assert_eq!(scan_cache(&cache.path().join("absent")).unwrap(), []);
        let repo = cache.path().join("models--org--name");
        let c1 = "1".repeat(40);
        let c2 = "2".repeat(40);
        for d in ["blobs", "refs/refs/pr", &format!("snapshots/{c1}/sub"), &format!("snapshots/{c2}")] {
            std::fs::create_dir_all(repo.join(d)).unwrap();
        }
        std::fs::write(repo.join("refs/main"), &c1).unwrap();
        std::fs::write(repo.join("refs/refs/pr/1"), format!("{c1}\n")).unwrap();
        std::fs::write(repo.join("blobs/aaa"), vec![0u8; 100]).unwrap();
        std::fs::write(repo.join("blobs/bbb.incomplete"), vec![0u8; 7]).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("../../blobs/aaa", repo.join("snapshots").join(&c1).join("weights.bin"))
                .unwrap();
            std::os::unix::fs::symlink("../../blobs/gone", repo.join("snapshots").join(&c1).join("broken")).unwrap();
        }
        #[cfg(not(unix))]
        std::fs::write(repo.join("snapshots").join(&c1).join("weights.bin"), vec![0u8; 100]).unwrap();
        std::fs::write(repo.join("snapshots").join(&c1).join("sub/config.json"), "{}").unwrap();
        std::fs::write(repo.join("snapshots").join(&c2).join("config.json"), "{\"a\":1}").unwrap();
        // Not model repos.
        std::fs::create_dir_all(cache.path().join("datasets--org--data")).unwrap();
        std::fs::create_dir_all(cache.path().join(".locks")).unwrap();

        let repos = scan_cache(cache.path()).unwrap();
        assert_eq!(repos.len(), 1);
        let r = &repos[0];
        assert_eq!(r.repo, "org/name");
        assert_eq!(r.refs.get("main"), Some(&c1));
        assert_eq!(r.refs.get("refs/pr/1"), Some(&c1));
        assert_eq!(r.partial_bytes, 7);
        let copies = if cfg!(unix) { 2 + 7 } else { 100 + 2 + 7 };
        assert_eq!(r.size_on_disk, 100 + copies);
        assert_eq!(r.revisions.len(), 2);
        let first = &r.revisions[0];
        assert_eq!(first.commit, c1);
        assert_eq!(first.refs, ["main", "refs/pr/1"]);
        let names: Vec<&str> = first.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["sub/config.json", "weights.bin"]);
        assert_eq!(first.size, 102);
        assert_eq!(r.revisions[1].refs, Vec::<String>::new());
        assert_eq!(r.revisions[1].size, 7);
    }
}
