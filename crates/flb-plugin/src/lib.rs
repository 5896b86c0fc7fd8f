//! The one crate that owns the unsafe FFI between Rust plugins and an unmodified Fluent Bit.
//!
//! Plugin crates implement [`Input`] or [`Filter`] and register with [`input_plugin!`] /
//! [`filter_plugin!`]; they never see raw pointers. See `SAFETY.md` for the invariants.
//!
//! * [`host`]: the host's functions, resolved with `dlsym` at load time, and its layout
//!   generation (detected by symbol probes, confirmed per instance by a self-check).
//! * [`registration`]: the exported registration object and the config-map array.
//! * [`config`]: property schema (help text, defaults) and typed access.
//! * [`log`](mod@log): the host logger, the `log` crate routed to it, deferral from our threads.
//! * [`memory`]: the global allocator and host-owned buffers.
//! * [`guard`]: panics never unwind into C.

pub mod config;
pub mod filter;
pub mod guard;
pub mod host;
pub mod input;
pub mod log;
pub mod memory;
pub mod proxy;
pub mod registration;

pub use config::{Kind, Properties, Property};
pub use filter::{Filter, FilterAction, FilterInstance};
pub use flb_events as events;
pub use input::{Input, InputInstance};

/// Errors a plugin returns from its callbacks; the framework logs them on the instance.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error(s.to_owned())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[global_allocator]
static ALLOCATOR: memory::HostAllocator = memory::HostAllocator;

#[doc(hidden)]
pub mod __private {
    pub use crate::registration::{PluginSlot, fill_filter, fill_input};
}
