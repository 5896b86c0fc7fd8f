//! Fluent Bit WASM filters in Rust (see README.md). Compatible with rustc 1.63.
//!
//! The built-in's per-record contract ([`filter!`]) and flb-wasmer's extended one
//! (docs/extended-abi.md): [`init!`] for per-instance configuration, [`log`] into the Fluent
//! Bit log, [`events!`] for whole events (timestamp, metadata, body in; 0..N events out)
//! and [`batch!`] for one call per run of records.

use std::cell::RefCell;

/// What to do with a record.
pub enum Action {
    /// Pass it on unchanged.
    Keep,
    /// Drop it.
    Drop,
    /// Replace the body: JSON text (event_format json) or one msgpack map (msgpack).
    Replace(Vec<u8>),
}

/// One record as the filter passes it.
pub struct Record<'a> {
    pub tag: &'a str,
    pub sec: u32,
    pub nsec: u32,
    /// The body: JSON text without the NUL (json) or a msgpack map (msgpack).
    pub body: &'a [u8],
}

impl<'a> Record<'a> {
    /// The body as JSON text (JSON mode), if it is UTF-8.
    pub fn json(&self) -> Option<&'a str> {
        std::str::from_utf8(self.body).ok()
    }
}

thread_local! {
    // One result buffer for the life of the instance: valid until the next call.
    static RESULT: RefCell<Vec<u8>> = RefCell::new(Vec::new());
}

static EMPTY: [u8; 1] = [0];

#[doc(hidden)]
pub fn __call(tag: *const u8, tag_len: i32, sec: i32, nsec: i32, rec: *const u8, len: i32, f: fn(&Record) -> Action) -> *const u8 {
    // SAFETY: the host passes valid (ptr, len) pairs in our memory for the duration of the call.
    let (tag, body) = unsafe { (std::slice::from_raw_parts(tag, tag_len.max(0) as usize), std::slice::from_raw_parts(rec, len.max(0) as usize)) };
    let record = Record { tag: std::str::from_utf8(tag).unwrap_or(""), sec: sec as u32, nsec: nsec as u32, body };
    match f(&record) {
        Action::Keep => rec,
        Action::Drop => EMPTY.as_ptr(),
        Action::Replace(bytes) => RESULT.with(|r| {
            let mut r = r.borrow_mut();
            r.clear();
            r.extend_from_slice(&bytes);
            r.push(0); // JSON results are NUL-terminated; msgpack results ignore it
            r.as_ptr()
        }),
    }
}

/// Exports `$name` with the filter ABI, calling `$f: fn(&Record) -> Action`.
#[macro_export]
macro_rules! filter {
    ($name:ident, $f:path) => {
        #[no_mangle]
        pub extern "C" fn $name(tag: *const u8, tag_len: i32, sec: i32, nsec: i32, rec: *const u8, len: i32) -> *const u8 {
            $crate::__call(tag, tag_len, sec, nsec, rec, len, $f)
        }
    };
}

/// Fluent Bit log levels for [`log`].
#[derive(Clone, Copy)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

#[link(wasm_import_module = "flb")]
extern "C" {
    #[link_name = "log"]
    fn flb_log(level: i32, msg: *const u8, len: i32);
}

/// Writes a line into the Fluent Bit log, tagged with the filter instance (flb-wasmer only).
pub fn log(level: Level, msg: &str) {
    // SAFETY: the host reads `len` bytes at `msg` during the call.
    unsafe { flb_log(level as i32, msg.as_ptr(), msg.len() as i32) }
}

/// What to do with whole events ([`events!`], [`batch!`]).
pub enum Events {
    /// Pass the input on unchanged.
    Keep,
    /// Emit nothing.
    Drop,
    /// Emit these bytes: zero or more `[[EventTime, metadata], body]` msgpack events.
    Replace(Vec<u8>),
}

#[doc(hidden)]
pub fn __events(ptr: *const u8, len: i32, f: fn(&[u8]) -> Events) -> i64 {
    // SAFETY: the host passes a valid (ptr, len) pair in our memory for the call.
    let input = unsafe { std::slice::from_raw_parts(ptr, len.max(0) as usize) };
    let pack = |p: *const u8, n: usize| ((n as i64) << 32) | (p as u32 as i64);
    match f(input) {
        Events::Keep => pack(ptr, input.len()),
        Events::Drop => 0,
        Events::Replace(bytes) => RESULT.with(|r| {
            let mut r = r.borrow_mut();
            r.clear();
            r.extend_from_slice(&bytes);
            pack(r.as_ptr(), r.len())
        }),
    }
}

/// Exports `$name` taking whole events: `$f: fn(&[u8]) -> Events` gets one msgpack event.
#[macro_export]
macro_rules! events {
    ($name:ident, $f:path) => {
        #[no_mangle]
        pub extern "C" fn $name(ptr: *const u8, len: i32) -> i64 {
            $crate::__events(ptr, len, $f)
        }
    };
}

/// Like [`events!`], but announces the batch contract (`flb_abi_version() == 2`): `$f` gets
/// a run of records (preceded by its group's start marker when inside a group) and must
/// return plain records only.
#[macro_export]
macro_rules! batch {
    ($name:ident, $f:path) => {
        #[no_mangle]
        pub extern "C" fn flb_abi_version() -> i32 {
            2
        }
        $crate::events!($name, $f);
    };
}

#[doc(hidden)]
pub fn __init(ptr: *const u8, len: i32, f: fn(&str) -> Result<(), String>) -> i32 {
    // SAFETY: as in `__events`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len.max(0) as usize) };
    let outcome = match std::str::from_utf8(bytes) {
        Ok(cfg) => f(cfg),
        Err(_) => Err("the configuration is not UTF-8".to_string()),
    };
    match outcome {
        Ok(()) => 0,
        Err(why) => {
            log(Level::Error, &why);
            1
        }
    }
}

/// Exports `flb_init`: `$f: fn(&str) -> Result<(), String>` receives the instance's
/// `config`; an `Err` is logged and refuses the configuration.
#[macro_export]
macro_rules! init {
    ($f:path) => {
        #[no_mangle]
        pub extern "C" fn flb_init(ptr: *const u8, len: i32) -> i32 {
            $crate::__init(ptr, len, $f)
        }
    };
}

/// Reading and writing the msgpack the extended ABI passes ([`events!`], [`batch!`]) and
/// msgpack-mode records: whole events, maps and strings, without copying and without
/// recursion (hostile nesting cannot exhaust the guest's stack).
///
/// `examples/rust/batch_add_field.rs` adds a field to every record of a batch with it.
/// ```
pub mod msgpack {
    /// One event: `[[EventTime, metadata], body]`, or the older `[EventTime, body]` (then
    /// `metadata` is an empty map). `metadata` and `body` are raw msgpack objects.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Event<'a> {
        pub sec: u32,
        pub nsec: u32,
        pub metadata: &'a [u8],
        pub body: &'a [u8],
        /// The whole event as it came, to pass it on unchanged.
        pub raw: &'a [u8],
    }

    impl<'a> Event<'a> {
        /// A group start or end marker (OTLP input); a batch call's output must not have any.
        pub fn is_group_marker(&self) -> bool {
            self.sec == 0xFFFF_FFFF || self.sec == 0xFFFF_FFFE
        }
    }

    /// Where the input stops being a well-formed event.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Malformed {
        pub offset: usize,
    }

    const EMPTY_MAP: &[u8] = &[0x80];

    fn be(bytes: &[u8], at: usize, n: usize) -> Option<u64> {
        Some(bytes.get(at..at.checked_add(n)?)?.iter().fold(0u64, |a, &x| (a << 8) | x as u64))
    }

    /// Length in bytes of the msgpack object at the start of `bytes`, if it is complete.
    pub fn object_len(bytes: &[u8]) -> Option<usize> {
        let mut pos = 0usize;
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let b = *bytes.get(pos)?;
            pos += 1;
            let (skip, items): (u64, u64) = match b {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * (b & 0x0f) as u64),
                0x90..=0x9f => (0, (b & 0x0f) as u64),
                0xa0..=0xbf => ((b & 0x1f) as u64, 0),
                0xc4 | 0xd9 => (1 + be(bytes, pos, 1)?, 0),
                0xc5 | 0xda => (2 + be(bytes, pos, 2)?, 0),
                0xc6 | 0xdb => (4 + be(bytes, pos, 4)?, 0),
                0xc7 => (2 + be(bytes, pos, 1)?, 0),
                0xc8 => (3 + be(bytes, pos, 2)?, 0),
                0xc9 => (5 + be(bytes, pos, 4)?, 0),
                0xca | 0xce | 0xd2 => (4, 0),
                0xcb | 0xcf | 0xd3 => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (2, be(bytes, pos, 2)?),
                0xdd => (4, be(bytes, pos, 4)?),
                0xde => (2, 2 * be(bytes, pos, 2)?),
                0xdf => (4, 2 * be(bytes, pos, 4)?),
                0xc1 => return None,
            };
            pos = pos.checked_add(usize::try_from(skip).ok()?).filter(|&p| p <= bytes.len())?;
            pending += items;
            // Every pending object needs at least one byte.
            if pending > (bytes.len() - pos) as u64 {
                return None;
            }
        }
        Some(pos)
    }

    /// The element count and header length of the array at the start of `bytes`.
    fn array_header(bytes: &[u8]) -> Option<(u64, usize)> {
        match *bytes.first()? {
            b @ 0x90..=0x9f => Some(((b & 0x0f) as u64, 1)),
            0xdc => Some((be(bytes, 1, 2)?, 3)),
            0xdd => Some((be(bytes, 1, 4)?, 5)),
            _ => None,
        }
    }

    /// A map's entry count and its entries' bytes (key, value, key, value, ...).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Map<'a> {
        pub len: u32,
        pub entries: &'a [u8],
    }

    impl<'a> Map<'a> {
        /// `bytes` must be exactly one map (a body, or metadata).
        pub fn parse(bytes: &'a [u8]) -> Option<Map<'a>> {
            let (len, hdr) = match *bytes.first()? {
                b @ 0x80..=0x8f => ((b & 0x0f) as u32, 1),
                0xde => (be(bytes, 1, 2)? as u32, 3),
                0xdf => (be(bytes, 1, 4)? as u32, 5),
                _ => return None,
            };
            (object_len(bytes)? == bytes.len()).then(|| Map { len, entries: &bytes[hdr..] })
        }

        /// The entries as (key, value) raw msgpack objects.
        pub fn iter(&self) -> MapIter<'a> {
            MapIter { rest: self.entries, left: self.len }
        }

        /// The raw value of the first entry whose key is the string `key`.
        pub fn get(&self, key: &str) -> Option<&'a [u8]> {
            self.iter().find(|(k, _)| str(k) == Some(key)).map(|(_, v)| v)
        }
    }

    pub struct MapIter<'a> {
        rest: &'a [u8],
        left: u32,
    }

    impl<'a> Iterator for MapIter<'a> {
        type Item = (&'a [u8], &'a [u8]);
        fn next(&mut self) -> Option<Self::Item> {
            if self.left == 0 {
                return None;
            }
            let k = object_len(self.rest)?;
            let v = object_len(&self.rest[k..])?;
            let (key, rest) = self.rest.split_at(k);
            let (value, rest) = rest.split_at(v);
            self.rest = rest;
            self.left -= 1;
            Some((key, value))
        }
    }

    /// The string a raw msgpack str object holds (None for other types or bad UTF-8).
    pub fn str(raw: &[u8]) -> Option<&str> {
        let (len, hdr): (usize, usize) = match *raw.first()? {
            b @ 0xa0..=0xbf => ((b & 0x1f) as usize, 1),
            0xd9 => (be(raw, 1, 1)? as usize, 2),
            0xda => (be(raw, 1, 2)? as usize, 3),
            0xdb => (be(raw, 1, 4)? as usize, 5),
            _ => return None,
        };
        std::str::from_utf8(raw.get(hdr..hdr.checked_add(len)?)?).ok()
    }

    /// An EventTime (ext 0, 8 bytes), or a plain integer or float of seconds.
    fn time(raw: &[u8]) -> Option<(u32, u32)> {
        match *raw.first()? {
            0xd7 if raw.get(1) == Some(&0) => Some((be(raw, 2, 4)? as u32, be(raw, 6, 4)? as u32)),
            0xc7 if raw.get(1..3) == Some(&[8, 0]) => Some((be(raw, 3, 4)? as u32, be(raw, 7, 4)? as u32)),
            b @ 0x00..=0x7f => Some((b as u32, 0)),
            0xcc => Some((be(raw, 1, 1)? as u32, 0)),
            0xcd => Some((be(raw, 1, 2)? as u32, 0)),
            0xce => Some((be(raw, 1, 4)? as u32, 0)),
            0xcf => Some((be(raw, 1, 8)?.min(u32::MAX as u64) as u32, 0)),
            0xcb => {
                let f = f64::from_bits(be(raw, 1, 8)?);
                (f >= 0.0).then(|| (f.trunc().min(u32::MAX as f64) as u32, (f.fract() * 1e9) as u32))
            }
            _ => None,
        }
    }

    fn event(bytes: &[u8]) -> Option<(Event<'_>, usize)> {
        let total = object_len(bytes)?;
        let raw = &bytes[..total];
        let (n, hdr) = array_header(raw)?;
        if n != 2 {
            return None;
        }
        let head = &raw[hdr..hdr + object_len(&raw[hdr..])?];
        let body = &raw[hdr + head.len()..];
        let (t, metadata) = match array_header(head) {
            Some((2, h)) => {
                let t = &head[h..h + object_len(&head[h..])?];
                (t, &head[h + t.len()..])
            }
            Some(_) => return None,
            None => (head, EMPTY_MAP),
        };
        let (sec, nsec) = time(t)?;
        Some((Event { sec, nsec, metadata, body, raw }, total))
    }

    /// The events in `bytes`, in order; a malformed one ends the iteration with `Err`.
    pub fn events(bytes: &[u8]) -> EventIter<'_> {
        EventIter { bytes, pos: 0 }
    }

    pub struct EventIter<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl<'a> Iterator for EventIter<'a> {
        type Item = Result<Event<'a>, Malformed>;
        fn next(&mut self) -> Option<Self::Item> {
            if self.pos >= self.bytes.len() {
                return None;
            }
            match event(&self.bytes[self.pos..]) {
                Some((e, n)) => {
                    self.pos += n;
                    Some(Ok(e))
                }
                None => {
                    let offset = self.pos;
                    self.pos = self.bytes.len();
                    Some(Err(Malformed { offset }))
                }
            }
        }
    }

    /// Appends `[[EventTime(sec, nsec), metadata], body]`; `metadata` and `body` must be
    /// msgpack maps (the host validates what the guest returns).
    pub fn write_event(out: &mut Vec<u8>, sec: u32, nsec: u32, metadata: &[u8], body: &[u8]) {
        out.extend_from_slice(&[0x92, 0x92, 0xd7, 0x00]);
        out.extend_from_slice(&sec.to_be_bytes());
        out.extend_from_slice(&nsec.to_be_bytes());
        out.extend_from_slice(metadata);
        out.extend_from_slice(body);
    }

    /// Appends a map header for `len` entries (smallest form).
    pub fn write_map_header(out: &mut Vec<u8>, len: u32) {
        match len {
            0..=15 => out.push(0x80 | len as u8),
            16..=0xffff => {
                out.push(0xde);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0xdf);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
    }

    /// Appends a str object (smallest form).
    pub fn write_str(out: &mut Vec<u8>, s: &str) {
        let n = s.len();
        match n {
            0..=31 => out.push(0xa0 | n as u8),
            32..=0xff => out.extend_from_slice(&[0xd9, n as u8]),
            0x100..=0xffff => {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            _ => {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
        }
        out.extend_from_slice(s.as_bytes());
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn body(pairs: &[(&str, &str)]) -> Vec<u8> {
            let mut b = Vec::new();
            write_map_header(&mut b, pairs.len() as u32);
            for (k, v) in pairs {
                write_str(&mut b, k);
                write_str(&mut b, v);
            }
            b
        }

        #[test]
        fn written_events_read_back() {
            let mut buf = Vec::new();
            let meta = body(&[("m", "1")]);
            write_event(&mut buf, 7, 9, &meta, &body(&[("a", "x"), ("long", &"y".repeat(300))]));
            write_event(&mut buf, 0xFFFF_FFFF, 0, EMPTY_MAP, EMPTY_MAP);
            let all: Vec<_> = events(&buf).collect::<Result<_, _>>().unwrap();
            assert_eq!(all.len(), 2);
            assert_eq!((all[0].sec, all[0].nsec, all[0].metadata), (7, 9, &meta[..]));
            assert!(!all[0].is_group_marker() && all[1].is_group_marker());
            let m = Map::parse(all[0].body).unwrap();
            assert_eq!(m.len, 2);
            assert_eq!(m.get("long").and_then(str).map(str::len), Some(300));
            assert_eq!(m.iter().map(|(k, _)| str(k).unwrap()).collect::<Vec<_>>(), ["a", "long"]);
            assert_eq!(all[0].raw.len() + all[1].raw.len(), buf.len());
        }

        #[test]
        fn every_size_class_and_old_form() {
            // [[EventTime, {}], map16 {"k": str8}], as v4.x passes (array32/map32 headers).
            let mut e = vec![0xdd, 0, 0, 0, 2, 0xdd, 0, 0, 0, 2, 0xd7, 0, 0, 0, 0, 5, 0, 0, 0, 6, 0xdf, 0, 0, 0, 0];
            e.extend_from_slice(&[0xde, 0, 1, 0xa1, b'k', 0xd9, 2, b'v', b'w']);
            let ev = events(&e).next().unwrap().unwrap();
            assert_eq!((ev.sec, ev.nsec), (5, 6));
            assert_eq!(Map::parse(ev.metadata).unwrap().len, 0);
            assert_eq!(Map::parse(ev.body).unwrap().get("k").and_then(str), Some("vw"));
            // [integer seconds, body]
            let old = [0x92, 0xce, 0, 0, 1, 0, 0x80];
            let ev = events(&old).next().unwrap().unwrap();
            assert_eq!((ev.sec, ev.metadata, ev.body), (256, EMPTY_MAP, &[0x80u8][..]));
        }

        #[test]
        fn malformed_input_stops_with_its_offset() {
            let mut buf = Vec::new();
            write_event(&mut buf, 1, 0, EMPTY_MAP, EMPTY_MAP);
            let good = buf.len();
            buf.extend_from_slice(&[0x92, 0x92, 0xd7]);
            let all: Vec<_> = events(&buf).collect();
            assert_eq!(all.len(), 2);
            assert_eq!(all[1], Err(Malformed { offset: good }));
            assert_eq!(object_len(&[0xdd, 0xff, 0xff, 0xff, 0xff]), None);
            assert_eq!(object_len(&[0xc1]), None);
            let mut deep = vec![0x91u8; 100_000];
            deep.push(0xc0);
            assert_eq!(object_len(&deep), Some(deep.len()));
            assert_eq!(Map::parse(&[0x81, 0xa1, b'k']), None);
        }
    }
}

/// `malloc`/`free` for the host to place records (wasm32-unknown-unknown has no libc).
#[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
mod alloc_exports {
    use std::alloc::{alloc, dealloc, Layout};
    const HEADER: usize = 8;

    #[no_mangle]
    pub extern "C" fn malloc(size: usize) -> *mut u8 {
        let layout = match Layout::from_size_align(size + HEADER, 8) {
            Ok(l) => l,
            Err(_) => return std::ptr::null_mut(),
        };
        // SAFETY: non-zero size; the size is stored in the header for free().
        unsafe {
            let p = alloc(layout);
            if p.is_null() {
                return p;
            }
            (p as *mut usize).write(size);
            p.add(HEADER)
        }
    }

    #[no_mangle]
    pub extern "C" fn free(p: *mut u8) {
        if p.is_null() {
            return;
        }
        // SAFETY: p came from malloc above, which stored the size 8 bytes before it.
        unsafe {
            let base = p.sub(HEADER);
            let size = (base as *const usize).read();
            dealloc(base, Layout::from_size_align_unchecked(size + HEADER, 8));
        }
    }
}
