//! Fluent Bit WASM filters in Rust (see README.md). Compatible with rustc 1.63.

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
