//! Example on the guest SDK's batch call and msgpack reader: appends "wasm":"yes" to every
//! record's body, one call per run of records (the output equals filter_msgpack_add.c's,
//! which is called per record). Anything it cannot read is passed on unchanged.
use flb_wasm_guest::msgpack::{self, Map};
use flb_wasm_guest::{batch, Events};

fn add_field(input: &[u8]) -> Events {
    let mut out = Vec::with_capacity(input.len() + input.len() / 8 + 16);
    let mut body = Vec::new();
    for event in msgpack::events(input) {
        let e = match event {
            Ok(e) => e,
            Err(_) => return Events::Keep,
        };
        // A batch starts with its group's start marker, for reading; only records go out.
        if e.is_group_marker() {
            continue;
        }
        let map = match Map::parse(e.body) {
            Some(m) => m,
            None => return Events::Keep,
        };
        body.clear();
        msgpack::write_map_header(&mut body, map.len + 1);
        body.extend_from_slice(map.entries);
        msgpack::write_str(&mut body, "wasm");
        msgpack::write_str(&mut body, "yes");
        msgpack::write_event(&mut out, e.sec, e.nsec, e.metadata, &body);
    }
    Events::Replace(out)
}

batch!(add_field_batch_rs, add_field);
