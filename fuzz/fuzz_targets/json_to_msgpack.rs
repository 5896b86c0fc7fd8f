//! Any bytes as a guest's JSON result: never a panic; an accepted object is valid msgpack
//! whose JSON reads back to the same msgpack.
#![no_main]
use flb_events::{json, object_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &[u8]| {
    let mut mp = Vec::new();
    if json::from_json(text, &mut mp).is_ok() {
        assert_eq!(object_len(&mp), Ok(mp.len()), "one complete msgpack object");
        let mut again = Vec::new();
        json::to_json(&mp, &mut again).expect("our own msgpack converts");
        let mut mp2 = Vec::new();
        json::from_json(&again, &mut mp2).expect("our own JSON parses");
        assert_eq!(mp, mp2);
    }
});
