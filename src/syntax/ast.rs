//! The abstract syntax tree produced by the parser. Every node carries the
//! byte span of the source text it came from so later stages can point at it.

use crate::diag::Span;

/// A whole script: probe blocks (and, later, declarations) in source order.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// Top-level items in source order.
    pub items: Vec<Item>,
}

/// One top-level item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `probe, probe /pred/ { body }`
    Probe(ProbeBlock),
    /// `param name: type = default "help"`
    Param(ParamDecl),
    /// `config name = value;`
    Config(ConfigDecl),
    /// `const NAME = expr;` (its uses are replaced by the value when the
    /// program is parsed; the declaration stays for the REPL to keep).
    Const(ConstDecl),
    /// `fn name($a, $b) { ... }`
    Fn(FnDecl),
    /// `path name { key = ...; stage A = ...; stage B = ...; }`
    Path(PathDecl),
    /// `stage name = probe -> packet or ...;` outside a path: a catalogue
    /// entry that path stages refer to by name.
    Stage(StageDecl),
    /// The stages of the paths that share one probe point and one packet:
    /// never parsed, made by semantic analysis when it expands the paths
    /// (`sema::path::expand`), in place of the paths and catalogue stages.
    StageProgram(StageProgram),
}

/// A packet path: ordered stages where one packet, recognised by its key,
/// is timestamped; the last stage reports the segment latencies.
#[derive(Debug, Clone, PartialEq)]
pub struct PathDecl {
    /// Name.
    pub name: String,
    /// `template NAME { ... }`: a path only other paths extend, not traced
    /// itself. No template is left once the program is parsed.
    pub template: bool,
    /// `extends NAME`: the path or template whose settings and stages this
    /// one takes. Resolved (and `None`) once the program is parsed.
    pub base: Option<(String, Span)>,
    /// `name = expr;` settings (`key`, `filter`, `threshold`, ...), in order.
    pub options: Vec<(String, Expr)>,
    /// The stages in path order.
    pub stages: Vec<StageDecl>,
    /// `stages NAME;`: the stages of template NAME go there. Resolved (and
    /// empty) once the program is parsed.
    pub includes: Vec<StageInclude>,
    /// Span of the declaration.
    pub span: Span,
}

/// `stages NAME;` in a path: the stages of template (or path) NAME, put
/// among the path's own.
#[derive(Debug, Clone, PartialEq)]
pub struct StageInclude {
    /// The template.
    pub name: String,
    /// How many of the path's own stages come before these.
    pub at: usize,
    /// Span of the name.
    pub span: Span,
}

impl PathDecl {
    /// The value of setting `name`, if the path gives it.
    pub fn option(&self, name: &str) -> Option<&Expr> {
        self.options.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }
}

/// One stage of a path.
#[derive(Debug, Clone, PartialEq)]
pub struct StageDecl {
    /// Name.
    pub name: String,
    /// `stage?`: the stage may legitimately not fire (e.g. an upcall).
    pub optional: bool,
    /// `stage NEW replaces OLD = ...`: in a path that extends another, the
    /// stage of the base this one takes the place of. Resolved (and
    /// `None`) once the program is parsed.
    pub replaces: Option<(String, Span)>,
    /// Probe points tried in order until one exists on this kernel.
    pub alternatives: Vec<StageAlt>,
    /// Span of the stage.
    pub span: Span,
}

/// One alternative of a stage.
#[derive(Debug, Clone, PartialEq)]
pub enum StageAlt {
    /// `probe -> packet [if guard]`
    Probe(StageProbe),
    /// `NAME [if guard]`: the alternatives of the catalogue stage NAME,
    /// each with the guard added.
    Named {
        /// The catalogue stage.
        name: String,
        /// Only packets for which this holds are taken.
        guard: Option<Expr>,
        /// Span of the reference.
        span: Span,
    },
}

/// `probe -> packet if guard`: where the packet (`$skb`) is at that probe;
/// or `probe -> recall mark in span if guard` for a recalled stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageProbe {
    /// The probe point.
    pub spec: ProbeSpec,
    /// What the stage takes at that probe.
    pub target: StageTarget,
    /// Only packets (marks, for a recalled stage) for which this holds are taken.
    pub guard: Option<Expr>,
}

impl StageProbe {
    /// The source span of the whole alternative.
    pub fn span(&self) -> Span {
        let last = match (&self.guard, &self.target) {
            (Some(guard), _) => guard,
            (None, StageTarget::Packet(packet)) => packet,
            (None, StageTarget::Recall { span, .. }) => span,
        };
        Span::new(self.spec.span.start, last.span.end)
    }
}

/// What a stage alternative takes at its probe.
#[derive(Debug, Clone, PartialEq)]
pub enum StageTarget {
    /// `-> packet`: the packet's `struct sk_buff *`, evaluated in that probe.
    Packet(Expr),
    /// `-> recall mark in span`: a stage that happens before the packet
    /// exists. Its time is kept under `mark`, `(owner, position)`, and
    /// given to the first packet whose `span`, `(owner, start, length)`
    /// evaluated at the next stage, holds that position.
    Recall {
        /// `(owner, position)`, evaluated in that probe.
        mark: Expr,
        /// `(owner, start, length)`, evaluated with `$skb` at the next stage.
        span: Expr,
    },
}

/// One program of path stages (see [`Item::StageProgram`]): `$skb` bound
/// to the packet once, then each stage's guard around its record.
#[derive(Debug, Clone, PartialEq)]
pub struct StageProgram {
    /// Where its probe point is among the points the path expansion
    /// chose (`sema::path::Expanded::points`).
    pub point: usize,
    /// The packet, bound to `$skb`; `None` for recalled stages (no packet).
    pub packet: Option<Expr>,
    /// The stages, in the order the paths declare them.
    pub stages: Vec<ProgramStage>,
    /// Span of the first stage.
    pub span: Span,
}

/// One stage in a [`StageProgram`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramStage {
    /// Its path, by index among the paths expanded.
    pub path: u32,
    /// Its index among its path's stages this kernel attaches.
    pub index: u32,
    /// The guard of the alternative chosen (a catalogue stage's with the
    /// reference's added).
    pub guard: Option<Expr>,
    /// What the stage records.
    pub record: StageRecord,
    /// Span of the stage.
    pub span: Span,
    /// Span of the probe of the alternative chosen.
    pub probe_span: Span,
}

/// What a stage records under its guard.
#[derive(Debug, Clone, PartialEq)]
pub enum StageRecord {
    /// The packet's time, under its key.
    Packet(Box<PacketRecord>),
    /// A recalled stage's mark, `(owner, position)`.
    Mark(Expr),
}

/// The expressions of a stage with a packet.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketRecord {
    /// The path's key.
    pub key: Expr,
    /// The path's filter.
    pub filter: Option<Expr>,
    /// The path's `info`, at a stage that may start a record.
    pub info: Option<Expr>,
    /// The path's `hist_by`, at its last stage.
    pub group: Option<Expr>,
    /// The recalled stage's span, `(owner, start, length)`, at the first
    /// stage with a packet after a recalled stage.
    pub recall: Option<Expr>,
    /// `pkt_capture($skb)`, written at the key, at a stage that starts
    /// records of a path whose packets `--pcap` captures.
    pub capture: Option<Expr>,
}

/// `const NAME = expr;`: a value known at compile time.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstDecl {
    /// Name.
    pub name: String,
    /// The value: literals, parameters, other consts and operators.
    pub value: Expr,
    /// Span of the declaration.
    pub span: Span,
}

/// A function, inlined where it is called.
#[derive(Debug, Clone, PartialEq)]
pub struct FnDecl {
    /// Name.
    pub name: String,
    /// Parameter variable names (without `$`).
    pub params: Vec<String>,
    /// The body; `return expr;` gives the call its value.
    pub body: Block,
    /// Span of the declaration.
    pub span: Span,
}

/// `config name = value;`: a compile-time setting of the script.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDecl {
    /// The setting (`map_keys`).
    pub name: String,
    /// Its value.
    pub value: ConfigValue,
    /// Span of the declaration.
    pub span: Span,
}

/// The value of a `config` setting.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// An integer literal.
    Int(u64),
    /// The value of a script parameter.
    Param(String),
}

/// A script parameter: a command-line flag whose value is compiled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    /// Name (the flag is `--name` with `_` written as `-`).
    pub name: String,
    /// Type name (`addr`, `port`, `int`, `bool`, `duration`, `iface`, `ifaces`, `enum`).
    pub ty: String,
    /// The choices of an `enum(a, b alias(c))` type.
    pub choices: Vec<EnumChoice>,
    /// Default value as written.
    pub default: Option<String>,
    /// Help text.
    pub help: Option<String>,
    /// Other names of the flag (`alias(p, phy_iface1)`: `-p`, `--phy-iface1`).
    pub aliases: Vec<String>,
    /// Span of the declaration.
    pub span: Span,
}

/// One value of an enum parameter, with the other spellings that stand
/// for it (`detail alias(detailed)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumChoice {
    /// The value as the script compares it.
    pub value: String,
    /// Accepted on the command line for `value`.
    pub aliases: Vec<String>,
}

/// A block of statements attached to one or more probe points.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeBlock {
    /// `optional` before the probes: a probe this kernel does not have or
    /// cannot attach is skipped with a notice instead of being an error.
    pub optional: bool,
    /// The probe points sharing this body (`a, b { }`).
    pub specs: Vec<ProbeSpec>,
    /// Optional `/predicate/`.
    pub predicate: Option<Expr>,
    /// The action block.
    pub body: Block,
    /// Span of the whole probe block.
    pub span: Span,
}

/// One probe point as written, e.g. `kprobe:tcp_sendmsg`, `t:net:*`,
/// `interval:s:1`, `BEGIN`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    /// Provider name as written (`kprobe`, `k`, `tracepoint`, `BEGIN`, ...).
    pub provider: String,
    /// The colon-separated parts after the provider (may contain `*`).
    pub target: Vec<String>,
    /// Span of the probe spec text.
    pub span: Span,
}

/// `{ stmt; stmt; }`
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// Span including the braces.
    pub span: Span,
}

/// A statement with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// What the statement is.
    pub kind: StmtKind,
    /// Where it is.
    pub span: Span,
}

/// Statement kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// An expression evaluated for its effect (`printf(...)`, `exit()`).
    Expr(Expr),
    /// `$x = e`, `@m[k] = e`, `$x += e`, `@m[k] += e` (op is `None` for `=`).
    Assign {
        /// The assigned variable or map element.
        target: LValue,
        /// `Some(op)` for compound assignments such as `+=`.
        op: Option<BinOp>,
        /// The right-hand side.
        value: Expr,
    },
    /// `$x++`, `@m[k]--` and the prefix forms used as statements.
    IncDec {
        /// The incremented variable or map element.
        target: LValue,
        /// True for `++`, false for `--`.
        increment: bool,
    },
    /// `if (c) { } else if (d) { } else { }`; `else if` nests as an else block.
    If {
        /// Condition.
        cond: Expr,
        /// Taken when the condition is non-zero.
        then_block: Block,
        /// Taken otherwise.
        else_block: Option<Block>,
    },
    /// `while (c) { }` (bounded by the verifier).
    While {
        /// Loop condition.
        cond: Expr,
        /// Loop body.
        body: Block,
    },
    /// `unroll(N) { }`: the body repeated N times at compile time.
    Unroll {
        /// Repetition count (1..=100).
        count: u64,
        /// The repeated block.
        body: Block,
    },
    /// `return;` leaves the probe (or the function); `return e;` gives a
    /// function call its value.
    Return(Option<Expr>),
}

/// Something that can be assigned to.
#[derive(Debug, Clone, PartialEq)]
pub enum LValue {
    /// `$name`
    Var(String, Span),
    /// `@name[keys]`
    Map(MapRef),
}

/// `@name` or `@name[k1, k2]` (the anonymous map `@` has an empty name).
#[derive(Debug, Clone, PartialEq)]
pub struct MapRef {
    /// Map name without the `@`.
    pub name: String,
    /// Key expressions; empty when the map has no key.
    pub keys: Vec<Expr>,
    /// Span of the map reference.
    pub span: Span,
}

/// An expression with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What the expression is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// Expression kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Integer literal (decimal, hex, octal, with optional `_` separators).
    Int(u64),
    /// String literal with escapes already decoded.
    Str(String),
    /// `$name`
    Var(String),
    /// `@name[keys]` read.
    Map(MapRef),
    /// A builtin identifier: `pid`, `comm`, `arg0`, `args`, `retval`, ...
    Builtin(String),
    /// A bare identifier that is not a builtin (enum constant, etc.).
    Ident(String),
    /// `op e`
    Unary {
        /// Operator.
        op: UnOp,
        /// Operand.
        expr: Box<Expr>,
    },
    /// `l op r`
    Binary {
        /// Operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `c ? a : b`
    Ternary {
        /// Condition.
        cond: Box<Expr>,
        /// Value when true.
        then_expr: Box<Expr>,
        /// Value when false.
        else_expr: Box<Expr>,
    },
    /// `name(args)`
    Call {
        /// Function name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// `e.field` or `e->field`.
    Field {
        /// The struct (or pointer) expression.
        expr: Box<Expr>,
        /// Field name.
        field: String,
        /// True when written with `->`.
        arrow: bool,
    },
    /// `e[i]` on an array or pointer.
    Index {
        /// The array or pointer.
        expr: Box<Expr>,
        /// The index.
        index: Box<Expr>,
    },
    /// `(type)e`
    Cast {
        /// Target type.
        ty: TypeName,
        /// The converted expression.
        expr: Box<Expr>,
    },
    /// `sizeof(type)` or `sizeof(expr)`.
    Sizeof(SizeofArg),
    /// `offsetof(struct name, field)`.
    Offsetof {
        /// The struct type.
        ty: TypeName,
        /// The field (may be a dotted path `a.b`).
        field: Vec<String>,
    },
    /// `(a, b, ...)` tuple.
    Tuple(Vec<Expr>),
    /// A call of a user function, inlined before type checking (semantic
    /// analysis makes these; the parser never does).
    Inlined(Box<InlinedCall>),
}

/// A user function call with the function's body in its place: its
/// `$variables` renamed for this call alone (see `sema::inline`).
#[derive(Debug, Clone, PartialEq)]
pub struct InlinedCall {
    /// The function's name.
    pub name: String,
    /// Span of the function's declaration.
    pub decl: Span,
    /// Each parameter variable (renamed) with the argument it is bound to.
    pub params: Vec<(String, Expr)>,
    /// The body, its variables renamed; or why the call cannot be inlined
    /// (a wrong argument count, calls nested too deep), reported where
    /// the call is checked. (Shared by the calls of a recursive function
    /// at one depth, which never compile: their copies would be
    /// exponentially many.)
    pub body: Result<std::sync::Arc<Vec<Stmt>>, crate::diag::Diagnostic>,
}

/// The argument of `sizeof`.
#[derive(Debug, Clone, PartialEq)]
pub enum SizeofArg {
    /// `sizeof(struct sk_buff)`
    Type(TypeName),
    /// `sizeof(expr)`
    Expr(Box<Expr>),
}

/// A type as written in a cast or sizeof: `struct sk_buff *`, `u32`, `int8`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeName {
    /// Base name including the `struct `/`union `/`enum ` keyword if written.
    pub base: String,
    /// Number of `*`.
    pub pointer_depth: u32,
    /// Where it is.
    pub span: Span,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    /// `-e`
    Neg,
    /// `!e`
    Not,
    /// `~e`
    BitNot,
    /// `*e`
    Deref,
    /// `&e` (address of a field)
    AddrOf,
}

/// Binary operators, C precedence is handled by the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `&`
    BitAnd,
    /// `|`
    BitOr,
    /// `^`
    BitXor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
}
