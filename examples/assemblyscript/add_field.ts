// AssemblyScript filter (JSON mode): adds "as":"yes" as the first key, drops debug records.
// Built with --exportRuntime, so the host places records with __new/__pin/__unpin.

// The result must stay alive (and not move) until the host has read it: keep it pinned in a
// global until the next call.
let last: ArrayBuffer | null = null;

export function as_add_field(tag: usize, tagLen: i32, sec: u32, nsec: u32, record: usize, len: i32): usize {
  const body = String.UTF8.decodeUnsafe(record, len);
  let out: string;
  if (body.includes('"level":"debug"')) {
    out = "";
  } else if (body.length > 2) {
    out = '{"as":"yes",' + body.substring(1);
  } else {
    out = '{"as":"yes"}';
  }
  if (last) __unpin(changetype<usize>(last));
  const buf = String.UTF8.encode(out, true); // NUL-terminated
  __pin(changetype<usize>(buf));
  last = buf;
  return changetype<usize>(buf);
}
