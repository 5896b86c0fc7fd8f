//! The instrumentation behind the per-call time limit: a flag the guest checks at every
//! function entry and loop header, and that only the watchdog sets.
//!
//! Guest code can only run without end through a backward branch (which targets a `loop`)
//! or through calls (recursion, tail calls), so checking there is enough to stop any guest.
//! wasmer's `Metering` middleware checks and decrements a counter at every basic block
//! instead; it doubled the compile time of a small C module (13 -> 25 ms of CPU) and the
//! guest's decrement raced with the watchdog's write.
//!
//! Cranelift drops a load of a global that no store precedes since the last load of it
//! (redundant-load elimination, across the loop's back edge too), so a loop check would
//! read the flag once, before the loop. A store to a second global ("beat") at each loop
//! header keeps the load; globals share one alias region in wasmer's Cranelift backend.

use std::sync::Mutex;
use wasmer::sys::{FunctionMiddleware, MiddlewareError, MiddlewareReaderState, ModuleMiddleware};
use wasmer::wasmparser::{BlockType, Operator};
use wasmer::{ExportIndex, GlobalInit, GlobalType, LocalFunctionIndex, Mutability, Type};
use wasmer_types::{GlobalIndex, ModuleInfo};

/// The export naming the flag (an i64 global: non-zero stops the guest at its next check).
pub(crate) const FLAG_EXPORT: &str = "flb_wasmer_interrupt";

/// Names this instrumentation in the disk cache's keys (change it with the checks' code).
pub(crate) const INSTRUMENTATION: &str = "interrupt-checks-1";

/// Serves one module (the flag's index is that module's), as `Metering` does.
#[derive(Debug, Default)]
pub(crate) struct Interrupt {
    /// The flag's and the beat's indexes.
    globals: Mutex<Option<(GlobalIndex, GlobalIndex)>>,
}

impl ModuleMiddleware for Interrupt {
    fn generate_function_middleware<'a>(&self, _: LocalFunctionIndex) -> Box<dyn FunctionMiddleware<'a> + 'a> {
        let (flag, beat) = self.globals.lock().unwrap().expect("transform_module_info runs first");
        Box::new(InterruptChecks { flag: flag.as_u32(), beat: beat.as_u32(), entered: false })
    }

    fn transform_module_info(&self, info: &mut ModuleInfo) -> Result<(), MiddlewareError> {
        let mut globals = self.globals.lock().unwrap();
        if globals.is_some() {
            return Err(MiddlewareError::new("Interrupt", "one instance serves one module"));
        }
        let mut add = || {
            info.global_initializers.push(GlobalInit::I64Const(0));
            info.globals.push(GlobalType::new(Type::I64, Mutability::Var))
        };
        let (flag, beat) = (add(), add());
        info.exports.insert(FLAG_EXPORT.to_string(), ExportIndex::Global(flag));
        *globals = Some((flag, beat));
        Ok(())
    }
}

#[derive(Debug)]
struct InterruptChecks {
    flag: u32,
    beat: u32,
    entered: bool,
}

impl InterruptChecks {
    fn check<'a>(&self) -> [Operator<'a>; 6] {
        [
            Operator::GlobalGet { global_index: self.flag },
            Operator::I64Const { value: 0 },
            Operator::I64Ne,
            Operator::If { blockty: BlockType::Empty },
            Operator::Unreachable,
            Operator::End,
        ]
    }
}

impl<'a> FunctionMiddleware<'a> for InterruptChecks {
    fn feed(&mut self, op: Operator<'a>, state: &mut MiddlewareReaderState<'a>) -> Result<(), MiddlewareError> {
        if !self.entered {
            self.entered = true;
            state.extend(self.check());
        }
        // Inside the loop, so that every backward branch passes the check.
        let is_loop = matches!(op, Operator::Loop { .. });
        state.push_operator(op);
        if is_loop {
            state.extend([Operator::I64Const { value: 0 }, Operator::GlobalSet { global_index: self.beat }]);
            state.extend(self.check());
        }
        Ok(())
    }
}
