//! Example Rust filter (JSON mode) on the guest SDK: adds "rust":"yes" as the first key and
//! drops records whose level is debug. Builds for wasm32-unknown-unknown and wasm32-wasi.
use flb_wasm_guest::{filter, Action, Record};

fn add_field(r: &Record) -> Action {
    let body = match r.json() {
        Some(b) => b,
        None => return Action::Keep,
    };
    if body.contains("\"level\":\"debug\"") {
        return Action::Drop;
    }
    if body.len() <= 2 {
        return Action::Replace(b"{\"rust\":\"yes\"}".to_vec());
    }
    Action::Replace(format!("{{\"rust\":\"yes\",{}", &body[1..]).into_bytes())
}

filter!(rust_add_field, add_field);
