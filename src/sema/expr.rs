//! Typing of expressions inside one probe.

use std::sync::Arc;

use super::access::{offsetof, type_size};
use super::scope::Scope;
use super::tast::{self, Expr, ExprKind as K, PrintfDecl, Stmt};
use crate::bpf::MapId;
use crate::builtins::{self, Func, Role, Var};
use crate::diag::{Diagnostic, Result, Span};
use crate::format::printf::ArgKind;
use crate::kernel::btf::Btf;
use crate::providers::{self, Kind, ProbePoint, Target};
use crate::syntax::ast::{self, BinOp, ExprKind, UnOp};
use crate::syntax::MAX_DEPTH;
use crate::types::{Names, Ty, STRING_SIZE};

impl<'a, 'o> Scope<'a, 'o> {
    /// Map key expressions.
    pub fn keys(&mut self, keys: &[ast::Expr]) -> Result<Vec<Expr>> {
        keys.iter()
            .map(|k| {
                let e = self.expr(k)?;
                self.expect_storable(&e)?;
                Ok(e)
            })
            .collect()
    }

    /// A map that must already be known, by name without `@`.
    pub fn map_by_name(&mut self, name: &str, span: Span) -> Result<MapId> {
        let full = format!("@{}", name);
        match self.checker.map_ids.get(&full) {
            Some(&id) => Ok(id),
            None if self.checker.round == super::Round::Infer
                || self.checker.failed_writes.contains(&full) =>
            {
                self.checker.use_map(name, &[], None, span)
            }
            None => {
                self.checker.unknown_reads.push(full.clone());
                Err(Diagnostic::at(span, format!("unknown map {}", full)))
            }
        }
    }

    /// Notes that the program walks the kernel stack, or explains why it
    /// cannot: an XDP program runs before there is a stack worth walking,
    /// and the kernel refuses `bpf_get_stackid` there.
    fn kstack_allowed(&mut self, span: Span) -> Result<()> {
        if self.point.kind == crate::providers::Kind::Xdp {
            return Err(Diagnostic::at(
                span,
                "kstack is not available in xdp programs (the kernel allows no stack walk there)",
            ));
        }
        self.checker.uses_kstack = true;
        Ok(())
    }

    /// A compile-time integer constant.
    pub fn constant(&mut self, e: &ast::Expr) -> Result<i64> {
        let c = self.expr(e)?;
        match c.kind {
            K::Int(v) => Ok(v),
            _ => Err(Diagnostic::at(e.span, "expected a constant integer")),
        }
    }

    /// `printf(fmt, args...)`
    pub fn printf(&mut self, args: &[ast::Expr], span: Span) -> Result<Stmt> {
        let ExprKind::Str(format) = &args[0].kind else {
            return Err(Diagnostic::at(
                args[0].span,
                "printf() needs a string literal format",
            ));
        };
        let pieces = crate::format::printf::parse_format(format)
            .map_err(|m| Diagnostic::at(args[0].span, m))?;
        let mut checked = Vec::new();
        for a in &args[1..] {
            let e = self.expr(a)?;
            self.expect_storable(&e)?;
            checked.push(e);
        }
        let kinds: Vec<ArgKind> = checked
            .iter()
            .map(|e| {
                if e.ty.prints_as_integer() {
                    ArgKind::Integer
                } else {
                    ArgKind::String
                }
            })
            .collect();
        crate::format::printf::check_args(&pieces, &kinds).map_err(|m| Diagnostic::at(span, m))?;
        let id = self.checker.printfs.len() as u32;
        self.checker.printfs.push(PrintfDecl {
            format: format.clone(),
            args: checked.iter().map(|e| e.ty.clone()).collect(),
        });
        Ok(Stmt::Printf(id, checked))
    }

    /// Types an expression, folding constant sub-expressions (parameters
    /// are constants, so filters on unused parameters cost nothing).
    /// Inlined calls make the checked script deeper than the parsed
    /// source: it is held to [`MAX_DEPTH`] too, which bounds every later
    /// stage.
    pub fn expr(&mut self, e: &ast::Expr) -> Result<Expr> {
        if self.depth >= MAX_DEPTH {
            return Err(Diagnostic::at(
                e.span,
                format!(
                    "nested too deeply (more than {MAX_DEPTH} levels, counting the bodies \
                     of the functions called, which are inlined)"
                ),
            ));
        }
        self.depth += 1;
        let checked = self.expr_unfolded(e).map(Expr::folded);
        self.depth -= 1;
        checked
    }

    fn expr_unfolded(&mut self, e: &ast::Expr) -> Result<Expr> {
        let span = e.span;
        let mk = |ty: Ty, kind: K| Ok(Expr { ty, kind, span });
        match &e.kind {
            ExprKind::Int(v) => mk(Ty::I64, K::Int(*v as i64)),
            ExprKind::Str(s) => mk(Ty::Str(s.len() as u32 + 1), K::Str(s.clone())),
            ExprKind::Var(name) => {
                let id = self.read_var(name, span)?;
                mk(self.var_types[id.0 as usize].clone(), K::Var(id))
            }
            ExprKind::Map(m) => {
                let keys = self.keys(&m.keys)?;
                let tys: Vec<Ty> = keys.iter().map(|k| k.ty.clone()).collect();
                let map = self.checker.read_map(&m.name, &tys, m.span)?;
                let ty = match &self.checker.maps[map.0 as usize].value {
                    tast::MapValue::Plain(t) => t.clone(),
                    tast::MapValue::Agg(_) => Ty::I64,
                };
                mk(ty, K::MapRead { map, keys })
            }
            ExprKind::Builtin(name) => self.builtin(name, span),
            ExprKind::Ident(name) => match Btf::vmlinux().ok().and_then(|b| b.enum_value(name)) {
                Some((_, v)) => mk(Ty::I64, K::Int(v)),
                None => Err(Diagnostic::at(
                    span,
                    format!("unknown identifier '{}'", name),
                )),
            },
            ExprKind::Unary { op, expr } => self.unary(*op, expr, span),
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, span),
            ExprKind::Ternary {
                cond,
                then_expr,
                else_expr,
            } => {
                let c = self.expr(cond)?;
                self.expect_scalar(&c, "a condition")?;
                let a = self.in_region(false, |s| s.expr(then_expr))?;
                let b = self.in_region(false, |s| s.expr(else_expr))?;
                let ty = super::unify(&a.ty, &b.ty).ok_or_else(|| {
                    Diagnostic::at(
                        span,
                        format!(
                            "the branches have different types: {} and {}",
                            a.ty.describe(),
                            b.ty.describe()
                        ),
                    )
                })?;
                mk(ty, K::Ternary(Box::new(c), Box::new(a), Box::new(b)))
            }
            ExprKind::Call { name, args } => self.call(name, args, span),
            ExprKind::Inlined(call) => self.inlined_call(call, span),
            ExprKind::Field { expr, field, .. } => self.field(expr, field, span),
            ExprKind::Index { expr, index } => self.index(expr, index, span),
            ExprKind::Cast { ty, expr } => self.cast(ty, expr, span),
            ExprKind::Sizeof(arg) => {
                let size = match arg {
                    ast::SizeofArg::Type(t) => type_size(t)?,
                    ast::SizeofArg::Expr(x) => {
                        let x = self.expr(x)?;
                        match x.ty {
                            Ty::Int { size, .. } => size as u64,
                            Ty::Record(id) => Btf::vmlinux()?.size_of(id).unwrap_or(0),
                            ref t => t.storage_size() as u64,
                        }
                    }
                };
                mk(Ty::U64, K::Int(size as i64))
            }
            ExprKind::Offsetof { ty, field } => {
                let off = offsetof(ty, field)?;
                mk(Ty::U64, K::Int(off as i64))
            }
            ExprKind::Tuple(items) => {
                let items: Vec<Expr> = items.iter().map(|i| self.expr(i)).collect::<Result<_>>()?;
                for i in &items {
                    self.expect_storable(i)?;
                }
                mk(
                    Ty::Tuple(items.iter().map(|i| i.ty.clone()).collect()),
                    K::Tuple(items),
                )
            }
        }
    }

    fn builtin(&mut self, name: &str, span: Span) -> Result<Expr> {
        let provider = providers::of_kind(self.point.kind);
        let mk = |ty: Ty, kind: K| Ok(Expr { ty, kind, span });
        if let Some(def) = builtins::variable(name) {
            let ty = match def.var {
                Var::Curtask => Ty::Ptr(
                    Btf::vmlinux()
                        .ok()
                        .and_then(|b| b.find_struct("task_struct")),
                ),
                Var::Kstack => {
                    self.kstack_allowed(span)?;
                    (def.ty)()
                }
                _ => (def.ty)(),
            };
            return mk(ty, K::Builtin(def.var));
        }
        if let Some(n) = name.strip_prefix("arg").and_then(|n| n.parse::<u32>().ok()) {
            if provider.args == providers::ArgAccess::None || n > 5 {
                return Err(Diagnostic::at(
                    span,
                    format!("{} is not available in {} probes", name, provider.names[0]),
                ));
            }
            return mk(Ty::U64, K::Arg(n));
        }
        match name {
            "retval" if provider.has_retval => mk(Ty::I64, K::Retval),
            "retval" => Err(Diagnostic::at(
                span,
                format!(
                    "retval is only available in return probes, not {}",
                    provider.names[0]
                ),
            )),
            "func" => match &self.point.target {
                Target::Function { name, .. } => {
                    mk(Ty::Str(name.len() as u32 + 1), K::Str(name.clone()))
                }
                _ => Err(Diagnostic::at(
                    span,
                    "func is only available in kernel function probes",
                )),
            },
            "probe" => {
                let p = self.point.display();
                mk(Ty::Str(p.len() as u32 + 1), K::Str(p))
            }
            "args" => Err(Diagnostic::at(
                span,
                "args must be followed by a field, e.g. args->len",
            )),
            "pkt" | "pkt_len" => self.packet_builtin(name, span),
            _ => Err(Diagnostic::at(span, format!("unknown builtin '{}'", name))),
        }
    }

    fn unary(&mut self, op: UnOp, inner: &ast::Expr, span: Span) -> Result<Expr> {
        match op {
            UnOp::Deref => {
                let p = self.expr(inner)?;
                self.deref(p, span)
            }
            UnOp::AddrOf => {
                let x = self.expr(inner)?;
                self.address_of(x, span)
            }
            _ => {
                let x = self.expr(inner)?;
                self.expect_scalar(&x, "an operand")?;
                let ty = if op == UnOp::Not { Ty::U64 } else { Ty::I64 };
                Ok(Expr {
                    ty,
                    kind: K::Unary(op, Box::new(x)),
                    span,
                })
            }
        }
    }

    fn binary(&mut self, op: BinOp, lhs: &ast::Expr, rhs: &ast::Expr, span: Span) -> Result<Expr> {
        let l = self.expr(lhs)?;
        // The right operand of && and || runs only sometimes.
        let r = if matches!(op, BinOp::And | BinOp::Or) {
            self.in_region(false, |s| s.expr(rhs))?
        } else {
            self.expr(rhs)?
        };
        let comparison = matches!(
            op,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        );
        if let (Ty::Str(_), Ty::Str(_)) = (&l.ty, &r.ty) {
            if matches!(op, BinOp::Eq | BinOp::Ne) {
                return Ok(Expr {
                    ty: Ty::U64,
                    kind: K::Binary {
                        op,
                        lhs: Box::new(l),
                        rhs: Box::new(r),
                        signed: false,
                    },
                    span,
                });
            }
        }
        if matches!(l.ty, Ty::PacketPtr(_)) || matches!(r.ty, Ty::PacketPtr(_)) {
            return self.packet_arith(op, l, r, span);
        }
        self.expect_scalar(&l, "an operand")?;
        self.expect_scalar(&r, "an operand")?;
        if let (BinOp::Shl | BinOp::Shr, K::Int(n)) = (op, &r.kind) {
            if !(0..64).contains(n) {
                return Err(Diagnostic::at(
                    r.span,
                    format!("cannot shift by {n}: a shift count is 0 to 63"),
                ));
            }
        }
        let signed = l.ty.is_signed() && r.ty.is_signed();
        let ty = if comparison || matches!(op, BinOp::And | BinOp::Or) {
            Ty::U64
        } else if signed {
            Ty::I64
        } else {
            Ty::U64
        };
        Ok(Expr {
            ty,
            kind: K::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
                signed,
            },
            span,
        })
    }

    fn call(&mut self, name: &str, args: &[ast::Expr], span: Span) -> Result<Expr> {
        let def = builtins::function(name).ok_or_else(|| {
            let why =
                builtins::acting(name).unwrap_or_else(|| format!("unknown function '{name}'"));
            Diagnostic::at(span, why)
        })?;
        match def.role {
            Role::Aggregation => {
                return Err(Diagnostic::at(
                    span,
                    format!(
                        "{}() must be assigned to a map, e.g. @x = {}(...)",
                        name, name
                    ),
                ))
            }
            Role::Action => {
                return Err(Diagnostic::at(
                    span,
                    format!("{}() has no value; use it as a statement", name),
                ))
            }
            Role::Value => {}
        }
        self.check_arity(def, args.len(), span)?;
        let mk = |ty: Ty, kind: K| Ok(Expr { ty, kind, span });
        match def.func {
            Func::Str => {
                let len = match args.get(1) {
                    Some(a) => self.constant(a)?.clamp(1, 256) as u32 + 1,
                    None => STRING_SIZE,
                };
                let p = self.expr(&args[0])?;
                match p.ty {
                    Ty::Str(_) => Ok(p),
                    _ => {
                        self.expect_scalar(&p, "str()'s argument")?;
                        let kind = K::LoadStr {
                            base: Some(Box::new(p)),
                            offset: 0,
                            nul_terminated: true,
                            space: tast::Space::Kernel,
                            data_loc: false,
                        };
                        mk(Ty::Str(len), kind)
                    }
                }
            }
            Func::Ntop => {
                let (family, addr) = match args.len() {
                    2 => (Some(self.constant(&args[0])?), &args[1]),
                    _ => (None, &args[0]),
                };
                let a = self.expr(addr)?;
                let width = match &a.ty {
                    Ty::Str(n) if *n == 4 || *n == 16 => *n,
                    Ty::Int { size, .. } => *size as u32,
                    _ => {
                        return Err(Diagnostic::at(
                            a.span,
                            "ntop() takes an integer IPv4 address or a 4- or 16-byte array",
                        ))
                    }
                };
                let family = match family {
                    Some(f) => f as u32,
                    None if width == 16 => 10,
                    None => 2,
                };
                if family != 2 && family != 10 {
                    return Err(Diagnostic::at(
                        span,
                        "ntop() family must be AF_INET (2) or AF_INET6 (10)",
                    ));
                }
                mk(
                    Ty::Inet,
                    K::Ntop {
                        family,
                        addr: Box::new(a),
                    },
                )
            }
            Func::Kstack => {
                self.kstack_allowed(span)?;
                let limit = match args.first() {
                    Some(a) => self.constant(a)?,
                    None => 0,
                };
                if !(0..=crate::bpf::STACK_DEPTH as i64).contains(&limit) {
                    return Err(Diagnostic::at(
                        span,
                        format!("kstack() keeps at most {} frames", crate::bpf::STACK_DEPTH),
                    ));
                }
                mk(Ty::KStack, K::Kstack(limit as u8))
            }
            Func::Matches => {
                let x = self.expr(&args[0])?;
                // A parameter may be named like a builtin (`cgroup`).
                let (ExprKind::Ident(name) | ExprKind::Builtin(name)) = &args[1].kind else {
                    return Err(Diagnostic::at(
                        args[1].span,
                        "matches() takes a parameter name as its second argument",
                    ));
                };
                let Some(value) = self.checker.options.params.get(name).cloned() else {
                    return Err(Diagnostic::at(
                        args[1].span,
                        format!("unknown parameter '{}'", name),
                    ));
                };
                super::params::matches(x, &value, span)
            }
            Func::RateLimit => {
                let per_second = self.constant(&args[0])?;
                if per_second <= 0 {
                    return Err(Diagnostic::at(
                        args[0].span,
                        "ratelimit() needs a positive number of events per second",
                    ));
                }
                let slot = match self.checker.rate_limits.iter().position(|s| *s == span) {
                    Some(i) => i,
                    None => {
                        self.checker.rate_limits.push(span);
                        self.checker.rate_limits.len() - 1
                    }
                };
                mk(
                    Ty::U64,
                    K::RateLimit {
                        per_second: per_second as u64,
                        slot: slot as u32,
                    },
                )
            }
            // Every call with one argument is folded before checking.
            Func::KernelHas => Err(Diagnostic::at(
                span,
                "kernel_has() is decided before checking and cannot be used here",
            )),
            Func::Redact => {
                let a = self.expr(&args[0])?;
                match &a.ty {
                    // Addresses are always hashed under --anonymize.
                    Ty::Inet => Ok(a),
                    Ty::Named(names) if matches!(names.as_ref(), Names::Redacted(_)) => Ok(a),
                    Ty::Int { .. } => mk(
                        Ty::Named(Arc::new(Names::Redacted(a.ty.clone()))),
                        K::Retyped(Box::new(a)),
                    ),
                    other => Err(Diagnostic::at(
                        a.span,
                        format!(
                            "redact() takes an integer or an address (ntop()), not {}",
                            other.describe()
                        ),
                    )),
                }
            }
            Func::Ntohs | Func::Ntohl => {
                let value = self.expr(&args[0])?;
                self.expect_scalar(&value, &format!("{}()'s argument", name))?;
                let bits = if def.func == Func::Ntohs { 16 } else { 32 };
                let kind = match value.kind {
                    K::Int(v) => {
                        let bytes = (v as u64).to_le_bytes();
                        let n = bits as usize / 8;
                        let mut be = [0u8; 8];
                        be[..n].copy_from_slice(&bytes[..n]);
                        be[..n].reverse();
                        K::Int(u64::from_le_bytes(be) as i64)
                    }
                    _ => K::FromNetwork {
                        bits,
                        value: Box::new(value),
                    },
                };
                mk(Ty::I64, kind)
            }
            Func::Walltime => {
                let t = self.expr(&args[0])?;
                self.expect_scalar(&t, "walltime()'s argument")?;
                let offset = Expr {
                    ty: Ty::I64,
                    kind: K::Int(self.checker.options.wall_offset_ns),
                    span,
                };
                mk(
                    Ty::U64,
                    K::Binary {
                        op: BinOp::Add,
                        lhs: Box::new(t),
                        rhs: Box::new(offset),
                        signed: false,
                    },
                )
            }
            Func::Ksym => {
                let a = self.expr(&args[0])?;
                self.expect_scalar(&a, "ksym()'s argument")?;
                mk(Ty::KSym, K::Retyped(Box::new(a)))
            }
            Func::EnumName | Func::FlagStr => {
                let a = self.expr(&args[0])?;
                self.expect_scalar(&a, &format!("{}()'s first argument", name))?;
                let texts = args[1..]
                    .iter()
                    .map(literal_text)
                    .collect::<Result<Vec<&str>>>()?;
                let names = if def.func == Func::EnumName {
                    enum_names(texts[0], texts.get(1).copied().unwrap_or(""), args[1].span)?
                } else {
                    Names::Flags(texts[0].chars().collect())
                };
                mk(Ty::Named(Arc::new(names)), K::Retyped(Box::new(a)))
            }
            _ => unreachable!("value functions are handled above"),
        }
    }
}

/// Is this the `fentry`/`kprobe` kind whose arguments come from a BTF
/// function signature?
/// The text of a string literal argument.
fn literal_text(e: &ast::Expr) -> Result<&str> {
    match &e.kind {
        ExprKind::Str(s) => Ok(s),
        _ => Err(Diagnostic::at(e.span, "expected a string literal")),
    }
}

/// The enumerators of the kernel enum named `name`, or of the enum that has
/// an enumerator `name` (anonymous enums such as the TCP states), with
/// `prefix` removed from their names.
fn enum_names(name: &str, prefix: &str, span: Span) -> Result<Names> {
    let btf = Btf::vmlinux()?;
    let id = btf
        .find_enum(name)
        .or_else(|| btf.enum_value(name).map(|(id, _)| id))
        .ok_or_else(|| {
            Diagnostic::at(
                span,
                format!("the kernel's BTF has no enum or enumerator '{}'", name),
            )
        })?;
    let crate::kernel::btf::Type::Enum { values, .. } = btf.ty(id) else {
        return Err(Diagnostic::at(span, format!("'{}' is not an enum", name)));
    };
    Ok(Names::Enum(
        values
            .iter()
            .map(|(n, v)| (*v, n.strip_prefix(prefix).unwrap_or(n).to_string()))
            .collect(),
    ))
}

pub(super) fn has_btf_args(point: &ProbePoint) -> bool {
    matches!(
        point.kind,
        Kind::Kprobe | Kind::Kretprobe | Kind::Fentry | Kind::Fexit
    )
}
