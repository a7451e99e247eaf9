//! Ctrl-C for long Rust calls: the one way every binding runs its kernel.
//!
//! The kernel runs on a worker of its thread pool (with the GIL released) while the calling
//! thread waits for it and, every [`POLL`], takes the GIL and runs `check_signals` (Python runs
//! signal handlers only on the main thread, between bytecodes, never during a long native call).
//! When a handler raises (`KeyboardInterrupt` for Ctrl-C), the call's [`Stop`] flag is set; every
//! kernel checks it between chunks of work and returns [`Error::Interrupted`] within a few
//! milliseconds, and the binding raises the handler's exception. The kernel's outputs are then
//! partly written, each row whole: an interrupted fit keeps the updates made so far (see the
//! docstring of `tacitrec.base`).

use crate::error::{Error, Result};
use crate::parallel::{self, Stop};
use pyo3::prelude::*;
use std::sync::mpsc;
use std::time::Duration;

/// How often the waiting thread checks for a pending signal.
const POLL: Duration = Duration::from_millis(20);

/// Calls estimated below this many elementary steps (a few milliseconds of scoring, well under
/// 0.1 s of anything else: they end before Ctrl-C would need them to) run directly, without
/// the handoff to a worker and back (two thread wake-ups: tens of microseconds, far more on a
/// loaded machine), which a single-user `recommend` would notice.
pub const SHORT: usize = 1 << 26;

/// Work estimate of a call that always runs with interruption (fits, metrics).
pub const LONG: usize = usize::MAX;

/// Runs `kernel` in the pool of `num_threads` threads with the GIL released, stopping it early
/// (and raising the pending exception) when a Python signal handler raises meanwhile. `work`
/// estimates the call's elementary steps (e.g. queries x items x factors); below [`SHORT`] the
/// kernel runs directly on this thread's call into the pool.
pub fn run<R: Send>(
    py: Python<'_>,
    num_threads: usize,
    work: usize,
    kernel: impl FnOnce() -> Result<R> + Send,
) -> PyResult<R> {
    if work < SHORT {
        return Ok(py.detach(kernel)?);
    }
    let pool = parallel::pool(num_threads)?;
    let stop = Stop::new();
    let (result, raised) = py.detach(|| {
        let mut raised: Option<PyErr> = None;
        let result = pool.in_place_scope(|scope| {
            let (tx, rx) = mpsc::sync_channel(1);
            let stop = &stop;
            scope.spawn(move |_| {
                // a send fails only once the receiver is gone, which it is not before the end
                let _ = tx.send(parallel::with_stop(stop, kernel));
            });
            loop {
                match rx.recv_timeout(POLL) {
                    Ok(result) => return Some(result),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if raised.is_none() {
                            if let Err(e) = Python::attach(|py| py.check_signals()) {
                                stop.set();
                                raised = Some(e);
                            }
                        }
                    }
                    // the kernel panicked: the scope resumes the panic when it ends
                    Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                }
            }
        });
        (result, raised)
    });
    // a handler's exception wins: the signal was consumed, so it must be raised even when the
    // kernel finished before it noticed
    if let Some(e) = raised {
        return Err(e);
    }
    match result {
        Some(r) => Ok(r?),
        None => Err(Error::Interrupted.into()),
    }
}
