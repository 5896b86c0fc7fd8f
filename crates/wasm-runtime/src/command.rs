//! One run of a WASI command module (the exec_wasi input): instantiate, call `_start`, keep
//! whatever it printed, whatever way it ended.

use crate::engine::LoadedModule;
use crate::error::{Error, Trap};
use crate::instance::{Instance, KeptStore, uses_wasi};
use crate::wasi::{PreparedWasi, WasiOptions};
use crate::Limits;
use std::time::{Duration, Instant};

/// How a command run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Returned from `_start` (0) or called `proc_exit(n)`.
    Exited(i32),
    Trapped(Trap),
    TimedOut(Duration),
}

#[derive(Clone, Debug)]
pub struct CommandOutcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr: Vec<u8>,
    pub stderr_truncated: bool,
    pub elapsed: Duration,
}

/// The entry point a command module offers, if any.
pub fn entry_point(module: &wasmer::Module) -> Option<&'static str> {
    ["_start", "main", "__main_argc_argv"].into_iter().find(|n| module.exports().functions().any(|f| f.name() == *n))
}

/// A WASI command ready to run any number of times, each run in a fresh instance: what can
/// be worked out once (entry point, accessible paths) is.
pub struct Command {
    module: LoadedModule,
    wasi: Option<PreparedWasi>,
    limits: Limits,
    entry: &'static str,
    /// The last run's store, WASI environment and imports, for the next run.
    kept: Option<KeptStore>,
    wasi_environments: u64,
}

impl Command {
    /// `Err` when the module has no entry point or an accessible path cannot be opened.
    pub fn new(module: &LoadedModule, wasi: &WasiOptions, limits: &Limits) -> Result<Command, Error> {
        let Some(entry) = entry_point(&module.module) else {
            return Err(Error::MissingExport("_start (the entry point of a WASI command module; build it as a program, not a library)".into()));
        };
        let wasi = uses_wasi(module).then(|| wasi.prepare()).transpose()?;
        Ok(Command { module: module.clone(), wasi, limits: limits.clone(), entry, kept: None, wasi_environments: 0 })
    }

    /// One run. `Err` means it could not start (instantiation); a guest that traps or times
    /// out is an `Ok` outcome with what it printed before.
    pub fn run(&mut self) -> Result<CommandOutcome, Error> {
        let start = Instant::now();
        let kept = self.kept.take();
        let mut inst = Instance::with_prepared_wasi(&self.module, self.wasi.as_ref(), &self.limits, |_| wasmer::Imports::new(), kept)?;
        let entry = self.entry;
        let status = if entry == "__main_argc_argv" {
            let f = inst.typed::<(i32, i32), i32>(entry)?;
            finish(inst.call(|s| f.call(s, 0, 0)))
        } else if let Ok(f) = inst.typed::<(), ()>(entry) {
            finish(inst.call(|s| f.call(s)).map(|()| 0))
        } else {
            let f = inst.typed::<(), i32>(entry)?;
            finish(inst.call(|s| f.call(s)))
        }?;
        if status != ExitStatus::Exited(0) {
            inst.discard_wasi_state();
        }
        self.wasi_environments += u64::from(inst.fresh_wasi);
        let (stdout, stdout_truncated) = inst.take_stdout();
        let (stderr, stderr_truncated) = inst.take_stderr();
        self.kept = Some(inst.into_kept_store());
        Ok(CommandOutcome { status, stdout, stdout_truncated, stderr, stderr_truncated, elapsed: start.elapsed() })
    }

    /// How many WASI environments the runs so far were given (a run that leaves its
    /// environment as it found it passes it on to the next).
    pub fn wasi_environments(&self) -> u64 {
        self.wasi_environments
    }
}

/// Runs `module` once (see [`Command`] to run it repeatedly).
pub fn run_command(module: &LoadedModule, wasi: &WasiOptions, limits: &Limits) -> Result<CommandOutcome, Error> {
    Command::new(module, wasi, limits)?.run()
}

fn finish(r: Result<i32, Error>) -> Result<ExitStatus, Error> {
    match r {
        Ok(code) => Ok(ExitStatus::Exited(code)),
        Err(Error::Exit(code)) => Ok(ExitStatus::Exited(code)),
        Err(Error::Trap(t)) => Ok(ExitStatus::Trapped(t)),
        Err(Error::Timeout(d)) => Ok(ExitStatus::TimedOut(d)),
        Err(e) => Err(e),
    }
}
