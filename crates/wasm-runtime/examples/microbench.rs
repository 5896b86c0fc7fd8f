//! Micro-benchmark (not a test): per-call overhead with and without the time limit's metering
//! and the signal re-arm check, compile time cold vs the disk cache, instantiate time.
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

fn per_call(label: &str, m: &LoadedModule, limits: &Limits, rearm: bool) {
    let mut inst = Instance::new(m, None, limits, |_| Imports::new()).unwrap();
    let f = inst.typed::<(i32, i32, i32, i32, i32, i32), i32>("f").unwrap();
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

fn time<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

fn main() {
    let bytes = wasmer::wat2wasm(GUEST.as_bytes()).unwrap().into_owned();
    println!("| per call | empty call | 50M-iteration loop |\n|---|---:|---:|");
    let plain = Runtime::global().load_bytes(&bytes, &EngineOptions::default()).unwrap();
    let metered = Runtime::global().load_bytes(&bytes, &EngineOptions { metering: true, ..Default::default() }).unwrap();
    let no_limit = Limits { call_timeout: None, ..Limits::default() };
    per_call("no time limit", &plain, &no_limit, false);
    per_call("no time limit + signal re-arm check", &plain, &no_limit, true);
    per_call("time limit (metering + watchdog)", &metered, &Limits::default(), false);
    per_call("time limit + signal re-arm check", &metered, &Limits::default(), true);

    println!("\n| compile / instantiate | time |\n|---|---:|");
    let dir = std::env::temp_dir().join(format!("microbench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for compiler in [Compiler::Cranelift, Compiler::Singlepass] {
        let opts = EngineOptions { compiler, metering: true, cache_dir: Some(dir.clone()) };
        let (_, cold) = time(|| Runtime::new().load_bytes(&bytes, &opts).unwrap());
        let (m, cached) = time(|| Runtime::new().load_bytes(&bytes, &opts).unwrap());
        assert_eq!(m.source, ModuleSource::DiskCache);
        let (_, mem) = time(|| Runtime::global().load_bytes(&bytes, &opts).unwrap());
        let (_, inst) = time(|| Instance::new(&m, None, &Limits::default(), |_| Imports::new()).unwrap());
        println!("| {compiler:?}: compile (cold) | {:.2} ms |", cold.as_secs_f64() * 1e3);
        println!("| {compiler:?}: load from the disk cache | {:.2} ms |", cached.as_secs_f64() * 1e3);
        println!("| {compiler:?}: load again (memory cache) | {:.3} ms |", mem.as_secs_f64() * 1e3);
        println!("| {compiler:?}: instantiate | {:.3} ms |", inst.as_secs_f64() * 1e3);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
