//! Example on the guest SDK's extended ABI: takes "copies=N" (1..=9) as the instance's
//! config, logs it at warn, and emits each whole event N times (timestamp and metadata kept).
use flb_wasm_guest::{events, init, log, Events, Level};
use std::sync::atomic::{AtomicUsize, Ordering};

static COPIES: AtomicUsize = AtomicUsize::new(1);

fn configure(cfg: &str) -> Result<(), String> {
    let n = cfg.strip_prefix("copies=").and_then(|v| v.trim().parse::<usize>().ok()).filter(|n| (1..=9).contains(n));
    match n {
        Some(n) => {
            COPIES.store(n, Ordering::Relaxed);
            log(Level::Warn, &format!("rust guest: {} copies of every event", n));
            Ok(())
        }
        None => Err(format!("config must be copies=1..9, not '{}'", cfg)),
    }
}

fn split(event: &[u8]) -> Events {
    match COPIES.load(Ordering::Relaxed) {
        1 => Events::Keep,
        n => Events::Replace(event.repeat(n)),
    }
}

init!(configure);
events!(rust_split, split);
