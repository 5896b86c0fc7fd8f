//! Fluent Bit's log event wire format (as of v5.1.1; unchanged on the wire since v3).
//!
//! A chunk is a plain concatenation of msgpack records. A record is
//! `[[timestamp, metadata], body]` (v2) or `[timestamp, body]` (v1/forward), with map
//! metadata and map body. Timestamps are EventTime (ext type 0, 8 bytes: u32 BE seconds,
//! u32 BE nanoseconds), a non-negative integer or a float. Group markers are records whose
//! EventTime seconds are 0xFFFFFFFF (group start, carrying the group metadata and attributes)
//! or 0xFFFFFFFE (group end). See Fluent Bit's `src/flb_log_event_decoder.c`.
//!
//! The decoder never allocates and never panics; a malformed record is reported with its
//! byte offset, because downstream Fluent Bit code silently drops everything after one.

mod decode;
mod encode;
pub mod json;

pub use decode::{DecodeError, Decoder, Event, EventKind, is_map, object_len};
pub use encode::{EMPTY_MAP, EncodeError, Encoder, str_map};

/// A record timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventTime {
    pub sec: u32,
    pub nsec: u32,
}

impl EventTime {
    /// The largest second a normal record may carry; the two above are group markers.
    pub const MAX_SEC: u32 = 0xFFFF_FFFD;
    pub const GROUP_START: EventTime = EventTime { sec: 0xFFFF_FFFF, nsec: 0 };
    pub const GROUP_END: EventTime = EventTime { sec: 0xFFFF_FFFE, nsec: 0 };

    pub fn new(sec: u32, nsec: u32) -> EventTime {
        EventTime { sec, nsec }
    }

    /// Now, from the system clock.
    pub fn now() -> EventTime {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        EventTime { sec: d.as_secs().min(Self::MAX_SEC as u64) as u32, nsec: d.subsec_nanos() }
    }
}
