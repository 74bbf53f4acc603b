//! A progress bar on stderr, counted in forward passes.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pairrm::CallOptions;

/// A bar on stderr counting `unit` (items, rate, ETA; redrawn 4 times a second) for `total`
/// items (0 until told when unknown). Hidden when `disabled`; indicatif also hides it when stderr
/// is not a terminal.
pub fn stderr_bar(total: Option<usize>, disabled: bool, unit: &str) -> ProgressBar {
    if disabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total.unwrap_or(0) as u64), ProgressDrawTarget::stderr_with_hz(4));
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}}) {{msg}}"
    );
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
    bar
}

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
        Progress { bar: stderr_bar(total, disabled, "passes"), known_total: total.is_some() }
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
