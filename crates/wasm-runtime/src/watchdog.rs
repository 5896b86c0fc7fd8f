//! The per-call time limit without signals: interruptible code checks a flag at every
//! function entry and loop header (see `interrupt`); when a call overruns its deadline, one
//! watchdog thread (per library) sets that flag, so the guest traps at its next check.
//!
//! Arming a call is cheap (an uncontended lock and a clock read; no allocation, and no
//! wake-up unless its deadline is nearer than the watchdog's next look): each interruptible
//! instance registers one [`Slot`] for its life. The watchdog sleeps until the earliest
//! deadline it knows of, or for [`IDLE_LOOK`] when no call runs, so calls with limits of
//! [`IDLE_LOOK`] or more (the plugins' defaults) never wake it, and it wakes about once a
//! second however busy or idle Fluent Bit is. Only the watchdog sets the flag and only the
//! call's guard clears it, so one write stops the guest.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the watchdog sleeps when no call is in progress.
const IDLE_LOOK: Duration = Duration::from_secs(1);

/// When the watchdog looks next, in ns since [`epoch`]; [`DECIDING`] while it scans the
/// slots (set before, so a call armed meanwhile wakes it).
static NEXT_LOOK: AtomicU64 = AtomicU64::new(DECIDING);
const DECIDING: u64 = 0;

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn ns(t: Instant) -> u64 {
    (t.saturating_duration_since(epoch()).as_nanos() as u64).max(1)
}

pub(crate) struct Slot {
    state: Mutex<SlotState>,
    fired: AtomicBool,
}

struct SlotState {
    deadline: Option<Instant>,
    /// Storage of the interrupt flag (an i64 inside the instance's VM context).
    flag: usize,
}

struct Watchdog {
    slots: Mutex<Vec<Arc<Slot>>>,
    wake: Condvar,
}

fn watchdog() -> &'static Watchdog {
    static W: OnceLock<&'static Watchdog> = OnceLock::new();
    W.get_or_init(|| {
        epoch();
        let w: &'static Watchdog = Box::leak(Box::new(Watchdog { slots: Mutex::default(), wake: Condvar::new() }));
        std::thread::Builder::new().name("flb-wasmer-watchdog".into()).spawn(move || run(w)).expect("watchdog thread");
        w
    })
}

fn run(w: &'static Watchdog) {
    let mut slots = w.slots.lock().unwrap();
    loop {
        // A call armed after its slot is scanned below sees DECIDING or the time stored
        // after the scan (both sides hold the slot's lock), and wakes us if it is earlier.
        NEXT_LOOK.store(DECIDING, Ordering::Relaxed);
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for slot in slots.iter() {
            let st = slot.state.lock().unwrap();
            let Some(deadline) = st.deadline else { continue };
            if slot.fired.load(Ordering::Relaxed) {
                continue; // the flag stays set until the call's guard clears it
            }
            if deadline > now {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
                continue;
            }
            slot.fired.store(true, Ordering::Release);
            // SAFETY: a slot is unregistered (under the registry lock, held here) before
            // its instance's store is dropped, and the deadline is cleared (under the slot
            // lock, held here) when the call ends.
            unsafe { AtomicI64::from_ptr(st.flag as *mut i64) }.store(1, Ordering::Relaxed);
        }
        let next = next.unwrap_or(now + IDLE_LOOK);
        NEXT_LOOK.store(ns(next), Ordering::Relaxed);
        slots = w.wake.wait_timeout(slots, next.saturating_duration_since(Instant::now())).unwrap().0;
    }
}

/// One instance's place in the watchdog; dropping it unregisters (before the flag's
/// storage goes away: keep it ahead of the store in the owning struct).
pub(crate) struct Registration(Arc<Slot>);

pub(crate) fn register(flag: *mut i64) -> Registration {
    let slot = Arc::new(Slot { state: Mutex::new(SlotState { deadline: None, flag: flag as usize }), fired: AtomicBool::new(false) });
    watchdog().slots.lock().unwrap().push(slot.clone());
    Registration(slot)
}

impl Registration {
    /// Arms the limit for one call; the returned guard disarms it.
    pub(crate) fn arm(&self, timeout: Duration) -> Armed<'_> {
        self.0.fired.store(false, Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        let wake = {
            let mut st = self.0.state.lock().unwrap();
            st.deadline = Some(deadline);
            let next = NEXT_LOOK.load(Ordering::Relaxed);
            next == DECIDING || ns(deadline) < next
        };
        if wake {
            let w = watchdog();
            let _registry = w.slots.lock().unwrap(); // held by the watchdog until it waits
            w.wake.notify_one();
        }
        Armed(&self.0)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        watchdog().slots.lock().unwrap().retain(|s| !Arc::ptr_eq(s, &self.0));
    }
}

pub(crate) struct Armed<'a>(&'a Slot);

impl Armed<'_> {
    /// Whether the watchdog interrupted this call.
    pub(crate) fn fired(&self) -> bool {
        self.0.fired.load(Ordering::Acquire)
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap();
        st.deadline = None;
        if self.0.fired.load(Ordering::Acquire) {
            // SAFETY: as in `run`; the guest is not running, and the watchdog cannot set
            // the flag again without a deadline.
            unsafe { AtomicI64::from_ptr(st.flag as *mut i64) }.store(0, Ordering::Relaxed);
        }
    }
}
