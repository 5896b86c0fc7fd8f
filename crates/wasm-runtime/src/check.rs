//! The module checker: does a module fit the filter or the command contract, and if not,
//! what should its author change. Shared by the plugins (at init) and the CLI.

use crate::error::Error;
use wasmer::{ExternType, Module, Type};

/// Files wasmer cannot run, refused with a message that says what to do instead.
pub(crate) fn refuse_foreign_format(bytes: &[u8]) -> Result<(), Error> {
    if bytes.starts_with(b"\0aot") {
        return Err(Error::Compile(
            "this is a WAMR AOT file (compiled by wamrc); wasmer runs WebAssembly modules: use the .wasm file it was compiled from".into(),
        ));
    }
    let text = bytes.iter().take(64).all(|b| b.is_ascii());
    if !bytes.starts_with(b"\0asm") && !(text && bytes.iter().any(|&b| b == b'(')) {
        return Err(Error::Compile("not a WebAssembly module (no \\0asm header)".into()));
    }
    Ok(())
}

/// What a module is meant to be.
#[derive(Clone, Debug)]
pub enum Contract {
    /// A WASI program for the exec_wasi input.
    Command,
    /// A module for the wasm filter, exporting `function`.
    Filter { function: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Clone, Debug)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn ok(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error)
    }

    /// `Err` with the errors joined by "; " when the module does not fit.
    pub fn into_result(self) -> Result<(), String> {
        if self.ok() {
            return Ok(());
        }
        Err(self.errors().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; "))
    }

    fn push(&mut self, severity: Severity, message: impl Into<String>) {
        self.findings.push(Finding { severity, message: message.into() });
    }
}

/// Checks `module` against `contract`. Imports may be WASI preview1 and the `env.*` C library
/// functions WAMR's libc-builtin offers (served by `libc_compat`).
pub fn check(module: &Module, contract: &Contract) -> Report {
    let mut r = Report::default();
    let unresolved: Vec<String> = module
        .imports()
        .filter(|i| !(i.module().starts_with("wasi_snapshot_preview1") || i.module() == "wasi_unstable"))
        .filter(|i| !crate::libc_compat::serves(i.module(), i.name()))
        .map(|i| format!("{}.{}", i.module(), i.name()))
        .collect();
    if !unresolved.is_empty() {
        r.push(Severity::Error, format!("imports the host cannot provide: {} (available: WASI preview1, flb.log, and the C library functions env.{{malloc, printf, sprintf, strlen, ...}} of the built-in's WAMR; build against wasi-libc with --target=wasm32-wasi for anything else)", unresolved.join(", ")));
    }
    let exports_memory = module.exports().any(|e| matches!(e.ty(), ExternType::Memory(_)));
    match contract {
        Contract::Command => {
            if crate::command::entry_point(module).is_none() {
                r.push(Severity::Error, "no entry point: a WASI command module exports _start (build a program with a main function, not a library/reactor)");
            }
        }
        Contract::Filter { function } => {
            match module.exports().functions().find(|f| f.name() == function) {
                None => {
                    let names: Vec<String> = module.exports().functions().map(|f| f.name().to_string()).collect();
                    r.push(Severity::Error, format!("no exported function '{function}' (exported functions: {})", if names.is_empty() { "none".into() } else { names.join(", ") }));
                }
                Some(f) => {
                    let ty = f.ty();
                    let classic = ty.params() == [Type::I32; 6] && ty.results() == [Type::I32];
                    let event = ty.params() == [Type::I32; 2] && ty.results() == [Type::I64];
                    if event {
                        r.push(Severity::Info, format!("'{function}' takes whole events (extended ABI: (i32 event, i32 len) -> i64 packed result)"));
                    } else if !classic {
                        r.push(
                            Severity::Error,
                            format!("'{function}' has signature {:?} -> {:?}; the filter calls (i32 tag, i32 tag_len, i32 sec, i32 nsec, i32 record, i32 record_len) -> i32, or (i32 event, i32 len) -> i64 for the extended ABI", ty.params(), ty.results()),
                        );
                    }
                }
            }
            if module.exports().any(|e| e.name() == "_start") {
                r.push(Severity::Warning, "this is a command module (it exports _start); a filter should be a library/reactor (e.g. clang -mexec-model=reactor, or a Rust cdylib)");
            }
            let has = |n: &str| module.exports().any(|e| e.name() == n);
            if has("malloc") && has("free") {
                r.push(Severity::Info, "records are passed through the module's exported malloc/free");
            } else if has("__new") && has("__pin") && has("__unpin") {
                r.push(Severity::Info, "records are passed through AssemblyScript's __new/__pin/__unpin");
            } else {
                r.push(Severity::Info, "no malloc/free exported: records are placed in a host-managed region at the end of guest memory");
            }
            if !exports_memory {
                r.push(Severity::Error, "the module exports no memory; the filter passes records through linear memory");
            }
        }
    }
    r
}

/// Whether the module is a WASI command (has an entry point) rather than a library.
pub fn is_command(module: &Module) -> bool {
    crate::command::entry_point(module).is_some()
}
