//! Helpers shared by the integration tests: running netscript and bpftrace
//! as child processes and generating traffic.

#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod lab;
pub mod netns;
pub mod report;
pub mod tcp_metrics;

/// Path of the netscript binary built for these tests.
pub fn netscript_bin() -> &'static str {
    env!("CARGO_BIN_EXE_netscript")
}

/// A running tracer whose stdout is collected in the background.
pub struct Tracer {
    child: Child,
    out: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    err: Arc<Mutex<String>>,
    err_reader: Option<JoinHandle<()>>,
}

fn collect(mut r: impl Read + Send + 'static, buf: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    })
}

impl Tracer {
    /// Starts `program` with `args`.
    pub fn start(program: &str, args: &[&str]) -> Tracer {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {}", program, e));
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let reader = Some(collect(child.stdout.take().unwrap(), Arc::clone(&out)));
        let err_reader = Some(collect(child.stderr.take().unwrap(), Arc::clone(&err)));
        Tracer {
            child,
            out,
            reader,
            err,
            err_reader,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until stdout contains `needle` (panics after `timeout`).
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.out.lock().unwrap().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                panic!(
                    "tracer exited ({}) before printing {:?}\nstdout:\n{}\nstderr:\n{}",
                    status,
                    needle,
                    self.out.lock().unwrap(),
                    self.err.lock().unwrap()
                );
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {:?}; stdout so far:\n{}\nstderr:\n{}",
                needle,
                self.out.lock().unwrap(),
                self.err.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGINT (if still running) and returns (exit code, stdout, stderr).
    pub fn interrupt(mut self) -> (i32, String, String) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill with a pid we own.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        }
        self.finish()
    }

    /// Waits for exit and returns (exit code, stdout, stderr).
    pub fn finish(mut self) -> (i32, String, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if let Some(r) = self.err_reader.take() {
            let _ = r.join();
        }
        let out = self.out.lock().unwrap().clone();
        let err = self.err.lock().unwrap().clone();
        (status.code().unwrap_or(-1), out, err)
    }
}

impl Drop for Tracer {
    /// A tracer abandoned by a failing test is killed, not left running.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs netscript to completion with `args`; returns (exit code, stdout, stderr).
pub fn netscript(args: &[&str]) -> (i32, String, String) {
    Tracer::start(netscript_bin(), args).finish()
}

/// Sends `count` pings of `size` payload bytes to 127.0.0.1 (each request
/// and reply is `size + 28` bytes long at the IP layer).
pub fn ping_loopback(count: u32, size: u32) {
    let status = Command::new("ping")
        .args([
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.05",
            "-s",
            &size.to_string(),
            "127.0.0.1",
        ])
        .stdout(Stdio::null())
        .status()
        .expect("ping runs");
    assert!(status.success(), "ping failed");
}

/// Runs the one-liner `program`, waits until it is attached, runs
/// `traffic`, stops it with Ctrl-C and returns its output.
pub fn measure(program: &str, traffic: impl FnOnce()) -> String {
    let mut t = Tracer::start(netscript_bin(), &["-e", program]);
    t.wait_for("Attaching", Duration::from_secs(20));
    traffic();
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    out
}

/// The value printed for the scalar map `name` (`@name: N`), 0 if absent.
pub fn map_value(out: &str, name: &str) -> u64 {
    let prefix = format!("{}: ", name);
    out.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str())?.parse().ok())
        .unwrap_or(0)
}

/// Runs netscript with `args` around `traffic`, inside network namespace
/// `netns` if given, waiting for `attached` on its output first; returns
/// its standard output.
fn run_around(
    netns: Option<&str>,
    args: &[&str],
    attached: &str,
    traffic: impl FnOnce(),
) -> String {
    let mut argv: Vec<&str> = match netns {
        Some(ns) => vec!["netns", "exec", ns, netscript_bin()],
        None => Vec::new(),
    };
    argv.extend_from_slice(args);
    let program = if netns.is_some() {
        "ip"
    } else {
        netscript_bin()
    };
    let mut t = Tracer::start(program, &argv);
    t.wait_for(attached, Duration::from_secs(20));
    traffic();
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    out
}

/// Runs netscript with `args` (text output) around `traffic`, inside
/// network namespace `netns` if given; returns what it printed.
pub fn run_text(netns: Option<&str>, args: &[&str], traffic: impl FnOnce()) -> String {
    run_around(netns, args, "Attaching", traffic)
}

/// Runs netscript with `args` and `-f json` around `traffic`, inside network
/// namespace `netns` if given; returns the JSON objects it printed.
pub fn run_json(
    netns: Option<&str>,
    args: &[&str],
    traffic: impl FnOnce(),
) -> Vec<serde_json::Value> {
    let mut argv = args.to_vec();
    argv.extend_from_slice(&["-f", "json"]);
    run_around(netns, &argv, "attached_probes", traffic)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {}", e, l)))
        .collect()
}

/// The JSON objects of one `"type"`.
pub fn of_type<'a>(objects: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    objects.iter().filter(|o| o["type"] == kind).collect()
}

/// Compares `actual` with the golden file `tests/golden/<name>`; with
/// `NETSCRIPT_BLESS=1` rewrites the file instead (review the diff).
pub fn check_golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("NETSCRIPT_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {}", path.display(), e));
    assert_eq!(
        actual,
        expected,
        "{} differs (NETSCRIPT_BLESS=1 rewrites it)",
        path.display()
    );
}

/// `date +%s%N`: the wall clock in ns since the epoch.
pub fn date_ns() -> u64 {
    let out = Command::new("date")
        .arg("+%s%N")
        .output()
        .expect("date runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("ns since the epoch")
}

/// A clock's time in ns (`libc::CLOCK_MONOTONIC`, what `nsecs` reads;
/// `libc::CLOCK_REALTIME`).
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Asserts `low <= value <= high`.
pub fn assert_within(value: u64, low: u64, high: u64) {
    assert!(
        low <= value && value <= high,
        "{} not in [{}, {}]",
        value,
        low,
        high
    );
}
