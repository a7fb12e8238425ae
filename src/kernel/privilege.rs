//! Whether this process may load and attach BPF programs: root, or the
//! capabilities the kernel asks for (CAP_BPF and CAP_PERFMON since Linux
//! 5.8; CAP_SYS_ADMIN covers both). Checked before anything is compiled,
//! so a user without them reads one clear line instead of a tracefs or
//! verifier error that blames something else.

/// Capability numbers (`linux/capability.h`).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What is missing to run BPF programs, or `None` when nothing is.
pub fn missing() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return None;
    }
    let lacking: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|(cap, _)| !has(*cap))
        .map(|(_, name)| name)
        .collect();
    Some(format!(
        "netscript needs root to load BPF programs, or the capabilities CAP_BPF and \
         CAP_PERFMON (CAP_NET_ADMIN too for xdp probes) and read access to tracefs; this \
         process lacks {} (run it with sudo)",
        lacking.join(" and ")
    ))
}
