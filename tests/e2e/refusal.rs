//! A host the plugins do not recognise gets a refusal line from init, never a crash
//! (host-free: a small C host, tests/hosts/fake_host.c, dlopens the plugin like Fluent Bit).

use e2e::{scratch_dir, target_profile_dir};
use std::path::PathBuf;
use std::process::Command;

fn build_host(looks_like_fluent_bit: bool) -> PathBuf {
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("hosts/fake_host.c");
    let out = scratch_dir("fake-host").join("fake_host");
    let mut cc = Command::new("cc");
    cc.arg("-O1").arg("-o").arg(&out).arg(&src).arg("-ldl").arg("-rdynamic");
    if looks_like_fluent_bit {
        cc.arg("-DLOOKS_LIKE_FLUENT_BIT");
    }
    let st = cc.status().expect("cc (gcc) is needed for this test");
    assert!(st.success(), "building the fake host failed");
    out
}

/// (library, symbol, offset of name, offset of cb_init) for both plugins.
fn plugins() -> [(PathBuf, &'static str, &'static str, &'static str); 2] {
    let d = target_profile_dir();
    [
        (d.join("libexec_wasi.so"), "in_exec_wasi_wasmer_plugin", "24", "48"),
        (d.join("libfilter_wasm.so"), "filter_wasm_wasmer_plugin", "8", "40"),
    ]
}

fn run(host: &PathBuf, expect: &str) {
    for (lib, sym, name_off, init_off) in plugins() {
        assert!(lib.exists(), "{} missing: build the workspace first", lib.display());
        let out = Command::new(host).arg(&lib).arg(sym).arg(name_off).arg(init_off).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{sym}: expected a clean refusal, got {:?}\n{text}", out.status);
        assert!(text.contains("refusing to start") && text.contains(expect), "{sym}: no refusal line naming the cause\n{text}");
        assert!(text.contains("v3.2.3 to v5.1"), "{sym}: the refusal does not name the tested range\n{text}");
    }
}

#[test]
fn unknown_host_gets_an_inert_plugin_that_refuses() {
    run(&build_host(false), "does not match a known layout");
}

#[test]
fn failed_self_check_refuses_before_reading_the_instance() {
    run(&build_host(true), "self-check failed");
}
