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

/// Whether everything a run of `bytes` can change is in its linear memory and globals, so
/// that putting those back as instantiation left them gives the next run what a new
/// instance would: no start function, one memory of its own, no passive segments, and no
/// instruction that changes a table (wasmer keeps no other state a guest can change).
pub(crate) fn rerunnable(bytes: &[u8]) -> bool {
    use wasmparser::{DataKind, ElementKind, Operator, Payload, TypeRef};
    let mut memories = 0;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { return false };
        let ok = match payload {
            Payload::StartSection { .. } => false,
            Payload::ImportSection(r) => r.into_imports().all(|i| {
                i.is_ok_and(|i| !matches!(i.ty, TypeRef::Memory(_) | TypeRef::Table(_) | TypeRef::Global(_)))
            }),
            Payload::MemorySection(r) => {
                memories += r.count();
                r.into_iter().all(|m| m.is_ok_and(|m| !m.shared && !m.memory64))
            }
            Payload::DataSection(r) => r.into_iter().all(|d| d.is_ok_and(|d| matches!(d.kind, DataKind::Active { .. }))),
            Payload::ElementSection(r) => r.into_iter().all(|e| e.is_ok_and(|e| matches!(e.kind, ElementKind::Active { .. } | ElementKind::Declared))),
            Payload::ExportSection(r) => r.into_iter().all(|e| e.is_ok_and(|e| e.name != "_initialize")),
            Payload::CodeSectionEntry(body) => body.get_operators_reader().is_ok_and(|ops| {
                ops.into_iter().all(|op| {
                    op.is_ok_and(|op| {
                        !matches!(
                            op,
                            Operator::TableSet { .. }
                                | Operator::TableGrow { .. }
                                | Operator::TableFill { .. }
                                | Operator::TableCopy { .. }
                                | Operator::TableInit { .. }
                                | Operator::ElemDrop { .. }
                                | Operator::MemoryInit { .. }
                                | Operator::DataDrop { .. }
                        )
                    })
                })
            }),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    memories == 1
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
    /// The last run's instance, when it can be rewound for the next run (see [`rerunnable`]).
    rewindable: Option<Instance>,
    wasi_environments: u64,
}

impl Command {
    /// `Err` when the module has no entry point or an accessible path cannot be opened.
    pub fn new(module: &LoadedModule, wasi: &WasiOptions, limits: &Limits) -> Result<Command, Error> {
        let Some(entry) = entry_point(&module.module) else {
            return Err(Error::MissingExport("_start (the entry point of a WASI command module; build it as a program, not a library)".into()));
        };
        let wasi = uses_wasi(module).then(|| wasi.prepare()).transpose()?;
        Ok(Command { module: module.clone(), wasi, limits: limits.clone(), entry, kept: None, rewindable: None, wasi_environments: 0 })
    }

    /// One run. `Err` means it could not start (instantiation); a guest that traps or times
    /// out is an `Ok` outcome with what it printed before.
    pub fn run(&mut self) -> Result<CommandOutcome, Error> {
        let start = Instant::now();
        let mut inst = match self.rewindable.take() {
            Some(mut inst) => {
                crate::signals::ensure_armed();
                inst.rewind(self.wasi.as_ref(), &self.module)?;
                inst
            }
            None => {
                let kept = self.kept.take();
                Instance::with_prepared_wasi(&self.module, self.wasi.as_ref(), &self.limits, |_| wasmer::Imports::new(), kept, true)?
            }
        };
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
        if inst.can_rewind() {
            self.rewindable = Some(inst);
        } else {
            self.kept = Some(inst.into_kept_store());
        }
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
