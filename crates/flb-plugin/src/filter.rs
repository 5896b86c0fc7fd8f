//! Filter plugins: the trait a plugin implements and the C callbacks that drive it.

use crate::config::Properties;
use crate::guard::ffi_guard;
use crate::host;
use crate::log::{Logger, drain_deferred};
use crate::memory::host_owned_copy;
use crate::registration::{PluginInfo, RawInstance, filter_layout, refusal_message};
use flb_sys as sys;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

/// What a filter did with a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterAction {
    /// The chunk passes on unchanged (the output buffer is ignored).
    NotTouched,
    /// The output buffer replaces the chunk; an empty buffer drops every record.
    Modified,
}

/// A filter plugin. One value per configured instance; the host never calls one instance
/// from two threads at once.
pub trait Filter: Sized + 'static {
    const INFO: PluginInfo;

    fn init(instance: &FilterInstance, properties: &Properties) -> crate::Result<Self>;

    /// Processes one chunk (concatenated msgpack log events). `out` is empty on entry and
    /// reused between calls.
    fn filter(&mut self, chunk: &[u8], tag: &str, out: &mut Vec<u8>) -> FilterAction;

    fn exit(&mut self) {}
}

/// What a filter may know about its instance.
pub struct FilterInstance {
    name: String,
    logger: Logger,
}

impl FilterInstance {
    /// The instance name (`alias` if set, else `<plugin>.<n>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn logger(&self) -> &Logger {
        &self.logger
    }
}

struct State<F> {
    plugin: F,
    logger: Logger,
    out: Vec<u8>,
}

static OUR_NAME: AtomicPtr<c_char> = AtomicPtr::new(std::ptr::null_mut());

pub(crate) fn register_name<F: Filter>(name: *const c_char) {
    OUR_NAME.store(name as *mut c_char, Ordering::Release);
}

fn library_logger<F: Filter>() -> Logger {
    Logger::library(&F::INFO.name.to_string_lossy())
}

pub(crate) unsafe extern "C" fn cb_init_refuse<F: Filter>(
    _ins: *mut sys::flb_filter_instance,
    _config: *mut sys::flb_config,
    _data: *mut c_void,
) -> c_int {
    library_logger::<F>().error(refusal_message(F::INFO.name, "this Fluent Bit's plugin ABI does not match a known layout"));
    -1
}

pub(crate) unsafe extern "C" fn cb_init<F: Filter>(
    ins: *mut sys::flb_filter_instance,
    _config: *mut sys::flb_config,
    _data: *mut c_void,
) -> c_int {
    let lib = library_logger::<F>();
    ffi_guard("filter init", -1, |m| lib.error(m), || {
        drain_deferred();
        let api = host::api();
        // SAFETY: `ins` is the instance the host passes to cb_init.
        let Some(raw) = (unsafe { RawInstance::confirm(ins as *mut c_void, filter_layout(), OUR_NAME.load(Ordering::Acquire)) }) else {
            lib.error(refusal_message(F::INFO.name, "the filter instance layout self-check failed"));
            return -1;
        };
        // SAFETY: flb_filter_name returns the instance's NUL-terminated name.
        let name = unsafe { CStr::from_ptr(api.filter_name.unwrap()(ins)) }.to_string_lossy().into_owned();
        let logger = Logger::new("filter", &F::INFO.name.to_string_lossy(), &name, raw.log_level());
        if let Some(generation) = api.generation {
            logger.debug(format!("host plugin ABI: {}", generation.describe()));
        }
        let properties = Properties::new(F::INFO.properties, |key| {
            let multiple = F::INFO.properties.iter().any(|p| p.multiple && p.name.eq_ignore_ascii_case(key));
            if multiple { raw.property_values(key) } else { get_property(ins, key) }
        });
        let instance = FilterInstance { name, logger: logger.clone() };
        match logger.scope(|| F::init(&instance, &properties)) {
            Ok(plugin) => {
                let state = Box::new(State { plugin, logger, out: Vec::new() });
                // SAFETY: the host stores the pointer and hands it back to cb_filter/cb_exit.
                unsafe { api.filter_set_context.unwrap()(ins, Box::into_raw(state) as *mut c_void) };
                0
            }
            Err(e) => {
                logger.error(e);
                -1
            }
        }
    })
}

fn get_property(ins: *mut sys::flb_filter_instance, key: &str) -> Vec<String> {
    let Ok(k) = std::ffi::CString::new(key) else { return vec![] };
    // SAFETY: valid key and instance; the returned string is owned by the host.
    let v = unsafe { host::api().filter_get_property.unwrap()(k.as_ptr(), ins) };
    if v.is_null() { vec![] } else { vec![unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned()] }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe extern "C" fn cb_filter<F: Filter>(
    data: *const c_void,
    bytes: usize,
    tag: *const c_char,
    tag_len: c_int,
    out_buf: *mut *mut c_void,
    out_bytes: *mut usize,
    _f_ins: *mut sys::flb_filter_instance,
    _i_ins: *mut sys::flb_input_instance,
    context: *mut c_void,
    _config: *mut sys::flb_config,
) -> c_int {
    const NOTOUCH: c_int = sys::FLB_FILTER_NOTOUCH as c_int;
    const MODIFIED: c_int = sys::FLB_FILTER_MODIFIED as c_int;
    // SAFETY: out pointers are valid per the callback contract; reset so NOTOUCH never leaks.
    unsafe {
        *out_buf = std::ptr::null_mut();
        *out_bytes = 0;
    }
    if context.is_null() || data.is_null() {
        return NOTOUCH;
    }
    // SAFETY: `context` is the Box we registered; the host serialises calls per instance.
    let state = unsafe { &mut *(context as *mut State<F>) };
    let logger = state.logger.clone();
    ffi_guard("filter", NOTOUCH, |m| logger.error(m), || {
        drain_deferred();
        // SAFETY: the host passes a chunk of `bytes` bytes and a tag of `tag_len` bytes.
        let chunk = unsafe { std::slice::from_raw_parts(data as *const u8, bytes) };
        let tag_bytes = if tag.is_null() || tag_len <= 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(tag as *const u8, tag_len as usize) } };
        let tag = String::from_utf8_lossy(tag_bytes);
        state.out.clear();
        let State { plugin, out, .. } = &mut *state;
        match logger.scope(|| plugin.filter(chunk, &tag, out)) {
            FilterAction::NotTouched => NOTOUCH,
            FilterAction::Modified if state.out.is_empty() => MODIFIED,
            FilterAction::Modified => {
                let copy = host_owned_copy(&state.out);
                if copy.is_null() {
                    logger.error("out of memory copying the filtered chunk; passing the chunk on unchanged");
                    return NOTOUCH;
                }
                // SAFETY: valid out pointers; the host frees `copy` with free().
                unsafe {
                    *out_buf = copy;
                    *out_bytes = state.out.len();
                }
                // Large chunks once should not pin their memory forever.
                if state.out.capacity() > 4 << 20 {
                    state.out = Vec::new();
                }
                MODIFIED
            }
        }
    })
}

pub(crate) unsafe extern "C" fn cb_exit<F: Filter>(context: *mut c_void, _config: *mut sys::flb_config) -> c_int {
    if context.is_null() {
        return 0;
    }
    // SAFETY: the Box registered in cb_init; the host calls exit once, after the last filter.
    let mut state = unsafe { Box::from_raw(context as *mut State<F>) };
    let logger = state.logger.clone();
    ffi_guard("filter exit", 0, |m| logger.error(m), || {
        drain_deferred();
        logger.scope(|| state.plugin.exit());
        drop(state);
        0
    })
}
