//! Checking a cached file against what the hub says of it (its size, and the sha256 of LFS
//! files), so that a corrupt or truncated file is fetched again instead of being served.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use pairrm::{Error, Result};
use sha2::{Digest, Sha256};

/// Whether the file at `path` (followed through a symlink) is `size` bytes long and, when
/// `sha256` is given, has that digest. A missing file does not match.
pub(crate) fn matches(path: &Path, size: u64, sha256: Option<&str>) -> Result<bool> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == size => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(path, e)),
    }
    match sha256 {
        Some(expected) => Ok(sha256_file(path)?.eq_ignore_ascii_case(expected)),
        None => Ok(true),
    }
}

/// The sha256 of the file at `path`, lowercase hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut HashWriter(&mut hasher)).map_err(|e| Error::io(path, e))?;
    Ok(hex(&hasher.finalize()))
}

/// Whether a snapshot entry that links into `blobs/` has the content its blob's name promises:
/// LFS blobs are named by their sha256, so they can be checked without asking the hub. `true`
/// when there is nothing to check this way (a plain file's blob is named by its git hash; a copy
/// instead of a link names no blob).
pub(crate) fn matches_its_name(pointer: &Path) -> Result<bool> {
    let Ok(target) = std::fs::read_link(pointer) else { return Ok(true) };
    match target.file_name().and_then(|n| n.to_str()) {
        Some(etag) if is_sha256(etag) => Ok(sha256_file(pointer)?.eq_ignore_ascii_case(etag)),
        _ => Ok(true),
    }
}

/// Whether `s` is a sha256 in hex (an LFS file's etag).
pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Feeds what is written to a hasher.
pub(crate) struct HashWriter<'a>(pub &'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digest() {
        let d = Sha256::digest(b"abc");
        assert_eq!(hex(&d), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn files_match_size_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(matches(&path, 3, Some(sha)).unwrap());
        assert!(matches(&path, 3, None).unwrap());
        assert!(!matches(&path, 4, None).unwrap());
        assert!(!matches(&path, 3, Some(&"0".repeat(64))).unwrap());
        assert!(!matches(&dir.path().join("absent"), 3, None).unwrap());
        assert!(matches_its_name(&path).unwrap(), "a plain file names no blob");
        #[cfg(unix)]
        {
            let blobs = dir.path().join("blobs");
            std::fs::create_dir(&blobs).unwrap();
            std::fs::write(blobs.join(sha), b"abc").unwrap();
            std::fs::write(blobs.join("0".repeat(64)), b"abc").unwrap();
            std::fs::write(blobs.join("1".repeat(40)), b"abc").unwrap();
            for (name, good) in [(sha.to_string(), true), ("0".repeat(64), false), ("1".repeat(40), true)] {
                let link = dir.path().join(format!("link-{name}"));
                std::os::unix::fs::symlink(Path::new("blobs").join(&name), &link).unwrap();
                assert_eq!(matches_its_name(&link).unwrap(), good, "{name}");
            }
        }
    }
}
