// Example filter (JSON mode): masks the value of every "password" key and drops records whose
// "level" is "debug". Build: clang --target=wasm32-wasi -O2 -mbulk-memory -mexec-model=reactor redact.c -o redact.wasm
// Use: [FILTER] name wasm_wasmer, wasm_path redact.wasm, function_name redact
#include <stdlib.h>
#include <string.h>

static char *out;      // one result buffer, reused for every record (no per-record leak)
static size_t out_cap;

// Copies the JSON string starting at s (on its opening quote) into *o, or "***" if masked;
// returns the position after the closing quote.
static const char *string_end(const char *s) {
    for (s++; *s && *s != '"'; s++)
        if (*s == '\\' && s[1]) s++;
    return *s ? s + 1 : s;
}

__attribute__((export_name("redact")))
char *redact(char *tag, int tag_len, int sec, int nsec, char *record, int len) {
    (void) tag; (void) tag_len; (void) sec; (void) nsec;
    static char empty[1] = "";
    if (strstr(record, "\"level\":\"debug\"")) return empty;  // drop
    // A masked value ("***") is at most 3 bytes longer than the shortest value ("") it
    // replaces, and each follows a 10-byte key: twice the input is always enough.
    if (2 * (size_t) len + 1 > out_cap) {
        free(out);
        out_cap = 2 * (size_t) len + 1;
        out = malloc(out_cap);
        if (!out) return record;  // keep unchanged rather than fail
    }
    char *o = out;
    const char *s = record;
    while (*s) {
        if (*s != '"') { *o++ = *s++; continue; }
        const char *end = string_end(s);
        size_t n = (size_t) (end - s);
        memcpy(o, s, n);
        o += n;
        s = end;
        // A key named "password" followed by a string value: replace the value.
        if (n == 10 && memcmp(o - 10, "\"password\"", 10) == 0 && s[0] == ':' && s[1] == '"') {
            memcpy(o, ":\"***\"", 6);
            o += 6;
            s = string_end(s + 1);
        }
    }
    *o = 0;
    return out;
}
