//! Lifecycle and fault tolerance inside a real fluent-bit: both plugin libraries (each with
//! its own wasmer) loaded together, guest faults caught as traps in both after the host has
//! re-installed its own fatal-signal handlers (every hot reload does), shutdown during a
//! guest that never returns.

use e2e::fixtures::fixture;
use e2e::*;
use std::time::Duration;

fn both_plugins_config(dir: &std::path::Path, hot_reload: bool) -> std::path::PathBuf {
    let p = plugins();
    let yaml = format!(
        "service:\n  flush: 0.2\n  grace: 2\n  hot_reload: {}\nplugins:\n  - {}\n  - {}\npipeline:\n  inputs:\n    - name: exec_wasi_wasmer\n      wasi_path: {}\n      interval_sec: 0\n      interval_nsec: 300000000\n      tag: wasi\n    - name: dummy\n      dummy: '{{\"w\":\"boom\"}}'\n      rate: 20\n      tag: d\n  filters:\n    - name: wasm_wasmer\n      match: d\n      wasm_path: {}\n      function_name: faulty\n  outputs:\n    - name: stdout\n      match: '*'\n      format: json_lines\n",
        if hot_reload { "on" } else { "off" },
        p.input.display(),
        p.filter.display(),
        fixture("exec_trap.wasm").display(),
        fixture("filter_faults.wasm").display(),
    );
    write_file(dir, "fluent-bit.yaml", yaml)
}

/// Traps in both libraries, before and after 20 hot reloads; records keep flowing.
fn traps_in_both_libraries_survive_hot_reloads(host: &Host) -> Result<(), Failed> {
    let dir = scratch_dir("reload");
    let cfg = both_plugins_config(&dir, true);
    let reloads = 20;
    let signals: Vec<(Duration, i32)> = (0..reloads).map(|i| (Duration::from_millis(2000 + 1500 * i), libc::SIGHUP)).collect();
    let total = Duration::from_millis(2000 + 1500 * reloads + 3000);
    let r = run_signals(host, &["-c", cfg.to_str().unwrap()], total, &signals);
    r.assert_no_crash()?;
    let log = r.log();
    let reloaded = log.matches("[reload] start everything").count();
    eprintln!("  {reloads} SIGHUPs sent; {reloaded} reload lines logged");
    check(reloaded == reloads as usize, format!("{reloaded} of {reloads} reloads happened"), &r)?;
    // What happened after the last reload: both guests still trap cleanly.
    let tail_start = log.rfind("[reload] start everything").unwrap_or(0);
    let tail = &log[tail_start..];
    check(tail.contains("exec_trap.wasm trapped"), "no exec_wasi trap caught after the last reload", &r)?;
    check(tail.contains("guest trapped"), "no filter trap caught after the last reload", &r)?;
    let boom = r.bodies().iter().filter(|b| b["w"] == "boom").count();
    let wasi = r.bodies().iter().filter(|b| b["wasi_stdout"] == "before trap 1").count();
    eprintln!("  {boom} filter records kept through traps, {wasi} exec runs' lines kept");
    check(boom > 100 && wasi > 20, format!("records stopped flowing: {boom} filter, {wasi} exec"), &r)
}

/// SIGTERM while a guest loops: the host stops within its grace period.
fn sigterm_during_a_guest_that_never_returns(host: &Host) -> Result<(), Failed> {
    let p = plugins();
    let dir = scratch_dir("sigterm");
    let yaml = format!(
        "service:\n  flush: 0.2\n  grace: 2\nplugins:\n  - {}\npipeline:\n  inputs:\n    - name: exec_wasi_wasmer\n      wasi_path: {}\n      oneshot: true\n  outputs:\n    - name: stdout\n      match: '*'\n",
        p.input.display(),
        fixture("exec_loop.wasm").display()
    );
    let cfg = write_file(&dir, "fluent-bit.yaml", yaml);
    let started = std::time::Instant::now();
    let r = run_signals(host, &["-c", cfg.to_str().unwrap()], Duration::from_secs(20), &[(Duration::from_secs(2), libc::SIGTERM)]);
    let took = started.elapsed();
    r.assert_no_crash()?;
    eprintln!("  stopped {:.1} s after start (SIGTERM at 2 s, grace 2 s)", took.as_secs_f64());
    check(r.log().contains("SIGTERM"), "the host did not run until the SIGTERM", &r)?;
    check(!r.timed_out && took >= Duration::from_secs(2) && took < Duration::from_secs(9), format!("shutdown took {took:?}"), &r)
}

fn main() {
    let args = Arguments::from_args();
    let cases: &[(&'static str, fn(&Host) -> Result<(), Failed>)] = &[
        ("traps_in_both_libraries_survive_hot_reloads", traps_in_both_libraries_survive_hot_reloads),
        ("sigterm_during_a_guest_that_never_returns", sigterm_during_a_guest_that_never_returns),
    ];
    libtest_mimic::run(&args, trials_per_host("reliability", cases)).exit();
}
