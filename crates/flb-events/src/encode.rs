use crate::EventTime;
use crate::decode::is_map;

/// `{}` in msgpack: the metadata of records that have none.
pub const EMPTY_MAP: &[u8] = &[0x80];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// Seconds above 0xFFFFFFFD (reserved for group markers) or nanoseconds >= 1e9.
    InvalidTime(EventTime),
    NotAMap(&'static str),
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::InvalidTime(t) => write!(f, "invalid record time {}.{:09}", t.sec, t.nsec),
            EncodeError::NotAMap(what) => write!(f, "record {what} is not a map"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Appends v2 records to a reusable buffer.
#[derive(Default, Debug)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Appends `[[time, metadata], body]`; `metadata` and `body` are msgpack maps.
    pub fn record(&mut self, time: EventTime, metadata: &[u8], body: &[u8]) -> Result<(), EncodeError> {
        if time.sec > EventTime::MAX_SEC || time.nsec >= 1_000_000_000 {
            return Err(EncodeError::InvalidTime(time));
        }
        self.raw_record(time, metadata, body)
    }

    /// Appends `[[time, metadata], ` and returns where the record starts: the caller then
    /// appends the body map straight into `buf` (no copy through a buffer of its own), or
    /// truncates `buf` back to the returned length if it has none after all.
    pub fn record_head(&mut self, time: EventTime, metadata: &[u8]) -> Result<usize, EncodeError> {
        if time.sec > EventTime::MAX_SEC || time.nsec >= 1_000_000_000 {
            return Err(EncodeError::InvalidTime(time));
        }
        if !is_map(metadata) {
            return Err(EncodeError::NotAMap("metadata"));
        }
        let start = self.buf.len();
        self.head(time, metadata);
        Ok(start)
    }

    fn head(&mut self, time: EventTime, metadata: &[u8]) {
        self.buf.extend_from_slice(&[0x92, 0x92, 0xd7, 0x00]);
        self.buf.extend_from_slice(&time.sec.to_be_bytes());
        self.buf.extend_from_slice(&time.nsec.to_be_bytes());
        self.buf.extend_from_slice(metadata);
    }

    fn raw_record(&mut self, time: EventTime, metadata: &[u8], body: &[u8]) -> Result<(), EncodeError> {
        if !is_map(metadata) {
            return Err(EncodeError::NotAMap("metadata"));
        }
        if !is_map(body) {
            return Err(EncodeError::NotAMap("body"));
        }
        self.head(time, metadata);
        self.buf.extend_from_slice(body);
        Ok(())
    }

    /// Appends a record's bytes unchanged (pass-through).
    pub fn raw(&mut self, record: &[u8]) {
        self.buf.extend_from_slice(record);
    }

    pub fn group_start(&mut self, metadata: &[u8], attributes: &[u8]) -> Result<(), EncodeError> {
        self.raw_record(EventTime::GROUP_START, metadata, attributes)
    }

    pub fn group_end(&mut self) {
        self.raw_record(EventTime::GROUP_END, EMPTY_MAP, EMPTY_MAP).expect("static maps");
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

/// Encodes a map of string keys to string values (bytes kept as-is, as Fluent Bit does for
/// program output) into `out`.
pub fn str_map(out: &mut Vec<u8>, pairs: &[(&str, &[u8])]) {
    rmp::encode::write_map_len(out, pairs.len() as u32).expect("Vec write");
    for (k, v) in pairs {
        rmp::encode::write_str(out, k).expect("Vec write");
        rmp::encode::write_str_len(out, v.len() as u32).expect("Vec write");
        out.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, EventKind};

    #[test]
    fn record_round_trip_and_validation() {
        let mut e = Encoder::new();
        let mut body = vec![];
        str_map(&mut body, &[("wasi_stdout", b"hi")]);
        e.record(EventTime::new(10, 20), EMPTY_MAP, &body).unwrap();
        e.group_start(&[0x81, 0xa1, b'g', 0x01], EMPTY_MAP).unwrap();
        e.group_end();
        let evs: Vec<_> = Decoder::new(&e.buf).map(Result::unwrap).collect();
        assert_eq!(evs[0].body, &body[..]);
        assert_eq!(evs[0].time, EventTime::new(10, 20));
        assert_eq!((evs[1].kind, evs[2].kind), (EventKind::GroupStart, EventKind::GroupEnd));
        assert!(e.record(EventTime::new(0xFFFF_FFFE, 0), EMPTY_MAP, &body).is_err());
        assert!(e.record(EventTime::new(1, 1_000_000_000), EMPTY_MAP, &body).is_err());
        assert_eq!(e.record(EventTime::new(1, 0), EMPTY_MAP, &[0x01]), Err(EncodeError::NotAMap("body")));
    }

    #[test]
    fn record_head_then_body_equals_record() {
        let (mut a, mut b) = (Encoder::new(), Encoder::new());
        a.raw(b"x");
        b.raw(b"x");
        let body = [0x81, 0xa1, b'k', 0x01];
        a.record(EventTime::new(7, 8), &[0x81, 0xa1, b'm', 0xc3], &body).unwrap();
        assert_eq!(b.record_head(EventTime::new(7, 8), &[0x81, 0xa1, b'm', 0xc3]), Ok(1));
        b.buf.extend_from_slice(&body);
        assert_eq!(a.buf, b.buf);
        assert!(b.record_head(EventTime::GROUP_END, EMPTY_MAP).is_err());
        assert_eq!(b.record_head(EventTime::new(1, 0), &[0x01]), Err(EncodeError::NotAMap("metadata")));
        assert_eq!(a.buf, b.buf, "a refused head appends nothing");
    }
}
