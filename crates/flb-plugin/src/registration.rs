//! The registration object Fluent Bit copies when it loads us, and reading the few instance
//! fields we need.
//!
//! The exported symbol is a zeroed [`PluginSlot`] filled by a library constructor (which runs
//! inside `dlopen`, before the host's `dlsym` + `memcpy`) in the layout of the detected host
//! generation. On a host we do not recognise it holds an inert plugin: a name, a description
//! and an init callback that logs why it refuses and fails. A zeroed object would crash the
//! host, which registers whatever it finds.
//!
//! The cdylibs link with `-Bsymbolic` so the constructor writes our own object even when the
//! executable exports a symbol of the same name.

use crate::config::Property;
use crate::host::{self, Generation};
use flb_sys as sys;
use std::cell::UnsafeCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::mem::size_of;

/// Zero-initialised storage for the exported registration object, larger than every
/// generation's struct so a host never reads past it.
#[repr(C, align(8))]
pub struct PluginSlot(UnsafeCell<[u8; sys::PLUGIN_SLOT_SIZE]>);

// SAFETY: written once by the library constructor before any other thread can see the
// library; read-only afterwards.
unsafe impl Sync for PluginSlot {}

impl PluginSlot {
    pub const fn new() -> PluginSlot {
        PluginSlot(UnsafeCell::new([0; sys::PLUGIN_SLOT_SIZE]))
    }

    fn as_mut_ptr<T>(&self) -> *mut T {
        const { assert!(size_of::<T>() <= sys::PLUGIN_SLOT_SIZE) };
        self.0.get() as *mut T
    }

    /// The `name` pointer we registered; the host's copy of our object keeps it, which is
    /// what the per-instance self-check compares.
    fn name_ptr(&self, name_offset: u32) -> *const c_char {
        // SAFETY: the slot is 8-aligned and larger than the offset; written by the constructor.
        unsafe { *((self.0.get() as *const u8).add(name_offset as usize) as *const *const c_char) }
    }
}

impl Default for PluginSlot {
    fn default() -> Self {
        PluginSlot::new()
    }
}

/// Builds the C config-map array for `props` with the host's entry size, NULL-terminated.
/// Leaked on purpose: the host references it until the process exits.
fn leak_config_map(props: &'static [Property], generation: Generation) -> *mut c_void {
    let stride = generation.config_map_stride();
    let mut block = vec![0u64; stride * (props.len() + 1) / 8].into_boxed_slice();
    let base = block.as_mut_ptr() as *mut u8;
    for (i, p) in props.iter().enumerate() {
        let leak = |s: &str| CString::new(s).expect("NUL in property text").into_raw();
        // SAFETY: both entry layouts share the prefix up to `desc` (offsets 0..48), and each
        // entry lies inside `block`.
        unsafe {
            let e = base.add(i * stride) as *mut sys::flb_config_map_g1;
            (*e).type_ = p.kind.c_type();
            (*e).name = leak(p.name);
            (*e).def_value = p.default.map_or(std::ptr::null_mut(), leak);
            (*e).flags = if p.multiple { sys::FLB_CONFIG_MAP_MULT as c_int } else { 0 };
            (*e).set_property = 0;
            (*e).offset = 0;
            (*e).desc = leak(p.description);
        }
    }
    Box::leak(block).as_mut_ptr() as *mut c_void
}

/// Where the instance fields we read live in the running host.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InstanceLayout {
    pub log_level: usize,
    /// `p`: the host's copy of our registration object (self-check).
    pub plugin: usize,
    pub properties: usize,
    /// Offset of `name` inside the registration object.
    pub plugin_name: usize,
}

pub(crate) fn input_layout(g: Generation) -> InstanceLayout {
    let ct = host::api().chunk_trace;
    let properties = match (g, ct) {
        (Generation::G3, true) => sys::FLB_IN_PROPERTIES_G3_CHUNK_TRACE,
        (Generation::G3, false) => sys::FLB_IN_PROPERTIES_G3_NO_CHUNK_TRACE,
        (_, true) => sys::FLB_IN_PROPERTIES_G1_CHUNK_TRACE,
        (_, false) => sys::FLB_IN_PROPERTIES_G1_NO_CHUNK_TRACE,
    };
    InstanceLayout {
        log_level: (if ct { sys::FLB_IN_LOG_LEVEL_CHUNK_TRACE } else { sys::FLB_IN_LOG_LEVEL_NO_CHUNK_TRACE }) as usize,
        plugin: (if ct { sys::FLB_IN_P_CHUNK_TRACE } else { sys::FLB_IN_P_NO_CHUNK_TRACE }) as usize,
        properties: properties as usize,
        plugin_name: sys::FLB_INPUT_PLUGIN_NAME as usize,
    }
}

pub(crate) fn filter_layout() -> InstanceLayout {
    let re = host::api().regex;
    InstanceLayout {
        log_level: sys::FLB_FILTER_LOG_LEVEL as usize,
        plugin: (if re { sys::FLB_FILTER_P_REGEX } else { sys::FLB_FILTER_P_NO_REGEX }) as usize,
        properties: (if re { sys::FLB_FILTER_PROPERTIES_REGEX } else { sys::FLB_FILTER_PROPERTIES_NO_REGEX }) as usize,
        plugin_name: sys::FLB_FILTER_PLUGIN_NAME as usize,
    }
}

/// Raw access to an instance through a confirmed layout.
pub(crate) struct RawInstance {
    pub ptr: *mut u8,
    pub layout: InstanceLayout,
}

impl RawInstance {
    /// Confirms the layout: the instance's `p` must point at a copy of our object, whose
    /// `name` is our name pointer. Nothing else in the instance is read before this passes.
    pub unsafe fn confirm(ptr: *mut c_void, layout: InstanceLayout, our_name: *const c_char) -> Option<RawInstance> {
        if ptr.is_null() || our_name.is_null() {
            return None;
        }
        let ptr = ptr as *mut u8;
        // SAFETY: `ptr` is the instance the host passed to cb_init; `layout.plugin` is inside
        // every generation's instance struct. The plugin pointer is only followed if non-null.
        unsafe {
            let p = *(ptr.add(layout.plugin) as *const *const u8);
            if p.is_null() {
                return None;
            }
            let name = *(p.add(layout.plugin_name) as *const *const c_char);
            (name == our_name).then_some(RawInstance { ptr, layout })
        }
    }

    pub fn log_level(&self) -> i32 {
        // SAFETY: confirmed layout.
        unsafe { *(self.ptr.add(self.layout.log_level) as *const i32) }
    }

    /// Every value of property `key` (case-insensitive), in the order given.
    pub fn property_values(&self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        // SAFETY: confirmed layout; `properties` is the head of a well-formed host list of
        // `struct flb_kv` whose key/val are NUL-terminated sds strings.
        unsafe {
            let head = self.ptr.add(self.layout.properties) as *const sys::mk_list;
            let mut node = (*head).next as *const sys::mk_list;
            while !node.is_null() && node != head {
                let kv = (node as *const u8).sub(std::mem::offset_of!(sys::flb_kv, _head)) as *const sys::flb_kv;
                if !(*kv).key.is_null() && !(*kv).val.is_null() {
                    let k = CStr::from_ptr((*kv).key);
                    if k.to_bytes().eq_ignore_ascii_case(key.as_bytes()) {
                        out.push(CStr::from_ptr((*kv).val).to_string_lossy().into_owned());
                    }
                }
                node = (*node).next;
            }
        }
        out
    }
}

/// Static description of a plugin, shared by the input and filter paths.
pub struct PluginInfo {
    pub name: &'static CStr,
    pub description: &'static CStr,
    pub properties: &'static [Property],
}

pub(crate) fn refusal_message(name: &CStr, why: &str) -> String {
    format!(
        "[{}] refusing to start: {why}. This plugin supports {}; use a matching flb-wasmer release",
        name.to_string_lossy(),
        host::TESTED_RANGE
    )
}

/// Fills `slot` as a filter plugin. Called from the library constructor.
pub fn fill_filter<F: crate::Filter>(slot: &'static PluginSlot) {
    let api = host::api();
    let p: *mut sys::flb_filter_plugin = slot.as_mut_ptr();
    // SAFETY: the slot is zeroed, aligned and large enough; nothing else reads it yet.
    unsafe {
        (*p).event_type = sys::FLB_FILTER_LOGS as c_int;
        (*p).name = F::INFO.name.as_ptr() as *mut c_char;
        (*p).description = F::INFO.description.as_ptr() as *mut c_char;
        match api.generation {
            Some(g) => {
                (*p).config_map = leak_config_map(F::INFO.properties, g);
                (*p).cb_init = Some(crate::filter::cb_init::<F>);
                (*p).cb_filter = Some(crate::filter::cb_filter::<F>);
                (*p).cb_exit = Some(crate::filter::cb_exit::<F>);
            }
            None => (*p).cb_init = Some(crate::filter::cb_init_refuse::<F>),
        }
    }
    crate::filter::register_name::<F>(slot.name_ptr(sys::FLB_FILTER_PLUGIN_NAME));
}

/// Fills `slot` as an input plugin in the host generation's layout.
pub fn fill_input<I: crate::Input>(slot: &'static PluginSlot) {
    use crate::input as cb;
    let api = host::api();
    let name = I::INFO.name.as_ptr() as *mut c_char;
    let description = I::INFO.description.as_ptr() as *mut c_char;
    let flags = if I::THREADED { sys::FLB_INPUT_THREADED as c_int } else { 0 };
    // SAFETY: as in fill_filter; each arm writes only the struct of its generation, and the
    // inert arm writes the prefix (type..cb_init) that every generation shares.
    unsafe {
        match api.generation {
            Some(g @ Generation::G3) => {
                let p: *mut sys::flb_input_plugin_g3 = slot.as_mut_ptr();
                (*p).flags = flags;
                (*p).name = name;
                (*p).description = description;
                (*p).config_map = leak_config_map(I::INFO.properties, g);
                (*p).cb_init = Some(cb::cb_init::<I>);
                (*p).cb_pause = Some(cb::cb_pause::<I>);
                (*p).cb_resume = Some(cb::cb_resume::<I>);
                (*p).cb_exit = Some(cb::cb_exit::<I>);
            }
            Some(g) => {
                let p: *mut sys::flb_input_plugin_g1 = slot.as_mut_ptr();
                (*p).flags = flags;
                (*p).name = name;
                (*p).description = description;
                (*p).config_map = leak_config_map(I::INFO.properties, g);
                (*p).cb_init = Some(cb::cb_init::<I>);
                (*p).cb_pause = Some(cb::cb_pause::<I>);
                (*p).cb_resume = Some(cb::cb_resume::<I>);
                (*p).cb_exit = Some(cb::cb_exit::<I>);
            }
            None => {
                let p: *mut sys::flb_input_plugin_g1 = slot.as_mut_ptr();
                (*p).name = name;
                (*p).description = description;
                (*p).cb_init = Some(cb::cb_init_refuse::<I>);
            }
        }
    }
    crate::input::register_name::<I>(slot.name_ptr(sys::FLB_INPUT_PLUGIN_NAME));
}

/// Declares the exported registration object of a filter plugin.
///
/// ```ignore
/// flb_plugin::filter_plugin!(filter_wasm_wasmer_plugin, WasmFilter);
/// ```
/// The symbol must be `filter_<name>_plugin` for a file `flb-filter_<name>.so`.
#[macro_export]
macro_rules! filter_plugin {
    ($symbol:ident, $plugin:ty) => {
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static $symbol: $crate::__private::PluginSlot = $crate::__private::PluginSlot::new();

        #[used]
        #[unsafe(link_section = ".init_array")]
        static __FLB_PLUGIN_CONSTRUCTOR: extern "C" fn() = {
            extern "C" fn register() {
                $crate::__private::fill_filter::<$plugin>(&$symbol);
            }
            register
        };
    };
}

/// Declares the exported registration object of an input plugin (`in_<name>_plugin` for a
/// file `flb-in_<name>.so`).
#[macro_export]
macro_rules! input_plugin {
    ($symbol:ident, $plugin:ty) => {
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static $symbol: $crate::__private::PluginSlot = $crate::__private::PluginSlot::new();

        #[used]
        #[unsafe(link_section = ".init_array")]
        static __FLB_PLUGIN_CONSTRUCTOR: extern "C" fn() = {
            extern "C" fn register() {
                $crate::__private::fill_input::<$plugin>(&$symbol);
            }
            register
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Kind;

    static PROPS: &[Property] = &[
        Property::new("a", Kind::Str, "first").required(),
        Property::new("b", Kind::Size, "second").default("4096"),
        Property::new("c", Kind::Str, "third").multiple(),
    ];

    fn entries(g: Generation) -> Vec<(i32, String, Option<String>, i32, String)> {
        let base = leak_config_map(PROPS, g) as *const u8;
        let stride = g.config_map_stride();
        let mut out = vec![];
        for i in 0.. {
            let e = unsafe { &*(base.add(i * stride) as *const sys::flb_config_map_g1) };
            if e.name.is_null() {
                break;
            }
            let s = |p: *mut c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
            out.push((e.type_, s(e.name), (!e.def_value.is_null()).then(|| s(e.def_value)), e.flags, s(e.desc)));
            assert_eq!(e.set_property, 0);
        }
        out
    }

    #[test]
    fn config_map_has_host_stride_and_terminator() {
        for g in [Generation::G1, Generation::G2, Generation::G3] {
            let e = entries(g);
            assert_eq!(e.len(), 3, "{g:?}");
            assert_eq!(e[0].1, "a");
            assert_eq!(e[1], (sys::FLB_CONFIG_MAP_SIZE as i32, "b".into(), Some("4096".into()), 0, "second".into()));
            assert_eq!(e[2].3, sys::FLB_CONFIG_MAP_MULT as i32);
        }
        assert_eq!(Generation::G1.config_map_stride(), 96);
        assert_eq!(Generation::G3.config_map_stride(), 104);
    }
}
