//! Checking of probe blocks and statements.

use super::scope::{Scope, Variables};
use super::tast::{self, Agg, MapValue, Stmt};
use super::{inline, kernel_has, memo, program_name, unify, Checker};
use crate::builtins::{self, Func, Role};
use crate::diag::{Diagnostic, Result, Span};
use crate::providers::ProbePoint;
use crate::syntax::ast::{self, ExprKind, LValue, StmtKind};
use crate::types::Ty;

/// Number of parameters of the function an fexit probe returns from
/// (where `retval` sits in its context); 0 for other probes.
pub(super) fn param_count(point: &ProbePoint) -> Result<u32> {
    Ok(match &point.target {
        crate::providers::Target::Function { name, .. }
            if point.kind == crate::providers::Kind::Fexit =>
        {
            crate::kernel::btf::Btf::of_function(name)?
                .func_signature(name)
                .map(|(p, _)| p.len() as u32)
                .unwrap_or(0)
        }
        _ => 0,
    })
}

/// Checks one probe block for one concrete probe point; `None` when its
/// predicate is a parameter test that is false (one of kernel tests that
/// fails dropped the probe before: `kernel_has::fold`), and when a
/// statement failed (each failed
/// statement's error is kept in `Checker::errors`, and checking goes on
/// with the next one).
pub(super) fn check_probe(
    checker: &mut Checker,
    block: &ast::ProbeBlock,
    spec: &ast::ProbeSpec,
    point: ProbePoint,
) -> Result<Option<tast::Program>> {
    let predicate = block.predicate.as_ref();
    let name = program_name(checker.programs.len(), &point);
    checker.writes.clear();
    let mut scope = Scope::new(checker, point.clone())?;
    let mut body = check_block(&mut scope, &block.body.stmts);
    if let Some(pred) = predicate {
        // The predicate runs before the body checked above.
        scope.memo.forget();
        let cond = condition(&mut scope, pred, "a predicate")?;
        // A predicate on parameters that is false: nothing to attach.
        if matches!(cond.kind, tast::ExprKind::Int(0)) {
            return Ok(None);
        }
        body = vec![Stmt::If(cond, body, Vec::new())];
    }
    if scope.failures > 0 {
        return Ok(None);
    }
    let param_count = param_count(&point)?;
    Ok(Some(tast::Program {
        name,
        probe: point,
        optional: block.optional,
        span: spec.span,
        entry_vars: scope.entry_vars(),
        vars: scope.var_types,
        param_count,
        writes: std::mem::take(&mut checker.writes).into_iter().collect(),
        body,
    }))
}

/// Checks a block statement by statement: a statement that fails has its
/// error kept (see [`Scope::keep_error`]) and leaves out its code and the
/// variables it assigns, and checking goes on with the next.
pub(super) fn check_block(scope: &mut Scope, stmts: &[ast::Stmt]) -> Vec<Stmt> {
    let depth = scope.memo.depth();
    let mut out = Vec::new();
    for s in stmts {
        let before = out.len();
        if let Err(e) = check_stmt(scope, s, &mut out) {
            poison_assigned(&mut scope.vars, s);
            let mut maps = Vec::new();
            kernel_has::maps_assigned_when_inlined(std::slice::from_ref(s), &mut maps);
            (scope.checker.failed_writes).extend(maps.into_iter().map(|(map, _)| map));
            scope.keep_error(e);
        }
        // What follows a possible `return` runs only sometimes.
        if memo::may_leave(&out[before..]) {
            scope.memo.open(false);
        }
    }
    scope.memo.close_to(depth);
    out
}

/// Poisons every `$variable` that `stmt` assigns, in its blocks too, so
/// that a read of one that follows is not a second error. (A map whose
/// every assignment failed is known from the round before on:
/// `Checker::failed_writes`.)
fn poison_assigned(vars: &mut Variables, stmt: &ast::Stmt) {
    match &stmt.kind {
        StmtKind::Assign {
            target: LValue::Var(name, _),
            ..
        }
        | StmtKind::IncDec {
            target: LValue::Var(name, _),
            ..
        } => vars.poison(name),
        StmtKind::If {
            then_block,
            else_block,
            ..
        } => {
            let blocks = std::iter::once(then_block).chain(else_block);
            for s in blocks.flat_map(|b| &b.stmts) {
                poison_assigned(vars, s);
            }
        }
        StmtKind::While { body, .. } | StmtKind::Unroll { body, .. } => {
            for s in &body.stmts {
                poison_assigned(vars, s);
            }
        }
        _ => {}
    }
}

/// A predicate or loop condition: an integer or a pointer.
fn condition(scope: &mut Scope, cond: &ast::Expr, what: &str) -> Result<tast::Expr> {
    let c = scope.expr(cond)?;
    scope.expect_scalar(&c, what)?;
    Ok(c)
}

fn check_stmt(scope: &mut Scope, stmt: &ast::Stmt, out: &mut Vec<Stmt>) -> Result<()> {
    match &stmt.kind {
        // print/clear/zero/delete of a metric that is off on this kernel.
        StmtKind::Expr(e) if scope.checker.acts_on_off_map(e) => {}
        StmtKind::Expr(e) => out.push(expr_stmt(scope, e)?),
        StmtKind::Assign { target, op, value } => {
            let value = match op {
                Some(op) => compound(target, *op, value.clone(), stmt.span),
                None => value.clone(),
            };
            out.push(assign(scope, target, &value)?);
        }
        StmtKind::IncDec { target, increment } => {
            let one = ast::Expr {
                kind: ExprKind::Int(1),
                span: stmt.span,
            };
            let op = if *increment {
                ast::BinOp::Add
            } else {
                ast::BinOp::Sub
            };
            let value = compound(target, op, one, stmt.span);
            out.push(assign(scope, target, &value)?);
        }
        StmtKind::If {
            cond,
            then_block,
            else_block,
        } => {
            // The blocks are checked even under a bad condition, whose
            // error is the statement's.
            let c = condition(scope, cond, "an if condition");
            let t = scope.in_region(false, |s| check_block(s, &then_block.stmts));
            let e = match else_block {
                Some(b) => scope.in_region(false, |s| check_block(s, &b.stmts)),
                None => Vec::new(),
            };
            out.push(Stmt::If(c?, t, e));
        }
        StmtKind::While { cond, body } => {
            let (c, b) = scope.in_region(true, |s| {
                let c = condition(s, cond, "a while condition");
                (c, check_block(s, &body.stmts))
            });
            out.push(Stmt::While(c?, b));
        }
        StmtKind::Unroll { count, body } => {
            let expanded = count.saturating_mul(unrolled_size(&body.stmts));
            if expanded > MAX_UNROLLED_STATEMENTS {
                return Err(Diagnostic::at(
                    stmt.span,
                    format!(
                        "unroll: {count} copies of this body make {expanded} statements; at most \
                         {MAX_UNROLLED_STATEMENTS} (a larger program would not pass the kernel's \
                         verifier): use a while loop"
                    ),
                ));
            }
            for _ in 0..*count {
                out.extend(check_block(scope, &body.stmts));
            }
        }
        StmtKind::Return(value) if !scope.frames.is_empty() => {
            out.extend(scope.function_return(value.as_ref(), stmt.span)?)
        }
        StmtKind::Return(None) => out.push(Stmt::Return),
        StmtKind::Return(Some(v)) => {
            return Err(Diagnostic::at(
                v.span,
                "only a function can return a value; a probe returns with `return;`",
            ))
        }
    }
    Ok(())
}

/// The most statements an `unroll` (nested ones included) may expand to:
/// about 100,000 BPF instructions of map updates, near what the verifier
/// takes in one program, and compiled in a fraction of a second.
const MAX_UNROLLED_STATEMENTS: u64 = 4096;

/// How many statements `stmts` stand for once every `unroll` in them is
/// expanded.
fn unrolled_size(stmts: &[ast::Stmt]) -> u64 {
    stmts
        .iter()
        .map(|s| match &s.kind {
            StmtKind::Unroll { count, body } => count.saturating_mul(unrolled_size(&body.stmts)),
            StmtKind::If {
                then_block,
                else_block,
                ..
            } => {
                let otherwise = else_block.as_ref().map_or(0, |b| unrolled_size(&b.stmts));
                1 + unrolled_size(&then_block.stmts) + otherwise
            }
            StmtKind::While { body, .. } => 1 + unrolled_size(&body.stmts),
            _ => 1,
        })
        .fold(0, u64::saturating_add)
}

/// `target op value` as an expression reading the target.
fn compound(target: &LValue, op: ast::BinOp, value: ast::Expr, span: Span) -> ast::Expr {
    let read = match target {
        LValue::Var(name, s) => ast::Expr {
            kind: ExprKind::Var(name.clone()),
            span: *s,
        },
        LValue::Map(m) => ast::Expr {
            kind: ExprKind::Map(m.clone()),
            span: m.span,
        },
    };
    ast::Expr {
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(read),
            rhs: Box::new(value),
        },
        span,
    }
}

fn assign(scope: &mut Scope, target: &LValue, value: &ast::Expr) -> Result<Stmt> {
    match target {
        LValue::Var(name, span) => {
            let v = scope.expr(value)?;
            scope.expect_storable(&v)?;
            let id = match scope.vars.get(name) {
                Some(id) => {
                    let have = &scope.var_types[id.0 as usize];
                    match (have, &v.ty) {
                        (Ty::Str(a), Ty::Str(b)) if b > a => {
                            return Err(Diagnostic::at(
                                value.span,
                                format!(
                                    "${} holds {} bytes; this string needs {}",
                                    inline::as_written(name),
                                    a,
                                    b
                                ),
                            ))
                        }
                        _ => {}
                    }
                    let merged = unify(have, &v.ty).ok_or_else(|| {
                        Diagnostic::at(
                            *span,
                            format!(
                                "${} was {} and is assigned {} here",
                                inline::as_written(name),
                                have.describe(),
                                v.ty.describe()
                            ),
                        )
                    })?;
                    if !matches!(merged, Ty::Str(_)) {
                        scope.var_types[id.0 as usize] = merged;
                    }
                    id
                }
                None => scope.declare_var(name, v.ty.clone()),
            };
            scope.note_assignment(id, &v);
            Ok(Stmt::SetVar(id, v))
        }
        LValue::Map(m) => {
            let keys = scope.keys(&m.keys)?;
            let key_tys: Vec<Ty> = keys.iter().map(|k| k.ty.clone()).collect();
            if let ExprKind::Call { name, args } = &value.kind {
                if let Some(def) = builtins::function(name).filter(|d| d.role == Role::Aggregation)
                {
                    scope.check_arity(def, args.len(), value.span)?;
                    let (agg, arg) = aggregation(scope, def.func, args, value.span)?;
                    let map = scope.checker.use_map(
                        &m.name,
                        &key_tys,
                        Some(MapValue::Agg(agg)),
                        m.span,
                    )?;
                    return Ok(Stmt::Aggregate {
                        map,
                        keys,
                        agg,
                        arg,
                    });
                }
            }
            let mut v = scope.expr(value)?;
            scope.expect_storable(&v)?;
            let map = scope.checker.use_map(
                &m.name,
                &key_tys,
                Some(MapValue::Plain(v.ty.clone())),
                m.span,
            )?;
            if let MapValue::Plain(stored) = &scope.checker.maps[map.0 as usize].value {
                widen_in_place(&mut v, stored);
            }
            Ok(Stmt::SetMap {
                map,
                keys,
                value: v,
            })
        }
    }
}

/// Gives a tuple built for a map (directly or as the value of a
/// single-`return` function) the map's wider value type, so it is built
/// in the map's layout instead of being copied into it.
fn widen_in_place(e: &mut tast::Expr, ty: &Ty) {
    if e.ty == *ty {
        return;
    }
    match (&mut e.kind, ty) {
        (tast::ExprKind::Tuple(items), Ty::Tuple(tys)) if items.len() == tys.len() => {
            for (item, t) in items.iter_mut().zip(tys) {
                widen_in_place(item, t);
            }
        }
        (
            tast::ExprKind::Inline {
                result: tast::InlineResult::Expr(inner),
                ..
            },
            _,
        ) => widen_in_place(inner, ty),
        (tast::ExprKind::Str(_), Ty::Str(_)) => {}
        _ => return,
    }
    if matches!(
        (&e.ty, ty),
        (Ty::Tuple(_), Ty::Tuple(_)) | (Ty::Str(_), Ty::Str(_))
    ) {
        e.ty = ty.clone();
    }
}

fn aggregation(
    scope: &mut Scope,
    func: Func,
    args: &[ast::Expr],
    span: Span,
) -> Result<(Agg, Option<tast::Expr>)> {
    let agg = match func {
        Func::Count => return Ok((Agg::Count, None)),
        Func::Sum => Agg::Sum,
        Func::Avg => Agg::Avg,
        Func::Min => Agg::Min,
        Func::Max => Agg::Max,
        Func::Stats => Agg::Stats,
        Func::Hist => {
            let bits = match args.get(1) {
                Some(arg) => scope.constant(arg)?,
                None => 0,
            };
            match u8::try_from(bits) {
                Ok(bits) if bits <= tast::MAX_HIST_BITS => Agg::Hist { bits },
                _ => {
                    return Err(Diagnostic::at(
                        args.get(1).map_or(span, |arg| arg.span),
                        format!(
                            "hist()'s second argument must be a constant from 0 to {}",
                            tast::MAX_HIST_BITS
                        ),
                    ))
                }
            }
        }
        Func::Lhist => {
            let min = scope.constant(&args[1])?;
            let max = scope.constant(&args[2])?;
            let step = scope.constant(&args[3])?;
            if min < 0 || max <= min || step <= 0 {
                return Err(Diagnostic::at(
                    span,
                    "lhist() needs 0 <= min < max and step > 0",
                ));
            }
            if (max - min) / step > 1000 {
                return Err(Diagnostic::at(
                    span,
                    "lhist() would have more than 1000 buckets",
                ));
            }
            Agg::Lhist { min, max, step }
        }
        _ => unreachable!("only aggregations reach here"),
    };
    let arg = scope.expr(&args[0])?;
    scope.expect_scalar(&arg, "an aggregation argument")?;
    Ok((agg, Some(arg)))
}

fn expr_stmt(scope: &mut Scope, e: &ast::Expr) -> Result<Stmt> {
    let ExprKind::Call { name, args } = &e.kind else {
        return Ok(Stmt::Expr(scope.expr(e)?));
    };
    let Some(def) = builtins::function(name).filter(|d| d.role != Role::Value) else {
        return Ok(Stmt::Expr(scope.expr(e)?));
    };
    if def.role == Role::Aggregation {
        return Err(Diagnostic::at(
            e.span,
            format!(
                "{}() must be assigned to a map, e.g. @x = {}(...)",
                name, name
            ),
        ));
    }
    scope.check_arity(def, args.len(), e.span)?;
    match def.func {
        Func::Exit => Ok(Stmt::Exit),
        Func::Printf => scope.printf(args, e.span),
        Func::Delete => {
            let ExprKind::Map(m) = &args[0].kind else {
                return Err(Diagnostic::at(
                    args[0].span,
                    "delete() takes a map element, e.g. delete(@x[key])",
                ));
            };
            let keys = scope.keys(&m.keys)?;
            let tys: Vec<Ty> = keys.iter().map(|k| k.ty.clone()).collect();
            let map = scope.checker.use_map(&m.name, &tys, None, m.span)?;
            Ok(Stmt::Delete { map, keys })
        }
        func => {
            let mut maps = Vec::new();
            for arg in args {
                if matches!(&arg.kind, ExprKind::Map(m) if scope.checker.is_off(&m.name)) {
                    continue;
                }
                let ExprKind::Map(m) = &arg.kind else {
                    return Err(Diagnostic::at(
                        arg.span,
                        format!("{}() takes whole maps, e.g. {}(@x, @y)", name, name),
                    ));
                };
                if !m.keys.is_empty() {
                    return Err(Diagnostic::at(
                        m.span,
                        format!("{}() takes whole maps, without a key", name),
                    ));
                }
                maps.push(scope.map_by_name(&m.name, m.span)?);
            }
            if func == Func::Table {
                scope.checker.check_table(&maps, e.span)?;
            }
            Ok(Stmt::MapAction(func, maps))
        }
    }
}
