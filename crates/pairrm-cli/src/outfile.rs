//! Output files (`--output`, `--rows`, `--plot`, `--write-workload`, `man --dir`): each is
//! written to a temporary file beside its target and renamed over the target only when the
//! command succeeds, after an fsync. A command that fails, is interrupted (Ctrl-C, SIGTERM,
//! SIGHUP) or stops because its stdout closed leaves the old file exactly as it was, and removes
//! its temporary file.
//!
//! A target that is a symlink is written through (the file it points to is replaced, the link
//! stays), as `File::create` would. A target that exists and is not a regular file (`/dev/null`,
//! a FIFO), or that lies in `/dev` or `/proc` (`/dev/stdout`), is written directly: there is
//! nothing to replace atomically.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::Context;
use tempfile::NamedTempFile;

/// The temporary files of outputs not yet committed. Committing renames under this lock, and
/// the interrupt and closed-stdout paths remove the files under it, so a file is either renamed
/// into place or removed, never both half-way.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every pending temporary file; the lock stays held so that nothing is committed after.
#[cfg(unix)]
fn remove_pending() -> MutexGuard<'static, Vec<PathBuf>> {
    let mut files = pending();
    for path in files.drain(..) {
        let _ = fs::remove_file(path);
    }
    files
}

/// Removes the temporary files of unfinished outputs and ends the process with `code` at once:
/// no destructors, no exit handlers, no other thread gets further.
#[cfg(unix)]
pub fn abandon_and_exit(code: i32) -> ! {
    let _held = remove_pending();
    // SAFETY: `_exit` only ends the process.
    unsafe { libc::_exit(code) }
}

/// On the first pending output: SIGINT, SIGTERM and SIGHUP remove the temporary files, then
/// end the process as the signal would have (so that a calling shell sees the interrupt). A
/// signal the process was started ignoring (`nohup`, a background job of a script) stays ignored.
#[cfg(unix)]
fn remove_on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let wanted: Vec<i32> = [SIGINT, SIGTERM, SIGHUP].into_iter().filter(|&s| !ignored(s)).collect();
        if wanted.is_empty() {
            return;
        }
        let mut signals = match signal_hook::iterator::Signals::new(wanted) {
            Ok(s) => s,
            Err(e) => return tracing::warn!("an interrupt may leave temporary output files behind: {e}"),
        };
        let spawned = std::thread::Builder::new().name("pairrm-signals".into()).spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let _held = remove_pending();
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                // SAFETY: `_exit` only ends the process (reached if the default action did not).
                unsafe { libc::_exit(128 + signal) }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("an interrupt may leave temporary output files behind: {e}");
        }
    });
}

/// Whether `signal` is ignored (`SIG_IGN`) now.
#[cfg(unix)]
fn ignored(signal: i32) -> bool {
    // SAFETY: a zeroed `sigaction` is a valid value to be overwritten, and a null new action only
    // reads the current one.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_IGN
    }
}

#[cfg(not(unix))]
fn remove_on_signals() {}

/// An output file being written (see the module documentation).
pub struct OutputFile {
    /// The path as the user gave it (for messages).
    shown: PathBuf,
    /// Where the file goes (symlinks followed).
    target: PathBuf,
    kind: Kind,
}

enum Kind {
    /// A temporary file beside the target, registered in [`PENDING`] (`None` once consumed).
    Temp(Option<NamedTempFile>),
    /// An existing file that is not a regular file, written in place.
    Direct(File),
}

impl OutputFile {
    /// Starts writing `path`. Nothing at `path` changes until [`OutputFile::commit`].
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let shown = path.to_path_buf();
        let context = || format!("creating {}", path.display());
        let (target, existing) = match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => anyhow::bail!("creating {}: is a directory", path.display()),
            Ok(meta) if !meta.is_file() || in_system_dirs(path) => {
                // Appending: what is behind `/dev/stdout` was already truncated (`>`) or not (`>>`)
                // by whoever redirected it.
                let file = fs::OpenOptions::new().append(true).open(path).with_context(context)?;
                return Ok(OutputFile { shown, target: path.to_path_buf(), kind: Kind::Direct(file) });
            }
            Ok(meta) => (fs::canonicalize(path).with_context(context)?, Some(meta)),
            // A new file, or a dangling link to where it will be.
            Err(e) if e.kind() == io::ErrorKind::NotFound => (resolve_links(path).with_context(context)?, None),
            Err(e) => return Err(e).with_context(context),
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            // What `File::create` gives a new file (the umask applies).
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        remove_on_signals();
        let temp = {
            let mut files = pending();
            let temp = builder
                .tempfile_in(&dir)
                .with_context(|| format!("creating {}: a temporary file in {}", path.display(), dir.display()))?;
            files.push(temp.path().to_path_buf());
            temp
        };
        let file = OutputFile { shown, target, kind: Kind::Temp(Some(temp)) };
        if let (Some(meta), Kind::Temp(Some(temp))) = (&existing, &file.kind) {
            // A replaced file keeps its permissions.
            temp.as_file()
                .set_permissions(meta.permissions())
                .with_context(|| format!("creating {}", file.shown.display()))?;
        }
        Ok(file)
    }

    /// Finishes the file: flushed, synced, and renamed over the target.
    pub fn commit(mut self) -> anyhow::Result<()> {
        let context = || format!("writing {}", self.shown.display());
        match &mut self.kind {
            Kind::Direct(file) => file.flush().with_context(context),
            Kind::Temp(temp) => {
                let temp = temp.take().expect("committed once");
                temp.as_file().sync_all().with_context(context)?;
                let from = temp.path().to_path_buf();
                let mut files = pending();
                let persisted = temp.persist(&self.target);
                files.retain(|p| *p != from);
                drop(files);
                // On failure the returned temporary file is dropped, which removes it.
                persisted.map_err(|e| e.error).with_context(context)?;
                sync_parent(&self.target);
                Ok(())
            }
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.kind {
            Kind::Temp(Some(temp)) => temp.write(buf),
            Kind::Temp(None) => Err(io::Error::other("output already committed")),
            Kind::Direct(file) => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.kind {
            Kind::Temp(Some(temp)) => temp.flush(),
            Kind::Temp(None) => Ok(()),
            Kind::Direct(file) => file.flush(),
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Kind::Temp(temp) = &mut self.kind {
            if let Some(temp) = temp.take() {
                let path = temp.path().to_path_buf();
                let _ = temp.close();
                pending().retain(|p| *p != path);
            }
        }
    }
}

/// Makes the rename durable (best effort: not every file system can sync a directory).
fn sync_parent(target: &Path) {
    #[cfg(unix)]
    if let Some(dir) = target.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = target;
}

/// Whether `path`, or a link it leads through, is in `/dev` or `/proc` (`/dev/stdout`,
/// `/proc/self/fd/1`): those are opened as they are, never replaced — replacing the file behind
/// `/dev/stdout` would cut it off from the shell's redirection (and empty a `>>` log).
fn in_system_dirs(path: &Path) -> bool {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        let dir = match current.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if fs::canonicalize(&dir).is_ok_and(|d| d.starts_with("/dev") || d.starts_with("/proc")) {
            return true;
        }
        match fs::read_link(&current) {
            Ok(link) if link.is_relative() => current = dir.join(link),
            Ok(link) => current = link,
            Err(_) => return false,
        }
    }
    false
}

/// `path` with every symlink at its end followed (the links may dangle: the last path they
/// reach is where a new file would be created).
pub fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn the_old_file_stays_until_commit_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        fs::write(&target, "old\n").unwrap();
        let mut out = OutputFile::create(&target).unwrap();
        out.write_all(b"new\n").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "old\n");
        assert_eq!(names(dir.path()).len(), 2, "the temporary file is beside the target");
        drop(out);
        assert_eq!(fs::read_to_string(&target).unwrap(), "old\n", "an abandoned output changes nothing");
        assert_eq!(names(dir.path()), ["out.jsonl"]);

        let mut out = OutputFile::create(&target).unwrap();
        out.write_all(b"new\n").unwrap();
        out.commit().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(names(dir.path()), ["out.jsonl"]);
    }

    #[cfg(unix)]
    #[test]
    fn links_are_written_through_and_permissions_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.jsonl");
        fs::write(&real, "old\n").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink("real.jsonl", &link).unwrap();
        let mut out = OutputFile::create(&link).unwrap();
        out.write_all(b"new\n").unwrap();
        out.commit().unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
        assert_eq!(fs::read_to_string(&real).unwrap(), "new\n");
        assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);

        // A dangling link: the file it names is created.
        let dangling = dir.path().join("dangling.jsonl");
        std::os::unix::fs::symlink("made.jsonl", &dangling).unwrap();
        let mut out = OutputFile::create(&dangling).unwrap();
        out.write_all(b"x").unwrap();
        out.commit().unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("made.jsonl")).unwrap(), "x");
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_written_in_place() {
        for device in ["/dev/null", "/dev/stdout", "/proc/self/fd/1"] {
            let out = OutputFile::create(Path::new(device)).unwrap();
            assert!(matches!(out.kind, Kind::Direct(_)), "{device}");
            out.commit().unwrap();
        }
        // Also through a link of the user's.
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("out");
        std::os::unix::fs::symlink("/dev/stdout", &link).unwrap();
        assert!(matches!(OutputFile::create(&link).unwrap().kind, Kind::Direct(_)));
        assert!(!in_system_dirs(&dir.path().join("new.jsonl")));
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = OutputFile::create(dir.path()).err().unwrap();
        assert!(format!("{e:#}").contains("is a directory"), "{e:#}");
    }
}
