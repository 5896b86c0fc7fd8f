//! Guest fixtures, built from the committed sources in `tests/fixtures/` by its `build.sh`
//! the first time a test asks for one (up-to-date outputs are not rebuilt).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The directory the fixtures are built into (outside the source tree).
pub fn out_dir() -> PathBuf {
    crate::target_profile_dir().join("guest-fixtures")
}

fn build_all() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("fixtures/build.sh");
            let out = out_dir();
            let res = Command::new("bash").arg(&script).arg(&out).output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if !res.status.success() {
                return Err(format!(
                    "{} failed:\n{}{}",
                    script.display(),
                    String::from_utf8_lossy(&res.stdout),
                    String::from_utf8_lossy(&res.stderr)
                ));
            }
            Ok(out)
        })
        .clone()
}

/// Path of the built fixture `name` (e.g. `exec_hello.wasm`). Panics with the build log if
/// the fixtures cannot be built: a missing toolchain is a setup error, not a skip.
pub fn fixture(name: &str) -> PathBuf {
    let dir = build_all().unwrap_or_else(|e| panic!("guest fixtures: {e}"));
    let p = dir.join(name);
    assert!(p.exists(), "fixture {name} was not built into {}", dir.display());
    p
}

/// Source directory of the fixtures (data files live there too).
pub fn source_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("fixtures")
}
