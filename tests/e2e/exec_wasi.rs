//! exec_wasi_wasmer inside a real fluent-bit, side by side with the built-in exec_wasi.

use e2e::fixtures::{fixture, source_dir};
use e2e::*;
use serde_json::json;
use std::time::Duration;

fn ours(host: &Host, wasm: &str, extra: &[&str], secs: u64) -> Run {
    let p = plugins();
    let path = fixture(wasm);
    let mut args = vec!["-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-p"];
    let wp = format!("wasi_path={}", path.display());
    args.push(&wp);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-o", "stdout", "-p", "format=json_lines", "-f", "0.2"]);
    run(host, &args, Duration::from_secs(secs))
}

fn builtin(host: &Host, wasm: &str, extra: &[&str], secs: u64) -> Run {
    let path = fixture(wasm);
    let wp = format!("wasi_path={}", path.display());
    let mut args = vec!["-i", "exec_wasi", "-p", &wp];
    // Up to v4.0.x the built-in's `oneshot` property is misnamed `bool` (its config map).
    let help = std::process::Command::new(&host.bin).args(["-i", "exec_wasi", "-h"]).output().expect("fluent-bit -h");
    let misnamed = !String::from_utf8_lossy(&help.stdout).contains("oneshot");
    let renamed: Vec<String> = extra
        .iter()
        .map(|a| match a.strip_prefix("oneshot=") {
            Some(v) if misnamed => format!("bool={v}"),
            _ => a.to_string(),
        })
        .collect();
    args.extend(renamed.iter().map(String::as_str));
    args.extend_from_slice(&["-o", "stdout", "-p", "format=json_lines", "-f", "0.2"]);
    run(host, &args, Duration::from_secs(secs))
}

fn lines(run: &Run) -> Vec<String> {
    run.bodies().iter().filter_map(|b| b["wasi_stdout"].as_str().map(str::to_owned)).collect()
}

fn same_records_as_the_builtin(host: &Host) -> Result<(), Failed> {
    for wasm in ["exec_hello.wasm", "exec_hello_c.wasm"] {
        let a = ours(host, wasm, &["-p", "oneshot=true"], 3);
        let b = builtin(host, wasm, &["-p", "oneshot=true"], 3);
        a.assert_no_crash()?;
        check(lines(&a) == ["first line", "second line", "third line"], format!("ours: {:?}", lines(&a)), &a)?;
        check(a.bodies() == b.bodies(), format!("built-in gave {:?}", b.bodies()), &a)?;
    }
    // stdout is a file, not a terminal, as under the built-in (so C's stdio buffers it);
    // stderr too (the built-in passes Fluent Bit's own stderr, whatever that is).
    let a = ours(host, "exec_stdio.wasm", &["-p", "oneshot=true"], 3);
    let b = builtin(host, "exec_stdio.wasm", &["-p", "oneshot=true"], 3);
    check(lines(&a) == ["stdout: regular file, isatty 0", "stderr: regular file, isatty 0"], format!("ours: {:?}", lines(&a)), &a)?;
    check(lines(&a)[..1] == lines(&b)[..1], format!("built-in gave {:?}", lines(&b)), &a)?;
    // Rust (wasm32-wasi, Debian's rustc 1.63).
    let a = ours(host, "rust_exec_lines.wasm", &["-p", "oneshot=true"], 3);
    let b = builtin(host, "rust_exec_lines.wasm", &["-p", "oneshot=true"], 3);
    check(lines(&a) == ["rust line 1", "rust line 2", "rust line 3"], format!("ours: {:?}", lines(&a)), &a)?;
    check(a.bodies() == b.bodies(), format!("built-in gave {:?}", b.bodies()), &a)?;
    // Zig 0.17 (wasm32-wasi).
    let a = ours(host, "zig_exec_lines.wasm", &["-p", "oneshot=true"], 3);
    let b = builtin(host, "zig_exec_lines.wasm", &["-p", "oneshot=true"], 3);
    check(lines(&a) == ["zig line 1", "zig line 2", "zig line 3"], format!("ours: {:?}", lines(&a)), &a)?;
    match b.builtin_load_failure() {
        Some(e) => eprintln!("  NOT COMPARED: the built-in of {} cannot load zig_exec_lines.wasm: {e}", host.version),
        None => check(a.bodies() == b.bodies(), format!("built-in gave {:?}", b.bodies()), &a)?,
    }
    // Go wasip1: the built-in refuses it ("WASI main function is not found"); ours runs it,
    // with only the environment it is given. Compiling its 2.4 MB takes ~5 s of CPU (two
    // cranelift threads), and both hosts' suites compile it at once.
    let g = ours(host, "go_exec.wasm", &["-p", "oneshot=true", "-p", "env=A=1", "-p", "args=x y"], 10);
    check(
        lines(&g) == [r#"{"go_env":"A","value":"1"}"#, r#"{"go":"done","args":2}"#],
        format!("Go program: {:?}", lines(&g)),
        &g,
    )?;
    Ok(())
}

fn c_program_and_oneshot_runs_once(host: &Host) -> Result<(), Failed> {
    let r = ours(host, "exec_hello.wasm", &["-p", "oneshot=true"], 3);
    r.assert_no_crash()?;
    check(lines(&r).len() == 3, format!("oneshot gave {} records", lines(&r).len()), &r)?;
    // After its one run the input stays idle (its wake-up pipe once reported end-of-file and
    // fluent-bit's event loop spun, ~2 s of CPU in these 3 s; an idle host uses ~0.05 s).
    check(r.cpu < Duration::from_millis(1000), format!("fluent-bit used {:?} of CPU in 3 s after a oneshot run", r.cpu), &r)?;
    // The built-in's name for `oneshot` up to v4.0.x (a short interval: any second run shows).
    let b = ours(host, "exec_hello.wasm", &["-p", "bool=true", "-p", "interval_sec=0", "-p", "interval_nsec=200000000"], 3);
    check(lines(&b).len() == 3, format!("bool=true gave {} records", lines(&b).len()), &b)?;
    let c = ours(host, "exec_exit3.wasm", &["-p", "oneshot=true"], 3);
    check(lines(&c) == ["going to fail", "exit code follows"], format!("{:?}", lines(&c)), &c)?;
    check(c.log().contains("exited with status 3"), "no warning naming status 3", &c)
}

fn interval_is_respected(host: &Host) -> Result<(), Failed> {
    let r = ours(host, "exec_hello.wasm", &["-p", "interval_sec=0", "-p", "interval_nsec=500000000"], 4);
    r.assert_no_crash()?;
    let runs = lines(&r).iter().filter(|l| *l == "first line").count();
    // About 4 s at 2 runs per second, minus start-up and shutdown.
    check((4..=9).contains(&runs), format!("{runs} runs in ~4 s with a 0.5 s interval"), &r)
}

fn reads_only_accessible_paths(host: &Host) -> Result<(), Failed> {
    let dir = scratch_dir("readfile");
    std::fs::copy(source_dir().join("data/input.txt"), dir.join("input.txt")).unwrap();
    let p = plugins();
    let wp = format!("wasi_path={}", fixture("exec_readfile.wasm").display());
    let args = ["-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-p", &wp, "-p", "oneshot=true", "-p", "accessible_paths=.", "-o", "stdout", "-p", "format=json_lines", "-f", "0.2"];
    let r = run_in(host, &args, Duration::from_secs(3), Some(&dir));
    r.assert_no_crash()?;
    check(lines(&r) == ["line one from the file", "line two from the file"], format!("{:?}", lines(&r)), &r)?;
    check(r.log().contains("stderr: denied: /etc/hostname"), "the refused read outside accessible_paths was not logged", &r)
}

fn read_only_refuses_writes(host: &Host) -> Result<(), Failed> {
    let dir = scratch_dir("write");
    let p = plugins();
    let wp = format!("wasi_path={}", fixture("exec_write.wasm").display());
    for (ro, expect) in [("true", "write refused"), ("false", "write succeeded")] {
        let ro = format!("read_only={ro}");
        let args = ["-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-p", &wp, "-p", "oneshot=true", "-p", &ro, "-o", "stdout", "-p", "format=json_lines", "-f", "0.2"];
        let r = run_in(host, &args, Duration::from_secs(3), Some(&dir));
        check(lines(&r).first().is_some_and(|l| l.starts_with(expect)), format!("{ro}: {:?}", lines(&r)), &r)?;
    }
    Ok(())
}

fn args_and_env(host: &Host) -> Result<(), Failed> {
    let plain = ours(host, "exec_env.wasm", &["-p", "oneshot=true"], 3);
    check(lines(&plain) == ["done"], format!("no args/env by default, got {:?}", lines(&plain)), &plain)?;
    let r = ours(host, "exec_env.wasm", &["-p", "oneshot=true", "-p", "args=x y", "-p", "env=A=1", "-p", "env=B=two"], 3);
    check(lines(&r) == ["arg=x", "arg=y", "env=A=1", "env=B=two", "done"], format!("{:?}", lines(&r)), &r)
}

fn endless_run_is_interrupted_while_others_flow(host: &Host) -> Result<(), Failed> {
    let p = plugins();
    let wp = format!("wasi_path={}", fixture("exec_loop.wasm").display());
    let args = [
        "-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-p", &wp, "-p", "timeout=1s", "-p", "tag=wasi",
        "-i", "dummy", "-p", "rate=5", "-p", "tag=dummy", "-p", "dummy={\"alive\":true}",
        "-o", "stdout", "-p", "format=json_lines", "-m", "*", "-f", "0.2",
    ];
    let r = run(host, &args, Duration::from_secs(4));
    r.assert_no_crash()?;
    check(r.log().contains("interrupted at the timeout of 1s"), "no timeout line", &r)?;
    check(lines(&r).iter().any(|l| l == "looping"), "the line printed before the timeout was lost", &r)?;
    let alive = r.bodies().iter().filter(|b| **b == json!({"alive": true})).count();
    check(alive >= 8, format!("only {alive} records from the other input while the guest looped"), &r)
}

fn trap_keeps_printed_lines(host: &Host) -> Result<(), Failed> {
    let r = ours(host, "exec_trap.wasm", &["-p", "oneshot=true"], 3);
    r.assert_no_crash()?;
    check(lines(&r) == ["before trap 1", "before trap 2"], format!("{:?}", lines(&r)), &r)?;
    check(r.log().contains("trapped: unreachable"), "no trap line", &r)
}

fn parser_and_unknown_parser(host: &Host) -> Result<(), Failed> {
    let dir = scratch_dir("parser");
    let parsers = write_file(&dir, "parsers.conf", "[PARSER]\n    name j\n    format json\n    time_key time\n    time_format %Y-%m-%dT%H:%M:%S%z\n");
    let p = plugins();
    let wp = format!("wasi_path={}", fixture("exec_json.wasm").display());
    let base = ["-R", parsers.to_str().unwrap(), "-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-p", &wp, "-p", "oneshot=true"];
    let mut args = base.to_vec();
    args.extend_from_slice(&["-p", "parser=j", "-o", "stdout", "-p", "format=json_lines", "-f", "0.2"]);
    let r = run(host, &args, Duration::from_secs(3));
    r.assert_no_crash()?;
    let recs = r.json_records();
    check(recs.len() == 2, format!("{} records", recs.len()), &r)?;
    check(recs[0]["level"] == "info" && recs[0]["date"].as_f64() == Some(1704164645.0), format!("{:?}", recs[0]), &r)?;
    check(r.log().contains("did not match 1 line"), "the non-JSON line was not reported", &r)?;
    let mut args = base.to_vec();
    args.extend_from_slice(&["-p", "parser=nope", "-o", "null"]);
    let bad = run(host, &args, Duration::from_secs(10));
    bad.assert_no_crash()?;
    check(bad.failed_cleanly() && bad.log().contains("property 'parser': no parser named 'nope'"), "an unknown parser must stop start-up", &bad)
}

fn bad_modules_are_refused(host: &Host) -> Result<(), Failed> {
    let dir = scratch_dir("bad");
    let text = write_file(&dir, "not.wasm", "this is not wasm\n");
    let cases = [
        ("/nonexistent/x.wasm".to_string(), "property 'wasi_path': cannot read /nonexistent/x.wasm"),
        (text.display().to_string(), "not a WebAssembly module"),
        (fixture("filter_identity.wasm").display().to_string(), "no entry point"),
    ];
    let p = plugins();
    for (path, expect) in cases {
        let wp = format!("wasi_path={path}");
        let r = run(host, &["-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-p", &wp, "-o", "null"], Duration::from_secs(10));
        r.assert_no_crash()?;
        check(r.failed_cleanly(), format!("{path}: expected a clean non-zero exit"), &r)?;
        check(r.log().contains("[input:exec_wasi_wasmer:exec_wasi_wasmer.0]") && r.log().contains(expect), format!("{path}: no error line with '{expect}'"), &r)?;
    }
    Ok(())
}

fn go_plugin_route_with_the_bare_name(host: &Host) -> Result<(), Failed> {
    let p = plugins();
    let libdir = p.libexec_wasi.parent().unwrap().to_str().unwrap().to_owned();
    let wp = format!("wasi_path={}", fixture("exec_hello.wasm").display());
    // On this route Fluent Bit takes records only at its once-a-second poll; runs every
    // 0.2 s must all arrive (they were skipped: 1 run per second), each with its own time.
    let args = ["-e", "libexec_wasi.so", "-i", "exec_wasi_wasmer", "-p", &wp, "-p", "interval_sec=0", "-p", "interval_nsec=200000000", "-o", "stdout", "-p", "format=json_lines", "-f", "0.2"];
    let r = run_env(host, &args, Duration::from_secs(4), None, &[("LD_LIBRARY_PATH", &libdir)]);
    r.assert_no_crash()?;
    check(lines(&r).starts_with(&["first line".to_string(), "second line".into(), "third line".into()]), format!("{:?}", lines(&r)), &r)?;
    let firsts: Vec<f64> = r.json_records().iter().filter(|v| v["wasi_stdout"] == "first line").filter_map(|v| v["date"].as_f64()).collect();
    // About 3 s of runs at 5 per second, minus start-up and shutdown.
    check(firsts.len() >= 8, format!("{} runs in ~4 s with a 0.2 s interval", firsts.len()), &r)?;
    let spaced = firsts.windows(2).all(|w| w[1] - w[0] >= 0.1);
    check(spaced, format!("the runs' records do not carry their runs' times: {firsts:?}"), &r)
}

fn main() {
    let args = Arguments::from_args();
    let trials = trials_per_host(
        "exec_wasi",
        &[
            ("same_records_as_the_builtin", same_records_as_the_builtin),
            ("c_program_and_oneshot_runs_once", c_program_and_oneshot_runs_once),
            ("interval_is_respected", interval_is_respected),
            ("reads_only_accessible_paths", reads_only_accessible_paths),
            ("read_only_refuses_writes", read_only_refuses_writes),
            ("args_and_env", args_and_env),
            ("endless_run_is_interrupted_while_others_flow", endless_run_is_interrupted_while_others_flow),
            ("trap_keeps_printed_lines", trap_keeps_printed_lines),
            ("parser_and_unknown_parser", parser_and_unknown_parser),
            ("bad_modules_are_refused", bad_modules_are_refused),
            ("go_plugin_route_with_the_bare_name", go_plugin_route_with_the_bare_name),
        ],
    );
    libtest_mimic::run(&args, trials).exit();
}
