//! Running engine work from Python: on a worker thread with the GIL released, while the calling
//! thread reports progress and watches for signals (Ctrl-C cancels the work).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use pairrm::CallOptions;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// How often the calling thread wakes to report progress and check for signals.
const POLL: Duration = Duration::from_millis(50);

/// Set when the worker is done (also when it panics: set on drop).
struct Finished(Arc<(Mutex<bool>, Condvar)>);

impl Drop for Finished {
    fn drop(&mut self) {
        let (flag, cond) = &*self.0;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cond.notify_all();
    }
}

/// Waits up to [`POLL`] for the worker; true once it is done.
fn wait(done: &(Mutex<bool>, Condvar)) -> bool {
    let (flag, cond) = done;
    let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
    let (guard, _) = cond.wait_timeout_while(guard, POLL, |finished| !*finished).unwrap_or_else(|e| e.into_inner());
    *guard
}

/// Runs `work` on a worker thread with the GIL released and returns its result.
///
/// `work` gets [`CallOptions`] to hand to the engine: its progress counts finished passes and
/// its cancel flag is raised when the caller must stop. First `progress(0, planned)` is called;
/// then the calling thread, every [`POLL`], calls `progress(done, total)` (`total` = `planned`,
/// at least `done`) when the count changed, and checks for signals. If a signal handler raises (Ctrl-C: `KeyboardInterrupt`) or
/// `progress` raises, the work is cancelled (the batch running finishes, the rest is skipped)
/// and that exception is returned. On success `progress(done, done)` is called last, so a bar
/// ends full even when identical pairs were scored once.
pub fn run<T, F>(py: Python<'_>, progress: Option<&Bound<'_, PyAny>>, planned: usize, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(CallOptions) -> T + Send,
{
    let cancel = Arc::new(AtomicBool::new(false));
    let passes = Arc::new(AtomicUsize::new(0));
    let counter = passes.clone();
    let call = CallOptions {
        progress: Some(Arc::new(move |n| {
            counter.fetch_add(n, Ordering::Relaxed);
        })),
        cancel: Some(cancel.clone()),
    };
    if let Some(p) = progress {
        p.call1((0, planned))?;
    }
    let finished = Arc::new((Mutex::new(false), Condvar::new()));
    std::thread::scope(|scope| {
        let signal = Finished(finished.clone());
        let handle = scope.spawn(move || {
            let _signal = signal;
            work(call)
        });
        let mut failure: Option<PyErr> = None;
        let mut shown = 0;
        loop {
            let done = py.detach(|| wait(&finished));
            if failure.is_none() {
                let count = passes.load(Ordering::Relaxed);
                if count != shown {
                    shown = count;
                    if let Some(p) = progress {
                        failure = p.call1((count, planned.max(count))).err();
                    }
                }
            }
            if done {
                break;
            }
            if failure.is_none() {
                failure = py.check_signals().err();
            }
            if failure.is_some() {
                cancel.store(true, Ordering::Relaxed);
            }
        }
        let result = py
            .detach(|| handle.join())
            .map_err(|_| PyRuntimeError::new_err("pairrm: internal error: the engine thread panicked"))?;
        if let Some(e) = failure {
            return Err(e);
        }
        if let Some(p) = progress {
            let count = passes.load(Ordering::Relaxed);
            p.call1((count, count))?;
        }
        Ok(result)
    })
}
