//! Recalled first stages of a path (`stage? NAME = PROBE -> recall MARK in
//! SPAN`): checked where they are declared (path expansion), and their
//! statements, a mark under the guard (`Stmt::PathMark`) where the stage
//! has no packet (the checker).

use super::path::int;
use super::scope::Scope;
use super::tast::{Expr, Stmt};
use crate::diag::{Diagnostic, Result};
use crate::syntax::ast;
use crate::types::Ty;

/// The statement of recalled stage `stage`: its guard around its mark.
pub(super) fn mark_stage(scope: &mut Scope, stage: &ast::ProgramStage) -> Result<Stmt> {
    let ast::StageRecord::Mark(mark) = &stage.record else {
        return Err(Diagnostic::at(
            stage.span,
            "internal error: a stage with a packet among recalled stages",
        ));
    };
    let guard = match &stage.guard {
        Some(g) => scope.expr(g)?,
        None => int(1, stage.probe_span),
    };
    scope.expect_scalar(&guard, "a stage guard")?;
    let mark = scope.in_region(false, |scope| scope.expr(mark))?;
    expect_integers(&mark, "a recalled stage's mark", "(owner, position)")?;
    let record = Stmt::PathMark {
        path: stage.path,
        mark,
    };
    Ok(Stmt::If(guard, vec![record], Vec::new()))
}

/// `$skb` where a recalled stage is: there is no packet there yet.
pub(super) fn no_packet(e: Diagnostic) -> Diagnostic {
    match e.span {
        Some(span) if e.message == "variable $skb is used before it is assigned" => Diagnostic::at(
            span,
            "a recalled stage has no packet: $skb is bound at the stages that have one",
        ),
        _ => e,
    }
}

/// Whether `stage`, declared `declared`th in its path with alternatives
/// `probes`, is recalled (`-> recall`); an error unless all or none of its
/// alternatives are, and unless a recalled stage is its path's first and
/// optional.
pub(super) fn recalled_stage(
    stage: &ast::StageDecl,
    probes: &[ast::StageProbe],
    declared: usize,
) -> Result<bool> {
    let recalled = |p: &ast::StageProbe| matches!(p.target, ast::StageTarget::Recall { .. });
    let count = probes.iter().filter(|p| recalled(p)).count();
    let why = match count {
        0 => return Ok(false),
        n if n < probes.len() => "either every alternative of a stage is recalled or none is",
        _ if declared > 0 => {
            "a recalled stage must be its path's first stage (it happens before the packet exists)"
        }
        _ if !stage.optional => {
            "a recalled stage is not recalled for every packet: declare it optional (`stage?`)"
        }
        _ => return Ok(true),
    };
    Err(Diagnostic::at(
        stage.span,
        format!("stage {}: {}", stage.name, why),
    ))
}

/// An error unless `what` (a recalled stage's mark or span, say) is a
/// tuple of integers shaped like `shape`.
pub(super) fn expect_integers(e: &Expr, what: &str, shape: &str) -> Result<()> {
    let n = shape.matches(',').count() + 1;
    match &e.ty {
        Ty::Tuple(items) if items.len() == n && items.iter().all(Ty::is_scalar) => Ok(()),
        other => Err(Diagnostic::at(
            e.span,
            format!(
                "{} must be a tuple {} of integers, not {}",
                what,
                shape,
                other.describe()
            ),
        )),
    }
}
