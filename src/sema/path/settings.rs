//! A path's settings (`threshold`, `title`, `halves`, ...): constants once
//! parameters have their values, evaluated by the path expansion pass
//! into the path's [`PathInfo`], before any expression is typed.

use crate::diag::{Diagnostic, Result, Span};
use crate::kernel::btf::Btf;
use crate::sema::access::{offsetof, type_size};
use crate::sema::tast::{self, fold_binary, PathInfo};
use crate::sema::{unify, Options};
use crate::syntax::ast::{self, BinOp, ExprKind, SizeofArg, UnOp};
use crate::types::Ty;

/// Packets in flight a path's record table holds unless `records` says
/// otherwise.
pub const DEFAULT_RECORDS: i64 = 4096;
/// The most packets in flight a path's record table may be asked to hold.
pub const MAX_RECORDS: u32 = 1 << 24;

/// Setting names a path accepts, besides `key` and `filter`.
pub(super) const OPTIONS: &[&str] = &[
    "threshold",
    "rate_limit",
    "timeout",
    "records",
    "hist_bits",
    "hist_by",
    "hist_groups",
    "detail",
    "histogram",
    "stacks",
    "interval",
    "title",
    "subtitle",
    "describe",
    "info",
    "split",
    "skip_note",
    "style",
    "halves",
    "half_fields",
    "enabled",
];

/// The settings that hold report formats (checked against the values
/// they format once those are typed).
const FORMAT_SETTINGS: [&str; 3] = ["describe", "halves", "half_fields"];

/// What a path's settings make of it: its [`PathInfo`] without stages or
/// types, and each of its report formats with the place of its setting.
pub(super) fn path_info(
    decl: &ast::PathDecl,
    options: &Options,
) -> Result<(PathInfo, Vec<(String, Span)>)> {
    let option = |name: &str| decl.option(name);
    let constant = |name: &str, default: i64| -> Result<i64> {
        match option(name) {
            Some(e) => constant(e),
            None => Ok(default),
        }
    };
    let info = PathInfo {
        name: decl.name.clone(),
        stages: Vec::new(),
        key: Ty::Void,
        threshold_ns: constant("threshold", 0)?.max(0) as u64,
        rate_limit: constant("rate_limit", 0)?.max(0) as u64,
        timeout_ns: constant("timeout", 5_000_000_000)?.max(1) as u64,
        // bpftrace's map size: a table a stage finds in the CPU caches
        // (docs/performance.md); `evicted` tells when it is too small.
        records: match options.path_records {
            Some(n) => n,
            None => constant("records", DEFAULT_RECORDS)?.clamp(1, MAX_RECORDS.into()) as u32,
        },
        hist_bits: constant("hist_bits", 3)?.clamp(0, tast::MAX_HIST_BITS as i64) as u8,
        hist_groups: hist_groups(decl)?,
        detail: constant("detail", 1)? != 0,
        histogram: constant("histogram", 1)? != 0,
        stacks: constant("stacks", 0)? != 0,
        interval_ns: constant("interval", 0)?.max(0) as u64,
        dev_offsets: skb_dev_offsets(),
        capture: false,
        report: tast::PathReport {
            title: setting_str(option("title"))?.unwrap_or_default(),
            subtitle: setting_str(option("subtitle"))?.unwrap_or_default(),
            describe: setting_str(option("describe"))?,
            info: Ty::Void,
            split: constant("split", 0)?.max(0) as u32,
            skip_note: setting_str(option("skip_note"))?.unwrap_or_default(),
            style: match setting_str(option("style"))?.as_deref() {
                None | Some("trace") => tast::ReportStyle::Trace,
                Some("compact") => tast::ReportStyle::Compact,
                Some(other) => {
                    return Err(Diagnostic::at(
                        option("style").map_or(decl.span, |e| e.span),
                        format!("unknown report style '{}' (trace, compact)", other),
                    ))
                }
            },
            halves: half_settings(option("halves"))?,
            half_fields: half_settings(option("half_fields"))?,
        },
    };
    let report = &info.report;
    let formats = [
        report.describe.iter().collect::<Vec<_>>(),
        report.halves.iter().collect(),
        report.half_fields.iter().collect(),
    ];
    let placed = FORMAT_SETTINGS
        .iter()
        .zip(formats)
        .filter_map(|(setting, formats)| Some((option(setting)?.span, formats)))
        .flat_map(|(span, formats)| formats.into_iter().map(move |f| (f.clone(), span)))
        .collect();
    Ok((info, placed))
}

/// A setting with one constant string per half of a split path.
fn half_settings(e: Option<&ast::Expr>) -> Result<Vec<String>> {
    match e {
        Some(e) => strings(e, Some(2), "two strings, one per half"),
        None => Ok(Vec::new()),
    }
}

/// The names of the groups `hist_by` splits the histograms into.
fn hist_groups(decl: &ast::PathDecl) -> Result<Vec<String>> {
    match (decl.option("hist_by"), decl.option("hist_groups")) {
        (None, None) => Ok(Vec::new()),
        (Some(_), Some(e)) => strings(e, None, "one string per group"),
        (by, groups) => Err(Diagnostic::at(
            by.or(groups).map_or(decl.span, |e| e.span),
            "`hist_by` (a packet's group, 0 to N-1) and `hist_groups` (the N groups' names) go together",
        )),
    }
}

/// A tuple of constant strings (`count` of them, if given; a single
/// string is a tuple of one).
fn strings(e: &ast::Expr, count: Option<usize>, what: &str) -> Result<Vec<String>> {
    let items = match &e.kind {
        ExprKind::Tuple(items) => items.iter().collect(),
        _ => vec![e],
    };
    if count.is_some_and(|n| n != items.len()) {
        return Err(Diagnostic::at(
            e.span,
            format!("expected {}: (\"...\", \"...\")", what),
        ));
    }
    items
        .into_iter()
        .map(|i| Ok(setting_str(Some(i))?.unwrap_or_default()))
        .collect()
}

/// A constant string setting, if given.
fn setting_str(e: Option<&ast::Expr>) -> Result<Option<String>> {
    let Some(e) = e else {
        return Ok(None);
    };
    match value(e)? {
        Some(Value::Str(s)) => Ok(Some(s)),
        _ => Err(Diagnostic::at(e.span, "expected a constant string")),
    }
}

/// A constant integer setting (`enabled`, `threshold`, ...).
pub(super) fn constant(e: &ast::Expr) -> Result<i64> {
    match value(e)? {
        Some(Value::Int(v, _)) => Ok(v),
        _ => Err(Diagnostic::at(e.span, "expected a constant integer")),
    }
}

/// The value of a constant expression.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// An integer, and whether it is signed: an `int64` (literals, enum
    /// constants, and the checker gives every folded operation that
    /// type) or a `uint64` (`sizeof`, `offsetof`).
    Int(i64, bool),
    /// A string.
    Str(String),
}

impl Value {
    /// The type the checker gives the expression.
    fn ty(&self) -> Ty {
        match self {
            Value::Int(_, true) => Ty::I64,
            Value::Int(_, false) => Ty::U64,
            Value::Str(s) => Ty::Str(s.len() as u32 + 1),
        }
    }

    /// The integer and whether it is signed, or the checker's error for a
    /// string where `what` needs an integer.
    fn integer(self, what: &str, span: Span) -> Result<(i64, bool)> {
        match self {
            Value::Int(v, signed) => Ok((v, signed)),
            other => Err(Diagnostic::at(
                span,
                format!("{} must be an integer, not {}", what, other.ty().describe()),
            )),
        }
    }
}

/// The value of `e`, folded as the checker folds constants (literals,
/// kernel enum constants, `sizeof`, `offsetof`, and operators and
/// ternaries on them), with the
/// checker's errors for what it would reject; `None` when `e` is not a
/// constant.
fn value(e: &ast::Expr) -> Result<Option<Value>> {
    let span = e.span;
    let int = |v: i64| Ok(Some(Value::Int(v, true)));
    let size = |v: u64| Ok(Some(Value::Int(v as i64, false)));
    match &e.kind {
        ExprKind::Int(v) => int(*v as i64),
        ExprKind::Sizeof(SizeofArg::Type(ty)) => size(type_size(ty)?),
        ExprKind::Sizeof(SizeofArg::Expr(x)) => match value(x)?.map(|v| v.ty()) {
            Some(Ty::Int { size: bytes, .. }) => size(bytes.into()),
            Some(ty) => size(ty.storage_size().into()),
            None => Ok(None),
        },
        ExprKind::Offsetof { ty, field } => size(offsetof(ty, field)?),
        ExprKind::Str(s) => Ok(Some(Value::Str(s.clone()))),
        ExprKind::Ident(name) => match Btf::vmlinux().ok().and_then(|b| b.enum_value(name)) {
            Some((_, v)) => int(v),
            None => Err(Diagnostic::at(
                span,
                format!("unknown identifier '{}'", name),
            )),
        },
        ExprKind::Unary { op, expr } if !matches!(op, UnOp::Deref | UnOp::AddrOf) => {
            let Some(x) = value(expr)? else {
                return Ok(None);
            };
            let (v, _) = x.integer("an operand", expr.span)?;
            match op {
                UnOp::Neg => int(v.wrapping_neg()),
                UnOp::Not => int((v == 0) as i64),
                UnOp::BitNot => int(!v),
                _ => Ok(None),
            }
        }
        ExprKind::Binary { op, lhs, rhs } => binary(*op, lhs, rhs),
        ExprKind::Ternary {
            cond,
            then_expr,
            else_expr,
        } => {
            let Some(c) = value(cond)? else {
                return Ok(None);
            };
            let (c, _) = c.integer("a condition", cond.span)?;
            let (a, b) = (value(then_expr)?, value(else_expr)?);
            if let (Some(a), Some(b)) = (&a, &b) {
                if unify(&a.ty(), &b.ty()).is_none() {
                    return Err(Diagnostic::at(
                        span,
                        format!(
                            "the branches have different types: {} and {}",
                            a.ty().describe(),
                            b.ty().describe()
                        ),
                    ));
                }
            }
            Ok(if c != 0 { a } else { b })
        }
        _ => Ok(None),
    }
}

/// The value of `lhs op rhs` (see [`value`]).
fn binary(op: BinOp, lhs: &ast::Expr, rhs: &ast::Expr) -> Result<Option<Value>> {
    let (Some(l), Some(r)) = (value(lhs)?, value(rhs)?) else {
        return Ok(None);
    };
    if let (Value::Str(a), Value::Str(b), BinOp::Eq | BinOp::Ne) = (&l, &r, op) {
        return Ok(Some(Value::Int(
            ((a == b) == (op == BinOp::Eq)) as i64,
            true,
        )));
    }
    let (a, signed_a) = l.integer("an operand", lhs.span)?;
    let (b, signed_b) = r.integer("an operand", rhs.span)?;
    if matches!(op, BinOp::Shl | BinOp::Shr) && !(0..64).contains(&b) {
        return Err(Diagnostic::at(
            rhs.span,
            format!("cannot shift by {b}: a shift count is 0 to 63"),
        ));
    }
    // Folded, the operation is an `int64` whatever its operands were.
    let folded = fold_binary(op, a, b, signed_a && signed_b);
    Ok(folded.map(|v| Value::Int(v, true)))
}

/// Offsets of `sk_buff.dev` and `net_device.ifindex`, to record the
/// interface at each stage.
fn skb_dev_offsets() -> Option<tast::DevOffsets> {
    let btf = Btf::vmlinux().ok()?;
    let member = |s: &str, m: &str| Some(btf.member(btf.find_struct(s)?, m)?.bit_offset / 8);
    Some(tast::DevOffsets {
        dev: member("sk_buff", "dev")?,
        ifindex: member("net_device", "ifindex")?,
        name: member("net_device", "name")?,
    })
}
