//! Conversion between a record body (msgpack map) and JSON text, for guests that take JSON
//! (the built-in `wasm` filter's `event_format json`).
//!
//! Differences from Fluent Bit's `flb_msgpack_to_json_str`, all value-preserving: non-ASCII
//! text is written as UTF-8 rather than `\uXXXX` escapes, and floats use the shortest text
//! that reads back to the same value (Fluent Bit's `%.16g` can change the value). Integral
//! floats keep a `.0` as in Fluent Bit, so they stay floats after a round trip.

use crate::decode::{DecodeError, object_len};
use rmp::Marker;

const MAX_DEPTH: usize = 1000;

fn err(reason: &'static str) -> DecodeError {
    DecodeError { offset: 0, reason }
}

/// Writes `body` (one msgpack object, normally a map) as compact JSON into `out`.
pub fn to_json(body: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let len = object_len(body)?;
    let mut rd = &body[..len];
    value(&mut rd, out, 0, false)
}

/// `in_key`: inside a non-string map key, which is written as one JSON string at the end;
/// keys nested in it stay raw text, so each level is escaped once (nested escaping would
/// grow exponentially with key depth).
fn value(rd: &mut &[u8], out: &mut Vec<u8>, depth: usize, in_key: bool) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(err("nesting too deep for JSON"));
    }
    use std::io::Write;
    let m = rmp::decode::read_marker(rd).map_err(|_| err("truncated msgpack"))?;
    match m {
        Marker::Null => out.extend_from_slice(b"null"),
        Marker::True => out.extend_from_slice(b"true"),
        Marker::False => out.extend_from_slice(b"false"),
        Marker::FixPos(v) => write!(out, "{v}").expect("Vec write"),
        Marker::FixNeg(v) => write!(out, "{v}").expect("Vec write"),
        Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => {
            let n = match m {
                Marker::U8 => 1,
                Marker::U16 => 2,
                Marker::U32 => 4,
                _ => 8,
            };
            write!(out, "{}", be(rd, n)?).expect("Vec write");
        }
        Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 => {
            let n = match m {
                Marker::I8 => 1,
                Marker::I16 => 2,
                Marker::I32 => 4,
                _ => 8,
            };
            let raw = be(rd, n)?;
            let shift = 64 - 8 * n as u32;
            let v = ((raw << shift) as i64) >> shift;
            write!(out, "{v}").expect("Vec write");
        }
        Marker::F32 => float(f32::from_bits(be(rd, 4)? as u32) as f64, out),
        Marker::F64 => float(f64::from_bits(be(rd, 8)?), out),
        Marker::FixStr(_)
        | Marker::Str8
        | Marker::Str16
        | Marker::Str32
        | Marker::Bin8
        | Marker::Bin16
        | Marker::Bin32 => {
            let n = match m {
                Marker::FixStr(n) => n as usize,
                Marker::Str8 | Marker::Bin8 => be(rd, 1)? as usize,
                Marker::Str16 | Marker::Bin16 => be(rd, 2)? as usize,
                _ => be(rd, 4)? as usize,
            };
            let s = take(rd, n)?;
            string(s, out);
        }
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            let n = match m {
                Marker::FixArray(n) => n as u64,
                Marker::Array16 => be(rd, 2)?,
                _ => be(rd, 4)?,
            };
            out.push(b'[');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                value(rd, out, depth + 1, in_key)?;
            }
            out.push(b']');
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            let n = match m {
                Marker::FixMap(n) => n as u64,
                Marker::Map16 => be(rd, 2)?,
                _ => be(rd, 4)?,
            };
            out.push(b'{');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                // JSON keys must be strings: render any other key as the string of its JSON.
                if in_key || matches!(rd.first(), Some(0xa0..=0xbf | 0xd9..=0xdb)) {
                    value(rd, out, depth + 1, in_key)?;
                } else {
                    let mut key = Vec::new();
                    value(rd, &mut key, depth + 1, true)?;
                    if key.first() == Some(&b'"') {
                        out.extend_from_slice(&key);
                    } else {
                        string(&key, out);
                    }
                }
                out.push(b':');
                value(rd, out, depth + 1, in_key)?;
            }
            out.push(b'}');
        }
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => {
            let n = match m {
                Marker::FixExt1 => 1,
                Marker::FixExt2 => 2,
                Marker::FixExt4 => 4,
                Marker::FixExt8 => 8,
                Marker::FixExt16 => 16,
                Marker::Ext8 => be(rd, 1)? as usize,
                Marker::Ext16 => be(rd, 2)? as usize,
                _ => be(rd, 4)? as usize,
            };
            take(rd, 1)?; // type
            let data = take(rd, n)?;
            // As Fluent Bit: the bytes as \xNN text.
            let text: String = data.iter().map(|b| format!("\\x{b:02x}")).collect();
            string(text.as_bytes(), out);
        }
        Marker::Reserved => return Err(err("invalid msgpack byte 0xc1")),
    }
    Ok(())
}

fn take<'a>(rd: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if rd.len() < n {
        return Err(err("truncated msgpack"));
    }
    let (h, t) = rd.split_at(n);
    *rd = t;
    Ok(h)
}

fn be(rd: &mut &[u8], n: usize) -> Result<u64, DecodeError> {
    Ok(take(rd, n)?.iter().fold(0u64, |a, &b| (a << 8) | b as u64))
}

fn float(v: f64, out: &mut Vec<u8>) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
    } else if v == v.trunc() && v.abs() < 1e15 {
        out.extend_from_slice(format!("{v:.1}").as_bytes());
    } else {
        let mut b = ryu_like(v);
        out.append(&mut b);
    }
}

fn ryu_like(v: f64) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap_or_else(|_| b"null".to_vec())
}

fn string(bytes: &[u8], out: &mut Vec<u8>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => serde_json::to_writer(&mut *out, s).expect("Vec write"),
        Err(_) => serde_json::to_writer(&mut *out, String::from_utf8_lossy(bytes).as_ref())
            .expect("Vec write"),
    }
}

/// Why a guest's JSON result cannot become a record body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    Invalid(String),
    NotAnObject,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonError::Invalid(e) => write!(f, "invalid JSON: {e}"),
            JsonError::NotAnObject => f.write_str("the JSON result is not an object"),
        }
    }
}

impl std::error::Error for JsonError {}

/// Parses JSON text that must be an object and appends it as a msgpack map to `out`.
/// Streams straight from the text to msgpack (no intermediate tree); key order is kept.
pub fn from_json(json: &[u8], out: &mut Vec<u8>) -> Result<(), JsonError> {
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(JsonError::NotAnObject);
    }
    let start = out.len();
    let mut de = serde_json::Deserializer::from_slice(json);
    let r = serde::de::DeserializeSeed::deserialize(Sink(out), &mut de).and_then(|_| de.end());
    r.map_err(|e| {
        out.truncate(start);
        JsonError::Invalid(e.to_string())
    })
}

/// A serde visitor that writes each JSON value as msgpack.
struct Sink<'a>(&'a mut Vec<u8>);

impl<'de> serde::de::DeserializeSeed<'de> for Sink<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// Containers are written with a 5-byte header whose count is only known at the end; the
/// header is then shrunk to the smallest form, as Fluent Bit's encoder would write it.
fn finish(out: &mut Vec<u8>, start: usize, n: u32, map: bool) {
    let mut header = [0u8; 5];
    let mut w = &mut header[..];
    if map {
        rmp::encode::write_map_len(&mut w, n)
    } else {
        rmp::encode::write_array_len(&mut w, n)
    }
    .expect("5 bytes hold any header");
    let len = 5 - w.len();
    out[start..start + len].copy_from_slice(&header[..len]);
    if len < 5 {
        out.copy_within(start + 5.., start + len);
        out.truncate(out.len() - (5 - len));
    }
}

impl<'de> serde::de::Visitor<'de> for Sink<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        rmp::encode::write_bool(self.0, v).expect("Vec write");
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        rmp::encode::write_sint(self.0, v).expect("Vec write");
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        rmp::encode::write_uint(self.0, v).expect("Vec write");
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        rmp::encode::write_f64(self.0, v).expect("Vec write");
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        rmp::encode::write_str(self.0, v).expect("Vec write");
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        rmp::encode::write_nil(self.0).expect("Vec write");
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let start = self.0.len();
        self.0.extend_from_slice(&[0; 5]);
        let mut n = 0u32;
        while seq.next_element_seed(Sink(self.0))?.is_some() {
            n += 1;
        }
        finish(self.0, start, n, false);
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let start = self.0.len();
        self.0.extend_from_slice(&[0; 5]);
        let mut n = 0u32;
        while map.next_key_seed(Sink(self.0))?.is_some() {
            map.next_value_seed(Sink(self.0))?;
            n += 1;
        }
        finish(self.0, start, n, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(json: &str) -> Vec<u8> {
        let mut out = vec![];
        from_json(json.as_bytes(), &mut out).unwrap();
        out
    }

    fn js(body: &[u8]) -> String {
        let mut out = vec![];
        to_json(body, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn round_trip_preserves_order_and_types() {
        let src = r#"{"z":1,"a":-2,"f":1.5,"g":2.0,"s":"x\"y\u00e9","n":null,"b":true,"l":[1,{"k":"v"}],"big":18446744073709551615}"#;
        let out = js(&mp(src));
        assert_eq!(
            out,
            r#"{"z":1,"a":-2,"f":1.5,"g":2.0,"s":"x\"yé","n":null,"b":true,"l":[1,{"k":"v"}],"big":18446744073709551615}"#
        );
    }

    #[test]
    fn containers_get_the_smallest_header() {
        let many: Vec<String> = (0..20)
            .map(|i| format!("\"k{i}\":[{}]", "1,".repeat(16).trim_end_matches(',')))
            .collect();
        let out = mp(&format!("{{{}}}", many.join(",")));
        assert_eq!(&out[..3], &[0xde, 0, 20]);
        assert_eq!(&out[3..8], &[0xa2, b'k', b'0', 0xdc, 0]);
        assert_eq!(mp("{}"), [0x80]);
        assert_eq!(mp(r#"{"a":[]}"#), [0x81, 0xa1, b'a', 0x90]);
    }

    #[test]
    fn non_objects_are_refused() {
        let mut out = vec![];
        assert_eq!(from_json(b"[1,2]", &mut out), Err(JsonError::NotAnObject));
        assert!(matches!(
            from_json(b"{", &mut out),
            Err(JsonError::Invalid(_))
        ));
    }

    #[test]
    fn non_string_keys_and_binary() {
        // {1: bin "ab", "e": ext(5, [1])}
        let body = [
            0x82, 0x01, 0xc4, 0x02, b'a', b'b', 0xa1, b'e', 0xd4, 0x05, 0x01,
        ];
        assert_eq!(js(&body), r#"{"1":"ab","e":"\\x01"}"#);
    }

    #[test]
    fn nested_non_string_keys_grow_linearly() {
        // {{{...{1: 1}...: 1}: 1}: 1}, 60 levels of map keys: escaping each level's key again
        // would need 2^60 bytes (a fuzzer found this as an out-of-memory).
        let levels = 60;
        let mut body = vec![0x81; levels];
        body.extend_from_slice(&[0x01, 0x01]);
        body.extend(std::iter::repeat_n(0x01, levels - 1));
        let out = js(&body);
        assert!(out.len() < 10 * levels, "{} bytes", out.len());
        assert_eq!(
            js(&[0x81, 0x81, 0x81, 0x01, 0x02, 0x03, 0x04]),
            r#"{"{{1:2}:3}":4}"#
        );
        assert_eq!(js(&[0x81, 0x91, 0xa1, b'k', 0x04]), r#"{"[\"k\"]":4}"#);
    }

    #[test]
    fn floats_keep_their_value() {
        let mut body = vec![0x81, 0xa1, b'x'];
        rmp::encode::write_f64(&mut body, 0.1 + 0.2).unwrap();
        assert_eq!(js(&body), r#"{"x":0.30000000000000004}"#);
    }
}
