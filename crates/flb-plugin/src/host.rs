//! The running Fluent Bit: its functions (resolved with `dlsym(RTLD_DEFAULT)`, so this
//! library has no link-time dependency on the host) and its layout generation.
//!
//! There is no version API in Fluent Bit; the generation is told by which symbols the
//! executable exports (docs/abi.md, "Layout generations"). Each instance then confirms the layout with a
//! self-check before any instance field is trusted (see `registration`).

use flb_sys as sys;
use std::ffi::{CStr, c_void};
use std::sync::OnceLock;

/// Layout generations of the plugin ABI (first upstream tag of each in the comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// v3.2.3 .. v5.0.2: 208-byte input plugin, 96-byte config map entries.
    G1,
    /// v5.0.3 .. v5.0.9: 208-byte input plugin, 104-byte config map entries.
    G2,
    /// v5.1.0 and later: 232-byte input plugin, 104-byte config map entries.
    G3,
}

impl Generation {
    pub fn config_map_stride(self) -> usize {
        match self {
            Generation::G1 => std::mem::size_of::<sys::flb_config_map_g1>(),
            Generation::G2 | Generation::G3 => std::mem::size_of::<sys::flb_config_map_g2>(),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Generation::G1 => "v3.2.3-v5.0.2 layout",
            Generation::G2 => "v5.0.3-v5.0.9 layout",
            Generation::G3 => "v5.1 layout",
        }
    }
}

/// The versions the plugins were tested on, for the refusal message and the README.
pub const TESTED_RANGE: &str = "Fluent Bit v3.2.3 to v5.1.x (tested on v3.2.10, v4.2.8, v5.0.9 and v5.1.1)";

/// Host functions, resolved at load time. bindgen types them as `Option<fn>`; `probe` leaves
/// `generation` None unless every one is present, and nothing calls them in that case.
pub struct HostApi {
    pub generation: Option<Generation>,
    pub chunk_trace: bool,
    pub regex: bool,
    pub log_print: sys::flb_log_print_fn,
    pub worker_get: sys::flb_worker_get_fn,
    pub input_set_context: sys::flb_input_set_context_fn,
    pub input_set_collector_time: sys::flb_input_set_collector_time_fn,
    pub input_set_collector_event: sys::flb_input_set_collector_event_fn,
    pub input_collector_pause: sys::flb_input_collector_fn,
    pub input_collector_resume: sys::flb_input_collector_fn,
    pub input_log_append: sys::flb_input_log_append_fn,
    pub input_get_property: sys::flb_input_get_property_fn,
    pub input_name: sys::flb_input_name_fn,
    pub filter_set_context: sys::flb_filter_set_context_fn,
    pub filter_get_property: sys::flb_filter_get_property_fn,
    pub filter_name: sys::flb_filter_name_fn,
    pub parser_get: sys::flb_parser_get_fn,
    pub parser_do: sys::flb_parser_do_fn,
}

fn lookup(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with a valid NUL-terminated name; RTLD_DEFAULT searches the global scope
    // (the executable's exports come first).
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

fn present(name: &[u8]) -> bool {
    CStr::from_bytes_until_nul(name).map(|n| !lookup(n).is_null()).unwrap_or(false)
}

macro_rules! resolve {
    ($name:literal) => {{
        let p = lookup($name);
        // SAFETY: `Option<extern fn>` has the null-pointer niche; a symbol of this name has
        // this prototype in every supported generation (docs/abi.md).
        unsafe { std::mem::transmute::<*mut c_void, _>(p) }
    }};
}

impl HostApi {
    fn probe() -> HostApi {
        let mut api = HostApi {
            generation: None,
            chunk_trace: present(sys::FLB_PROBE_CHUNK_TRACE),
            regex: present(sys::FLB_PROBE_REGEX),
            log_print: resolve!(c"flb_log_print"),
            worker_get: resolve!(c"flb_worker_get"),
            input_set_context: resolve!(c"flb_input_set_context"),
            input_set_collector_time: resolve!(c"flb_input_set_collector_time"),
            input_set_collector_event: resolve!(c"flb_input_set_collector_event"),
            input_collector_pause: resolve!(c"flb_input_collector_pause"),
            input_collector_resume: resolve!(c"flb_input_collector_resume"),
            input_log_append: resolve!(c"flb_input_log_append"),
            input_get_property: resolve!(c"flb_input_get_property"),
            input_name: resolve!(c"flb_input_name"),
            filter_set_context: resolve!(c"flb_filter_set_context"),
            filter_get_property: resolve!(c"flb_filter_get_property"),
            filter_name: resolve!(c"flb_filter_name"),
            parser_get: resolve!(c"flb_parser_get"),
            parser_do: resolve!(c"flb_parser_do"),
        };
        let complete = api.log_print.is_some()
            && api.input_set_context.is_some()
            && api.input_set_collector_time.is_some()
            && api.input_set_collector_event.is_some()
            && api.input_collector_pause.is_some()
            && api.input_collector_resume.is_some()
            && api.input_log_append.is_some()
            && api.input_get_property.is_some()
            && api.input_name.is_some()
            && api.filter_set_context.is_some()
            && api.filter_get_property.is_some()
            && api.filter_name.is_some()
            && api.parser_get.is_some()
            && api.parser_do.is_some();
        if complete {
            api.generation = detect_generation();
        }
        api
    }
}

fn detect_generation() -> Option<Generation> {
    if !present(sys::FLB_PROBE_TEST_FORMATTER) {
        return None; // older than v3.2.3 (or not Fluent Bit)
    }
    match (present(sys::FLB_PROBE_INPUT_PAUSE_CHECKED), present(sys::FLB_PROBE_CONFIG_MAP_RAW)) {
        (true, true) => Some(Generation::G3),
        (false, true) => Some(Generation::G2),
        (false, false) => Some(Generation::G1),
        (true, false) => None, // no upstream tag looks like this
    }
}

static HOST: OnceLock<HostApi> = OnceLock::new();

/// The host as probed on first use (in the library constructor, before Fluent Bit copies
/// the registration object).
pub fn api() -> &'static HostApi {
    HOST.get_or_init(HostApi::probe)
}

/// True when this thread is one of Fluent Bit's workers (its logger queue works there).
pub fn on_host_thread() -> bool {
    match api().worker_get {
        // SAFETY: flb_worker_get takes no arguments and only reads a thread-specific key.
        Some(get) => !unsafe { get() }.is_null(),
        None => false,
    }
}
