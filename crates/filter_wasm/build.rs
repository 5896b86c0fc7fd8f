// -Bsymbolic: our constructor fills our own registration object even if the host exports a
// symbol of the same name. -z nodelete: dlclose never unmaps code that threads or signal
// handlers may still reference.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
