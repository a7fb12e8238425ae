//! `kernel_has("...")`: what the running kernel offers, decided at compile
//! time, and the code it switches off.
//!
//! A feature is `struct NAME.member[.member...]`, `enum NAME.ENUMERATOR`,
//! a bare `ENUMERATOR` or `tracepoint:CATEGORY:NAME[.field]`. An `if` or a
//! probe predicate made of such tests (with `!`, `&&`, `||`) is decided
//! while checking: only the branch taken is checked and compiled, so the
//! other may name fields this kernel lacks.
//! The maps that only skipped code writes are the script's metrics that are
//! off on this kernel; each is reported with one line saying why.

use std::collections::{HashMap, HashSet};

use crate::builtins::{self, Func};
use crate::diag::{Diagnostic, Result, Span};
use crate::kernel::btf::{Btf, Type};
use crate::kernel::tracefs;
use crate::syntax::ast::{self, BinOp, ExprKind, LValue, StmtKind, UnOp};

/// A condition decided at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decided {
    /// Its value on this kernel.
    pub value: bool,
    /// Why the code it guards is off when `value` is false (for the
    /// `else` branch, why that is off when `value` is true).
    pub why: String,
}

/// Whether this kernel has `feature` (see the module documentation).
pub(super) fn kernel_has(feature: &str, span: Span) -> Result<bool> {
    let btf = Btf::vmlinux()?;
    let bad = || {
        Diagnostic::at(
            span,
            format!(
                "kernel_has(\"{}\"): expected \"struct NAME.member\", \"enum NAME.ENUMERATOR\", \"ENUMERATOR\" or \"tracepoint:CATEGORY:NAME[.field]\"",
                feature
            ),
        )
    };
    if let Some(tracepoint) = feature.strip_prefix("tracepoint:") {
        let (event, field) = match tracepoint.split_once('.') {
            Some((event, field)) => (event, Some(field)),
            None => (tracepoint, None),
        };
        let (category, name) = event.split_once(':').ok_or_else(bad)?;
        return Ok(tracefs::tracepoint_format(category, name)
            .is_ok_and(|format| field.is_none_or(|f| format.fields.iter().any(|x| x.name == f))));
    }
    let (head, rest) = match feature.split_once(' ') {
        Some((head, rest)) => (head, rest),
        None if !feature.is_empty() && !feature.contains('.') => {
            return Ok(btf.enum_value(feature).is_some())
        }
        None => return Err(bad()),
    };
    let mut parts = rest.split('.');
    let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
    match head {
        "struct" | "union" => {
            let Some(mut ty) = btf.find_struct(name) else {
                return Ok(false);
            };
            let mut any = false;
            for member in parts {
                any = true;
                match btf.member(ty, member) {
                    Some(m) => ty = m.ty,
                    None => return Ok(false),
                }
            }
            if any {
                Ok(true)
            } else {
                Err(bad())
            }
        }
        "enum" => {
            let enumerator = parts.next().ok_or_else(bad)?;
            let Some(id) = btf.find_enum(name) else {
                return Ok(false);
            };
            Ok(matches!(btf.ty(id), Type::Enum { values, .. }
                if values.iter().any(|(n, _)| n == enumerator)))
        }
        _ => Err(bad()),
    }
}

/// `cond` decided at compile time, if it is made only of `kernel_has()`
/// tests, `!`, `&&` and `||`.
pub(super) fn decide(cond: &ast::Expr) -> Result<Option<Decided>> {
    Ok(match &cond.kind {
        ExprKind::Call { name, args }
            if builtins::function(name).is_some_and(|d| d.func == Func::KernelHas) =>
        {
            let [feature] = args.as_slice() else {
                return Ok(None);
            };
            let text = feature_text(feature)?;
            let value = kernel_has(text, feature.span)?;
            Some(Decided {
                value,
                why: missing_reason(text, value),
            })
        }
        ExprKind::Unary {
            op: UnOp::Not,
            expr,
        } => decide(expr)?.map(|d| Decided {
            value: !d.value,
            why: d.why,
        }),
        ExprKind::Binary {
            op: op @ (BinOp::And | BinOp::Or),
            lhs,
            rhs,
        } => {
            match (decide(lhs)?, decide(rhs)?) {
                (Some(a), Some(b)) => {
                    let value = if *op == BinOp::And {
                        a.value && b.value
                    } else {
                        a.value || b.value
                    };
                    // The side that decided the outcome explains it.
                    let why = if a.value == value { a.why } else { b.why };
                    Some(Decided { value, why })
                }
                _ => None,
            }
        }
        _ => None,
    })
}

/// Why code guarded by a test of `feature` is off (the test came out as
/// `value`); a missing tracepoint is said as a missing probe is.
fn missing_reason(feature: &str, value: bool) -> String {
    match feature.strip_prefix("tracepoint:") {
        Some(tracepoint) if !value => match tracepoint.split_once('.') {
            Some((event, field)) => format!("tracepoint {} has no field {}", event, field),
            None => format!("tracepoint {} not found", tracepoint),
        },
        _ if value => format!("this kernel has {}", feature),
        _ => format!("this kernel has no {}", feature),
    }
}

/// The string literal naming a feature.
pub(super) fn feature_text(arg: &ast::Expr) -> Result<&str> {
    match &arg.kind {
        ExprKind::Str(s) => Ok(s),
        _ => Err(Diagnostic::at(
            arg.span,
            "kernel_has() takes a string literal, e.g. kernel_has(\"struct tcp_sock.total_rto\")",
        )),
    }
}

/// The maps that `stmts` assign, directly or in the user functions they
/// call (each function walked once).
pub(super) fn assigned_maps(
    stmts: &[ast::Stmt],
    functions: &HashMap<String, ast::FnDecl>,
    out: &mut Vec<String>,
) {
    let mut walk = MapWalk {
        functions,
        seen: HashSet::new(),
        out,
    };
    walk.stmts(stmts);
}

/// The walk of [`assigned_maps`].
struct MapWalk<'a> {
    functions: &'a HashMap<String, ast::FnDecl>,
    seen: HashSet<&'a str>,
    out: &'a mut Vec<String>,
}

impl<'a> MapWalk<'a> {
    fn stmts(&mut self, stmts: &[ast::Stmt]) {
        for stmt in stmts {
            match &stmt.kind {
                StmtKind::Expr(e) | StmtKind::Return(Some(e)) => self.expr(e),
                StmtKind::Assign { target, value, .. } => {
                    self.target(target);
                    self.expr(value);
                }
                StmtKind::IncDec { target, .. } => self.target(target),
                StmtKind::If {
                    cond,
                    then_block,
                    else_block,
                } => {
                    self.expr(cond);
                    self.stmts(&then_block.stmts);
                    if let Some(b) = else_block {
                        self.stmts(&b.stmts);
                    }
                }
                StmtKind::While { cond, body } => {
                    self.expr(cond);
                    self.stmts(&body.stmts);
                }
                StmtKind::Unroll { body, .. } => self.stmts(&body.stmts),
                StmtKind::Return(None) => {}
            }
        }
    }

    fn target(&mut self, target: &LValue) {
        if let LValue::Map(m) = target {
            self.out.push(format!("@{}", m.name));
            m.keys.iter().for_each(|k| self.expr(k));
        }
    }

    fn expr(&mut self, e: &ast::Expr) {
        match &e.kind {
            ExprKind::Call { name, args } => {
                args.iter().for_each(|a| self.expr(a));
                if let Some((name, f)) = self.functions.get_key_value(name.as_str()) {
                    if self.seen.insert(name.as_str()) {
                        self.stmts(&f.body.stmts);
                    }
                }
            }
            ExprKind::Map(m) => m.keys.iter().for_each(|k| self.expr(k)),
            ExprKind::Unary { expr, .. }
            | ExprKind::Field { expr, .. }
            | ExprKind::Cast { expr, .. } => self.expr(expr),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Index { expr, index } => {
                self.expr(expr);
                self.expr(index);
            }
            ExprKind::Ternary {
                cond,
                then_expr,
                else_expr,
            } => {
                self.expr(cond);
                self.expr(then_expr);
                self.expr(else_expr);
            }
            ExprKind::Tuple(items) => items.iter().for_each(|i| self.expr(i)),
            _ => {}
        }
    }
}
