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
 * Build as a reactor:  clang --target=wasm32-wasi -O2 -mexec-model=reactor f.c -o f.wasm
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

#endif
