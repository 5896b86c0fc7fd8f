// Example filter written with include/flb_wasm_filter.h (JSON mode): adds "source":"<tag>"
// as the last key, drops records whose "level" is "debug".
// Build: clang --target=wasm32-wasi -O2 -mbulk-memory -mexec-model=reactor -Iinclude add_source.c -o add_source.wasm
#include <stdio.h>
#include "flb_wasm_filter.h"

FLB_FILTER(add_source, r) {
    if (strstr(r->record, "\"level\":\"debug\"")) return flb_drop();
    if (r->len < 2 || r->record[r->len - 1] != '}') return flb_keep(r);
    int tag_len = r->tag_len > 200 ? 200 : (int) r->tag_len;
    size_t cap = r->len + (size_t) tag_len + 16;
    char *out = flb_result(cap);
    if (!out) return flb_keep(r);
    // `{}` gets no leading comma; JSON-safe tags only (Fluent Bit tags are).
    const char *sep = r->len > 2 ? "," : "";
    int n = snprintf(out, cap + 1, "%.*s%s\"source\":\"%.*s\"}", (int) r->len - 1, r->record, sep, tag_len, r->tag);
    return n > 0 ? out : flb_keep(r);
}
