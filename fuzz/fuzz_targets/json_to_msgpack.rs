//! Any bytes as a guest's JSON result: never a panic; an accepted object is valid msgpack
//! whose JSON reads back to the same msgpack. And as an edit of the text a record was sent
//! as: reusing the unchanged members gives what a full parse gives.
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
        // The record `mp` sent as JSON; the guest keeps a prefix and a suffix of it around
        // the fuzzer's bytes.
        let mut rj = json::RecordJson::default();
        let sent = rj.encode(&mp).expect("our own msgpack converts").to_vec();
        let cut = text.len() % (sent.len() + 1);
        let resume = (cut + text.first().map_or(0, |&b| b as usize % 8)).min(sent.len());
        let result = [&sent[..cut], text, &sent[resume..]].concat();
        let (mut fast, mut full) = (Vec::new(), Vec::new());
        let a = rj.decode(&mp, &result, &mut fast);
        assert_eq!(a.is_ok(), json::from_json(&result, &mut full).is_ok());
        if a.is_ok() {
            let (mut ja, mut jb) = (Vec::new(), Vec::new());
            json::to_json(&fast, &mut ja).expect("spliced msgpack converts");
            json::to_json(&full, &mut jb).expect("parsed msgpack converts");
            assert_eq!(ja, jb);
        }
    }
});
