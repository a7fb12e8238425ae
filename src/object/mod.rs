//! Object writing: BPF programs and map definitions as an ELF object that
//! libbpf 1.x loads (program sections, `.maps` with BTF, `license`).

use crate::codegen::ProgramCode;

/// One program: its code and the ELF section that tells libbpf its type
/// and attach point (`tracepoint/net/netif_receive_skb`, `kprobe/tcp_sendmsg`,
/// `fentry/tcp_sendmsg`, `raw_tp`, `perf_event`, `xdp`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramSection {
    /// ELF section name.
    pub section: String,
    /// The code.
    pub code: ProgramCode,
}

mod btf;
mod elf;

pub use elf::write_object;
