//! Foundation: both plugins load into a real fluent-bit through every loading route, print
//! their help, validate their properties, and the filter's chunk path keeps data intact.

use e2e::fixtures::fixture;
use e2e::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const QUICK: Duration = Duration::from_secs(20);

fn help_lists_our_properties(host: &Host) -> Result<(), Failed> {
    let p = plugins();
    let f = run(host, &["-e", p.filter.to_str().unwrap(), "-F", "wasm_wasmer", "-h"], QUICK);
    for prop in ["wasm_path", "function_name", "event_format", "accessible_paths", "wasm_heap_size"] {
        check(f.stdout.contains(prop), format!("filter help lacks {prop}"), &f)?;
    }
    check(f.stdout.contains("WASM program filter (wasmer)"), "filter help lacks the description", &f)?;
    let i = run(host, &["-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-h"], QUICK);
    for prop in ["wasi_path", "accessible_paths", "parser", "interval_sec", "interval_nsec", "buf_size", "oneshot"] {
        check(i.stdout.contains(prop), format!("input help lacks {prop}"), &i)?;
    }
    Ok(())
}

fn unknown_property_is_refused_by_the_host(host: &Host) -> Result<(), Failed> {
    let p = plugins();
    let f = run(host, &["-e", p.filter.to_str().unwrap(), "-i", "dummy", "-F", "wasm_wasmer", "-m", "*", "-p", "bogus_prop=1", "-o", "null"], QUICK);
    f.assert_no_crash()?;
    check(!f.timed_out && f.code().is_some_and(|c| c != 0), "expected a non-zero exit", &f)?;
    check(f.log().contains("unknown configuration property 'bogus_prop'"), "no unknown-property error", &f)?;
    let i = run(host, &["-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-p", "bogus_prop=1", "-o", "null"], QUICK);
    i.assert_no_crash()?;
    check(!i.timed_out && i.code().is_some_and(|c| c != 0), "expected a non-zero exit", &i)?;
    check(i.log().contains("bogus_prop"), "no unknown-property error", &i)
}

fn missing_required_property_names_it(host: &Host) -> Result<(), Failed> {
    let p = plugins();
    let f = run(host, &["-e", p.filter.to_str().unwrap(), "-i", "dummy", "-F", "wasm_wasmer", "-m", "*", "-p", "function_name=f", "-o", "null"], QUICK);
    f.assert_no_crash()?;
    check(!f.timed_out && f.code().is_some_and(|c| c != 0), "expected a non-zero exit", &f)?;
    check(f.log().contains("[filter:wasm_wasmer:wasm_wasmer.0] property 'wasm_path' is required"), "no error naming wasm_path", &f)?;
    let i = run(host, &["-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-o", "null"], QUICK);
    i.assert_no_crash()?;
    check(!i.timed_out && i.code().is_some_and(|c| c != 0), "expected a non-zero exit", &i)?;
    check(i.log().contains("[input:exec_wasi_wasmer:exec_wasi_wasmer.0] property 'wasi_path' is required"), "no error naming wasi_path", &i)
}

fn invalid_property_value_names_it(host: &Host) -> Result<(), Failed> {
    let p = plugins();
    let wp = format!("wasi_path={}", fixture("exec_hello.wasm").display());
    let i = run(host, &["-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-p", &wp, "-p", "interval_sec=soon", "-o", "null"], QUICK);
    i.assert_no_crash()?;
    check(!i.timed_out && i.code().is_some_and(|c| c != 0), "expected a non-zero exit", &i)?;
    check(i.log().contains("property 'interval_sec': invalid value 'soon'"), "no error naming interval_sec", &i)
}

/// Sends one OTLP/JSON logs request with two resource groups, metadata and attributes.
fn post_otlp(port: u16) -> Result<(), String> {
    let body = r#"{"resourceLogs":[
      {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc-a"}}]},
       "scopeLogs":[{"scope":{"name":"scope-a","version":"1"},
         "logRecords":[
           {"timeUnixNano":"1700000000123456789","severityText":"INFO","body":{"stringValue":"first"},
            "attributes":[{"key":"n","value":{"intValue":"0"}},{"key":"s","value":{"stringValue":"x"}}]},
           {"timeUnixNano":"1700000001000000001","severityNumber":13,"body":{"stringValue":"second"},
            "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]},
      {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc-b"}}]},
       "scopeLogs":[{"scope":{"name":"scope-b"},
         "logRecords":[{"timeUnixNano":"1700000002000000000","body":{"kvlistValue":{"values":[{"key":"k","value":{"doubleValue":1.5}}]}}}]}]}]}"#;
    let mut last = String::new();
    for _ in 0..100 {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut s) => {
                let req = format!(
                    "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
                s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
                let mut resp = String::new();
                let _ = s.read_to_string(&mut resp);
                return if resp.starts_with("HTTP/1.1 20") { Ok(()) } else { Err(format!("OTLP endpoint answered: {resp}")) };
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("cannot connect to the opentelemetry input: {last}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs an opentelemetry input -> [our filter] -> file (raw msgpack) and returns the bytes.
fn otlp_through(host: &Host, with_filter: bool) -> Result<Vec<u8>, Failed> {
    otlp_through_filter(host, with_filter.then_some(("filter_identity.wasm", "filter")), false)
}

/// As [`otlp_through`], with the filter module and function given.
/// With `may_be_empty`, a run whose records were all dropped may leave no output at all.
fn otlp_through_filter(host: &Host, filter: Option<(&str, &str)>, may_be_empty: bool) -> Result<Vec<u8>, Failed> {
    let p = plugins();
    let dir = scratch_dir("otlp");
    let port = free_port();
    let filter = match filter {
        Some((wasm, function)) => format!(
            "  filters:\n    - name: wasm_wasmer\n      match: '*'\n      wasm_path: {}\n      function_name: {function}\n      event_format: msgpack\n",
            fixture(wasm).display()
        ),
        None => String::new(),
    };
    let conf = format!(
        "service:\n  flush: 0.2\n  grace: 1\nplugins:\n  - {}\npipeline:\n  inputs:\n    - name: opentelemetry\n      listen: 127.0.0.1\n      port: {port}\n      tag: otel\n{filter}  outputs:\n    - name: file\n      match: '*'\n      path: {}\n      file: out.msgpack\n      format: msgpack\n",
        p.filter.display(),
        dir.display()
    );
    let conf_path = write_file(&dir, "fluent-bit.yaml", conf);
    let host2 = host.clone();
    let runner = std::thread::spawn(move || run(&host2, &["-c", conf_path.to_str().unwrap()], Duration::from_secs(6)));
    let posted = post_otlp(port);
    let r = runner.join().unwrap();
    r.assert_no_crash()?;
    posted.map_err(|e| format!("{e}\n{}", r.log()))?;
    let out = match std::fs::read(dir.join("out.msgpack")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_be_empty => return Ok(Vec::new()),
        r2 => r2.map_err(|e| format!("no output file: {e}\n{}", r.log()))?,
    };
    check(!out.is_empty(), "empty output", &r)?;
    Ok(out)
}

fn filter_keeps_groups_and_metadata_byte_for_byte(host: &Host) -> Result<(), Failed> {
    let reference = otlp_through(host, false)?;
    let filtered = otlp_through(host, true)?;
    // OTLP input emits group start markers: 0xd7 0x00 then seconds 0xFFFFFFFF.
    let group_marker = [0xd7u8, 0x00, 0xff, 0xff, 0xff, 0xff];
    if !reference.windows(6).any(|w| w == group_marker) {
        return Err("the reference stream has no group markers; the test input is wrong".into());
    }
    if filtered != reference {
        return Err(format!("filtered output differs: {} vs {} bytes", filtered.len(), reference.len()).into());
    }
    Ok(())
}

/// The batch call inside OTLP groups: every record edited, the group markers (written by the
/// host, never by the guest) exactly as before.
fn batch_call_keeps_group_structure(host: &Host) -> Result<(), Failed> {
    let count = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).filter(|w| *w == needle).count();
    let reference = otlp_through(host, false)?;
    let batch = otlp_through_filter(host, Some(("filter_batch.wasm", "add_field_batch")), false)?;
    let (start, end) = ([0xd7u8, 0x00, 0xff, 0xff, 0xff, 0xff], [0xd7u8, 0x00, 0xff, 0xff, 0xff, 0xfe]);
    let edited = count(&batch, b"\xa4wasm\xa3yes");
    eprintln!("  groups {} / {}, records edited {edited}", count(&batch, &start), count(&batch, &end));
    if count(&reference, &start) == 0 || count(&batch, &start) != count(&reference, &start) || count(&batch, &end) != count(&reference, &end) {
        return Err(format!("group markers changed: start {} -> {}, end {} -> {}", count(&reference, &start), count(&batch, &start), count(&reference, &end), count(&batch, &end)).into());
    }
    // Records: EventTime timestamps (fixext8 type 0) that are not group markers.
    let records = count(&reference, &[0xd7, 0x00]) - count(&reference, &start) - count(&reference, &end);
    if records == 0 || edited != records {
        return Err(format!("{edited} of {records} records edited").into());
    }
    // The Rust SDK's batch example (its msgpack reader; group markers skipped) does the same.
    let rust = otlp_through_filter(host, Some(("rust_batch_add_field.wasm", "add_field_batch_rs")), false)?;
    let rust_edited = count(&rust, b"\xa4wasm\xa3yes");
    if rust_edited != records || count(&rust, &start) != count(&reference, &start) || count(&rust, &end) != count(&reference, &end) {
        return Err(format!("Rust SDK batch: {rust_edited} of {records} records edited, markers {} / {}", count(&rust, &start), count(&rust, &end)).into());
    }
    // A guest that drops every group's records: no record is left; where the host still
    // writes the empty groups (v4.2.8 does, v5.1.1 writes nothing), their markers are intact.
    let dropped = otlp_through_filter(host, Some(("filter_batch.wasm", "drop_grouped")), true)?;
    let left = count(&dropped, &[0xd7, 0x00]) - count(&dropped, &start) - count(&dropped, &end);
    let markers_ok = dropped.is_empty() || (count(&dropped, &start) == count(&reference, &start) && count(&dropped, &end) == count(&reference, &end));
    if left != 0 || !markers_ok {
        return Err(format!("drop_grouped: {left} records left, markers {} / {}", count(&dropped, &start), count(&dropped, &end)).into());
    }
    Ok(())
}

fn input_emits_records(host: &Host) -> Result<(), Failed> {
    let p = plugins();
    let wp = format!("wasi_path={}", fixture("exec_hello.wasm").display());
    let r = run(
        host,
        &["-e", p.input.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-p", &wp, "-p", "interval_sec=0", "-p", "interval_nsec=200000000", "-o", "stdout", "-p", "format=json_lines", "-f", "0.2"],
        Duration::from_secs(3),
    );
    r.assert_no_crash()?;
    check(!r.json_records().is_empty(), "no records from the input", &r)
}

/// Each plugin names the layout generation it detected (debug level), and it is the one the
/// host's version has (docs/abi.md): a wrong pick would misread the host's structs.
fn detects_the_host_layout(host: &Host) -> Result<(), Failed> {
    let v: Vec<u32> = host.version.trim_start_matches('v').split('.').filter_map(|n| n.parse().ok()).collect();
    let expected = match (v.first(), v.get(1), v.get(2)) {
        (Some(5), Some(m), _) if *m >= 1 => "v5.1 layout",
        (Some(5), Some(0), Some(p)) if *p >= 3 => "v5.0.3-v5.0.9 layout",
        _ => "v3.2.3-v5.0.2 layout",
    };
    let p = plugins();
    let wp = format!("wasi_path={}", fixture("exec_hello.wasm").display());
    let fp = format!("wasm_path={}", fixture("filter_identity.wasm").display());
    let r = run(
        host,
        &["-v", "-e", p.input.to_str().unwrap(), "-e", p.filter.to_str().unwrap(), "-i", "exec_wasi_wasmer", "-p", &wp, "-p", "oneshot=true",
          "-F", "wasm_wasmer", "-m", "*", "-p", &fp, "-p", "function_name=filter", "-o", "null", "-f", "0.2"],
        Duration::from_secs(3),
    );
    r.assert_no_crash()?;
    let said: Vec<String> = r.log().lines().filter(|l| l.contains("host plugin ABI: ")).map(|l| l.split("host plugin ABI: ").nth(1).unwrap_or("").to_owned()).collect();
    check(said.len() == 2 && said.iter().all(|s| s == expected), format!("{}: expected '{expected}' from the input and the filter, got {said:?}", host.version), &r)
}

/// The same filter + input loaded through each route the host offers.
fn loads_through_every_route(host: &Host) -> Result<(), Failed> {
    let p = plugins();
    let dir = scratch_dir("routes");
    let (hello, identity) = (fixture("exec_hello.wasm"), fixture("filter_identity.wasm"));
    let pipeline_classic = format!("[SERVICE]\n    flush 0.2\n    plugins_file {{PF}}\n[INPUT]\n    name exec_wasi_wasmer\n    wasi_path {}\n    interval_sec 0\n    interval_nsec 200000000\n[FILTER]\n    name wasm_wasmer\n    match *\n    wasm_path {}\n    function_name filter\n[OUTPUT]\n    name stdout\n    match *\n    format json_lines\n", hello.display(), identity.display());
    let pipeline_yaml = format!("pipeline:\n  inputs:\n    - name: exec_wasi_wasmer\n      wasi_path: {}\n      interval_sec: 0\n      interval_nsec: 200000000\n  filters:\n    - name: wasm_wasmer\n      match: '*'\n      wasm_path: {}\n      function_name: filter\n  outputs:\n    - name: stdout\n      match: '*'\n      format: json_lines\n", hello.display(), identity.display());
    let classic_pf = write_file(&dir, "plugins.conf", format!("[PLUGINS]\n    Path {}\n    Path {}\n", p.input.display(), p.filter.display()));
    let yaml_pf = write_file(&dir, "plugins.yaml", format!("plugins:\n  - {}\n  - {}\n", p.input.display(), p.filter.display()));
    let routes: Vec<(&str, Vec<String>)> = vec![
        ("-e", {
            let c = write_file(&dir, "e.yaml", format!("service:\n  flush: 0.2\n{pipeline_yaml}"));
            vec!["-e".into(), p.input.display().to_string(), "-e".into(), p.filter.display().to_string(), "-c".into(), c.display().to_string()]
        }),
        ("classic plugins_file", {
            let c = write_file(&dir, "classic.conf", pipeline_classic.replace("{PF}", classic_pf.to_str().unwrap()));
            vec!["-c".into(), c.display().to_string()]
        }),
        ("YAML plugins_file", {
            let c = write_file(&dir, "pf.yaml", format!("service:\n  flush: 0.2\n  plugins_file: {}\n{pipeline_yaml}", yaml_pf.display()));
            vec!["-c".into(), c.display().to_string()]
        }),
        ("YAML plugins: section", {
            let c = write_file(&dir, "plugins-section.yaml", format!("service:\n  flush: 0.2\nplugins:\n  - {}\n  - {}\n{pipeline_yaml}", p.input.display(), p.filter.display()));
            vec!["-c".into(), c.display().to_string()]
        }),
    ];
    for (route, args) in routes {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(host, &args, Duration::from_secs(3));
        r.assert_no_crash()?;
        check(!r.json_records().is_empty(), format!("route {route}: no records"), &r)?;
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let trials = trials_per_host(
        "foundation",
        &[
            ("help_lists_our_properties", help_lists_our_properties),
            ("unknown_property_is_refused_by_the_host", unknown_property_is_refused_by_the_host),
            ("missing_required_property_names_it", missing_required_property_names_it),
            ("invalid_property_value_names_it", invalid_property_value_names_it),
            ("filter_keeps_groups_and_metadata_byte_for_byte", filter_keeps_groups_and_metadata_byte_for_byte),
            ("input_emits_records", input_emits_records),
            ("detects_the_host_layout", detects_the_host_layout),
        ("batch_call_keeps_group_structure", batch_call_keeps_group_structure),
            ("loads_through_every_route", loads_through_every_route),
        ],
    );
    libtest_mimic::run(&args, trials).exit();
}
