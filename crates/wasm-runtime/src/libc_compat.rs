//! The `env.*` C library imports that WAMR's libc-builtin gives modules built with
//! `-nostdlib -Wl,--allow-undefined` (Fluent Bit's own C filter example is one), so those
//! modules run here unchanged: allocation, formatted output, string and memory functions.
//! Also our own `flb.log(level, ptr, len)`: a line into the host's log (through the `log`
//! crate) at Fluent Bit's levels 1 error, 2 warn, 3 info, 4 debug, 5 trace.
//!
//! Only the functions a module imports are defined, with wasm32 C signatures (pointers and
//! `size_t` are i32; a variadic call passes a pointer to its argument area). The heap lives in
//! pages this module grows at the end of guest memory (so it never overlaps the module's own
//! data) and is bounded by the instance's memory limit: when it runs out, `malloc` returns 0
//! as C expects. `printf`/`puts` write to the instance's stdout capture (the plugins log it).

use crate::wasi::Capture;
use std::collections::HashMap;
use wasmer::{Function, FunctionEnv, FunctionEnvMut, Imports, Memory, Module, RuntimeError, Store};

/// The functions served, for the checker and the docs.
pub const SERVED: &[&str] = &[
    "malloc", "calloc", "realloc", "free", "strdup", "printf", "sprintf", "snprintf", "vprintf", "vsprintf", "vsnprintf", "puts",
    "putchar", "memcpy", "memmove", "memset", "memcmp", "memchr", "strlen", "strcmp", "strncmp", "strcpy", "strncpy", "strchr",
    "strstr", "atoi", "abort", "exit",
];

pub(crate) struct LibcEnv {
    memory: Option<Memory>,
    stdout: Capture,
    heap: Heap,
}

/// Functions served in the `flb` namespace.
pub const SERVED_FLB: &[&str] = &["log"];

/// Whether the import `namespace.name` is one this module serves.
pub(crate) fn serves(namespace: &str, name: &str) -> bool {
    match namespace {
        "env" => SERVED.contains(&name),
        "flb" => SERVED_FLB.contains(&name),
        _ => false,
    }
}

/// Whether `module` imports any function this module serves.
pub(crate) fn wanted(module: &Module) -> bool {
    module.imports().any(|i| serves(i.module(), i.name()))
}

/// Defines the served `env` functions `module` imports (with matching signatures) into
/// `imports`. Call [`attach`] with the instance's memory once instantiated.
pub(crate) fn define(store: &mut Store, module: &Module, stdout: &Capture, imports: &mut Imports) -> FunctionEnv<LibcEnv> {
    let env = FunctionEnv::new(store, LibcEnv { memory: None, stdout: stdout.clone(), heap: Heap::default() });
    for imp in module.imports().filter(|i| serves(i.module(), i.name())) {
        let Some(want) = imp.ty().func() else { continue };
        let f = if imp.module() == "flb" { flb_function(store, &env, imp.name()) } else { function(store, &env, imp.name()) };
        if let Some(f) = f {
            if f.ty(store) == *want {
                imports.define(imp.module(), imp.name(), f);
            }
        }
    }
    env
}

pub(crate) fn attach(store: &mut Store, env: &FunctionEnv<LibcEnv>, memory: Option<Memory>) {
    env.as_mut(store).memory = memory;
}

type Env<'a> = FunctionEnvMut<'a, LibcEnv>;
type R<T> = Result<T, RuntimeError>;

fn function(s: &mut Store, env: &FunctionEnv<LibcEnv>, name: &str) -> Option<Function> {
    let func = match name {
        "malloc" => Function::new_typed_with_env(s, env, |mut e: Env, n: i32| -> R<i32> { malloc(&mut e, n as u32) }),
        "calloc" => Function::new_typed_with_env(s, env, |mut e: Env, n: i32, size: i32| -> R<i32> {
            let Some(total) = (n as u32).checked_mul(size as u32) else { return Ok(0) };
            let p = malloc(&mut e, total)?;
            if p != 0 {
                mem(&mut e)?[p as usize..(p as u32 + total) as usize].fill(0);
            }
            Ok(p)
        }),
        "realloc" => Function::new_typed_with_env(s, env, |mut e: Env, p: i32, n: i32| -> R<i32> { realloc(&mut e, p as u32, n as u32) }),
        "free" => Function::new_typed_with_env(s, env, |mut e: Env, p: i32| {
            e.data_mut().heap.free(p as u32);
        }),
        "strdup" => Function::new_typed_with_env(s, env, |mut e: Env, src: i32| -> R<i32> {
            let len = c_str(mem(&mut e)?, src as u32)?.len() as u32;
            let p = malloc(&mut e, len + 1)?;
            if p != 0 {
                mem(&mut e)?.copy_within(src as usize..(src as u32 + len + 1) as usize, p as usize);
            }
            Ok(p)
        }),
        "printf" | "vprintf" => Function::new_typed_with_env(s, env, |mut e: Env, fmt: i32, va: i32| -> R<i32> {
            let out = format(mem(&mut e)?, fmt as u32, va as u32)?;
            e.data().stdout.write(&out);
            Ok(out.len() as i32)
        }),
        "sprintf" | "vsprintf" => Function::new_typed_with_env(s, env, |mut e: Env, buf: i32, fmt: i32, va: i32| -> R<i32> {
            let out = format(mem(&mut e)?, fmt as u32, va as u32)?;
            put(mem(&mut e)?, buf as u32, &out, usize::MAX)?;
            Ok(out.len() as i32)
        }),
        "snprintf" | "vsnprintf" => Function::new_typed_with_env(s, env, |mut e: Env, buf: i32, n: i32, fmt: i32, va: i32| -> R<i32> {
            let out = format(mem(&mut e)?, fmt as u32, va as u32)?;
            if n > 0 {
                put(mem(&mut e)?, buf as u32, &out, n as usize - 1)?;
            }
            Ok(out.len() as i32)
        }),
        "puts" => Function::new_typed_with_env(s, env, |mut e: Env, p: i32| -> R<i32> {
            let mut line = c_str(mem(&mut e)?, p as u32)?.to_vec();
            line.push(b'\n');
            e.data().stdout.write(&line);
            Ok(1)
        }),
        "putchar" => Function::new_typed_with_env(s, env, |e: Env, c: i32| -> i32 {
            e.data().stdout.write(&[c as u8]);
            c
        }),
        "memcpy" | "memmove" => Function::new_typed_with_env(s, env, |mut e: Env, d: i32, src: i32, n: i32| -> R<i32> {
            let m = mem(&mut e)?;
            range(m, src as u32, n as u32)?;
            range(m, d as u32, n as u32)?;
            m.copy_within(src as usize..(src as u32 + n as u32) as usize, d as usize);
            Ok(d)
        }),
        "memset" => Function::new_typed_with_env(s, env, |mut e: Env, d: i32, c: i32, n: i32| -> R<i32> {
            let m = mem(&mut e)?;
            range(m, d as u32, n as u32)?;
            m[d as usize..(d as u32 + n as u32) as usize].fill(c as u8);
            Ok(d)
        }),
        "memcmp" => Function::new_typed_with_env(s, env, |mut e: Env, a: i32, b: i32, n: i32| -> R<i32> {
            let m = mem(&mut e)?;
            let (x, y) = (range(m, a as u32, n as u32)?, range(m, b as u32, n as u32)?);
            Ok(cmp_bytes(&m[x], &m[y]))
        }),
        "memchr" => Function::new_typed_with_env(s, env, |mut e: Env, p: i32, c: i32, n: i32| -> R<i32> {
            let m = mem(&mut e)?;
            let r = range(m, p as u32, n as u32)?;
            Ok(m[r].iter().position(|&b| b == c as u8).map_or(0, |i| p + i as i32))
        }),
        "strlen" => Function::new_typed_with_env(s, env, |mut e: Env, p: i32| -> R<i32> { Ok(c_str(mem(&mut e)?, p as u32)?.len() as i32) }),
        "strcmp" => Function::new_typed_with_env(s, env, |mut e: Env, a: i32, b: i32| -> R<i32> {
            let m = mem(&mut e)?;
            Ok(cmp_bytes(c_str(m, a as u32)?, c_str(m, b as u32)?))
        }),
        "strncmp" => Function::new_typed_with_env(s, env, |mut e: Env, a: i32, b: i32, n: i32| -> R<i32> {
            let m = mem(&mut e)?;
            let (x, y) = (c_str(m, a as u32)?, c_str(m, b as u32)?);
            let n = n as u32 as usize;
            Ok(cmp_bytes(&x[..x.len().min(n)], &y[..y.len().min(n)]))
        }),
        "strcpy" => Function::new_typed_with_env(s, env, |mut e: Env, d: i32, src: i32| -> R<i32> {
            let m = mem(&mut e)?;
            let s = c_str(m, src as u32)?.to_vec();
            put(m, d as u32, &s, usize::MAX)?;
            Ok(d)
        }),
        "strncpy" => Function::new_typed_with_env(s, env, |mut e: Env, d: i32, src: i32, n: i32| -> R<i32> {
            let m = mem(&mut e)?;
            let n = n as u32;
            let mut s = c_str(m, src as u32)?.to_vec();
            s.resize(n as usize, 0); // strncpy pads with NULs and may leave no terminator
            let r = range(m, d as u32, n)?;
            m[r].copy_from_slice(&s);
            Ok(d)
        }),
        "strchr" => Function::new_typed_with_env(s, env, |mut e: Env, p: i32, c: i32| -> R<i32> {
            let m = mem(&mut e)?;
            let s = c_str(m, p as u32)?;
            if c as u8 == 0 {
                return Ok(p + s.len() as i32);
            }
            Ok(s.iter().position(|&b| b == c as u8).map_or(0, |i| p + i as i32))
        }),
        "strstr" => Function::new_typed_with_env(s, env, |mut e: Env, h: i32, n: i32| -> R<i32> {
            let m = mem(&mut e)?;
            let (hay, needle) = (c_str(m, h as u32)?, c_str(m, n as u32)?);
            if needle.is_empty() {
                return Ok(h);
            }
            Ok(hay.windows(needle.len()).position(|w| w == needle).map_or(0, |i| h + i as i32))
        }),
        "atoi" => Function::new_typed_with_env(s, env, |mut e: Env, p: i32| -> R<i32> {
            let s = String::from_utf8_lossy(c_str(mem(&mut e)?, p as u32)?).into_owned();
            let t = s.trim_start();
            let end = t.char_indices().take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+'))).count();
            Ok(t[..end].parse::<i64>().map_or(0, |v| v as i32))
        }),
        "abort" => Function::new_typed_with_env(s, env, |_e: Env| -> R<()> { Err(RuntimeError::new("the guest called abort()")) }),
        "exit" => Function::new_typed_with_env(s, env, |_e: Env, code: i32| -> R<()> { Err(RuntimeError::new(format!("the guest called exit({code})"))) }),
        _ => return None,
    };
    Some(func)
}

fn flb_function(store: &mut Store, env: &FunctionEnv<LibcEnv>, name: &str) -> Option<Function> {
    match name {
        "log" => Some(Function::new_typed_with_env(store, env, |mut e: Env, level: i32, p: i32, n: i32| -> R<()> {
            let m = mem(&mut e)?;
            let r = range(m, p as u32, n as u32)?;
            let level = match level {
                i32::MIN..=1 => log::Level::Error,
                2 => log::Level::Warn,
                3 => log::Level::Info,
                4 => log::Level::Debug,
                _ => log::Level::Trace,
            };
            log::log!(level, "{}", String::from_utf8_lossy(&m[r]).trim_end());
            Ok(())
        })),
        _ => None,
    }
}

fn mem<'a>(e: &'a mut Env) -> R<&'a mut [u8]> {
    let (data, store) = e.data_and_store_mut();
    let memory = data.memory.as_ref().ok_or_else(|| RuntimeError::new("the module exports no memory for its env.* imports"))?;
    let view = memory.view(&store);
    // SAFETY: no guest code runs during a host call, and memory cannot grow while this
    // borrow (tied to the call's env) lives.
    Ok(unsafe { std::slice::from_raw_parts_mut(view.data_ptr(), view.data_size() as usize) })
}

fn oob(what: &str, p: u32) -> RuntimeError {
    RuntimeError::new(format!("{what} {p:#x} is outside guest memory"))
}

fn range(m: &[u8], p: u32, n: u32) -> R<std::ops::Range<usize>> {
    let end = (p as usize).checked_add(n as usize).filter(|&e| e <= m.len()).ok_or_else(|| oob("buffer", p))?;
    Ok(p as usize..end)
}

fn c_str(m: &[u8], p: u32) -> R<&[u8]> {
    let tail = m.get(p as usize..).ok_or_else(|| oob("string", p))?;
    let end = tail.iter().position(|&b| b == 0).ok_or_else(|| oob("unterminated string at", p))?;
    Ok(&tail[..end])
}

/// Writes `bytes` (cut to `max`) and a NUL at `p`.
fn put(m: &mut [u8], p: u32, bytes: &[u8], max: usize) -> R<()> {
    let bytes = &bytes[..bytes.len().min(max)];
    let r = range(m, p, bytes.len() as u32 + 1)?;
    m[r.start..r.end - 1].copy_from_slice(bytes);
    m[r.end - 1] = 0;
    Ok(())
}

fn cmp_bytes(a: &[u8], b: &[u8]) -> i32 {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => *x as i32 - *y as i32,
        None => a.len().cmp(&b.len()) as i32,
    }
}

fn malloc(e: &mut Env, n: u32) -> R<i32> {
    let (data, mut store) = e.data_and_store_mut();
    let Some(memory) = data.memory.clone() else { return Err(RuntimeError::new("the module exports no memory for env.malloc")) };
    Ok(data.heap.alloc(n, |pages| memory.grow(&mut store, pages).ok().map(|p| p.0)).unwrap_or(0) as i32)
}

fn realloc(e: &mut Env, p: u32, n: u32) -> R<i32> {
    if p == 0 {
        return malloc(e, n);
    }
    let old = e.data().heap.size_of(p).ok_or_else(|| RuntimeError::new(format!("realloc({p:#x}): not a pointer from malloc")))?;
    if n <= old {
        return Ok(p as i32);
    }
    let q = malloc(e, n)?;
    if q != 0 {
        mem(e)?.copy_within(p as usize..(p + old) as usize, q as usize);
        e.data_mut().heap.free(p);
    }
    Ok(q)
}

/// Power-of-two size classes (16 B and up) with free lists; new blocks come from pages grown
/// at the end of memory. Bookkeeping is host-side, so guest bugs cannot corrupt it.
#[derive(Default)]
struct Heap {
    free: Vec<Vec<u32>>,
    live: HashMap<u32, u8>,
    next: u32,
    end: u32,
}

impl Heap {
    fn class(n: u32) -> u8 {
        n.max(16).next_power_of_two().trailing_zeros() as u8
    }

    fn size_of(&self, p: u32) -> Option<u32> {
        self.live.get(&p).map(|c| 1u32 << c)
    }

    fn alloc(&mut self, n: u32, grow: impl FnOnce(u32) -> Option<u32>) -> Option<u32> {
        if n > 1 << 30 {
            return None;
        }
        let class = Self::class(n);
        let size = 1u32 << class;
        if self.free.len() <= class as usize {
            self.free.resize(class as usize + 1, Vec::new());
        }
        let p = match self.free[class as usize].pop() {
            Some(p) => p,
            None => {
                if self.end - self.next < size {
                    let pages = size.div_ceil(65536).max(1);
                    let old_pages = grow(pages)?;
                    let start = old_pages.checked_mul(65536)?;
                    if start != self.end {
                        // Someone else grew memory since: start a new region there.
                        self.next = start;
                    }
                    self.end = start + pages * 65536;
                }
                let p = self.next;
                self.next += size;
                p
            }
        };
        self.live.insert(p, class);
        Some(p)
    }

    fn free(&mut self, p: u32) {
        // free(NULL) and unknown pointers are ignored (as WAMR's heap does for foreign ones).
        if let Some(class) = self.live.remove(&p) {
            self.free[class as usize].push(p);
        }
    }
}

/// C `printf` formatting with wasm32 varargs read from guest memory at `va`.
pub(crate) fn format(m: &[u8], fmt: u32, va: u32) -> R<Vec<u8>> {
    let fmt = c_str(m, fmt)?;
    let mut args = VaList { m, at: va };
    let mut out = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        let (mut left, mut plus, mut space, mut alt, mut zero) = (false, false, false, false, false);
        while i < fmt.len() {
            match fmt[i] {
                b'-' => left = true,
                b'+' => plus = true,
                b' ' => space = true,
                b'#' => alt = true,
                b'0' => zero = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        if fmt.get(i) == Some(&b'*') {
            let w = args.i32()?;
            if w < 0 {
                left = true;
            }
            width = w.unsigned_abs() as usize;
            i += 1;
        } else {
            while let Some(d) = fmt.get(i).filter(|d| d.is_ascii_digit()) {
                width = width * 10 + (d - b'0') as usize;
                i += 1;
            }
        }
        let mut prec: Option<usize> = None;
        if fmt.get(i) == Some(&b'.') {
            i += 1;
            if fmt.get(i) == Some(&b'*') {
                let p = args.i32()?;
                prec = (p >= 0).then_some(p as usize);
                i += 1;
            } else {
                let mut p = 0;
                while let Some(d) = fmt.get(i).filter(|d| d.is_ascii_digit()) {
                    p = p * 10 + (d - b'0') as usize;
                    i += 1;
                }
                prec = Some(p);
            }
        }
        let mut long64 = false;
        while let Some(&l) = fmt.get(i) {
            match l {
                b'l' if fmt.get(i + 1) == Some(&b'l') => {
                    long64 = true;
                    i += 1;
                }
                b'j' | b'q' => long64 = true,
                b'l' | b'h' | b'z' | b't' | b'L' => {}
                _ => break,
            }
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else { break };
        i += 1;
        let pad = |body: Vec<u8>, sign: &[u8], numeric: bool, out: &mut Vec<u8>| {
            let len = body.len() + sign.len();
            let fill = width.saturating_sub(len);
            if left {
                out.extend_from_slice(sign);
                out.extend_from_slice(&body);
                out.extend(std::iter::repeat_n(b' ', fill));
            } else if zero && numeric {
                out.extend_from_slice(sign);
                out.extend(std::iter::repeat_n(b'0', fill));
                out.extend_from_slice(&body);
            } else {
                out.extend(std::iter::repeat_n(b' ', fill));
                out.extend_from_slice(sign);
                out.extend_from_slice(&body);
            }
        };
        match conv {
            b'%' => out.push(b'%'),
            b'd' | b'i' => {
                let v = if long64 { args.i64()? } else { args.i32()? as i64 };
                let mut digits = v.unsigned_abs().to_string().into_bytes();
                if let Some(p) = prec {
                    if p == 0 && v == 0 {
                        digits.clear();
                    }
                    while digits.len() < p {
                        digits.insert(0, b'0');
                    }
                }
                let sign: &[u8] = if v < 0 { b"-" } else if plus { b"+" } else if space { b" " } else { b"" };
                pad(digits, sign, prec.is_none(), &mut out);
            }
            b'u' | b'x' | b'X' | b'o' => {
                let v = if long64 { args.i64()? as u64 } else { args.i32()? as u32 as u64 };
                let mut digits = match conv {
                    b'u' => v.to_string(),
                    b'x' => format!("{v:x}"),
                    b'X' => format!("{v:X}"),
                    _ => format!("{v:o}"),
                }
                .into_bytes();
                if let Some(p) = prec {
                    if p == 0 && v == 0 {
                        digits.clear();
                    }
                    while digits.len() < p {
                        digits.insert(0, b'0');
                    }
                }
                let prefix: &[u8] = match (alt && v != 0, conv) {
                    (true, b'x') => b"0x",
                    (true, b'X') => b"0X",
                    (true, b'o') => b"0",
                    _ => b"",
                };
                pad(digits, prefix, prec.is_none(), &mut out);
            }
            b'c' => pad(vec![args.i32()? as u8], b"", false, &mut out),
            b's' => {
                let p = args.i32()? as u32;
                let mut s = if p == 0 { b"(null)".to_vec() } else { c_str(m, p)?.to_vec() };
                if let Some(pr) = prec {
                    s.truncate(pr);
                }
                pad(s, b"", false, &mut out);
            }
            b'p' => {
                let v = args.i32()? as u32;
                pad(format!("{v:x}").into_bytes(), b"0x", false, &mut out);
            }
            b'f' | b'F' | b'e' | b'E' | b'g' | b'G' | b'a' | b'A' => {
                let v = args.f64()?;
                let body = float(v.abs(), conv, prec.unwrap_or(6), alt);
                let sign: &[u8] = if v.is_sign_negative() && !v.is_nan() { b"-" } else if plus { b"+" } else if space { b" " } else { b"" };
                pad(body.into_bytes(), sign, v.is_finite(), &mut out);
            }
            b'n' => {
                args.i32()?; // never written: a format string must not write guest memory
            }
            other => {
                out.push(b'%');
                out.push(other);
            }
        }
    }
    Ok(out)
}

fn float(v: f64, conv: u8, prec: usize, alt: bool) -> String {
    let upper = conv.is_ascii_uppercase();
    if !v.is_finite() {
        let s = if v.is_nan() { "nan" } else { "inf" };
        return if upper { s.to_uppercase() } else { s.into() };
    }
    let exp_form = |prec: usize| {
        let s = format!("{v:.prec$e}");
        let (mant, exp) = s.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        format!("{mant}{}{}{:02}", if upper { 'E' } else { 'e' }, if exp < 0 { '-' } else { '+' }, exp.abs())
    };
    let s = match conv.to_ascii_lowercase() {
        b'f' => format!("{v:.prec$}"),
        b'e' => exp_form(prec),
        b'a' => format!("{v:e}"),
        _ => {
            let p = prec.max(1);
            let x = if v == 0.0 { 0 } else { format!("{v:.*e}", p - 1).split_once('e').unwrap().1.parse::<i32>().unwrap() };
            let mut s = if (p as i32) > x && x >= -4 { format!("{v:.*}", (p as i32 - 1 - x) as usize) } else { exp_form(p - 1) };
            if !alt {
                let (m, e) = match s.find(['e', 'E']) {
                    Some(i) => (s[..i].to_owned(), s[i..].to_owned()),
                    None => (s.clone(), String::new()),
                };
                let m = if m.contains('.') { m.trim_end_matches('0').trim_end_matches('.').to_owned() } else { m };
                s = m + &e;
            }
            s
        }
    };
    if upper { s.to_uppercase() } else { s }
}

/// wasm32 C varargs: each argument at its natural alignment (4 for int/pointer, 8 for
/// long long and double).
struct VaList<'a> {
    m: &'a [u8],
    at: u32,
}

impl VaList<'_> {
    fn take<const N: usize>(&mut self) -> R<[u8; N]> {
        let at = self.at.next_multiple_of(N as u32);
        let r = range(self.m, at, N as u32).map_err(|_| RuntimeError::new("printf: the format string asks for more arguments than were passed"))?;
        self.at = at + N as u32;
        Ok(self.m[r].try_into().unwrap())
    }
    fn i32(&mut self) -> R<i32> {
        Ok(i32::from_le_bytes(self.take::<4>()?))
    }
    fn i64(&mut self) -> R<i64> {
        Ok(i64::from_le_bytes(self.take::<8>()?))
    }
    fn f64(&mut self) -> R<f64> {
        Ok(f64::from_le_bytes(self.take::<8>()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory with a format string at 0 and the argument area at 256.
    fn fmt(f: &str, args: &[u8]) -> String {
        let mut m = vec![0u8; 1024];
        m[..f.len()].copy_from_slice(f.as_bytes());
        m[256..256 + args.len()].copy_from_slice(args);
        m[600..606].copy_from_slice(b"hello\0");
        String::from_utf8(format(&m, 0, 256).unwrap()).unwrap()
    }

    fn i(v: i32) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }

    #[test]
    fn integers_strings_and_flags() {
        assert_eq!(fmt("%d|%5d|%-5d|%05d|%+d", &[i(42), i(-7), i(3), i(-42), i(1)].concat()), "42|   -7|3    |-0042|+1");
        assert_eq!(fmt("%x %X %#x %o %u", &[i(255), i(255), i(255), i(8), i(-1)].concat()), "ff FF 0xff 10 4294967295");
        assert_eq!(fmt("%s|%.3s|%8s|%c", &[i(600), i(600), i(600), i('z' as i32)].concat()), "hello|hel|   hello|z");
        // long long is 8-aligned after a 4-byte argument.
        let mut a = i(1);
        a.extend([0; 4]);
        a.extend(1234567890123i64.to_le_bytes());
        assert_eq!(fmt("%d %lld", &a), "1 1234567890123");
        assert_eq!(fmt("100%%", &[]), "100%");
    }

    #[test]
    fn floats_like_c() {
        let d = |v: f64| v.to_le_bytes().to_vec();
        assert_eq!(fmt("%f %.2f %e %g %g %g", &[d(1.5), d(2.345), d(1234.5), d(0.0001), d(1e10), d(100.0)].concat()), "1.500000 2.35 1.234500e+03 0.0001 1e+10 100");
    }

    #[test]
    fn missing_arguments_are_an_error_not_a_read_past_memory() {
        let mut m = vec![0u8; 64];
        m[..2].copy_from_slice(b"%d");
        assert!(format(&m, 0, 62).is_err());
    }

    #[test]
    fn heap_reuses_and_grows() {
        let mut h = Heap::default();
        let mut pages = 1u32;
        let mut grow = |n: u32| {
            let old = pages;
            pages += n;
            Some(old)
        };
        let a = h.alloc(10, &mut grow).unwrap();
        assert_eq!(a, 65536);
        let b = h.alloc(100, &mut grow).unwrap();
        assert_eq!(b, a + 16);
        h.free(a);
        assert_eq!(h.alloc(16, &mut grow), Some(a));
        let big = h.alloc(200_000, &mut grow).unwrap();
        assert!(big > b && h.size_of(big) == Some(262_144));
        assert_eq!(h.alloc(u32::MAX, &mut grow), None);
    }
}
