//! Every expression of a program, for a pass that rewrites expressions
//! (desugaring, and `kernel_has()` folding in semantic analysis).
//! `visit` is called on an expression before its parts; when it returns
//! false the parts are not visited (the expression was replaced).

use crate::syntax::ast::*;

/// Calls `visit` on every expression of the program's items.
pub fn program(items: &mut [Item], visit: &mut impl FnMut(&mut Expr) -> bool) {
    for item in items {
        match item {
            Item::Probe(probe) => {
                if let Some(predicate) = &mut probe.predicate {
                    expr(predicate, visit);
                }
                block(&mut probe.body, visit);
            }
            Item::Fn(f) => block(&mut f.body, visit),
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

fn block(block: &mut Block, visit: &mut impl FnMut(&mut Expr) -> bool) {
    for stmt in &mut block.stmts {
        match &mut stmt.kind {
            StmtKind::Expr(e) | StmtKind::Return(Some(e)) => expr(e, visit),
            StmtKind::Return(None) => {}
            StmtKind::Assign { target, value, .. } => {
                lvalue(target, visit);
                expr(value, visit);
            }
            StmtKind::IncDec { target, .. } => lvalue(target, visit),
            StmtKind::If {
                cond,
                then_block,
                else_block,
            } => {
                expr(cond, visit);
                self::block(then_block, visit);
                if let Some(else_block) = else_block {
                    self::block(else_block, visit);
                }
            }
            StmtKind::While { cond, body } => {
                expr(cond, visit);
                self::block(body, visit);
            }
            StmtKind::Unroll { body, .. } => self::block(body, visit),
        }
    }
}

fn lvalue(target: &mut LValue, visit: &mut impl FnMut(&mut Expr) -> bool) {
    if let LValue::Map(map) = target {
        for key in &mut map.keys {
            expr(key, visit);
        }
    }
}

/// Calls `visit` on `e` and, unless it returns false, on its parts.
pub fn expr(e: &mut Expr, visit: &mut impl FnMut(&mut Expr) -> bool) {
    if !visit(e) {
        return;
    }
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
    }
}
