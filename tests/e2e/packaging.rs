//! Packaging, as a distro packager and an operator would use it: `cmake --install` into a
//! DESTDIR gives the documented layout; the `.deb` built from it installs with dpkg, a real
//! host runs both plugins from the installed plugins file and `-e libexec_wasi.so` by its
//! bare name, and removal leaves nothing behind. Needs root (dpkg) and a host: otherwise the
//! tests are reported ignored with the reason.

use e2e::fixtures::fixture;
use e2e::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn sh(cmd: &mut Command) -> Result<String, Failed> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("{cmd:?} failed:\n{text}").into());
    }
    Ok(text)
}

/// Configures and builds the CMake project on the binaries this test run was built with.
fn cmake_build(prefix: &str) -> Result<PathBuf, Failed> {
    let build = scratch_dir("cmake");
    let src = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../cmake");
    sh(Command::new("cmake")
        .arg("-S")
        .arg(&src)
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_INSTALL_PREFIX={prefix}"))
        .arg(format!("-DWASMER_PLUGINS_PREBUILT_DIR={}", target_profile_dir().display())))?;
    sh(Command::new("cmake").arg("--build").arg(&build))?;
    Ok(build)
}

const LAYOUT: &[&str] = &[
    "usr/lib/x86_64-linux-gnu/fluent-bit/plugins/flb-in_exec_wasi_wasmer.so",
    "usr/lib/x86_64-linux-gnu/fluent-bit/plugins/flb-filter_wasm_wasmer.so",
    "usr/lib/x86_64-linux-gnu/libexec_wasi.so",
    "usr/bin/flb-wasm",
    "usr/include/flb_wasm_filter.h",
    "etc/fluent-bit/flb-wasmer-plugins.conf",
    "etc/fluent-bit/flb-wasmer-plugins.yaml",
    "usr/share/doc/flb-wasmer/README.md",
];

fn cmake_install_gives_the_documented_layout(_host: &Host) -> Result<(), Failed> {
    let build = cmake_build("/usr")?;
    let dest = scratch_dir("destdir");
    sh(Command::new("cmake").arg("--install").arg(&build).env("DESTDIR", &dest))?;
    for f in LAYOUT {
        if !dest.join(f).is_file() {
            return Err(format!("{f} missing from the install").into());
        }
    }
    let yaml = std::fs::read_to_string(dest.join("etc/fluent-bit/flb-wasmer-plugins.yaml"))?;
    if !yaml.contains("  - /usr/lib/x86_64-linux-gnu/fluent-bit/plugins/flb-filter_wasm_wasmer.so") {
        return Err(format!("the plugins file names the wrong paths:\n{yaml}").into());
    }
    Ok(())
}

fn deb_installs_runs_and_removes_cleanly(host: &Host) -> Result<(), Failed> {
    let build = cmake_build("/usr")?;
    sh(Command::new("cpack").args(["-G", "DEB"]).current_dir(&build))?;
    let deb = std::fs::read_dir(&build)?.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "deb")).ok_or("no .deb")?;
    sh(Command::new("dpkg").arg("-i").arg(&deb))?;
    let files = sh(Command::new("dpkg").args(["-L", "flb-wasmer"]))?;
    let result = (|| -> Result<(), Failed> {
        // Records through both plugins, loaded only from the installed plugins file.
        let dir = scratch_dir("deb");
        let yaml = format!(
            "service:\n  flush: 0.2\n  grace: 1\n  plugins_file: /etc/fluent-bit/flb-wasmer-plugins.yaml\npipeline:\n  inputs:\n    - name: exec_wasi_wasmer\n      wasi_path: {}\n      oneshot: true\n  filters:\n    - name: wasm_wasmer\n      match: '*'\n      wasm_path: {}\n      function_name: add_field\n  outputs:\n    - name: stdout\n      match: '*'\n      format: json_lines\n",
            fixture("exec_hello.wasm").display(),
            fixture("filter_add_field.wasm").display()
        );
        let cfg = write_file(&dir, "fluent-bit.yaml", yaml);
        let r = run(host, &["-c", cfg.to_str().unwrap()], Duration::from_secs(3));
        r.assert_no_crash()?;
        let n = r.bodies().iter().filter(|b| b["wasm"] == "yes" && b["wasi_stdout"].is_string()).count();
        check(n == 3, format!("{n} records through both installed plugins"), &r)?;
        // The bare name, found on the loader's path.
        let wp = format!("wasi_path={}", fixture("exec_hello.wasm").display());
        let r = run(host, &["-e", "libexec_wasi.so", "-i", "exec_wasi_wasmer", "-p", &wp, "-o", "stdout", "-p", "format=json_lines", "-f", "0.2"], Duration::from_secs(3));
        r.assert_no_crash()?;
        check(r.bodies().iter().any(|b| b["wasi_stdout"] == "first line"), "fluent-bit -e libexec_wasi.so gave no records", &r)
    })();
    sh(Command::new("dpkg").args(["-r", "flb-wasmer"]))?;
    result?;
    let left: Vec<&str> = files.lines().filter(|f| Path::new(f).is_file()).collect();
    if !left.is_empty() {
        return Err(format!("left behind after dpkg -r: {left:?}").into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let cases: &[(&'static str, fn(&Host) -> Result<(), Failed>)] = &[
        ("cmake_install_gives_the_documented_layout", cmake_install_gives_the_documented_layout),
        ("deb_installs_runs_and_removes_cleanly", deb_installs_runs_and_removes_cleanly),
    ];
    let missing: Vec<&str> = ["cmake", "cpack", "dpkg", "strip"].into_iter().filter(|t| Command::new("sh").arg("-c").arg(format!("command -v {t}")).output().map_or(true, |o| !o.status.success())).collect();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !missing.is_empty() {
        let why = if !root { "not root (dpkg -i needs it)".to_string() } else { format!("missing tools: {}", missing.join(", ")) };
        eprintln!("\n*** e2e packaging: SKIPPED {} tests: {why} ***\n", cases.len());
        let trials = cases.iter().map(|(n, _)| Trial::test(format!("packaging::{n}"), || Ok(())).with_ignored_flag(true)).collect();
        libtest_mimic::run(&args, trials).exit();
    }
    // One host is enough: the package is the same for all.
    let trials: Vec<Trial> = trials_per_host("packaging", cases).into_iter().take(cases.len()).collect();
    libtest_mimic::run(&args, trials).exit();
}
