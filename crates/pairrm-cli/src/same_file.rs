//! Refusing to write a file the command reads (`pairrm compare -i x.jsonl -o x.jsonl`), however
//! it is named: existing files are compared by device and inode, so a symlink or a hard link to
//! the input is caught too; stdin and stdout count when they are redirected files
//! (`-o x.jsonl < x.jsonl`, `-i x.jsonl >> x.jsonl`). Two outputs naming one file
//! (`--rows a --plot a`) are refused as well.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::outfile::resolve_links;

/// A file named on the command line: the flag that named it, and the path.
pub type Named<'a> = (&'a str, &'a Path);

/// What a path refers to.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    /// An existing file (device, inode).
    #[cfg(unix)]
    Inode(u64, u64),
    /// An existing file elsewhere, or the file a new output would create: its path with the
    /// links and the directories resolved.
    Path(PathBuf),
}

/// The identity of `path`; `None` when it cannot be known (then the open that follows reports
/// the problem).
fn identity(path: &Path) -> Option<Identity> {
    match fs::metadata(path) {
        Ok(meta) => existing(&meta, path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let target = resolve_links(path).ok()?;
            let dir = match target.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            Some(Identity::Path(fs::canonicalize(dir).ok()?.join(target.file_name()?)))
        }
        Err(_) => None,
    }
}

#[cfg(unix)]
fn existing(meta: &fs::Metadata, _: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    Some(Identity::Inode(meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn existing(_: &fs::Metadata, path: &Path) -> Option<Identity> {
    fs::canonicalize(path).ok().map(Identity::Path)
}

/// The regular file stdin (`out` false) or stdout (`out` true) is redirected to, if any.
#[cfg(unix)]
fn std_stream(out: bool) -> Option<Identity> {
    use std::os::fd::AsFd;
    let fd = if out { io::stdout().as_fd().try_clone_to_owned() } else { io::stdin().as_fd().try_clone_to_owned() };
    let meta = fs::File::from(fd.ok()?).metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    existing(&meta, Path::new(""))
}

#[cfg(not(unix))]
fn std_stream(_: bool) -> Option<Identity> {
    None
}

/// Fails when an output is an input (a file in `inputs`, or stdin's file when `reads_stdin`),
/// when stdout's file is an input (when `writes_stdout`), or when two outputs are one file.
pub fn check(inputs: &[Named], reads_stdin: bool, outputs: &[Named], writes_stdout: bool) -> anyhow::Result<()> {
    let inputs: Vec<(&Named, Option<Identity>)> = inputs.iter().map(|n| (n, identity(n.1))).collect();
    let stdin = if reads_stdin { std_stream(false) } else { None };
    let mut seen: Vec<(&Named, Identity)> = Vec::new();
    for output in outputs {
        let Some(id) = identity(output.1) else { continue };
        let (flag, path) = output;
        if let Some(((in_flag, in_path), _)) = inputs.iter().find(|(_, i)| i.as_ref() == Some(&id)) {
            anyhow::bail!(
                "{flag} {} is the same file as {in_flag} {}: refusing to overwrite an input (write to another file)",
                path.display(),
                in_path.display()
            );
        }
        if stdin.as_ref() == Some(&id) {
            anyhow::bail!(
                "{flag} {} is the file stdin reads from: refusing to overwrite an input (write to another file)",
                path.display()
            );
        }
        if let Some(((other_flag, other_path), _)) = seen.iter().find(|(_, i)| *i == id) {
            anyhow::bail!("{other_flag} {} and {flag} {} are the same file", other_path.display(), path.display());
        }
        seen.push((output, id));
    }
    if writes_stdout {
        if let Some(out) = std_stream(true) {
            if let Some(((in_flag, in_path), _)) = inputs.iter().find(|(_, i)| i.as_ref() == Some(&out)) {
                anyhow::bail!(
                    "stdout is redirected to {in_flag} {}: refusing to write into an input",
                    in_path.display()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(inputs: &[Named], outputs: &[Named]) -> String {
        format!("{:#}", check(inputs, false, outputs, false).unwrap_err())
    }

    #[test]
    fn outputs_that_are_inputs_are_refused_however_named() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        fs::write(&input, "{}\n").unwrap();
        let other = dir.path().join("out.jsonl");
        assert!(check(&[("--input", &input)], false, &[("--output", &other)], false).is_ok());
        let e = err(&[("--input", &input)], &[("--output", &input)]);
        assert!(e.contains("--output") && e.contains("--input") && e.contains("same file"), "{e}");
        // Another spelling of the same path.
        let dotted = dir.path().join(".").join("in.jsonl");
        assert!(err(&[("--input", &input)], &[("--output", &dotted)]).contains("same file"));
        #[cfg(unix)]
        {
            let link = dir.path().join("link.jsonl");
            std::os::unix::fs::symlink(&input, &link).unwrap();
            assert!(err(&[("--input", &input)], &[("--output", &link)]).contains("same file"));
            assert!(err(&[("--input", &link)], &[("--output", &input)]).contains("same file"));
            let hard = dir.path().join("hard.jsonl");
            fs::hard_link(&input, &hard).unwrap();
            assert!(err(&[("--input", &input)], &[("--output", &hard)]).contains("same file"));
        }
    }

    #[test]
    fn two_outputs_naming_one_new_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.svg");
        let same = dir.path().join("sub").join("..").join("a.svg");
        fs::create_dir(dir.path().join("sub")).unwrap();
        let e = err(&[], &[("--rows", &a), ("--plot", &same)]);
        assert!(e.contains("--rows") && e.contains("--plot") && e.contains("same file"), "{e}");
        assert!(check(&[], false, &[("--rows", &a), ("--plot", &dir.path().join("b.svg"))], false).is_ok());
    }
}
