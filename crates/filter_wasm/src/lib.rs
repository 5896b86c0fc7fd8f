//! `wasm_wasmer`: calls an exported WebAssembly function per record, like Fluent Bit's
//! built-in `wasm` filter, on wasmer. The work itself is in [`core`].

pub mod core;

use crate::core::{EventFormat, FilterConfig, OnError, WasmFilter};
use flb_plugin::registration::PluginInfo;
use flb_plugin::{Filter, FilterAction, FilterInstance, Kind, Properties, Property};
use std::path::PathBuf;
use wasm_runtime::{Compiler, EngineOptions, Limits, Preopen, WasiOptions};

pub const PROPERTIES: &[Property] = &[
    Property::new("wasm_path", Kind::Str, "Path to the WebAssembly module").required(),
    Property::new("function_name", Kind::Str, "Exported function to call per record").required(),
    Property::new("event_format", Kind::Str, "How the record is passed: json or msgpack").default("json"),
    Property::new("accessible_paths", Kind::CList, "Host directories the module may open (guest path = host path)").default("."),
    Property::new("on_error", Kind::Str, "When a call traps, times out or returns garbage: keep the original record, or drop it").default("keep"),
    Property::new("timeout", Kind::Time, "Longest one call may take (0: no limit)").default("1s"),
    Property::new("memory_limit", Kind::Size, "Largest guest linear memory").default("256M"),
    Property::new("compiler", Kind::Str, "wasmer compiler: cranelift (faster code) or singlepass (faster start-up)").default("cranelift"),
    Property::new("cache_dir", Kind::Str, "Private directory for compiled modules (integrity-checked); unset: no disk cache"),
    Property::new("config", Kind::Str, "Configuration passed once to the module's flb_init export (extended ABI)"),
    Property::new("config_file", Kind::Str, "File whose contents are passed to the module's flb_init export (instead of config)"),
    Property::new("wasm_heap_size", Kind::Size, "Accepted for compatibility with the built-in and ignored: records are placed with the guest's allocator or in host-grown memory, up to memory_limit").default("8192"),
    Property::new("wasm_stack_size", Kind::Size, "Accepted for compatibility with the built-in and ignored: the guest's own stack is part of its memory").default("8192"),
];

pub struct Plugin {
    filter: WasmFilter,
}

fn bad(prop: &str, msg: impl std::fmt::Display) -> flb_plugin::Error {
    flb_plugin::Error(format!("property '{prop}': {msg}"))
}

/// Reads and validates the properties.
pub fn config_from(p: &Properties) -> flb_plugin::Result<FilterConfig> {
    let wasm_path = PathBuf::from(p.required_str("wasm_path")?);
    std::fs::File::open(&wasm_path).map_err(|e| bad("wasm_path", format!("cannot read {}: {e}", wasm_path.display())))?;
    let function = p.required_str("function_name")?;
    let format = EventFormat::parse(&p.str("event_format")?.unwrap_or_default()).ok_or_else(|| bad("event_format", "expected json or msgpack"))?;
    let on_error = OnError::parse(&p.str("on_error")?.unwrap_or_default()).ok_or_else(|| bad("on_error", "expected keep or drop"))?;
    let preopens = p.list("accessible_paths")?.into_iter().map(|path| Preopen { path: path.into(), read_only: false }).collect::<Vec<_>>();
    for po in &preopens {
        if !po.path.is_dir() {
            return Err(bad("accessible_paths", format!("{} is not a directory", po.path.display())));
        }
    }
    let timeout = p.time("timeout")?.filter(|d| !d.is_zero());
    let memory_max = p.size("memory_limit")?.unwrap_or(256 << 20);
    if memory_max < 65536 {
        return Err(bad("memory_limit", "must be at least 64k (one wasm page)"));
    }
    let compiler = Compiler::parse(&p.str("compiler")?.unwrap_or_default()).ok_or_else(|| bad("compiler", "expected cranelift or singlepass"))?;
    let cache_dir = p.str("cache_dir")?.filter(|s| !s.trim().is_empty()).map(PathBuf::from);
    let init_config = match (p.str("config")?, p.str("config_file")?) {
        (Some(_), Some(_)) => return Err(bad("config_file", "set config or config_file, not both")),
        (Some(c), None) => Some(c.into_bytes()),
        (None, Some(f)) => Some(std::fs::read(&f).map_err(|e| bad("config_file", format!("cannot read {f}: {e}")))?),
        (None, None) => None,
    };
    Ok(FilterConfig {
        init_config,
        wasi: WasiOptions { preopens, program_name: function.clone(), ..Default::default() },
        wasm_path,
        function,
        format,
        on_error,
        limits: Limits { memory_max, call_timeout: timeout, ..Limits::default() },
        engine: EngineOptions { compiler, interruptible: timeout.is_some(), cache_dir },
    })
}

impl Filter for Plugin {
    const INFO: PluginInfo = PluginInfo {
        name: c"wasm_wasmer",
        description: c"WASM program filter (wasmer)",
        properties: PROPERTIES,
    };

    fn init(instance: &FilterInstance, properties: &Properties) -> flb_plugin::Result<Self> {
        let config = config_from(properties)?;
        let mut filter = WasmFilter::load(config)?;
        instance.logger().debug(format!("records are passed through {}", filter.describe_allocator()));
        Ok(Plugin { filter })
    }

    fn filter(&mut self, chunk: &[u8], tag: &str, out: &mut Vec<u8>) -> FilterAction {
        if self.filter.filter_chunk(chunk, tag, out) { FilterAction::Modified } else { FilterAction::NotTouched }
    }

    fn exit(&mut self) {
        let s = self.filter.stats;
        let line = format!("records: kept {} modified {} dropped {} errors {}", s.kept, s.modified, s.dropped, s.errors);
        if s.errors > 0 { log::warn!("{line}") } else { log::debug!("{line}") }
    }
}

flb_plugin::filter_plugin!(filter_wasm_wasmer_plugin, Plugin);
wasm_runtime::export_signal_chain!();
