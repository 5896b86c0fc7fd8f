use std::time::Duration;

/// What kind of trap stopped a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapKind {
    Unreachable,
    OutOfBoundsMemory,
    DivisionByZero,
    StackOverflow,
    IntegerOverflow,
    IndirectCall,
    Other,
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrapKind::Unreachable => "unreachable instruction executed",
            TrapKind::OutOfBoundsMemory => "out-of-bounds memory access",
            TrapKind::DivisionByZero => "integer division by zero",
            TrapKind::StackOverflow => "stack overflow",
            TrapKind::IntegerOverflow => "integer overflow",
            TrapKind::IndirectCall => "bad indirect call",
            TrapKind::Other => "trap",
        })
    }
}

/// A guest trap with its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    pub kind: TrapKind,
    pub message: String,
}

/// Everything that can go wrong loading or running a guest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Compile(String),
    #[error("cannot instantiate the module: {0}")]
    Instantiate(String),
    #[error("guest trapped: {} ({})", .0.kind, .0.message)]
    Trap(Trap),
    #[error("guest exceeded the time limit of {0:?}")]
    Timeout(Duration),
    #[error("guest memory would exceed the memory limit of {limit} bytes")]
    MemoryLimit { limit: u64 },
    #[error("guest called proc_exit({0})")]
    Exit(i32),
    #[error("bad guest result: {0}")]
    BadResult(String),
    #[error("module does not export {0}")]
    MissingExport(String),
    #[error("WASI setup failed: {0}")]
    Wasi(String),
}
