//! Example exec_wasi program in Zig 0.17 (wasm32-wasi): three lines through a streaming
//! stdout writer (a positional writer fails on a pipe).
//! Build: python -m ziglang build-exe exec_lines.zig -target wasm32-wasi -O ReleaseSmall
const std = @import("std");
pub fn main(init: std.process.Init) !void {
    var buf: [256]u8 = undefined;
    var w = std.Io.File.stdout().writerStreaming(init.io, &buf);
    const out = &w.interface;
    var i: u32 = 1;
    while (i <= 3) : (i += 1) try out.print("zig line {d}\n", .{i});
    try out.flush();
}
