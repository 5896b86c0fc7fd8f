//! `flb-wasm`: the filter and the exec_wasi input without Fluent Bit (see README.md).

use clap::{Parser, Subcommand, ValueEnum};
use filter_wasm::core::{EventFormat, FilterConfig, OnError, WasmFilter};
use flb_events::{Decoder, Encoder, EventKind, EventTime, json};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use wasm_runtime::check::{Contract, Severity, check};
use wasm_runtime::{Compiler, EngineOptions, ExitStatus, Limits, Preopen, Runtime, WasiOptions, run_command};

#[derive(Parser)]
#[command(name = "flb-wasm", version, about = "Run Fluent Bit WASM filters and exec_wasi programs on wasmer, without Fluent Bit")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Msgpack,
}

#[derive(clap::Args)]
struct Common {
    /// Host directory the module may open (guest path = host path); repeatable.
    #[arg(long = "accessible-path", value_name = "DIR")]
    accessible_paths: Vec<PathBuf>,
    /// Time limit per call (filter) or per run (exec), in seconds; 0: none.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Largest guest linear memory, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_limit_mib: u64,
    /// wasmer compiler.
    #[arg(long, default_value = "cranelift")]
    compiler: String,
}

impl Common {
    fn engine_and_limits(&self) -> Result<(EngineOptions, Limits), String> {
        let compiler = Compiler::parse(&self.compiler).ok_or("--compiler: expected cranelift or singlepass")?;
        let timeout = (self.timeout > 0.0).then(|| Duration::from_secs_f64(self.timeout));
        let limits = Limits { memory_max: self.memory_limit_mib << 20, call_timeout: timeout, ..Limits::default() };
        Ok((EngineOptions { compiler, interruptible: timeout.is_some(), cache_dir: None }, limits))
    }

    fn preopens(&self, read_only: bool) -> Vec<Preopen> {
        self.accessible_paths.iter().map(|p| Preopen { path: p.clone(), read_only }).collect()
    }
}

#[derive(Subcommand)]
enum Command {
    /// Filter records through a module as the wasm_wasmer filter would; prints the records
    /// it emits (JSON lines) and a summary on stderr.
    Filter {
        module: PathBuf,
        /// The exported function called per record.
        #[arg(long)]
        function: String,
        /// How records are passed to the guest.
        #[arg(long, value_enum, default_value = "json")]
        event_format: Format,
        /// Input file (default: stdin).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Input: JSON lines (one body per line) or a Fluent Bit msgpack chunk.
        #[arg(long, value_enum, default_value = "json")]
        input_format: Format,
        /// Drop records whose call fails instead of keeping them.
        #[arg(long)]
        drop_on_error: bool,
        /// Tag passed to the guest.
        #[arg(long, default_value = "flb-wasm")]
        tag: String,
        /// Configuration for the module's flb_init export (the filter's `config` property).
        #[arg(long = "config")]
        module_config: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Runs an exec_wasi program once; prints its records (JSON lines).
    Exec {
        module: PathBuf,
        /// Argument for the program; repeatable.
        #[arg(long = "arg", allow_hyphen_values = true)]
        args: Vec<String>,
        /// NAME=value for the program's environment; repeatable.
        #[arg(long = "env")]
        env: Vec<String>,
        /// Make the accessible paths read-only.
        #[arg(long)]
        read_only: bool,
        /// Longest line (as the input's buf_size).
        #[arg(long, default_value_t = 4096)]
        buf_size: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Reports whether a module fits the filter (--function) or input (--command) contract.
    Check {
        module: PathBuf,
        #[arg(long, conflicts_with = "command")]
        function: Option<String>,
        #[arg(long)]
        command: bool,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::new().filter_level(log::LevelFilter::Info).format_target(false).format_timestamp(None).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Filter { module, function, event_format, input, input_format, drop_on_error, tag, module_config, common } => {
            filter(module, function, event_format, input, input_format, drop_on_error, &tag, module_config, &common)
        }
        Command::Exec { module, args, env, read_only, buf_size, common } => exec(module, args, env, read_only, buf_size, &common),
        Command::Check { module, function, command } => check_module(module, function, command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flb-wasm: error: {e}");
            ExitCode::from(1)
        }
    }
}

const CHUNK_RECORDS: usize = 1024;

#[allow(clippy::too_many_arguments)]
fn filter(
    module: PathBuf,
    function: String,
    format: Format,
    input: Option<PathBuf>,
    input_format: Format,
    drop_on_error: bool,
    tag: &str,
    module_config: Option<String>,
    common: &Common,
) -> Result<ExitCode, String> {
    let (engine, limits) = common.engine_and_limits()?;
    let config = FilterConfig {
        wasi: WasiOptions { preopens: common.preopens(false), program_name: function.clone(), ..Default::default() },
        wasm_path: module,
        function,
        format: match format {
            Format::Json => EventFormat::Json,
            Format::Msgpack => EventFormat::Msgpack,
        },
        on_error: if drop_on_error { OnError::Drop } else { OnError::Keep },
        limits,
        engine,
        init_config: module_config.map(String::into_bytes),
    };
    let mut filter = WasmFilter::load(config)?;
    let reader: Box<dyn Read> = match &input {
        Some(p) => Box::new(std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Box::new(std::io::stdin().lock()),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut emit = |chunk: &[u8], filter: &mut WasmFilter| -> Result<(), String> {
        let mut filtered = Vec::new();
        let changed = filter.filter_chunk(chunk, tag, &mut filtered);
        print_chunk(if changed { &filtered } else { chunk }, &mut out)
    };
    let progress = std::io::stderr().is_terminal();
    let mut total = 0usize;
    match input_format {
        Format::Msgpack => {
            let mut chunk = Vec::new();
            std::io::BufReader::new(reader).read_to_end(&mut chunk).map_err(|e| e.to_string())?;
            total = Decoder::new(&chunk).count();
            emit(&chunk, &mut filter)?;
        }
        Format::Json => {
            let mut enc = Encoder::new();
            let mut body = Vec::new();
            let mut in_chunk = 0;
            for (n, line) in std::io::BufReader::new(reader).lines().enumerate() {
                let line = line.map_err(|e| e.to_string())?;
                if line.trim().is_empty() {
                    continue;
                }
                body.clear();
                json::from_json(line.as_bytes(), &mut body).map_err(|e| match e {
                    json::JsonError::NotAnObject => format!("input line {}: a record body must be a JSON object", n + 1),
                    e => format!("input line {}: {e}", n + 1),
                })?;
                enc.record(EventTime::now(), flb_events::EMPTY_MAP, &body).map_err(|e| e.to_string())?;
                in_chunk += 1;
                total += 1;
                if in_chunk == CHUNK_RECORDS {
                    emit(&enc.buf, &mut filter)?;
                    enc.clear();
                    in_chunk = 0;
                    if progress && total % (100 * CHUNK_RECORDS) == 0 {
                        eprint!("\rflb-wasm: {total} records");
                    }
                }
            }
            if in_chunk > 0 {
                emit(&enc.buf, &mut filter)?;
            }
        }
    }
    drop(emit);
    out.flush().map_err(|e| e.to_string())?;
    let s = filter.stats;
    if progress && total >= 100 * CHUNK_RECORDS {
        eprintln!();
    }
    eprintln!("flb-wasm: {total} records: kept {} modified {} dropped {} errors {}", s.kept, s.modified, s.dropped, s.errors);
    Ok(if s.errors > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}

fn print_chunk(chunk: &[u8], out: &mut impl Write) -> Result<(), String> {
    let mut line = Vec::new();
    for ev in Decoder::new(chunk) {
        let ev = ev.map_err(|e| e.to_string())?;
        if ev.kind != EventKind::Record {
            continue;
        }
        line.clear();
        json::to_json(ev.body, &mut line).map_err(|e| e.to_string())?;
        line.push(b'\n');
        out.write_all(&line).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn exec(module: PathBuf, args: Vec<String>, env: Vec<String>, read_only: bool, buf_size: usize, common: &Common) -> Result<ExitCode, String> {
    let (engine, limits) = common.engine_and_limits()?;
    let mut env_pairs = Vec::new();
    for kv in env {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("--env '{kv}': expected NAME=value"))?;
        env_pairs.push((k.to_owned(), v.to_owned()));
    }
    let loaded = Runtime::global().load(&module, &engine).map_err(|e| format!("{}: {e}", module.display()))?;
    check(&loaded.module, &Contract::Command).into_result().map_err(|e| format!("{}: {e}", module.display()))?;
    let program_name = module.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let wasi = WasiOptions { args, env: env_pairs, preopens: common.preopens(read_only), program_name };
    let outcome = run_command(&loaded, &wasi, &limits).map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in wasm_runtime::lines::record_lines(&outcome.stdout, buf_size) {
        let rec = serde_json::json!({ "wasi_stdout": String::from_utf8_lossy(line) });
        writeln!(out, "{rec}").map_err(|e| e.to_string())?;
    }
    for line in outcome.stderr.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        eprintln!("flb-wasm: guest stderr: {}", String::from_utf8_lossy(line));
    }
    Ok(match outcome.status {
        ExitStatus::Exited(0) => ExitCode::SUCCESS,
        ExitStatus::Exited(n) => {
            eprintln!("flb-wasm: the program exited with status {n}");
            ExitCode::from(3)
        }
        ExitStatus::Trapped(t) => {
            eprintln!("flb-wasm: the program trapped: {} ({})", t.kind, t.message);
            ExitCode::from(3)
        }
        ExitStatus::TimedOut(d) => {
            eprintln!("flb-wasm: the program was interrupted at the time limit of {d:?}");
            ExitCode::from(3)
        }
    })
}

fn check_module(module: PathBuf, function: Option<String>, command: bool) -> Result<ExitCode, String> {
    let loaded = Runtime::global().load(&module, &EngineOptions::default()).map_err(|e| format!("{}: {e}", module.display()))?;
    let contract = match (function, command) {
        (Some(function), _) => Contract::Filter { function },
        (None, true) => Contract::Command,
        // Guess: a module with an entry point is a command.
        (None, false) if wasm_runtime::check::is_command(&loaded.module) => Contract::Command,
        (None, false) => return Err("a library module: say which export the filter calls with --function NAME (or --command)".into()),
    };
    let report = check(&loaded.module, &contract);
    let what = match &contract {
        Contract::Command => "an exec_wasi program".to_owned(),
        Contract::Filter { function } => format!("a filter calling '{function}'"),
    };
    for f in &report.findings {
        let sev = match f.severity {
            Severity::Info => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        println!("{sev}: {}", f.message);
    }
    if report.ok() {
        println!("ok: {} fits as {what}", module.display());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("no: {} does not fit as {what}", module.display());
        Ok(ExitCode::from(1))
    }
}
