//! A persistent guest instance: created once, called many times (the filter keeps one per
//! plugin instance, so guest globals and heap persist between records, as in the built-in).

use crate::engine::{LoadedModule, with_memory_cap};
use crate::error::{Error, Trap, TrapKind};
use crate::wasi::{Capture, PreparedWasi, WasiOptions};
use crate::{Counters, Limits, watchdog};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmer::sys::vm::TrapCode;
use wasmer::{
    Extern, Function, FunctionEnv, FunctionEnvMut, Imports, Memory, MemoryView, RuntimeError, Store, TypedFunction,
    WasmTypeList,
};
use wasmer_wasix::{WasiError, WasiFunctionEnv};

/// How the host places bytes (tag, record) in guest memory.
pub enum GuestAllocator {
    /// The guest exports `malloc(size) -> ptr` and `free(ptr)`.
    Exports {
        malloc: TypedFunction<i32, i32>,
        free: TypedFunction<i32, ()>,
    },
    /// AssemblyScript's runtime: `__new(size, id)`, `__pin`, `__unpin`.
    AssemblyScript {
        new: TypedFunction<(i32, i32), i32>,
        pin: TypedFunction<i32, i32>,
        unpin: TypedFunction<i32, ()>,
    },
    /// Neither: the host grows memory and uses the new pages as its own scratch area
    /// (reset before every call; the guest never sees them as allocated).
    HostRegion { base: u32, len: u32, next: u32 },
}

impl GuestAllocator {
    pub fn describe(&self) -> &'static str {
        match self {
            GuestAllocator::Exports { .. } => "the guest's malloc/free",
            GuestAllocator::AssemblyScript { .. } => "AssemblyScript's __new/__pin/__unpin",
            GuestAllocator::HostRegion { .. } => "a host-managed region of guest memory",
        }
    }
}

/// What a command keeps between runs so that the next run's instance is cheap: the store,
/// the output captures, and the WASI environment with the imports made in it (making the
/// imports was half of a trivial run). Each instance leaves its bookkeeping in the store
/// (not its linear memory), so the store is replaced after `MAX_INSTANCES`.
pub(crate) struct KeptStore {
    store: Store,
    wasi: Option<KeptWasi>,
    stdout: Capture,
    stderr: Capture,
    instances: u32,
}

impl KeptStore {
    const MAX_INSTANCES: u32 = 64;
}

/// A WASI environment and the imports bound to it. A run that only calls imports which
/// leave the environment as they found it (writing to stdout or stderr, reading arguments,
/// the environment, clocks, random bytes) and returns normally leaves it as fresh as a new
/// one, so the next run uses it again: building one was over a third of a trivial run's
/// CPU. Every other import is wrapped to mark it `changed` when called, and so is a run
/// that traps, times out or exits; the next run then gets a new environment.
pub(crate) struct KeptWasi {
    env: WasiFunctionEnv,
    imports: Imports,
    changed: Arc<AtomicBool>,
    stdio: FunctionEnv<StdioEnv>,
}

impl KeptWasi {
    /// Gives the environment new state (the functions stay bound to it), writing to the
    /// captures it was made with.
    fn renew(&self, store: &mut Store, wasi: &PreparedWasi, module: &LoadedModule, stdout: &Capture, stderr: &Capture) -> Result<(), Error> {
        let builder = crate::wasi::builder(wasi, module, stdout, stderr)?;
        *self.env.data_mut(store) = builder.build().map_err(|e| Error::Wasi(e.to_string()))?;
        self.changed.store(false, Ordering::Relaxed);
        Ok(())
    }
}

/// A global's storage (wasmer's `RawValue`).
type RawGlobal = [u8; 16];

/// What instantiation left in an instance's globals and memory.
struct Snapshot {
    globals: Vec<(NonNull<RawGlobal>, RawGlobal)>,
    /// (offset, bytes) of the memory's 4 KiB pages that were not all zeros.
    pages: Vec<(usize, Box<[u8]>)>,
}

// SAFETY: the pointers target globals in the instance's store, which moves between threads
// with the instance; they are only used through `&mut Instance`.
unsafe impl Send for Snapshot {}

/// The preview1 functions that neither change the WASI environment nor read what others
/// change (stdout and stderr keep no write offset; their captures are emptied per run).
const LEAVES_ENVIRONMENT_AS_IS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "random_get",
    "sched_yield",
    "fd_write",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
];

/// `wasi`'s imports for `module`, with every function outside [`LEAVES_ENVIRONMENT_AS_IS`]
/// wrapped to set `changed` before it runs, and `fd_write` served by [`fd_write_stdio`].
fn watched_imports(store: &mut Store, module: &LoadedModule, wasi: &Imports, stdio: &FunctionEnv<StdioEnv>) -> Imports {
    let mut wanted = Imports::new();
    for i in module.module.imports() {
        let Some(ext) = wasi.get_export(i.module(), i.name()) else { continue };
        let ext = match ext {
            Extern::Function(f) if i.name() == "fd_write" && f.ty(store) == fd_write_type() => {
                stdio.as_mut(store).wasix_fd_write = Some(f);
                Extern::Function(Function::new_typed_with_env(store, stdio, fd_write_stdio))
            }
            Extern::Function(f) if i.name() == "fd_fdstat_get" && f.ty(store) == fd_fdstat_get_type() => {
                stdio.as_mut(store).wasix_fd_fdstat_get = Some(f);
                Extern::Function(Function::new_typed_with_env(store, stdio, fd_fdstat_get_stdio))
            }
            Extern::Function(f) if !LEAVES_ENVIRONMENT_AS_IS.contains(&i.name()) => {
                let ty = f.ty(store);
                Extern::Function(Function::new_with_env(store, stdio, ty, move |mut env: FunctionEnvMut<StdioEnv>, args| {
                    env.data().changed.store(true, Ordering::Relaxed);
                    f.call(&mut env, args).map(Vec::from)
                }))
            }
            ext => ext,
        };
        wanted.define(i.module(), i.name(), ext);
    }
    wanted
}

/// What the watched imports share: the flag they set, and for [`fd_write_stdio`] the
/// captures that descriptors 1 and 2 are while nothing changed the WASI environment.
pub(crate) struct StdioEnv {
    changed: Arc<AtomicBool>,
    stdout: Capture,
    stderr: Capture,
    /// The instance's memory, set once instantiated.
    memory: Option<Memory>,
    /// wasmer-wasix's own `fd_write`, for every other case.
    wasix_fd_write: Option<Function>,
    /// wasmer-wasix's own `fd_fdstat_get`, whose answer [`fd_fdstat_get_stdio`] adjusts.
    wasix_fd_fdstat_get: Option<Function>,
}

fn fd_write_type() -> wasmer::FunctionType {
    wasmer::FunctionType::new([wasmer::Type::I32; 4], [wasmer::Type::I32])
}

fn fd_fdstat_get_type() -> wasmer::FunctionType {
    wasmer::FunctionType::new([wasmer::Type::I32; 2], [wasmer::Type::I32])
}

/// preview1 `fd_fdstat_get`: wasmer-wasix's answer, except that stdout and stderr are
/// regular files rather than character devices, as under the built-in exec_wasi (which
/// hands the guest a temporary file): they are captures, not a terminal. A character device
/// without seek rights is what wasi-libc's `isatty` takes for a terminal, and C's stdio
/// then flushes stdout at every newline, one `fd_write` per line.
fn fd_fdstat_get_stdio(mut env: FunctionEnvMut<StdioEnv>, fd: i32, buf: i32) -> Result<i32, RuntimeError> {
    const FILETYPE_CHARACTER_DEVICE: u8 = 2;
    const FILETYPE_REGULAR_FILE: u8 = 4;
    let f = env.data().wasix_fd_fdstat_get.clone().expect("set with the import");
    let errno = call_wasix(&mut env, &f, &[fd.into(), buf.into()])?;
    if errno == 0 && (fd == 1 || fd == 2) {
        let (data, store) = env.data_and_store_mut();
        if let Some(memory) = data.memory.as_ref() {
            // The fdstat's first byte is its filetype; wasmer-wasix just wrote it.
            let view = memory.view(&store);
            let mut filetype = [0u8];
            if view.read(buf as u32 as u64, &mut filetype).is_ok() && filetype[0] == FILETYPE_CHARACTER_DEVICE {
                let _ = view.write_u8(buf as u32 as u64, FILETYPE_REGULAR_FILE);
            }
        }
    }
    Ok(errno)
}

/// preview1 `fd_write`: writes to stdout and stderr go straight into their captures
/// (wasmer-wasix's way through its descriptor table, async file and tracing was most of a
/// trivial run's guest time); any other descriptor, or any write after the guest changed
/// its WASI environment (closed or renumbered a descriptor), goes to wasmer-wasix's.
fn fd_write_stdio(mut env: FunctionEnvMut<StdioEnv>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> Result<i32, RuntimeError> {
    const ERRNO_FAULT: i32 = 21;
    let (data, store) = env.data_and_store_mut();
    let capture = match fd {
        1 => &data.stdout,
        2 => &data.stderr,
        _ => return wasix_fd_write(env, fd, iovs, iovs_len, nwritten),
    };
    let (Some(memory), false) = (data.memory.as_ref(), data.changed.load(Ordering::Relaxed)) else {
        return wasix_fd_write(env, fd, iovs, iovs_len, nwritten);
    };
    let view = memory.view(&store);
    // SAFETY: the guest waits in this call and cannot start threads (preview1), so memory
    // neither changes nor grows while the slice lives.
    let mem = unsafe { std::slice::from_raw_parts_mut(view.data_ptr(), view.data_size() as usize) };
    let word = |mem: &[u8], at: usize| mem.get(at..at.checked_add(4)?).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    let mut total = 0u32;
    for i in 0..iovs_len as u32 as usize {
        let at = iovs as u32 as usize + 8 * i;
        let (Some(ptr), Some(len)) = (word(mem, at), word(mem, at + 4)) else { return Ok(ERRNO_FAULT) };
        let Some(bytes) = mem.get(ptr as usize..ptr as usize + len as usize) else { return Ok(ERRNO_FAULT) };
        capture.write(bytes);
        total = total.wrapping_add(len);
    }
    let at = nwritten as u32 as usize;
    let Some(out) = mem.get_mut(at..at + 4) else { return Ok(ERRNO_FAULT) };
    out.copy_from_slice(&total.to_le_bytes());
    Ok(0)
}

fn wasix_fd_write(mut env: FunctionEnvMut<StdioEnv>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> Result<i32, RuntimeError> {
    let f = env.data().wasix_fd_write.clone().expect("set with the import");
    call_wasix(&mut env, &f, &[fd.into(), iovs.into(), iovs_len.into(), nwritten.into()])
}

/// Calls one of wasmer-wasix's preview1 functions, which return an errno.
fn call_wasix(env: &mut FunctionEnvMut<StdioEnv>, f: &Function, args: &[wasmer::Value]) -> Result<i32, RuntimeError> {
    Ok(f.call(env, args)?.first().and_then(|v| v.i32()).unwrap_or(0))
}

/// Whether `module` imports WASI (any `wasi_*` namespace).
pub(crate) fn uses_wasi(module: &LoadedModule) -> bool {
    module.module.imports().any(|i| i.module().starts_with("wasi_"))
}

pub struct Instance {
    /// The time limit's watchdog slot, when compiled with interrupt checks. Declared first: it
    /// must be dropped (unregistered) before the store that holds the interrupt flag.
    watch: Option<watchdog::Registration>,
    store: Store,
    pub instance: wasmer::Instance,
    memory: Option<Memory>,
    wasi: Option<KeptWasi>,
    /// Whether `wasi` was built for this instance's run (not kept from the last run).
    pub(crate) fresh_wasi: bool,
    /// What instantiation left, when the instance can [`Instance::rewind`] to it.
    snapshot: Option<Snapshot>,
    /// Instances made in `store`, this one included.
    instances: u32,
    stdout: Capture,
    stderr: Capture,
    limits: Limits,
    allocator: Option<GuestAllocator>,
    /// Allocations made through the guest allocator since the last `release_all`.
    live: Vec<i32>,
    /// Buffers of `write_reused`: (address, capacity).
    reused: [Option<(u32, u32)>; 2],
    pub counters: Counters,
}

impl Instance {
    /// Instantiates `module` with WASI (when it imports WASI or `wasi` is given) and the extra
    /// host imports, then runs `_initialize` if exported (WASI reactors register their
    /// preopens there).
    pub fn new(
        module: &LoadedModule,
        wasi: Option<&WasiOptions>,
        limits: &Limits,
        extra: impl FnOnce(&mut Store) -> Imports,
    ) -> Result<Instance, Error> {
        let default = WasiOptions::default();
        let wasi = match uses_wasi(module) {
            true => Some(wasi.unwrap_or(&default).prepare()?),
            false => None,
        };
        Instance::with_prepared_wasi(module, wasi.as_ref(), limits, extra, None, false)
    }

    /// Makes the next instance from the kept store get a new WASI environment (this one's
    /// run did not end normally, so its state is unknown).
    pub(crate) fn discard_wasi_state(&self) {
        if let Some(k) = &self.wasi {
            k.changed.store(true, Ordering::Relaxed);
        }
    }

    /// Ends this instance and keeps its store for the next instance of the same module (see
    /// [`KeptStore`]). Its linear memory goes back to the pool now.
    pub(crate) fn into_kept_store(mut self) -> KeptStore {
        if let Some(m) = self.memory.take() {
            // Pooled memories return their reservation; others stay until the store goes.
            let _ = m.reset(&mut self.store);
        }
        let Instance { watch, store, wasi, instances, stdout, stderr, .. } = self;
        drop(watch); // before the store that holds the interrupt flag
        KeptStore { store, wasi, stdout, stderr, instances }
    }

    /// As [`Instance::new`], with WASI options resolved beforehand (given when the module
    /// imports WASI) and, for a command's next run, what its last instance left behind.
    /// With `snapshot`, an instance of a module that allows it keeps what instantiation left
    /// in its memory and globals, to [`Instance::rewind`] to.
    pub(crate) fn with_prepared_wasi(
        module: &LoadedModule,
        wasi: Option<&PreparedWasi>,
        limits: &Limits,
        extra: impl FnOnce(&mut Store) -> Imports,
        kept: Option<KeptStore>,
        snapshot: bool,
    ) -> Result<Instance, Error> {
        crate::signals::ensure_armed();
        let _rt = crate::Runtime::global().tokio().enter();
        let kept = kept.filter(|k| k.instances < KeptStore::MAX_INSTANCES);
        let (mut store, kept_wasi, stdout, stderr, instances) = match kept {
            Some(k) => (k.store, k.wasi, k.stdout, k.stderr, k.instances),
            None => (
                Store::new(module.engine.clone()),
                None,
                Capture::new(limits.stdout_max),
                Capture::new(limits.stderr_max),
                0,
            ),
        };
        let mut imports = extra(&mut store);
        let libc = crate::libc_compat::wanted(&module.module)
            .then(|| crate::libc_compat::define(&mut store, &module.module, &stdout, &mut imports));
        let mut wasi_env = None;
        let mut fresh_wasi = false;
        if let Some(wasi) = wasi {
            fresh_wasi = !matches!(&kept_wasi, Some(k) if !k.changed.load(Ordering::Relaxed));
            let kept = match kept_wasi {
                Some(k) if !fresh_wasi => k,
                Some(k) => {
                    k.renew(&mut store, wasi, module, &stdout, &stderr)?;
                    k
                }
                None => {
                    let builder = crate::wasi::builder(wasi, module, &stdout, &stderr)?;
                    let env = builder.finalize(&mut store).map_err(|e| Error::Wasi(e.to_string()))?;
                    let all = env
                        .import_object(&mut store, &module.module)
                        .map_err(|e| Error::Wasi(e.to_string()))?;
                    let changed = Arc::new(AtomicBool::new(false));
                    let stdio = FunctionEnv::new(
                        &mut store,
                        StdioEnv { changed: changed.clone(), stdout: stdout.clone(), stderr: stderr.clone(), memory: None, wasix_fd_write: None, wasix_fd_fdstat_get: None },
                    );
                    // Only what the module imports (wasmer-wasix makes its whole preview1 set).
                    let imports = watched_imports(&mut store, module, &all, &stdio);
                    KeptWasi { env, imports, changed, stdio }
                }
            };
            for (ns, name, ext) in kept.imports.iter() {
                if !imports.exists(ns, name) {
                    imports.define(ns, name, ext.clone());
                }
            }
            wasi_env = Some(kept);
        }
        let snapshot = snapshot && module.rerunnable && libc.is_none();
        let globals_before = wasmer::AsStoreMut::objects_mut(&mut store).as_sys().iter_globals().count();
        let mut instantiate = || with_memory_cap(limits.memory_max, || wasmer::Instance::new(&mut store, &module.module, &imports));
        let (instance, rewindable_memories) = match snapshot {
            true => crate::memory_pool::rewindable(instantiate),
            false => (instantiate(), 0),
        };
        let instance = instance.map_err(|e| {
            let msg = e.to_string();
            if msg.contains("memory limit") {
                Error::MemoryLimit {
                    limit: limits.memory_max,
                }
            } else {
                Error::Instantiate(msg)
            }
        })?;
        if let Some(KeptWasi { env, .. }) = wasi_env.as_mut() {
            env.initialize(&mut store, instance.clone())
                .map_err(|e| Error::Wasi(e.to_string()))?;
        }
        let memory = instance.exports.iter().find_map(|(_, e)| match e {
            wasmer::Extern::Memory(m) => Some(m.clone()),
            _ => None,
        });
        if let Some(env) = &libc {
            crate::libc_compat::attach(&mut store, env, memory.clone());
        }
        if let Some(k) = &wasi_env {
            k.stdio.as_mut(&mut store).memory = memory.clone();
        }
        let mut this = Instance {
            store,
            instance,
            memory,
            wasi: wasi_env,
            fresh_wasi,
            instances: instances + 1,
            stdout,
            stderr,
            limits: limits.clone(),
            watch: None,
            allocator: None,
            live: Vec::new(),
            reused: [None; 2],
            counters: Counters::default(),
            snapshot: None,
        };
        if module.interruptible {
            this.watch = Some(watchdog::register(this.find_interrupt_flag()?));
        }
        if rewindable_memories == 1 {
            this.snapshot = this.take_snapshot(globals_before);
        }
        if let Ok(init) = this.typed::<(), ()>("_initialize") {
            this.call(|s| init.call(s))?;
        }
        Ok(this)
    }

    /// Keeps the values of the globals instantiation made (those past `globals_before` in the
    /// store) and the memory's non-zero pages.
    fn take_snapshot(&mut self, globals_before: usize) -> Option<Snapshot> {
        let memory = self.memory.as_ref()?;
        let view = memory.view(&self.store);
        // SAFETY: the memory is mapped for `data_size` bytes and no guest code runs.
        let pages = unsafe { crate::memory_pool::nonzero_pages(view.data_ptr(), view.data_size() as usize) };
        let objects = wasmer::AsStoreMut::objects_mut(&mut self.store);
        let globals = objects
            .as_sys()
            .iter_globals()
            .skip(globals_before)
            .map(|g| {
                let p = g.vmglobal().as_ptr() as *mut RawGlobal;
                // SAFETY: a global's storage is a 16-byte RawValue, alive as long as the store.
                (NonNull::new(p).expect("global storage"), unsafe { p.read() })
            })
            .collect();
        Some(Snapshot { globals, pages })
    }

    /// Whether [`Instance::rewind`] can make this instance as good as a new one.
    pub(crate) fn can_rewind(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Puts memory and globals back as instantiation left them (the memory zeroed and at its
    /// initial size, then its initial pages copied in) and gives WASI a new environment if
    /// the last run changed its own (see [`KeptWasi`]).
    pub(crate) fn rewind(&mut self, wasi: Option<&PreparedWasi>, module: &LoadedModule) -> Result<(), Error> {
        let (Some(snap), Some(memory)) = (&self.snapshot, &self.memory) else {
            return Err(Error::Instantiate("this instance has no snapshot to rewind to".into()));
        };
        memory.reset(&mut self.store).map_err(|e| Error::Instantiate(format!("cannot rewind linear memory: {e}")))?;
        let view = memory.view(&self.store);
        let (base, len) = (view.data_ptr(), view.data_size() as usize);
        for (at, page) in &snap.pages {
            assert!(at + page.len() <= len, "a snapshot page lies inside the initial memory");
            // SAFETY: in bounds (checked); no guest code runs; the page is our own copy.
            unsafe { std::ptr::copy_nonoverlapping(page.as_ptr(), base.add(*at), page.len()) };
        }
        for (p, value) in &snap.globals {
            // SAFETY: the global's storage, alive as long as the store, which we own.
            unsafe { p.as_ptr().write(*value) };
        }
        self.fresh_wasi = false;
        if let (Some(k), Some(prepared)) = (&mut self.wasi, wasi)
            && k.changed.load(Ordering::Relaxed)
        {
            let _rt = crate::Runtime::global().tokio().enter();
            k.renew(&mut self.store, prepared, module, &self.stdout, &self.stderr)?;
            k.env.initialize(&mut self.store, self.instance.clone()).map_err(|e| Error::Wasi(e.to_string()))?;
            self.fresh_wasi = true;
        }
        Ok(())
    }

    /// Locates the storage of the interrupt flag: set it to a sentinel through its export,
    /// then find the global holding that value.
    fn find_interrupt_flag(&mut self) -> Result<*mut i64, Error> {
        const SENTINEL: i64 = 0x5eed_f1b0_0000_0001;
        let missing = || Error::Instantiate("interrupt flag not found".into());
        let flag = self.instance.exports.get_global(crate::interrupt::FLAG_EXPORT).map_err(|_| missing())?;
        flag.set(&mut self.store, SENTINEL.into()).map_err(|_| missing())?;
        let objects = wasmer::AsStoreMut::objects_mut(&mut self.store);
        let found = objects.as_sys().iter_globals().find_map(|g| {
            let p = g.vmglobal().as_ptr();
            // SAFETY: every global's storage is at least 8 bytes (RawValue is 16).
            (unsafe { *(p as *const i64) } == SENTINEL).then_some(p as *mut i64)
        });
        let p = found.ok_or_else(missing)?;
        // SAFETY: p points at this instance's global, alive as long as the store.
        unsafe { *p = 0 };
        Ok(p)
    }

    /// A typed export.
    pub fn typed<P: WasmTypeList, R: WasmTypeList>(
        &self,
        name: &str,
    ) -> Result<TypedFunction<P, R>, Error> {
        self.instance
            .exports
            .get_typed_function(&self.store, name)
            .map_err(|e| match e {
                wasmer::ExportError::Missing(_) => Error::MissingExport(name.to_string()),
                e => Error::MissingExport(format!("{name} with the expected signature ({e})")),
            })
    }

    /// Runs `f` (a call into the guest, e.g. `|s| func.call(s, a, b)`) under the instance's
    /// limits, mapping traps, timeouts and `proc_exit` to [`Error`].
    pub fn call<R>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<R, RuntimeError>,
    ) -> Result<R, Error> {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let armed = match (&self.watch, self.limits.call_timeout) {
            (Some(w), Some(t)) => Some(w.arm(t)),
            _ => None,
        };
        let r = f(&mut self.store);
        let fired = armed.as_ref().is_some_and(|a| a.fired());
        drop(armed);
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(self.classify(e, fired)),
        }
    }

    fn classify(&mut self, e: RuntimeError, fired: bool) -> Error {
        if let Some(WasiError::Exit(code)) = e.downcast_ref::<WasiError>() {
            return Error::Exit(code.raw());
        }
        if fired {
            self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            return Error::Timeout(self.limits.call_timeout.unwrap_or_default());
        }
        self.counters.traps.fetch_add(1, Ordering::Relaxed);
        let kind = match e.clone().to_trap() {
            Some(TrapCode::UnreachableCodeReached) => TrapKind::Unreachable,
            Some(
                TrapCode::HeapAccessOutOfBounds
                | TrapCode::HeapMisaligned
                | TrapCode::TableAccessOutOfBounds,
            ) => TrapKind::OutOfBoundsMemory,
            Some(TrapCode::IntegerDivisionByZero) => TrapKind::DivisionByZero,
            Some(TrapCode::StackOverflow) => TrapKind::StackOverflow,
            Some(TrapCode::IntegerOverflow | TrapCode::BadConversionToInteger) => {
                TrapKind::IntegerOverflow
            }
            Some(TrapCode::IndirectCallToNull | TrapCode::BadSignature) => TrapKind::IndirectCall,
            _ => TrapKind::Other,
        };
        Error::Trap(Trap {
            kind,
            message: e.message(),
        })
    }

    /// Bytes the guest wrote to stdout since the last call to this (and whether some were cut).
    pub fn take_stdout(&self) -> (Vec<u8>, bool) {
        self.stdout.take()
    }

    pub fn take_stderr(&self) -> (Vec<u8>, bool) {
        self.stderr.take()
    }

    fn view(&self) -> Result<MemoryView<'_>, Error> {
        Ok(self
            .memory
            .as_ref()
            .ok_or_else(|| Error::MissingExport("memory".into()))?
            .view(&self.store))
    }

    /// Guest memory as a byte slice, for zero-copy reads. Valid until the next call.
    pub fn memory(&self) -> Result<&[u8], Error> {
        let view = self.view()?;
        // SAFETY: no guest code runs while the returned borrow of `self` lives, so memory
        // cannot grow or change under it.
        Ok(unsafe { std::slice::from_raw_parts(view.data_ptr(), view.data_size() as usize) })
    }

    /// Bytes `[ptr, ptr+len)` of guest memory, bounds-checked.
    pub fn read(&self, ptr: u32, len: usize) -> Result<&[u8], Error> {
        let mem = self.memory()?;
        mem.get(ptr as usize..(ptr as usize).saturating_add(len))
            .ok_or_else(|| {
                Error::BadResult(format!(
                    "range {ptr:#x}+{len} is outside guest memory ({} bytes)",
                    mem.len()
                ))
            })
    }

    /// The NUL-terminated string at `ptr` (without the NUL), at most `max` bytes.
    pub fn read_c_str(&self, ptr: u32, max: usize) -> Result<&[u8], Error> {
        let mem = self.memory()?;
        let start = ptr as usize;
        let tail = mem.get(start..).ok_or_else(|| {
            Error::BadResult(format!(
                "pointer {ptr:#x} is outside guest memory ({} bytes)",
                mem.len()
            ))
        })?;
        let tail = &tail[..tail.len().min(max)];
        let end = tail.iter().position(|&b| b == 0).ok_or_else(|| {
            Error::BadResult(format!("no NUL terminator within {max} bytes of {ptr:#x}"))
        })?;
        Ok(&tail[..end])
    }

    /// How bytes are placed in this guest's memory (decided at first use).
    pub fn allocator(&mut self) -> &GuestAllocator {
        if self.allocator.is_none() {
            self.allocator = Some(self.detect_allocator());
        }
        self.allocator.as_ref().unwrap()
    }

    fn detect_allocator(&self) -> GuestAllocator {
        if let (Ok(malloc), Ok(free)) = (self.typed("malloc"), self.typed("free")) {
            return GuestAllocator::Exports { malloc, free };
        }
        if let (Ok(new), Ok(pin), Ok(unpin)) = (
            self.typed("__new"),
            self.typed("__pin"),
            self.typed("__unpin"),
        ) {
            return GuestAllocator::AssemblyScript { new, pin, unpin };
        }
        GuestAllocator::HostRegion {
            base: 0,
            len: 0,
            next: 0,
        }
    }

    /// Copies `parts`, one after the other (plus a NUL if `nul`), into guest memory and
    /// returns the address. Release with [`Instance::release_all`] after the call that uses it.
    pub fn write(&mut self, parts: &[&[u8]], nul: bool) -> Result<u32, Error> {
        let size = parts.iter().map(|p| p.len()).sum::<usize>() + nul as usize;
        let ptr = self.alloc(size)?;
        if !matches!(self.allocator, Some(GuestAllocator::HostRegion { .. })) {
            self.live.push(ptr as i32);
        }
        self.copy_in(ptr, parts, nul)?;
        Ok(ptr)
    }

    /// Like [`Instance::write`], into buffer number `slot` (0 or 1) kept in guest memory
    /// across calls and grown when too small: no guest allocator call per record. The
    /// address is valid until the next write to the same slot.
    pub fn write_reused(&mut self, slot: usize, parts: &[&[u8]], nul: bool) -> Result<u32, Error> {
        let size = parts.iter().map(|p| p.len()).sum::<usize>() + nul as usize;
        self.allocator();
        if matches!(self.allocator, Some(GuestAllocator::HostRegion { .. })) {
            return self.write(parts, nul);
        }
        let ptr = match self.reused[slot] {
            Some((p, cap)) if cap as usize >= size.max(1) => p,
            old => {
                if let Some((p, _)) = old {
                    self.reused[slot] = None;
                    self.dealloc(p as i32)?;
                }
                let cap = size.max(1).next_power_of_two().max(256);
                let p = self.alloc(cap)?;
                self.reused[slot] = Some((p, cap as u32));
                p
            }
        };
        self.copy_in(ptr, parts, nul)?;
        Ok(ptr)
    }

    fn copy_in(&mut self, ptr: u32, parts: &[&[u8]], nul: bool) -> Result<(), Error> {
        let view = self.view()?;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let fits = (ptr as usize)
            .checked_add(len + nul as usize)
            .is_some_and(|end| end as u64 <= view.data_size());
        if !fits {
            return Err(Error::BadResult(format!(
                "guest allocator returned {ptr:#x}, outside memory (or too small)"
            )));
        }
        // SAFETY: in bounds (checked above). No guest code runs during the copy, here or on
        // another thread (preview1, the only WASI we bind, cannot start threads), so nothing
        // else touches these bytes: wasmer's own `MemoryView::write`, made for shared
        // memories, copies with volatile word stores, several times slower for large records.
        // `ptr::copy` allows a part to lie in guest memory itself.
        unsafe {
            let mut dst = view.data_ptr().add(ptr as usize);
            for part in parts {
                std::ptr::copy(part.as_ptr(), dst, part.len());
                dst = dst.add(part.len());
            }
            if nul {
                *dst = 0;
            }
        }
        Ok(())
    }

    /// `size` bytes from the guest's allocator (or the host region).
    fn alloc(&mut self, size: usize) -> Result<u32, Error> {
        let size_i32 = i32::try_from(size.max(1))
            .map_err(|_| Error::BadResult("buffer larger than 2 GiB".into()))?;
        self.allocator();
        match self.allocator.as_mut().unwrap() {
            GuestAllocator::Exports { malloc, .. } => {
                let malloc = malloc.clone();
                let p = self.call(|s| malloc.call(s, size_i32))?;
                if p == 0 {
                    return Err(Error::MemoryLimit {
                        limit: self.limits.memory_max,
                    });
                }
                Ok(p as u32)
            }
            GuestAllocator::AssemblyScript { new, pin, .. } => {
                let (new, pin) = (new.clone(), pin.clone());
                let p = self.call(|s| new.call(s, size_i32, 0))?;
                self.call(|s| pin.call(s, p))?;
                Ok(p as u32)
            }
            GuestAllocator::HostRegion { .. } => self.region_alloc(size as u32),
        }
    }

    fn dealloc(&mut self, p: i32) -> Result<(), Error> {
        match self.allocator.as_ref() {
            Some(GuestAllocator::Exports { free, .. }) => {
                let free = free.clone();
                self.call(|s| free.call(s, p))
            }
            Some(GuestAllocator::AssemblyScript { unpin, .. }) => {
                let unpin = unpin.clone();
                self.call(|s| unpin.call(s, p))
            }
            _ => Ok(()),
        }
    }

    fn region_alloc(&mut self, size: u32) -> Result<u32, Error> {
        let size = size.max(1).next_multiple_of(8);
        let GuestAllocator::HostRegion { base, len, next } = *self.allocator.as_ref().unwrap()
        else {
            unreachable!()
        };
        if next + size <= len {
            self.set_region(base, len, next + size);
            return Ok(base + next);
        }
        let mem = self
            .memory
            .clone()
            .ok_or_else(|| Error::MissingExport("memory".into()))?;
        let end = mem.view(&self.store).data_size();
        // At the end of memory (the guest has not grown it since): extend in place. Else a
        // new region at least twice the old one, so records of growing size abandon a
        // geometric, bounded amount of memory rather than one region per new size.
        let at_end = len > 0 && base as u64 + len as u64 == end;
        let want = if at_end {
            next + size - len
        } else {
            size.max(len.saturating_mul(2))
        };
        let pages = want.div_ceil(65536);
        let old = mem
            .grow(&mut self.store, pages)
            .map_err(|_| Error::MemoryLimit {
                limit: self.limits.memory_max,
            })?;
        if at_end {
            self.set_region(base, len + pages * 65536, next + size);
            Ok(base + next)
        } else {
            let base = old.0 * 65536;
            self.set_region(base, pages * 65536, size);
            Ok(base)
        }
    }

    fn set_region(&mut self, base: u32, len: u32, next: u32) {
        self.allocator = Some(GuestAllocator::HostRegion { base, len, next });
    }

    /// Frees everything `write` placed in guest memory.
    pub fn release_all(&mut self) -> Result<(), Error> {
        for p in std::mem::take(&mut self.live) {
            self.dealloc(p)?;
        }
        if let Some(GuestAllocator::HostRegion { next, .. }) = self.allocator.as_mut() {
            *next = 0;
        }
        Ok(())
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}
