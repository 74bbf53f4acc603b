//! Downloading one file into `blobs/<etag>.incomplete`: resuming what an earlier run left there
//! with an HTTP `Range` request, retrying when the connection breaks, and checking the size and
//! (when the hub gives it) the sha256 of the result. A file that fails the check is removed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::http::{HubClient, RemoteFile, RequestError};
use crate::verify::{hex, HashWriter};
use crate::DownloadProgress;
use pairrm::{Error, Result};

/// Bytes read from the network at a time.
const CHUNK: usize = 256 * 1024;

/// What is being downloaded, for messages and progress.
pub(crate) struct Job<'a> {
    /// The repo id.
    pub repo: &'a str,
    /// The file's path in the repo.
    pub file: &'a str,
    /// Where the file is, according to the hub.
    pub remote: &'a RemoteFile,
}

/// Downloads `job` into `incomplete` (continuing the bytes already there), trying again up to
/// `retries` times in a row when the connection breaks without bringing new bytes. On success
/// `incomplete` holds exactly the file, verified. On a failed check it is removed; when the
/// transfer breaks off it is kept, for the next run to resume.
pub(crate) fn download(
    client: &HubClient,
    job: &Job,
    incomplete: &Path,
    retries: u32,
    progress: Option<&dyn DownloadProgress>,
) -> Result<()> {
    let io = |e| Error::io(incomplete, e);
    let size = job.remote.size;
    let mut file = File::options().read(true).write(true).create(true).truncate(false).open(incomplete).map_err(io)?;
    let mut have = file.metadata().map_err(io)?.len();
    if have > size {
        tracing::info!(path = %incomplete.display(), have, size, "partial download longer than the file: starting over");
        file.set_len(0).map_err(io)?;
        have = 0;
    }
    let mut hasher = job.remote.sha256.as_ref().map(|_| Sha256::new());
    if let Some(h) = hasher.as_mut() {
        if have > 0 {
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            let copied = std::io::copy(&mut (&mut file).take(have), &mut HashWriter(h)).map_err(io)?;
            if copied != have {
                return Err(Error::invalid_file(incomplete, "changed while being read"));
            }
        }
    }
    file.seek(SeekFrom::Start(have)).map_err(io)?;
    if have > 0 {
        tracing::info!(repo = job.repo, file = job.file, have, size, "resuming a partial download");
    }
    let mut bar = progress.map(|p| p.start(job.repo, job.file, size, have));

    let mut failures = 0u32;
    let mut buf = vec![0u8; CHUNK];
    while have < size {
        let before = have;
        let cause = match client.get(&job.remote.location, have) {
            Err(RequestError::Refused(e)) => return Err(e),
            Err(RequestError::Transport(cause)) => cause,
            Ok(download) => {
                if download.start != have {
                    // The server ignored the range: the body is the whole file.
                    tracing::info!(
                        repo = job.repo,
                        file = job.file,
                        "the server cannot resume: downloading from the start"
                    );
                    file.set_len(0).map_err(io)?;
                    file.seek(SeekFrom::Start(0)).map_err(io)?;
                    have = 0;
                    hasher = job.remote.sha256.as_ref().map(|_| Sha256::new());
                    if let Some(b) = bar.as_mut() {
                        b.restart();
                    }
                }
                // Read at most one byte past the end, to notice a body that is too long.
                let mut body = download.body.take(size - have + 1);
                loop {
                    match body.read(&mut buf) {
                        Ok(0) => break "the connection closed early".to_string(),
                        Ok(n) => {
                            if have + n as u64 > size {
                                drop(file);
                                remove(incomplete);
                                return Err(Error::Hub(format!(
                                    "{}/{}: the server sent more than the {size} bytes the hub announced; \
                                     the download was removed",
                                    job.repo, job.file
                                )));
                            }
                            file.write_all(&buf[..n]).map_err(io)?;
                            if let Some(h) = hasher.as_mut() {
                                h.update(&buf[..n]);
                            }
                            have += n as u64;
                            if let Some(b) = bar.as_mut() {
                                b.advance(n as u64);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => break e.to_string(),
                    }
                }
            }
        };
        if have == size {
            break;
        }
        failures = if have > before { 1 } else { failures + 1 };
        if failures > retries {
            file.flush().map_err(io)?;
            return Err(Error::Hub(format!(
                "download of {} from {} broke off at {have} of {size} bytes ({cause}); the part downloaded \
                 is kept in {} and the next run resumes it",
                job.file,
                job.repo,
                incomplete.display()
            )));
        }
        tracing::warn!(repo = job.repo, file = job.file, have, size, %cause, "download broke off: resuming");
    }
    file.flush().map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);

    if let (Some(h), Some(expected)) = (hasher, job.remote.sha256.as_deref()) {
        let got = hex(&h.finalize());
        if !got.eq_ignore_ascii_case(expected) {
            remove(incomplete);
            return Err(Error::Hub(format!(
                "{}/{}: checksum mismatch (sha256 {got}, the hub says {expected}); the corrupt download was \
                 removed: run again",
                job.repo, job.file
            )));
        }
    }
    if let Some(b) = bar.as_mut() {
        b.finish();
    }
    Ok(())
}

/// Removes `path` if it exists (a failure to do so is only logged).
pub(crate) fn remove_if_present(path: &Path) {
    if path.exists() {
        remove(path);
    }
}

/// Removes a file that must not be kept (a failure to do so is only logged).
pub(crate) fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a bad download");
    }
}
