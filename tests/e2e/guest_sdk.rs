//! The Rust guest SDK's own unit tests, built with the rustc its users have (Debian's 1.63,
//! the one the fixtures use) for this machine; the SDK is not a workspace member.

use e2e::fixtures::source_dir;
use std::process::Command;

#[test]
fn guest_sdk_unit_tests_pass_under_rustc_1_63() {
    let rustc = "/usr/bin/rustc";
    assert!(std::path::Path::new(rustc).exists(), "Debian's rustc is missing (run scripts/setup)");
    let sdk = source_dir().join("../../guest/rust/flb-wasm-guest/src/lib.rs");
    let bin = e2e::scratch_dir("guest-sdk").join("sdk_tests");
    let built = Command::new(rustc)
        .args(["--edition", "2021", "--test", "--crate-name", "flb_wasm_guest"])
        .arg(&sdk)
        .arg("-o")
        .arg(&bin)
        .output()
        .expect("run rustc");
    assert!(built.status.success(), "building the SDK's tests failed:\n{}", String::from_utf8_lossy(&built.stderr));
    let ran = Command::new(&bin).output().expect("run the SDK's tests");
    let out = String::from_utf8_lossy(&ran.stdout);
    assert!(ran.status.success() && out.contains("test result: ok"), "the SDK's tests failed:\n{out}{}", String::from_utf8_lossy(&ran.stderr));
    assert!(!out.contains("running 0 tests"), "no SDK tests ran:\n{out}");
}
