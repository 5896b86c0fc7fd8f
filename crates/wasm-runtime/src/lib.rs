//! Runs WebAssembly guests on wasmer for the flb-wasmer plugins and the `flb-wasm` CLI.
//! Knows nothing of Fluent Bit.
//!
//! * [`Runtime`]: one per loaded library; compiles each distinct module once (in memory,
//!   optionally on disk with an integrity check) and owns the private tokio runtime WASI needs.
//! * [`Limits`]: a cap on guest linear memory (enforced by our tunables) and a per-call time
//!   limit (interrupt checks compiled in plus a watchdog; no signals, so several copies of this
//!   crate can live in one process).
//! * [`Instance`]: a persistent instance (reactor or plain module) with typed calls, guest
//!   memory access and guest allocation; [`Command`]: a WASI command module run in a fresh
//!   instance each time (linear memories are pooled, so that stays cheap).
//! * [`check`]: the module checker shared by the plugins and the CLI.
//! * [`signals`]: keeps wasmer's trap handlers installed when the host re-installs its own.

mod cache;
pub mod check;
mod command;
mod engine;
mod error;
mod instance;
mod interrupt;
mod libc_compat;
mod memory_pool;
pub mod lines;
pub mod signals;
mod wasi;
mod watchdog;

pub use command::{Command, CommandOutcome, ExitStatus, run_command};
pub use engine::{Compiler, EngineOptions, LoadedModule, ModuleSource, Runtime};
pub use error::{Error, Trap, TrapKind};
pub use instance::{GuestAllocator, Instance};
pub use libc_compat::SERVED as LIBC_IMPORTS;
pub use wasi::{Preopen, WasiOptions};
pub use wasmer::{Imports, TypedFunction, Value};

use std::time::Duration;

/// Per-instance resource limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest guest linear memory, in bytes (rounded down to 64 KiB pages).
    pub memory_max: u64,
    /// Longest a single call (or a whole command run) may take; None: unbounded, and the
    /// module is compiled without interrupt checks.
    pub call_timeout: Option<Duration>,
    /// Bytes of stdout/stderr kept per run (or between two reads for instances).
    pub stdout_max: usize,
    pub stderr_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory_max: 256 << 20, call_timeout: Some(Duration::from_secs(5)), stdout_max: 16 << 20, stderr_max: 64 << 10 }
    }
}

/// Counters of one instance (or one command's runs), updated atomically.
#[derive(Debug, Default)]
pub struct Counters {
    pub calls: std::sync::atomic::AtomicU64,
    pub traps: std::sync::atomic::AtomicU64,
    pub timeouts: std::sync::atomic::AtomicU64,
}
