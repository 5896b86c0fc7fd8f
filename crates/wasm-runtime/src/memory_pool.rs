//! Linear memories whose address-space reservations are reused across instances.
//!
//! A static-style wasm32 memory reserves ~8 GiB of address space (4 GiB plus the offset
//! guard that lets compiled code skip bounds checks). wasmer maps and unmaps that for every
//! instance; for the exec input, which instantiates a fresh module on every run, the `mmap`,
//! the `munmap` (with its TLB shoot-down on every core the process ran on) and the page
//! faults on fresh pages were a quarter of a trivial run. Here a dropped memory is zeroed
//! and kept for the next instance instead. Accesses past the current size still fault: the
//! pages beyond it are `PROT_NONE`, exactly as in wasmer's own memories.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::Mutex;
use wasmer::sys::vm::{LinearMemory, MemoryError, MemoryStyle, VMMemoryDefinition};
use wasmer::{MemoryType, Pages};

const PAGE: usize = wasmer::WASM_PAGE_SIZE;
/// The kernel's page, the unit of `mincore` and `madvise`.
const OS_PAGE: usize = 4096;
/// Free reservations kept for reuse (each is address space, not memory: zeroed pages are
/// released past `ZERO_IN_PLACE_MAX`).
const POOL_MAX: usize = 4;
/// Memories up to this size have their touched pages zeroed in place (they stay resident:
/// no faults on reuse, no TLB shoot-down); larger ones go back to the kernel with
/// `MADV_DONTNEED`.
const ZERO_IN_PLACE_MAX: usize = 4 << 20;

/// One reservation: `RESERVED` bytes of address space, the first `accessible` read-write.
struct Region {
    base: NonNull<u8>,
    accessible: usize,
}

// SAFETY: a Region is an exclusively owned mapping; moving it between threads is fine.
unsafe impl Send for Region {}

const RESERVED: usize =
    (MemoryStyle::static_bound().0 as usize) * PAGE + MemoryStyle::static_offset_guard_size() as usize;

static FREE: Mutex<Vec<Region>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while [`rewindable`] runs: how many pooled memories were made that rewind on reset.
    static REWINDABLE_MADE: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Runs `f` (an instantiation); pooled memories it makes rewind on `reset` (zeroed, back at
/// their initial size, keeping their reservation) instead of giving the reservation back.
/// Also returns how many such memories it made.
pub(crate) fn rewindable<R>(f: impl FnOnce() -> R) -> (R, u32) {
    let prev = REWINDABLE_MADE.with(|c| c.replace(Some(0)));
    let r = f();
    let made = REWINDABLE_MADE.with(|c| c.replace(prev)).unwrap_or(0);
    (r, made)
}

fn os_error(what: &str) -> MemoryError {
    MemoryError::Region(format!("{what}: {}", std::io::Error::last_os_error()))
}

impl Region {
    /// A reservation with exactly `len` bytes accessible and zeroed.
    fn take(len: usize) -> Result<Region, MemoryError> {
        let reused = FREE.lock().unwrap().pop();
        let mut r = match reused {
            Some(r) => r,
            None => {
                // SAFETY: a fresh private anonymous reservation, nothing else refers to it.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        RESERVED,
                        libc::PROT_NONE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                        -1,
                        0,
                    )
                };
                if p == libc::MAP_FAILED {
                    return Err(os_error("cannot reserve linear memory"));
                }
                Region { base: NonNull::new(p as *mut u8).unwrap(), accessible: 0 }
            }
        };
        r.set_accessible(len)?;
        Ok(r)
    }

    /// Makes exactly `[0, len)` accessible; what was accessible already is zero.
    fn set_accessible(&mut self, len: usize) -> Result<(), MemoryError> {
        use std::cmp::Ordering::*;
        let (start, n, prot) = match len.cmp(&self.accessible) {
            Equal => return Ok(()),
            Greater => (self.accessible, len - self.accessible, libc::PROT_READ | libc::PROT_WRITE),
            Less => (len, self.accessible - len, libc::PROT_NONE),
        };
        // SAFETY: [start, start + n) lies inside our reservation.
        if unsafe { libc::mprotect(self.base.as_ptr().add(start) as *mut _, n, prot) } != 0 {
            return Err(os_error("cannot change linear memory protection"));
        }
        self.accessible = len;
        Ok(())
    }

    /// Zeroes `[0, accessible)`; false if that failed.
    fn zero(&mut self) -> bool {
        let p = self.base.as_ptr();
        if self.accessible <= ZERO_IN_PLACE_MAX {
            // SAFETY: [0, accessible) is mapped read-write and no guest code runs now.
            unsafe { zero_resident_pages(p, self.accessible) };
            true
        } else {
            // SAFETY: as above; private anonymous pages read back as zero after this.
            unsafe { libc::madvise(p as *mut _, self.accessible, libc::MADV_DONTNEED) == 0 }
        }
    }

    /// Zeroes what the instance could touch and returns the reservation to the pool.
    fn give_back(mut self) {
        let p = self.base.as_ptr();
        let zeroed = self.zero();
        let mut free = FREE.lock().unwrap();
        if zeroed && free.len() < POOL_MAX {
            free.push(self);
        } else {
            drop(free);
            // SAFETY: unmapping our own reservation, which nothing refers to any more.
            unsafe { libc::munmap(p as *mut _, RESERVED) };
        }
    }
}

/// The 4 KiB pages of `[p, p + len)` that hold anything but zeros, as (offset, bytes); only
/// resident pages are read (reading the others would map them).
///
/// # Safety
/// The range must be mapped readable and not written by anyone during the call.
pub(crate) unsafe fn nonzero_pages(p: *const u8, len: usize) -> Vec<(usize, Box<[u8]>)> {
    let pages = len / OS_PAGE;
    let mut resident = vec![0u8; pages];
    // SAFETY: `resident` has a byte for each page of the (page-aligned) range.
    let known = unsafe { libc::mincore(p as *mut _, len, resident.as_mut_ptr()) } == 0;
    (0..pages)
        .filter(|&i| !known || resident[i] & 1 == 1)
        .filter_map(|i| {
            // SAFETY: a page of the caller's range.
            let page = unsafe { std::slice::from_raw_parts(p.add(i * OS_PAGE), OS_PAGE) };
            page.iter().any(|&b| b != 0).then(|| (i * OS_PAGE, Box::from(page)))
        })
        .collect()
}

/// Zeroes `[p, p + len)` touching only what the instance touched: resident pages are
/// cleared in place (a small program touches a few pages of its memory), the rest is
/// dropped with `MADV_DONTNEED`, which costs nothing where no page was ever mapped and
/// discards any page that went to swap (`mincore` counts those as not resident).
///
/// # Safety
/// The range must be mapped read-write, private and anonymous, and used by nobody else.
unsafe fn zero_resident_pages(p: *mut u8, len: usize) {
    let mut resident = [0u8; ZERO_IN_PLACE_MAX / OS_PAGE];
    let pages = len / OS_PAGE;
    // SAFETY: `resident` has a byte for each page of the (page-aligned) range.
    if unsafe { libc::mincore(p as *mut _, len, resident.as_mut_ptr()) } != 0 {
        // SAFETY: the caller's guarantee.
        return unsafe { std::ptr::write_bytes(p, 0, len) };
    }
    let mut i = 0;
    while i < pages {
        let is_resident = resident[i] & 1;
        let run = resident[i..pages].iter().take_while(|&&r| r & 1 == is_resident).count();
        // SAFETY: [at, at + n) is a sub-range of the caller's range.
        unsafe {
            let (at, n) = (p.add(i * OS_PAGE), run * OS_PAGE);
            if is_resident == 1 || libc::madvise(at as *mut _, n, libc::MADV_DONTNEED) != 0 {
                std::ptr::write_bytes(at, 0, n);
            }
        }
        i += run;
    }
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Region({:p}, {} bytes accessible)", self.base, self.accessible)
    }
}

/// A static-style, unshared wasm32 memory in a pooled reservation.
#[derive(Debug)]
pub(crate) struct PooledMemory {
    /// `None` once given back (dropped, or reset when not `rewinds`).
    region: Option<Region>,
    /// `reset` zeroes the memory and puts it back at its initial size (the instance runs
    /// again from a snapshot) instead of giving the reservation back.
    rewinds: bool,
    ty: MemoryType,
    /// The definition compiled code reads (base, current length); it lives in the instance.
    definition: NonNull<VMMemoryDefinition>,
}

// SAFETY: the definition pointer targets the owning instance's VMContext, which moves
// between threads with the store, as wasmer's own memories do.
unsafe impl Send for PooledMemory {}
unsafe impl Sync for PooledMemory {}

impl PooledMemory {
    /// Whether `ty` and `style` are what this pool serves (everything else goes to wasmer).
    pub(crate) fn serves(ty: &MemoryType, style: &MemoryStyle) -> bool {
        matches!(style, MemoryStyle::Static) && !ty.shared
    }

    /// # Safety
    /// `definition` must point at the instance's memory definition and outlive the memory.
    pub(crate) unsafe fn new(ty: &MemoryType, definition: NonNull<VMMemoryDefinition>) -> Result<PooledMemory, MemoryError> {
        if ty.minimum > MemoryStyle::static_bound() {
            return Err(MemoryError::MinimumMemoryTooLarge { min_requested: ty.minimum, max_allowed: MemoryStyle::static_bound() });
        }
        if let Some(max) = ty.maximum
            && max < ty.minimum
        {
            return Err(MemoryError::InvalidMemory {
                reason: format!("the maximum ({} pages) is less than the minimum ({} pages)", max.0, ty.minimum.0),
            });
        }
        let region = Region::take(ty.minimum.0 as usize * PAGE)?;
        let rewinds = REWINDABLE_MADE.with(|c| c.get().inspect(|n| c.set(Some(n + 1)))).is_some();
        let m = PooledMemory { region: Some(region), rewinds, ty: *ty, definition };
        m.publish();
        Ok(m)
    }

    /// Tells compiled code the base and the current length.
    fn publish(&self) {
        let Some(r) = &self.region else { return };
        // SAFETY: the caller of `new` guaranteed the definition is valid for our lifetime.
        unsafe {
            let d = &mut *self.definition.as_ptr();
            d.base = r.base.as_ptr();
            d.current_length = r.accessible;
        }
    }
}

impl LinearMemory for PooledMemory {
    fn ty(&self) -> MemoryType {
        MemoryType { minimum: self.size(), ..self.ty }
    }

    fn size(&self) -> Pages {
        Pages((self.region.as_ref().map_or(0, |r| r.accessible) / PAGE) as u32)
    }

    fn style(&self) -> MemoryStyle {
        MemoryStyle::Static
    }

    fn grow(&mut self, delta: Pages) -> Result<Pages, MemoryError> {
        let prev = self.size();
        if delta.0 == 0 {
            return Ok(prev);
        }
        let limit = self.ty.maximum.unwrap_or(MemoryStyle::static_bound()).min(MemoryStyle::static_bound());
        let new = prev.0.checked_add(delta.0).filter(|&n| n <= limit.0).ok_or(MemoryError::CouldNotGrow { current: prev, attempted_delta: delta })?;
        let region = self.region.as_mut().ok_or(MemoryError::CouldNotGrow { current: prev, attempted_delta: delta })?;
        region.set_accessible(new as usize * PAGE)?;
        self.publish();
        Ok(prev)
    }

    fn grow_at_least(&mut self, min_size: u64) -> Result<(), MemoryError> {
        let have = self.size().0 as u64 * PAGE as u64;
        if have < min_size {
            let pages = min_size.div_ceil(PAGE as u64) - have / PAGE as u64;
            self.grow(Pages(pages as u32))?;
        }
        Ok(())
    }

    /// A rewinding memory is zeroed and put back at its initial size; any other gives the
    /// reservation back early (the instance is finished but its store lives on) and is
    /// empty from here on.
    fn reset(&mut self) -> Result<(), MemoryError> {
        if self.rewinds
            && let Some(r) = self.region.as_mut()
        {
            if !r.zero() {
                return Err(os_error("cannot zero linear memory"));
            }
            r.set_accessible(self.ty.minimum.0 as usize * PAGE)?;
            self.publish();
            return Ok(());
        }
        if let Some(r) = self.region.take() {
            r.give_back();
        }
        // SAFETY: as in `publish`.
        unsafe {
            let d = &mut *self.definition.as_ptr();
            d.base = std::ptr::NonNull::dangling().as_ptr();
            d.current_length = 0;
        }
        Ok(())
    }

    fn vmmemory(&self) -> NonNull<VMMemoryDefinition> {
        self.definition
    }

    fn try_clone(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        Err(MemoryError::MemoryNotShared)
    }

    fn copy(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        Err(MemoryError::UnsupportedOperation { message: "copying a pooled linear memory".into() })
    }
}

impl Drop for PooledMemory {
    fn drop(&mut self) {
        if let Some(r) = self.region.take() {
            r.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_regions_come_back_zeroed_and_sized() {
        let mut def = VMMemoryDefinition { base: std::ptr::null_mut(), current_length: 0 };
        let loc = NonNull::from(&mut def);
        let ty = MemoryType::new(2, Some(4), false);
        let mut m = unsafe { PooledMemory::new(&ty, loc) }.unwrap();
        assert_eq!(m.size(), Pages(2));
        assert!(m.grow(Pages(3)).is_err(), "past the maximum");
        assert_eq!(m.grow(Pages(2)).unwrap(), Pages(2));
        let base = unsafe { loc.as_ref() }.base;
        // Some pages touched, some not: both kinds of run are cleared on the way back.
        for at in [0, 5000, 70_000, 4 * PAGE - 1] {
            unsafe { *base.add(at) = 0xab };
        }
        drop(m);
        // The pool is process-wide: whichever region comes back must be clean and exactly
        // as large as asked.
        let m = unsafe { PooledMemory::new(&MemoryType::new(4, None, false), loc) }.unwrap();
        let d = unsafe { loc.as_ref() };
        assert_eq!(d.current_length, 4 * PAGE);
        let bytes = unsafe { std::slice::from_raw_parts(d.base, 4 * PAGE) };
        assert!(bytes.iter().all(|&b| b == 0));
        drop(m);
        let m = unsafe { PooledMemory::new(&MemoryType::new(1, None, false), loc) }.unwrap();
        assert_eq!(unsafe { loc.as_ref() }.current_length, PAGE);
        drop(m);
    }
}
