//! Input plugins: the trait a plugin implements and the C callbacks that drive it.

use crate::config::Properties;
use crate::guard::ffi_guard;
use crate::host;
use crate::log::{Logger, drain_deferred};
use crate::registration::{PluginInfo, RawInstance, input_layout, refusal_message};
use flb_sys as sys;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

/// An input plugin. One value per configured instance; callbacks of one instance run on one
/// host thread (the engine's, or the instance's own when `threaded`).
pub trait Input: Sized + 'static {
    const INFO: PluginInfo;
    /// Ask the host to run this input in its own thread by default.
    const THREADED: bool = false;

    /// Reads the properties and registers collectors on `instance`.
    fn init(instance: &mut InputInstance, properties: &Properties) -> crate::Result<Self>;

    /// Called by each collector the plugin registered. Errors are logged on the instance.
    fn collect(&mut self, instance: &InputInstance) -> crate::Result<()>;

    /// The host paused ingestion (buffer limits, shutdown); collectors are already paused.
    fn pause(&mut self, _instance: &InputInstance) {}
    fn resume(&mut self, _instance: &InputInstance) {}
    fn exit(&mut self, _instance: &InputInstance) {}
}

/// What an input may do with its instance. Only usable on the host thread that called it.
pub struct InputInstance {
    pub(crate) ins: *mut sys::flb_input_instance,
    /// NULL on the Go-proxy route, which does not pass the config.
    pub(crate) config: *mut sys::flb_config,
    pub(crate) name: String,
    pub(crate) logger: Logger,
    pub(crate) collectors: Vec<c_int>,
    /// Set on the Go-proxy route: records are handed back from the host's poll instead of
    /// appended, and collectors are emulated on the host's fixed 1-second poll.
    pub(crate) proxy: Option<crate::proxy::ProxyState>,
}

impl InputInstance {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn logger(&self) -> &Logger {
        &self.logger
    }

    /// True on the Go-proxy route (`-e libexec_wasi.so`), where the host polls once a second.
    pub fn is_proxy_route(&self) -> bool {
        self.proxy.is_some()
    }

    /// Calls `Input::collect` every `interval` (on the Go-proxy route: at the first host poll
    /// after `interval` has passed; the host polls once a second).
    pub fn collect_every(&mut self, interval: Duration) -> crate::Result<()> {
        let interval = interval.max(Duration::from_nanos(1));
        if let Some(proxy) = &mut self.proxy {
            proxy.interval = Some(interval);
            return Ok(());
        }
        // SAFETY: valid instance and config from cb_init; the callback matches the prototype.
        let id = unsafe {
            host::api().input_set_collector_time.unwrap()(
                self.ins,
                Some(collect_trampoline),
                interval.as_secs() as libc::time_t,
                interval.subsec_nanos() as libc::c_long,
                self.config,
            )
        };
        self.push_collector(id, "timer")
    }

    /// Calls `Input::collect` whenever `fd` is readable (e.g. a pipe our threads write to).
    /// The plugin must drain the fd in `collect`.
    pub fn collect_on_readable(&mut self, fd: RawFd) -> crate::Result<()> {
        if let Some(proxy) = &mut self.proxy {
            // The host's 1-second poll calls collect anyway.
            proxy.every_poll = true;
            return Ok(());
        }
        // SAFETY: as above; the host only polls the fd.
        let id = unsafe { host::api().input_set_collector_event.unwrap()(self.ins, Some(collect_trampoline), fd, self.config) };
        self.push_collector(id, "event")
    }

    fn push_collector(&mut self, id: c_int, what: &str) -> crate::Result<()> {
        if id < 0 {
            return Err(format!("cannot create the {what} collector").into());
        }
        self.collectors.push(id);
        Ok(())
    }

    /// Appends encoded log events (see `flb_events::Encoder`) under the instance's tag.
    /// The host copies the buffer.
    pub fn append(&self, events: &[u8]) -> crate::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if let Some(proxy) = &self.proxy {
            proxy.pending.borrow_mut().extend_from_slice(events);
            return Ok(());
        }
        // SAFETY: valid instance; the host copies `events` before returning.
        let rc = unsafe { host::api().input_log_append.unwrap()(self.ins, std::ptr::null(), 0, events.as_ptr() as *const c_void, events.len()) };
        if rc == 0 { Ok(()) } else { Err("the host refused the records (input paused or buffer limit reached)".into()) }
    }

    /// A parser defined in the host's parsers file.
    pub fn parser(&self, name: &str) -> Option<Parser> {
        if self.config.is_null() {
            return None;
        }
        let c = CString::new(name).ok()?;
        // SAFETY: valid name and config.
        let p = unsafe { host::api().parser_get.unwrap()(c.as_ptr(), self.config) };
        (!p.is_null()).then_some(Parser(p))
    }

    pub(crate) fn set_collectors(&self, run: bool) {
        let api = host::api();
        for &id in &self.collectors {
            // SAFETY: ids we created on this instance.
            unsafe {
                if run {
                    api.input_collector_resume.unwrap()(id, self.ins);
                } else {
                    api.input_collector_pause.unwrap()(id, self.ins);
                }
            }
        }
    }
}

/// A host parser (regex, json, logfmt, ...).
pub struct Parser(*mut sys::flb_parser);

/// A parsed line: the body map (msgpack) and the time the parser found, if any.
pub struct Parsed {
    pub body: Vec<u8>,
    pub time: Option<(i64, u32)>,
}

impl Parser {
    /// Parses one line; None when the parser does not match.
    pub fn parse(&self, line: &[u8]) -> Option<Parsed> {
        let mut out: *mut c_void = std::ptr::null_mut();
        let mut size = 0usize;
        let mut time = sys::flb_time::default();
        // SAFETY: valid parser; the host allocates `out` with malloc, which we free.
        let rc = unsafe { host::api().parser_do.unwrap()(self.0, line.as_ptr() as *const c_char, line.len(), &mut out, &mut size, &mut time) };
        if rc < 0 || out.is_null() {
            return None;
        }
        let body = unsafe { std::slice::from_raw_parts(out as *const u8, size) }.to_vec();
        unsafe { libc::free(out) };
        let (sec, nsec) = (time.tm.tv_sec, time.tm.tv_nsec);
        Some(Parsed { body, time: (sec != 0 || nsec != 0).then_some((sec, nsec as u32)) })
    }
}

struct State<I> {
    plugin: I,
    instance: InputInstance,
}

static OUR_NAME: AtomicPtr<c_char> = AtomicPtr::new(std::ptr::null_mut());

pub(crate) fn register_name<I: Input>(name: *const c_char) {
    OUR_NAME.store(name as *mut c_char, Ordering::Release);
}

pub(crate) fn library_logger<I: Input>() -> Logger {
    Logger::library(&I::INFO.name.to_string_lossy())
}

/// Callbacks reach the plugin through this vtable because the collector callback is not
/// generic (the host passes only the instance context).
struct Vtable {
    collect: unsafe fn(*mut c_void) -> c_int,
}

#[repr(C)]
struct Context {
    vtable: &'static Vtable,
    state: *mut c_void,
}

pub(crate) unsafe extern "C" fn cb_init_refuse<I: Input>(
    _ins: *mut sys::flb_input_instance,
    _config: *mut sys::flb_config,
    _data: *mut c_void,
) -> c_int {
    library_logger::<I>().error(refusal_message(I::INFO.name, "this Fluent Bit's plugin ABI does not match a known layout"));
    -1
}

pub(crate) unsafe extern "C" fn cb_init<I: Input>(
    ins: *mut sys::flb_input_instance,
    config: *mut sys::flb_config,
    _data: *mut c_void,
) -> c_int {
    let lib = library_logger::<I>();
    ffi_guard("input init", -1, |m| lib.error(m), || {
        drain_deferred();
        let api = host::api();
        let Some(generation) = api.generation else { return -1 };
        // SAFETY: `ins` is the instance the host passes to cb_init.
        let Some(raw) = (unsafe { RawInstance::confirm(ins as *mut c_void, input_layout(generation), OUR_NAME.load(Ordering::Acquire)) }) else {
            lib.error(refusal_message(I::INFO.name, "the input instance layout self-check failed"));
            return -1;
        };
        // SAFETY: flb_input_name returns the instance's NUL-terminated name.
        let name = unsafe { CStr::from_ptr(api.input_name.unwrap()(ins)) }.to_string_lossy().into_owned();
        let logger = Logger::new("input", &I::INFO.name.to_string_lossy(), &name, raw.log_level());
        logger.debug(format!("host plugin ABI: {}", generation.describe()));
        let properties = Properties::new(I::INFO.properties, |key| {
            let multiple = I::INFO.properties.iter().any(|p| p.multiple && p.name.eq_ignore_ascii_case(key));
            if multiple { raw.property_values(key) } else { get_property(ins, key) }
        });
        let mut instance = InputInstance { ins, config, name, logger: logger.clone(), collectors: Vec::new(), proxy: None };
        let plugin = match logger.scope(|| I::init(&mut instance, &properties)) {
            Ok(p) => p,
            Err(e) => {
                logger.error(e);
                return -1;
            }
        };
        static_vtable::<I>();
        let state = Box::into_raw(Box::new(State { plugin, instance })) as *mut c_void;
        let context = Box::into_raw(Box::new(Context { vtable: static_vtable::<I>(), state }));
        // SAFETY: the host hands the pointer back to the collector, pause/resume and exit.
        unsafe { api.input_set_context.unwrap()(ins, context as *mut c_void) };
        0
    })
}

fn static_vtable<I: Input>() -> &'static Vtable {
    trait HasVtable {
        const VTABLE: Vtable;
    }
    impl<I: Input> HasVtable for I {
        const VTABLE: Vtable = Vtable { collect: collect_state::<I> };
    }
    &<I as HasVtable>::VTABLE
}

pub(crate) fn get_property(ins: *mut sys::flb_input_instance, key: &str) -> Vec<String> {
    let Ok(k) = CString::new(key) else { return vec![] };
    // SAFETY: valid key and instance; the returned string is owned by the host.
    let v = unsafe { host::api().input_get_property.unwrap()(k.as_ptr(), ins) };
    if v.is_null() { vec![] } else { vec![unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned()] }
}

unsafe extern "C" fn collect_trampoline(
    _ins: *mut sys::flb_input_instance,
    _config: *mut sys::flb_config,
    context: *mut c_void,
) -> c_int {
    if context.is_null() {
        return 0;
    }
    // SAFETY: `context` is the Context registered in cb_init.
    let ctx = unsafe { &*(context as *const Context) };
    unsafe { (ctx.vtable.collect)(ctx.state) }
}

unsafe fn collect_state<I: Input>(state: *mut c_void) -> c_int {
    // SAFETY: the State<I> registered in cb_init; only this instance's host thread calls it.
    let state = unsafe { &mut *(state as *mut State<I>) };
    let logger = state.instance.logger.clone();
    ffi_guard("input collect", -1, |m| logger.error(m), || {
        drain_deferred();
        match logger.scope(|| state.plugin.collect(&state.instance)) {
            Ok(()) => 0,
            Err(e) => {
                logger.error(e);
                -1
            }
        }
    })
}

unsafe fn state_of<'a, I: Input>(context: *mut c_void) -> Option<&'a mut State<I>> {
    if context.is_null() {
        return None;
    }
    // SAFETY: the Context registered in cb_init for this plugin type.
    Some(unsafe { &mut *((*(context as *const Context)).state as *mut State<I>) })
}

pub(crate) unsafe extern "C" fn cb_pause<I: Input>(context: *mut c_void, _config: *mut sys::flb_config) {
    let Some(state) = (unsafe { state_of::<I>(context) }) else { return };
    let logger = state.instance.logger.clone();
    ffi_guard("input pause", (), |m| logger.error(m), || {
        state.instance.set_collectors(false);
        logger.scope(|| state.plugin.pause(&state.instance));
    })
}

pub(crate) unsafe extern "C" fn cb_resume<I: Input>(context: *mut c_void, _config: *mut sys::flb_config) {
    let Some(state) = (unsafe { state_of::<I>(context) }) else { return };
    let logger = state.instance.logger.clone();
    ffi_guard("input resume", (), |m| logger.error(m), || {
        state.instance.set_collectors(true);
        logger.scope(|| state.plugin.resume(&state.instance));
    })
}

pub(crate) unsafe extern "C" fn cb_exit<I: Input>(context: *mut c_void, _config: *mut sys::flb_config) -> c_int {
    if context.is_null() {
        return 0;
    }
    // SAFETY: the boxes registered in cb_init; the host calls exit once.
    let ctx = unsafe { Box::from_raw(context as *mut Context) };
    let mut state = unsafe { Box::from_raw(ctx.state as *mut State<I>) };
    let logger = state.instance.logger.clone();
    ffi_guard("input exit", 0, |m| logger.error(m), || {
        drain_deferred();
        let State { plugin, instance } = &mut *state;
        logger.scope(|| plugin.exit(instance));
        drop(state);
        0
    })
}
