//! The filter's work on a chunk, independent of Fluent Bit's C ABI (the `flb-wasm` CLI uses
//! it too, so its output matches the plugin's).
//!
//! Guest contract (the built-in `wasm` filter's): an exported
//! `f(tag_ptr, tag_len, time_sec, time_nsec, record_ptr, record_len) -> result_ptr`.
//! JSON mode: the body as NUL-terminated JSON in, a NUL-terminated JSON object out (empty
//! string: drop). msgpack mode: the body map as msgpack in; out, one self-delimited msgpack
//! object read at the returned address (never with strlen, so zero bytes survive); a first
//! byte of 0 (the built-in's empty string) drops the record. The host keeps the timestamp and
//! metadata; group markers pass through byte for byte.

use flb_events::{DecodeError, Decoder, Encoder, Event, EventKind, json, object_len};
use std::time::{Duration, Instant};
use wasm_runtime::check::{Contract, check};
use wasm_runtime::{
    EngineOptions, Error, Instance, Limits, LoadedModule, Runtime, TypedFunction, WasiOptions,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFormat {
    Json,
    Msgpack,
}

impl EventFormat {
    pub fn parse(s: &str) -> Option<EventFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Some(EventFormat::Json),
            "msgpack" => Some(EventFormat::Msgpack),
            _ => None,
        }
    }
}

/// What happens to a record whose guest call fails (trap, timeout, bad result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Pass the original record on (nothing is lost).
    Keep,
    /// Drop it, as the built-in does.
    Drop,
}

impl OnError {
    pub fn parse(s: &str) -> Option<OnError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "keep" => Some(OnError::Keep),
            "drop" => Some(OnError::Drop),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FilterConfig {
    pub wasm_path: std::path::PathBuf,
    pub function: String,
    pub format: EventFormat,
    pub on_error: OnError,
    pub wasi: WasiOptions,
    pub limits: Limits,
    pub engine: EngineOptions,
    /// Per-instance configuration for the module's `flb_init(ptr, len) -> i32` export.
    pub init_config: Option<Vec<u8>>,
}

/// Counts of what the filter did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub kept: u64,
    pub modified: u64,
    pub dropped: u64,
    pub errors: u64,
}

/// The guest function, by the contract its signature announces.
enum GuestFn {
    /// The built-in's: `(tag, tag_len, sec, nsec, record, record_len) -> result`.
    Classic(TypedFunction<(i32, i32, i32, i32, i32, i32), i32>),
    /// Extended: `(event, len) -> (len << 32 | ptr)`: one whole event in (timestamp,
    /// metadata, body as msgpack), zero or more events out (docs/extended-abi.md).
    Event(TypedFunction<(i32, i32), i64>),
}

/// One loaded guest, kept for the life of the filter instance.
pub struct WasmFilter {
    config: FilterConfig,
    instance: Instance,
    func: GuestFn,
    /// The module announced `flb_abi_version() == 2`: `func` takes a batch of events.
    batch: bool,
    enc: Encoder,
    /// The record as JSON for the guest (json format), and what it takes to read a result.
    json: json::RecordJson,
    pub stats: Stats,
    errors: ErrorLog,
}

/// Result of one record.
enum Outcome {
    Keep,
    Drop,
    /// The record with a new body (classic ABI), already appended to `enc`.
    Replaced,
    /// Whole events (extended ABI), already appended to `enc`.
    Events,
}

impl WasmFilter {
    pub fn load(config: FilterConfig) -> Result<WasmFilter, String> {
        let module: LoadedModule = Runtime::global()
            .load(&config.wasm_path, &config.engine)
            .map_err(|e| format!("property 'wasm_path': {e}"))?;
        check(
            &module.module,
            &Contract::Filter {
                function: config.function.clone(),
            },
        )
        .into_result()
        .map_err(|e| format!("{}: {e}", config.wasm_path.display()))?;
        let mut instance = Instance::new(&module, Some(&config.wasi), &config.limits, |_| {
            wasmer_imports()
        })
        .map_err(|e| format!("{}: {e}", config.wasm_path.display()))?;
        let func = match instance.typed(&config.function) {
            Ok(f) => GuestFn::Classic(f),
            Err(_) => GuestFn::Event(
                instance
                    .typed(&config.function)
                    .map_err(|e| e.to_string())?,
            ),
        };
        init_guest(&mut instance, config.init_config.as_deref())?;
        let batch = abi_version(&mut instance)? == 2;
        if batch && !matches!(func, GuestFn::Event(_)) {
            return Err(format!(
                "'{}': flb_abi_version() is 2 (batch), which needs the signature (i32 events, i32 len) -> i64",
                config.function
            ));
        }
        Ok(WasmFilter {
            config,
            instance,
            func,
            batch,
            enc: Encoder::new(),
            json: json::RecordJson::default(),
            stats: Stats::default(),
            errors: ErrorLog::default(),
        })
    }

    pub fn describe_allocator(&mut self) -> &'static str {
        self.instance.allocator().describe()
    }

    /// Filters a chunk into `out`. Returns false when nothing changed (then `out` is empty
    /// and the chunk should pass on untouched).
    pub fn filter_chunk(&mut self, chunk: &[u8], tag: &str, out: &mut Vec<u8>) -> bool {
        wasm_runtime::signals::ensure_armed();
        self.enc.clear();
        let changed = if self.batch {
            self.filter_batches(chunk)
        } else {
            self.filter_records(chunk, tag)
        };
        self.log_guest_output();
        if changed {
            std::mem::swap(out, &mut self.enc.buf);
        }
        changed
    }

    /// One guest call per record (the classic and the whole-event contracts). Unchanged
    /// events are not copied as they come: the run of them since the last change goes into
    /// `enc` only when a change follows it, so a chunk nothing changes is never copied.
    fn filter_records(&mut self, chunk: &[u8], tag: &str) -> bool {
        let mut changed = false;
        // Where the run of unchanged events not yet in `enc` starts in `chunk`.
        let mut unchanged_from = 0;
        let mut events = Decoder::new(chunk);
        while let Some(ev) = events.next() {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    // The rest stays in the unchanged run.
                    self.report_malformed(&e);
                    break;
                }
            };
            if ev.kind != EventKind::Record {
                continue;
            }
            // A call that changes the record appends it to `enc` itself, from here.
            let start = self.enc.buf.len();
            let called = match self.func {
                GuestFn::Classic(_) => self.call(tag, &ev),
                GuestFn::Event(_) => self.call_event(&[ev.raw]),
            };
            let outcome = called.unwrap_or_else(|e| {
                self.enc.buf.truncate(start);
                self.failed(&e, "record")
            });
            match outcome {
                Outcome::Keep => {
                    self.stats.kept += 1;
                    continue;
                }
                Outcome::Events if self.enc.buf[start..] == *ev.raw => {
                    self.stats.kept += 1;
                    self.enc.buf.truncate(start);
                    continue;
                }
                Outcome::Drop => self.stats.dropped += 1,
                Outcome::Events | Outcome::Replaced => self.stats.modified += 1,
            }
            // The unchanged run goes in before what the call appended.
            let run = &chunk[unchanged_from..ev.offset];
            self.enc.buf.extend_from_slice(run);
            self.enc.buf[start..].rotate_right(run.len());
            unchanged_from = ev.offset + ev.raw.len();
            changed = true;
        }
        if changed {
            self.enc.raw(&chunk[unchanged_from..]);
        }
        changed
    }

    /// Counts and reports a failed call; returns what `on_error` makes of it.
    fn failed(&mut self, e: &str, what: &str) -> Outcome {
        self.stats.errors += 1;
        let (action, policy, outcome) = match self.config.on_error {
            OnError::Keep => ("kept", "keep", Outcome::Keep),
            OnError::Drop => ("dropped", "drop", Outcome::Drop),
        };
        self.errors
            .report(&format!("{e} ({what} {action}, on_error {policy})"));
        outcome
    }

    /// Reports an undecodable record; the caller keeps the rest of the chunk (from the bad
    /// record on) as it was rather than lose it.
    fn report_malformed(&mut self, e: &DecodeError) {
        self.errors.report(&format!(
            "malformed record in chunk: {e}; passing the rest of the chunk on unchanged"
        ));
    }

    /// Calls the guest for one record (a changed record is appended to `enc` here).
    fn call(&mut self, tag: &str, ev: &Event) -> Result<Outcome, String> {
        let body = ev.body;
        let input: &[u8] = match self.config.format {
            EventFormat::Json => self
                .json
                .encode(body)
                .map_err(|e| format!("cannot convert the record to JSON: {e}"))?,
            EventFormat::Msgpack => body,
        };
        let nul = self.config.format == EventFormat::Json;
        // Tag and record go into two buffers kept in guest memory across records, so a
        // record costs one guest call, not five (malloc x2, the filter, free x2).
        let placed = (|| {
            let tag_ptr = self.instance.write_reused(0, &[tag.as_bytes()], true)?;
            let rec_ptr = self.instance.write_reused(1, &[input], nul)?;
            let GuestFn::Classic(f) = &self.func else {
                unreachable!("classic call on an extended guest")
            };
            let ret = self.instance.call(|s| {
                f.call(
                    s,
                    tag_ptr as i32,
                    tag.len() as i32,
                    ev.time.sec as i32,
                    ev.time.nsec as i32,
                    rec_ptr as i32,
                    input.len() as i32,
                )
            })?;
            Ok((ret as u32, rec_ptr))
        })();
        let result = match placed {
            // The guest handed back the record it was given, untouched: keep it as it was
            // without parsing it again.
            Ok((ptr, rec_ptr))
                if ptr == rec_ptr
                    && self.instance.read(ptr, input.len()).is_ok_and(|now| now == input) =>
            {
                Ok(Outcome::Keep)
            }
            Ok((ptr, _)) => self.read_result(ptr, ev),
            Err(e) => Err(describe(&e)),
        };
        self.release()?;
        result
    }

    /// Frees what the call placed in guest memory.
    fn release(&mut self) -> Result<(), String> {
        self.instance
            .release_all()
            .map_err(|e| format!("guest free() failed: {}", describe(&e)))
    }

    /// Batch ABI: one call per run of records between group markers. The guest gets the
    /// run, preceded by the group's start marker when the run is inside a group (so it can
    /// read the group metadata), and returns plain records; the host writes the markers
    /// itself, so the group structure cannot be corrupted.
    fn filter_batches(&mut self, chunk: &[u8]) -> bool {
        let mut changed = false;
        // Byte ranges in `chunk`: the current group's start marker, the current run.
        let mut group: Option<std::ops::Range<usize>> = None;
        let mut run = 0..0;
        let mut run_len = 0u64;
        let mut events = Decoder::new(chunk);
        while let Some(ev) = events.next() {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    changed |= self.flush_batch(chunk, group.clone(), run.clone(), run_len);
                    self.report_malformed(&e);
                    self.enc.raw(events.rest());
                    return changed;
                }
            };
            let range = ev.offset..ev.offset + ev.raw.len();
            if ev.kind == EventKind::Record {
                if run_len == 0 {
                    run.start = range.start;
                }
                run.end = range.end;
                run_len += 1;
                continue;
            }
            changed |= self.flush_batch(chunk, group.clone(), run.clone(), run_len);
            run_len = 0;
            self.enc.raw(ev.raw);
            group = (ev.kind == EventKind::GroupStart).then_some(range);
        }
        changed | self.flush_batch(chunk, group, run, run_len)
    }

    /// One batch call for the `n` records in `chunk[run]`; returns whether they changed.
    fn flush_batch(
        &mut self,
        chunk: &[u8],
        group: Option<std::ops::Range<usize>>,
        run: std::ops::Range<usize>,
        n: u64,
    ) -> bool {
        if n == 0 {
            return false;
        }
        let run = &chunk[run];
        let start = self.enc.buf.len();
        // The guest's input: the group start marker, then the run.
        let called = self.call_event(&[group.map_or(&[][..], |g| &chunk[g]), run]);
        let outcome = called.unwrap_or_else(|e| {
            self.enc.buf.truncate(start);
            self.failed(&e, &format!("batch of {n} records"))
        });
        match outcome {
            Outcome::Events if self.enc.buf[start..] == *run => {
                self.stats.kept += n;
                false
            }
            Outcome::Events => {
                self.stats.modified += n;
                true
            }
            Outcome::Keep => {
                self.stats.kept += n;
                self.enc.raw(run);
                false
            }
            Outcome::Drop => {
                self.stats.dropped += n;
                true
            }
            Outcome::Replaced => unreachable!("call_event never replaces a body"),
        }
    }

    /// Extended ABI: one whole event (or a batch) in, given in parts that go into guest
    /// memory one after the other; zero or more events out (appended to `enc`). The output
    /// must decode as plain records: guests cannot open or close groups.
    fn call_event(&mut self, input: &[&[u8]]) -> Result<Outcome, String> {
        let result = self.call_event_inner(input);
        // The input's space in guest memory (a host-managed region when the guest has no
        // malloc) is reused by the next call: without this it grew with every call.
        self.release()?;
        result
    }

    fn call_event_inner(&mut self, input: &[&[u8]]) -> Result<Outcome, String> {
        let len: usize = input.iter().map(|p| p.len()).sum();
        let placed = (|| {
            let p = self.instance.write_reused(1, input, false)?;
            let GuestFn::Event(f) = &self.func else {
                unreachable!("event call on a classic guest")
            };
            self.instance
                .call(|s| f.call(s, p as i32, len as i32))
        })();
        let r = placed.map_err(|e| describe(&e))?;
        if r < 0 {
            return Err(format!("the guest reported error {r}"));
        }
        let (ptr, len) = ((r as u64 & 0xffff_ffff) as u32, (r as u64 >> 32) as usize);
        if len == 0 {
            return Ok(Outcome::Drop);
        }
        let bytes = self
            .instance
            .read(ptr, len)
            .map_err(|e| format!("bad guest result: {e}"))?;
        for ev in Decoder::new(bytes) {
            let ev = ev.map_err(|e| format!("bad guest result: {e}"))?;
            if ev.kind != EventKind::Record {
                return Err(
                    "bad guest result: a group marker (guests cannot open or close groups)".into(),
                );
            }
        }
        self.enc.raw(bytes);
        Ok(Outcome::Events)
    }

    /// Reads the guest's result for the record `ev` and appends the changed record to `enc`,
    /// its new body converted or copied straight from guest memory.
    fn read_result(&mut self, ptr: u32, ev: &Event) -> Result<Outcome, String> {
        if ptr == 0 {
            // C guests return NULL when they fail (e.g. malloc did); an empty string drops.
            return Err("the guest returned a null pointer".into());
        }
        let mem = self.instance.memory().map_err(|e| e.to_string())?;
        let at = mem
            .get(ptr as usize..)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                format!(
                    "the guest returned {ptr:#x}, outside its memory ({} bytes)",
                    mem.len()
                )
            })?;
        let result = match self.config.format {
            EventFormat::Json => {
                let end = memchr::memchr(0, at).ok_or_else(|| {
                    format!("the guest's result at {ptr:#x} has no NUL terminator")
                })?;
                if end == 0 {
                    return Ok(Outcome::Drop);
                }
                &at[..end]
            }
            EventFormat::Msgpack => {
                if at[0] == 0 {
                    return Ok(Outcome::Drop);
                }
                let len = object_len(at)
                    .map_err(|e| format!("bad guest result: the msgpack at {ptr:#x} is {e}"))?;
                if !flb_events::is_map(at) {
                    return Err(format!(
                        "bad guest result: a msgpack {} instead of a map",
                        msgpack_kind(at[0])
                    ));
                }
                &at[..len]
            }
        };
        let start = match self.enc.record_head(ev.time, ev.metadata) {
            Ok(start) => start,
            Err(e) => {
                // Only a record that came in invalid gets here; it passes on as it was.
                self.errors
                    .report(&format!("cannot re-encode a record: {e}; record kept"));
                return Ok(Outcome::Keep);
            }
        };
        let body_at = self.enc.buf.len();
        match self.config.format {
            EventFormat::Json => {
                if let Err(e) = self.json.decode(ev.body, result, &mut self.enc.buf) {
                    self.enc.buf.truncate(start);
                    return Err(format!("bad guest result: {e}"));
                }
            }
            EventFormat::Msgpack => self.enc.buf.extend_from_slice(result),
        }
        if self.enc.buf[body_at..] == *ev.body {
            self.enc.buf.truncate(start);
            return Ok(Outcome::Keep);
        }
        Ok(Outcome::Replaced)
    }

    fn log_guest_output(&mut self) {
        for (stream, (bytes, _)) in [
            ("stdout", self.instance.take_stdout()),
            ("stderr", self.instance.take_stderr()),
        ] {
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                log::info!("guest {stream}: {}", String::from_utf8_lossy(line));
            }
        }
    }
}

/// The extended-ABI version a module announces with `flb_abi_version() -> i32` (1 if absent).
fn abi_version(instance: &mut Instance) -> Result<i32, String> {
    match instance.typed::<(), i32>("flb_abi_version") {
        Ok(f) => match instance.call(|s| f.call(s)) {
            Ok(v @ 1..=2) => Ok(v),
            Ok(v) => Err(format!(
                "flb_abi_version() returned {v}; this filter knows versions 1 and 2"
            )),
            Err(e) => Err(format!("flb_abi_version failed: {}", describe(&e))),
        },
        Err(_) => Ok(1),
    }
}

/// Passes the per-instance configuration to the module's `flb_init` export, once. The
/// module refuses it by returning non-zero (and says why with `flb.log`).
fn init_guest(instance: &mut Instance, config: Option<&[u8]>) -> Result<(), String> {
    let Ok(init) = instance.typed::<(i32, i32), i32>("flb_init") else {
        return match config {
            Some(_) => Err("property 'config': the module has no flb_init(ptr, len) -> i32 export to receive it".into()),
            None => Ok(()),
        };
    };
    let bytes = config.unwrap_or_default();
    let result = (|| {
        let p = instance.write(&[bytes], true)?;
        instance.call(|s| init.call(s, p as i32, bytes.len() as i32))
    })();
    let _ = instance.release_all();
    match result {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!(
            "the module refused its configuration (flb_init returned {n})"
        )),
        Err(e) => Err(format!("flb_init failed: {}", describe(&e))),
    }
}

fn describe(e: &Error) -> String {
    match e {
        Error::Trap(t) => format!("guest trapped: {} ({})", t.kind, t.message),
        Error::Timeout(d) => format!("guest exceeded the time limit of {d:?}"),
        Error::Exit(c) => format!("guest called proc_exit({c})"),
        e => e.to_string(),
    }
}

fn msgpack_kind(b: u8) -> &'static str {
    match b {
        0x90..=0x9f | 0xdc | 0xdd => "array",
        0xa0..=0xbf | 0xd9..=0xdb => "string",
        0xc0 => "nil",
        0xc2 | 0xc3 => "boolean",
        0xca | 0xcb => "float",
        0xc4..=0xc6 => "binary",
        _ => "number or extension",
    }
}

fn wasmer_imports() -> wasm_runtime::Imports {
    wasm_runtime::Imports::new()
}

/// Errors are logged at most once a second per instance, with a count of the rest.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn report(&mut self, msg: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            log::error!(
                "{msg} (and {} more errors in the last second)",
                self.suppressed
            );
        } else {
            log::error!("{msg}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}
