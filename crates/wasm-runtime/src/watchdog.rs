//! The per-call time limit without signals: metered code checks a "remaining points" counter
//! at every basic block; at the deadline one watchdog thread (per library) sets that counter
//! to zero, so the guest traps at its next check. It writes again every millisecond until the
//! call ends, because the guest's own decrement may race with the first write.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Entry {
    id: u64,
    deadline: Instant,
    /// Storage of the metering counter (an i64 inside the instance's VM context).
    counter: usize,
    fired: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    entries: Vec<Entry>,
}

struct Watchdog {
    state: Mutex<State>,
    wake: Condvar,
}

fn watchdog() -> &'static Watchdog {
    static W: OnceLock<&'static Watchdog> = OnceLock::new();
    W.get_or_init(|| {
        let w: &'static Watchdog = Box::leak(Box::new(Watchdog { state: Mutex::default(), wake: Condvar::new() }));
        std::thread::Builder::new().name("flb-wasmer-watchdog".into()).spawn(move || run(w)).expect("watchdog thread");
        w
    })
}

fn run(w: &'static Watchdog) {
    let mut st = w.state.lock().unwrap();
    loop {
        let now = Instant::now();
        let mut wait = Duration::from_secs(3600);
        for e in &st.entries {
            if e.deadline <= now {
                e.fired.store(true, Ordering::Release);
                // SAFETY: the entry is removed (under this lock) before its instance can be
                // dropped, so the counter storage is alive while we hold the lock.
                unsafe { AtomicI64::from_ptr(e.counter as *mut i64) }.store(0, Ordering::Relaxed);
                wait = wait.min(Duration::from_millis(1));
            } else {
                wait = wait.min(e.deadline - now);
            }
        }
        st = w.wake.wait_timeout(st, wait).unwrap().0;
    }
}

/// A registered deadline; dropping it disarms the watchdog for this call.
pub(crate) struct Armed {
    id: u64,
    pub fired: Arc<AtomicBool>,
}

/// Arms the watchdog: at `deadline` the counter at `counter` is forced to zero.
pub(crate) fn arm(counter: *mut i64, timeout: Duration) -> Armed {
    let w = watchdog();
    let fired = Arc::new(AtomicBool::new(false));
    let mut st = w.state.lock().unwrap();
    st.next_id += 1;
    let id = st.next_id;
    st.entries.push(Entry { id, deadline: Instant::now() + timeout, counter: counter as usize, fired: fired.clone() });
    drop(st);
    w.wake.notify_one();
    Armed { id, fired }
}

impl Drop for Armed {
    fn drop(&mut self) {
        let mut st = watchdog().state.lock().unwrap();
        st.entries.retain(|e| e.id != self.id);
    }
}
