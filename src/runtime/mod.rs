//! The kernel layer: loads a BPF ELF object with libbpf-rs, attaches its
//! programs, runs BEGIN/END programs, and reads maps and ring buffers.
//!
//! Everything the kernel holds for a script lives in a [`LoadedObject`];
//! dropping it detaches every link and unloads every program and map.

mod attach;
pub mod decode;
mod features;
mod maps;
pub mod packets;
mod path_report;
pub mod paths;
pub mod pcap;
pub mod prometheus;
pub mod session;
mod verbose;
mod verifier;
mod watch;

#[cfg(test)]
mod test_programs;
#[cfg(test)]
mod tests;

use std::fmt;
use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::{Link, Object, ObjectBuilder, Program, ProgramMut};

use crate::diag::Diagnostic;

pub use features::{
    cmpxchg_supported, enable_run_stats, fentry_supported, monotonic_ns, wall_offset_ns,
};
pub use maps::{MapEntry, RingReader, SharedMap};
pub use verifier::{failing_insn, verifier_summary};

/// Number of verifier log lines [`LoadError`] shows when displayed.
const SUMMARY_LINES: usize = 8;

/// A loaded object: the libbpf object (programs and maps in the kernel)
/// and the links of the attached programs.
pub struct LoadedObject {
    // Declared first so that links are destroyed before the object.
    links: Vec<Link>,
    object: Object,
}

/// Why an object could not be opened or loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    /// The program the kernel rejected, when one was.
    pub program: Option<String>,
    /// What went wrong (libbpf's error and messages).
    pub message: String,
    /// The verifier's log for the rejected program (empty if none).
    pub verifier_log: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.program {
            Some(program) => write!(f, "program '{program}' was rejected: {}", self.message)?,
            None => f.write_str(&self.message)?,
        }
        if !self.verifier_log.is_empty() {
            write!(
                f,
                "\n{}",
                verifier_summary(&self.verifier_log, SUMMARY_LINES)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

impl From<LoadError> for Diagnostic {
    /// A diagnostic whose notes are the last lines of the verifier log.
    fn from(error: LoadError) -> Diagnostic {
        let headline = match &error.program {
            Some(program) => format!("the kernel rejected program '{program}': {}", error.message),
            None => error.message.clone(),
        };
        verifier_summary(&error.verifier_log, SUMMARY_LINES)
            .lines()
            .fold(Diagnostic::plain(headline), |diag, line| {
                diag.with_note(line)
            })
    }
}

/// Opens and loads an ELF object (as written by `object::write_object`):
/// creates its maps and runs the verifier on every program. Program types
/// come from the section names.
pub fn load(elf: &[u8]) -> Result<LoadedObject, LoadError> {
    load_reusing(elf, &[])
}

/// Like [`load`], but the maps named in `reuse` are not created: the
/// object uses the given existing maps instead (which must have the same
/// type, key and value sizes), so programs of several objects share them.
pub fn load_reusing(elf: &[u8], reuse: &[&SharedMap]) -> Result<LoadedObject, LoadError> {
    let (result, output) = verifier::capture_libbpf_output(|| {
        let mut builder = ObjectBuilder::default();
        let mut open = builder
            .name("netscript")
            .and_then(|builder| builder.open_memory(elf))?;
        for mut map in open.maps_mut() {
            let name = map.name().to_string_lossy().into_owned();
            if let Some(shared) = reuse.iter().find(|s| s.name() == name) {
                map.reuse_fd(shared.fd())?;
            }
        }
        open.load()
    });
    match result {
        Ok(object) => Ok(LoadedObject {
            links: Vec::new(),
            object,
        }),
        Err(error) => {
            let (messages, verifier_log) = verifier::split_verifier_log(&output);
            let program = if verifier_log.is_empty() {
                None
            } else {
                verifier::failing_program(&output)
            };
            let libbpf_lines: Vec<&str> = messages
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let message = match libbpf_lines.last() {
                Some(last) => format!("{error:#} ({last})"),
                None => format!("{error:#}"),
            };
            Err(LoadError {
                program,
                message,
                verifier_log,
            })
        }
    }
}

/// The number after `key:` in a `/proc/self/fdinfo` entry (0 if absent).
fn fdinfo_field(fdinfo: &str, key: &str) -> u64 {
    fdinfo
        .lines()
        .find_map(|line| {
            line.strip_prefix(key)?
                .strip_prefix(':')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

impl LoadedObject {
    /// The loaded program named `name` (its symbol name).
    fn program(&self, name: &str) -> Result<ProgramMut<'_>, Diagnostic> {
        self.object
            .progs_mut()
            .find(|program| program.name() == name)
            .ok_or_else(|| {
                Diagnostic::plain(format!("internal error: no BPF program named '{name}'"))
            })
    }

    /// Runs a `raw_tp` program (BEGIN/END) once with `BPF_PROG_TEST_RUN`
    /// and returns its return value.
    pub fn run_once(&self, program: &str) -> Result<u64, Diagnostic> {
        self.test_run(program, None)
    }

    /// Runs an XDP program once on `packet` (an Ethernet frame) with
    /// `BPF_PROG_TEST_RUN` and returns its return value (the XDP action).
    pub fn run_on_packet(&self, program: &str, packet: &[u8]) -> Result<u64, Diagnostic> {
        self.test_run(program, Some(packet))
    }

    fn test_run(&self, program: &str, data: Option<&[u8]>) -> Result<u64, Diagnostic> {
        let input = libbpf_rs::ProgramInput {
            data_in: data,
            ..Default::default()
        };
        let output = self
            .program(program)?
            .test_run(input)
            .map_err(|e| Diagnostic::plain(format!("cannot run program '{program}': {e:#}")))?;
        Ok(output.return_value.into())
    }

    /// Kernel ids of the loaded programs.
    pub fn program_ids(&self) -> Vec<u32> {
        self.object
            .progs()
            .filter_map(|program| Program::id_from_fd(program.as_fd()).ok())
            .collect()
    }

    /// The run statistics of every program, from `/proc/self/fdinfo`.
    pub fn program_stats(&self) -> Vec<ProgramStats> {
        self.object
            .progs()
            .map(|program| {
                let path = format!("/proc/self/fdinfo/{}", program.as_fd().as_raw_fd());
                let fdinfo = std::fs::read_to_string(path).unwrap_or_default();
                ProgramStats {
                    name: program.name().to_string_lossy().into_owned(),
                    run_time_ns: fdinfo_field(&fdinfo, "run_time_ns"),
                    run_cnt: fdinfo_field(&fdinfo, "run_cnt"),
                    recursion_misses: fdinfo_field(&fdinfo, "recursion_misses"),
                }
            })
            .collect()
    }
}

/// A loaded program's run statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramStats {
    /// The program's name in the object.
    pub name: String,
    /// Time spent running, ns (0 unless `kernel.bpf_stats_enabled=1`).
    pub run_time_ns: u64,
    /// Times it ran (0 unless `kernel.bpf_stats_enabled=1`).
    pub run_cnt: u64,
    /// Times the kernel skipped it because a BPF program was already
    /// running on that CPU (a tracepoint or kprobe hit in an interrupt of
    /// another program); always counted.
    pub recursion_misses: u64,
}
