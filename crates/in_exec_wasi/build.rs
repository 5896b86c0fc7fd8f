// -Bsymbolic: our constructor fills our own registration object even if the host exports a
// symbol of the same name. -z nodelete: dlclose never unmaps code that threads or signal
// handlers may still reference. --exclude-libs: see below.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    // Keep wasmer's own #[no_mangle] functions (and every other dependency symbol) out of
    // the dynamic symbol table: only our entry points are exported.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--exclude-libs,ALL");
}
