//! Progress bars on stderr for model downloads: bytes, total, rate and ETA, one bar per file.
//! Nothing is drawn when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pairrm_hub::{DownloadProgress, FileProgress};

/// Draws a bar for each file a [`pairrm_hub::HubDownloader`] downloads.
pub struct DownloadBars;

impl DownloadProgress for DownloadBars {
    fn waiting(&self, repo: &str, file: &str) {
        eprintln!("waiting for another process that is downloading {file} of {repo}");
    }

    fn start(&self, repo: &str, file: &str, total: u64, done: u64) -> Box<dyn FileProgress> {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template("{msg} [{wide_bar}] {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(format!("{repo} {file}"));
        bar.set_position(done);
        bar.reset_eta();
        Box::new(FileBar { bar, finished: false })
    }
}

/// One file's bar.
struct FileBar {
    bar: ProgressBar,
    finished: bool,
}

impl FileProgress for FileBar {
    fn advance(&mut self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn restart(&mut self) {
        self.bar.set_position(0);
        self.bar.reset_eta();
    }

    fn finish(&mut self) {
        self.finished = true;
        self.bar.finish();
    }
}

impl Drop for FileBar {
    fn drop(&mut self) {
        if !self.finished {
            self.bar.abandon();
        }
    }
}
