//! `exec_wasi_wasmer`: runs a WASI command module and turns each stdout line into a record,
//! like Fluent Bit's built-in `exec_wasi` input, on wasmer.
//!
//! Unlike the built-in, the module is compiled once (at start-up), every run happens on a
//! thread of our own (never blocking Fluent Bit's engine), runs are time-limited, stderr goes
//! to the Fluent Bit log, the exit status is reported, and what a trapping or timed-out run
//! printed is kept.

pub mod run;

use flb_plugin::log::Level;
use flb_plugin::registration::PluginInfo;
use flb_plugin::{Input, InputInstance, Kind, Properties, Property};
use run::{Config, ExitPolicy, Runner, Schedule};
use std::time::Duration;

pub const PROPERTIES: &[Property] = &[
    Property::new("wasi_path", Kind::Str, "Path to the WASI command module").required(),
    Property::new("accessible_paths", Kind::CList, "Host directories the module may open (guest path = host path)").default("."),
    Property::new("read_only", Kind::Bool, "Open accessible_paths read-only (writes, creates and removals fail in the guest)").default("false"),
    Property::new("parser", Kind::Str, "Parser applied to each stdout line (an unknown name is an error at start-up)"),
    Property::new("interval_sec", Kind::Int, "Seconds between runs").default("1"),
    Property::new("interval_nsec", Kind::Int, "Nanoseconds added to interval_sec").default("0"),
    Property::new("buf_size", Kind::Size, "Longest line in bytes; longer lines are split into several records, as the built-in does").default("4096"),
    Property::new("oneshot", Kind::Bool, "Run the module once").default("false"),
    Property::new("bool", Kind::Bool, "Same as oneshot: the built-in's name for it up to v4.0.x, accepted so that its configurations work unchanged"),
    Property::new("args", Kind::Str, "Arguments passed to the module (argv[1..]), separated by spaces"),
    Property::new("env", Kind::Str, "An environment variable for the module, NAME=value; may be repeated. Nothing from the host environment is passed").multiple(),
    Property::new("timeout", Kind::Time, "Longest a run may take before it is interrupted (0: no limit)").default("60s"),
    Property::new("memory_limit", Kind::Size, "Largest guest linear memory").default("256M"),
    Property::new("stderr_log_level", Kind::Str, "Level at which the module's stderr lines are logged: error, warn, info, debug or off").default("info"),
    Property::new("exit_status", Kind::Str, "What a non-zero exit status does: warn (keep the records, log a warning), drop (discard that run's records) or ignore").default("warn"),
    Property::new("compiler", Kind::Str, "wasmer compiler: cranelift (faster code) or singlepass (faster start-up)").default("cranelift"),
    Property::new("cache_dir", Kind::Str, "Private directory for compiled modules (integrity-checked); unset: no disk cache"),
    Property::new("wasm_heap_size", Kind::Size, "Accepted for compatibility with the built-in and ignored: wasmer grows guest memory on demand up to memory_limit").default("8192"),
    Property::new("wasm_stack_size", Kind::Size, "Accepted for compatibility with the built-in and ignored: the guest's own stack is part of its memory").default("8192"),
];

pub struct ExecWasi {
    runner: Runner,
    config: Config,
}

impl Input for ExecWasi {
    const INFO: PluginInfo = PluginInfo {
        name: c"exec_wasi_wasmer",
        description: c"Exec WASI Input (wasmer)",
        properties: PROPERTIES,
    };

    fn init(instance: &mut InputInstance, p: &Properties) -> flb_plugin::Result<Self> {
        let config = Config::from_properties(p, |name| instance.parser(name).is_some() || instance.is_proxy_route())?;
        if config.parser.is_some() && instance.is_proxy_route() {
            return Err("property 'parser' is not available on the -e libexec_wasi.so route (Fluent Bit does not pass its parsers to Go-style plugins); load flb-in_exec_wasi_wasmer.so instead".into());
        }
        let sec = p.int("interval_sec")?.unwrap_or(1);
        let nsec = p.int("interval_nsec")?.unwrap_or(0);
        // As the built-in: both <= 0 means the default of one second.
        let interval = if sec <= 0 && nsec <= 0 { Duration::from_secs(1) } else { Duration::from_secs(sec.max(0) as u64) + Duration::from_nanos(nsec.max(0) as u64) };
        // Up to v4.0.x the built-in's config map names `oneshot` "bool"; `oneshot` wins if both are set.
        let name = if p.all("oneshot").is_empty() && !p.all("bool").is_empty() { "bool" } else { "oneshot" };
        let oneshot = p.bool(name)?.unwrap_or(false);
        // As the built-in's timer collector: the first run one interval after start-up.
        let every = (!oneshot).then_some(interval);
        // On the Go-proxy route Fluent Bit takes records only at its once-a-second poll, so
        // shorter intervals hold their runs for it instead of skipping ticks.
        let held = if instance.is_proxy_route() { Schedule::held_for_poll(every, Duration::from_secs(1)) } else { 1 };
        let schedule = Schedule { first: if oneshot { Duration::from_millis(100) } else { interval }, every, held };
        let runner = Runner::start(&config, schedule, instance.logger().clone())?;
        instance.collect_on_readable(runner.ready_fd())?;
        instance.logger().debug(format!("loaded {} ({})", config.wasi_path.display(), runner.module_source()));
        Ok(ExecWasi { runner, config })
    }

    fn collect(&mut self, instance: &InputInstance) -> flb_plugin::Result<()> {
        for done in self.runner.finished() {
            let parser = self.config.parser.as_deref().and_then(|n| instance.parser(n));
            let records = run::records(&done, &self.config, parser.as_ref(), instance.logger());
            if !records.is_empty() {
                instance.append(&records)?;
            }
        }
        Ok(())
    }

    fn exit(&mut self, instance: &InputInstance) {
        instance.logger().debug(format!("{} runs started", self.runner.runs()));
    }
}

/// Maps the `stderr_log_level` property.
pub fn stderr_level(v: &str) -> Option<Option<Level>> {
    if v.eq_ignore_ascii_case("off") { Some(None) } else { Level::parse(v).map(Some) }
}

impl ExitPolicy {
    pub fn parse(v: &str) -> Option<ExitPolicy> {
        match v.trim().to_ascii_lowercase().as_str() {
            "warn" => Some(ExitPolicy::Warn),
            "drop" => Some(ExitPolicy::Drop),
            "ignore" => Some(ExitPolicy::Ignore),
            _ => None,
        }
    }
}

flb_plugin::input_plugin!(in_exec_wasi_wasmer_plugin, ExecWasi);
flb_plugin::proxy_input!(ExecWasi);
wasm_runtime::export_signal_chain!();
