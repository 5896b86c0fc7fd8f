//! The CLI as a user runs it: the example over the sample records, exec, and the checker's
//! messages for each way a module can miss the contract.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flb-wasm"))
}

fn repo() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flb-wasm-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn clang(src: &Path, out: &Path, reactor: bool) {
    let mut c = Command::new("clang");
    c.args(["--target=wasm32-wasi", "-O2", "-Wall", "-Werror"]);
    if reactor {
        c.arg("-mexec-model=reactor");
    }
    let st = c.arg(src).arg("-o").arg(out).status().expect("clang (run scripts/setup)");
    assert!(st.success(), "clang failed on {}", src.display());
}

/// Builds a reactor filter from `src` (relative to the repo) against include/.
fn clang_filter_with_header(src: &str) -> PathBuf {
    let d = scratch(&src.replace('/', "_"));
    let wasm = d.join("filter.wasm");
    let st = Command::new("clang")
        .args(["--target=wasm32-wasi", "-O2", "-Wall", "-Werror", "-mexec-model=reactor"])
        .arg(format!("-I{}", repo().join("include").display()))
        .arg(repo().join(src))
        .arg("-o")
        .arg(&wasm)
        .status()
        .expect("clang (scripts/setup)");
    assert!(st.success(), "clang failed on {src}");
    wasm
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn example_filter_over_the_sample_records() {
    let d = scratch("demo");
    let wasm = d.join("redact.wasm");
    clang(&repo().join("examples/c/redact.c"), &wasm, true);
    let o = bin().arg("filter").arg(&wasm).args(["--function", "redact", "--input"]).arg(repo().join("examples/records.jsonl")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "{}", text(&o));
    assert_eq!(lines[0]["password"], "***");
    assert_eq!(lines[1]["password"], "***");
    assert_eq!(lines[1]["msg"], "password expires soon");
    assert_eq!(lines[2], serde_json::json!({"level":"info","msg":"no secrets here","n":0,"tags":["a","b"]}));
    assert_eq!(lines[3]["password"], "***", "values with escapes are masked too");
    assert_eq!(lines[3]["msg"], "login failed");
    assert!(String::from_utf8_lossy(&o.stderr).contains("5 records: kept 1 modified 3 dropped 1 errors 0"), "{}", text(&o));
}

#[test]
fn exec_prints_records_and_reports_the_exit_status() {
    let d = scratch("exec");
    let src = d.join("p.c");
    std::fs::write(&src, "#include <stdio.h>\n#include <stdlib.h>\nint main(int c, char **v) { for (int i = 1; i < c; i++) printf(\"%s\\n\", v[i]); printf(\"env=%s\\n\", getenv(\"X\") ? getenv(\"X\") : \"none\"); return c > 2 ? 4 : 0; }\n").unwrap();
    let wasm = d.join("p.wasm");
    clang(&src, &wasm, false);
    let o = bin().arg("exec").arg(&wasm).args(["--arg", "hello", "--env", "X=1"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "{\"wasi_stdout\":\"hello\"}\n{\"wasi_stdout\":\"env=1\"}\n");
    let o = bin().arg("exec").arg(&wasm).args(["--arg", "a", "--arg", "b"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("exited with status 4"), "{}", text(&o));
    assert!(text(&o).contains("env=none"), "no host environment by default: {}", text(&o));
}

fn check(module_text: &str, args: &[&str]) -> (i32, String) {
    let d = scratch("check");
    let p = d.join(format!("m{}.wat", module_text.len()));
    std::fs::write(&p, module_text).unwrap();
    let o = bin().arg("check").arg(&p).args(args).output().unwrap();
    (o.status.code().unwrap_or(-1), text(&o))
}

#[test]
fn check_gives_a_specific_message_for_each_misfit() {
    let good = r#"(module (memory (export "memory") 1)
        (func (export "malloc") (param i32) (result i32) i32.const 64) (func (export "free") (param i32))
        (func (export "f") (param i32 i32 i32 i32 i32 i32) (result i32) local.get 4))"#;
    let (code, out) = check(good, &["--function", "f"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("malloc/free"), "{out}");

    let (code, out) = check(good, &["--function", "g"]);
    assert_eq!(code, 1);
    assert!(out.contains("no exported function 'g'") && out.contains("f"), "{out}");

    let wrong = r#"(module (memory (export "memory") 1) (func (export "f") (param i32) (result i32) local.get 0))"#;
    let (code, out) = check(wrong, &["--function", "f"]);
    assert_eq!(code, 1);
    assert!(out.contains("signature"), "{out}");

    let no_alloc = r#"(module (memory (export "memory") 1) (func (export "f") (param i32 i32 i32 i32 i32 i32) (result i32) local.get 4))"#;
    let (code, out) = check(no_alloc, &["--function", "f"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no malloc/free exported") && out.contains("host-managed region"), "{out}");

    let imports = r#"(module (import "env" "host_log" (func (param i32 i32) (result i32))) (memory (export "memory") 1)
        (func (export "f") (param i32 i32 i32 i32 i32 i32) (result i32) local.get 4))"#;
    let (code, out) = check(imports, &["--function", "f"]);
    assert_eq!(code, 1);
    assert!(out.contains("env.host_log"), "{out}");

    let command = r#"(module (memory (export "memory") 1) (func (export "_start"))
        (func (export "f") (param i32 i32 i32 i32 i32 i32) (result i32) local.get 4))"#;
    let (_, out) = check(command, &["--function", "f"]);
    assert!(out.contains("command module"), "{out}");
    let (code, out) = check(command, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("exec_wasi program"), "{out}");

    let d = scratch("aot");
    let aot = d.join("m.aot");
    std::fs::write(&aot, b"\0aot\x03\0\0\0garbage").unwrap();
    let o = bin().arg("check").arg(&aot).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("WAMR AOT"), "{}", text(&o));
}

#[test]
fn usage_errors_and_version() {
    let o = bin().arg("--version").output().unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("flb-wasm "));
    let o = bin().args(["filter", "x.wasm"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "missing --function is a usage error");
    let o = bin().args(["filter", "/nonexistent.wasm", "--function", "f"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("flb-wasm: error:"), "{}", text(&o));
}

#[test]
fn c_header_example() {
    let wasm = clang_filter_with_header("examples/c/add_source.c");
    let o = bin().arg("filter").arg(&wasm).args(["--function", "add_source", "--tag", "app.log", "--input"]).arg(repo().join("examples/records.jsonl")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "{}", text(&o));
    assert!(lines.iter().all(|l| l["source"] == "app.log"), "{}", text(&o));
}

#[test]
fn module_config_and_guest_log() {
    let wasm = clang_filter_with_header("tests/fixtures/c/filter_config.c");
    let o = bin().arg("filter").arg(&wasm).args(["--function", "add_configured", "--config", "env=dev", "--input"]).arg(repo().join("examples/records.jsonl")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).lines().all(|l| l.starts_with("{\"env\":\"dev\",")), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("configured: env=dev"), "{}", text(&o));
    let o = bin().arg("filter").arg(&wasm).args(["--function", "add_configured", "--config", "bad", "--input"]).arg(repo().join("examples/records.jsonl")).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("config must be KEY=VALUE") && text(&o).contains("refused its configuration"), "{}", text(&o));
}
