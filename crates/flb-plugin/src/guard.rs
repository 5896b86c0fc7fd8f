//! Every entry from C runs inside [`ffi_guard`]: a Rust panic becomes an error return and a
//! log line, never an unwind into Fluent Bit's C frames (which is undefined behaviour).

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`; on panic logs `what` with the panic message through `log_error` and returns
/// `on_panic`.
pub fn ffi_guard<R>(what: &str, on_panic: R, log_error: impl FnOnce(&str), f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            // The logger itself must not unwind either.
            let _ = catch_unwind(AssertUnwindSafe(|| log_error(&format!("internal error in {what}: {msg}"))));
            on_panic
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_becomes_value() {
        let mut logged = String::new();
        let r = ffi_guard("cb", -1, |m| logged = m.to_string(), || -> i32 { panic!("boom") });
        assert_eq!(r, -1);
        assert!(logged.contains("boom") && logged.contains("cb"), "{logged}");
    }

    #[test]
    fn value_passes_through() {
        assert_eq!(ffi_guard("cb", -1, |_| unreachable!(), || 7), 7);
    }
}
