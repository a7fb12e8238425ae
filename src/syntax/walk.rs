//! Every expression of a program, for a pass that rewrites expressions
//! (desugaring, and `kernel_has()` folding and inlining in semantic
//! analysis). `visit` is called on an expression before its parts; when it
//! returns false the parts are not visited (the expression was replaced).
//! [`stmts`] also shows each assigned `$variable`'s name to `assigned`.

use crate::syntax::ast::*;

/// Calls `visit` on every expression of the program's items.
pub fn program(items: &mut [Item], visit: &mut impl FnMut(&mut Expr) -> bool) {
    for item in items {
        match item {
            Item::Probe(probe) => {
                if let Some(predicate) = &mut probe.predicate {
                    expr(predicate, visit);
                }
                stmts(&mut probe.body.stmts, visit, &mut |_| {});
            }
            Item::Fn(f) => stmts(&mut f.body.stmts, visit, &mut |_| {}),
            Item::Const(c) => expr(&mut c.value, visit),
            Item::Path(path) => {
                for (_, value) in &mut path.options {
                    expr(value, visit);
                }
                for stage in &mut path.stages {
                    self::stage(stage, visit);
                }
            }
            Item::Stage(s) => stage(s, visit),
            Item::StageProgram(program) => stage_program(program, visit),
            Item::Param(_) | Item::Config(_) => {}
        }
    }
}

fn stage(stage: &mut StageDecl, visit: &mut impl FnMut(&mut Expr) -> bool) {
    for alt in &mut stage.alternatives {
        let (target, guard) = match alt {
            StageAlt::Probe(probe) => (Some(&mut probe.target), &mut probe.guard),
            StageAlt::Named { guard, .. } => (None, guard),
        };
        match target {
            Some(StageTarget::Packet(packet)) => expr(packet, visit),
            Some(StageTarget::Recall { mark, span }) => {
                expr(mark, visit);
                expr(span, visit);
            }
            None => {}
        }
        if let Some(guard) = guard {
            expr(guard, visit);
        }
    }
}

fn stage_program(program: &mut StageProgram, visit: &mut impl FnMut(&mut Expr) -> bool) {
    if let Some(packet) = &mut program.packet {
        expr(packet, visit);
    }
    for stage in &mut program.stages {
        if let Some(guard) = &mut stage.guard {
            expr(guard, visit);
        }
        match &mut stage.record {
            StageRecord::Mark(mark) => expr(mark, visit),
            StageRecord::Packet(record) => {
                expr(&mut record.key, visit);
                let optional = [
                    &mut record.filter,
                    &mut record.info,
                    &mut record.group,
                    &mut record.recall,
                    &mut record.capture,
                ];
                for e in optional.into_iter().flatten() {
                    expr(e, visit);
                }
            }
        }
    }
}

/// Calls `visit` on every expression of `stmts` and `assigned` on the
/// name of every `$variable` they assign (inlined calls' bodies included).
pub fn stmts(
    stmts: &mut [Stmt],
    visit: &mut impl FnMut(&mut Expr) -> bool,
    assigned: &mut impl FnMut(&mut String),
) {
    for stmt in stmts {
        match &mut stmt.kind {
            StmtKind::Expr(e) | StmtKind::Return(Some(e)) => expr_and_vars(e, visit, assigned),
            StmtKind::Return(None) => {}
            StmtKind::Assign { target, value, .. } => {
                lvalue(target, visit, assigned);
                expr_and_vars(value, visit, assigned);
            }
            StmtKind::IncDec { target, .. } => lvalue(target, visit, assigned),
            StmtKind::If {
                cond,
                then_block,
                else_block,
            } => {
                expr_and_vars(cond, visit, assigned);
                self::stmts(&mut then_block.stmts, visit, assigned);
                if let Some(else_block) = else_block {
                    self::stmts(&mut else_block.stmts, visit, assigned);
                }
            }
            StmtKind::While { cond, body } => {
                expr_and_vars(cond, visit, assigned);
                self::stmts(&mut body.stmts, visit, assigned);
            }
            StmtKind::Unroll { body, .. } => self::stmts(&mut body.stmts, visit, assigned),
        }
    }
}

fn lvalue(
    target: &mut LValue,
    visit: &mut impl FnMut(&mut Expr) -> bool,
    assigned: &mut impl FnMut(&mut String),
) {
    match target {
        LValue::Map(map) => {
            for key in &mut map.keys {
                expr_and_vars(key, visit, assigned);
            }
        }
        LValue::Var(name, _) => assigned(name),
    }
}

/// Calls `visit` on `e` and, unless it returns false, on its parts.
pub fn expr(e: &mut Expr, visit: &mut impl FnMut(&mut Expr) -> bool) {
    expr_and_vars(e, visit, &mut |_| {});
}

/// [`expr`], showing `assigned` the variables that inlined bodies assign.
fn expr_and_vars(
    e: &mut Expr,
    visit: &mut impl FnMut(&mut Expr) -> bool,
    assigned: &mut impl FnMut(&mut String),
) {
    if !visit(e) {
        return;
    }
    let mut expr = |e: &mut Expr, visit: &mut _| expr_and_vars(e, visit, assigned);
    match &mut e.kind {
        ExprKind::Map(map) => {
            for key in &mut map.keys {
                expr(key, visit);
            }
        }
        ExprKind::Unary { expr: inner, .. }
        | ExprKind::Field { expr: inner, .. }
        | ExprKind::Cast { expr: inner, .. }
        | ExprKind::Sizeof(SizeofArg::Expr(inner)) => expr(inner, visit),
        ExprKind::Binary { lhs, rhs, .. } => {
            expr(lhs, visit);
            expr(rhs, visit);
        }
        ExprKind::Ternary {
            cond,
            then_expr,
            else_expr,
        } => {
            expr(cond, visit);
            expr(then_expr, visit);
            expr(else_expr, visit);
        }
        ExprKind::Index { expr: inner, index } => {
            expr(inner, visit);
            expr(index, visit);
        }
        ExprKind::Call { args: parts, .. } | ExprKind::Tuple(parts) => {
            for part in parts {
                expr(part, visit);
            }
        }
        ExprKind::Int(_)
        | ExprKind::Str(_)
        | ExprKind::Var(_)
        | ExprKind::Builtin(_)
        | ExprKind::Ident(_)
        | ExprKind::Sizeof(SizeofArg::Type(_))
        | ExprKind::Offsetof { .. } => {}
        ExprKind::Inlined(call) => {
            for (_, arg) in &mut call.params {
                expr(arg, visit);
            }
            if let Ok(body) = &mut call.body {
                stmts(
                    std::sync::Arc::make_mut(body).as_mut_slice(),
                    visit,
                    assigned,
                );
            }
        }
    }
}
