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

/// Length in bytes of the one msgpack object at the start of `bytes` (iterative: hostile
/// nesting cannot exhaust the stack; bounded by `bytes.len()`).
pub fn object_len(bytes: &[u8]) -> Result<usize, DecodeError> {
    let mut pos = 0usize;
    // Objects still to skip; containers add their children.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let Some(&b) = bytes.get(pos) else { return Err(err(pos, "truncated msgpack")) };
        let start = pos;
        pos += 1;
        let need = |pos: usize, n: usize| -> Result<usize, DecodeError> {
            pos.checked_add(n).filter(|&e| e <= bytes.len()).ok_or(err(start, "truncated msgpack"))
        };
        let be = |pos: usize, n: usize| -> Result<u64, DecodeError> {
            let end = need(pos, n)?;
            Ok(bytes[pos..end].iter().fold(0u64, |a, &x| (a << 8) | x as u64))
        };
        match b {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => {}
            0x80..=0x8f => pending += 2 * (b & 0x0f) as u64,
            0x90..=0x9f => pending += (b & 0x0f) as u64,
            0xa0..=0xbf => pos = need(pos, (b & 0x1f) as usize)?,
            0xc1 => return Err(err(start, "invalid msgpack byte 0xc1")),
            0xc4 | 0xd9 => pos = need(pos + 1, be(pos, 1)? as usize)?,
            0xc5 | 0xda => pos = need(pos + 2, be(pos, 2)? as usize)?,
            0xc6 | 0xdb => pos = need(pos + 4, be(pos, 4)? as usize)?,
            0xc7 => pos = need(pos + 2, be(pos, 1)? as usize)?,
            0xc8 => pos = need(pos + 3, be(pos, 2)? as usize)?,
            0xc9 => pos = need(pos + 5, be(pos, 4)? as usize)?,
            0xca | 0xce | 0xd2 => pos = need(pos, 4)?,
            0xcb | 0xcf | 0xd3 => pos = need(pos, 8)?,
            0xcc | 0xd0 => pos = need(pos, 1)?,
            0xcd | 0xd1 => pos = need(pos, 2)?,
            0xd4 => pos = need(pos, 2)?,
            0xd5 => pos = need(pos, 3)?,
            0xd6 => pos = need(pos, 5)?,
            0xd7 => pos = need(pos, 9)?,
            0xd8 => pos = need(pos, 17)?,
            0xdc => {
                pending += be(pos, 2)?;
                pos += 2;
            }
            0xdd => {
                pending += be(pos, 4)?;
                pos += 4;
            }
            0xde => {
                pending += 2 * be(pos, 2)?;
                pos += 2;
            }
            0xdf => {
                pending += 2 * be(pos, 4)?;
                pos += 4;
            }
        }
        // Every pending object needs at least one byte: refuse counts the input cannot hold.
        if pending > (bytes.len() - pos) as u64 {
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
        let len = object_len(buf).map_err(|e| err(base + e.offset, e.reason))?;
        let raw = &buf[..len];
        let (outer, mut p) = array_header(raw, 0).ok_or(at(0, "record is not an array"))?;
        if outer != 2 {
            return Err(at(0, "record array does not have 2 elements"));
        }
        let (time, metadata);
        if let Some((n, q)) = array_header(raw, p) {
            // v2: [[ts, metadata], body]
            if n != 2 {
                return Err(at(p, "record header does not have 2 elements"));
            }
            let ts_len = object_len(&raw[q..]).map_err(|e| at(q + e.offset, e.reason))?;
            time = timestamp(&raw[q..q + ts_len]).ok_or(at(q, "invalid timestamp"))?;
            let m = q + ts_len;
            let m_len = object_len(&raw[m..]).map_err(|e| at(m + e.offset, e.reason))?;
            metadata = &raw[m..m + m_len];
            if !is_map(metadata) {
                return Err(at(m, "metadata is not a map"));
            }
            p = m + m_len;
        } else {
            // v1: [ts, body]
            let ts_len = object_len(&raw[p..]).map_err(|e| at(p + e.offset, e.reason))?;
            time = timestamp(&raw[p..p + ts_len]).ok_or(at(p, "invalid timestamp"))?;
            metadata = crate::EMPTY_MAP;
            p += ts_len;
        }
        let body = &raw[p..];
        if !is_map(body) {
            return Err(at(p, "body is not a map"));
        }
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

fn is_map(b: &[u8]) -> bool {
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
