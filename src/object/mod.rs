//! Object writing: BPF programs and map definitions as an ELF object that
//! libbpf 1.x loads (program sections, `.maps` with BTF, `license`).

use crate::codegen::ProgramCode;

/// BPF map types used by netscript (values of `enum bpf_map_type`).
pub mod map_type {
    /// `BPF_MAP_TYPE_HASH`
    pub const HASH: u32 = 1;
    /// `BPF_MAP_TYPE_ARRAY`
    pub const ARRAY: u32 = 2;
    /// `BPF_MAP_TYPE_PERCPU_HASH`
    pub const PERCPU_HASH: u32 = 5;
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`
    pub const PERCPU_ARRAY: u32 = 6;
    /// `BPF_MAP_TYPE_STACK_TRACE`
    pub const STACK_TRACE: u32 = 7;
    /// `BPF_MAP_TYPE_LRU_HASH`
    pub const LRU_HASH: u32 = 9;
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`
    pub const LRU_PERCPU_HASH: u32 = 10;
    /// `BPF_MAP_TYPE_RINGBUF`
    pub const RINGBUF: u32 = 27;
}

/// A map definition to place in `.maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// Symbol name (unique in the object, at most 15 bytes are kept by the kernel).
    pub name: String,
    /// One of [`map_type`].
    pub map_type: u32,
    /// Key size in bytes (0 for a ring buffer).
    pub key_size: u32,
    /// Value size in bytes (0 for a ring buffer).
    pub value_size: u32,
    /// Capacity (bytes for a ring buffer).
    pub max_entries: u32,
    /// `BPF_F_*` creation flags (e.g. [`map_flags::NO_PREALLOC`]).
    pub flags: u32,
}

/// Map creation flags.
pub mod map_flags {
    /// `BPF_F_NO_PREALLOC`: allocate hash map elements on insert, not at creation.
    pub const NO_PREALLOC: u32 = 1;
    /// `BPF_F_MMAPABLE`: an array whose values start on a page boundary
    /// (used for the alignment, not for mmap).
    pub const MMAPABLE: u32 = 1 << 10;
}

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
