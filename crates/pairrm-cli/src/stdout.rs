//! Results on stdout, and what a closed stdout means: its reader has all it wants
//! (`pairrm rank … | head -1`), so the run stops at once and exits 0 without a word, as ripgrep
//! does — it neither keeps scoring lines nobody reads nor reports the pipe as an error.
//!
//! Two things notice the close: a write that fails with `BrokenPipe` (recorded for [`closed`];
//! `main` then exits 0 quietly), and, when stdout is a pipe or socket, a thread that waits in
//! `poll(2)` for the reader to go away ([`exit_when_closed`]) — so the run also stops while it is
//! computing, reading stdin or waiting on the network, not only at its next write.

use std::io::{self, BufWriter, StdoutLock, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout found the pipe closed.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write to stdout found its reader gone.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// Stdout as a results writer: a write that finds the pipe closed is recorded ([`closed`]).
pub struct Results(StdoutLock<'static>);

impl Write for Results {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        noticed(self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        noticed(self.0.flush())
    }
}

fn noticed<T>(result: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &result {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
        }
    }
    result
}

/// Buffered stdout for results.
pub fn results() -> BufWriter<Results> {
    BufWriter::new(Results(io::stdout().lock()))
}

/// Writes `bytes` to stdout and flushes.
pub fn print(bytes: &[u8]) -> io::Result<()> {
    let mut out = results();
    out.write_all(bytes)?;
    out.flush()
}

/// When stdout is a pipe or a socket, ends the process (exit 0, after removing the temporary
/// files of unfinished outputs) as soon as its reader goes away. Other stdouts (files,
/// terminals, `/dev/null`) are left alone: their reader cannot leave.
#[cfg(unix)]
pub fn exit_when_closed() {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;

    let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() else { return };
    let Ok(meta) = std::fs::File::from(fd).metadata() else { return };
    if !(meta.file_type().is_fifo() || meta.file_type().is_socket()) {
        return;
    }
    let watcher = std::thread::Builder::new().name("pairrm-stdout".into()).spawn(|| loop {
        // No events asked for: poll wakes only for POLLERR (a pipe without readers) or POLLHUP (a
        // socket shut down), which are always reported.
        let mut pollfd = libc::pollfd { fd: libc::STDOUT_FILENO, events: 0, revents: 0 };
        // SAFETY: one valid pollfd that lives for the whole call.
        let n = unsafe { libc::poll(&mut pollfd, 1, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if pollfd.revents & libc::POLLNVAL != 0 {
            return;
        }
        if pollfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            CLOSED.store(true, Ordering::Relaxed);
            crate::outfile::abandon_and_exit(0);
        }
    });
    if let Err(e) = watcher {
        tracing::debug!("not watching stdout: {e}");
    }
}

/// Elsewhere a closed stdout is noticed at the next write only.
#[cfg(not(unix))]
pub fn exit_when_closed() {}
