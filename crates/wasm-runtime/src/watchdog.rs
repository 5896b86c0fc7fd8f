//! The per-call time limit without signals: metered code checks a "remaining points" counter
//! at every basic block; when a call overruns its deadline, one watchdog thread (per library)
//! sets that counter to zero, so the guest traps at its next check.
//!
//! Arming a call is cheap (an uncontended lock and a clock read; no allocation, no wake-up):
//! each metered instance registers one [`Slot`] for its life, and the watchdog polls the
//! registered slots every [`TICK`]. It rewrites the counter on every tick until the call
//! ends, because the guest's own decrement may race with a single write. After
//! [`IDLE_TICKS`] ticks without an armed call it parks (an idle Fluent Bit gets no wake-ups
//! from us); the next call to arm wakes it, once.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Granularity of the time limit.
pub(crate) const TICK: Duration = Duration::from_millis(5);
/// Writes per tick to an overrunning guest's counter (about 0.1 ms).
const BURST: u32 = 10_000;
/// Ticks without a call in progress before the watchdog parks (0.1 s).
pub(crate) const IDLE_TICKS: u32 = 20;

/// Set by the watchdog (holding the registry lock) before it parks, cleared by the call to
/// arm that wakes it.
static PARKED: AtomicBool = AtomicBool::new(false);

/// Whether the watchdog is parked (for tests).
pub fn parked() -> bool {
    PARKED.load(Ordering::Relaxed)
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
        let w: &'static Watchdog = Box::leak(Box::new(Watchdog { slots: Mutex::default(), wake: Condvar::new() }));
        std::thread::Builder::new().name("flb-wasmer-watchdog".into()).spawn(move || run(w)).expect("watchdog thread");
        w
    })
}

fn run(w: &'static Watchdog) {
    let mut slots = w.slots.lock().unwrap();
    let mut idle = 0;
    loop {
        if slots.is_empty() || PARKED.load(Ordering::Relaxed) {
            slots = w.wake.wait(slots).unwrap();
            continue;
        }
        if idle >= IDLE_TICKS {
            // Park unless a call was armed meanwhile. A call arming after its slot is
            // checked here sees PARKED (both sides hold the slot's lock) and wakes us.
            PARKED.store(true, Ordering::Relaxed);
            if slots.iter().any(|s| s.state.lock().unwrap().deadline.is_some()) {
                PARKED.store(false, Ordering::Relaxed);
            }
            idle = 0;
            continue;
        }
        let now = Instant::now();
        idle += 1;
        for slot in slots.iter() {
            let st = slot.state.lock().unwrap();
            if st.deadline.is_some() {
                idle = 0;
            }
            if st.deadline.is_some_and(|d| d <= now) {
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
            }
        }
        drop(slots);
        std::thread::sleep(TICK);
        slots = w.slots.lock().unwrap();
    }
}

/// One instance's place in the watchdog; dropping it unregisters (before the counter's
/// storage goes away: keep it ahead of the store in the owning struct).
pub(crate) struct Registration(Arc<Slot>);

pub(crate) fn register(counter: *mut i64) -> Registration {
    let slot = Arc::new(Slot { state: Mutex::new(SlotState { deadline: None, counter: counter as usize }), fired: AtomicBool::new(false) });
    let w = watchdog();
    w.slots.lock().unwrap().push(slot.clone());
    w.wake.notify_one();
    Registration(slot)
}

impl Registration {
    /// Arms the limit for one call; the returned guard disarms it.
    pub(crate) fn arm(&self, timeout: Duration) -> Armed<'_> {
        self.0.fired.store(false, Ordering::Relaxed);
        let parked = {
            let mut st = self.0.state.lock().unwrap();
            st.deadline = Some(Instant::now() + timeout);
            PARKED.load(Ordering::Relaxed)
        };
        if parked {
            let w = watchdog();
            let _registry = w.slots.lock().unwrap(); // the watchdog is waiting, not deciding
            PARKED.store(false, Ordering::Relaxed);
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
