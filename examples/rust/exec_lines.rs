//! Example exec_wasi program in Rust (wasm32-wasi): prints its arguments and three lines.
fn main() {
    for a in std::env::args().skip(1) {
        println!("arg {}", a);
    }
    for i in 1..=3 {
        println!("rust line {}", i);
    }
}
