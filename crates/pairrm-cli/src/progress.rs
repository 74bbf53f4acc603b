//! A progress bar on stderr, counted in forward passes.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pairrm::CallOptions;

/// Progress of a command: passes done out of passes planned, and lines written.
pub struct Progress {
    bar: ProgressBar,
    /// Whether the total was known up front (else it grows with each chunk).
    known_total: bool,
}

impl Progress {
    /// A bar for `total` passes (unknown when reading stdin: it grows as lines are read). Hidden
    /// when `disabled` or when stderr is not a terminal.
    pub fn new(total: Option<usize>, disabled: bool) -> Self {
        let bar = if disabled { ProgressBar::hidden() } else { ProgressBar::new(total.unwrap_or(0) as u64) };
        if !disabled {
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} passes ({per_sec}, ETA {eta}) {msg}",
                )
                .expect("valid template"),
            );
        }
        Progress { bar, known_total: total.is_some() }
    }

    /// Adds `passes` to the plan when the total was not known up front.
    pub fn plan(&self, passes: usize) {
        if !self.known_total {
            self.bar.inc_length(passes as u64);
        }
    }

    /// Records that lines up to `line` were written.
    pub fn lines_done(&self, line: usize) {
        self.bar.set_message(format!("{line} lines"));
    }

    /// Engine call options that advance this bar.
    pub fn call_options(&self) -> CallOptions {
        let bar = self.bar.clone();
        CallOptions { progress: Some(Arc::new(move |n| bar.inc(n as u64))), ..Default::default() }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
