//! Memory shared with the host.
//!
//! Fluent Bit's official builds link jemalloc with an 8-byte quantum and export `malloc` from
//! the executable, so every `malloc` in the process (ours included) is jemalloc's. Two rules
//! follow: buffers the host frees must come from plain `malloc`, and Rust allocations that
//! need more than 8-byte alignment must not rely on `malloc`'s alignment.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr;

/// Global allocator: `malloc` for alignments up to 8 (what jemalloc guarantees for every
/// size class), `posix_memalign` above that.
pub struct HostAllocator;

const MALLOC_ALIGN: usize = 8;

unsafe impl GlobalAlloc for HostAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: size > 0 is guaranteed by the GlobalAlloc contract.
            unsafe { libc::malloc(layout.size()) as *mut u8 }
        } else {
            aligned_alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            unsafe { libc::calloc(1, layout.size()) as *mut u8 }
        } else {
            let p = aligned_alloc(layout);
            if !p.is_null() {
                unsafe { ptr::write_bytes(p, 0, layout.size()) };
            }
            p
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { libc::free(ptr as *mut libc::c_void) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            return unsafe { libc::realloc(ptr as *mut libc::c_void, new_size) as *mut u8 };
        }
        // realloc() would drop the alignment: allocate, copy, free.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = aligned_alloc(new_layout);
        if !new.is_null() {
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                libc::free(ptr as *mut libc::c_void);
            }
        }
        new
    }
}

fn aligned_alloc(layout: Layout) -> *mut u8 {
    let mut out: *mut libc::c_void = ptr::null_mut();
    let align = layout.align().max(std::mem::size_of::<usize>());
    // SAFETY: align is a power of two and a multiple of sizeof(void*).
    let rc = unsafe { libc::posix_memalign(&mut out, align, layout.size()) };
    if rc == 0 { out as *mut u8 } else { ptr::null_mut() }
}

/// Copies `bytes` into a `malloc` block the host takes ownership of (and frees with `free`).
/// Returns null for an empty slice or when allocation fails.
pub(crate) fn host_owned_copy(bytes: &[u8]) -> *mut libc::c_void {
    if bytes.is_empty() {
        return ptr::null_mut();
    }
    // SAFETY: malloc of a non-zero size; the copy stays within both buffers.
    unsafe {
        let p = libc::malloc(bytes.len());
        if !p.is_null() {
            ptr::copy_nonoverlapping(bytes.as_ptr(), p as *mut u8, bytes.len());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_aligned_layouts_are_aligned() {
        for size in [8usize, 24, 40, 52, 100, 4096] {
            for align in [16usize, 32, 64, 4096] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let p = unsafe { HostAllocator.alloc(layout) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "size {size} align {align}");
                let p2 = unsafe { HostAllocator.realloc(p, layout, size * 3) };
                assert_eq!(p2 as usize % align, 0);
                unsafe { HostAllocator.dealloc(p2, Layout::from_size_align(size * 3, align).unwrap()) };
            }
        }
    }

    #[test]
    fn host_copy_round_trips() {
        let p = host_owned_copy(b"abc");
        assert_eq!(unsafe { std::slice::from_raw_parts(p as *const u8, 3) }, b"abc");
        unsafe { libc::free(p) };
        assert!(host_owned_copy(b"").is_null());
    }
}
