//! What this kernel can do, found by trying it once.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::OnceLock;

use libbpf_rs::libbpf_sys;

use crate::codegen::{insn::Insn, ProgramCode};
use crate::object::{write_object, ProgramSection};

/// True when the kernel loads fentry programs (probed once by loading an
/// empty fentry program on a common kernel function).
pub fn fentry_supported() -> bool {
    static FENTRY: OnceLock<bool> = OnceLock::new();
    *FENTRY.get_or_init(|| {
        loads(
            "fentry/tcp_sendmsg",
            vec![
                Insn::alu64_imm(crate::codegen::insn::alu::MOV, 0, 0),
                Insn::exit(),
            ],
        )
    })
}

/// True when the kernel's BPF has atomic compare-and-exchange (5.12+;
/// probed once by loading a socket filter that uses it on the stack: a
/// program type that needs no CAP_NET_ADMIN, so the answer is the same
/// with only CAP_BPF and CAP_PERFMON).
pub fn cmpxchg_supported() -> bool {
    static CMPXCHG: OnceLock<bool> = OnceLock::new();
    *CMPXCHG.get_or_init(|| {
        use crate::codegen::insn::{alu, size};
        loads(
            "socket",
            vec![
                Insn::store_imm(size::DW, 10, -8, 0),
                Insn::alu64_imm(alu::MOV, 0, 0),
                Insn::alu64_imm(alu::MOV, 1, 1),
                Insn::cmpxchg64(10, -8, 1),
                Insn::alu64_imm(alu::MOV, 0, 2),
                Insn::exit(),
            ],
        )
    })
}

/// Whether the kernel loads program `insns` of ELF section `section`.
fn loads(section: &str, insns: Vec<Insn>) -> bool {
    let code = ProgramCode {
        name: "probe_feature".into(),
        insns,
        map_relocs: Vec::new(),
        source_map: Vec::new(),
    };
    let section = ProgramSection {
        section: section.into(),
        code,
    };
    match write_object(&[section], &[]) {
        Ok(elf) => super::load(&elf).is_ok(),
        Err(_) => false,
    }
}

/// The monotonic clock (`CLOCK_MONOTONIC`, what `bpf_ktime_get_ns` reads) in ns.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC) as u64
}

/// `CLOCK_REALTIME` minus `CLOCK_MONOTONIC` in ns: a monotonic time plus
/// this is ns since the Unix epoch (`walltime()`). The realtime reading is
/// taken between two monotonic ones and compared with their midpoint.
pub fn wall_offset_ns() -> i64 {
    let before = clock_ns(libc::CLOCK_MONOTONIC);
    let real = clock_ns(libc::CLOCK_REALTIME);
    let after = clock_ns(libc::CLOCK_MONOTONIC);
    real - (before + (after - before) / 2)
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Turns on the kernel's per-program run counters (`run_cnt`,
/// `run_time_ns`) for as long as the returned descriptor is open
/// (`BPF_ENABLE_STATS`); the error says why they could not be.
pub fn enable_run_stats() -> Result<OwnedFd, String> {
    // SAFETY: a plain syscall wrapper; a non-negative result is a new fd.
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd).to_string());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
