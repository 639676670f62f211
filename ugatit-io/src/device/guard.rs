//! Panics of a GPU backend as errors. burn-cuda and burn-wgpu report what their device cannot do
//! (no driver, a shader the adapter cannot compile, a type it lacks, out of device memory) by
//! panicking; [`quietly`] runs work on such a backend, keeps the panic's message instead of
//! printing it, and returns it, so a binary prints one line naming `--device` instead of a
//! backtrace from inside a dependency.
//!
//! cubecl runs each device's server on a thread of its own, so the panic that says what went
//! wrong (wgpu: "No possible adapter available for backend") is often on that thread, and the
//! guarded thread sees only the channel closing behind it. While guarded work runs, a panic
//! raised in the GPU stack's own code on another thread is kept too (not printed), and the
//! guarded work's error is that root cause.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

thread_local! {
    /// Whether this thread runs guarded work (its panics are kept, not printed).
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The first line of the last panic of guarded work on this thread.
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// What a panic without a (text) message is reported as.
const NO_MESSAGE: &str = "the backend stopped without a message";

/// Guarded sections running now, on every thread.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// The first line of the first panic in the GPU stack's code on an unguarded thread (a device
/// server's) while guarded work ran.
static BACKEND_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

/// Source folders of the crates a GPU backend runs (burn's, cubecl's, wgpu's and its shader
/// compiler's, the CUDA bindings), as they appear in a panic's location.
const GPU_STACK: [&str; 5] = ["/burn-", "/cubecl", "/wgpu", "/naga", "/cudarc"];

fn in_gpu_stack(file: &str) -> bool {
    let file = file.replace('\\', "/");
    GPU_STACK.iter().any(|c| file.contains(c))
}

fn lock_backend_message() -> std::sync::MutexGuard<'static, Option<String>> {
    BACKEND_MESSAGE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Installs, once per process, a panic hook that keeps the message of guarded threads and leaves
/// every other thread's panic to the hook that was there before.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = || {
                one_line(
                    payload
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| payload.downcast_ref::<&str>().copied())
                        .unwrap_or(NO_MESSAGE),
                )
            };
            if GUARDED.with(Cell::get) {
                MESSAGE.with(|m| *m.borrow_mut() = Some(text()));
            } else if ACTIVE.load(Ordering::SeqCst) > 0
                && info.location().is_some_and(|l| in_gpu_stack(l.file()))
            {
                lock_backend_message().get_or_insert_with(text);
            } else {
                previous(info);
            }
        }));
    });
}

/// The first non-empty line of a panic message, trimmed.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(NO_MESSAGE)
        .to_string()
}

/// Runs `f`; a panic inside it comes back as its message's first line.
/// A backend thread's panic is preferred to the guarded thread's own, which then is usually
/// only a channel closing.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    if ACTIVE.fetch_add(1, Ordering::SeqCst) == 0 {
        // Nothing guarded ran since: an older message belongs to no work of now.
        lock_backend_message().take();
    }
    let outer = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    ACTIVE.fetch_sub(1, Ordering::SeqCst);
    result.map_err(|_| {
        let own = MESSAGE.with(|m| m.borrow_mut().take());
        lock_backend_message()
            .take()
            .or(own)
            .unwrap_or_else(|| NO_MESSAGE.into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_first_line_and_a_backend_threads_panic_its_cause() {
        assert_eq!(quietly(|| 4), Ok(4));
        let e: Result<(), _> = quietly(|| panic!("\n  Types F16 not supported\nat cubek"));
        assert_eq!(e, Err("Types F16 not supported".to_string()));
        let inner = quietly(|| quietly::<()>(|| panic!("inner")));
        assert_eq!(inner, Ok(Err("inner".to_string())));
        let outer = quietly(|| {
            let _ = quietly(|| ());
            panic!("after an inner guard")
        });
        assert_eq!(outer, Err::<(), _>("after an inner guard".to_string()));

        // A device server's panic (kept by the hook when its location is in the GPU stack: the
        // slot is filled by hand here) is the error, not the closed channel the guarded thread
        // then sees. One test with the above: both use the process-wide slot.
        assert!(in_gpu_stack(
            "/root/.cargo/registry/src/index.crates.io-1/cubecl-wgpu-0.10.0/src/runtime.rs"
        ));
        assert!(in_gpu_stack(
            r"C:\cargo\registry\src\x\wgpu-core-29.0.0\src\lib.rs"
        ));
        assert!(!in_gpu_stack("ugatit-io/src/device/guard.rs"));
        let e = quietly(|| {
            lock_backend_message().get_or_insert_with(|| "No possible adapter".into());
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            drop(tx);
            rx.recv().unwrap()
        });
        assert_eq!(e, Err("No possible adapter".to_string()));
        // Taken with the error: the next failure names its own cause.
        assert_eq!(quietly(|| panic!("own")), Err::<(), _>("own".to_string()));
    }
}
