//! The checked program: every expression typed and every name resolved
//! (maps, variables, fields with their offsets), so lowering needs neither
//! BTF nor tracefs.

use crate::bpf::MapId;
use crate::builtins::{Func, Var};
use crate::diag::{Diagnostic, Span};
use crate::providers::ProbePoint;
use crate::syntax::ast::{BinOp, UnOp};
use crate::types::Ty;

/// A whole checked script.
#[derive(Debug, Clone)]
pub struct Script {
    /// Capacity of every keyed map (`config map_keys`).
    pub map_keys: u32,
    /// Whether the maps are printed when the run ends (`config
    /// print_maps_on_exit`).
    pub print_maps_on_exit: bool,
    /// One entry per BPF program (probe block x expanded probe point).
    pub programs: Vec<Program>,
    /// User maps, indexed by `MapId`.
    pub maps: Vec<MapDecl>,
    /// printf formats, indexed by their event id.
    pub printfs: Vec<PrintfDecl>,
    /// Whether any program records a kernel stack.
    pub uses_kstack: bool,
    /// How many `ratelimit()` limiters the script has (one per call in
    /// the source).
    pub rate_limits: u32,
    /// Rate limiters (paths' and `ratelimit()`'s) claim their slot with a
    /// plain store instead of compare-and-exchange (see
    /// [`super::Options::plain_rate_limits`]).
    pub plain_rate_limits: bool,
    /// What the script runs without on this kernel (probes, stages,
    /// metrics, fentry), each at its place in the script where it has one.
    pub warnings: Vec<Diagnostic>,
    /// Packet paths, by path id.
    pub paths: Vec<PathInfo>,
}

/// How a map's values are produced.
#[derive(Debug, Clone, PartialEq)]
pub enum MapValue {
    /// Plain assignments of this type.
    Plain(Ty),
    /// An aggregation.
    Agg(Agg),
}

/// The largest `k` of `hist(x, k)`.
pub const MAX_HIST_BITS: u8 = 5;

/// Aggregations (always per-CPU maps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
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
    /// `hist(x)` (`bits` 0, bpftrace's log2 histogram) or `hist(x, bits)`:
    /// each power-of-two bucket split into `2^bits` linear sub-buckets
    /// (see `ir::layout::hist_bucket`).
    Hist {
        /// Linear sub-bucket bits, 0..=[`MAX_HIST_BITS`].
        bits: u8,
    },
    /// `lhist(x, min, max, step)`
    Lhist {
        /// Lower bound.
        min: i64,
        /// Upper bound.
        max: i64,
        /// Bucket width.
        step: i64,
    },
}

/// A user map.
#[derive(Debug, Clone, PartialEq)]
pub struct MapDecl {
    /// Name with the `@`.
    pub name: String,
    /// Key component types (empty: no key).
    pub keys: Vec<Ty>,
    /// Value kind.
    pub value: MapValue,
}

/// A printf format and the types of its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintfDecl {
    /// The format string.
    pub format: String,
    /// Argument types in order.
    pub args: Vec<Ty>,
}

/// A packet path: its stages that attach on this kernel, in order, the
/// key type, and its settings resolved to constants.
#[derive(Debug, Clone, PartialEq)]
pub struct PathInfo {
    /// Name.
    pub name: String,
    /// The stages that are measured.
    pub stages: Vec<StageInfo>,
    /// Type of the key that recognises a packet.
    pub key: Ty,
    /// Report a packet only when its total latency reaches this (ns).
    pub threshold_ns: u64,
    /// At most this many detail events per second for all CPUs (0: no limit).
    pub rate_limit: u64,
    /// A record not completed within this is counted incomplete (ns).
    pub timeout_ns: u64,
    /// Capacity of the record map (an LRU).
    pub records: u32,
    /// Linear sub-bucket bits of the latency histograms.
    pub hist_bits: u8,
    /// Names of the groups the histograms are split into by `hist_by`
    /// (e.g. `TCP`, `UDP`, `ICMP`); empty: one group.
    pub hist_groups: Vec<String>,
    /// Send one event per completed packet.
    pub detail: bool,
    /// Keep per-segment latency histograms.
    pub histogram: bool,
    /// Record a kernel stack at every stage.
    pub stacks: bool,
    /// Print and reset the histograms this often (ns; 0: only at exit).
    pub interval_ns: u64,
    /// Where an skb's device and its ifindex and name are (from BTF).
    pub dev_offsets: Option<DevOffsets>,
    /// Each reported packet carries the first [`PCAP_SNAP`] bytes from its
    /// IP header, captured where its record starts (`--pcap`).
    ///
    /// [`PCAP_SNAP`]: crate::bpf::PCAP_SNAP
    pub capture: bool,
    /// How a packet's report is headed and described.
    pub report: PathReport,
}

impl PathInfo {
    /// What its reports are headed with: `title`, else the path's name.
    pub fn title(&self) -> &str {
        match self.report.title.as_str() {
            "" => &self.name,
            title => title,
        }
    }

    /// The first stage with a packet: it starts the packet's record (the
    /// stages before it, if any, are recalled).
    pub fn leader(&self) -> u32 {
        self.stages.iter().take_while(|s| s.recalled).count() as u32
    }
}

/// Offsets of `sk_buff.dev`, `net_device.ifindex` and `net_device.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevOffsets {
    /// `sk_buff.dev`.
    pub dev: u32,
    /// `net_device.ifindex`.
    pub ifindex: u32,
    /// `net_device.name`.
    pub name: u32,
}

/// The text layout of a path's per-packet report (`title`, `describe`,
/// `info`, `split`, `skip_note` settings).
#[derive(Debug, Clone, PartialEq)]
pub struct PathReport {
    /// Heading (`=== TITLE: time (SUBTITLE) ===`); the path's name when empty.
    pub title: String,
    /// What the heading says after the time, in parentheses (e.g. `TX`);
    /// also names the path in its histograms' headings.
    pub subtitle: String,
    /// A printf format for the `info` values, printed under the heading.
    pub describe: Option<String>,
    /// Type of the values the first stage keeps (`Ty::Void`: none).
    pub info: Ty,
    /// Index of the first stage of a second half (a reply after a request:
    /// per-half totals, round trip and the time between the halves); 0: none.
    pub split: u32,
    /// Said after a segment that skips optional stages.
    pub skip_note: String,
    /// How a packet report is laid out.
    pub style: ReportStyle,
    /// Formats (over the `info` values) of the labels of the two halves
    /// of a split path (`Path 1 (LABEL): PID=...`); empty: `Request`, `Reply`.
    pub halves: Vec<String>,
    /// Formats (over the `info` values) of what each half's line says
    /// after its process and interface (e.g. `ICMP_Type=%5$d`).
    pub half_fields: Vec<String>,
}

/// The layout of a path's packet reports (`style = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStyle {
    /// A block per packet: heading, process, SKB pointers, latencies per
    /// segment, totals, kernel stacks (the OVS TCP and ICMP RTT tools).
    Trace,
    /// Three lines per packet: `[time] description`, the latency to each
    /// stage, the total and the process (the VM network latency tool).
    Compact,
}

/// One measured stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageInfo {
    /// Name.
    pub name: String,
    /// What text reports call it: the name, or in a split path
    /// `P1:S0 (function)` as the RTT tools write it.
    pub label: String,
    /// May legitimately not fire.
    pub optional: bool,
    /// The probe it is attached to.
    pub probe: String,
    /// Happens before the packet exists: its time is recalled by the next
    /// stage (`-> recall`; only a path's first stage).
    pub recalled: bool,
}

/// One BPF program.
#[derive(Debug, Clone)]
pub struct Program {
    /// Program symbol name.
    pub name: String,
    /// Where it attaches.
    pub probe: ProbePoint,
    /// From an `optional` probe block: skipped with a notice when it
    /// cannot attach.
    pub optional: bool,
    /// Span of the probe block (for error messages).
    pub span: Span,
    /// Types of the program's `$variables`, by `VarId`.
    pub vars: Vec<Ty>,
    /// Which variables start at zero when the program starts (the others
    /// belong to an inlined function call, which starts them itself).
    pub entry_vars: Vec<bool>,
    /// Number of parameters of the probed function (where `retval` sits
    /// in an fexit context); 0 for other probes.
    pub param_count: u32,
    /// The maps the program writes (its metrics: when it cannot attach,
    /// those no other program writes are off).
    pub writes: Vec<MapId>,
    /// The statements, the predicate folded into an early return.
    pub body: Vec<Stmt>,
}

impl Program {
    /// Where the first `while` loop of the program is (its condition),
    /// looking inside `if` branches and loops, in source order.
    pub fn first_while(&self) -> Option<Span> {
        fn find(stmts: &[Stmt]) -> Option<Span> {
            stmts.iter().find_map(|s| match s {
                Stmt::While(cond, _) => Some(cond.span),
                Stmt::If(_, then, otherwise) => find(then).or_else(|| find(otherwise)),
                _ => None,
            })
        }
        find(&self.body)
    }
}

/// A `$variable` of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VarId(pub u32);

/// A checked statement.
#[derive(Debug, Clone)]
pub enum Stmt {
    /// Evaluate for the side effects.
    Expr(Expr),
    /// `$v = e`
    SetVar(VarId, Expr),
    /// `@m[k] = e`
    SetMap {
        /// The map.
        map: MapId,
        /// Key components.
        keys: Vec<Expr>,
        /// The stored value.
        value: Expr,
    },
    /// `@m[k] = agg(args)`
    Aggregate {
        /// The map.
        map: MapId,
        /// Key components.
        keys: Vec<Expr>,
        /// Which aggregation.
        agg: Agg,
        /// The aggregated value (absent for `count()`).
        arg: Option<Expr>,
    },
    /// `delete(@m[k])`
    Delete {
        /// The map.
        map: MapId,
        /// Key components.
        keys: Vec<Expr>,
    },
    /// `print`, `table`, `clear`, `zero` of one map or more (`table`: all
    /// in one table): done by user space.
    MapAction(Func, Vec<MapId>),
    /// `printf(fmt, args)` with the index into `Script::printfs`.
    Printf(u32, Vec<Expr>),
    /// `exit()`
    Exit,
    /// `if`
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    /// `while`
    While(Expr, Vec<Stmt>),
    /// `return`: leave the probe.
    Return,
    /// Leave the innermost inlined function.
    Leave,
    /// Record stage `stage` of path `path` for the packet with this key.
    PathStage {
        /// Path id.
        path: u32,
        /// Index among the path's measured stages.
        stage: u32,
        /// The packet's key.
        key: Expr,
        /// The packet (`struct sk_buff *`).
        skb: Expr,
        /// The first stage: what the path's `info` setting keeps for the report.
        info: Option<Expr>,
        /// The last stage of a path with `hist_by`: the packet's group.
        group: Option<Box<Expr>>,
        /// The first stage with a packet after a recalled stage: the
        /// packet's `(owner, start, length)`, which recalls the time of
        /// the mark whose position it holds.
        recall: Option<Box<Expr>>,
        /// A stage that starts records of a path with `capture`:
        /// `pkt_capture($skb)`, where the packet's bytes are and how many.
        capture: Option<Box<Expr>>,
    },
    /// Mark the recalled first stage of path `path`: keep its time (and
    /// context) under the mark's owner until a packet recalls it.
    PathMark {
        /// Path id.
        path: u32,
        /// `(owner, position)`.
        mark: Expr,
    },
}

/// A checked expression.
#[derive(Debug, Clone)]
pub struct Expr {
    /// Its type.
    pub ty: Ty,
    /// What it computes.
    pub kind: ExprKind,
    /// Where it was written.
    pub span: Span,
}

/// Where a field lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Kernel memory, read with `bpf_probe_read_kernel`.
    Kernel,
    /// The program context (tracepoint record), read with direct loads.
    Ctx,
    /// The packet of an XDP program, read with direct loads after a check
    /// that the read ends before the packet does.
    Packet,
}

/// The value of an inlined call.
#[derive(Debug, Clone)]
pub enum InlineResult {
    /// The function returns no value.
    Nothing,
    /// The variable every `return e` stored into.
    Var(VarId),
    /// The expression of a function whose body is a single `return e`,
    /// evaluated in place (no result variable, no copy).
    Expr(Box<Expr>),
}

/// Checked expression kinds.
#[derive(Debug, Clone)]
pub enum ExprKind {
    /// Integer constant.
    Int(i64),
    /// String constant.
    Str(String),
    /// `$v`
    Var(VarId),
    /// `@m[k]` read (0 when absent).
    MapRead {
        /// The map.
        map: MapId,
        /// Key components.
        keys: Vec<Expr>,
    },
    /// A context-free built-in variable.
    Builtin(Var),
    /// `argN` (for fentry also the named `args.x`).
    Arg(u32),
    /// `retval`
    Retval,
    /// A scalar read from memory: `base` is an address (a pointer or a
    /// record's address; the context for `Space::Ctx`), plus `offset`.
    Load {
        /// Address expression (ignored for `Space::Ctx`).
        base: Option<Box<Expr>>,
        /// Byte offset.
        offset: u32,
        /// Bytes to read (1, 2, 4, 8).
        size: u8,
        /// Bit position and width for bitfields.
        bitfield: Option<(u8, u8)>,
        /// Which memory.
        space: Space,
    },
    /// A string copied from memory at `base + offset` (char arrays, `str()`).
    LoadStr {
        /// Address expression (ignored for `Space::Ctx`).
        base: Option<Box<Expr>>,
        /// Byte offset.
        offset: u32,
        /// Stop at the first NUL (`str()`), or copy the array as is.
        nul_terminated: bool,
        /// Which memory.
        space: Space,
        /// For `__data_loc` tracepoint fields: the offset of the location word.
        data_loc: bool,
    },
    /// `base + offset` keeping the result an address (nested struct access).
    Offset(Box<Expr>, u32),
    /// `op e`
    Unary(UnOp, Box<Expr>),
    /// `l op r`; `signed` selects signed division and comparisons.
    Binary {
        /// Operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
        /// Signed semantics.
        signed: bool,
    },
    /// `c ? a : b`
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Integer conversion to the expression's type (truncation and sign
    /// extension as in C).
    Convert(Box<Expr>),
    /// `ntohs()`/`ntohl()`: the low `bits` bits of the value from network
    /// to host byte order (the bits above them cleared).
    FromNetwork {
        /// 16 or 32.
        bits: u8,
        /// The value.
        value: Box<Expr>,
    },
    /// `ntop(af, addr)`: `addr` is an integer (IPv4) or a pointer to 16 bytes.
    Ntop {
        /// Address family constant (2 or 10).
        family: u32,
        /// The address value or pointer.
        addr: Box<Expr>,
    },
    /// `ratelimit(N)`: 1 when the limiter in `slot` lets an event through
    /// now (at most `per_second` per second for all CPUs), else 0.
    RateLimit {
        /// Events per second.
        per_second: u64,
        /// The limiter's index in the rate-limit map.
        slot: u32,
    },
    /// `kstack(n)`: the stack id, with the frame limit `n` (1..=127) in
    /// bits 32..40 of the value for user space (`kstack` is a `Builtin`).
    Kstack(u8),
    /// The value itself under a type that prints it differently (`ksym()`,
    /// `enum_name()`, `flagstr()`).
    Retyped(Box<Expr>),
    /// `(a, b)`
    Tuple(Vec<Expr>),
    /// `t.N`: the element of tuple `tuple` that starts `offset` bytes in.
    Element {
        /// The tuple.
        tuple: Box<Expr>,
        /// Byte offset of the element.
        offset: u32,
    },
    /// An inlined user function call: its statements, then its value.
    Inline {
        /// Parameter bindings and the function's body.
        body: Vec<Stmt>,
        /// What the call evaluates to after the body.
        result: InlineResult,
        /// Variables of this call (parameters, locals, result): they start
        /// at zero when the call starts, not when the program does.
        locals: Vec<VarId>,
    },
    /// The 8 bytes at an offset of a memory value (a string or byte array),
    /// as an integer.
    Word(Box<Expr>, u32),
}

impl Expr {
    /// The expression with constant operators evaluated: integer
    /// arithmetic, comparisons, logic, string equality and ternaries on a
    /// constant condition.
    pub fn folded(self) -> Expr {
        let int = |v: i64, span| Expr {
            ty: Ty::I64,
            kind: ExprKind::Int(v),
            span,
        };
        match self.kind {
            ExprKind::Unary(op, ref x) => {
                let ExprKind::Int(v) = x.kind else {
                    return self;
                };
                match op {
                    UnOp::Neg => int(v.wrapping_neg(), self.span),
                    UnOp::Not => int((v == 0) as i64, self.span),
                    UnOp::BitNot => int(!v, self.span),
                    _ => self,
                }
            }
            ExprKind::Binary {
                op,
                ref lhs,
                ref rhs,
                signed,
            } => match (&lhs.kind, &rhs.kind) {
                (ExprKind::Int(a), ExprKind::Int(b)) => match fold_binary(op, *a, *b, signed) {
                    Some(v) => int(v, self.span),
                    None => self,
                },
                (ExprKind::Str(a), ExprKind::Str(b)) if matches!(op, BinOp::Eq | BinOp::Ne) => {
                    int(((a == b) == (op == BinOp::Eq)) as i64, self.span)
                }
                _ => self,
            },
            ExprKind::Ternary(c, a, b) => match c.kind {
                ExprKind::Int(v) if v != 0 => *a,
                ExprKind::Int(_) => *b,
                _ => Expr {
                    kind: ExprKind::Ternary(c, a, b),
                    ..self
                },
            },
            _ => self,
        }
    }
}

/// `a op b` on constants, as the program would compute it.
pub(super) fn fold_binary(op: BinOp, a: i64, b: i64, signed: bool) -> Option<i64> {
    let (ua, ub) = (a as u64, b as u64);
    let bool = |c: bool| c as i64;
    Some(match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::Div | BinOp::Mod if b == 0 => return None,
        BinOp::Div if signed => a.wrapping_div(b),
        BinOp::Div => (ua / ub) as i64,
        BinOp::Mod if signed => a.wrapping_rem(b),
        BinOp::Mod => (ua % ub) as i64,
        BinOp::BitAnd => a & b,
        BinOp::BitOr => a | b,
        BinOp::BitXor => a ^ b,
        BinOp::Shl => ua.wrapping_shl(b as u32) as i64,
        BinOp::Shr if signed => a.wrapping_shr(b as u32),
        BinOp::Shr => ua.wrapping_shr(b as u32) as i64,
        BinOp::Eq => bool(a == b),
        BinOp::Ne => bool(a != b),
        BinOp::Lt if signed => bool(a < b),
        BinOp::Le if signed => bool(a <= b),
        BinOp::Gt if signed => bool(a > b),
        BinOp::Ge if signed => bool(a >= b),
        BinOp::Lt => bool(ua < ub),
        BinOp::Le => bool(ua <= ub),
        BinOp::Gt => bool(ua > ub),
        BinOp::Ge => bool(ua >= ub),
        BinOp::And => bool(a != 0 && b != 0),
        BinOp::Or => bool(a != 0 || b != 0),
    })
}
