//! The kernel's BPF vocabulary every stage of the pipeline shares: helper
//! function numbers, map types and flags, a map's definition and its id,
//! where a program attaches, and the sizes every stage agrees on. A leaf:
//! it imports no other module of netscript, so semantic analysis, the IR,
//! code generation, object writing and the runtime all use it without
//! depending on each other for it.

use std::fmt;

/// Capacity of user maps (bpftrace's default; hash maps are preallocated,
/// so this is also what map creation costs at start-up).
pub const MAP_ENTRIES: u32 = 4096;
/// Frames kept per kernel stack.
pub const STACK_DEPTH: u32 = 127;
/// Bytes of a packet `--pcap` captures, from its IP header on.
pub const PCAP_SNAP: u32 = 128;

/// Kernel helper function numbers used by the code generator.
pub mod helper {
    /// `bpf_map_lookup_elem(map, key)`
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    /// `bpf_map_update_elem(map, key, value, flags)`
    pub const MAP_UPDATE_ELEM: u32 = 2;
    /// `bpf_map_delete_elem(map, key)`
    pub const MAP_DELETE_ELEM: u32 = 3;
    /// `bpf_ktime_get_ns()`
    pub const KTIME_GET_NS: u32 = 5;
    /// `bpf_get_smp_processor_id()`
    pub const GET_SMP_PROCESSOR_ID: u32 = 8;
    /// `bpf_get_current_pid_tgid()`
    pub const GET_CURRENT_PID_TGID: u32 = 14;
    /// `bpf_get_current_uid_gid()`
    pub const GET_CURRENT_UID_GID: u32 = 15;
    /// `bpf_get_current_comm(buf, size)`
    pub const GET_CURRENT_COMM: u32 = 16;
    /// `bpf_get_stackid(ctx, map, flags)`
    pub const GET_STACKID: u32 = 27;
    /// `bpf_get_current_task()`
    pub const GET_CURRENT_TASK: u32 = 35;
    /// `bpf_get_current_cgroup_id()`
    pub const GET_CURRENT_CGROUP_ID: u32 = 80;
    /// `bpf_probe_read_kernel(dst, size, src)`
    pub const PROBE_READ_KERNEL: u32 = 113;
    /// `bpf_probe_read_kernel_str(dst, size, src)`
    pub const PROBE_READ_KERNEL_STR: u32 = 115;
    /// `bpf_ringbuf_output(map, data, size, flags)`
    pub const RINGBUF_OUTPUT: u32 = 130;
    /// `bpf_ringbuf_query(map, flags)`
    pub const RINGBUF_QUERY: u32 = 134;
    /// `bpf_get_func_ip(ctx)`
    pub const GET_FUNC_IP: u32 = 173;
}

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

/// Map creation flags.
pub mod map_flags {
    /// `BPF_F_NO_PREALLOC`: allocate hash map elements on insert, not at creation.
    pub const NO_PREALLOC: u32 = 1;
    /// `BPF_F_MMAPABLE`: an array whose values start on a page boundary
    /// (used for the alignment, not for mmap).
    pub const MMAPABLE: u32 = 1 << 10;
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

/// A BPF map of the program, by index into the script's map table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapId(pub u32);

/// Where (and whether) a loaded program is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachPoint {
    /// A kprobe (or kretprobe when `retprobe`) on kernel function `func`.
    Kprobe {
        /// Kernel function name.
        func: String,
        /// Attach at function return instead of entry.
        retprobe: bool,
    },
    /// fentry/fexit: the target is in the program's section name.
    Fentry,
    /// A tracepoint `category:name`.
    Tracepoint {
        /// Tracepoint group (e.g. `net`).
        category: String,
        /// Tracepoint name (e.g. `netif_receive_skb`).
        name: String,
    },
    /// A raw tracepoint.
    RawTracepoint {
        /// Tracepoint name (e.g. `netif_receive_skb`).
        name: String,
    },
    /// A software CPU-clock perf event on CPU 0 firing every `period_ns`.
    Interval {
        /// Period in nanoseconds.
        period_ns: u64,
    },
    /// Not attached: BEGIN/END programs run with `LoadedObject::run_once` (runtime).
    Manual,
    /// XDP on the network interface `ifindex`.
    Xdp {
        /// Interface index.
        ifindex: i32,
    },
}

impl fmt::Display for AttachPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachPoint::Kprobe {
                func,
                retprobe: false,
            } => write!(f, "kprobe:{func}"),
            AttachPoint::Kprobe {
                func,
                retprobe: true,
            } => write!(f, "kretprobe:{func}"),
            AttachPoint::Fentry => f.write_str("fentry"),
            AttachPoint::Tracepoint { category, name } => write!(f, "tracepoint:{category}:{name}"),
            AttachPoint::RawTracepoint { name } => write!(f, "rawtracepoint:{name}"),
            AttachPoint::Interval { period_ns } => write!(f, "interval:{period_ns}ns"),
            AttachPoint::Manual => f.write_str("manual"),
            AttachPoint::Xdp { ifindex } => write!(f, "xdp on interface {ifindex}"),
        }
    }
}
