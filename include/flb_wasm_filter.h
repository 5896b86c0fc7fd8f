/* flb_wasm_filter.h: writing a Fluent Bit WASM filter in C (wasm32-wasi, wasi-libc).
 *
 * One header, no library. Works with both Fluent Bit's built-in `wasm` filter and
 * flb-wasmer's `wasm_wasmer`, in JSON and msgpack modes. It owns the result buffer (one,
 * reused for every record: no per-record leak, unlike returning fresh malloc'd memory) and
 * the export boilerplate:
 *
 *     #include "flb_wasm_filter.h"
 *     FLB_FILTER(my_filter, r) {
 *         if (strstr(r->record, "\"level\":\"debug\"")) return flb_drop();
 *         return flb_keep(r);
 *     }
 *
 * Build as a reactor:  clang --target=wasm32-wasi -O2 -mbulk-memory -mexec-model=reactor f.c -o f.wasm
 *                      (-mbulk-memory: copies compile to memory.copy, which both runtimes run
 *                      as one host memmove; without it every memcpy is a loop in wasm)
 * Configure:           function_name my_filter   (event_format json or msgpack)
 *
 * JSON mode: r->record is the record body as NUL-terminated JSON text; return a
 * NUL-terminated JSON object. msgpack mode: r->record is the body map as msgpack (not
 * NUL-terminated; use r->len); return one msgpack map. In both modes flb_drop() drops the
 * record and flb_keep() passes it on unchanged. The timestamp and metadata stay as they were.
 * Returned memory must stay valid until the next call: use flb_keep, flb_drop, flb_result.
 */
#ifndef FLB_WASM_FILTER_H
#define FLB_WASM_FILTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *tag;     /* not NUL-terminated in the built-in; use tag_len */
    size_t tag_len;
    uint32_t sec;        /* record time, seconds since the epoch */
    uint32_t nsec;
    const char *record;  /* body: JSON text (NUL-terminated) or msgpack */
    size_t len;          /* bytes in record, without the NUL */
} flb_record;

/* Pass the record on unchanged. */
static inline const char *flb_keep(const flb_record *r) { return r->record; }

/* Drop the record (an empty string, understood by both filters in both modes). */
static inline const char *flb_drop(void) {
    static const char empty[1] = "";
    return empty;
}

/* A result buffer of at least len + 1 bytes, reused across calls; byte len is set to NUL.
 * Returns NULL if memory is exhausted (then return flb_keep(r) or flb_drop()). */
static inline char *flb_result(size_t len) {
    static char *buf;
    static size_t cap;
    if (len + 1 > cap) {
        char *n = (char *) realloc(buf, len + 1);
        if (!n) return NULL;
        buf = n;
        cap = len + 1;
    }
    buf[len] = 0;
    return buf;
}

/* Copies a NUL-terminated string into the result buffer. */
static inline const char *flb_result_str(const char *s) {
    size_t n = strlen(s);
    char *out = flb_result(n);
    if (!out) return NULL;
    memcpy(out, s, n);
    return out;
}

/* Defines the exported filter function NAME with the guest ABI both filters call:
 *   NAME(tag, tag_len, time_sec, time_nsec, record, record_len) -> result
 * and a body that sees the record as `const flb_record *R`. */
#define FLB_FILTER(NAME, R)                                                                      \
    static const char *NAME##_body(const flb_record *R);                                        \
    __attribute__((export_name(#NAME))) const char *NAME(const char *tag, int tag_len, int sec, \
                                                         int nsec, const char *record, int len) { \
        flb_record r_ = {tag, (size_t) tag_len, (uint32_t) sec, (uint32_t) nsec, record,         \
                         (size_t) len};                                                          \
        const char *out_ = NAME##_body(&r_);                                                     \
        return out_ ? out_ : record;                                                             \
    }                                                                                            \
    static const char *NAME##_body(const flb_record *R)

/* ---- Extended ABI (flb-wasmer only; see docs/extended-abi.md) ---------------------------- */

/* A line into the Fluent Bit log, tagged with the filter instance, at a Fluent Bit level. */
enum { FLB_LOG_ERROR = 1, FLB_LOG_WARN = 2, FLB_LOG_INFO = 3, FLB_LOG_DEBUG = 4, FLB_LOG_TRACE = 5 };
__attribute__((import_module("flb"), import_name("log"))) void flb_log(int level, const char *msg, int len);

static inline void flb_log_str(int level, const char *msg) { flb_log(level, msg, (int) strlen(msg)); }

/* Receives the instance's `config` property (or `config_file` contents) once, before any
 * record; return 0 to accept, non-zero to refuse (log why with flb_log first):
 *
 *     FLB_INIT(cfg, len) { ... return 0; }
 */
#define FLB_INIT(CFG, LEN)                                                                       \
    static int flb_init_body(const char *CFG, size_t LEN);                                      \
    __attribute__((export_name("flb_init"))) int flb_init(const char *cfg, int len) {           \
        return flb_init_body(cfg, (size_t) len);                                                 \
    }                                                                                            \
    static int flb_init_body(const char *CFG, size_t LEN)

/* Packs the result of a whole-event or batch function ((i32 events, i32 len) -> i64):
 * `len` bytes of zero or more msgpack events at `p`, valid until the next call
 * (flb_result() gives such a buffer). Return 0 to drop, a negative number for an error. */
static inline int64_t flb_events(const void *p, size_t len) {
    return (int64_t) len << 32 | (uint32_t) (uintptr_t) p;
}

/* ---- Reading and writing msgpack events (whole-event and batch calls, msgpack records) --- */

/* Big-endian unsigned integer of n bytes at p. */
static inline uint64_t flb_mp_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    while (n--) v = v << 8 | *p++;
    return v;
}

/* Length in bytes of the one msgpack object at p, or 0 if it is incomplete or invalid.
 * Iterative: hostile nesting cannot exhaust the guest's stack. */
static inline size_t flb_mp_len(const uint8_t *p, size_t len) {
    size_t i = 0;
    uint64_t pending = 1;
    while (pending > 0) {
        pending--;
        if (i >= len) return 0;
        uint8_t b = p[i++];
        uint64_t skip = 0, items = 0;
        int n = 0; /* bytes of a length or count that follow b */
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        } else if ((b & 0xf0) == 0x80) { items = 2 * (uint64_t) (b & 0x0f);
        } else if ((b & 0xf0) == 0x90) { items = b & 0x0f;
        } else if ((b & 0xe0) == 0xa0) { skip = b & 0x1f;
        } else switch (b) {
            case 0xc4: case 0xd9: n = 1; break;
            case 0xc5: case 0xda: n = 2; break;
            case 0xc6: case 0xdb: n = 4; break;
            case 0xc7: n = 1; skip = 1; break;
            case 0xc8: n = 2; skip = 1; break;
            case 0xc9: n = 4; skip = 1; break;
            case 0xca: case 0xce: case 0xd2: skip = 4; break;
            case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xde: n = 2; break;
            case 0xdd: case 0xdf: n = 4; break;
            default: return 0; /* 0xc1 */
        }
        if (n) {
            if (len - i < (size_t) n) return 0;
            uint64_t v = flb_mp_be(p + i, n);
            i += (size_t) n;
            if (b == 0xdc || b == 0xdd) items = v;
            else if (b == 0xde || b == 0xdf) items = 2 * v;
            else skip += v;
        }
        if (skip > len - i) return 0;
        i += (size_t) skip;
        pending += items;
        if (pending > len - i) return 0; /* every pending object needs a byte */
    }
    return i;
}

/* Header length and element count of the array at p, or 0. */
static inline size_t flb_mp_array(const uint8_t *p, size_t len, uint32_t *count) {
    if (len >= 1 && (p[0] & 0xf0) == 0x90) { *count = p[0] & 0x0f; return 1; }
    if (len >= 3 && p[0] == 0xdc) { *count = (uint32_t) flb_mp_be(p + 1, 2); return 3; }
    if (len >= 5 && p[0] == 0xdd) { *count = (uint32_t) flb_mp_be(p + 1, 4); return 5; }
    return 0;
}

/* Header length and entry count of the map at p, or 0. */
static inline size_t flb_mp_map(const uint8_t *p, size_t len, uint32_t *count) {
    if (len >= 1 && (p[0] & 0xf0) == 0x80) { *count = p[0] & 0x0f; return 1; }
    if (len >= 3 && p[0] == 0xde) { *count = (uint32_t) flb_mp_be(p + 1, 2); return 3; }
    if (len >= 5 && p[0] == 0xdf) { *count = (uint32_t) flb_mp_be(p + 1, 4); return 5; }
    return 0;
}

/* Writes a map header for count entries (smallest form) at out; returns its length (1-5). */
static inline size_t flb_mp_write_map(uint8_t *out, uint32_t count) {
    if (count < 16) { out[0] = (uint8_t) (0x80 | count); return 1; }
    if (count < 65536) { out[0] = 0xde; out[1] = (uint8_t) (count >> 8); out[2] = (uint8_t) count; return 3; }
    out[0] = 0xdf;
    out[1] = (uint8_t) (count >> 24); out[2] = (uint8_t) (count >> 16); out[3] = (uint8_t) (count >> 8); out[4] = (uint8_t) count;
    return 5;
}

/* One event, [[EventTime, metadata], body]; the pointers are into the input. */
typedef struct {
    uint32_t sec, nsec;
    const uint8_t *raw;      /* the whole event */
    size_t raw_len;
    const uint8_t *metadata; /* a msgpack map */
    size_t metadata_len;
    const uint8_t *body;     /* a msgpack map */
    size_t body_len;
} flb_event;

/* Group start and end markers (OTLP input): read them, never return them from a batch. */
static inline int flb_event_is_group_marker(const flb_event *e) { return e->sec >= 0xFFFFFFFEu; }

/* Reads the event at in[*pos] into e and moves *pos past it. Returns 1, 0 at the end of the
 * input, -1 if the input is malformed there. Every header size class is accepted (v4.x
 * passes 32-bit array and map headers). */
static inline int flb_event_next(const uint8_t *in, size_t len, size_t *pos, flb_event *e) {
    if (*pos >= len) return 0;
    const uint8_t *p = in + *pos;
    size_t n = len - *pos, total = flb_mp_len(p, n), h1, h2, t;
    uint32_t c1, c2;
    if (!total || !(h1 = flb_mp_array(p, total, &c1)) || c1 != 2) return -1;
    if (!(h2 = flb_mp_array(p + h1, total - h1, &c2)) || c2 != 2) return -1;
    t = h1 + h2;
    if (t + 10 > total || p[t] != 0xd7 || p[t + 1] != 0x00) return -1;
    e->sec = (uint32_t) flb_mp_be(p + t + 2, 4);
    e->nsec = (uint32_t) flb_mp_be(p + t + 6, 4);
    e->metadata = p + t + 10;
    e->metadata_len = flb_mp_len(e->metadata, total - t - 10);
    if (!e->metadata_len) return -1;
    e->body = e->metadata + e->metadata_len;
    e->body_len = total - (size_t) (e->body - p);
    e->raw = p;
    e->raw_len = total;
    *pos += total;
    return 1;
}

#endif
