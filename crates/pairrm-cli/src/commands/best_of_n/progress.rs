//! The progress bar of `pairrm best-of-n` on stderr: lines written out of lines read (or in
//! the input file), with the samples, requests and retries so far.

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::ProgressBar;

use crate::progress::stderr_bar;

/// Progress shared by the stages.
pub struct Progress {
    bar: ProgressBar,
    known_total: bool,
    samples: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl Progress {
    /// A bar for `total` lines (unknown when reading stdin: it grows as lines are read). Hidden
    /// when `disabled` or when stderr is not a terminal.
    pub fn new(total: Option<usize>, disabled: bool) -> Self {
        Progress {
            bar: stderr_bar(total, disabled, "lines"),
            known_total: total.is_some(),
            samples: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    /// A line was read.
    pub fn line_read(&self) {
        if !self.known_total {
            self.bar.inc_length(1);
        }
    }

    /// A request finished after `attempts` attempts, with `samples` samples (0 when it failed).
    pub fn request_done(&self, samples: usize, attempts: u32) {
        self.samples.fetch_add(samples as u64, Ordering::Relaxed);
        self.requests.fetch_add(u64::from(attempts), Ordering::Relaxed);
        self.retries.fetch_add(u64::from(attempts.saturating_sub(1)), Ordering::Relaxed);
        self.bar.set_message(self.summary());
    }

    /// A line was written.
    pub fn line_written(&self) {
        self.bar.inc(1);
    }

    /// `"S samples, R requests, T retries"` so far.
    pub fn summary(&self) -> String {
        format!(
            "{} samples, {} requests, {} retries",
            self.samples.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed)
        )
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up() {
        let p = Progress::new(None, true);
        p.line_read();
        p.request_done(4, 1);
        p.request_done(0, 3);
        p.line_written();
        assert_eq!(p.summary(), "4 samples, 4 requests, 2 retries");
        p.finish();
    }
}
