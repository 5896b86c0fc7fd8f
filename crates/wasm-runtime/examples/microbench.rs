//! Micro-benchmark (not a test): per-call overhead with and without the time limit's interrupt checks
//! and the signal re-arm check, compile time cold vs the disk cache, instantiate time, and
//! the cost of one WASI command run (the exec input's per-interval work).
//!
//!     cargo run --release -p wasm-runtime --example microbench
use std::time::{Duration, Instant};
use wasm_runtime::*;

const GUEST: &str = r#"(module (memory (export "memory") 1)
  (func (export "f") (param i32 i32 i32 i32 i32 i32) (result i32) local.get 4)
  (func (export "work") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $l (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (i32.const 7))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc)))"#;

/// A WASI command printing one line, as the exec input's trivial program.
const HELLO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// `--command-only [program.wasm]`: only the command runs, of HELLO or the given program.
fn command_runs() {
    let path = std::env::args()
        .skip_while(|a| a != "--command-only")
        .nth(1);
    let bytes = match &path {
        Some(p) => std::fs::read(p).unwrap(),
        None => wasmer::wat2wasm(HELLO.as_bytes()).unwrap().into_owned(),
    };
    let m = load(&bytes, true);
    let wasi = WasiOptions {
        program_name: "hello".into(),
        ..Default::default()
    };
    let limits = Limits::default();
    let n: u32 = std::env::var("MICROBENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut command = Command::new(&m, &wasi, &limits).unwrap();
    let mut run = || {
        let out = command.run().unwrap();
        assert!(!out.stdout.is_empty());
    };
    // Back to back (caches warm), then paced as the exec input runs them (every 20 ms:
    // caches and branch predictors cold again, as in the host).
    run();
    let (t, c) = (Instant::now(), cpu_time());
    for _ in 0..n {
        run();
    }
    let (wall, cpu) = (t.elapsed().as_secs_f64() * 1e6 / n as f64, (cpu_time() - c) * 1e6 / n as f64);
    let paced_n: u32 = std::env::var("MICROBENCH_PACED_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let mut paced = 0.0;
    for _ in 0..paced_n {
        std::thread::sleep(Duration::from_millis(20));
        let c = cpu_time();
        run();
        paced += cpu_time() - c;
    }
    let name = path.as_deref().unwrap_or("hello, one line");
    let environments = command.wasi_environments();
    println!("\n| WASI command run | wall | CPU |\n|---|---:|---:|");
    println!("| {name}, back to back ({n} runs) | {wall:.1} us | {cpu:.1} us |");
    println!("| {name}, one every 20 ms ({paced_n} runs) | | {:.1} us |", paced * 1e6 / paced_n as f64);
    println!("\n{environments} WASI environments built for {} runs.", n + paced_n + 1);
}

/// CPU seconds of this thread.
fn cpu_time() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn per_call(label: &str, m: &LoadedModule, limits: &Limits, rearm: bool) {
    let mut inst = Instance::new(m, None, limits, |_| Imports::new()).unwrap();
    let f = inst
        .typed::<(i32, i32, i32, i32, i32, i32), i32>("f")
        .unwrap();
    let work = inst.typed::<i32, i32>("work").unwrap();
    let n = 200_000;
    let t = Instant::now();
    for i in 0..n {
        if rearm {
            signals::ensure_armed();
        }
        inst.call(|s| f.call(s, 0, 0, 0, 0, i, 0)).unwrap();
    }
    let call_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let t = Instant::now();
    inst.call(|s| work.call(s, 50_000_000)).unwrap();
    let work_ms = t.elapsed().as_secs_f64() * 1e3;
    println!("| {label} | {call_ns:.0} ns | {work_ms:.1} ms |");
}

fn load(bytes: &[u8], interruptible: bool) -> LoadedModule {
    Runtime::global()
        .load_bytes(bytes, &EngineOptions { interruptible, ..Default::default() })
        .unwrap()
}

fn time<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

fn main() {
    if std::env::args().any(|a| a == "--command-only") {
        return command_runs();
    }
    let bytes = wasmer::wat2wasm(GUEST.as_bytes()).unwrap().into_owned();
    println!("| per call | empty call | 50M-iteration loop |\n|---|---:|---:|");
    let plain = load(&bytes, false);
    let interruptible = load(&bytes, true);
    let no_limit = Limits {
        call_timeout: None,
        ..Limits::default()
    };
    per_call("no time limit", &plain, &no_limit, false);
    per_call(
        "no time limit + signal re-arm check",
        &plain,
        &no_limit,
        true,
    );
    per_call(
        "time limit (interrupt checks + watchdog)",
        &interruptible,
        &Limits::default(),
        false,
    );
    per_call(
        "time limit + signal re-arm check",
        &interruptible,
        &Limits::default(),
        true,
    );

    println!("\n| compile / instantiate | time |\n|---|---:|");
    let dir = std::env::temp_dir().join(format!("microbench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for compiler in [Compiler::Cranelift, Compiler::Singlepass] {
        let opts = EngineOptions {
            compiler,
            interruptible: true,
            cache_dir: Some(dir.clone()),
        };
        let (_, cold) = time(|| Runtime::new().load_bytes(&bytes, &opts).unwrap());
        let (m, cached) = time(|| Runtime::new().load_bytes(&bytes, &opts).unwrap());
        assert_eq!(m.source, ModuleSource::DiskCache);
        let (_, mem) = time(|| Runtime::global().load_bytes(&bytes, &opts).unwrap());
        let (_, inst) =
            time(|| Instance::new(&m, None, &Limits::default(), |_| Imports::new()).unwrap());
        println!(
            "| {compiler:?}: compile (cold) | {:.2} ms |",
            cold.as_secs_f64() * 1e3
        );
        println!(
            "| {compiler:?}: load from the disk cache | {:.2} ms |",
            cached.as_secs_f64() * 1e3
        );
        println!(
            "| {compiler:?}: load again (memory cache) | {:.3} ms |",
            mem.as_secs_f64() * 1e3
        );
        println!(
            "| {compiler:?}: instantiate | {:.3} ms |",
            inst.as_secs_f64() * 1e3
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    command_runs();
}
