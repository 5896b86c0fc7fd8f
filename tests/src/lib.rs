//! The end-to-end harness: finds real Fluent Bit hosts, installs our plugins under the file
//! names the host's loader accepts, runs the host with a configuration and reads back what
//! it emitted.
//!
//! Hosts, in order: every path in `FLUENT_BIT_BINS` (colon-separated) and `FLUENT_BIT_BIN`;
//! if neither is set, the official packages' prefix (`/opt/fluent-bit/bin/fluent-bit`) and
//! side-by-side prefixes `/opt/fluent-bit-<version>/bin/fluent-bit`; failing those,
//! `fluent-bit` on PATH. Without a host every e2e test is reported as *ignored* with the
//! reason printed: it never counts as passed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod fixtures;

pub use libtest_mimic::{Arguments, Failed, Trial};

/// A Fluent Bit executable and the version it reports.
#[derive(Clone, Debug)]
pub struct Host {
    pub bin: PathBuf,
    pub version: String,
}

impl Host {
    fn probe(bin: PathBuf) -> Option<Host> {
        let out = Command::new(&bin).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text.lines().next()?.trim().strip_prefix("Fluent Bit ")?.to_owned();
        Some(Host { bin, version })
    }
}

/// The hosts to test against (possibly none; see the module docs).
pub fn hosts() -> Vec<Host> {
    let mut bins: Vec<PathBuf> = Vec::new();
    if let Ok(list) = std::env::var("FLUENT_BIT_BINS") {
        bins.extend(list.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    if let Ok(b) = std::env::var("FLUENT_BIT_BIN") {
        bins.push(PathBuf::from(b));
    }
    if bins.is_empty() {
        // The official packages' prefix, then versioned side-by-side prefixes
        // (/opt/fluent-bit-<version>), then PATH.
        bins.extend(["/opt/fluent-bit/bin/fluent-bit".into()].into_iter().filter(|p: &PathBuf| p.exists()));
        let mut versioned: Vec<PathBuf> = std::fs::read_dir("/opt")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("fluent-bit-"))
            .map(|e| e.path().join("bin/fluent-bit"))
            .filter(|p| p.exists())
            .collect();
        versioned.sort();
        bins.extend(versioned);
        if bins.is_empty() {
            bins.extend(which("fluent-bit"));
        }
    }
    let mut hosts = Vec::new();
    for b in bins {
        match Host::probe(b.clone()) {
            Some(h) if !hosts.iter().any(|x: &Host| x.bin == h.bin) => hosts.push(h),
            Some(_) => {}
            None => eprintln!("e2e: WARNING: {} does not run as fluent-bit; ignored", b.display()),
        }
    }
    hosts
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

/// Where cargo put the artefacts of the profile this test was built with.
pub fn target_profile_dir() -> PathBuf {
    // <target>/<profile>/deps/<test-binary>
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().and_then(Path::parent).expect("target dir layout").to_path_buf()
}

/// Our plugins, installed in a private directory under the names the loader needs.
#[derive(Clone, Debug)]
pub struct Plugins {
    pub dir: PathBuf,
    /// `flb-in_exec_wasi_wasmer.so` (native route).
    pub input: PathBuf,
    /// `flb-filter_wasm_wasmer.so`.
    pub filter: PathBuf,
    /// `libexec_wasi.so` as cargo built it.
    pub libexec_wasi: PathBuf,
}

/// Installs the plugins built by `cargo build -p in_exec_wasi -p filter_wasm` (same profile
/// as this test) into a fresh directory. Panics with the build command if they are missing.
pub fn plugins() -> Plugins {
    let built = target_profile_dir();
    let dir = scratch_dir("plugins");
    let install = |from: &str, to: &str| {
        let src = built.join(from);
        assert!(src.exists(), "{} is missing: run `cargo build --release -p in_exec_wasi -p filter_wasm` first", src.display());
        let dst = dir.join(to);
        // A symlink: the loader only looks at the name; the file is a few hundred MB with
        // line tables.
        std::os::unix::fs::symlink(&src, &dst).expect("link plugin");
        dst
    };
    Plugins {
        input: install("libexec_wasi.so", "flb-in_exec_wasi_wasmer.so"),
        filter: install("libfilter_wasm.so", "flb-filter_wasm_wasmer.so"),
        libexec_wasi: built.join("libexec_wasi.so"),
        dir,
    }
}

/// A new empty directory under the system temp dir, kept after the test for inspection.
pub fn scratch_dir(what: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("flb-wasmer-e2e-{}-{}-{}", std::process::id(), what, n));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The result of one host run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// True when the harness had to kill the host at the deadline.
    pub timed_out: bool,
    /// Resident set size of the host (KiB), sampled every half second.
    pub rss_kib: Vec<u64>,
    /// CPU time (user + system) the host used, from `wait4`.
    pub cpu: Duration,
}

impl Run {
    /// Exit code if the host exited by itself (not by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.signal()
    }

    /// stdout + stderr, for messages (Fluent Bit logs go to stderr).
    pub fn log(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The built-in WAMR plugins' refusal to load a module (older hosts' WAMR lacks features
    /// newer toolchains emit, e.g. v3.2's with Zig 0.17), announced on stderr by the caller.
    pub fn builtin_load_failure(&self) -> Option<String> {
        self.log().lines().find(|l| l.contains("WASM module load failed")).map(str::to_owned)
    }

    /// Records printed by `-o stdout -p format=json_lines`.
    pub fn json_records(&self) -> Vec<serde_json::Value> {
        self.stdout.lines().filter(|l| l.starts_with('{')).filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Record bodies without the `date` key the stdout output adds.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.json_records()
            .into_iter()
            .map(|mut v| {
                if let Some(o) = v.as_object_mut() {
                    o.remove("date");
                }
                v
            })
            .collect()
    }

    /// Whether the host exited non-zero by itself (no signal, no deadline kill).
    pub fn failed_cleanly(&self) -> bool {
        !self.timed_out && self.code().is_some_and(|c| c != 0)
    }

    pub fn assert_no_crash(&self) -> Result<(), Failed> {
        if let Some(sig) = self.signal() {
            if !(self.timed_out && (sig == libc::SIGTERM || sig == libc::SIGKILL)) {
                return Err(format!("fluent-bit died with signal {sig}\n{}", self.log()).into());
            }
        }
        if self.log().contains("Fatal") || self.log().contains("SIGSEGV") {
            return Err(format!("fluent-bit reported a crash\n{}", self.log()).into());
        }
        Ok(())
    }
}

/// Runs `host` with `args` until it exits, or until `deadline` (then SIGTERM, and SIGKILL
/// 5 s later). Output is captured in files so a chatty host never blocks on a pipe.
pub fn run(host: &Host, args: &[&str], deadline: Duration) -> Run {
    run_in(host, args, deadline, None)
}

pub fn run_in(host: &Host, args: &[&str], deadline: Duration, cwd: Option<&Path>) -> Run {
    run_env(host, args, deadline, cwd, &[])
}

/// As [`run`], in `cwd` and with extra environment variables.
pub fn run_env(host: &Host, args: &[&str], deadline: Duration, cwd: Option<&Path>, env: &[(&str, &str)]) -> Run {
    run_full(host, args, deadline, cwd, env, &[], &|| false)
}

/// As [`run`], sending each `(after, signal)` to the host once `after` has passed (e.g.
/// SIGHUP for a hot reload).
pub fn run_signals(host: &Host, args: &[&str], deadline: Duration, signals: &[(Duration, i32)]) -> Run {
    run_full(host, args, deadline, None, &[], signals, &|| false)
}

/// As [`run`], stopping the host with SIGTERM (a normal shutdown, not a time-out) as soon as
/// `done()` holds; checked twice a second.
pub fn run_until(host: &Host, args: &[&str], deadline: Duration, done: &dyn Fn() -> bool) -> Run {
    run_full(host, args, deadline, None, &[], &[], done)
}

pub fn run_full(host: &Host, args: &[&str], deadline: Duration, cwd: Option<&Path>, env: &[(&str, &str)], signals: &[(Duration, i32)], done: &dyn Fn() -> bool) -> Run {
    let mut pending: Vec<(Duration, i32)> = signals.to_vec();
    pending.sort_by_key(|s| std::cmp::Reverse(s.0));
    let dir = scratch_dir("run");
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let mut cmd = Command::new(&host.bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("spawn fluent-bit");
    let start = Instant::now();
    let mut timed_out = false;
    let mut rss_kib = Vec::new();
    let mut last_sample = start;
    let mut stopped = false;
    let (status, cpu) = loop {
        if last_sample.elapsed() >= Duration::from_millis(500) {
            last_sample = Instant::now();
            rss_kib.extend(rss_of(child.id()));
            if !stopped && done() {
                stopped = true;
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
        }
        // wait4 rather than try_wait: it also gives the CPU time the host used.
        let mut raw = 0;
        // SAFETY: plain syscall on our own child; `usage` is written by the kernel.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let reaped = unsafe { libc::wait4(child.id() as i32, &mut raw, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped > 0 {
            let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
            break (std::os::unix::process::ExitStatusExt::from_raw(raw), tv(usage.ru_utime) + tv(usage.ru_stime));
        }
        while pending.last().is_some_and(|(at, _)| start.elapsed() >= *at) {
            let (_, sig) = pending.pop().unwrap();
            unsafe { libc::kill(child.id() as i32, sig) };
        }
        if start.elapsed() > deadline && !timed_out {
            timed_out = true;
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        if timed_out && start.elapsed() > deadline + Duration::from_secs(5) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        timed_out,
        rss_kib,
        cpu,
    }
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

/// Builds the trial list for a suite: every case once per host; all ignored, with the reason
/// printed loudly, when there is no host.
pub fn trials_per_host(suite: &str, cases: &[(&'static str, fn(&Host) -> Result<(), Failed>)]) -> Vec<Trial> {
    let hosts = hosts();
    if hosts.is_empty() {
        eprintln!(
            "\n*** e2e {suite}: SKIPPED {} tests: no fluent-bit found (set FLUENT_BIT_BIN, or install the official package at /opt/fluent-bit) ***\n",
            cases.len()
        );
        return cases.iter().map(|(name, _)| Trial::test(format!("{suite}::{name}"), || Ok(())).with_ignored_flag(true)).collect();
    }
    let mut trials = Vec::new();
    for host in &hosts {
        eprintln!("e2e {suite}: host {} = Fluent Bit {}", host.bin.display(), host.version);
        for (name, case) in cases {
            let host = host.clone();
            let case = *case;
            trials.push(Trial::test(format!("{}::{suite}::{name}", host.version), move || case(&host)));
        }
    }
    trials
}

/// Fails with `msg` and the host log unless `cond` holds.
pub fn check(cond: bool, msg: impl std::fmt::Display, run: &Run) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(format!("{msg}\n--- host output ---\n{}", run.log()).into()) }
}
