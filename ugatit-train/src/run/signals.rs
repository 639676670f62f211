//! SIGINT and SIGTERM (preemptible machines send SIGTERM) finish the current step, write a
//! checkpoint and end the run; a second signal ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Makes SIGINT and SIGTERM finish the current step, checkpoint and exit.
pub fn stop_on_signals() {
    // A second installation (several runs in one process) keeps the first handler. A second
    // signal ends the process at once, for a run stuck in a step or an upload.
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
}

/// Whether a signal asked the run to stop.
pub(super) fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
