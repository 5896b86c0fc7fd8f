//! ELF hygiene of the built plugins (host-free): what they export, what they need, and that
//! they stay mapped after dlclose.

use e2e::target_profile_dir;
use std::path::PathBuf;
use std::process::Command;

fn libs() -> Vec<PathBuf> {
    ["libexec_wasi.so", "libfilter_wasm.so"]
        .iter()
        .map(|n| {
            let p = target_profile_dir().join(n);
            assert!(p.exists(), "{} missing: run `cargo build --release --workspace` first", p.display());
            p
        })
        .collect()
}

fn tool(cmd: &str, args: &[&str], lib: &PathBuf) -> String {
    let out = Command::new(cmd).args(args).arg(lib).output().unwrap_or_else(|e| panic!("{cmd} not available ({e}); install binutils"));
    assert!(out.status.success(), "{cmd} failed on {}", lib.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Symbols a plugin may export: the registration objects, the Go-proxy entry points, and
/// the signal-chaining entry points other copies of our runtime look up.
fn allowed(sym: &str) -> bool {
    sym.ends_with("_plugin") && (sym.starts_with("in_") || sym.starts_with("filter_"))
        || sym.starts_with("FLBPlugin")
        || sym.starts_with("flb_wasmer_signal_")
}

#[test]
fn only_plugin_entry_points_are_exported() {
    for lib in libs() {
        let nm = tool("nm", &["-D", "--defined-only", "--format=posix"], &lib);
        let extra: Vec<&str> = nm.lines().filter_map(|l| l.split_whitespace().next()).filter(|s| !allowed(s)).collect();
        assert!(extra.is_empty(), "{} exports {} unexpected symbols, e.g. {:?}", lib.display(), extra.len(), &extra[..extra.len().min(10)]);
    }
}

#[test]
fn needs_only_the_c_runtime() {
    let ok = ["libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"];
    for lib in libs() {
        let dynamic = tool("readelf", &["-d", "-W"], &lib);
        for line in dynamic.lines().filter(|l| l.contains("(NEEDED)")) {
            let name = line.split('[').nth(1).and_then(|s| s.split(']').next()).unwrap_or("");
            assert!(ok.contains(&name), "{} needs {name}", lib.display());
        }
        assert!(dynamic.lines().any(|l| l.contains("FLAGS_1") && l.contains("NODELETE")), "{} lacks DF_1_NODELETE", lib.display());
    }
}

#[test]
fn reports_newest_glibc_symbol_version() {
    for lib in libs() {
        let v = tool("objdump", &["-T"], &lib);
        let mut versions: Vec<(u32, u32)> = v
            .split_whitespace()
            .filter_map(|w| w.trim_start_matches('(').strip_prefix("GLIBC_"))
            .filter_map(|v| {
                let mut it = v.trim_end_matches(')').split('.');
                Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
            })
            .collect();
        versions.sort();
        let newest = versions.last().expect("no glibc versions found");
        eprintln!("{}: newest glibc symbol version GLIBC_{}.{}", lib.display(), newest.0, newest.1);
        // The README promises glibc 2.34 (RHEL 9, Ubuntu 22.04, Debian 12, Amazon Linux 2023).
        assert!(*newest <= (2, 34), "needs GLIBC_{}.{}", newest.0, newest.1);
    }
}
