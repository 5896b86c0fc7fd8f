//! Logging into Fluent Bit's log, per instance, like the host's `flb_plg_*` macros:
//! `[filter:<plugin>:<instance>] message`, gated by the instance's `log_level`.
//!
//! Fluent Bit's logger only works on its own threads (they carry a worker context; elsewhere
//! `flb_log_print` writes straight to stderr, bypassing `log_file`). Lines logged on threads
//! we create are queued and written by the next callback that runs on a host thread.
//!
//! The `log` crate is routed here too: inside a callback, `log::warn!(..)` goes to the
//! instance being called; on our own threads, to the logger installed with
//! [`Logger::install_on_this_thread`].

use crate::host;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::CString;
use std::fmt::Display;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }
}

impl From<::log::Level> for Level {
    fn from(l: ::log::Level) -> Level {
        match l {
            ::log::Level::Error => Level::Error,
            ::log::Level::Warn => Level::Warn,
            ::log::Level::Info => Level::Info,
            ::log::Level::Debug => Level::Debug,
            ::log::Level::Trace => Level::Trace,
        }
    }
}

/// A cheap, clonable, thread-safe handle that logs as one plugin instance.
#[derive(Clone)]
pub struct Logger(Arc<Inner>);

struct Inner {
    prefix: String,
    level: AtomicI32,
}

impl Logger {
    /// `kind` is `input` or `filter`; `level` is the instance's `log_level` (0..5).
    pub fn new(kind: &str, plugin: &str, instance: &str, level: i32) -> Logger {
        Logger(Arc::new(Inner { prefix: format!("[{kind}:{plugin}:{instance}] "), level: AtomicI32::new(level) }))
    }

    /// The library-wide logger used before an instance exists.
    pub fn library(name: &str) -> Logger {
        Logger::new("plugin", name, "-", Level::Info as i32)
    }

    pub fn enabled(&self, level: Level) -> bool {
        (level as i32) <= self.0.level.load(Ordering::Relaxed)
    }

    pub fn log(&self, level: Level, msg: impl Display) {
        if self.enabled(level) {
            emit(level, format!("{}{}", self.0.prefix, msg));
        }
    }

    pub fn error(&self, msg: impl Display) {
        self.log(Level::Error, msg)
    }
    pub fn warn(&self, msg: impl Display) {
        self.log(Level::Warn, msg)
    }
    pub fn info(&self, msg: impl Display) {
        self.log(Level::Info, msg)
    }
    pub fn debug(&self, msg: impl Display) {
        self.log(Level::Debug, msg)
    }

    /// Runs `f` with this logger as the target of the `log` crate on this thread.
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        install_log_router();
        let previous = CURRENT.with(|c| c.replace(Some(self.clone())));
        struct Restore(Option<Logger>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let prev = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = prev);
            }
        }
        let _restore = Restore(previous);
        f()
    }

    /// Makes this logger the `log` crate's target on the calling thread (for threads the
    /// plugin creates).
    pub fn install_on_this_thread(&self) {
        install_log_router();
        CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Logger>> = const { RefCell::new(None) };
}

const DEFERRED_MAX: usize = 4096;
static DEFERRED: Mutex<VecDeque<(Level, String)>> = Mutex::new(VecDeque::new());
static DEFERRED_DROPPED: AtomicU64 = AtomicU64::new(0);

fn emit(level: Level, line: String) {
    if host::on_host_thread() {
        drain_deferred();
        print(level, &line);
    } else if host::api().log_print.is_some() && host::api().worker_get.is_some() {
        let mut q = DEFERRED.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() < DEFERRED_MAX {
            q.push_back((level, line));
        } else {
            DEFERRED_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    } else {
        // Not inside Fluent Bit (unit tests, the CLI): stderr.
        eprintln!("{line}");
    }
}

/// Writes lines queued by our own threads. Called by the framework on host threads.
pub fn drain_deferred() {
    let lines: Vec<_> = {
        let mut q = DEFERRED.lock().unwrap_or_else(|e| e.into_inner());
        if q.is_empty() {
            return;
        }
        q.drain(..).collect()
    };
    for (level, line) in lines {
        print(level, &line);
    }
    let dropped = DEFERRED_DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        print(Level::Warn, &format!("[flb-wasmer] {dropped} log lines from plugin threads were dropped (queue full)"));
    }
}

fn print(level: Level, line: &str) {
    let Some(log_print) = host::api().log_print else {
        eprintln!("{line}");
        return;
    };
    let c = CString::new(line.replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: flb_log_print is variadic printf-style; "%s" with one valid C string.
    unsafe { log_print(level as i32, std::ptr::null(), 0, c"%s".as_ptr(), c.as_ptr()) };
}

struct Router;

impl ::log::Log for Router {
    fn enabled(&self, m: &::log::Metadata) -> bool {
        CURRENT.with(|c| c.borrow().as_ref().is_some_and(|l| l.enabled(m.level().into())))
    }

    fn log(&self, r: &::log::Record) {
        let logger = CURRENT.with(|c| c.borrow().clone());
        match logger {
            Some(l) => l.log(r.level().into(), r.args()),
            None if r.level() <= ::log::Level::Warn => emit(r.level().into(), format!("[flb-wasmer] {}", r.args())),
            None => {}
        }
    }

    fn flush(&self) {}
}

static ROUTER: Router = Router;

fn install_log_router() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if ::log::set_logger(&ROUTER).is_ok() {
            ::log::set_max_level(::log::LevelFilter::Trace);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_gating() {
        let l = Logger::new("filter", "wasm_wasmer", "wasm_wasmer.0", Level::Warn as i32);
        assert!(l.enabled(Level::Error) && l.enabled(Level::Warn));
        assert!(!l.enabled(Level::Info));
        let off = Logger::new("filter", "x", "x.0", 0);
        assert!(!off.enabled(Level::Error));
    }

    #[test]
    fn parse_levels() {
        assert_eq!(Level::parse("WARN"), Some(Level::Warn));
        assert_eq!(Level::parse("nope"), None);
    }
}
