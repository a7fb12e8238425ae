//! `kernel_has("...")`: what the running kernel offers, decided at compile
//! time, and the code it switches off.
//!
//! A feature is `struct NAME.member[.member...]`, `enum NAME.ENUMERATOR`,
//! a bare `ENUMERATOR` or `tracepoint:CATEGORY:NAME[.field]`.
//!
//! [`fold`] is a pass over the AST before type checking: an `if` or a
//! probe predicate made of such tests (with `!`, `&&`, `||`) is decided,
//! and only the branch taken is left (spliced in place of the `if`; a
//! probe whose predicate fails is dropped), so the other may name fields
//! this kernel lacks; any other `kernel_has()` becomes 0 or 1. The maps
//! that only dropped code writes are the script's metrics that are off on
//! this kernel; each is reported with one line saying why, at its write.

use std::collections::{HashMap, HashSet};
use std::mem;

use crate::builtins::{self, Func};
use crate::diag::{Diagnostic, Result, Span};
use crate::kernel::btf::{Btf, Type};
use crate::kernel::tracefs;
use crate::syntax::ast::{self, BinOp, ExprKind, LValue, StmtKind, UnOp};
use crate::syntax::walk;

/// A map assignment that folding dropped.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SwitchedOff {
    /// The map, with its `@`.
    pub map: String,
    /// Why the code is off on this kernel.
    pub why: String,
    /// The assignment's target.
    pub at: Span,
}

/// A program with its `kernel_has()` tests decided.
#[derive(Debug)]
pub(super) struct Folded {
    /// The program without the code this kernel switches off.
    pub program: ast::Program,
    /// What probes drop (always reported when the metric is not live).
    pub in_probes: Vec<SwitchedOff>,
    /// What each function drops, by the start of its declaration (counts
    /// only where the function is called).
    pub in_functions: HashMap<usize, Vec<SwitchedOff>>,
    /// Malformed `kernel_has()` tests.
    pub errors: Vec<Diagnostic>,
}

/// Decides every `kernel_has()` of `program` (see the module comment);
/// `written` is the program as written (what dropped code writes is found
/// through its functions).
pub(super) fn fold(written: &ast::Program, mut program: ast::Program) -> Folded {
    let mut fold = Fold {
        written,
        functions: None,
        off: Vec::new(),
        called: HashSet::new(),
        pending: Vec::new(),
        errors: Vec::new(),
    };
    let mut in_probes = Vec::new();
    program.items.retain_mut(|item| match item {
        ast::Item::Probe(probe) => {
            let kept = fold.probe(probe);
            in_probes.append(&mut fold.off);
            kept
        }
        ast::Item::Fn(_) => true,
        other => {
            walk::program(std::slice::from_mut(other), &mut |e| fold.expr(e));
            true
        }
    });
    // Only the functions called are folded: a kernel test in a library
    // function the script does not use reads no BTF.
    let mut in_functions = HashMap::new();
    while let Some(name) = fold.pending.pop() {
        for item in &mut program.items {
            match item {
                ast::Item::Fn(f) if f.name == name => {
                    fold.stmts(&mut f.body.stmts);
                    in_functions.insert(f.span.start, mem::take(&mut fold.off));
                }
                _ => {}
            }
        }
    }
    Folded {
        program,
        in_probes,
        in_functions,
        errors: fold.errors,
    }
}

/// The state of [`fold`].
struct Fold<'w> {
    /// The program as written.
    written: &'w ast::Program,
    /// Its functions by name, once code is dropped (the maps that code
    /// writes through them).
    functions: Option<HashMap<String, ast::FnDecl>>,
    /// What the item being folded drops.
    off: Vec<SwitchedOff>,
    /// The names called so far (each function is folded once).
    called: HashSet<String>,
    /// Called functions not folded yet.
    pending: Vec<String>,
    errors: Vec<Diagnostic>,
}

impl Fold<'_> {
    /// Folds a probe block; false when its predicate fails on this kernel.
    fn probe(&mut self, probe: &mut ast::ProbeBlock) -> bool {
        if let Some(decided) = probe.predicate.as_ref().and_then(|p| self.decide(p)) {
            if !decided.value {
                self.switch_off(&probe.body.stmts, &decided.why);
                return false;
            }
            probe.predicate = None;
        }
        if let Some(predicate) = &mut probe.predicate {
            self.walk_expr(predicate);
        }
        self.stmts(&mut probe.body.stmts);
        true
    }

    /// Folds statements, splicing the branch taken of each decided `if`.
    fn stmts(&mut self, stmts: &mut Vec<ast::Stmt>) {
        let mut folded = Vec::with_capacity(stmts.len());
        for mut stmt in mem::take(stmts) {
            if let StmtKind::If {
                cond,
                then_block,
                else_block,
            } = &mut stmt.kind
            {
                if let Some(decided) = self.decide(cond) {
                    let (taken, dropped) = if decided.value {
                        (Some(then_block), else_block.as_mut())
                    } else {
                        (else_block.as_mut(), Some(then_block))
                    };
                    if let Some(dropped) = dropped {
                        self.switch_off(&dropped.stmts, &decided.why);
                    }
                    if let Some(taken) = taken {
                        self.stmts(&mut taken.stmts);
                        folded.append(&mut taken.stmts);
                    }
                    continue;
                }
            }
            self.stmt(&mut stmt);
            folded.push(stmt);
        }
        *stmts = folded;
    }

    /// Folds the expressions and blocks of one statement.
    fn stmt(&mut self, stmt: &mut ast::Stmt) {
        match &mut stmt.kind {
            StmtKind::Expr(e) | StmtKind::Return(Some(e)) => self.walk_expr(e),
            StmtKind::Return(None) => {}
            StmtKind::Assign { target, value, .. } => {
                self.lvalue(target);
                self.walk_expr(value);
            }
            StmtKind::IncDec { target, .. } => self.lvalue(target),
            StmtKind::If {
                cond,
                then_block,
                else_block,
            } => {
                self.walk_expr(cond);
                self.stmts(&mut then_block.stmts);
                if let Some(b) = else_block {
                    self.stmts(&mut b.stmts);
                }
            }
            StmtKind::While { cond, body } => {
                self.walk_expr(cond);
                self.stmts(&mut body.stmts);
            }
            StmtKind::Unroll { body, .. } => self.stmts(&mut body.stmts),
        }
    }

    fn lvalue(&mut self, target: &mut LValue) {
        if let LValue::Map(m) = target {
            m.keys.iter_mut().for_each(|k| self.walk_expr(k));
        }
    }

    fn walk_expr(&mut self, e: &mut ast::Expr) {
        walk::expr(e, &mut |e| self.expr(e));
    }

    /// A `kernel_has()` test becomes its value, 0 or 1 (0 when malformed:
    /// its error is kept); false once replaced. Notes the functions called.
    fn expr(&mut self, e: &mut ast::Expr) -> bool {
        if let ExprKind::Call { name, .. } = &e.kind {
            if builtins::function(name).is_none() && self.called.insert(name.clone()) {
                self.pending.push(name.clone());
            }
        }
        let is_test = matches!(&e.kind, ExprKind::Call { name, args }
            if args.len() == 1 && builtins::function(name).is_some_and(|d| d.func == Func::KernelHas));
        if is_test {
            let value = self.decide(e).is_some_and(|d| d.value);
            e.kind = ExprKind::Int(u64::from(value));
        }
        !is_test
    }

    /// `cond` decided, or `None` (its errors kept).
    fn decide(&mut self, cond: &ast::Expr) -> Option<Decided> {
        decide(cond).unwrap_or_else(|e| {
            self.errors.push(e);
            None
        })
    }

    /// Records the maps `stmts` assign as switched off for `why`.
    fn switch_off(&mut self, stmts: &[ast::Stmt], why: &str) {
        let written = self.written;
        let functions = self.functions.get_or_insert_with(|| {
            let mut functions = HashMap::new();
            for item in &written.items {
                if let ast::Item::Fn(f) = item {
                    // The script's comes first and wins over the library's.
                    functions.entry(f.name.clone()).or_insert_with(|| f.clone());
                }
            }
            functions
        });
        let mut maps = Vec::new();
        assigned_maps(stmts, functions, &mut maps);
        self.off
            .extend(maps.into_iter().map(|(map, at)| SwitchedOff {
                map,
                why: why.to_string(),
                at,
            }));
    }
}

/// A condition decided at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decided {
    /// Its value on this kernel.
    pub value: bool,
    /// Why the code it guards is off when `value` is false (for the
    /// `else` branch, why that is off when `value` is true).
    pub why: String,
}

/// Whether this kernel has `feature` (see the module documentation).
fn kernel_has(feature: &str, span: Span) -> Result<bool> {
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
fn decide(cond: &ast::Expr) -> Result<Option<Decided>> {
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
fn feature_text(arg: &ast::Expr) -> Result<&str> {
    match &arg.kind {
        ExprKind::Str(s) => Ok(s),
        _ => Err(Diagnostic::at(
            arg.span,
            "kernel_has() takes a string literal, e.g. kernel_has(\"struct tcp_sock.total_rto\")",
        )),
    }
}

/// The maps that code the checker sees (its calls inlined) assigns, each
/// with the assignment's target: [`assigned_maps`] after inlining.
pub(super) fn maps_assigned_when_inlined(stmts: &[ast::Stmt], out: &mut Vec<(String, Span)>) {
    assigned_maps(stmts, &HashMap::new(), out);
}

/// The maps that `stmts` assign, directly or in the user functions they
/// call (each function walked once), each with the assignment's target.
/// `functions` are those calls name before inlining (none after it: the
/// walk goes through the inlined calls' bodies).
pub(super) fn assigned_maps<'a>(
    stmts: &'a [ast::Stmt],
    functions: &'a HashMap<String, ast::FnDecl>,
    out: &'a mut Vec<(String, Span)>,
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
    out: &'a mut Vec<(String, Span)>,
}

impl<'a> MapWalk<'a> {
    fn stmts(&mut self, stmts: &'a [ast::Stmt]) {
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

    fn target(&mut self, target: &'a LValue) {
        if let LValue::Map(m) = target {
            self.out.push((format!("@{}", m.name), m.span));
            m.keys.iter().for_each(|k| self.expr(k));
        }
    }

    fn expr(&mut self, e: &'a ast::Expr) {
        match &e.kind {
            ExprKind::Call { name, args } => {
                args.iter().for_each(|a| self.expr(a));
                if let Some((name, f)) = self.functions.get_key_value(name.as_str()) {
                    if self.seen.insert(name.as_str()) {
                        self.stmts(&f.body.stmts);
                    }
                }
            }
            ExprKind::Inlined(call) => {
                call.params.iter().for_each(|(_, a)| self.expr(a));
                if let Ok(body) = &call.body {
                    if self.seen.insert(call.name.as_str()) {
                        self.stmts(body);
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

#[cfg(test)]
mod tests {
    use super::super::{check, Options};
    use crate::syntax::parse;

    /// Each warning of `src` and the source text it points at.
    fn warnings(src: &str) -> Vec<(String, String)> {
        let ast = parse(src).unwrap_or_else(|e| panic!("parse: {}", e.message));
        let script = check(&ast, &Options::default()).unwrap_or_else(|e| panic!("{}", e.message));
        let at = |d: &crate::diag::Diagnostic| d.span.map(|s| src[s.start..s.end].to_string());
        (script.warnings.iter())
            .map(|w| (w.message.clone(), at(w).unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_metric_off_is_reported_at_its_write() {
        let src = r#"fn rto($sk) { if (kernel_has("struct sock.nope")) { @rto = count(); } return 1; }
BEGIN { $r = rto(0); }"#;
        assert_eq!(
            warnings(src),
            [(
                "metric @rto off: this kernel has no struct sock.nope".to_string(),
                "@rto".to_string()
            )]
        );
    }

    #[test]
    fn what_a_function_switches_off_counts_only_where_it_is_called() {
        let src = r#"fn rto($sk) { if (kernel_has("struct sock.nope")) { @rto = count(); } return 1; }
BEGIN { @calls = count(); }"#;
        assert_eq!(warnings(src), []);
        // A function nothing calls is not folded (nor checked) at all.
        assert_eq!(
            warnings("fn unused() { if (kernel_has(3)) { } } BEGIN { }"),
            []
        );
    }

    #[test]
    fn a_malformed_test_is_one_error_at_its_argument() {
        let src = r#"BEGIN { $x = kernel_has(3); if (kernel_has($x)) { @a = 1; } }"#;
        let ast = parse(src).unwrap_or_else(|e| panic!("parse: {}", e.message));
        let e = check(&ast, &Options::default()).expect_err(src);
        let places: Vec<&str> = std::iter::once(&e)
            .chain(&e.also)
            .map(|d| d.span.map_or("", |s| &src[s.start..s.end]))
            .collect();
        assert_eq!(places, ["3", "$x"], "{}", e.message);
        assert!(e.message.starts_with("kernel_has() takes a string literal"));
    }
}
