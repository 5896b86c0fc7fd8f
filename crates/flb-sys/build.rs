//! Generates Rust declarations from our own ABI header with bindgen.
use std::{env, path::PathBuf};

fn main() {
    // Read at run time, not with env!(): a build script compiled in another clone sharing
    // the target directory would otherwise look for the header in that clone.
    let header = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../fluent-bit-headers/flb_wasmer_abi.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .use_core()
        .allowlist_type("(flb|mk)_.*")
        .allowlist_var("FLB_.*")
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .derive_default(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen failed on fluent-bit-headers/flb_wasmer_abi.h");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(out).expect("cannot write bindings");
}
