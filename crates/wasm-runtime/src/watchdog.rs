//! The per-call time limit without signals: metered code checks a "remaining points" counter
//! at every basic block; when a call overruns its deadline, one watchdog thread (per library)
//! sets that counter to zero, so the guest traps at its next check.
//!
//! Arming a call is cheap (an uncontended lock and a clock read; no allocation, and no
//! wake-up unless its deadline is nearer than the watchdog's next look): each metered
//! instance registers one [`Slot`] for its life. The watchdog sleeps until the earliest
//! deadline it knows of, or for [`IDLE_LOOK`] when no call runs, so calls with limits of
//! [`IDLE_LOOK`] or more (the plugins' defaults) never wake it, and it wakes about once a
//! second however busy or idle Fluent Bit is. Once a call has overrun, its counter is
//! rewritten every [`TICK`] until the call ends, because the guest's own decrement may race
//! with a single write.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often an overrunning guest's counter is rewritten.
const TICK: Duration = Duration::from_millis(5);
/// Writes per tick to an overrunning guest's counter (about 0.1 ms).
const BURST: u32 = 10_000;

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
    /// Storage of the metering counter (an i64 inside the instance's VM context).
    counter: usize,
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
            if deadline > now {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
                continue;
            }
            slot.fired.store(true, Ordering::Release);
            // SAFETY: a slot is unregistered (under the registry lock, held here) before
            // its instance's store is dropped, and the deadline is cleared (under the slot
            // lock, held here) before the next call resets the counter.
            let counter = unsafe { AtomicI64::from_ptr(st.counter as *mut i64) };
            // The guest loads, checks, decrements and stores the counter at every basic
            // block; a tight loop spends most of its time between that load and store, and
            // a zero written there is overwritten. A burst of writes lands one in the gap.
            for _ in 0..BURST {
                counter.store(0, Ordering::Relaxed);
                std::hint::spin_loop();
            }
            // Again after a tick, until the call ends.
            next = Some(next.map_or(now + TICK, |n| n.min(now + TICK)));
        }
        let next = next.unwrap_or(now + IDLE_LOOK);
        NEXT_LOOK.store(ns(next), Ordering::Relaxed);
        slots = w.wake.wait_timeout(slots, next.saturating_duration_since(Instant::now())).unwrap().0;
    }
}

/// One instance's place in the watchdog; dropping it unregisters (before the counter's
/// storage goes away: keep it ahead of the store in the owning struct).
pub(crate) struct Registration(Arc<Slot>);

pub(crate) fn register(counter: *mut i64) -> Registration {
    let slot = Arc::new(Slot { state: Mutex::new(SlotState { deadline: None, counter: counter as usize }), fired: AtomicBool::new(false) });
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
        self.0.state.lock().unwrap().deadline = None;
    }
}
