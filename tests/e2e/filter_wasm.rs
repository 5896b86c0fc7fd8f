//! wasm_wasmer inside a real fluent-bit, side by side with the built-in `wasm` filter on the
//! same host, module and input.

use e2e::fixtures::fixture;
use e2e::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Which filter a pipeline runs.
#[derive(Clone, Copy, PartialEq)]
enum Which {
    Ours,
    Builtin,
}

/// Feeds `records` (one JSON object per line) through `tail` + the filter + stdout, and
/// exits at the end of the file.
fn pipeline(host: &Host, which: Which, records: &[Value], filter_props: &[(&str, String)]) -> Run {
    let dir = scratch_dir("filter");
    let input: String = records.iter().map(|r| format!("{r}\n")).collect();
    let file = write_file(&dir, "in.jsonl", input);
    let parsers = write_file(&dir, "parsers.conf", "[PARSER]\n    name json\n    format json\n");
    let p = plugins();
    let name = match which {
        Which::Ours => "wasm_wasmer",
        Which::Builtin => "wasm",
    };
    let mut args: Vec<String> = vec!["-R".into(), parsers.display().to_string()];
    if which == Which::Ours {
        args.extend(["-e".into(), p.filter.display().to_string()]);
    }
    let path = format!("path={}", file.display());
    args.extend(
        [
            "-i", "tail", "-p", &path, "-p", "parser=json", "-p", "read_from_head=true", "-p", "exit_on_eof=true",
            "-p", "buffer_chunk_size=2M", "-p", "buffer_max_size=4M", "-t", "t", "-F", name, "-m", "*",
        ]
        .map(String::from),
    );
    for (k, v) in filter_props {
        args.extend(["-p".into(), format!("{k}={v}")]);
    }
    args.extend(["-o", "stdout", "-p", "format=json_lines", "-m", "*", "-f", "0.2"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(host, &args, Duration::from_secs(15))
}

fn props(wasm: &str, function: &str, format: &str) -> Vec<(&'static str, String)> {
    vec![
        ("wasm_path", fixture(wasm).display().to_string()),
        ("function_name", function.to_owned()),
        ("event_format", format.to_owned()),
    ]
}

fn sample() -> Vec<Value> {
    vec![
        json!({"msg": "one", "n": 1}),
        json!({"msg": "two", "drop": true}),
        json!({"msg": "thr\"ee", "nested": {"a": [1, 2.5, null, false]}, "u": "é✓"}),
        json!({"n": 0, "drop": false}),
    ]
}

fn same_output_as_the_builtin(host: &Host) -> Result<(), Failed> {
    let cases = [
        ("filter_add_field.wasm", "add_field", "json"),
        ("filter_drop.wasm", "drop_some", "json"),
        ("filter_identity.wasm", "filter", "json"),
        // Built like the built-in's C example: libc imported from the host (env.*).
        ("filter_libc_env.wasm", "libc_filter", "json"),
        // Rust on the guest SDK, both targets.
        ("rust_add_field_unknown.wasm", "rust_add_field", "json"),
        ("rust_add_field_wasi.wasm", "rust_add_field", "json"),
        // AssemblyScript (records placed with __new/__pin/__unpin).
        ("as_add_field.wasm", "as_add_field", "json"),
        // Zig, no malloc/free exported (records placed in a host region).
        ("zig_add_field.wasm", "zig_add_field", "json"),
    ];
    for (wasm, function, format) in cases {
        let pr = props(wasm, function, format);
        let a = pipeline(host, Which::Ours, &sample(), &pr);
        let b = pipeline(host, Which::Builtin, &sample(), &pr);
        a.assert_no_crash()?;
        check(!a.bodies().is_empty(), format!("{wasm}: no records from ours"), &a)?;
        if let Some(e) = b.builtin_load_failure() {
            // Ours is still checked against what the guest means to do, below.
            eprintln!("  NOT COMPARED: the built-in of {} cannot load {wasm}: {e}", host.version);
            continue;
        }
        check(a.bodies() == b.bodies(), format!("{wasm} {format}: ours {:?}\nbuilt-in {:?}", a.bodies(), b.bodies()), &a)?;
    }
    // And what the guests are meant to do, so the comparison is not vacuous.
    let same = pipeline(host, Which::Ours, &sample(), &props("filter_identity.wasm", "filter", "json"));
    check(same.bodies() == sample(), format!("identity changed the records: {:?}", same.bodies()), &same)?;
    let added = pipeline(host, Which::Ours, &sample(), &props("filter_add_field.wasm", "add_field", "json"));
    check(added.bodies().iter().all(|b| b["wasm"] == "yes") && added.bodies().len() == 4, "add_field did not add", &added)?;
    for (wasm, function, key) in [("rust_add_field_unknown.wasm", "rust_add_field", "rust"), ("rust_add_field_wasi.wasm", "rust_add_field", "rust"), ("as_add_field.wasm", "as_add_field", "as"), ("zig_add_field.wasm", "zig_add_field", "zig")] {
        let r = pipeline(host, Which::Ours, &sample(), &props(wasm, function, "json"));
        check(r.bodies().len() == 4 && r.bodies().iter().all(|b| b[key] == "yes"), format!("{wasm}: {:?}", r.bodies()), &r)?;
    }
    let libc = pipeline(host, Which::Ours, &sample(), &props("filter_libc_env.wasm", "libc_filter", "json"));
    let first = libc.bodies().first().cloned().unwrap_or_default();
    check(first["fmt"] == "   42|ab |ff|1234567890123|2.50" && first["tag"] == "t" && first["original"] == sample()[0], format!("env.sprintf gave {first}"), &libc)?;
    let dropped = pipeline(host, Which::Ours, &sample(), &props("filter_drop.wasm", "drop_some", "json"));
    check(dropped.bodies().len() == 3, format!("drop_some kept {}", dropped.bodies().len()), &dropped)?;
    // The same logic in msgpack mode (the benchmark's guest): an empty result drops.
    let dropped_mp = pipeline(host, Which::Ours, &sample(), &props("filter_msgpack_drop.wasm", "drop_some_mp", "msgpack"));
    check(dropped_mp.bodies() == dropped.bodies(), format!("drop_some_mp: {:?}", dropped_mp.bodies()), &dropped_mp)
}

fn msgpack_results_keep_zero_bytes(host: &Host) -> Result<(), Failed> {
    // The guest returns {"a":0,"b":"x","big":256}: its encoding holds zero bytes.
    let r = pipeline(host, Which::Ours, &sample(), &props("filter_msgpack_set.wasm", "set_fields", "msgpack"));
    r.assert_no_crash()?;
    let want = vec![json!({"a": 0, "b": "x", "big": 256}); 4];
    check(r.bodies() == want, format!("ours: {:?}", r.bodies()), &r)?;
    // Identity in msgpack mode over records with integer 0 and a long string (str16 length
    // bytes contain zeros).
    let long = "x".repeat(300);
    let recs = vec![json!({"zero": 0, "long": long}), json!({"k": 0, "m": {"z": 0}})];
    let r = pipeline(host, Which::Ours, &recs, &props("filter_identity.wasm", "filter", "msgpack"));
    check(r.bodies() == recs, format!("identity in msgpack mode changed records: {:?}", r.bodies()), &r)?;
    let b = pipeline(host, Which::Builtin, &sample(), &props("filter_msgpack_set.wasm", "set_fields", "msgpack"));
    eprintln!("  (built-in msgpack filter, same guest: {} of 4 records out)", b.bodies().len());
    Ok(())
}

fn one_mib_record_passes(host: &Host) -> Result<(), Failed> {
    let big = "y".repeat(1 << 20);
    let recs = vec![json!({"small": 1}), json!({"big": big}), json!({"small": 2})];
    for (wasm, function) in [("filter_add_field.wasm", "add_field"), ("filter_identity.wasm", "filter")] {
        let r = pipeline(host, Which::Ours, &recs, &props(wasm, function, "json"));
        r.assert_no_crash()?;
        let bodies = r.bodies();
        check(bodies.len() == 3, format!("{wasm}: {} of 3 records", bodies.len()), &r)?;
        check(bodies[1]["big"].as_str().map(str::len) == Some(1 << 20), format!("{wasm}: the 1 MiB field did not survive"), &r)?;
    }
    Ok(())
}

fn faults_affect_only_their_record(host: &Host) -> Result<(), Failed> {
    let recs: Vec<Value> =
        ["ok1", "boom", "ok2", "loop", "garbage", "array", "divzero", "ok3"].iter().map(|w| json!({"w": w})).collect();
    let mut pr = props("filter_faults.wasm", "faulty", "json");
    let keep = pipeline(host, Which::Ours, &recs, &pr);
    keep.assert_no_crash()?;
    check(keep.bodies() == recs, format!("on_error keep: {:?}", keep.bodies()), &keep)?;
    for needle in ["trapped", "time limit", "errors 5"] {
        check(keep.log().contains(needle), format!("no line mentioning '{needle}'"), &keep)?;
    }
    // One at a time, so the per-second rate limit does not hide the messages.
    for (w, needle) in [
        ("garbage", "outside its memory"),
        ("array", "not an object"),
        ("divzero", "division by zero"),
        ("oob", "out-of-bounds"),
        // C's stack lives in linear memory: running off its end is an out-of-bounds access.
        ("stack", "out-of-bounds"),
        ("exit", "proc_exit(3)"),
        ("grow", "null pointer"),
    ] {
        let one = pipeline(host, Which::Ours, &[json!({"w": w})], &pr);
        check(one.bodies() == [json!({"w": w})] && one.log().contains(needle), format!("{w}: no error line mentioning '{needle}'"), &one)?;
    }
    pr.push(("on_error", "drop".into()));
    let drop = pipeline(host, Which::Ours, &recs, &pr);
    drop.assert_no_crash()?;
    let want: Vec<Value> = ["ok1", "ok2", "ok3"].iter().map(|w| json!({"w": w})).collect();
    check(drop.bodies() == want, format!("on_error drop: {:?}", drop.bodies()), &drop)
}

fn errors_are_rate_limited(host: &Host) -> Result<(), Failed> {
    let recs: Vec<Value> = (0..500).map(|i| json!({"w": "boom", "i": i})).collect();
    let r = pipeline(host, Which::Ours, &recs, &props("filter_faults.wasm", "faulty", "json"));
    r.assert_no_crash()?;
    check(r.bodies().len() == 500, format!("{} of 500 records", r.bodies().len()), &r)?;
    let lines = r.log().lines().filter(|l| l.contains("trapped")).count();
    check((1..=20).contains(&lines), format!("{lines} error lines for 500 traps"), &r)
}

fn bad_configuration_fails_cleanly(host: &Host) -> Result<(), Failed> {
    let dir = scratch_dir("badcfg");
    let not_wasm = write_file(&dir, "x.wasm", "not wasm at all");
    let aot = write_file(&dir, "m.aot", b"\0aot\x03\0\0\0rest of a WAMR AOT file");
    let imports = write_file(&dir, "imports.wat", r#"(module (import "env" "host_log" (func (param i32))) (memory (export "memory") 1)
        (func (export "f") (param i32 i32 i32 i32 i32 i32) (result i32) local.get 4))"#);
    let signature = write_file(&dir, "sig.wat", r#"(module (memory (export "memory") 1) (func (export "f") (param i32) (result i32) local.get 0))"#);
    let at = |p: &std::path::Path| vec![("wasm_path", p.display().to_string()), ("function_name", "f".to_string())];
    let with = |extra: (&'static str, &str)| {
        let mut v = props("filter_identity.wasm", "filter", "json");
        v.push((extra.0, extra.1.to_string()));
        v
    };
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("wasm_path", "/nonexistent.wasm".into()), ("function_name", "f".into())], "wasm_path"),
        (vec![("wasm_path", not_wasm.display().to_string()), ("function_name", "f".into())], "x.wasm"),
        (at(&aot), "WAMR AOT"),
        (at(&imports), "env.host_log"),
        (at(&signature), "signature"),
        (with(("memory_limit", "1k")), "memory_limit"),
        (with(("memory_limit", "-5")), "memory_limit"),
        (with(("timeout", "soon")), "timeout"),
        (with(("accessible_paths", "/nonexistent-dir")), "accessible_paths"),
        (props("filter_identity.wasm", "nosuch", "json"), "nosuch"),
        (props("filter_identity.wasm", "filter", "yaml"), "event_format"),
        (vec![("wasm_path", fixture("filter_identity.wasm").display().to_string()), ("function_name", "filter".into()), ("on_error", "maybe".into())], "on_error"),
    ];
    for (pr, needle) in cases {
        let r = pipeline(host, Which::Ours, &sample(), &pr);
        r.assert_no_crash()?;
        check(r.failed_cleanly(), format!("{needle}: expected a clean non-zero exit"), &r)?;
        check(r.log().lines().any(|l| l.contains("wasm_wasmer") && l.contains(needle)), format!("no error line naming the instance and '{needle}'"), &r)?;
    }
    Ok(())
}

fn works_as_a_yaml_processor(host: &Host) -> Result<(), Failed> {
    let dir = scratch_dir("processor");
    let p = plugins();
    let yaml = format!(
        "service:\n  flush: 0.2\n  grace: 1\nplugins:\n  - {}\npipeline:\n  inputs:\n    - name: dummy\n      dummy: '{{\"msg\":\"hi\"}}'\n      samples: 3\n      tag: d\n      processors:\n        logs:\n          - name: wasm_wasmer\n            wasm_path: {}\n            function_name: add_field\n  outputs:\n    - name: stdout\n      match: '*'\n      format: json_lines\n      processors:\n        logs:\n          - name: wasm_wasmer\n            wasm_path: {}\n            function_name: set_fields\n            event_format: msgpack\n",
        p.filter.display(),
        fixture("filter_add_field.wasm").display(),
        fixture("filter_msgpack_set.wasm").display()
    );
    let cfg = write_file(&dir, "fluent-bit.yaml", yaml);
    let r = run(host, &["-c", cfg.to_str().unwrap()], Duration::from_secs(4));
    r.assert_no_crash()?;
    let bodies = r.bodies();
    check(bodies.len() == 3, format!("{} records", bodies.len()), &r)?;
    check(bodies.iter().all(|b| *b == json!({"a": 0, "b": "x", "big": 256})), format!("{bodies:?}"), &r)
}

fn several_instances(host: &Host) -> Result<(), Failed> {
    // Two instances of ours in one pipeline: add a field, then drop by content.
    let dir = scratch_dir("multi");
    let file = write_file(&dir, "in.jsonl", sample().iter().map(|r| format!("{r}\n")).collect::<String>());
    let parsers = write_file(&dir, "parsers.conf", "[PARSER]\n    name json\n    format json\n");
    let p = plugins();
    let a = format!("wasm_path={}", fixture("filter_add_field.wasm").display());
    let b = format!("wasm_path={}", fixture("filter_drop.wasm").display());
    let path = format!("path={}", file.display());
    let args = [
        "-R", parsers.to_str().unwrap(), "-e", p.filter.to_str().unwrap(),
        "-i", "tail", "-p", &path, "-p", "parser=json", "-p", "read_from_head=true", "-p", "exit_on_eof=true", "-t", "t",
        "-F", "wasm_wasmer", "-m", "*", "-p", &a, "-p", "function_name=add_field",
        "-F", "wasm_wasmer", "-m", "*", "-p", &b, "-p", "function_name=drop_some",
        "-o", "stdout", "-p", "format=json_lines", "-m", "*", "-f", "0.2",
    ];
    let r = run(host, &args, Duration::from_secs(10));
    r.assert_no_crash()?;
    let bodies = r.bodies();
    check(bodies.len() == 3 && bodies.iter().all(|b| b["wasm"] == "yes"), format!("{bodies:?}"), &r)
}

/// The CLI runs the plugin's own filter code: same output for the shipped example, in JSON
/// and msgpack modes.
fn cli_output_matches_the_plugin(host: &Host) -> Result<(), Failed> {
    let repo = std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("..");
    let dir = scratch_dir("cli");
    let wasm = dir.join("redact.wasm");
    let st = std::process::Command::new("clang")
        .args(["--target=wasm32-wasi", "-O2", "-mexec-model=reactor"])
        .arg(repo.join("examples/c/redact.c"))
        .arg("-o")
        .arg(&wasm)
        .status()?;
    if !st.success() {
        return Err("clang failed on examples/c/redact.c".into());
    }
    let records: Vec<Value> = std::fs::read_to_string(repo.join("examples/records.jsonl"))?.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let cli = target_profile_dir().join("flb-wasm");
    let cases = [
        (wasm.clone(), "redact", "json"),
        // The guest SDKs' examples (Rust SDK, AssemblyScript) in both modes.
        (fixture("rust_add_field_unknown.wasm"), "rust_add_field", "json"),
        (fixture("rust_add_field_wasi.wasm"), "rust_add_field", "msgpack"),
        (fixture("as_add_field.wasm"), "as_add_field", "json"),
        (fixture("filter_msgpack_set.wasm"), "set_fields", "msgpack"),
        (fixture("filter_msgpack_add.wasm"), "add_field_mp", "msgpack"),
        (fixture("filter_identity.wasm"), "filter", "msgpack"),
    ];
    for (module, function, format) in cases {
        let pr = vec![("wasm_path", module.display().to_string()), ("function_name", function.to_owned()), ("event_format", format.to_owned())];
        let plugin = pipeline(host, Which::Ours, &records, &pr);
        plugin.assert_no_crash()?;
        let out = std::process::Command::new(&cli)
            .arg("filter")
            .arg(&module)
            .args(["--function", function, "--event-format", format, "--input"])
            .arg(repo.join("examples/records.jsonl"))
            .output()?;
        let from_cli: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        check(!from_cli.is_empty() && from_cli == plugin.bodies(), format!("{function}: CLI {from_cli:?}\nplugin {:?}", plugin.bodies()), &plugin)?;
    }
    Ok(())
}

/// Extended ABI, first part: per-instance configuration (`flb_init`) and guest logging
/// (`flb.log`) into the host's log with the instance name.
fn module_config_and_guest_logging(host: &Host) -> Result<(), Failed> {
    let mut pr = props("filter_config.wasm", "add_configured", "json");
    pr.push(("config", "env=prod".into()));
    let r = pipeline(host, Which::Ours, &sample(), &pr);
    r.assert_no_crash()?;
    check(r.bodies().len() == 4 && r.bodies().iter().all(|b| b["env"] == "prod"), format!("{:?}", r.bodies()), &r)?;
    let logged = r.log().lines().any(|l| l.contains("[ warn]") && l.contains("[filter:wasm_wasmer:wasm_wasmer.0]") && l.contains("configured: env=prod"));
    check(logged, "the guest's warn line is not in the log with the instance name", &r)?;
    // From a file.
    let dir = scratch_dir("config");
    let file = write_file(&dir, "module.conf", "team=ops");
    let mut pr = props("filter_config.wasm", "add_configured", "json");
    pr.push(("config_file", file.display().to_string()));
    let r = pipeline(host, Which::Ours, &sample(), &pr);
    check(r.bodies().iter().all(|b| b["team"] == "ops") && r.bodies().len() == 4, format!("config_file: {:?}", r.bodies()), &r)?;
    // Refused by the module: its reason and ours, a clean failure.
    let mut pr = props("filter_config.wasm", "add_configured", "json");
    pr.push(("config", "nonsense".into()));
    let r = pipeline(host, Which::Ours, &sample(), &pr);
    r.assert_no_crash()?;
    check(r.failed_cleanly(), "a refused configuration must stop the start-up", &r)?;
    check(r.log().contains("config must be KEY=VALUE") && r.log().contains("refused its configuration"), "no lines saying why", &r)?;
    // The same through the Rust SDK (init!, log, events!): each whole event twice.
    let mut pr = props("rust_events_split.wasm", "rust_split", "json");
    pr.push(("config", "copies=2".into()));
    let r = pipeline(host, Which::Ours, &sample(), &pr);
    let want: Vec<Value> = sample().into_iter().flat_map(|b| [b.clone(), b]).collect();
    check(r.bodies() == want, format!("Rust SDK split: {:?}", r.bodies()), &r)?;
    check(r.log().lines().any(|l| l.contains("[ warn]") && l.contains("rust guest: 2 copies")), "no warn line from the Rust guest", &r)?;
    let mut pr = props("rust_events_split.wasm", "rust_split", "json");
    pr.push(("config", "copies=many".into()));
    let r = pipeline(host, Which::Ours, &sample(), &pr);
    check(r.failed_cleanly() && r.log().contains("config must be copies=1..9"), "the Rust guest's refusal", &r)?;
    // A module without flb_init cannot take a config.
    let mut pr = props("filter_identity.wasm", "filter", "json");
    pr.push(("config", "x=y".into()));
    let r = pipeline(host, Which::Ours, &sample(), &pr);
    check(r.failed_cleanly() && r.log().contains("property 'config'"), "config without flb_init was accepted", &r)
}

/// Extended ABI, whole events: one event in, 0..N events out, timestamps and metadata
/// under the guest's control; malformed output loses nothing under `on_error keep`.
fn extended_event_abi(host: &Host) -> Result<(), Failed> {
    let run_fn = |function: &str, json_lines: bool| {
        let dir = scratch_dir("events");
        let file = write_file(&dir, "in.jsonl", sample().iter().map(|r| format!("{r}\n")).collect::<String>());
        let parsers = write_file(&dir, "parsers.conf", "[PARSER]\n    name json\n    format json\n");
        let (p, wasm) = (plugins(), format!("wasm_path={}", fixture("filter_events.wasm").display()));
        let (path, func) = (format!("path={}", file.display()), format!("function_name={function}"));
        let mut args = vec![
            "-R", parsers.to_str().unwrap(), "-e", p.filter.to_str().unwrap(),
            "-i", "tail", "-p", &path, "-p", "parser=json", "-p", "read_from_head=true", "-p", "exit_on_eof=true", "-t", "t",
            "-F", "wasm_wasmer", "-m", "*", "-p", &wasm, "-p", &func, "-o", "stdout", "-m", "*", "-f", "0.2",
        ];
        if json_lines {
            args.extend(["-p", "format=json_lines"]);
        }
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(host, &args, Duration::from_secs(10))
    };
    let r = run_fn("split3", true);
    r.assert_no_crash()?;
    let want: Vec<Value> = sample().into_iter().flat_map(|b| [b.clone(), b.clone(), b]).collect();
    check(r.bodies() == want, format!("split3: {:?}", r.bodies()), &r)?;
    let r = run_fn("retime", true);
    let dates: Vec<f64> = r.json_records().iter().filter_map(|v| v["date"].as_f64()).collect();
    check(dates.len() == 4 && dates.iter().all(|d| (d - 1_700_000_000.123_456_789).abs() < 1e-5), format!("retime: {dates:?}"), &r)?;
    let r = run_fn("add_meta", false);
    let with_meta = r.stdout.lines().filter(|l| l.contains("{\"k\"=>\"v\"}")).count();
    check(with_meta == 4, format!("add_meta: {with_meta} of 4 records carry the new metadata"), &r)?;
    let r = run_fn("drop_all", true);
    check(r.bodies().is_empty() && r.code() == Some(0), "drop_all kept records", &r)?;
    let r = run_fn("bad", true);
    r.assert_no_crash()?;
    check(r.bodies() == sample() && r.log().contains("bad guest result"), "malformed output must keep the records (on_error keep)", &r)
}

/// Extended ABI, batch (`flb_abi_version() == 2`): one call per run of records; the batch
/// form of msgpack add-field gives exactly the per-record form's output; malformed batch
/// output loses nothing under `on_error keep`.
fn batch_call_equals_per_record(host: &Host) -> Result<(), Failed> {
    let mut recs = sample();
    recs.extend((0..200).map(|i| json!({"i": i, "zero": 0, "s": "x".repeat(i % 40)})));
    let per_record = pipeline(host, Which::Ours, &recs, &props("filter_msgpack_add.wasm", "add_field_mp", "msgpack"));
    let batch = pipeline(host, Which::Ours, &recs, &props("filter_batch.wasm", "add_field_batch", "msgpack"));
    batch.assert_no_crash()?;
    check(per_record.bodies().len() == recs.len() && per_record.bodies().iter().all(|b| b["wasm"] == "yes"), "per-record form did not add", &per_record)?;
    check(batch.bodies() == per_record.bodies(), format!("batch {} records vs per-record {}", batch.bodies().len(), per_record.bodies().len()), &batch)?;
    // The same on the Rust SDK's batch call and msgpack reader.
    let rust = pipeline(host, Which::Ours, &recs, &props("rust_batch_add_field.wasm", "add_field_batch_rs", "msgpack"));
    check(rust.bodies() == per_record.bodies(), format!("Rust SDK batch {} records vs per-record {}", rust.bodies().len(), per_record.bodies().len()), &rust)?;
    let bad = pipeline(host, Which::Ours, &recs, &props("filter_batch.wasm", "bad_batch", "msgpack"));
    bad.assert_no_crash()?;
    check(bad.bodies() == recs && bad.log().contains("bad guest result"), "malformed batch output must keep every record", &bad)
}

fn main() {
    let args = Arguments::from_args();
    let cases: &[(&'static str, fn(&Host) -> Result<(), Failed>)] = &[
        ("same_output_as_the_builtin", same_output_as_the_builtin),
        ("msgpack_results_keep_zero_bytes", msgpack_results_keep_zero_bytes),
        ("one_mib_record_passes", one_mib_record_passes),
        ("faults_affect_only_their_record", faults_affect_only_their_record),
        ("errors_are_rate_limited", errors_are_rate_limited),
        ("bad_configuration_fails_cleanly", bad_configuration_fails_cleanly),
        ("works_as_a_yaml_processor", works_as_a_yaml_processor),
        ("several_instances", several_instances),
        ("cli_output_matches_the_plugin", cli_output_matches_the_plugin),
        ("module_config_and_guest_logging", module_config_and_guest_logging),
        ("extended_event_abi", extended_event_abi),
        ("batch_call_equals_per_record", batch_call_equals_per_record),
    ];
    libtest_mimic::run(&args, trials_per_host("filter_wasm", cases)).exit();
}
