//! Built-in functions and variables: one table entry each, with the
//! argument counts the type checker enforces and the role that decides
//! where a call may appear.

use crate::types::{Ty, COMM_SIZE};

/// Every built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// `count()`
    Count,
    /// `sum(x)`
    Sum,
    /// `avg(x)`
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `stats(x)`
    Stats,
    /// `hist(x)`
    Hist,
    /// `lhist(x, min, max, step)`
    Lhist,
    /// `delete(@m[k])`
    Delete,
    /// `clear(@m)`
    Clear,
    /// `zero(@m)`
    Zero,
    /// `print(@m)`
    Print,
    /// `table(@a, @b, ...)`: maps as one table
    Table,
    /// `printf(fmt, ...)`
    Printf,
    /// `str(ptr [, len])`
    Str,
    /// `ntop([af,] addr)`
    Ntop,
    /// `kstack([limit])`
    Kstack,
    /// `ksym(addr)`
    Ksym,
    /// `exit()`
    Exit,
    /// `enum_name(x, "enum or enumerator" [, "prefix"])`: x printed as the
    /// name of a kernel enum's value, read from BTF.
    EnumName,
    /// `flagstr(x, "letters")`: the letters of x's set bits.
    FlagStr,
    /// `matches(x, param)`: x is in the address prefix, interface list,
    /// port or value a parameter names (always true for `any`).
    Matches,
    /// `ratelimit(N)`: true when an event may be sent now, at most N per
    /// second for all CPUs together (one limiter per call in the source).
    RateLimit,
    /// `kernel_has("struct S.member")`: 1 or 0, decided at compile time.
    KernelHas,
    /// `ntohs(x)`: the low 16 bits of x from network to host byte order.
    Ntohs,
    /// `ntohl(x)`: the low 32 bits of x from network to host byte order.
    Ntohl,
    /// `redact(x)`: x itself in the kernel (filters keep working), printed
    /// as a keyed hash under `--anonymize`.
    Redact,
    /// `walltime(t)`: the wall-clock time (ns since the Unix epoch) of
    /// monotonic time t, with the clocks' offset measured at compile time.
    Walltime,
}

/// Where a call may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Only as the value assigned to a map element (`@m[k] = count()`).
    Aggregation,
    /// As a statement; produces no value.
    Action,
    /// Anywhere an expression may appear.
    Value,
}

/// A table entry.
#[derive(Debug)]
pub struct FunctionDef {
    /// Name as called.
    pub name: &'static str,
    /// Which function.
    pub func: Func,
    /// Fewest arguments.
    pub min_args: usize,
    /// Most arguments (`usize::MAX` for printf).
    pub max_args: usize,
    /// Where it may appear.
    pub role: Role,
    /// Only computes a value from its arguments: a call repeated with the
    /// same arguments in one event may be computed once.
    pub pure: bool,
}

const fn def(
    name: &'static str,
    func: Func,
    min_args: usize,
    max_args: usize,
    role: Role,
) -> FunctionDef {
    FunctionDef {
        name,
        func,
        min_args,
        max_args,
        role,
        pure: false,
    }
}

impl FunctionDef {
    /// The entry marked [pure](FunctionDef::pure).
    const fn pure(self) -> FunctionDef {
        FunctionDef { pure: true, ..self }
    }
}

/// Every built-in function.
pub static FUNCTIONS: &[FunctionDef] = &[
    def("count", Func::Count, 0, 0, Role::Aggregation),
    def("sum", Func::Sum, 1, 1, Role::Aggregation),
    def("avg", Func::Avg, 1, 1, Role::Aggregation),
    def("min", Func::Min, 1, 1, Role::Aggregation),
    def("max", Func::Max, 1, 1, Role::Aggregation),
    def("stats", Func::Stats, 1, 1, Role::Aggregation),
    def("hist", Func::Hist, 1, 2, Role::Aggregation),
    def("lhist", Func::Lhist, 4, 4, Role::Aggregation),
    def("delete", Func::Delete, 1, 1, Role::Action),
    def("clear", Func::Clear, 1, usize::MAX, Role::Action),
    def("zero", Func::Zero, 1, usize::MAX, Role::Action),
    def("print", Func::Print, 1, usize::MAX, Role::Action),
    def("table", Func::Table, 1, usize::MAX, Role::Action),
    def("printf", Func::Printf, 1, usize::MAX, Role::Action),
    def("exit", Func::Exit, 0, 0, Role::Action),
    def("str", Func::Str, 1, 2, Role::Value),
    def("ntop", Func::Ntop, 1, 2, Role::Value).pure(),
    def("kstack", Func::Kstack, 0, 1, Role::Value),
    def("ksym", Func::Ksym, 1, 1, Role::Value),
    def("matches", Func::Matches, 2, 2, Role::Value),
    def("ratelimit", Func::RateLimit, 1, 1, Role::Value),
    def("kernel_has", Func::KernelHas, 1, 1, Role::Value).pure(),
    def("redact", Func::Redact, 1, 1, Role::Value),
    def("ntohs", Func::Ntohs, 1, 1, Role::Value).pure(),
    def("ntohl", Func::Ntohl, 1, 1, Role::Value).pure(),
    def("walltime", Func::Walltime, 1, 1, Role::Value).pure(),
    def("enum_name", Func::EnumName, 2, 3, Role::Value),
    def("flagstr", Func::FlagStr, 2, 2, Role::Value),
];

/// Finds a function by name.
pub fn function(name: &str) -> Option<&'static FunctionDef> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// bpftrace's functions that act on the system rather than observe it,
/// with what each would do: netscript has none of them (it never writes
/// memory, overrides a return value, sends a signal or runs a command).
const ACTING: [(&str, &str); 3] = [
    ("signal", "send a signal"),
    ("override", "override a kernel function's return value"),
    ("system", "run a command"),
];

/// Why `name` is no function of netscript's, when it is one of
/// bpftrace's functions that act on the system.
pub fn acting(name: &str) -> Option<String> {
    ACTING.iter().find(|(n, _)| *n == name).map(|(n, what)| {
        format!("{n}() would {what}: netscript only observes, it never changes what it traces")
    })
}

/// Built-in variables that read process or probe context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    /// Process id (tgid).
    Pid,
    /// Thread id.
    Tid,
    /// User id.
    Uid,
    /// Group id.
    Gid,
    /// Monotonic time in ns.
    Nsecs,
    /// ns since netscript started.
    Elapsed,
    /// Current CPU.
    Cpu,
    /// Current command name.
    Comm,
    /// `struct task_struct *` of the current task.
    Curtask,
    /// Current cgroup v2 id.
    Cgroup,
    /// Kernel stack of the current probe hit.
    Kstack,
    /// `pkt`: the first byte of the packet (XDP probes; resolved by the
    /// type checker, not in [`VARIABLES`]).
    Packet,
    /// `pkt_len`: the packet's length in bytes (XDP probes).
    PacketLen,
}

/// A built-in variable's table entry: name, meaning and type.
pub struct VarDef {
    /// Name as written.
    pub name: &'static str,
    /// Which variable.
    pub var: Var,
    /// Its type.
    pub ty: fn() -> Ty,
}

/// Every context-free built-in variable (`arg0`, `args`, `retval`, `func`
/// and `probe` depend on the probe and are resolved by the type checker).
pub static VARIABLES: &[VarDef] = &[
    VarDef {
        name: "pid",
        var: Var::Pid,
        ty: || Ty::Int {
            size: 4,
            signed: false,
        },
    },
    VarDef {
        name: "tid",
        var: Var::Tid,
        ty: || Ty::Int {
            size: 4,
            signed: false,
        },
    },
    VarDef {
        name: "uid",
        var: Var::Uid,
        ty: || Ty::Int {
            size: 4,
            signed: false,
        },
    },
    VarDef {
        name: "gid",
        var: Var::Gid,
        ty: || Ty::Int {
            size: 4,
            signed: false,
        },
    },
    VarDef {
        name: "nsecs",
        var: Var::Nsecs,
        ty: || Ty::U64,
    },
    VarDef {
        name: "elapsed",
        var: Var::Elapsed,
        ty: || Ty::U64,
    },
    VarDef {
        name: "cpu",
        var: Var::Cpu,
        ty: || Ty::Int {
            size: 4,
            signed: false,
        },
    },
    VarDef {
        name: "comm",
        var: Var::Comm,
        ty: || Ty::Str(COMM_SIZE),
    },
    VarDef {
        name: "curtask",
        var: Var::Curtask,
        ty: || Ty::Ptr(None),
    },
    VarDef {
        name: "cgroup",
        var: Var::Cgroup,
        ty: || Ty::U64,
    },
    VarDef {
        name: "kstack",
        var: Var::Kstack,
        ty: || Ty::KStack,
    },
];

/// Finds a context-free built-in variable.
pub fn variable(name: &str) -> Option<&'static VarDef> {
    VARIABLES.iter().find(|v| v.name == name)
}
