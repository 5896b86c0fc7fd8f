//! The Go-plugin ("proxy") route for inputs: `fluent-bit -e libexec_wasi.so` (a file name
//! not starting with `flb-`) loads the library through Fluent Bit's Go-plugin loader, whose
//! C ABI is language-neutral (`FLBPluginRegister`, `FLBPluginInit`, `FLBPluginInputCallback*`,
//! `FLBPluginExit`).
//!
//! Differences from the native route (documented in the README): the host polls the input
//! on a fixed 1-second timer and always runs it threaded; the registration carries no config
//! map (the field exists only from v5.1.1 and no probe tells v5.1.0 from v5.1.1, so we never
//! write it): no `-h` help and no host-side property-name check; the host's parsers are not
//! reachable (the proxy ABI does not pass the config).

use crate::config::Properties;
use crate::guard::ffi_guard;
use crate::host;
use crate::input::{Input, InputInstance, get_property, library_logger};
use crate::log::{Logger, drain_deferred};
use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct ProxyState {
    pub interval: Option<Duration>,
    pub every_poll: bool,
    pub last_run: Option<Instant>,
    pub pending: RefCell<Vec<u8>>,
}

/// `struct flb_plugin_proxy_def`: we write only the fields every version has.
#[repr(C)]
pub struct ProxyDef {
    pub type_: c_int,
    pub proxy: c_int,
    pub flags: c_int,
    pub name: *const c_char,
    pub description: *const c_char,
}

/// `struct flbgo_input_plugin` (prefix): what `FLBPluginInit` receives.
#[repr(C)]
pub struct GoInputPlugin {
    pub name: *const c_char,
    pub api: *const c_void,
    pub i_ins: *mut flb_sys::flb_input_instance,
    pub context: *mut c_void,
}

const PROXY_INPUT_PLUGIN: c_int = 1;
const PROXY_GOLANG: c_int = 11;
/// `struct flb_api.input_log_check(ins, level) -> int` sits after four function pointers.
const API_INPUT_LOG_CHECK: usize = 5;

struct Instance<I> {
    plugin: I,
    instance: InputInstance,
}

// SAFETY: an instance is only used by the host's input thread that polls it; the Mutex below
// only guards the registry of instances.
struct Registered(*mut c_void);
unsafe impl Send for Registered {}

/// Instances for hosts older than v4.1, whose poll callback carries no context (one instance).
static SINGLE: Mutex<Option<Registered>> = Mutex::new(None);

pub fn register<I: Input>(def: *mut ProxyDef) -> c_int {
    if def.is_null() {
        return -1;
    }
    // SAFETY: the host passes a zeroed definition at least this large.
    unsafe {
        (*def).type_ = PROXY_INPUT_PLUGIN;
        (*def).proxy = PROXY_GOLANG;
        (*def).flags = 0;
        (*def).name = I::INFO.name.as_ptr();
        (*def).description = I::INFO.description.as_ptr();
    }
    0
}

fn level_of(api: *const c_void, ins: *mut flb_sys::flb_input_instance) -> i32 {
    if api.is_null() {
        return 3;
    }
    // SAFETY: `api` is the host's `struct flb_api`; its sixth slot is input_log_check.
    let check: Option<unsafe extern "C" fn(*mut flb_sys::flb_input_instance, c_int) -> c_int> =
        unsafe { *(api as *const Option<unsafe extern "C" fn(*mut flb_sys::flb_input_instance, c_int) -> c_int>).add(API_INPUT_LOG_CHECK) };
    let Some(check) = check else { return 3 };
    (1..=5).rev().find(|&l| unsafe { check(ins, l) } != 0).unwrap_or(0)
}

/// `FLBPluginInit`: returns 1 on success, as Go plugins do.
pub fn init<I: Input>(plugin: *mut GoInputPlugin) -> c_int {
    let lib = library_logger::<I>();
    ffi_guard("proxy init", -1, |m| lib.error(m), || {
        drain_deferred();
        if plugin.is_null() || host::api().generation.is_none() {
            lib.error(crate::registration::refusal_message(I::INFO.name, "this Fluent Bit's plugin ABI does not match a known layout"));
            return -1;
        }
        // SAFETY: the host's flbgo_input_plugin, valid during init.
        let (api, ins, context) = unsafe { ((*plugin).api, (*plugin).i_ins, (*plugin).context) };
        let name = unsafe { CStr::from_ptr(host::api().input_name.unwrap()(ins)) }.to_string_lossy().into_owned();
        let logger = Logger::new("input", &I::INFO.name.to_string_lossy(), &name, level_of(api, ins));
        let properties = Properties::new(I::INFO.properties, |key| get_property(ins, key));
        let proxy = ProxyState { interval: None, every_poll: false, last_run: None, pending: RefCell::new(Vec::new()) };
        let mut instance = InputInstance { ins, config: std::ptr::null_mut(), name, logger: logger.clone(), collectors: Vec::new(), proxy: Some(proxy) };
        let plugin_state = match logger.scope(|| I::init(&mut instance, &properties)) {
            Ok(p) => p,
            Err(e) => {
                logger.error(e);
                return -1;
            }
        };
        let state = Box::into_raw(Box::new(Instance { plugin: plugin_state, instance })) as *mut c_void;
        // v4.1+: `struct flb_plugin_input_proxy_context { int coll_fd; void *remote_context;
        // struct flb_plugin_proxy *proxy; }`, calloc'd, so remote_context is still NULL here.
        // Older hosts have the proxy pointer (never NULL) in that slot: one global instance.
        let slot = if context.is_null() { std::ptr::null_mut() } else { unsafe { (context as *mut u8).add(8) as *mut *mut c_void } };
        if !slot.is_null() && unsafe { (*slot).is_null() } {
            unsafe { *slot = state };
        } else {
            let mut single = SINGLE.lock().unwrap_or_else(|e| e.into_inner());
            if single.is_some() {
                logger.error("this Fluent Bit (older than v4.1) supports one instance of this plugin on the -e libexec_wasi.so route; use the flb-in_exec_wasi_wasmer.so file name for more");
                return -1;
            }
            *single = Some(Registered(state));
        }
        1
    })
}

/// The host's poll: runs `collect` when due and hands back what it appended.
pub fn poll<I: Input>(state: *mut c_void, data: *mut *mut c_void, len: *mut usize) -> c_int {
    // SAFETY: out pointers from the host.
    unsafe {
        *data = std::ptr::null_mut();
        *len = 0;
    }
    let state = if state.is_null() { SINGLE.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(std::ptr::null_mut(), |r| r.0) } else { state };
    if state.is_null() {
        return 0;
    }
    // SAFETY: the Instance<I> registered in init; polled by one host thread.
    let st = unsafe { &mut *(state as *mut Instance<I>) };
    let logger = st.instance.logger.clone();
    ffi_guard("proxy collect", -1, |m| logger.error(m), || {
        drain_deferred();
        let proxy = st.instance.proxy.as_mut().expect("proxy state");
        let due = proxy.every_poll || proxy.interval.is_some_and(|iv| proxy.last_run.is_none_or(|t| t.elapsed() + Duration::from_millis(50) >= iv));
        if due {
            proxy.last_run = Some(Instant::now());
            if let Err(e) = logger.scope(|| st.plugin.collect(&st.instance)) {
                logger.error(e);
            }
        }
        let pending = st.instance.proxy.as_ref().unwrap().pending.take();
        if pending.is_empty() {
            return 0;
        }
        let copy = crate::memory::host_owned_copy(&pending);
        if copy.is_null() {
            logger.error("out of memory handing records to the host");
            return -1;
        }
        // SAFETY: the host appends the buffer and frees it with free() (no cleanup callback).
        unsafe {
            *data = copy;
            *len = pending.len();
        }
        0
    })
}

/// `FLBPluginExit`: takes no context, so it tears down the single-instance state only;
/// per-instance state of v4.1+ hosts lives until the process exits (the host offers no
/// per-instance exit on this route).
pub fn exit<I: Input>() -> c_int {
    if let Some(Registered(state)) = SINGLE.lock().unwrap_or_else(|e| e.into_inner()).take() {
        // SAFETY: registered in init; the host stopped polling before exit.
        let mut st = unsafe { Box::from_raw(state as *mut Instance<I>) };
        let Instance { plugin, instance } = &mut *st;
        plugin.exit(instance);
    }
    0
}

/// Exports the Go-plugin entry points for an input, so that a file name not starting with
/// `flb-` (e.g. `libexec_wasi.so`) loads through Fluent Bit's Go-plugin loader.
#[macro_export]
macro_rules! proxy_input {
    ($plugin:ty) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn FLBPluginRegister(def: *mut $crate::proxy::ProxyDef) -> ::std::ffi::c_int {
            $crate::proxy::register::<$plugin>(def)
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn FLBPluginInit(plugin: *mut $crate::proxy::GoInputPlugin) -> ::std::ffi::c_int {
            $crate::proxy::init::<$plugin>(plugin)
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn FLBPluginInputCallback(data: *mut *mut ::std::ffi::c_void, len: *mut usize) -> ::std::ffi::c_int {
            $crate::proxy::poll::<$plugin>(::std::ptr::null_mut(), data, len)
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn FLBPluginInputCallbackCtx(ctx: *mut ::std::ffi::c_void, data: *mut *mut ::std::ffi::c_void, len: *mut usize) -> ::std::ffi::c_int {
            $crate::proxy::poll::<$plugin>(ctx, data, len)
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn FLBPluginExit() -> ::std::ffi::c_int {
            $crate::proxy::exit::<$plugin>()
        }
    };
}
