//! One run of a WASI command module (the exec_wasi input): instantiate, call `_start`, keep
//! whatever it printed, whatever way it ended.

use crate::engine::LoadedModule;
use crate::error::{Error, Trap};
use crate::instance::Instance;
use crate::wasi::WasiOptions;
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

/// Runs `module` once. `Err` means it could not start (instantiation, no entry point); a
/// guest that traps or times out is an `Ok` outcome with what it printed before.
pub fn run_command(module: &LoadedModule, wasi: &WasiOptions, limits: &Limits) -> Result<CommandOutcome, Error> {
    let start = Instant::now();
    let Some(entry) = entry_point(&module.module) else {
        return Err(Error::MissingExport("_start (the entry point of a WASI command module; build it as a program, not a library)".into()));
    };
    let mut inst = Instance::new(module, Some(wasi), limits, |_| wasmer::Imports::new())?;
    let status = if entry == "__main_argc_argv" {
        let f = inst.typed::<(i32, i32), i32>(entry)?;
        finish(inst.call(|s| f.call(s, 0, 0)))
    } else if let Ok(f) = inst.typed::<(), ()>(entry) {
        finish(inst.call(|s| f.call(s)).map(|()| 0))
    } else {
        let f = inst.typed::<(), i32>(entry)?;
        finish(inst.call(|s| f.call(s)))
    }?;
    let (stdout, stdout_truncated) = inst.take_stdout();
    let (stderr, stderr_truncated) = inst.take_stderr();
    Ok(CommandOutcome { status, stdout, stdout_truncated, stderr, stderr_truncated, elapsed: start.elapsed() })
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
