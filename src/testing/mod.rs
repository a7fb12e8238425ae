//! Support for tests: privileges for BPF tests, and the fuzzing targets.

pub mod fuzz;

/// True when tests needing BPF may run: we are root. When they cannot run
/// and `NETSCRIPT_REQUIRE_BPF=1` is set (as CI does), this panics so the
/// test fails instead of silently skipping.
pub fn bpf_available() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && std::env::var("NETSCRIPT_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("NETSCRIPT_REQUIRE_BPF=1 but not running as root: BPF tests cannot run");
    }
    if !root {
        eprintln!(
            "skipping: BPF tests need root (set NETSCRIPT_REQUIRE_BPF=1 to make this a failure)"
        );
    }
    root
}
