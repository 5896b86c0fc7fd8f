use crate::EventTime;

/// Why a chunk could not be decoded, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    pub reason: &'static str,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for DecodeError {}

fn err(offset: usize, reason: &'static str) -> DecodeError {
    DecodeError { offset, reason }
}

/// Per first byte of a msgpack object: how many bytes follow it when the byte alone says
/// (else [`SIZED`]: a length field does), and how many objects a fixmap or fixarray holds.
const SHAPES: [(u8, u8); 256] = {
    let mut t = [(0u8, 0u8); 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            m @ 0x80..=0x8f => (0, 2 * (m & 0x0f)),
            m @ 0x90..=0x9f => (0, m & 0x0f),
            m @ 0xa0..=0xbf => (m & 0x1f, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 | 0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xd6 => (5, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            _ => (SIZED, 0),
        };
        b += 1;
    }
    t
};
const SIZED: u8 = 0xff;

/// Length in bytes of the one msgpack object at the start of `bytes` (iterative: hostile
/// nesting cannot exhaust the stack; bounded by `bytes.len()`).
pub fn object_len(bytes: &[u8]) -> Result<usize, DecodeError> {
    let len = bytes.len();
    let mut pos = 0usize;
    // Objects still to skip; containers add their children.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let start = pos;
        let Some(&b) = bytes.get(pos) else { return Err(err(pos, "truncated msgpack")) };
        let (skip, children) = SHAPES[b as usize];
        if skip != SIZED {
            pos += 1 + skip as usize;
            pending += children as u64;
        } else {
            // The big-endian length field of `n` bytes after the marker.
            let field = |n: usize| -> Result<usize, DecodeError> {
                let f = bytes.get(start + 1..start + 1 + n).ok_or(err(start, "truncated msgpack"))?;
                Ok(f.iter().fold(0usize, |a, &x| (a << 8) | x as usize))
            };
            // Payload after the field (ext: one type byte more), or child objects.
            let (n, payload, objects) = match b {
                0xc4 | 0xd9 => (1, field(1)?, 0),
                0xc5 | 0xda => (2, field(2)?, 0),
                0xc6 | 0xdb => (4, field(4)?, 0),
                0xc7 => (1, field(1)? + 1, 0),
                0xc8 => (2, field(2)? + 1, 0),
                0xc9 => (4, field(4)? + 1, 0),
                0xdc => (2, 0, field(2)? as u64),
                0xdd => (4, 0, field(4)? as u64),
                0xde => (2, 0, 2 * field(2)? as u64),
                0xdf => (4, 0, 2 * field(4)? as u64),
                _ => return Err(err(start, "invalid msgpack byte 0xc1")),
            };
            pos = pos.saturating_add(1 + n).saturating_add(payload);
            pending += objects;
        }
        // Past the end, or more objects pending than bytes left (each needs one): refuse.
        if pos > len || pending > (len - pos) as u64 {
            return Err(err(start, "truncated msgpack"));
        }
    }
    Ok(pos)
}

/// Kinds of records in a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Record,
    GroupStart,
    GroupEnd,
}

/// One decoded record, borrowing from the chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The record's exact bytes, for byte-for-byte pass-through.
    pub raw: &'a [u8],
    pub offset: usize,
    pub kind: EventKind,
    pub time: EventTime,
    /// The metadata map's msgpack bytes (`{}` for v1 records).
    pub metadata: &'a [u8],
    /// The body map's msgpack bytes.
    pub body: &'a [u8],
}

/// Iterates over the records of a chunk. After an error it stops.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Decoder<'a> {
    pub fn new(chunk: &'a [u8]) -> Decoder<'a> {
        Decoder { buf: chunk, pos: 0, failed: false }
    }

    /// The bytes not decoded yet; after an error, from the start of the bad record.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn decode_one(&self) -> Result<Event<'a>, DecodeError> {
        let base = self.pos;
        let buf = &self.buf[base..];
        let at = |i: usize, reason| err(base + i, reason);
        // Each part is walked once: its length is where the next starts.
        let part_len = |p: usize| object_len(&buf[p..]).map_err(|e| at(p + e.offset, e.reason));
        let (outer, mut p) = array_header(buf, 0).ok_or(at(0, "record is not an array"))?;
        if outer != 2 {
            return Err(at(0, "record array does not have 2 elements"));
        }
        let (time, metadata);
        if let Some((n, q)) = array_header(buf, p) {
            // v2: [[ts, metadata], body]
            if n != 2 {
                return Err(at(p, "record header does not have 2 elements"));
            }
            let ts_len = part_len(q)?;
            time = timestamp(&buf[q..q + ts_len]).ok_or(at(q, "invalid timestamp"))?;
            let m = q + ts_len;
            metadata = &buf[m..m + part_len(m)?];
            if !is_map(metadata) {
                return Err(at(m, "metadata is not a map"));
            }
            p = m + metadata.len();
        } else {
            // v1: [ts, body]
            let ts_len = part_len(p)?;
            time = timestamp(&buf[p..p + ts_len]).ok_or(at(p, "invalid timestamp"))?;
            metadata = crate::EMPTY_MAP;
            p += ts_len;
        }
        let body = &buf[p..p + part_len(p)?];
        if !is_map(body) {
            return Err(at(p, "body is not a map"));
        }
        let raw = &buf[..p + body.len()];
        let kind = match (time.sec, time.nsec) {
            (0xFFFF_FFFF, 0) => EventKind::GroupStart,
            (0xFFFF_FFFE, 0) => EventKind::GroupEnd,
            _ => EventKind::Record,
        };
        Ok(Event { raw, offset: base, kind, time, metadata, body })
    }
}

impl<'a> Iterator for Decoder<'a> {
    type Item = Result<Event<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        match self.decode_one() {
            Ok(ev) => {
                self.pos += ev.raw.len();
                Some(Ok(ev))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn array_header(b: &[u8], p: usize) -> Option<(u64, usize)> {
    match *b.get(p)? {
        x @ 0x90..=0x9f => Some(((x & 0x0f) as u64, p + 1)),
        0xdc => Some((u16::from_be_bytes(b.get(p + 1..p + 3)?.try_into().ok()?) as u64, p + 3)),
        0xdd => Some((u32::from_be_bytes(b.get(p + 1..p + 5)?.try_into().ok()?) as u64, p + 5)),
        _ => None,
    }
}

/// Whether `b` starts with a msgpack map (of any size).
pub fn is_map(b: &[u8]) -> bool {
    matches!(b.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

/// Decodes a complete timestamp object.
fn timestamp(b: &[u8]) -> Option<EventTime> {
    let be32 = |s: &[u8]| u32::from_be_bytes(s.try_into().unwrap());
    match b {
        // EventTime: fixext8 or ext8 with length 8, type 0.
        [0xd7, 0x00, rest @ ..] | [0xc7, 0x08, 0x00, rest @ ..] if rest.len() == 8 => {
            Some(EventTime { sec: be32(&rest[..4]), nsec: be32(&rest[4..]) })
        }
        _ => {
            let mut rd = b;
            let v = rmp::decode::read_int::<i64, _>(&mut rd).ok().map(|i| i as f64).or_else(|| {
                let mut rd = b;
                match rmp::decode::read_marker(&mut rd).ok()? {
                    rmp::Marker::F32 => rmp::decode::read_f32(&mut &b[..]).ok().map(|f| f as f64),
                    rmp::Marker::F64 => rmp::decode::read_f64(&mut &b[..]).ok(),
                    _ => None,
                }
            })?;
            if !(0.0..=u32::MAX as f64).contains(&v) {
                return None;
            }
            let sec = v.trunc();
            Some(EventTime { sec: sec as u32, nsec: (((v - sec) * 1e9).round() as u32).min(999_999_999) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_len_on_scalars_and_containers() {
        assert_eq!(object_len(&[0x01, 0xff]).unwrap(), 1);
        assert_eq!(object_len(&[0x82, 0xa1, b'a', 0x01, 0xa1, b'b', 0x90, 0x00]).unwrap(), 7);
        assert_eq!(object_len(&[0xd9, 0x03, b'a', b'b', b'c']).unwrap(), 5);
        assert!(object_len(&[0xd9, 0x03, b'a']).is_err());
        assert!(object_len(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(object_len(&[]).is_err());
        assert_eq!(object_len(&[0xc1]).unwrap_err().reason, "invalid msgpack byte 0xc1");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut v = vec![0x91u8; 200_000];
        v.push(0xc0);
        assert_eq!(object_len(&v).unwrap(), v.len());
        v.pop();
        assert!(object_len(&v).is_err());
    }

    #[test]
    fn timestamps_in_every_encoding() {
        let t = |b: &[u8]| timestamp(b);
        assert_eq!(t(&[0xd7, 0, 0, 0, 0, 5, 0, 0, 0, 7]), Some(EventTime::new(5, 7)));
        assert_eq!(t(&[0xc7, 8, 0, 0, 0, 0, 5, 0, 0, 0, 7]), Some(EventTime::new(5, 7)));
        assert_eq!(t(&[0x05]), Some(EventTime::new(5, 0)));
        assert_eq!(t(&[0xce, 0, 0, 1, 0]), Some(EventTime::new(256, 0)));
        assert_eq!(t(&[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]), Some(EventTime::new(1, 500_000_000)));
        assert_eq!(t(&[0xff]), None, "negative integers are rejected");
        assert_eq!(t(&[0xa1, b'x']), None);
    }

    #[test]
    fn v1_and_v2_records_and_groups() {
        let v2 = [0x92, 0x92, 0xd7, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0x81, 0xa1, b'm', 0x01, 0x81, 0xa1, b'k', 0x02];
        let v1 = [0x92, 0x09, 0x80];
        let gs = [0x92, 0x92, 0xd7, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0x80];
        let chunk = [&gs[..], &v2, &v1].concat();
        let evs: Vec<_> = Decoder::new(&chunk).collect::<Result<_, _>>().unwrap();
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[0].kind, EventKind::GroupStart);
        assert_eq!(evs[1].time, EventTime::new(9, 1));
        assert_eq!(evs[1].metadata, &[0x81, 0xa1, b'm', 0x01]);
        assert_eq!(evs[1].body, &[0x81, 0xa1, b'k', 0x02]);
        assert_eq!(evs[1].raw, &v2);
        assert_eq!(evs[2].metadata, crate::EMPTY_MAP);
        assert_eq!(evs[2].offset, gs.len() + v2.len());
    }

    #[test]
    fn errors_have_offsets_and_stop_iteration() {
        let good = [0x92, 0x09, 0x80];
        let bad_body = [0x92, 0x09, 0x01];
        let chunk = [&good[..], &bad_body, &good].concat();
        let mut d = Decoder::new(&chunk);
        assert!(d.next().unwrap().is_ok());
        let e = d.next().unwrap().unwrap_err();
        assert_eq!((e.offset, e.reason), (5, "body is not a map"));
        assert!(d.next().is_none());
        let truncated = [0x92, 0x92, 0xd7, 0x00, 1];
        assert_eq!(Decoder::new(&truncated).next().unwrap().unwrap_err().offset, 2);
    }
}
