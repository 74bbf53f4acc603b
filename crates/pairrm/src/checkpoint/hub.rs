//! Hub ids (`org/name`) resolved through the standard Hugging Face cache, without the network.
//!
//! The cache layout is the one `huggingface_hub` writes:
//!
//! ```text
//! <cache>/models--<org>--<name>/
//!     refs/<revision>          # a file holding the commit hash the revision points to
//!     snapshots/<commit>/...   # the repo's files at that commit (usually symlinks into blobs/)
//!     blobs/<etag>             # file contents, named by the hub's etag (sha256 for LFS files)
//!     .no_exist/<commit>/...   # empty files: these files do not exist at that commit
//! <cache>/.locks/models--<org>--<name>/<etag>.lock   # held while a blob is downloaded
//! ```
//!
//! `<cache>` is `HF_HUB_CACHE` (or the older `HUGGINGFACE_HUB_CACHE`), else `HF_HOME/hub`, else
//! `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub` — the same rules as
//! `huggingface_hub`, so models downloaded by Python tools are found.
//!
//! This module never touches the network, and neither does the rest of this crate. Files are
//! asked for through [`SnapshotSource`], the seam between the engine and whatever fetches models:
//! [`HubCache`] answers from the cache alone, with [`Error::NotInCache`] naming what is missing,
//! and [`EnvCache`] does the same with the cache the environment names (what
//! [`super::Checkpoint::open`] uses). The `pairrm-hub` crate's `HubDownloader` implements the same
//! trait: it fetches what the cache lacks, then answers from the cache.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The revision used when none is given.
pub const DEFAULT_REVISION: &str = "main";

/// Which files of a repo are wanted from a snapshot.
///
/// A cache-only source checks that `required` files and one file of each `one_of` group are
/// present; a downloader fetches them (trying each group's names in order) plus whichever
/// `optional` files the repo has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRequest {
    /// Files that must be present.
    pub required: Vec<String>,
    /// Groups of alternatives, most preferred first: at least one of each group must be present.
    pub one_of: Vec<Vec<String>>,
    /// Files used when present.
    pub optional: Vec<String>,
}

impl FileRequest {
    /// A request for `files`, all required.
    pub fn required(files: &[&str]) -> Self {
        FileRequest { required: files.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    /// Adds a group of alternatives (most preferred first).
    pub fn one_of(mut self, files: &[&str]) -> Self {
        self.one_of.push(files.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Adds optional files.
    pub fn optional(mut self, files: &[&str]) -> Self {
        self.optional.extend(files.iter().map(|s| s.to_string()));
        self
    }

    /// The files missing from `dir` (for a group: its preferred name), empty if the request is
    /// satisfied.
    pub fn missing_in(&self, dir: &Path) -> Vec<String> {
        let mut missing: Vec<String> = self.required.iter().filter(|f| !dir.join(f).is_file()).cloned().collect();
        for group in &self.one_of {
            if !group.iter().any(|f| dir.join(f).is_file()) {
                missing.push(group.join(" or "));
            }
        }
        missing
    }

    /// The files a source should make sure of when nothing is there yet: every required file and
    /// every group (as "a or b").
    fn all_needed(&self) -> Vec<String> {
        let mut v = self.required.clone();
        v.extend(self.one_of.iter().map(|g| g.join(" or ")));
        v
    }
}

/// Provides local snapshot directories of hub repos.
pub trait SnapshotSource {
    /// The directory holding the files of `repo` at `revision`, with at least what `request`
    /// asks for; an error (for the cache: [`Error::NotInCache`]) when they cannot be had.
    fn snapshot(&self, repo: &str, revision: &str, request: &FileRequest) -> Result<PathBuf>;
}

/// The Hugging Face home directory according to the environment variables read by `get`
/// (`HF_HOME`, `XDG_CACHE_HOME`, `HOME`, `USERPROFILE`): `HF_HOME`, else
/// `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`; `None` when none of them gives
/// one. A leading `~/` is expanded. The token file lives there.
pub fn hf_home_from(get: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let vars = Vars(&get);
    match vars.get("HF_HOME") {
        Some(v) => vars.expand(v),
        None => match vars.get("XDG_CACHE_HOME") {
            Some(v) => Some(vars.expand(v)?.join("huggingface")),
            None => Some(Path::new(&vars.home()?).join(".cache").join("huggingface")),
        },
    }
}

/// The Hugging Face cache directory according to the environment variables read by `get`
/// (`HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, then [`hf_home_from`]`/hub`); `None` when none of
/// them gives one. A leading `~/` is expanded.
pub fn cache_dir_from(get: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let vars = Vars(&get);
    if let Some(v) = vars.get("HF_HUB_CACHE").or_else(|| vars.get("HUGGINGFACE_HUB_CACHE")) {
        return vars.expand(v);
    }
    Some(hf_home_from(&get)?.join("hub"))
}

/// Environment lookups: empty values count as unset; `~` is the home directory.
struct Vars<'a, F>(&'a F);

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    fn get(&self, key: &str) -> Option<String> {
        (self.0)(key).filter(|v| !v.is_empty())
    }

    fn home(&self) -> Option<String> {
        self.get("HOME").or_else(|| self.get("USERPROFILE"))
    }

    fn expand(&self, v: String) -> Option<PathBuf> {
        match v.strip_prefix("~/").or_else(|| (v == "~").then_some("")) {
            Some(rest) => self.home().map(|h| Path::new(&h).join(rest)),
            None => Some(PathBuf::from(v)),
        }
    }
}

/// [`cache_dir_from`] the process environment.
pub fn cache_dir_from_env() -> Option<PathBuf> {
    cache_dir_from(|k| std::env::var(k).ok())
}

/// Whether an environment value means "yes" the way `huggingface_hub` reads booleans: `1`,
/// `true`, `yes` or `on`, in any case.
pub fn is_truthy(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// Whether `HF_HUB_OFFLINE` (or the older `TRANSFORMERS_OFFLINE`) asks for no network access,
/// reading variables through `get` (see [`is_truthy`]).
pub fn offline_from(get: impl Fn(&str) -> Option<String>) -> bool {
    ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"].iter().any(|k| get(k).is_some_and(|v| is_truthy(&v)))
}

/// [`offline_from`] the process environment. This module never uses the network either way;
/// the `pairrm-hub` crate's downloader reads the cache alone when this is set.
pub fn offline_from_env() -> bool {
    offline_from(|k| std::env::var(k).ok())
}

/// Whether `s` is a hub repo id: `name` or `org/name`, each part made of ASCII letters, digits,
/// `-`, `_` and `.`, not starting with `.` or `-` and without `..`.
pub fn is_repo_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 96
                && !p.starts_with(['.', '-'])
                && !p.contains("..")
                && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

/// The `org` of an `org/name` that does not exist, when `org` is a directory under `base` (the
/// working directory for `Path::new("")`): the user then meant a local path (`models/nope`), and
/// going to the hub for `models/nope` would only hide the typo. Names without `/` (`gpt2`) stay
/// hub ids; anything else that is not `org/name`-shaped never reaches the hub anyway.
pub(crate) fn local_parent<'a>(model: &'a str, base: &Path) -> Option<&'a str> {
    let (org, _) = model.split_once('/')?;
    (is_repo_id(model) && base.join(org).is_dir()).then_some(org)
}

/// The cache folder name of a model repo: `org/name` → `models--org--name`.
pub fn repo_folder_name(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// Whether `revision` is a full commit hash (40 hex digits).
pub fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `revision` is safe to use as a relative path under `refs/`: nothing that could leave it.
pub fn is_safe_revision(revision: &str) -> bool {
    !revision.is_empty()
        && !revision.starts_with('/')
        && !revision.contains('\\')
        && revision.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The Hugging Face hub cache, read-only and offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCache {
    dir: PathBuf,
}

impl HubCache {
    /// The cache at `dir` (the directory holding the `models--*` folders).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        HubCache { dir: dir.into() }
    }

    /// The cache the environment points to (see [`cache_dir_from`]).
    pub fn from_env() -> Result<Self> {
        cache_dir_from_env().map(HubCache::new).ok_or_else(|| {
            Error::Hub("cannot locate the Hugging Face cache: set HF_HUB_CACHE or HF_HOME (HOME is not set)".into())
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder of `repo` in the cache (which may not exist).
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.dir.join(repo_folder_name(repo))
    }

    fn not_cached(&self, repo: &str, revision: &str, missing: Vec<String>, reason: String) -> Error {
        Error::NotInCache {
            repo: repo.to_string(),
            revision: revision.to_string(),
            cache_dir: self.dir.clone(),
            missing,
            reason,
        }
    }

    /// Checks that `repo` is a repo id and `revision` a safe revision name (both become paths).
    pub fn check_ids(&self, repo: &str, revision: &str) -> Result<()> {
        if !is_repo_id(repo) {
            return Err(Error::model(repo, "not a valid hub repo id (expected `org/name`)"));
        }
        if !is_safe_revision(revision) {
            return Err(Error::model(repo, format!("invalid revision {revision:?}")));
        }
        Ok(())
    }

    /// The commit hash `revision` of `repo` points to: the revision itself if it is a commit
    /// hash, else the content of `refs/<revision>`.
    pub fn resolve_commit(&self, repo: &str, revision: &str) -> Result<String> {
        self.check_ids(repo, revision)?;
        if is_commit_hash(revision) {
            return Ok(revision.to_ascii_lowercase());
        }
        let repo_dir = self.repo_dir(repo);
        let ref_path = repo_dir.join("refs").join(revision);
        let everything = Vec::new;
        if !repo_dir.is_dir() {
            return Err(self.not_cached(repo, revision, everything(), String::new()));
        }
        let text = match std::fs::read_to_string(&ref_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.not_cached(
                    repo,
                    revision,
                    everything(),
                    format!(" (no {}: revision {revision} was never downloaded)", ref_path.display()),
                ))
            }
            Err(e) => return Err(Error::io(&ref_path, e)),
        };
        let commit = text.trim();
        if commit.is_empty() || !commit.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid_file(&ref_path, format!("does not hold a commit hash: {commit:?}")));
        }
        Ok(commit.to_string())
    }

    /// The snapshot directory of `repo` at `revision`, if it is in the cache.
    pub fn snapshot_dir(&self, repo: &str, revision: &str) -> Result<PathBuf> {
        let commit = self.resolve_commit(repo, revision)?;
        let dir = self.repo_dir(repo).join("snapshots").join(&commit);
        if !dir.is_dir() {
            return Err(self.not_cached(repo, revision, Vec::new(), format!(" (no snapshot {})", dir.display())));
        }
        Ok(dir)
    }

    /// Whether the cache records that `file` does not exist in `repo` at `commit` (an empty file
    /// under `.no_exist/<commit>/`, as `huggingface_hub` writes after a 404).
    pub fn is_known_missing(&self, repo: &str, commit: &str, file: &str) -> bool {
        self.repo_dir(repo).join(".no_exist").join(commit).join(file).is_file()
    }

    /// The path of `file` of `repo` at `revision` in the cache.
    pub fn file(&self, repo: &str, revision: &str, file: &str) -> Result<PathBuf> {
        let dir = self.snapshot(repo, revision, &FileRequest::required(&[file]))?;
        Ok(dir.join(file))
    }
}

impl SnapshotSource for HubCache {
    fn snapshot(&self, repo: &str, revision: &str, request: &FileRequest) -> Result<PathBuf> {
        let dir = match self.snapshot_dir(repo, revision) {
            Ok(dir) => dir,
            Err(Error::NotInCache { repo, revision, cache_dir, reason, .. }) => {
                return Err(Error::NotInCache { repo, revision, cache_dir, missing: request.all_needed(), reason })
            }
            Err(e) => return Err(e),
        };
        let missing = request.missing_in(&dir);
        if !missing.is_empty() {
            return Err(self.not_cached(repo, revision, missing, format!(" (snapshot {})", dir.display())));
        }
        Ok(dir)
    }
}

/// The cache the process environment names ([`HubCache::from_env`]), looked up only when a hub id
/// needs it, so that local checkpoints never depend on the environment. It reads the cache alone:
/// a hub id whose files are missing fails with [`Error::NotInCache`] (a downloader, such as the
/// `pairrm-hub` crate's, is another [`SnapshotSource`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnvCache;

impl SnapshotSource for EnvCache {
    fn snapshot(&self, repo: &str, revision: &str, request: &FileRequest) -> Result<PathBuf> {
        HubCache::from_env()?.snapshot(repo, revision, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn an_org_that_is_a_local_directory_means_a_path() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("models")).unwrap();
        std::fs::write(base.path().join("notes"), "").unwrap();
        assert_eq!(local_parent("models/nope", base.path()), Some("models"));
        // A hub id whose org is not a local directory (or is a file) goes to the hub.
        assert_eq!(local_parent("llm-blender/PairRM", base.path()), None);
        assert_eq!(local_parent("notes/x", base.path()), None);
        // Single names stay hub ids; non-repo-id shapes are refused elsewhere.
        assert_eq!(local_parent("models", base.path()), None);
        assert_eq!(local_parent("models/a/b", base.path()), None);
    }

    #[test]
    fn cache_dir_rules() {
        let home = [("HOME", "/home/u")];
        assert_eq!(cache_dir_from(env(&home)), Some("/home/u/.cache/huggingface/hub".into()));
        assert_eq!(
            cache_dir_from(env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/x")])),
            Some("/x/huggingface/hub".into())
        );
        assert_eq!(cache_dir_from(env(&[("HOME", "/home/u"), ("HF_HOME", "~/hf")])), Some("/home/u/hf/hub".into()));
        assert_eq!(
            cache_dir_from(env(&[("HOME", "/h"), ("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/c")])),
            Some("/c".into())
        );
        assert_eq!(cache_dir_from(env(&[("HUGGINGFACE_HUB_CACHE", "/old")])), Some("/old".into()));
        assert_eq!(cache_dir_from(env(&[("HF_HUB_CACHE", ""), ("HF_HOME", "/hf")])), Some("/hf/hub".into()));
        assert_eq!(cache_dir_from(env(&[])), None);
        assert_eq!(hf_home_from(env(&[("HOME", "/h"), ("HF_HUB_CACHE", "/c")])), Some("/h/.cache/huggingface".into()));
        assert_eq!(hf_home_from(env(&[("USERPROFILE", "/u"), ("HF_HOME", "~")])), Some("/u".into()));
    }

    #[test]
    fn offline_values() {
        for v in ["1", "true", "TRUE", "Yes", "on", " 1 "] {
            assert!(offline_from(env(&[("HF_HUB_OFFLINE", v)])), "{v}");
        }
        for v in ["0", "false", "", "no", "off", "2"] {
            assert!(!offline_from(env(&[("HF_HUB_OFFLINE", v)])), "{v}");
        }
        assert!(offline_from(env(&[("TRANSFORMERS_OFFLINE", "1")])));
        assert!(!offline_from(env(&[])));
    }

    #[test]
    fn ids() {
        assert!(is_repo_id("llm-blender/PairRM"));
        assert!(is_repo_id("gpt2"));
        assert!(is_repo_id("microsoft/deberta-v3-large"));
        for bad in ["", "a/b/c", "../x", "a/..", "a//b", "/abs", "a b/c", ".hidden/x", "org/na..me"] {
            assert!(!is_repo_id(bad), "{bad}");
        }
        assert_eq!(repo_folder_name("llm-blender/PairRM"), "models--llm-blender--PairRM");
        assert!(is_commit_hash("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit_hash("main"));
        assert!(is_safe_revision("refs/pr/1") && is_safe_revision("v1.0"));
        assert!(!is_safe_revision("../x") && !is_safe_revision("/etc") && !is_safe_revision("a//b"));
    }
}
