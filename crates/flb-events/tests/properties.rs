//! Property-based tests of the codec.

use flb_events::{Decoder, EMPTY_MAP, Encoder, EventKind, EventTime, json, object_len};
use proptest::prelude::*;

/// A msgpack-encodable value tree.
#[derive(Clone, Debug)]
enum V {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    F64(f64),
    Str(String),
    Bin(Vec<u8>),
    Arr(Vec<V>),
    Map(Vec<(String, V)>),
}

fn leaf() -> impl Strategy<Value = V> {
    prop_oneof![
        Just(V::Nil),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(V::Int),
        any::<u64>().prop_map(V::UInt),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(V::F64),
        ".{0,40}".prop_map(V::Str),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(V::Bin),
    ]
}

fn value() -> impl Strategy<Value = V> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(V::Arr),
            proptest::collection::vec((".{0,10}", inner), 0..8).prop_map(V::Map),
        ]
    })
}

fn map() -> impl Strategy<Value = V> {
    proptest::collection::vec((".{0,10}", value()), 0..6).prop_map(V::Map)
}

fn encode(v: &V, out: &mut Vec<u8>) {
    use rmp::encode::*;
    match v {
        V::Nil => write_nil(out).unwrap(),
        V::Bool(b) => write_bool(out, *b).unwrap(),
        V::Int(i) => {
            write_sint(out, *i).unwrap();
        }
        V::UInt(u) => {
            write_uint(out, *u).unwrap();
        }
        V::F64(f) => write_f64(out, *f).unwrap(),
        V::Str(s) => write_str(out, s).unwrap(),
        V::Bin(b) => write_bin(out, b).unwrap(),
        V::Arr(a) => {
            write_array_len(out, a.len() as u32).unwrap();
            a.iter().for_each(|x| encode(x, out));
        }
        V::Map(m) => {
            write_map_len(out, m.len() as u32).unwrap();
            for (k, x) in m {
                write_str(out, k).unwrap();
                encode(x, out);
            }
        }
    }
}

fn bytes(v: &V) -> Vec<u8> {
    let mut out = vec![];
    encode(v, &mut out);
    out
}

#[derive(Clone, Debug)]
enum Item {
    Record(EventTime, V, V),
    GroupStart(V, V),
    GroupEnd,
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        6 => (0..=EventTime::MAX_SEC, 0u32..1_000_000_000, map(), map()).prop_map(|(s, n, m, b)| Item::Record(EventTime::new(s, n), m, b)),
        1 => (map(), map()).prop_map(|(m, a)| Item::GroupStart(m, a)),
        1 => Just(Item::GroupEnd),
    ]
}

proptest! {
    #[test]
    fn object_len_is_exact(v in value(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
        let b = bytes(&v);
        let mut with_tail = b.clone();
        with_tail.extend_from_slice(&tail);
        prop_assert_eq!(object_len(&with_tail).unwrap(), b.len());
        if !b.is_empty() {
            prop_assert!(object_len(&b[..b.len() - 1]).is_err());
        }
    }

    #[test]
    fn chunks_round_trip(items in proptest::collection::vec(item(), 0..20)) {
        let mut enc = Encoder::new();
        for it in &items {
            match it {
                Item::Record(t, m, b) => enc.record(*t, &bytes(m), &bytes(b)).unwrap(),
                Item::GroupStart(m, a) => enc.group_start(&bytes(m), &bytes(a)).unwrap(),
                Item::GroupEnd => enc.group_end(),
            }
        }
        let events: Vec<_> = Decoder::new(&enc.buf).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(events.len(), items.len());
        let mut again = Encoder::new();
        for (ev, it) in events.iter().zip(&items) {
            again.raw(ev.raw);
            match it {
                Item::Record(t, m, b) => {
                    prop_assert_eq!(ev.kind, EventKind::Record);
                    prop_assert_eq!(ev.time, *t);
                    prop_assert_eq!(ev.metadata, &bytes(m)[..]);
                    prop_assert_eq!(ev.body, &bytes(b)[..]);
                }
                Item::GroupStart(m, a) => {
                    prop_assert_eq!(ev.kind, EventKind::GroupStart);
                    prop_assert_eq!(ev.metadata, &bytes(m)[..]);
                    prop_assert_eq!(ev.body, &bytes(a)[..]);
                }
                Item::GroupEnd => {
                    prop_assert_eq!(ev.kind, EventKind::GroupEnd);
                    prop_assert_eq!(ev.metadata, EMPTY_MAP);
                }
            }
        }
        prop_assert_eq!(again.buf, enc.buf);
    }

    #[test]
    fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut total = 0usize;
        for ev in Decoder::new(&data) {
            match ev {
                Ok(e) => total += e.raw.len(),
                Err(e) => prop_assert!(e.offset <= data.len()),
            }
        }
        prop_assert!(total <= data.len());
        let _ = object_len(&data);
        let mut out = vec![];
        let _ = json::to_json(&data, &mut out);
    }

    #[test]
    fn json_round_trip(v in map()) {
        // JSON has no binary type: compare after one normalisation pass.
        let mut j1 = vec![];
        json::to_json(&bytes(&v), &mut j1).unwrap();
        let mut m = vec![];
        json::from_json(&j1, &mut m).unwrap();
        let mut j2 = vec![];
        json::to_json(&m, &mut j2).unwrap();
        let a: serde_json::Value = serde_json::from_slice(&j1).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&j2).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn record_json_reuse_equals_a_full_parse(v in map(), w in map(), cut1 in any::<prop::sample::Index>(), cut2 in any::<prop::sample::Index>(),
                                             insert in prop::sample::select(vec!["", "}", ",\"k\":1}", "1}", ",}", "\"}", "]}", ",\"x\":[1,{\"y\":null}]}  ",
                                                                                 ",", "{\"w\":\"yes\",", "\"w\":1,", ",\"w\":1", ",,", "{", "\"a\":\"", " "])) {
        // A guest result that keeps a prefix and a suffix of the text it was given (each
        // possibly empty) and puts something of its own in between. One RecordJson takes
        // four records in turn (v twice, w, v again), as a filter instance does, so what it keeps
        // from one record (the parsed middle) is tried on the next.
        let mut rj = json::RecordJson::default();
        for v in [&v, &v, &w, &v] {
            let body = bytes(v);
            let text = rj.encode(&body).unwrap().to_vec();
            let (c1, c2) = (cut1.index(text.len() + 1), cut2.index(text.len() + 1));
            let mut result = text[..c1.min(c2)].to_vec();
            result.extend_from_slice(insert.as_bytes());
            result.extend_from_slice(&text[c1.max(c2)..]);
            let (mut fast, mut full) = (vec![], vec![]);
            let a = rj.decode(&body, &result, &mut fast);
            let b = json::from_json(&result, &mut full);
            prop_assert_eq!(a.is_ok(), b.is_ok(), "result {}", String::from_utf8_lossy(&result));
            if a.is_ok() {
                // Reused members keep binary as binary: compare as JSON.
                let (mut ja, mut jb) = (vec![], vec![]);
                json::to_json(&fast, &mut ja).unwrap();
                json::to_json(&full, &mut jb).unwrap();
                prop_assert_eq!(String::from_utf8(ja).unwrap(), String::from_utf8(jb).unwrap());
            }
        }
    }
}
