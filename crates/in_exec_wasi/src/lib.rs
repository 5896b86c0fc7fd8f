//! `exec_wasi_wasmer`: runs a WASI command module and turns each stdout line into a record,
//! like Fluent Bit's built-in `exec_wasi` input, on wasmer.

pub mod lines;

use flb_plugin::registration::PluginInfo;
use flb_plugin::{Input, InputInstance, Kind, Properties, Property};
use std::time::Duration;

pub const PROPERTIES: &[Property] = &[
    Property::new("wasi_path", Kind::Str, "Path to the WASI command module").required(),
    Property::new("accessible_paths", Kind::CList, "Host directories the module may open (guest path = host path)").default("."),
    Property::new("parser", Kind::Str, "Parser applied to each stdout line"),
    Property::new("interval_sec", Kind::Int, "Seconds between runs").default("1"),
    Property::new("interval_nsec", Kind::Int, "Nanoseconds added to interval_sec").default("0"),
    Property::new("buf_size", Kind::Size, "Longest line in bytes; longer lines are split").default("4096"),
    Property::new("oneshot", Kind::Bool, "Run the module once").default("false"),
    Property::new("wasm_heap_size", Kind::Size, "Accepted for compatibility with the built-in; see the README").default("8192"),
    Property::new("wasm_stack_size", Kind::Size, "Accepted for compatibility with the built-in; see the README").default("8192"),
];

pub struct ExecWasi;

impl Input for ExecWasi {
    const INFO: PluginInfo = PluginInfo {
        name: c"exec_wasi_wasmer",
        description: c"Exec WASI Input (wasmer)",
        properties: PROPERTIES,
    };

    fn init(instance: &mut InputInstance, properties: &Properties) -> flb_plugin::Result<Self> {
        properties.required_str("wasi_path")?;
        let sec = properties.int("interval_sec")?.unwrap_or(1).max(0) as u64;
        let nsec = properties.int("interval_nsec")?.unwrap_or(0).max(0) as u64;
        let interval = Duration::from_secs(sec) + Duration::from_nanos(nsec);
        instance.collect_every(if interval.is_zero() { Duration::from_secs(1) } else { interval })?;
        Ok(ExecWasi)
    }

    fn collect(&mut self, instance: &InputInstance) -> flb_plugin::Result<()> {
        // Foundation stage: one fixed record per tick proves the host path end to end.
        // v2 event: [[EventTime(1,0), {}], {"wasi_stdout": "flb-wasmer"}]
        let mut rec = vec![0x92, 0x92, 0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0x81, 0xab];
        rec.extend_from_slice(b"wasi_stdout");
        rec.push(0xaa);
        rec.extend_from_slice(b"flb-wasmer");
        instance.append(&rec)
    }
}

flb_plugin::input_plugin!(in_exec_wasi_wasmer_plugin, ExecWasi);
flb_plugin::proxy_input!(ExecWasi);
