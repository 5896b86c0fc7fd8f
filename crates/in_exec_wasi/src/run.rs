//! Running the module off Fluent Bit's threads, and turning a run into records.

use wasm_runtime::lines::record_lines;
use flb_events::{EMPTY_MAP, Encoder, EventTime, str_map};
use flb_plugin::Properties;
use flb_plugin::input::Parser;
use flb_plugin::log::{Level, Logger};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasm_runtime::check::{Contract, check};
use wasm_runtime::{CommandOutcome, Compiler, EngineOptions, ExitStatus, Limits, LoadedModule, Preopen, Runtime, WasiOptions, Command};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitPolicy {
    Warn,
    Drop,
    Ignore,
}

/// The validated configuration of one instance.
#[derive(Clone, Debug)]
pub struct Config {
    pub wasi_path: PathBuf,
    pub wasi: WasiOptions,
    pub parser: Option<String>,
    pub buf_size: usize,
    pub limits: Limits,
    pub engine: EngineOptions,
    pub stderr_level: Option<Level>,
    pub exit_policy: ExitPolicy,
}

fn bad(prop: &str, msg: impl std::fmt::Display) -> flb_plugin::Error {
    flb_plugin::Error(format!("property '{prop}': {msg}"))
}

impl Config {
    /// Reads and validates every property; `parser_exists` asks the host.
    pub fn from_properties(p: &Properties, parser_exists: impl Fn(&str) -> bool) -> flb_plugin::Result<Config> {
        let wasi_path = PathBuf::from(p.required_str("wasi_path")?);
        std::fs::File::open(&wasi_path).map_err(|e| bad("wasi_path", format!("cannot read {}: {e}", wasi_path.display())))?;
        let read_only = p.bool("read_only")?.unwrap_or(false);
        let preopens = p.list("accessible_paths")?.into_iter().map(|path| Preopen { path: path.into(), read_only }).collect::<Vec<_>>();
        for po in &preopens {
            if !po.path.is_dir() {
                return Err(bad("accessible_paths", format!("{} is not a directory", po.path.display())));
            }
        }
        let parser = p.str("parser")?.filter(|s| !s.trim().is_empty());
        if let Some(name) = &parser {
            if !parser_exists(name) {
                return Err(bad("parser", format!("no parser named '{name}' is defined (check parsers_file)")));
            }
        }
        let buf_size = p.size("buf_size")?.unwrap_or(4096);
        if !(2..=64 << 20).contains(&buf_size) {
            return Err(bad("buf_size", format!("{buf_size} is out of range (2 bytes to 64M)")));
        }
        let args = p.str("args")?.map(|a| a.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
        let mut env = Vec::new();
        for kv in p.all("env") {
            let (k, v) = kv.split_once('=').ok_or_else(|| bad("env", format!("'{kv}' is not NAME=value")))?;
            env.push((k.trim().to_owned(), v.to_owned()));
        }
        let timeout = p.time("timeout")?.filter(|d| !d.is_zero());
        let memory_max = p.size("memory_limit")?.unwrap_or(256 << 20);
        if memory_max < 65536 {
            return Err(bad("memory_limit", "must be at least 64k (one wasm page)"));
        }
        let stderr_level = crate::stderr_level(&p.str("stderr_log_level")?.unwrap_or_default()).ok_or_else(|| bad("stderr_log_level", "expected error, warn, info, debug or off"))?;
        let exit_policy = ExitPolicy::parse(&p.str("exit_status")?.unwrap_or_default()).ok_or_else(|| bad("exit_status", "expected warn, drop or ignore"))?;
        let compiler = Compiler::parse(&p.str("compiler")?.unwrap_or_default()).ok_or_else(|| bad("compiler", "expected cranelift or singlepass"))?;
        let cache_dir = p.str("cache_dir")?.filter(|s| !s.trim().is_empty()).map(PathBuf::from);
        let program_name = wasi_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Config {
            wasi: WasiOptions { args, env, preopens, program_name },
            wasi_path,
            parser,
            buf_size: buf_size as usize,
            limits: Limits { memory_max, call_timeout: timeout, ..Limits::default() },
            engine: EngineOptions { compiler, interruptible: timeout.is_some(), cache_dir },
            stderr_level,
            exit_policy,
        })
    }

    /// Compiles the module (once per process for the same file) and checks it is a command.
    pub fn load(&self) -> flb_plugin::Result<LoadedModule> {
        let module = Runtime::global().load(&self.wasi_path, &self.engine).map_err(|e| bad("wasi_path", e))?;
        check(&module.module, &Contract::Command).into_result().map_err(|e| bad("wasi_path", format!("{}: {e}", self.wasi_path.display())))?;
        Ok(module)
    }
}

/// The result of one run.
pub struct Finished {
    pub outcome: Result<CommandOutcome, String>,
    /// When the run ended: the time of its records (a parser's time field wins), also when
    /// Fluent Bit takes them later.
    pub ended: EventTime,
}

/// When runs happen: the first after `first`, then every `every` (none: only once).
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub first: Duration,
    pub every: Option<Duration>,
    /// Ended runs that may wait for Fluent Bit to take them before ticks are skipped: 1
    /// where it collects as soon as a run ends; on the Go-proxy route, which polls once a
    /// second, enough runs for that second (see [`Schedule::held_for_poll`]).
    pub held: usize,
}

/// Most output held for Fluent Bit at once; further ticks are skipped.
const HELD_BYTES_MAX: usize = 64 << 20;

impl Schedule {
    /// How many runs end between two polls `poll` apart (plus one for jitter), at most 100.
    pub fn held_for_poll(every: Option<Duration>, poll: Duration) -> usize {
        match every {
            Some(every) if !every.is_zero() => (poll.as_nanos().div_ceil(every.as_nanos()) as usize + 1).clamp(1, 100),
            _ => 1,
        }
    }
}

/// A worker thread that runs the module on its own schedule; results come back through a
/// channel, announced on a pipe the host's event loop watches. It keeps time itself, so
/// Fluent Bit's engine wakes once per run (for the records), not also for a timer tick and a
/// hand-off.
pub struct Runner {
    /// Never sent on: dropping it stops the thread (after a run in progress).
    _stop: Sender<()>,
    results: Receiver<Finished>,
    ready: OwnedFd,
    /// The pipe's write end, shared with the run thread: it must stay open after a last
    /// (oneshot) run ends the thread, or the read end reports end-of-file to Fluent Bit's
    /// event loop forever and it spins.
    _notify: Arc<OwnedFd>,
    /// Results sent and not yet taken by `finished`, and their stdout bytes.
    outstanding: Arc<AtomicUsize>,
    outstanding_bytes: Arc<AtomicUsize>,
    runs: Arc<AtomicU64>,
    source: &'static str,
}

impl Runner {
    pub fn start(config: &Config, schedule: Schedule, logger: Logger) -> flb_plugin::Result<Runner> {
        let module = config.load()?;
        let source = match module.source {
            wasm_runtime::ModuleSource::Compiled => "compiled",
            wasm_runtime::ModuleSource::MemoryCache => "already compiled",
            wasm_runtime::ModuleSource::DiskCache => "from the disk cache",
        };
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two fds we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err("cannot create the wake-up pipe".into());
        }
        let (ready, notify) = unsafe { (OwnedFd::from_raw_fd(fds[0]), Arc::new(OwnedFd::from_raw_fd(fds[1]))) };
        let notify_run = notify.clone();
        let (stop_tx, stop_rx) = channel::<()>();
        let (res_tx, res_rx) = channel::<Finished>();
        let (outstanding, outstanding_bytes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let runs = Arc::new(AtomicU64::new(0));
        let (outstanding2, outstanding_bytes2, runs2) = (outstanding.clone(), outstanding_bytes.clone(), runs.clone());
        // The command is made on its thread (it keeps a wasmer store, which stays there);
        // whether that worked comes back before start-up goes on.
        let (made_tx, made_rx) = std::sync::mpsc::sync_channel::<Result<(), String>>(1);
        let (wasi, limits) = (config.wasi.clone(), config.limits.clone());
        std::thread::Builder::new()
            .name("flb-wasi-run".into())
            .spawn(move || {
                logger.install_on_this_thread();
                let mut command = match Command::new(&module, &wasi, &limits) {
                    Ok(c) => c,
                    Err(e) => return drop(made_tx.send(Err(e.to_string()))),
                };
                let _ = made_tx.send(Ok(()));
                let mut next = Instant::now() + schedule.first;
                loop {
                    let wait = next.saturating_duration_since(Instant::now());
                    if !wait.is_zero() && stop_rx.recv_timeout(wait) != Err(RecvTimeoutError::Timeout) {
                        return;
                    }
                    // While Fluent Bit has not taken the results it may wait for (the input is
                    // paused, or the engine is behind) the tick is skipped, as a paused
                    // collector's.
                    if outstanding2.load(Ordering::Acquire) < schedule.held && outstanding_bytes2.load(Ordering::Acquire) < HELD_BYTES_MAX {
                        runs2.fetch_add(1, Ordering::Relaxed);
                        let outcome = command.run().map_err(|e| e.to_string());
                        let ended = EventTime::now();
                        let bytes = outcome.as_ref().map_or(0, |o| o.stdout.len());
                        outstanding_bytes2.fetch_add(bytes, Ordering::AcqRel);
                        outstanding2.fetch_add(1, Ordering::AcqRel);
                        if res_tx.send(Finished { outcome, ended }).is_err() {
                            return;
                        }
                        // SAFETY: writing one byte to our own non-blocking pipe.
                        unsafe { libc::write(notify_run.as_raw_fd(), b"!".as_ptr() as *const _, 1) };
                    }
                    let Some(every) = schedule.every else { return };
                    // A run longer than the interval delays the next to the following tick.
                    let now = Instant::now();
                    while next <= now {
                        next += every;
                    }
                }
            })
            .map_err(|e| flb_plugin::Error(format!("cannot start the run thread: {e}")))?;
        match made_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(bad("wasi_path", e)),
            Err(_) => return Err("the run thread ended at start-up".into()),
        }
        Ok(Runner { _stop: stop_tx, results: res_rx, ready, _notify: notify, outstanding, outstanding_bytes, runs, source })
    }

    pub fn ready_fd(&self) -> RawFd {
        self.ready.as_raw_fd()
    }

    pub fn module_source(&self) -> &'static str {
        self.source
    }

    /// Runs started so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Runs that ended since the last call.
    pub fn finished(&self) -> Vec<Finished> {
        let mut buf = [0u8; 64];
        // SAFETY: draining our own non-blocking pipe; a short read means it is empty (one
        // byte per run), so there is no second read just to see EAGAIN.
        while unsafe { libc::read(self.ready.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len()) } == buf.len() as isize {}
        let done: Vec<Finished> = self.results.try_iter().collect();
        let bytes = done.iter().map(|d| d.outcome.as_ref().map_or(0, |o| o.stdout.len())).sum();
        self.outstanding_bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.outstanding.fetch_sub(done.len(), Ordering::AcqRel);
        done
    }
}

/// Turns one run into encoded records, logging how it ended and its stderr.
pub fn records(done: &Finished, config: &Config, parser: Option<&Parser>, log: &Logger) -> Vec<u8> {
    let out = match &done.outcome {
        Ok(o) => o,
        Err(e) => {
            log.error(format!("cannot run {}: {e}", config.wasi_path.display()));
            return Vec::new();
        }
    };
    if let Some(level) = config.stderr_level {
        for line in out.stderr.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            log.log(level, format!("stderr: {}", String::from_utf8_lossy(line)));
        }
    }
    let kept = record_lines(&out.stdout, config.buf_size).count();
    match &out.status {
        ExitStatus::Exited(0) => {}
        ExitStatus::Exited(n) => match config.exit_policy {
            ExitPolicy::Warn => log.warn(format!("{} exited with status {n}; keeping its {kept} lines", config.wasi_path.display())),
            ExitPolicy::Drop => {
                log.warn(format!("{} exited with status {n}; dropping its {kept} lines (exit_status drop)", config.wasi_path.display()));
                return Vec::new();
            }
            ExitPolicy::Ignore => {}
        },
        ExitStatus::Trapped(t) => log.error(format!("{} trapped: {} ({}); keeping the {kept} lines it printed", config.wasi_path.display(), t.kind, t.message)),
        ExitStatus::TimedOut(d) => log.error(format!("{} was interrupted at the timeout of {}; keeping the {kept} lines it printed", config.wasi_path.display(), fmt_duration(*d))),
    }
    if out.stdout_truncated {
        log.warn(format!("{} printed more than {} bytes in one run; the rest was discarded", config.wasi_path.display(), config.limits.stdout_max));
    }
    let mut enc = Encoder::new();
    let mut body = Vec::new();
    let mut parse_errors = 0usize;
    for line in record_lines(&out.stdout, config.buf_size) {
        body.clear();
        let time = match parser {
            Some(p) => match p.parse(line) {
                Some(parsed) => {
                    body.extend_from_slice(&parsed.body);
                    parsed.time.map(|(s, n)| EventTime::new(s.clamp(0, EventTime::MAX_SEC as i64) as u32, n)).unwrap_or(done.ended)
                }
                None => {
                    parse_errors += 1;
                    continue;
                }
            },
            None => {
                str_map(&mut body, &[("wasi_stdout", line)]);
                done.ended
            }
        };
        if let Err(e) = enc.record(time, EMPTY_MAP, &body) {
            log.error(format!("cannot encode a record: {e}"));
        }
    }
    if parse_errors > 0 {
        log.error(format!("parser '{}' did not match {parse_errors} line(s); they were dropped", config.parser.as_deref().unwrap_or("")));
    }
    enc.buf
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_held_for_a_poll_cover_its_period() {
        let poll = Duration::from_secs(1);
        assert_eq!(Schedule::held_for_poll(Some(Duration::from_millis(200)), poll), 6);
        assert_eq!(Schedule::held_for_poll(Some(Duration::from_millis(300)), poll), 5);
        assert_eq!(Schedule::held_for_poll(Some(Duration::from_secs(5)), poll), 2);
        assert_eq!(Schedule::held_for_poll(Some(Duration::from_micros(1)), poll), 100);
        assert_eq!(Schedule::held_for_poll(None, poll), 1);
    }
}
