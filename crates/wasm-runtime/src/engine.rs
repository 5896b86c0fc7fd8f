//! Engines, tunables (the memory cap) and the module cache.

use crate::error::Error;
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock};
use wasmer::sys::vm::{
    MemoryError, MemoryStyle, TableStyle, VMMemory, VMMemoryDefinition, VMTable, VMTableDefinition,
};
use wasmer::sys::{BaseTunables, CompilerConfig, EngineBuilder, NativeEngineExt, Tunables};
use wasmer::{Engine, MemoryType, Module, Pages, TableType};

/// Which wasmer compiler turns wasm into machine code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compiler {
    /// Optimising; the default (faster guests, slower compilation).
    #[default]
    Cranelift,
    /// Single pass; compiles several times faster, runs slower.
    Singlepass,
}

impl Compiler {
    pub fn parse(s: &str) -> Option<Compiler> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cranelift" => Some(Compiler::Cranelift),
            "singlepass" => Some(Compiler::Singlepass),
            _ => None,
        }
    }
}

/// How a module is compiled.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct EngineOptions {
    pub compiler: Compiler,
    /// Instrument for the per-call time limit (see `Limits::call_timeout`).
    pub interruptible: bool,
    /// Keep compiled artefacts in this private directory (integrity-checked).
    pub cache_dir: Option<PathBuf>,
}

/// A compiled module, shared by every instance that uses the same bytes and options.
#[derive(Clone)]
pub struct LoadedModule {
    pub module: Module,
    pub(crate) engine: Engine,
    pub interruptible: bool,
    /// SHA-256 of the wasm bytes.
    pub hash: [u8; 32],
    /// Where the compiled code came from.
    pub source: ModuleSource,
    /// The wasmer-wasix runtime for this module's WASI instances, made on first use and
    /// shared by every instance and run: building one costs more than a whole trivial run
    /// (it sizes thread pools from the cgroup files).
    pub(crate) wasix: Arc<OnceLock<Arc<dyn wasmer_wasix::Runtime + Send + Sync>>>,
    /// Whether an instance can be put back into its just-instantiated state to run again
    /// (see [`crate::command::rerunnable`]).
    pub(crate) rerunnable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleSource {
    Compiled,
    MemoryCache,
    DiskCache,
}

thread_local! {
    /// The memory cap (in pages) for instances created on this thread right now.
    static MEMORY_CAP_PAGES: Cell<u32> = const { Cell::new(65536) };
}

/// Runs `f` with `cap` bytes as the memory cap for memories it creates.
pub(crate) fn with_memory_cap<R>(cap: u64, f: impl FnOnce() -> R) -> R {
    let pages = (cap / 65536).clamp(1, 65536) as u32;
    let prev = MEMORY_CAP_PAGES.with(|c| c.replace(pages));
    let r = f();
    MEMORY_CAP_PAGES.with(|c| c.set(prev));
    r
}

/// wasmer's tunables with every memory's maximum clamped to the current cap. A module whose
/// minimum exceeds the cap fails to instantiate; `memory.grow` past it returns -1.
struct CappedTunables(BaseTunables);

impl CappedTunables {
    fn clamp(ty: &MemoryType) -> Result<MemoryType, MemoryError> {
        let cap = MEMORY_CAP_PAGES.with(Cell::get);
        if ty.minimum.0 > cap {
            return Err(MemoryError::Generic(format!(
                "the module needs {} bytes of memory at start, more than the memory limit of {} bytes",
                ty.minimum.0 as u64 * 65536,
                cap as u64 * 65536
            )));
        }
        let mut t = *ty;
        t.maximum = Some(Pages(ty.maximum.map_or(cap, |m| m.0.min(cap))));
        Ok(t)
    }
}

impl Tunables for CappedTunables {
    fn memory_style(&self, memory: &MemoryType) -> MemoryStyle {
        self.0.memory_style(memory)
    }
    fn table_style(&self, table: &TableType) -> TableStyle {
        self.0.table_style(table)
    }
    fn create_host_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
    ) -> Result<VMMemory, MemoryError> {
        self.0.create_host_memory(&Self::clamp(ty)?, style)
    }
    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
        loc: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        let ty = Self::clamp(ty)?;
        if crate::memory_pool::PooledMemory::serves(&ty, style) {
            // SAFETY: wasmer passes the instance's own definition, valid as long as the memory.
            return Ok(VMMemory(Box::new(unsafe { crate::memory_pool::PooledMemory::new(&ty, loc)? })));
        }
        // SAFETY: forwarded unchanged apart from the clamped type.
        unsafe { self.0.create_vm_memory(&ty, style, loc) }
    }
    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.0.create_host_table(ty, style)
    }
    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        loc: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        unsafe { self.0.create_vm_table(ty, style, loc) }
    }
}

fn new_engine(compiler: Compiler, interruptible: bool) -> Engine {
    let mut config: Box<dyn CompilerConfig> = match compiler {
        Compiler::Cranelift => Box::new(wasmer::sys::Cranelift::default()),
        Compiler::Singlepass => Box::new(wasmer::sys::Singlepass::default()),
    };
    if interruptible {
        // The middleware serves exactly one module, hence an engine per interruptible module.
        config.push_middleware(Arc::new(crate::interrupt::Interrupt::default()));
    }
    let mut engine: Engine = EngineBuilder::new(config).engine().into();
    engine.set_tunables(CappedTunables(BaseTunables::new()));
    engine
}

type CacheKey = ([u8; 32], Compiler, bool);

/// One per loaded library: engines, the module cache and the tokio runtime WASI needs.
pub struct Runtime {
    plain_engines: Mutex<HashMap<Compiler, Engine>>,
    modules: Mutex<HashMap<CacheKey, LoadedModule>>,
    tokio: OnceLock<tokio::runtime::Runtime>,
}

impl Runtime {
    /// The runtime of this library (shared by all its plugin instances).
    pub fn global() -> &'static Runtime {
        static RT: OnceLock<Runtime> = OnceLock::new();
        RT.get_or_init(Runtime::new)
    }

    /// A separate runtime with its own in-memory module cache (tests, tools).
    pub fn new() -> Runtime {
        Runtime {
            plain_engines: Mutex::default(),
            modules: Mutex::default(),
            tokio: OnceLock::new(),
        }
    }

    pub(crate) fn tokio(&self) -> &tokio::runtime::Runtime {
        self.tokio.get_or_init(|| {
            // Our own small runtime: WASI's file and pipe futures run here; no signal handlers.
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("flb-wasmer-io")
                .enable_time()
                .build()
                .expect("tokio runtime")
        })
    }

    /// Reads and compiles `path` (once per distinct content and options).
    pub fn load(&self, path: &Path, opts: &EngineOptions) -> Result<LoadedModule, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.load_bytes(&bytes, opts).map_err(|e| match e {
            Error::Compile(m) => Error::Compile(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    pub fn load_bytes(&self, bytes: &[u8], opts: &EngineOptions) -> Result<LoadedModule, Error> {
        crate::check::refuse_foreign_format(bytes)?;
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        let key = (hash, opts.compiler, opts.interruptible);
        if let Some(m) = self.modules.lock().unwrap().get(&key) {
            return Ok(LoadedModule {
                source: ModuleSource::MemoryCache,
                ..m.clone()
            });
        }
        let engine = if opts.interruptible {
            new_engine(opts.compiler, true)
        } else {
            self.plain_engines
                .lock()
                .unwrap()
                .entry(opts.compiler)
                .or_insert_with(|| new_engine(opts.compiler, false))
                .clone()
        };
        let disk = opts
            .cache_dir
            .as_deref()
            .map(|d| crate::cache::DiskCache::open(d, &hash, opts))
            .transpose()?;
        let (module, source) = match disk.as_ref().and_then(|c| c.load(&engine)) {
            Some(m) => (m, ModuleSource::DiskCache),
            None => {
                let m = Module::new(&engine, bytes).map_err(|e| Error::Compile(e.to_string()))?;
                if let Some(c) = &disk {
                    c.store(&m);
                }
                (m, ModuleSource::Compiled)
            }
        };
        // Scanning the code is only worth it for commands (~20 ms for a 2.4 MB Go program).
        let rerunnable = crate::command::entry_point(&module).is_some() && crate::command::rerunnable(bytes);
        let loaded = LoadedModule {
            module,
            engine,
            interruptible: opts.interruptible,
            hash,
            source,
            wasix: Default::default(),
            rerunnable,
        };
        self.modules.lock().unwrap().insert(key, loaded.clone());
        Ok(loaded)
    }
}
