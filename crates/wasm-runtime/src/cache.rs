//! On-disk cache of compiled modules.
//!
//! wasmer's deserialisation is unchecked (a tampered artefact is executed as machine code),
//! so every artefact carries an HMAC-SHA256 under a key that lives in the same private
//! directory (0700, owned by us, key file 0600). An artefact that fails the check, or fails
//! to deserialise, is deleted and the module is compiled again.

use crate::engine::EngineOptions;
use crate::error::Error;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmer::{Engine, Module};

type HmacSha256 = Hmac<Sha256>;

pub(crate) struct DiskCache {
    file: PathBuf,
    key: Vec<u8>,
}

fn private_dir(dir: &Path) -> Result<(), Error> {
    let bad = |why: String| Error::Compile(format!("module cache directory {}: {why}", dir.display()));
    fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    let meta = fs::metadata(dir).map_err(|e| bad(e.to_string()))?;
    // SAFETY: geteuid has no preconditions.
    if meta.uid() != unsafe { libc::geteuid() } {
        return Err(bad("not owned by this user".into()));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| bad(format!("cannot make it private: {e}")))?;
    }
    Ok(())
}

fn cache_key(dir: &Path) -> Result<Vec<u8>, Error> {
    let path = dir.join("key");
    if let Ok(k) = fs::read(&path) {
        if k.len() == 32 {
            return Ok(k);
        }
    }
    let mut key = vec![0u8; 32];
    let mut rnd = fs::File::open("/dev/urandom").map_err(|e| Error::Compile(format!("no randomness for the cache key: {e}")))?;
    std::io::Read::read_exact(&mut rnd, &mut key).map_err(|e| Error::Compile(e.to_string()))?;
    let tmp = dir.join(format!("key.{}", std::process::id()));
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(|e| Error::Compile(e.to_string()))?;
    f.write_all(&key).map_err(|e| Error::Compile(e.to_string()))?;
    // Another process may have won the race: use whichever key ends up in place.
    if fs::hard_link(&tmp, &path).is_err() {
        let _ = fs::remove_file(&tmp);
        return fs::read(&path).map_err(|e| Error::Compile(e.to_string()));
    }
    let _ = fs::remove_file(&tmp);
    Ok(key)
}

impl DiskCache {
    pub fn open(dir: &Path, hash: &[u8; 32], opts: &EngineOptions) -> Result<DiskCache, Error> {
        private_dir(dir)?;
        let key = cache_key(dir)?;
        let mut h = Sha256::new();
        h.update(hash);
        h.update(format!("{:?}/{}/{}/{}", opts.compiler, opts.interruptible.then_some(crate::interrupt::INSTRUMENTATION).unwrap_or("none"), env!("CARGO_PKG_VERSION"), std::env::consts::ARCH));
        let name: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(DiskCache { file: dir.join(format!("{name}.wasmer")), key })
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("any key length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    pub fn load(&self, engine: &Engine) -> Option<Module> {
        let data = fs::read(&self.file).ok()?;
        let ok = data.len() > 32 && {
            let mut m = HmacSha256::new_from_slice(&self.key).expect("any key length");
            m.update(&data[32..]);
            m.verify_slice(&data[..32]).is_ok()
        };
        if ok {
            // SAFETY: the artefact is authenticated: it was written by `store` with our key.
            if let Ok(m) = unsafe { Module::deserialize(engine, &data[32..]) } {
                return Some(m);
            }
        }
        log::warn!("discarding invalid compiled-module cache entry {}", self.file.display());
        let _ = fs::remove_file(&self.file);
        None
    }

    pub fn store(&self, module: &Module) {
        let Ok(bytes) = module.serialize() else { return };
        let mut out = self.mac(&bytes);
        out.extend_from_slice(&bytes);
        let tmp = self.file.with_extension(format!("tmp{}", std::process::id()));
        if fs::write(&tmp, &out).is_ok() {
            let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600));
            let _ = fs::rename(&tmp, &self.file);
        }
    }
}
