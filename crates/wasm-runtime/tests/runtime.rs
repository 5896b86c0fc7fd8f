//! Host-free tests of the runtime on committed WAT guests.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasm_runtime::*;

fn guest(name: &str) -> Vec<u8> {
    let p = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("tests/guests")
        .join(name);
    let text = std::fs::read(&p).unwrap();
    wasmer::wat2wasm(&text).unwrap().into_owned()
}

fn load(name: &str, interruptible: bool) -> LoadedModule {
    Runtime::global()
        .load_bytes(
            &guest(name),
            &EngineOptions {
                interruptible,
                ..Default::default()
            },
        )
        .unwrap()
}

fn limits(timeout_ms: u64) -> Limits {
    Limits {
        call_timeout: Some(Duration::from_millis(timeout_ms)),
        ..Limits::default()
    }
}

#[test]
fn loop_is_interrupted_and_instance_stays_usable() {
    let m = load("faults.wat", true);
    let mut inst = Instance::new(&m, None, &limits(200), |_| Imports::new()).unwrap();
    let spin = inst.typed::<(), ()>("spin").unwrap();
    let ok = inst.typed::<(), i32>("ok").unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let e = inst.call(|s| spin.call(s)).unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            t.elapsed()
        );
        assert_eq!(inst.call(|s| ok.call(s)).unwrap(), 42);
    }
}

#[test]
fn loop_free_code_is_interrupted_too() {
    // Checks sit at loop headers and function entries: calls alone must not escape them.
    for compiler in [Compiler::Cranelift, Compiler::Singlepass] {
        let m = Runtime::new()
            .load_bytes(&guest("faults.wat"), &EngineOptions { compiler, interruptible: true, cache_dir: None })
            .unwrap();
        let mut inst = Instance::new(&m, None, &limits(200), |_| Imports::new()).unwrap();
        let calls = inst.typed::<i64, i64>("calls").unwrap();
        assert_eq!(inst.call(|s| calls.call(s, 10)).unwrap(), 1024);
        let t = Instant::now();
        let e = inst.call(|s| calls.call(s, 60)).unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{compiler:?}: {e}");
        assert!(t.elapsed() < Duration::from_millis(1500), "{compiler:?}: took {:?}", t.elapsed());
        assert_eq!(inst.call(|s| calls.call(s, 3)).unwrap(), 8, "{compiler:?}: usable after the timeout");
    }
}

#[test]
fn loop_is_interrupted_on_time_while_the_watchdog_sleeps() {
    // With no call in progress the watchdog sleeps for a second; a call with a nearer
    // deadline must wake it, or this loop would run on until the watchdog's next look.
    let m = load("faults.wat", true);
    let mut inst = Instance::new(&m, None, &limits(200), |_| Imports::new()).unwrap();
    let spin = inst.typed::<(), ()>("spin").unwrap();
    let ok = inst.typed::<(), i32>("ok").unwrap();
    for _ in 0..3 {
        assert_eq!(inst.call(|s| ok.call(s)).unwrap(), 42);
        std::thread::sleep(Duration::from_millis(200)); // the watchdog settles on an idle look
        let t = Instant::now();
        let e = inst.call(|s| spin.call(s)).unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        assert!(t.elapsed() < Duration::from_millis(600), "took {:?}", t.elapsed());
    }
}

#[test]
fn memory_cap_is_enforced() {
    let m = load("faults.wat", false);
    let lim = Limits {
        memory_max: 4 * 65536,
        ..Limits::default()
    };
    let mut inst = Instance::new(&m, None, &lim, |_| Imports::new()).unwrap();
    let grow = inst.typed::<i32, i32>("grow").unwrap();
    assert_eq!(
        inst.call(|s| grow.call(s, 2)).unwrap(),
        1,
        "growing within the cap works"
    );
    assert_eq!(
        inst.call(|s| grow.call(s, 5)).unwrap(),
        -1,
        "growing past the cap fails"
    );
    let big = load("big_min.wat", false);
    let e = Instance::new(
        &big,
        None,
        &Limits {
            memory_max: 1 << 20,
            ..Limits::default()
        },
        |_| Imports::new(),
    )
    .err()
    .unwrap();
    assert!(matches!(e, Error::MemoryLimit { limit: 1048576 }), "{e}");
}

#[test]
fn every_instance_gets_fresh_memory_of_its_own_size() {
    // Linear memories are reused across instances (more rounds than the pool keeps): each
    // must start zeroed, and at its declared size, past which accesses still trap.
    let m = load("faults.wat", false);
    for round in 0..12 {
        let mut inst = Instance::new(&m, None, &Limits::default(), |_| Imports::new()).unwrap();
        let load = inst.typed::<i32, i32>("load").unwrap();
        let store = inst.typed::<(i32, i32), ()>("store").unwrap();
        let grow = inst.typed::<i32, i32>("grow").unwrap();
        for at in [0, 65532] {
            assert_eq!(inst.call(|s| load.call(s, at)).unwrap(), 0, "round {round}: byte {at} not zero");
        }
        let e = inst.call(|s| load.call(s, 65536)).unwrap_err();
        assert!(matches!(e, Error::Trap(Trap { kind: TrapKind::OutOfBoundsMemory, .. })), "round {round}: {e}");
        assert_eq!(inst.call(|s| grow.call(s, 3)).unwrap(), 1);
        for at in [0, 65536, 4 * 65536 - 4] {
            inst.call(|s| store.call(s, at, -1)).unwrap();
        }
    }
}

extern "C" fn host_like_handler(sig: libc::c_int) {
    // What Fluent Bit's handler amounts to: report and abort.
    let msg = format!("host fatal-signal handler reached (signal {sig}): a guest trap escaped\n");
    unsafe { libc::write(2, msg.as_ptr() as *const _, msg.len()) };
    std::process::abort();
}

#[test]
fn traps_survive_the_host_reinstalling_its_handlers() {
    let m = load("faults.wat", false);
    let mut inst = Instance::new(&m, None, &Limits::default(), |_| Imports::new()).unwrap();
    let (oob, div, rec, unr) = (
        inst.typed::<(), i32>("oob").unwrap(),
        inst.typed::<i32, i32>("div").unwrap(),
        inst.typed::<(), i32>("recurse").unwrap(),
        inst.typed::<(), ()>("unreachable").unwrap(),
    );
    for round in 0..3 {
        unsafe {
            libc::signal(
                libc::SIGSEGV,
                host_like_handler as *const () as libc::sighandler_t,
            );
            libc::signal(
                libc::SIGFPE,
                host_like_handler as *const () as libc::sighandler_t,
            );
        }
        assert!(
            signals::ensure_armed(),
            "round {round}: the handlers had been replaced"
        );
        assert!(
            !signals::ensure_armed(),
            "a second check finds them in place"
        );
        let e = inst.call(|s| oob.call(s)).unwrap_err();
        assert!(
            matches!(&e, Error::Trap(t) if t.kind == TrapKind::OutOfBoundsMemory),
            "{e}"
        );
        let e = inst.call(|s| div.call(s, 0)).unwrap_err();
        assert!(
            matches!(&e, Error::Trap(t) if t.kind == TrapKind::DivisionByZero),
            "{e}"
        );
        let e = inst.call(|s| rec.call(s)).unwrap_err();
        assert!(
            matches!(&e, Error::Trap(t) if t.kind == TrapKind::StackOverflow),
            "{e}"
        );
        let e = inst.call(|s| unr.call(s)).unwrap_err();
        assert!(
            matches!(&e, Error::Trap(t) if t.kind == TrapKind::Unreachable),
            "{e}"
        );
    }
}

#[test]
fn command_output_args_and_exit_status() {
    let m = load("hello.wat", true);
    let wasi = WasiOptions {
        args: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    let out = run_command(&m, &wasi, &Limits::default()).unwrap();
    assert_eq!(out.stdout, b"one\ntwo\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status, ExitStatus::Exited(2), "argv = [guest, a, b]");
}

#[test]
fn every_command_run_starts_from_scratch() {
    // A module whose state is all in memory and globals is rewound to a snapshot after its
    // instantiation; one with a start function gets a new instance per run, sharing a store
    // (replaced every 64 runs) and its WASI imports. Either way no run may see another's
    // global, memory contents or memory size.
    for (name, environments) in [("counter_command.wat", 1), ("counter_command_start.wat", 3)] {
        let m = load(name, false);
        let mut command = Command::new(&m, &WasiOptions::default(), &Limits::default()).unwrap();
        for run in 0..150 {
            let out = command.run().unwrap();
            assert_eq!(out.status, ExitStatus::Exited(0), "{name}, run {run}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "g1 m1 s2\n", "{name}, run {run}");
        }
        // It only writes to stdout, so its WASI environment is passed on (one per store).
        assert_eq!(command.wasi_environments(), environments, "{name}: 150 runs");
    }
}

#[test]
fn a_run_that_changes_its_wasi_environment_leaves_a_new_one_to_the_next() {
    // Closing stdout, exiting, trapping: each run's successor must not inherit the change.
    for (name, stdout, status) in [
        ("close_stdout.wat", &b"out\nok\nfault\n"[..], ExitStatus::Exited(0)),
        ("hello.wat", b"one\ntwo\n", ExitStatus::Exited(0)),
        ("print_then_trap.wat", b"before\n", ExitStatus::Trapped(Trap { kind: TrapKind::Unreachable, message: String::new() })),
    ] {
        let m = load(name, false);
        let mut command = Command::new(&m, &WasiOptions::default(), &Limits::default()).unwrap();
        for run in 0..4 {
            let out = command.run().unwrap();
            assert_eq!(out.stdout, stdout, "{name}, run {run}");
            match (&out.status, &status) {
                (ExitStatus::Trapped(a), ExitStatus::Trapped(b)) => assert_eq!(a.kind, b.kind, "{name}"),
                (a, b) => assert_eq!(a, b, "{name}"),
            }
        }
        assert_eq!(command.wasi_environments(), 4, "{name}");
    }
}

#[test]
fn stdout_is_kept_when_the_command_traps() {
    let m = load("print_then_trap.wat", false);
    let out = run_command(&m, &WasiOptions::default(), &Limits::default()).unwrap();
    assert_eq!(out.stdout, b"before\n");
    assert!(
        matches!(out.status, ExitStatus::Trapped(ref t) if t.kind == TrapKind::Unreachable),
        "{:?}",
        out.status
    );
}

#[test]
fn stdout_is_bounded() {
    let m = load("hello.wat", false);
    let out = run_command(
        &m,
        &WasiOptions::default(),
        &Limits {
            stdout_max: 5,
            ..Limits::default()
        },
    )
    .unwrap();
    assert_eq!(out.stdout, b"one\nt");
    assert!(out.stdout_truncated);
}

#[test]
fn modules_are_compiled_once() {
    let bytes = guest("faults.wat");
    let opts = EngineOptions::default();
    let a = Runtime::global().load_bytes(&bytes, &opts).unwrap();
    let b = Runtime::global().load_bytes(&bytes, &opts).unwrap();
    assert_eq!(a.hash, b.hash);
    assert_eq!(b.source, ModuleSource::MemoryCache);
}

#[test]
fn foreign_formats_are_refused_clearly() {
    let e = Runtime::global()
        .load_bytes(b"\0aot\x03\0\0\0rest", &EngineOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("WAMR AOT"), "{e}");
    let e = Runtime::global()
        .load_bytes(b"#!/bin/sh\necho hi\n", &EngineOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("not a WebAssembly module"), "{e}");
}

#[test]
fn libc_imports_of_the_builtins_wamr_are_served() {
    let m = load("libc_env.wat", false);
    let report = check::check(
        &m.module,
        &check::Contract::Filter {
            function: "fmt".into(),
        },
    );
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.message.contains("imports")),
        "env.* imports are served: {:?}",
        report.findings
    );
    let lim = Limits {
        memory_max: 4 << 20,
        ..Limits::default()
    };
    let mut inst = Instance::new(&m, None, &lim, |_| Imports::new()).unwrap();
    let fmt = inst.typed::<i32, i32>("fmt").unwrap();
    let len = inst.typed::<i32, i32>("len").unwrap();
    let release = inst.typed::<i32, ()>("release").unwrap();
    let p = inst.call(|s| fmt.call(s, 255)).unwrap();
    assert_eq!(inst.read_c_str(p as u32, 100).unwrap(), b"answer=00255|ff");
    assert_eq!(inst.call(|s| len.call(s, p)).unwrap(), 15);
    assert_eq!(inst.take_stdout().0, b"printed 255\n");
    // Freed blocks are reused.
    inst.call(|s| release.call(s, p)).unwrap();
    let q = inst.call(|s| fmt.call(s, 1)).unwrap();
    assert_eq!(p, q);
    // The heap is bounded by the memory limit: malloc returns 0, no trap.
    let exhaust = inst.typed::<(), i32>("exhaust").unwrap();
    let n = inst.call(|s| exhaust.call(s)).unwrap();
    assert!(
        (30..64).contains(&n),
        "{n} blocks of 64 KiB under a 4 MiB limit"
    );
}

fn clang_command(src: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("wasm-runtime-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{src}.wasm"));
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("tests/guests")
        .join(src);
    let st = std::process::Command::new("clang")
        .args(["--target=wasm32-wasi", "-O2"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("clang (scripts/setup)");
    assert!(st.success());
    std::fs::read(out).unwrap()
}

#[test]
fn wasi_sandbox_paths_env_and_read_only() {
    let bytes = clang_command("sandbox.c");
    let m = Runtime::global()
        .load_bytes(&bytes, &EngineOptions::default())
        .unwrap();
    let base = std::env::temp_dir().join(format!("wasm-runtime-sandbox-{}", std::process::id()));
    let dir = base.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("existing.txt"), "hi").unwrap();
    std::fs::write(base.join("outside.txt"), "secret").unwrap();
    let _ = std::os::unix::fs::symlink(base.join("outside.txt"), dir.join("escape"));
    let run = |read_only: bool, env: Vec<(String, String)>| {
        let wasi = WasiOptions {
            args: vec![dir.display().to_string()],
            env,
            preopens: vec![Preopen {
                path: dir.clone(),
                read_only,
            }],
            program_name: "sandbox".into(),
        };
        let out = run_command(&m, &wasi, &Limits::default()).unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let rw = run(false, vec![]);
    assert!(
        rw.contains("env 0\n"),
        "nothing from the host environment by default:\n{rw}"
    );
    for line in [
        "read allowed",
        "append allowed",
        "create allowed",
        "dotdot refused",
        "symlink refused",
        "unlisted refused",
    ] {
        assert!(rw.contains(line), "{line}:\n{rw}");
    }
    let _ = std::fs::remove_file(dir.join("created.txt"));
    std::fs::write(dir.join("existing.txt"), "hi").unwrap();
    let ro = run(true, vec![("A".into(), "1".into())]);
    for line in [
        "env 1",
        "read allowed",
        "append refused",
        "create refused",
        "dotdot refused",
        "symlink refused",
    ] {
        assert!(ro.contains(line), "{line}:\n{ro}");
    }
    assert!(
        !dir.join("created.txt").exists()
            && std::fs::read_to_string(dir.join("existing.txt")).unwrap() == "hi",
        "read-only was not enforced on the host"
    );
}

#[test]
fn tampered_or_truncated_cache_entries_are_rejected_and_recompiled() {
    let dir = std::env::temp_dir().join(format!("wasm-runtime-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = EngineOptions {
        cache_dir: Some(dir.clone()),
        ..Default::default()
    };
    let bytes = guest("faults.wat");
    let first = Runtime::new().load_bytes(&bytes, &opts).unwrap();
    assert_eq!(first.source, ModuleSource::Compiled);
    assert_eq!(
        Runtime::new().load_bytes(&bytes, &opts).unwrap().source,
        ModuleSource::DiskCache
    );
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "wasmer"))
        .unwrap();
    for damage in ["flip", "truncate"] {
        let mut data = std::fs::read(&entry).unwrap();
        match damage {
            "flip" => {
                let i = data.len() / 2;
                data[i] ^= 0x40;
            }
            _ => data.truncate(data.len() / 3),
        }
        std::fs::write(&entry, &data).unwrap();
        let again = Runtime::new().load_bytes(&bytes, &opts).unwrap();
        assert_eq!(
            again.source,
            ModuleSource::Compiled,
            "{damage}: a damaged entry must not be deserialized"
        );
        let mut inst = Instance::new(&again, None, &Limits::default(), |_| Imports::new()).unwrap();
        let ok = inst.typed::<(), i32>("ok").unwrap();
        assert_eq!(inst.call(|s| ok.call(s)).unwrap(), 42);
        assert_eq!(
            Runtime::new().load_bytes(&bytes, &opts).unwrap().source,
            ModuleSource::DiskCache,
            "{damage}: rewritten after recompiling"
        );
    }
}

#[test]
fn host_region_is_reused_and_bounded() {
    // No malloc export: the host places inputs in pages of its own at the end of memory.
    // Inputs of slowly growing size, released after each call (as the filter does), with the
    // guest growing memory itself between some calls, must not grow memory per call.
    let wat = r#"(module (memory (export "memory") 1)
        (func (export "grow") (drop (memory.grow (i32.const 1)))))"#;
    let bytes = wasmer::wat2wasm(wat.as_bytes()).unwrap().into_owned();
    let m = Runtime::global()
        .load_bytes(&bytes, &EngineOptions::default())
        .unwrap();
    let mut inst = Instance::new(&m, None, &limits(1000), |_| Imports::new()).unwrap();
    assert!(matches!(
        inst.allocator(),
        GuestAllocator::HostRegion { .. }
    ));
    let grow = inst.typed::<(), ()>("grow").unwrap();
    let memory = inst.instance.exports.get_memory("memory").unwrap().clone();
    let mut placed = 0u64;
    for i in 0..300usize {
        let input: Vec<u8> = (0..100_000 + 1000 * i).map(|j| ((i + j) % 251) as u8).collect();
        // Odd rounds give the bytes in two parts, placed one after the other.
        let parts: &[&[u8]] = if i % 2 == 1 { &[&input[..i], &input[i..]] } else { &[&input] };
        let p = inst.write_reused(1, parts, false).unwrap();
        assert_eq!(inst.read(p, input.len()).unwrap(), &input[..]);
        placed += input.len() as u64;
        inst.release_all().unwrap();
        if i % 50 == 25 {
            inst.call(|s| grow.call(s)).unwrap();
        }
    }
    let size = memory.view(inst.store_mut()).data_size();
    // Largest input ~400 KB; without reuse the memory would hold every input (~75 MB).
    assert!(
        size < 4 << 20,
        "memory grew to {size} bytes for {placed} bytes placed"
    );
}
