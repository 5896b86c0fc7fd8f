//! Keeps wasmer's trap handlers in place for the life of the process.
//!
//! wasmer turns guest faults (out-of-bounds access, stack overflow, division by zero,
//! `unreachable`) into traps with SIGSEGV/SIGILL/SIGFPE/SIGBUS handlers installed once, which
//! forward signals they do not own to the handler that was there before. Fluent Bit
//! re-installs its own SIGSEGV/SIGFPE handlers at run time (on SIGHUP, for instance); after
//! that a guest fault would reach Fluent Bit's handler, which aborts the process.
//!
//! [`ensure_armed`] checks (one `sigaction` query) that the current SIGSEGV handler still
//! leads to ours, and re-installs ours if not. Several copies of this crate can be loaded in
//! one process (each plugin library links its own wasmer): every copy exports
//! `flb_wasmer_signal_chain_next`, which tells, for its own wasmer handler, which handler it
//! forwards to. A copy re-installs itself only when walking that chain from the current
//! handler does not reach it, so copies never push each other out of the chain.
//! The plugins call it once per batch (a filter chunk, an exec run), not per record.

use std::ffi::c_int;
use std::sync::OnceLock;

const SIGNALS: [c_int; 4] = [libc::SIGSEGV, libc::SIGILL, libc::SIGFPE, libc::SIGBUS];

struct State {
    /// wasmer's sigaction for each of SIGNALS, as it installed it.
    wasmer: [libc::sigaction; 4],
    /// The SIGSEGV handler wasmer forwards to (the one installed before it).
    next: usize,
}

// SAFETY: plain data (handler addresses and flags), never mutated after init.
unsafe impl Sync for State {}
unsafe impl Send for State {}

static STATE: OnceLock<State> = OnceLock::new();

fn query(sig: c_int) -> libc::sigaction {
    // SAFETY: querying (null new action) only writes into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old);
        old
    }
}

fn state() -> &'static State {
    STATE.get_or_init(|| {
        let next = query(libc::SIGSEGV).sa_sigaction;
        wasmer::sys::vm::init_traps();
        State { wasmer: SIGNALS.map(query), next }
    })
}

/// Our wasmer SIGSEGV handler's successor, if `handler` is ours; 0 otherwise. Exported as
/// `flb_wasmer_signal_chain_next` by [`export_signal_chain!`](crate::export_signal_chain).
pub fn chain_next(handler: usize) -> usize {
    match STATE.get() {
        Some(st) if st.wasmer[0].sa_sigaction == handler => st.next,
        _ => 0,
    }
}

/// Exports `flb_wasmer_signal_chain_next` from the shared library that invokes it (once per
/// cdylib). It lives in the cdylib's own crate because the plugins link with
/// `--exclude-libs,ALL`, which hides every symbol that comes from a dependency.
#[macro_export]
macro_rules! export_signal_chain {
    () => {
        #[unsafe(no_mangle)]
        pub extern "C" fn flb_wasmer_signal_chain_next(handler: usize) -> usize {
            $crate::signals::chain_next(handler)
        }
    };
}

/// Asks the library that contains `handler` where that handler forwards to (0: unknown, so
/// the chain ends there).
fn next_of(handler: usize) -> usize {
    if handler == 0 || handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        return 0;
    }
    // SAFETY: dladdr/dlopen(RTLD_NOLOAD)/dlsym only look up already-loaded objects.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(handler as *const libc::c_void, &mut info) == 0 || info.dli_fname.is_null() {
            return 0;
        }
        let h = libc::dlopen(info.dli_fname, libc::RTLD_NOLOAD | libc::RTLD_LAZY);
        if h.is_null() {
            return 0;
        }
        let f = libc::dlsym(h, c"flb_wasmer_signal_chain_next".as_ptr());
        let next = if f.is_null() { 0 } else { std::mem::transmute::<*mut libc::c_void, extern "C" fn(usize) -> usize>(f)(handler) };
        libc::dlclose(h);
        next
    }
}

/// Makes sure a guest fault in this library is caught as a trap (see the module docs).
/// Returns true if the handlers had to be re-installed.
pub fn ensure_armed() -> bool {
    let st = state();
    let ours = st.wasmer[0].sa_sigaction;
    let mut h = query(libc::SIGSEGV).sa_sigaction;
    for _ in 0..16 {
        if h == ours {
            return false;
        }
        h = next_of(h);
        if h == 0 {
            break;
        }
    }
    for (i, sig) in SIGNALS.iter().enumerate() {
        // SAFETY: re-installing the exact sigaction wasmer installed for this signal.
        unsafe { libc::sigaction(*sig, &st.wasmer[i], std::ptr::null_mut()) };
    }
    true
}
