//! Any bytes as a guest's msgpack result (read at the returned pointer up to the end of
//! guest memory): `object_len` never panics and never claims more than is there.
#![no_main]
use flb_events::object_len;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|mem: &[u8]| {
    if let Ok(n) = object_len(mem) {
        assert!(n >= 1 && n <= mem.len());
        assert_eq!(object_len(&mem[..n]), Ok(n), "the object is self-delimited");
    }
});
