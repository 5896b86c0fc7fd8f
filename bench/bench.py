#!/usr/bin/env python3
"""Side-by-side benchmark: our plugins vs Fluent Bit's built-in WASM plugins (and Lua, and no
filter) on one host, in one run. Prints a table and writes it to bench/results.md.

Measures process CPU seconds (user + sys, from wait4) and peak RSS of whole fluent-bit runs:
  * filter: tail (exit_on_eof) -> filter -> counter, for identity / add a field / drop half,
    record sizes ~100 B, 1 KiB, 16 KiB; records out are counted (a variant that loses
    records says so);
  * exec_wasi: CPU per run for a trivial program and a 10,000-line program, over the whole
    process and in the steady state (per thread, from /proc/PID/task/*/schedstat);
  * start-up: fluent-bit with and without our plugins loaded;
  * compiler: our filter with cranelift (the default) vs singlepass, for a guest that does
    some work (the Rust SDK example), and what each costs at start-up (its compile);
  * instructions: callgrind counts per record of the filter pipelines (ours, Lua, no filter;
    the built-in dies under valgrind), which repeat where CPU seconds on a shared machine do not.

Usage: bench/bench.py [--host /opt/fluent-bit/bin/fluent-bit] [--quick] [--repeat 3] [--only exec ...]
Needs a release build (scripts/test or cargo build --release --workspace) and the guest
fixtures (built here with tests/fixtures/build.sh). A full run takes about 20 minutes on
2 cores (the instructions section, under valgrind, about 12 minutes of it).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/flb-wasmer/target")
REL = os.path.join(TARGET, "release")


def host_bin(arg):
    for b in [arg, os.environ.get("FLUENT_BIT_BIN"), "/opt/fluent-bit/bin/fluent-bit"]:
        if b and os.path.exists(b):
            return b
    sys.exit("bench: no fluent-bit (use --host or FLUENT_BIT_BIN)")


def run(cmd, cwd=None, env=None):
    """Runs cmd; returns (cpu_seconds, peak_rss_kib, wall, stdout, exit code or -signal)."""
    out = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    cpu, rss, text, code = finish(p, out, cmd, (0, 124))  # 124: stopped by `timeout`, as intended
    return cpu, rss, time.monotonic() - t0, text, code


def finish(p, out, cmd, expected):
    """Waits for p; returns (cpu_seconds, peak_rss_kib, its output, exit code or -signal),
    saying so when the code is not one of `expected`."""
    _, status, ru = os.wait4(p.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read().decode("utf-8", "replace")
    if code not in expected:
        print(f"bench: {' '.join(cmd)} exited {code}\n{text[-2000:]}", file=sys.stderr)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss, text, code


def thread_ns(pid):
    """CPU ns per thread name of a running process (schedstat: ns precision)."""
    by_name = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended
        by_name[name] = by_name.get(name, 0) + ns
    return by_name


def run_sampled(cmd, dur, warm):
    """Runs cmd for dur seconds (then SIGTERM) like run(), and also samples its threads' CPU
    from warm until 1 s before the end: the steady state, without start-up and shutdown.
    Returns run()'s tuple plus ({thread name: ns in the window}, window start, window end)."""
    out = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    time.sleep(warm)
    a, ta = thread_ns(p.pid), time.time()
    time.sleep(dur - warm - 1)
    b, tb = thread_ns(p.pid), time.time()
    time.sleep(1)
    p.terminate()
    cpu, rss, text, _ = finish(p, out, cmd, (0, -15))
    window = {k: v - a.get(k, 0) for k, v in b.items()}
    return cpu, rss, text, window, ta, tb


def median(xs):
    return sorted(xs)[len(xs) // 2]


def counted(text, since=0.0, until=float("inf")):
    """Records the counter output printed (those flushed between since and until, epoch s)."""
    n = 0
    for line in text.splitlines():
        if line.startswith('{"ts"'):
            try:
                c = json.loads(line)
            except ValueError:
                continue  # the last line, cut by `timeout`
            if since < c.get("ts", 0) <= until:
                n += c.get("log_records", 0)
        else:
            m = re.match(r"^(\d+\.\d+),(\d+) \(total", line)
            if m and since < float(m.group(1)) <= until:
                n += int(m.group(2))
    return n


def make_input(path, size, count):
    with open(path, "w") as f:
        for i in range(count):
            rec = {"i": i, "level": "info", "drop": i % 2 == 1, "msg": ""}
            pad = max(0, size - len(json.dumps(rec)))
            rec["msg"] = "m" * pad
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host")
    ap.add_argument("--quick", action="store_true", help="fewer records (a smoke run)")
    ap.add_argument("--only", action="append", choices=["filter", "exec", "first-run", "start-up", "compiler", "instructions"],
                    help="run only these sections (repeatable); the table is then printed, not written")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of filter and exec cases, first-run 3x as many; medians are reported (default 3)")
    ap.add_argument("--out")
    a = ap.parse_args()
    want = set(a.only or ["filter", "exec", "first-run", "start-up", "compiler", "instructions"])
    if a.out is None and not a.only:
        a.out = os.path.join(ROOT, "bench", "results.md")
    fb = host_bin(a.host)
    version = subprocess.run([fb, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    fx = os.path.join(REL, "guest-fixtures")
    subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/build.sh"), fx], check=True)
    inp = os.path.join(REL, "libexec_wasi.so")
    flt = os.path.join(REL, "libfilter_wasm.so")
    work = tempfile.mkdtemp(prefix="flb-wasmer-bench-")
    # The loader wants these names.
    plug_in = os.path.join(work, "flb-in_exec_wasi_wasmer.so")
    plug_f = os.path.join(work, "flb-filter_wasm_wasmer.so")
    os.symlink(inp, plug_in)
    os.symlink(flt, plug_f)
    parsers = os.path.join(work, "parsers.conf")
    with open(parsers, "w") as f:
        f.write("[PARSER]\n    name json\n    format json\n")
    lua = os.path.join(work, "edit.lua")
    with open(lua, "w") as f:
        f.write(
            "function identity(tag, ts, r) return 0, ts, r end\n"
            "function add_field(tag, ts, r) r['wasm'] = 'yes' return 2, ts, r end\n"
            "function drop_half(tag, ts, r) if r['drop'] then return -1, ts, r end return 0, ts, r end\n"
        )
    scale = 0.1 if a.quick else 1.0
    sizes = [(100, int(400_000 * scale)), (1024, int(100_000 * scale)), (16384, int(8_000 * scale))]
    # (logic, {variant: filter args}) ; None = no filter (the ceiling)
    def wasm(name, module, function, fmt, extra=()):
        return ["-F", name, "-m", "*", "-p", f"wasm_path={os.path.join(fx, module)}", "-p", f"function_name={function}", "-p", f"event_format={fmt}", *extra]

    big_heap = ["-p", "wasm_heap_size=64M"]  # fair to the built-in: room for 16 KiB records
    logics = {
        "identity": {
            "builtin json": wasm("wasm", "filter_identity.wasm", "filter", "json", big_heap),
            "ours json": wasm("wasm_wasmer", "filter_identity.wasm", "filter", "json"),
            "builtin msgpack": wasm("wasm", "filter_identity.wasm", "filter", "msgpack", big_heap),
            "ours msgpack": wasm("wasm_wasmer", "filter_identity.wasm", "filter", "msgpack"),
            "lua": ["-F", "lua", "-m", "*", "-p", f"script={lua}", "-p", "call=identity"],
        },
        "add field": {
            "builtin json": wasm("wasm", "filter_add_field.wasm", "add_field", "json", big_heap),
            "ours json": wasm("wasm_wasmer", "filter_add_field.wasm", "add_field", "json"),
            "builtin msgpack": wasm("wasm", "filter_msgpack_add.wasm", "add_field_mp", "msgpack", big_heap),
            "ours msgpack": wasm("wasm_wasmer", "filter_msgpack_add.wasm", "add_field_mp", "msgpack"),
            # The same edit on the extended ABI's batch call: one guest call per chunk.
            "ours batch": wasm("wasm_wasmer", "filter_batch.wasm", "add_field_batch", "msgpack"),
            "lua": ["-F", "lua", "-m", "*", "-p", f"script={lua}", "-p", "call=add_field"],
        },
        "drop half": {
            "builtin json": wasm("wasm", "filter_drop.wasm", "drop_some", "json", big_heap),
            "ours json": wasm("wasm_wasmer", "filter_drop.wasm", "drop_some", "json"),
            "builtin msgpack": wasm("wasm", "filter_msgpack_drop.wasm", "drop_some_mp", "msgpack", big_heap),
            "ours msgpack": wasm("wasm_wasmer", "filter_msgpack_drop.wasm", "drop_some_mp", "msgpack"),
            "lua": ["-F", "lua", "-m", "*", "-p", f"script={lua}", "-p", "call=drop_half"],
        },
    }
    def pipeline(path, fargs):
        """tail (a JSON-lines file, to its end) -> the filter given by `fargs` -> counter."""
        return [fb, "-R", parsers, "-e", plug_f, "-i", "tail", "-p", f"path={path}", "-p", "parser=json", "-p", "read_from_head=true",
                "-p", "exit_on_eof=true", "-p", "buffer_chunk_size=1M", "-p", "buffer_max_size=1M", "-t", "t",
                *fargs, "-o", "counter", "-m", "*", "-f", "0.2"]

    def summary(runs):
        """Median CPU and peak RSS, the fewest records any run delivered, and how many crashed."""
        crashed = sum(1 for r in runs if r[4] < 0)
        return median([r[0] for r in runs]), median([r[1] for r in runs]), (min(counted(r[3]) for r in runs), crashed)

    rows = []
    for size, count in (sizes if "filter" in want else []):
        path = os.path.join(work, f"in-{size}.jsonl")
        make_input(path, size, count)
        cases = [(None, None, [])] + [(logic, variant, fargs) for logic, variants in logics.items() for variant, fargs in variants.items()]
        # Round robin: a slow spell of this shared machine hits every variant alike.
        runs = {(logic, variant): [] for logic, variant, _ in cases}
        for i in range(a.repeat):
            for logic, variant, fargs in cases:
                runs[(logic, variant)].append(run(pipeline(path, fargs)))
            print(f"  {size} B x {count}: round {i + 1} of {a.repeat} done", file=sys.stderr)
        cpu0, rss0, n0 = summary(runs[(None, None)])
        rows.append(("no filter", "-", size, count, n0, count, cpu0, rss0, None, None))
        for logic, variants in logics.items():
            expect = count // 2 if logic == "drop half" else count
            res = {variant: summary(runs[(logic, variant)]) for variant in variants}
            for variant, (cpu, rss, n) in res.items():
                builtin = res.get(variant.replace("ours", "builtin")) if variant.startswith("ours") else None
                rows.append((logic, variant, size, count, n, expect, cpu, rss, builtin, cpu0))

    lines = [f"# Benchmark: {version}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores", ""]
    if rows:
        lines += [
             f"Filter: tail (exit_on_eof) -> filter -> counter. CPU = user+sys seconds of the whole fluent-bit process, median of {a.repeat} runs",
             "taken round robin over all variants (peak RSS likewise; `out` is the fewest records any run delivered).",
             "`x built-in` = built-in CPU / ours (higher is better for us); `% ceiling` = no-filter CPU / this CPU.",
             "`x built-in above ceiling` = the same ratio for the CPU each run spends above the no-filter run (the filter's",
             "own cost, with Fluent Bit's for rewriting changed records), shown where both are at least 0.03 s above it.",
             "No filter can make the whole process cheaper than the ceiling, so `x built-in` cannot exceed",
             "built-in CPU / ceiling CPU (except where dropping records saves output work).", "",
             "| logic | variant | record | records | out (expected) | CPU s | peak RSS MiB | x built-in | x built-in above ceiling | % ceiling |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for logic, variant, size, count, (n, crashed), expect, cpu, rss, builtin, cpu0 in rows:
        out = f"{n}" if n == expect else f"**{n}** ({expect})"
        if crashed:
            out += f", **fluent-bit crashed in {crashed} of {a.repeat} runs**"
        vs = f"{builtin[0] / cpu:.2f}" if builtin and cpu > 0 else ""
        above = f"{(builtin[0] - cpu0) / (cpu - cpu0):.1f}" if builtin and min(builtin[0], cpu) - cpu0 >= 0.03 else ""
        ceil = f"{100 * cpu0 / cpu:.0f}%" if cpu0 and cpu > 0 else ""
        lines.append(f"| {logic} | {variant} | {size} B | {count} | {out} | {cpu:.2f} | {rss / 1024:.0f} | {vs} | {above} | {ceil} |")

    # exec_wasi: CPU per run, over many runs. Two figures from the same processes: the whole
    # process (CPU from wait4, minus an idle fluent-bit's, over the runs counted; includes
    # start-up, the compile, shutdown) and the steady state (every thread's CPU from schedstat
    # between 3 s after start and 1 s before the end, over the records flushed in that window
    # divided by the lines per run, minus an idle fluent-bit's in its window). Rounds are
    # taken round robin (idle base included) and each figure is the median of its rounds.
    dur = 8 if a.quick else 20
    if "exec" in want:
        lines += ["", f"exec_wasi: runs every 20 ms for {dur} s; median of {a.repeat} rounds taken round robin. "
                  "`whole` = (process CPU - idle fluent-bit CPU) / runs, start-up, compile and shutdown included; "
                  f"`steady` = CPU of all threads per run from 3 s to {dur - 1} s (schedstat; the idle process's subtracted), "
                  "with the idle process's CPU the least of the rounds (one noisy idle sample would otherwise skew a whole round); "
                  "split into our run thread and Fluent Bit's threads (the built-in runs on Fluent Bit's).", "",
                  "| program | plugin | runs | whole CPU s | whole ms/run | x built-in | steady ms/run | x built-in | our run thread ms/run | Fluent Bit threads ms/run | peak RSS MiB |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        progs = [("exec_hello.wasm", 3), ("exec_lines.wasm", 10_000)]
        plugins = ["exec_wasi", "exec_wasi_wasmer"]
        raw = {(p, plugin): [] for p, _ in progs for plugin in plugins}
        idle = []  # (process CPU s, ns per second in the window) of an idle fluent-bit, per round
        for _ in range(a.repeat):
            idle_cpu, _, _, iw, ta, tb = run_sampled([fb, "-i", "dummy", "-p", "rate=1", "-o", "null", "-m", "*", "-f", "0.2"], dur, 3)
            idle.append((idle_cpu, sum(iw.values()) / (tb - ta)))
            for prog, lines_per_run in progs:
                for plugin in plugins:
                    cmd = [fb] + (["-e", plug_in] if plugin.endswith("wasmer") else [])
                    cmd += ["-i", plugin, "-p", f"wasi_path={os.path.join(fx, prog)}", "-p", "interval_sec=0", "-p", "interval_nsec=20000000",
                            "-o", "counter", "-m", "*", "-f", "0.2"]
                    cpu, rss, text, w, ta, tb = run_sampled(cmd, dur, 3)
                    raw[(prog, plugin)].append((cpu, rss, counted(text) // lines_per_run, counted(text, ta, tb) / lines_per_run,
                                                w.get("flb-wasi-run", 0), sum(w.values()), tb - ta))
        idle_cpu, idle_rate = min(c for c, _ in idle), min(r for _, r in idle)
        nan = float("nan")
        per_run = {k: [] for k in raw}
        for k, rounds in raw.items():
            for cpu, rss, runs, wruns, ours_ns, all_ns, window in rounds:
                host_ns = all_ns - ours_ns - idle_rate * window
                per_run[k].append((cpu, rss, runs, (cpu - idle_cpu) / runs * 1000 if runs else nan,
                                   (ours_ns + host_ns) / wruns / 1e6 if wruns else nan,
                                   ours_ns / wruns / 1e6 if wruns else nan, host_ns / wruns / 1e6 if wruns else nan))
        for prog, _ in progs:
            b = [median([x[i] for x in per_run[(prog, "exec_wasi")]]) for i in (3, 4)]
            for plugin in plugins:
                cpu, rss, runs, whole, steady, mine, host = (median([x[i] for x in per_run[(prog, plugin)]]) for i in range(7))
                ours = plugin.endswith("wasmer")
                vs_whole = f"{b[0] / whole:.2f}" if ours and whole > 0 else ""
                vs_steady = f"{b[1] / steady:.2f}" if ours and steady > 0 else ""
                lines.append(f"| {prog} | {plugin} | {runs} | {cpu:.2f} | {whole:.2f} | {vs_whole} | {steady:.3f} | {vs_steady} | "
                             f"{mine:.3f} | {host:.3f} | {rss / 1024:.0f} |")

    # First-run cost with and without the on-disk compiled-module cache (oneshot runs), and
    # the same process without the run (our plugin loaded, a dummy input): what is above it
    # is the compile or cache load plus the run.
    if "first-run" in want:
        # `started`: the input starts (module loaded, instance made) but its first run, an
        # interval away, does not come before exit: start-up alone, without the run.
        first = {"base (plugin loaded, no run)": [], "cold (no cache)": [], "cache filled": [], "from cache": [],
                 "cold, started, no run": [], "from cache, started, no run": []}
        # Three times the rounds: a run from the cache is a few ms above the base, which one
        # noisy sample of either moves by half.
        rounds = 3 * a.repeat
        for i in range(rounds):
            cache = os.path.join(work, f"cache-{i}")  # "cache filled" must start empty
            for case in first:
                if case.startswith("base"):
                    inp_args = ["-i", "dummy", "-p", "rate=1"]
                else:
                    when = ["-p", "interval_sec=60"] if "started" in case else ["-p", "oneshot=true"]
                    inp_args = ["-i", "exec_wasi_wasmer", "-p", f"wasi_path={os.path.join(fx, 'exec_hello_c.wasm')}", *when]
                    if not case.startswith("cold"):
                        inp_args += ["-p", f"cache_dir={cache}"]
                cpu, _, wall, *_ = run(["timeout", "-s", "TERM", "2", fb, "-e", plug_in, *inp_args, "-o", "null", "-m", "*", "-f", "0.2"])
                first[case].append((cpu, wall))
        med = {case: (median([c for c, _ in v]), median([w for _, w in v])) for case, v in first.items()}
        base_cpu = med["base (plugin loaded, no run)"][0]
        lines += ["", f"First run (oneshot, whole process, median of {rounds}): cold compile vs on-disk cache.", "",
                  "| case | CPU s | CPU above base s | wall s |", "|---|---:|---:|---:|"]
        for case, (cpu, wall) in med.items():
            lines.append(f"| {case} | {cpu:.3f} | {cpu - base_cpu:.3f} | {wall:.2f} |")
        cold, cached = med["cold (no cache)"][0] - base_cpu, med["from cache"][0] - base_cpu
        if cached > 0:
            lines += ["", f"From cache vs cold, whole process: {med['cold (no cache)'][0] / med['from cache'][0]:.1f}x; above the base: {cold / cached:.1f}x."]
        cold, cached = med["cold, started, no run"][0] - base_cpu, med["from cache, started, no run"][0] - base_cpu
        if cached > 0:
            lines += [f"Start-up alone (no run), above the base: {cold / cached:.1f}x."]

    # Start-up: an empty tail with exit_on_eof, with and without our plugins.
    empty = os.path.join(work, "empty.log")
    open(empty, "w").close()
    if "start-up" in want:
        lines += ["", "Start-up and exit of fluent-bit (empty tail, exit_on_eof), median of 5.", "", "| case | CPU s | wall s | peak RSS MiB |", "|---|---:|---:|---:|"]
    for case, extra in ([("without our plugins", []), ("with both plugins loaded", ["-e", plug_in, "-e", plug_f])] if "start-up" in want else []):
        samples = sorted(run([fb, *extra, "-i", "tail", "-p", f"path={empty}", "-p", "read_from_head=true", "-p", "exit_on_eof=true", "-o", "null", "-m", "*"])[:3] for _ in range(5))
        cpu, rss, wall = samples[2]
        lines.append(f"| {case} | {cpu:.3f} | {wall:.2f} | {rss / 1024:.0f} |")

    # Compiler choice: the same filter pipeline with each compiler, and with no records (what
    # is left is start-up, i.e. mostly the compile). The guest is the Rust SDK example (JSON,
    # a substring search and a formatted copy per record).
    if "compiler" in want:
        lines += ["", f"Compiler: our filter (JSON, Rust SDK example `rust_add_field`) with each wasmer compiler; CPU s of the whole",
                  f"process, median of {a.repeat} rounds taken round robin; `no records` is start-up and exit (mostly the compile).", "",
                  "| records | cranelift CPU s | singlepass CPU s | singlepass / cranelift |", "|---|---:|---:|---:|"]
        cases = [("no records", 0, 0)] + [(f"{kib} KiB x {n}", kib * 1024, n) for kib, n in [(1, int(100_000 * scale)), (16, int(8_000 * scale))]]
        got = {(c, comp): [] for c, _, _ in cases for comp in ["cranelift", "singlepass"]}
        for _ in range(a.repeat):
            for case, size, count in cases:
                path = os.path.join(work, f"compiler-{size}.jsonl")
                if not os.path.exists(path):
                    make_input(path, size, count)
                for comp in ["cranelift", "singlepass"]:
                    fargs = wasm("wasm_wasmer", "rust_add_field_wasi.wasm", "rust_add_field", "json", ["-p", f"compiler={comp}"])
                    got[(case, comp)].append(run(pipeline(path, fargs))[0])
        for case, _, _ in cases:
            c, sp = median(got[(case, "cranelift")]), median(got[(case, "singlepass")])
            lines.append(f"| {case} | {c:.3f} | {sp:.3f} | {sp / c:.2f} |")

    # Instruction counts (callgrind) of whole fluent-bit runs: repeatable where CPU seconds are
    # not. The built-in cannot take part (WAMR dies with SIGILL under valgrind), so this
    # compares ours with Lua and no filter. Per record = (run - the same run on an empty
    # file) / records, so start-up (the module's compile) is left out.
    if "instructions" in want:
        # glibc copies and fills of 2 KiB or more with `rep movsb`/`rep stosb`, which valgrind
        # counts once per byte (a 16 KiB memcpy: 16,383 instructions; about 1,700 as the
        # vector loop it is in cost). Make glibc use the loop so large copies count fairly.
        vector_copies = dict(os.environ, GLIBC_TUNABLES="glibc.cpu.x86_rep_movsb_threshold=1000000000:glibc.cpu.x86_rep_stosb_threshold=1000000000")
        def instructions(fargs, path):
            _, _, _, text, code = run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *pipeline(path, fargs)], env=vector_copies)
            m = re.search(r"Collected : (\d+)", text)
            if code != 0 or not m:
                sys.exit(f"bench: callgrind run failed ({code})\n{text[-2000:]}")
            return int(m.group(1)), counted(text)

        isizes = [(100, int(20_000 * scale)), (1024, int(5_000 * scale)), (16384, int(500 * scale))]
        icases = [("no filter", "-", [])] + [(logic, v, fargs) for logic, vs in logics.items() for v, fargs in vs.items() if not v.startswith("builtin")]
        startup = {(logic, v): instructions(fargs, empty)[0] for logic, v, fargs in icases}
        per = {}
        for size, count in isizes:
            path = os.path.join(work, f"instructions-{size}.jsonl")
            make_input(path, size, count)
            for logic, v, fargs in icases:
                ir, n = instructions(fargs, path)
                per[(logic, v, size)] = ((ir - startup[(logic, v)]) / count, n)
            print(f"  instructions, {size} B x {count}: done", file=sys.stderr)
        lines += ["", "Instructions (callgrind, whole fluent-bit process) per record, start-up left out; `Lua / this` > 1: fewer",
                  "than Lua for the same edit; `% ceiling` = no filter / this. One run each (three runs of one case agreed within 0.02 %); glibc's",
                  "large copies counted as its vector loop, not per byte of `rep movsb`. "
                  + ", ".join(f"{s} B x {c}" for s, c in isizes) + " records.", "",
                  "| logic | variant | " + " | ".join(f"{s} B Ir/record | Lua / this | % ceiling" for s, _ in isizes) + " |",
                  "|---|---|" + "---:|---:|---:|" * len(isizes)]
        for logic, v, _ in icases:
            cells = []
            for size, count in isizes:
                ir, n = per[(logic, v, size)]
                lua = per.get((logic, "lua", size), (None,))[0]
                ceil = per[("no filter", "-", size)][0]
                expect = count // 2 if logic == "drop half" else count
                lost = "" if n == expect else f" (**{n} of {expect} out**)"
                cells += [f"{ir:,.0f}{lost}", f"{lua / ir:.2f}" if lua and v != "lua" else "", f"{100 * ceil / ir:.0f}%" if logic != "no filter" else ""]
            lines.append(f"| {logic} | {v} | " + " | ".join(cells) + " |")

    table = "\n".join(lines) + "\n"
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write(table)
        print(f"bench: written to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
