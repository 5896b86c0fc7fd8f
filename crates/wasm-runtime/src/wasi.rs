//! WASI preview1 set-up on wasmer-wasix: arguments, environment (empty unless given),
//! preopened host directories (guest path = host path, read-only really enforced), and
//! bounded capture of stdout and stderr.

use crate::engine::LoadedModule;
use crate::error::Error;
use std::future::Future;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use virtual_fs::{
    FileOpener, FileSystem, FsError, Metadata, OpenOptions, OpenOptionsConfig, ReadDir, VirtualFile,
};
use wasmer_wasix::runtime::task_manager::tokio::TokioTaskManager;
use wasmer_wasix::{PluggableRuntime, WasiEnvBuilder};

/// A host directory the guest may open, at the same path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preopen {
    pub path: PathBuf,
    pub read_only: bool,
}

/// What the guest sees of the world. Nothing from the host environment leaks in.
#[derive(Clone, Debug, Default)]
pub struct WasiOptions {
    /// argv[1..]; argv[0] is the program name.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    pub program_name: String,
}

/// Bytes a guest wrote to stdout or stderr, up to a limit.
#[derive(Debug, Default)]
pub(crate) struct CaptureBuf {
    pub data: Vec<u8>,
    pub max: usize,
    pub truncated: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Capture(pub Arc<Mutex<CaptureBuf>>);

impl Capture {
    pub fn new(max: usize) -> Capture {
        Capture(Arc::new(Mutex::new(CaptureBuf {
            data: Vec::new(),
            max,
            truncated: false,
        })))
    }

    /// Appends what fits under the limit (the rest is counted as truncated).
    pub fn write(&self, buf: &[u8]) {
        let mut b = self.0.lock().unwrap();
        let room = b.max.saturating_sub(b.data.len());
        if buf.len() > room {
            b.truncated = true;
        }
        let n = buf.len().min(room);
        b.data.extend_from_slice(&buf[..n]);
    }

    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut b = self.0.lock().unwrap();
        let t = b.truncated;
        b.truncated = false;
        (std::mem::take(&mut b.data), t)
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write(buf);
        // Report everything as written: the guest must not loop on a full sink.
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncRead for Capture {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncSeek for Capture {
    fn start_seek(self: Pin<&mut Self>, _position: SeekFrom) -> io::Result<()> {
        Ok(())
    }
    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(0))
    }
}

impl VirtualFile for Capture {
    fn last_accessed(&self) -> u64 {
        0
    }
    fn last_modified(&self) -> u64 {
        0
    }
    fn created_time(&self) -> u64 {
        0
    }
    fn size(&self) -> u64 {
        0
    }
    fn set_len(&mut self, _new_size: u64) -> virtual_fs::Result<()> {
        Ok(())
    }
    fn unlink(&mut self) -> virtual_fs::Result<()> {
        Ok(())
    }
    fn poll_read_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(0))
    }
    fn poll_write_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(8192))
    }
}

/// A filesystem that refuses every change (wasmer-wasix does not enforce read-only preopens).
#[derive(Debug)]
struct ReadOnlyFs(Arc<dyn FileSystem + Send + Sync>);

impl FileSystem for ReadOnlyFs {
    fn readlink(&self, path: &Path) -> virtual_fs::Result<PathBuf> {
        self.0.readlink(path)
    }
    fn read_dir(&self, path: &Path) -> virtual_fs::Result<ReadDir> {
        self.0.read_dir(path)
    }
    fn create_dir(&self, _path: &Path) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }
    fn remove_dir(&self, _path: &Path) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }
    fn rename<'a>(
        &'a self,
        _from: &'a Path,
        _to: &'a Path,
    ) -> Pin<Box<dyn Future<Output = virtual_fs::Result<()>> + Send + 'a>> {
        Box::pin(async { Err(FsError::PermissionDenied) })
    }
    fn metadata(&self, path: &Path) -> virtual_fs::Result<Metadata> {
        self.0.metadata(path)
    }
    fn symlink_metadata(&self, path: &Path) -> virtual_fs::Result<Metadata> {
        self.0.symlink_metadata(path)
    }
    fn remove_file(&self, _path: &Path) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }
    fn new_open_options(&self) -> OpenOptions<'_> {
        OpenOptions::new(self)
    }
}

impl FileOpener for ReadOnlyFs {
    fn open(
        &self,
        path: &Path,
        conf: &OpenOptionsConfig,
    ) -> virtual_fs::Result<Box<dyn VirtualFile + Send + Sync + 'static>> {
        if conf.write || conf.create || conf.create_new || conf.append || conf.truncate {
            return Err(FsError::PermissionDenied);
        }
        self.0.new_open_options().options(conf.clone()).open(path)
    }
}

/// The module's wasmer-wasix runtime: our tokio runtime and the module's engine.
fn wasix_runtime(module: &LoadedModule) -> Arc<dyn wasmer_wasix::Runtime + Send + Sync> {
    module
        .wasix
        .get_or_init(|| {
            let tasks = TokioTaskManager::new(crate::Runtime::global().tokio().handle().clone());
            let mut rt = PluggableRuntime::new(Arc::new(tasks));
            rt.set_engine(module.engine.clone());
            Arc::new(rt)
        })
        .clone()
}

/// [`WasiOptions`] with the accessible paths resolved, once: the exec input starts the same
/// command every interval, and resolving them (`realpath`, `getcwd`, opening the host
/// filesystem) was a tenth of a trivial run.
pub(crate) struct PreparedWasi {
    opts: WasiOptions,
    mounts: Vec<Mount>,
}

struct Mount {
    /// The guest path (the host path made absolute, not resolved through symlinks).
    guest: PathBuf,
    /// The path as configured, which the guest may also use.
    alias: String,
    fs: Arc<dyn FileSystem + Send + Sync>,
    read_only: bool,
}

impl WasiOptions {
    pub(crate) fn prepare(&self) -> Result<PreparedWasi, Error> {
        let rt = crate::Runtime::global().tokio();
        let mut mounts = Vec::with_capacity(self.preopens.len());
        for p in &self.preopens {
            let host = std::fs::canonicalize(&p.path)
                .map_err(|e| Error::Wasi(format!("accessible path {}: {e}", p.path.display())))?;
            let hostfs: Arc<dyn FileSystem + Send + Sync> = Arc::new(
                virtual_fs::host_fs::FileSystem::new(rt.handle().clone(), &host)
                    .map_err(|e| Error::Wasi(format!("accessible path {}: {e}", host.display())))?,
            );
            let fs: Arc<dyn FileSystem + Send + Sync> =
                if p.read_only { Arc::new(ReadOnlyFs(hostfs)) } else { hostfs };
            mounts.push(Mount {
                guest: absolute(&p.path),
                alias: p.path.to_string_lossy().into_owned(),
                fs,
                read_only: p.read_only,
            });
        }
        Ok(PreparedWasi { opts: self.clone(), mounts })
    }
}

/// A WASI environment builder for `wasi`, writing stdout/stderr into the captures.
pub(crate) fn builder(
    wasi: &PreparedWasi,
    module: &LoadedModule,
    stdout: &Capture,
    stderr: &Capture,
) -> Result<WasiEnvBuilder, Error> {
    let opts = &wasi.opts;
    let name = if opts.program_name.is_empty() { "guest" } else { opts.program_name.as_str() };
    let mut b = WasiEnv::builder(name)
        .runtime(wasix_runtime(module))
        .args(&opts.args)
        .envs(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .stdin(Box::new(virtual_fs::NullFile::default()))
        .stdout(Box::new(stdout.clone()))
        .stderr(Box::new(stderr.clone()));
    // Our digest of the bytes (wasmer-wasix would draw a random one for every instance).
    b.set_module_hash(wasmer_types::ModuleHash::from_bytes(module.hash));
    // Only the accessible paths exist; everything else is an empty in-memory root.
    let root = virtual_fs::MountFileSystem::new();
    for m in &wasi.mounts {
        root.mount(&m.guest, m.fs.clone())
            .map_err(|e| Error::Wasi(format!("accessible path {}: {e}", m.guest.display())))?;
    }
    b = b.sandbox_fs(root);
    for m in &wasi.mounts {
        b = b
            .preopen_build(|d| {
                d.directory(&m.guest)
                    .alias(&m.alias)
                    .read(true)
                    .write(!m.read_only)
                    .create(!m.read_only)
            })
            .map_err(|e| Error::Wasi(format!("accessible path {}: {e}", m.guest.display())))?;
    }
    Ok(b)
}

use wasmer_wasix::WasiEnv;

/// The guest path of an accessible path: `.` and relative paths resolve against the current
/// directory, as the built-ins' preopens do.
fn absolute(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| "/".into())
            .join(p)
    };
    // Lexical normalisation: the guest path, not the host's symlink target.
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(s) => out.push(s),
            _ => {}
        }
    }
    out
}
