//! Panics of a GPU backend as errors. burn-cuda and burn-wgpu report what their device cannot do
//! (no driver, a shader the adapter cannot compile, a type it lacks, out of device memory) by
//! panicking; [`quietly`] runs work on such a backend, keeps the panic's message instead of
//! printing it, and returns it, so a binary prints one line naming `--device` instead of a
//! backtrace from inside a dependency.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether this thread runs guarded work (its panics are kept, not printed).
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The first line of the last panic of guarded work on this thread.
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs, once per process, a panic hook that keeps the message of guarded threads and leaves
/// every other thread's panic to the hook that was there before.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                let payload = info.payload();
                let text = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("the backend stopped without a message");
                MESSAGE.with(|m| *m.borrow_mut() = Some(one_line(text)));
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
        .unwrap_or("the backend stopped without a message")
        .to_string()
}

/// Runs `f`; a panic inside it comes back as its message's first line.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let outer = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.map_err(|_| {
        MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "the backend stopped without a message".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_first_line_and_nesting_keeps_the_guard() {
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
    }
}
