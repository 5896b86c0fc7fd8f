//! Example filter in Zig (JSON mode): adds "zig":"yes" as the first key. No malloc/free
//! exports, so the host places records in its own region of guest memory; the result lives
//! in one buffer reused across calls.
//! Build: python -m ziglang build-exe add_field.zig -target wasm32-wasi -fno-entry -rdynamic -O ReleaseSmall
const std = @import("std");

var out: []u8 = &[_]u8{};

export fn zig_add_field(tag: [*]const u8, tag_len: i32, sec: u32, nsec: u32, record: [*]const u8, len: i32) [*]const u8 {
    _ = tag;
    _ = tag_len;
    _ = sec;
    _ = nsec;
    const n: usize = @intCast(len);
    const body = record[0..n];
    const field = "\"zig\":\"yes\"";
    const need = n + field.len + 2;
    if (out.len < need) {
        if (out.len > 0) std.heap.wasm_allocator.free(out);
        out = std.heap.wasm_allocator.alloc(u8, need) catch return record;
    }
    if (n <= 2) {
        const s = "{\"zig\":\"yes\"}";
        @memcpy(out[0..s.len], s);
        out[s.len] = 0;
        return out.ptr;
    }
    out[0] = '{';
    @memcpy(out[1 .. 1 + field.len], field);
    out[1 + field.len] = ',';
    @memcpy(out[2 + field.len .. 1 + field.len + n], body[1..n]);
    out[1 + field.len + n] = 0;
    return out.ptr;
}
