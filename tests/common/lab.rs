//! The kernel lab from the tests' side: run a guest script of `tests/lab/`
//! under qemu on each kernel of the matrix (Debian's stock 5.10, 6.1 and
//! 6.12: `tests/lab/lab.sh`), and read what netscript printed there.
//! See docs/testing.md.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const LAB_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.sh");

/// A kernel of the matrix: the Debian release whose stock kernel the lab
/// boots, and its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel {
    /// The Debian release (`NETSCRIPT_LAB_KERNEL`).
    pub release: &'static str,
    /// Its kernel's (major, minor) version.
    pub version: (u32, u32),
}

impl Kernel {
    /// True from kernel `major.minor` on.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.version >= (major, minor)
    }
}

/// Every kernel the lab boots, oldest first.
pub const MATRIX: [Kernel; 3] = [
    Kernel {
        release: "bullseye",
        version: (5, 10),
    },
    Kernel {
        release: "bookworm",
        version: (6, 1),
    },
    Kernel {
        release: "trixie",
        version: (6, 12),
    },
];

/// The kernels the lab tests run on: `NETSCRIPT_LAB_KERNELS` (releases,
/// comma-separated), else the whole matrix.
pub fn kernels() -> Vec<Kernel> {
    match std::env::var("NETSCRIPT_LAB_KERNELS") {
        Ok(list) => list
            .split(',')
            .map(|r| {
                *MATRIX
                    .iter()
                    .find(|k| k.release == r.trim())
                    .unwrap_or_else(|| panic!("NETSCRIPT_LAB_KERNELS: no kernel '{r}' in the lab"))
            })
            .collect(),
        Err(_) => MATRIX.to_vec(),
    }
}

/// A test that cannot run here: fails under `NETSCRIPT_REQUIRE_BPF=1`,
/// else skips with `why`.
fn cannot_run(why: &str) -> Option<String> {
    if std::env::var("NETSCRIPT_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("NETSCRIPT_REQUIRE_BPF=1 but the kernel lab cannot run: {why}");
    }
    eprintln!("skipping: {why} (set NETSCRIPT_REQUIRE_BPF=1 to make this a failure)");
    None
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Runs guest script `tests/lab/<script>` in a fresh lab VM of `kernel`
/// (building that lab first if it is not cached; `lab.sh` runs `LAB_VMS`
/// VMs at a time on the host, 2 by default) and returns its output; `None` when the lab cannot
/// run here and the test is skipped. Panics when the script fails.
pub fn run(kernel: Kernel, script: &str) -> Option<String> {
    if !netscript::testing::bpf_available() {
        return None;
    }
    let missing: Vec<&str> = ["qemu-system-x86_64", "debootstrap"]
        .into_iter()
        .filter(|p| !on_path(p) && !Path::new("/usr/sbin").join(p).is_file())
        .collect();
    if !missing.is_empty() {
        return cannot_run(&format!(
            "the kernel lab needs {} (apt-get install qemu-system-x86 debootstrap)",
            missing.join(" and ")
        ));
    }
    let lab = |args: &[&str]| {
        Command::new(LAB_SH)
            .args(args)
            .env("NETSCRIPT_LAB_KERNEL", kernel.release)
            .output()
            .expect("run tests/lab/lab.sh")
    };
    let build = lab(&["dir"]);
    if !build.status.success() {
        return cannot_run(&format!(
            "building the {} kernel lab failed:\n{}",
            kernel.release,
            String::from_utf8_lossy(&build.stderr)
        ));
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_netscript"))
        .parent()
        .expect("the binary is in a directory");
    let script_path = Path::new(LAB_SH).with_file_name(script);
    let run = lab(&[
        "run",
        "-w",
        bin_dir.to_str().expect("a UTF-8 path"),
        script_path.to_str().expect("a UTF-8 path"),
    ]);
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    let err = String::from_utf8_lossy(&run.stderr);
    println!("--- {script} in the lab ({}):\n{out}{err}", kernel.release);
    if run.status.code() == Some(125) {
        return cannot_run(&format!("the lab VM did not boot or hung:\n{err}"));
    }
    assert!(
        run.status.success(),
        "{script} failed on {}:\n{out}{err}",
        kernel.release
    );
    Some(out)
}

/// Runs `script` on every kernel of [`kernels`] and checks each output
/// with `check`; every kernel is tried, then the test fails naming each
/// kernel whose run or check failed. The kernels' runs start together
/// and take `lab.sh`'s VM slots as they free up, so the slots stay busy
/// to the last run of the last test.
pub fn on_each_kernel(script: &str, check: impl Fn(Kernel, &str) + Sync) {
    let check = &check;
    let failed: Vec<&str> = std::thread::scope(|scope| {
        let runs: Vec<_> = kernels()
            .into_iter()
            .map(|kernel| {
                let checked = move || {
                    if let Some(out) = run(kernel, script) {
                        check(kernel, &out);
                    }
                };
                (kernel, scope.spawn(checked))
            })
            .collect();
        // A run that panicked is a failed kernel.
        runs.into_iter()
            .filter_map(|(k, run)| run.join().is_err().then_some(k.release))
            .collect()
    });
    assert!(
        failed.is_empty(),
        "{script} failed on {} (see the panics above)",
        failed.join(", ")
    );
}

/// The lines after marker `=== name` up to the next marker.
pub fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let marker = format!("=== {name}\n");
    let start = out
        .find(&marker)
        .unwrap_or_else(|| panic!("no section '{name}' in:\n{out}"))
        + marker.len();
    let rest = &out[start..];
    // Path reports' `=== Title: time ===` headings are not markers.
    let is_marker = |l: &str| l.starts_with("=== ") && !l.trim_end().ends_with(" ===");
    let end = rest
        .split_inclusive('\n')
        .take_while(|l| !is_marker(l))
        .map(str::len)
        .sum();
    &rest[..end]
}

/// The value printed for map entry `entry` (`@count`, `@[kprobe:f]`, `@dp[1]`).
pub fn value(out: &str, entry: &str) -> u64 {
    let prefix = format!("{entry}: ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no value for {entry} in:\n{out}"))
}

/// The sum of every entry of map `map` (`@dp` sums `@dp[1]`, `@dp[6]`, ...).
pub fn map_total(out: &str, map: &str) -> u64 {
    let prefix = format!("{map}[");
    out.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(": ").next()?.trim().parse::<u64>().ok())
        .sum()
}

/// The path events of `out` (JSON lines): each event's `data`.
pub fn path_events(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "path")
        .map(|v| v["data"].clone())
        .collect()
}

/// Whether stage `stage` of path event `e` fired.
pub fn stage_seen(e: &Value, stage: &str) -> bool {
    e["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == stage))
        .is_some_and(|s| s["seen"] == true)
}

/// The sum of the segment latencies of path event `e` (ns).
pub fn segments_ns(e: &Value) -> u64 {
    e["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .filter_map(|s| s["ns"].as_u64())
        .sum()
}

/// Checks path event `e` of an OVS path whose stages `upcall` and
/// `extract` (the upcall and its key extraction) fire together or not at
/// all: both or neither seen, every other stage seen but those of
/// `unchecked` (the caller's to check), and the latencies of its segments
/// adding up to its total.
pub fn check_fast_or_upcalled(e: &Value, upcall: &str, extract: &str, unchecked: &[&str]) {
    assert_eq!(stage_seen(e, upcall), stage_seen(e, extract), "{e:#}");
    let stages = e["stages"].as_array().expect("stages");
    assert!(
        stages
            .iter()
            .filter(|s| s["name"] != upcall && s["name"] != extract)
            .filter(|s| !unchecked.iter().any(|u| s["name"] == *u))
            .all(|s| s["seen"] == true),
        "every other stage: {e:#}"
    );
    assert_eq!(
        segments_ns(e),
        e["total_ns"].as_u64().expect("total"),
        "segments add up: {e:#}"
    );
}

/// Checks the text reports of a lab run against golden file `name` in
/// their shape: the first and the last packet report (each starting at a
/// line that starts with `heading`; the reports between them vary with
/// timing) and what follows the last (histograms, counters), with the
/// command names masked (which thread handles a packet in softirq changes
/// from run to run).
pub fn check_report_golden(name: &str, text: &str, heading: &str) {
    let starts: Vec<usize> = text
        .match_indices(heading)
        .map(|(i, _)| i)
        .filter(|i| *i == 0 || text.as_bytes()[i - 1] == b'\n')
        .collect();
    assert!(!starts.is_empty(), "no report: {text}");
    let kept = match starts[..] {
        [_] => text.to_string(),
        [_, second, .., last] => format!("{}...\n{}", &text[..second], &text[last..]),
        _ => format!("{}...\n{}", &text[..starts[1]], &text[starts[1]..]),
    };
    super::report::check_golden_with(name, &kept, &[("COMM=*_", "COMM=<comm> ")]);
}
