//! Fluent Bit WASM filters in Rust (see README.md). Compatible with rustc 1.63.
//!
//! The built-in's per-record contract ([`filter!`]) and flb-wasmer's extended one
//! (docs/extended-abi.md): [`init!`] for per-instance configuration, [`log`] into the Fluent
//! Bit log, [`events!`] for whole events (timestamp, metadata, body in; 0..N events out)
//! and [`batch!`] for one call per run of records.

use std::cell::RefCell;

/// What to do with a record.
pub enum Action {
    /// Pass it on unchanged.
    Keep,
    /// Drop it.
    Drop,
    /// Replace the body: JSON text (event_format json) or one msgpack map (msgpack).
    Replace(Vec<u8>),
}

/// One record as the filter passes it.
pub struct Record<'a> {
    pub tag: &'a str,
    pub sec: u32,
    pub nsec: u32,
    /// The body: JSON text without the NUL (json) or a msgpack map (msgpack).
    pub body: &'a [u8],
}

impl<'a> Record<'a> {
    /// The body as JSON text (JSON mode), if it is UTF-8.
    pub fn json(&self) -> Option<&'a str> {
        std::str::from_utf8(self.body).ok()
    }
}

thread_local! {
    // One result buffer for the life of the instance: valid until the next call.
    static RESULT: RefCell<Vec<u8>> = RefCell::new(Vec::new());
}

static EMPTY: [u8; 1] = [0];

#[doc(hidden)]
pub fn __call(tag: *const u8, tag_len: i32, sec: i32, nsec: i32, rec: *const u8, len: i32, f: fn(&Record) -> Action) -> *const u8 {
    // SAFETY: the host passes valid (ptr, len) pairs in our memory for the duration of the call.
    let (tag, body) = unsafe { (std::slice::from_raw_parts(tag, tag_len.max(0) as usize), std::slice::from_raw_parts(rec, len.max(0) as usize)) };
    let record = Record { tag: std::str::from_utf8(tag).unwrap_or(""), sec: sec as u32, nsec: nsec as u32, body };
    match f(&record) {
        Action::Keep => rec,
        Action::Drop => EMPTY.as_ptr(),
        Action::Replace(bytes) => RESULT.with(|r| {
            let mut r = r.borrow_mut();
            r.clear();
            r.extend_from_slice(&bytes);
            r.push(0); // JSON results are NUL-terminated; msgpack results ignore it
            r.as_ptr()
        }),
    }
}

/// Exports `$name` with the filter ABI, calling `$f: fn(&Record) -> Action`.
#[macro_export]
macro_rules! filter {
    ($name:ident, $f:path) => {
        #[no_mangle]
        pub extern "C" fn $name(tag: *const u8, tag_len: i32, sec: i32, nsec: i32, rec: *const u8, len: i32) -> *const u8 {
            $crate::__call(tag, tag_len, sec, nsec, rec, len, $f)
        }
    };
}

/// Fluent Bit log levels for [`log`].
#[derive(Clone, Copy)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

#[link(wasm_import_module = "flb")]
extern "C" {
    #[link_name = "log"]
    fn flb_log(level: i32, msg: *const u8, len: i32);
}

/// Writes a line into the Fluent Bit log, tagged with the filter instance (flb-wasmer only).
pub fn log(level: Level, msg: &str) {
    // SAFETY: the host reads `len` bytes at `msg` during the call.
    unsafe { flb_log(level as i32, msg.as_ptr(), msg.len() as i32) }
}

/// What to do with whole events ([`events!`], [`batch!`]).
pub enum Events {
    /// Pass the input on unchanged.
    Keep,
    /// Emit nothing.
    Drop,
    /// Emit these bytes: zero or more `[[EventTime, metadata], body]` msgpack events.
    Replace(Vec<u8>),
}

#[doc(hidden)]
pub fn __events(ptr: *const u8, len: i32, f: fn(&[u8]) -> Events) -> i64 {
    // SAFETY: the host passes a valid (ptr, len) pair in our memory for the call.
    let input = unsafe { std::slice::from_raw_parts(ptr, len.max(0) as usize) };
    let pack = |p: *const u8, n: usize| ((n as i64) << 32) | (p as u32 as i64);
    match f(input) {
        Events::Keep => pack(ptr, input.len()),
        Events::Drop => 0,
        Events::Replace(bytes) => RESULT.with(|r| {
            let mut r = r.borrow_mut();
            r.clear();
            r.extend_from_slice(&bytes);
            pack(r.as_ptr(), r.len())
        }),
    }
}

/// Exports `$name` taking whole events: `$f: fn(&[u8]) -> Events` gets one msgpack event.
#[macro_export]
macro_rules! events {
    ($name:ident, $f:path) => {
        #[no_mangle]
        pub extern "C" fn $name(ptr: *const u8, len: i32) -> i64 {
            $crate::__events(ptr, len, $f)
        }
    };
}

/// Like [`events!`], but announces the batch contract (`flb_abi_version() == 2`): `$f` gets
/// a run of records (preceded by its group's start marker when inside a group) and must
/// return plain records only.
#[macro_export]
macro_rules! batch {
    ($name:ident, $f:path) => {
        #[no_mangle]
        pub extern "C" fn flb_abi_version() -> i32 {
            2
        }
        $crate::events!($name, $f);
    };
}

#[doc(hidden)]
pub fn __init(ptr: *const u8, len: i32, f: fn(&str) -> Result<(), String>) -> i32 {
    // SAFETY: as in `__events`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len.max(0) as usize) };
    let outcome = match std::str::from_utf8(bytes) {
        Ok(cfg) => f(cfg),
        Err(_) => Err("the configuration is not UTF-8".to_string()),
    };
    match outcome {
        Ok(()) => 0,
        Err(why) => {
            log(Level::Error, &why);
            1
        }
    }
}

/// Exports `flb_init`: `$f: fn(&str) -> Result<(), String>` receives the instance's
/// `config`; an `Err` is logged and refuses the configuration.
#[macro_export]
macro_rules! init {
    ($f:path) => {
        #[no_mangle]
        pub extern "C" fn flb_init(ptr: *const u8, len: i32) -> i32 {
            $crate::__init(ptr, len, $f)
        }
    };
}

/// `malloc`/`free` for the host to place records (wasm32-unknown-unknown has no libc).
#[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
mod alloc_exports {
    use std::alloc::{alloc, dealloc, Layout};
    const HEADER: usize = 8;

    #[no_mangle]
    pub extern "C" fn malloc(size: usize) -> *mut u8 {
        let layout = match Layout::from_size_align(size + HEADER, 8) {
            Ok(l) => l,
            Err(_) => return std::ptr::null_mut(),
        };
        // SAFETY: non-zero size; the size is stored in the header for free().
        unsafe {
            let p = alloc(layout);
            if p.is_null() {
                return p;
            }
            (p as *mut usize).write(size);
            p.add(HEADER)
        }
    }

    #[no_mangle]
    pub extern "C" fn free(p: *mut u8) {
        if p.is_null() {
            return;
        }
        // SAFETY: p came from malloc above, which stored the size 8 bytes before it.
        unsafe {
            let base = p.sub(HEADER);
            let size = (base as *const usize).read();
            dealloc(base, Layout::from_size_align_unchecked(size + HEADER, 8));
        }
    }
}
