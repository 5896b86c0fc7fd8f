//! Conversion between a record body (msgpack map) and JSON text, for guests that take JSON
//! (the built-in `wasm` filter's `event_format json`).
//!
//! Differences from Fluent Bit's `flb_msgpack_to_json_str`, all value-preserving: non-ASCII
//! text is written as UTF-8 rather than `\uXXXX` escapes, and floats use the shortest text
//! that reads back to the same value (Fluent Bit's `%.16g` can change the value). Integral
//! floats keep a `.0` as in Fluent Bit, so they stay floats after a round trip.

use crate::decode::DecodeError;
use rmp::Marker;
use wide::{i8x16, u8x16};

const MAX_DEPTH: usize = 1000;

fn err(reason: &'static str) -> DecodeError {
    DecodeError { offset: 0, reason }
}

/// Writes `body` (one msgpack object, normally a map) as compact JSON into `out`.
pub fn to_json(body: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    value(&mut &body[..], out, 0, false)
}

/// One record body as JSON text for a guest, remembering where each top-level member ends
/// in the text and in the body. A guest result that repeats leading and trailing runs of
/// those members byte for byte (usual edits: add a field first or last, change one) then
/// reuses their msgpack instead of parsing them again; only the rest of the result is parsed.
/// Reused members keep their original msgpack types (as an untouched record does), where a
/// full parse would turn binary into text and non-string keys into strings.
#[derive(Default)]
pub struct RecordJson {
    text: Vec<u8>,
    /// After each top-level member: (end in `text`, end in the body).
    ends: Vec<(usize, usize)>,
    /// Where the first member starts in the body, and the body's length (a check).
    body_start: usize,
    body_len: usize,
    tail: Vec<u8>,
    /// The last middle parsed (an object's text; empty if it did not parse) and its msgpack:
    /// a guest that adds the same members to every record (the usual edit) has them parsed
    /// once, not once per record.
    parsed_from: Vec<u8>,
    parsed: Vec<u8>,
}

impl RecordJson {
    /// Converts `body` and returns the text.
    pub fn encode(&mut self, body: &[u8]) -> Result<&[u8], DecodeError> {
        self.text.clear();
        self.ends.clear();
        self.body_len = body.len();
        let mut rd = body;
        let n = match rd.first() {
            Some(0x80..=0x8f | 0xde | 0xdf) => {
                rmp::decode::read_map_len(&mut rd).map_err(|_| err("truncated msgpack"))?
            }
            _ => {
                value(&mut rd, &mut self.text, 0, false)?;
                return Ok(&self.text);
            }
        };
        self.body_start = body.len() - rd.len();
        self.text.push(b'{');
        for i in 0..n {
            if i > 0 {
                self.text.push(b',');
            }
            member(&mut rd, &mut self.text, 1, false)?;
            self.ends.push((self.text.len(), body.len() - rd.len()));
        }
        self.text.push(b'}');
        Ok(&self.text)
    }

    /// Appends the guest's JSON `result` as a msgpack map to `out`; `body` is the body given
    /// to the last [`RecordJson::encode`]. Same result and errors as [`from_json`].
    pub fn decode(&mut self, body: &[u8], result: &[u8], out: &mut Vec<u8>) -> Result<(), JsonError> {
        if body.len() == self.body_len && !self.ends.is_empty() && result.first() == Some(&b'{') {
            if let Some(splice) = self.splice(result) {
                // A middle's text starts with '{', so an emptied `parsed_from` matches none.
                if splice.parse && self.tail != self.parsed_from {
                    std::mem::swap(&mut self.tail, &mut self.parsed_from);
                    self.parsed.clear();
                    if from_json(&self.parsed_from, &mut self.parsed).is_err() {
                        self.parsed_from.clear();
                    }
                }
                if !splice.parse || !self.parsed_from.is_empty() {
                    self.assemble(body, &splice, out);
                    return Ok(());
                }
            }
        }
        from_json(result, out)
    }

    /// Finds the members of `result` that repeat sent ones: a leading run and a trailing run,
    /// around a middle that is parsed (left in `tail` as an object's text).
    fn splice(&mut self, result: &[u8]) -> Option<Splice> {
        let (text, ends, n) = (&self.text, &self.ends, self.ends.len());
        let head = common_prefix(text, result);
        // A leading member is kept if its text lies in the common prefix and the result goes
        // on with ',' or '}' there: up to it, the result is the same token sequence as sent.
        let leading = |limit: usize, after: &[u8]| {
            (1..=n).rev().find(|&a| {
                let e = ends[a - 1].0;
                e <= head && e <= limit && result.get(e).is_some_and(|c| after.contains(c))
            })
        };
        // Where member i starts in the sent text, just after the '{' or ',' before it.
        let start = |i: usize| if i == 0 { 1 } else { ends[i - 1].0 + 1 };
        let tail_same = common_suffix(text, result);
        let trailing = (0..n).find(|&b| text.len() - start(b) <= tail_same);
        self.tail.clear();
        if let Some(b) = trailing {
            // The result is `{` lead `,` middle `,` trail `}`; the trail starts after `sep`.
            let sep = (result.len() - (text.len() - start(b))).checked_sub(1)?;
            // The middle: none (`{` trail, or lead `,` trail), or members between two
            // separators, which must be there (`{,"b":2}` and `{"a":1,,"b":2}` are errors).
            let (a, middle) = if sep == 0 {
                (0, None)
            } else if result[sep] != b',' {
                return None;
            } else {
                match leading(sep, b",") {
                    Some(a) if ends[a - 1].0 == sep => (a, None),
                    Some(a) => (a, Some(ends[a - 1].0 + 1..sep)),
                    None => (0, Some(1..sep)),
                }
            };
            if let Some(middle) = &middle {
                let members = &result[middle.clone()];
                if members.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                self.tail.push(b'{');
                self.tail.extend_from_slice(members);
                self.tail.push(b'}');
            }
            return Some(Splice { lead: a, trail: b, parse: middle.is_some() });
        }
        // No trailing members: the result ends its own way after the leading ones.
        let a = leading(usize::MAX, b",}")?;
        let rest = &result[ends[a - 1].0..];
        let skip = usize::from(rest[0] == b',');
        // `{"a":1,}` must stay an error, as a full parse makes it.
        if skip == 1 && rest[1..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}') {
            return None;
        }
        self.tail.push(b'{');
        self.tail.extend_from_slice(&rest[skip..]);
        Some(Splice { lead: a, trail: n, parse: true })
    }

    /// Writes the map: kept leading members, the parsed middle (in `parsed`, if the splice
    /// has one), kept trailing members.
    fn assemble(&self, body: &[u8], s: &Splice, out: &mut Vec<u8>) {
        let (added, members) = if s.parse {
            let mut members = &self.parsed[..];
            let n = rmp::decode::read_map_len(&mut members).expect("from_json writes a map");
            (n as usize, members)
        } else {
            (0, &[][..])
        };
        let n = self.ends.len();
        // In the body, member i spans member_end(i - 1)..member_end(i).
        let member_end = |i: usize| if i == 0 { self.body_start } else { self.ends[i - 1].1 };
        rmp::encode::write_map_len(out, (s.lead + added + n - s.trail) as u32).expect("Vec write");
        out.extend_from_slice(&body[self.body_start..member_end(s.lead)]);
        out.extend_from_slice(members);
        out.extend_from_slice(&body[member_end(s.trail)..member_end(n)]);
    }
}

/// Members kept from the sent record: `lead` leading ones, those from `trail` on; `parse`:
/// members in between are in `tail`.
struct Splice {
    lead: usize,
    trail: usize,
    parse: bool,
}

/// Length of the common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    common_run::<false>(a, b)
}

/// Length of the common suffix of `a` and `b`.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    common_run::<true>(a, b)
}

/// How many bytes `a` and `b` share from their start (or, `FROM_END`, their end): large,
/// then small blocks (each comparison is a call; records can be long), then words, then bytes.
fn common_run<const FROM_END: bool>(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = if FROM_END { (&a[a.len() - n..], &b[b.len() - n..]) } else { (&a[..n], &b[..n]) };
    // The `k` bytes past the first `i` that match, counted from the chosen end.
    let next = |i: usize, k: usize| if FROM_END { n - i - k..n - i } else { i..i + k };
    let mut i = 0;
    for block in [1024, 64] {
        while i + block <= n && a[next(i, block)] == b[next(i, block)] {
            i += block;
        }
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[next(i, 8)].try_into().expect("8 bytes"));
    while i + 8 <= n {
        let differ = word(a, i) ^ word(b, i);
        if differ != 0 {
            // Little-endian: the last byte in memory is the highest.
            let same = if FROM_END { differ.leading_zeros() } else { differ.trailing_zeros() };
            return i + (same / 8) as usize;
        }
        i += 8;
    }
    i + (i..n).take_while(|&j| a[next(j, 1)] == b[next(j, 1)]).count()
}

/// `in_key`: inside a non-string map key, which is written as one JSON string at the end;
/// keys nested in it stay raw text, so each level is escaped once (nested escaping would
/// grow exponentially with key depth).
fn value(rd: &mut &[u8], out: &mut Vec<u8>, depth: usize, in_key: bool) -> Result<(), DecodeError> {
    // Short strings (most keys, many values) without the general dispatch.
    if let Some((&b @ 0xa0..=0xbf, rest)) = rd.split_first()
        && let Some(s) = rest.get(..(b & 0x1f) as usize)
    {
        if !short_plain_string(rest, s.len(), out) {
            string(s, out);
        }
        *rd = &rest[s.len()..];
        return Ok(());
    }
    if depth > MAX_DEPTH {
        return Err(err("nesting too deep for JSON"));
    }
    let m = rmp::decode::read_marker(rd).map_err(|_| err("truncated msgpack"))?;
    match m {
        Marker::Null => out.extend_from_slice(b"null"),
        Marker::True => out.extend_from_slice(b"true"),
        Marker::False => out.extend_from_slice(b"false"),
        Marker::FixPos(v) => int(v, out),
        Marker::FixNeg(v) => int(v, out),
        Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => {
            let n = match m {
                Marker::U8 => 1,
                Marker::U16 => 2,
                Marker::U32 => 4,
                _ => 8,
            };
            int(be(rd, n)?, out);
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
            int(v, out);
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
                member(rd, out, depth + 1, in_key)?;
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

/// One map member, `"key":value`.
fn member(rd: &mut &[u8], out: &mut Vec<u8>, depth: usize, in_key: bool) -> Result<(), DecodeError> {
    // JSON keys must be strings: render any other key as the string of its JSON.
    if in_key || matches!(rd.first(), Some(0xa0..=0xbf | 0xd9..=0xdb)) {
        value(rd, out, depth, in_key)?;
    } else {
        let mut key = Vec::new();
        value(rd, &mut key, depth, true)?;
        if key.first() == Some(&b'"') {
            out.extend_from_slice(&key);
        } else {
            string(&key, out);
        }
    }
    out.push(b':');
    value(rd, out, depth, in_key)
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

fn int(v: impl itoa::Integer, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn string(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Most text is plain ASCII: copied in one piece after one scan, without a separate
    // UTF-8 validation. The rest (from the first byte needing care) takes the general path;
    // an ASCII prefix ends on a character boundary, so validating the rest alone suffices.
    let plain = plain_run::<true>(bytes);
    out.extend_from_slice(&bytes[..plain]);
    let rest = &bytes[plain..];
    if !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => escape(s.as_bytes(), out),
            Err(_) => escape(String::from_utf8_lossy(rest).as_bytes(), out),
        }
    }
    out.push(b'"');
}

/// Writes UTF-8 text escaped exactly as serde_json does (without the quotes).
fn escape(s: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    loop {
        let run = plain_run::<false>(&s[i..]);
        out.extend_from_slice(&s[i..i + run]);
        i += run;
        let Some(&b) = s.get(i) else { return };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
        }
        i += 1;
    }
}

/// Writes the string of the first `n` bytes of `text` (up to 8, where `text` has 8 or more)
/// if none needs care, with one word's check and store; returns false if it did not.
fn short_plain_string(text: &[u8], n: usize, out: &mut Vec<u8>) -> bool {
    let Some(word) = text.first_chunk::<8>() else { return false };
    if n > 8 {
        return false;
    }
    // Bytes past the string become a plain letter.
    let keep = u64::MAX.checked_shr(64 - 8 * n as u32).unwrap_or(0);
    let w = (u64::from_le_bytes(*word) & keep) | (u64::from_le_bytes([b'a'; 8]) & !keep);
    if needs_care::<true>(w) != 0 {
        return false;
    }
    // Quote, the word, closing quote after the string; then the bytes past it are dropped.
    let mut quoted = [b'"'; 10];
    quoted[1..9].copy_from_slice(&w.to_le_bytes());
    quoted[n + 1] = b'"';
    out.extend_from_slice(&quoted);
    out.truncate(out.len() - (8 - n));
    true
}

/// The high bit of each byte of `w` that a JSON string cannot take as it is: below 0x20,
/// '"' or '\\' (with `ASCII_ONLY`, above 0x7f too). A borrow can flag a byte above a
/// flagged one, never below, so the lowest flag is exact.
fn needs_care<const ASCII_ONLY: bool>(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let high = if ASCII_ONLY { w & HIGH } else { 0 };
    (w.wrapping_sub(ONES * 0x20) & !w & HIGH) | zero(w ^ (ONES * b'"' as u64)) | zero(w ^ (ONES * b'\\' as u64)) | high
}

/// The bytes of `v` that [`needs_care`] flags (all ones), the others zero.
fn flagged<const ASCII_ONLY: bool>(v: u8x16) -> u8x16 {
    // `x ^ 2` is at most 0x20 exactly when x is below 0x20 or '"' (0x22): one compare for
    // both. Signed, it also takes the bytes above 0x7f.
    let low_or_quote = if ASCII_ONLY {
        (v ^ u8x16::splat(2)).cast_signed().simd_lt(i8x16::splat(0x21)).cast_unsigned()
    } else {
        (v ^ u8x16::splat(2)).simd_lt(u8x16::splat(0x21))
    };
    low_or_quote | v.simd_eq(u8x16::splat(b'\\'))
}

/// How many leading bytes of `s` a JSON string takes as they are (see [`needs_care`]).
/// Records are mostly long runs of plain text: 64, then 16 bytes at a time in vector
/// compares, then single words.
fn plain_run<const ASCII_ONLY: bool>(s: &[u8]) -> usize {
    let flags = needs_care::<ASCII_ONLY>;
    let word = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let mut i = 0;
    for block in s.as_chunks::<64>().0 {
        let (parts, _) = block.as_chunks::<16>();
        let [a, b, c, d] = [0, 1, 2, 3].map(|k| flagged::<ASCII_ONLY>(u8x16::new(parts[k])));
        if (a | b | c | d).any() {
            let mask = [a, b, c, d].iter().rev().fold(0u64, |m, v| m << 16 | v.to_bitmask() as u64);
            return i + mask.trailing_zeros() as usize;
        }
        i += 64;
    }
    for part in s[i..].as_chunks::<16>().0 {
        let mask = flagged::<ASCII_ONLY>(u8x16::new(*part)).to_bitmask();
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    while i + 8 <= s.len() {
        let f = flags(word(i));
        if f != 0 {
            return i + (f.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    if i == s.len() {
        return i;
    }
    if s.len() >= 8 {
        // The last eight bytes as one word; those before `i` are plain, flagging nothing.
        let at = s.len() - 8;
        let f = flags(word(at));
        return if f == 0 { s.len() } else { at + (f.trailing_zeros() / 8) as usize };
    }
    // Under eight bytes: one at a time, each as the lowest byte of a word.
    s.iter().position(|&b| flags(b as u64) & 0x80 != 0).unwrap_or(s.len())
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

    fn edited(sent_body: &[u8], edit: impl Fn(&str) -> String) -> (Vec<u8>, Vec<u8>) {
        let mut rj = RecordJson::default();
        let text = String::from_utf8(rj.encode(sent_body).unwrap().to_vec()).unwrap();
        let result = edit(&text);
        let (mut fast, mut full) = (vec![], vec![]);
        let a = rj.decode(sent_body, result.as_bytes(), &mut fast);
        let b = from_json(result.as_bytes(), &mut full);
        assert_eq!(a, b, "{result}");
        (fast, full)
    }

    #[test]
    fn unchanged_members_are_reused_not_parsed() {
        let body = mp(r#"{"a":1,"b":"x","c":[1,2],"d":{"e":null}}"#);
        // Appended, removed at the end, identical, changed at the start, trailing space.
        for edit in [
            |t: &str| format!("{},\"wasm\":\"yes\"}}", &t[..t.len() - 1]),
            |t: &str| t.replace(r#","d":{"e":null}"#, ""),
            |t: &str| t.to_owned(),
            |t: &str| t.replace(r#""a":1"#, r#""a":2"#),
            |t: &str| format!("{t} \n"),
            |t: &str| t.replace(r#""b":"x""#, r#""b":"x","n":1.5"#),
            |t: &str| t.replace(r#""a":1"#, r#""a":10"#),
        ] {
            let (fast, full) = edited(&body, edit);
            assert_eq!(fast, full);
        }
    }

    #[test]
    fn reuse_keeps_errors_and_original_types() {
        let body = mp(r#"{"a":1,"b":2}"#);
        for bad in [r#"{,"b":2}"#, r#"{ ,"a":1,"b":2}"#, r#"{"a":1"#, r#"{"a":1,"b":2"#, r#"{"a":1,"#, r#"{"a":1,}"#, r#"{"a":1,"b":2,}"#, r#"{"a":1,"b":2} x"#, r#"{"a":1,"b""#, r#"{"a":1,"b":2}}"#] {
            let (mut fast, mut full) = (vec![], vec![]);
            let mut rj = RecordJson::default();
            rj.encode(&body).unwrap();
            let a = rj.decode(&body, bad.as_bytes(), &mut fast);
            assert_eq!(a, from_json(bad.as_bytes(), &mut full), "{bad}");
            assert!(a.is_err(), "{bad}");
        }
        // {1: bin "ab"} plus a field: the kept member stays an integer key and binary.
        let body = [0x81, 0x01, 0xc4, 0x02, b'a', b'b'];
        let (fast, _) = edited(&body, |t| format!("{},\"k\":true}}", &t[..t.len() - 1]));
        assert_eq!(fast, [0x82, 0x01, 0xc4, 0x02, b'a', b'b', 0xa1, b'k', 0xc3]);
        // Inserted first, and a middle member replaced: binary on both sides kept.
        let body = [0x83, 0xa1, b'a', 0xc4, 0x01, b'x', 0xa1, b'b', 0x01, 0xa1, b'c', 0xc4, 0x01, b'y'];
        let (fast, _) = edited(&body, |t| t.replacen('{', r#"{"k":true,"#, 1));
        assert_eq!(fast[0], 0x84);
        assert_eq!(&fast[1..5], [0xa1, b'k', 0xc3, 0xa1]);
        assert_eq!(&fast[4..], &body[1..]);
        let (fast, _) = edited(&body, |t| t.replace(r#""b":1"#, r#""b":2,"d":3"#));
        assert_eq!(fast[0], 0x84);
        assert_eq!(&fast[1..6], &body[1..6]);
        assert_eq!(&fast[fast.len() - 5..], &body[body.len() - 5..]);
    }

    #[test]
    fn escaping_matches_serde_json() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é\u{2028}\"\\ a long plain run of text here\u{1f}");
        for s in [all.as_str(), "", "\"", "12345678\n", "abcdefgh", "abcdefg\\"] {
            for start in 0..s.len().min(9) {
                let Some(s) = s.get(start..) else { continue };
                let mut ours = vec![];
                string(s.as_bytes(), &mut ours);
                assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
            }
        }
        // One special (or boundary) character at every position of plain runs of every
        // length around the 8-, 16- and 64-byte blocks the fast paths check.
        for c in ["\0", "\u{1f}", " ", "!", "\"", "#", "\\", "\n", "\u{7f}", "é", "\u{2028}"] {
            for len in 0..150 {
                for at in 0..=len {
                    let s = format!("{}{c}{}", "m".repeat(at), "m".repeat(len - at));
                    let mut ours = vec![];
                    string(s.as_bytes(), &mut ours);
                    assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
                }
            }
        }
        // Short strings as keys and values, at the end of the body too (where fewer than
        // eight bytes follow and the one-word check cannot be used).
        for c in ["\0", "\u{1f}", "\"", "\\", "\n", "\u{7f}", "é", "a"] {
            for len in 0..12 {
                for at in 0..=len {
                    let s = format!("{}{c}{}", "m".repeat(at), "m".repeat(len - at));
                    let want = serde_json::to_string(&s).unwrap();
                    let mut body = vec![0x81];
                    rmp::encode::write_str(&mut body, &s).unwrap();
                    rmp::encode::write_str(&mut body, &s).unwrap();
                    assert_eq!(js(&body), format!("{{{want}:{want}}}"), "{s:?}");
                }
            }
        }
        // Invalid UTF-8 (here after an ASCII run the fast path had written) is replaced
        // by U+FFFD, as the lossy conversion does.
        for bytes in [&b"plain ascii text \xff\xfe end"[..], b"\xc3", b"12345678\xe9"] {
            let mut ours = b"prefix".to_vec();
            string(bytes, &mut ours);
            let want = serde_json::to_vec(&String::from_utf8_lossy(bytes)).unwrap();
            assert_eq!(ours[6..], want[..], "{bytes:?}");
        }
    }

    #[test]
    fn common_prefix_and_suffix_match_a_byte_by_byte_count() {
        let naive_prefix = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let naive_suffix = |a: &[u8], b: &[u8]| a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
        // Lengths around the word and block sizes, one byte changed at every position.
        for len in [0, 1, 7, 8, 9, 63, 64, 65, 130, 1023, 1024, 1025, 2100] {
            let a: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for at in (0..len).filter(|&i| i < 140 || i % 61 == 0 || len - i < 140) {
                let mut b = a.clone();
                b[at] ^= 0x40;
                assert_eq!(common_prefix(&a, &b), naive_prefix(&a, &b), "{len} {at}");
                assert_eq!(common_suffix(&a, &b), naive_suffix(&a, &b), "{len} {at}");
            }
            let longer = [&a[..], b"tail"].concat();
            assert_eq!(common_prefix(&a, &longer), len);
            assert_eq!(common_suffix(&a, &[b"head", &a[..]].concat()), len);
        }
    }
}
