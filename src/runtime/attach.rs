//! Attaching loaded programs to their probes.

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use libbpf_rs::libbpf_sys;
use libbpf_rs::{Link, ProgramMut, TracepointCategory};

use super::LoadedObject;
use crate::bpf::AttachPoint;
use crate::diag::Diagnostic;

/// `PERF_FLAG_FD_CLOEXEC` of `perf_event_open` (not exported by `libc`).
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// `perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK)` sampling
/// every `period_ns` on CPU 0 for all processes.
fn open_cpu_clock(period_ns: u64) -> std::io::Result<OwnedFd> {
    // SAFETY: perf_event_attr is plain data; all-zero is a valid value.
    let mut attr: libbpf_sys::perf_event_attr = unsafe { std::mem::zeroed() };
    attr.type_ = libbpf_sys::PERF_TYPE_SOFTWARE;
    attr.size = std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32;
    attr.config = libbpf_sys::PERF_COUNT_SW_CPU_CLOCK as u64;
    attr.__bindgen_anon_1.sample_period = period_ns;
    let (pid, cpu, group_fd, flags) = (-1, 0, -1, PERF_FLAG_FD_CLOEXEC);
    // SAFETY: attr outlives the call and has the size it declares.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const _,
            pid,
            cpu,
            group_fd,
            flags,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches `program` at `point`; `None` for [`AttachPoint::Manual`].
fn attach_program(
    program: &ProgramMut<'_>,
    point: &AttachPoint,
) -> libbpf_rs::Result<Option<Link>> {
    let link = match point {
        AttachPoint::Kprobe { func, retprobe } => program.attach_kprobe(*retprobe, func)?,
        AttachPoint::Fentry => program.attach_trace()?,
        AttachPoint::Tracepoint { category, name } => {
            program.attach_tracepoint(TracepointCategory::Custom(category.clone()), name)?
        }
        AttachPoint::RawTracepoint { name } => program.attach_raw_tracepoint(name)?,
        AttachPoint::Interval { period_ns } => {
            let perf_fd = open_cpu_clock(*period_ns)?;
            let link = program.attach_perf_event(perf_fd.as_raw_fd())?;
            // The link owns the perf event now: libbpf closes it on detach.
            let _ = perf_fd.into_raw_fd();
            link
        }
        AttachPoint::Manual => return Ok(None),
        AttachPoint::Xdp { ifindex } => program.attach_xdp(*ifindex)?,
    };
    Ok(Some(link))
}

impl LoadedObject {
    /// Attaches program `program` at `point` and keeps the link until the
    /// object is dropped. [`AttachPoint::Manual`] does nothing.
    pub fn attach(&mut self, program: &str, point: &AttachPoint) -> Result<(), Diagnostic> {
        let program = self.program(program)?;
        let (result, libbpf_output) =
            super::verifier::capture_libbpf_output(|| attach_program(&program, point));
        let link = result.map_err(|e| {
            let diagnostic = Diagnostic::plain(format!("cannot attach probe {point}: {e:#}"));
            libbpf_output
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .fold(diagnostic, |d, l| d.with_note(l))
        })?;
        self.links.extend(link);
        Ok(())
    }
}
