//! The typed part of path expansion: the checker types each stage
//! program [`expand`](super::expand) made, and gives each path the types
//! of its key and `info` from its stages.

use crate::diag::{Diagnostic, Result, Span};
use crate::format::printf::ArgKind;
use crate::kernel::btf::Btf;
use crate::sema::recall::{expect_integers, mark_stage, no_packet};
use crate::sema::scope::Scope;
use crate::sema::stmt::param_count;
use crate::sema::tast::{self, Expr, Stmt};
use crate::sema::{program_name, Checker};
use crate::syntax::ast;
use crate::types::Ty;

impl Checker<'_> {
    /// Adds the programs of the paths' stages, typed. Each path's key and
    /// `info` types come from its stages: the key's must be the same at
    /// every stage.
    pub(in crate::sema) fn stage_programs(
        &mut self,
        programs: &[&ast::StageProgram],
    ) -> Result<()> {
        for stage_program in programs {
            let program = self.stage_program(stage_program)?;
            for stmt in &program.body {
                let Stmt::If(_, inner, _) = stmt else {
                    continue;
                };
                let Some(Stmt::PathStage {
                    path,
                    stage,
                    key,
                    info: recorded,
                    ..
                }) = inner.first()
                else {
                    continue;
                };
                let span = (stage_program.stages.iter())
                    .find(|s| s.path == *path && s.index == *stage)
                    .expect("a stage of the program")
                    .span;
                let key_ty = key.ty.clone();
                let info_ty = recorded.as_ref().map_or(Ty::Void, |i| i.ty.clone());
                let info = &mut self.paths[*path as usize];
                if *stage == info.leader() {
                    info.report.info = info_ty;
                }
                match (&info.key, &key_ty) {
                    (Ty::Void, _) => info.key = key_ty,
                    (have, new) if have != new => {
                        return Err(Diagnostic::at(
                            span,
                            format!(
                                "the key is {} at this stage but {} at the first",
                                new.describe(),
                                have.describe()
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            self.programs.push(program);
        }
        let stages = programs.iter().flat_map(|p| &p.stages);
        for stage in stages {
            let info = &self.paths[stage.path as usize];
            if stage.index != info.leader() {
                continue;
            }
            // Without info, the formats take the key's values.
            let values = match &info.report.info {
                Ty::Void => &info.key,
                info => info,
            };
            for (format, span) in &self.expanded.paths[stage.path as usize].formats {
                check_report_format(format, values, *span)?;
            }
        }
        Ok(())
    }

    /// The program of a stage program: `$skb` bound once, then each
    /// stage's guard and its path's filter around its record. Stages that
    /// may start a record keep the `info` values; the first stage with a
    /// packet after a recalled one evaluates the packet's span. A recalled
    /// stage has no packet: only its guard is around its mark.
    fn stage_program(&mut self, stage_program: &ast::StageProgram) -> Result<tast::Program> {
        let point = self.expanded.points[stage_program.point].clone();
        let name = program_name(self.programs.len(), &point);
        let param_count = param_count(&point)?;
        let mut scope = Scope::new(self, point.clone())?;
        let mut body = Vec::new();
        let skb = match &stage_program.packet {
            Some(packet) => {
                let packet = scope.expr(packet)?;
                scope.expect_scalar(&packet, "a stage's packet")?;
                let skb_ty = Ty::Ptr(Btf::vmlinux().ok().and_then(|b| b.find_struct("sk_buff")));
                let skb = scope.declare_var("skb", skb_ty);
                let value = Expr {
                    ty: Ty::U64,
                    kind: tast::ExprKind::Var(skb),
                    span: packet.span,
                };
                body.push(Stmt::SetVar(skb, packet));
                Some(value)
            }
            None => None,
        };
        for stage in &stage_program.stages {
            let (ast::StageRecord::Packet(record), Some(skb)) = (&stage.record, &skb) else {
                body.push(mark_stage(&mut scope, stage).map_err(no_packet)?);
                continue;
            };
            body.push(packet_stage(&mut scope, stage, record, skb)?);
        }
        Ok(tast::Program {
            name,
            probe: point,
            optional: false,
            span: stage_program.span,
            entry_vars: scope.entry_vars(),
            vars: scope.var_types,
            param_count,
            writes: Vec::new(),
            body,
        })
    }
}

/// The statement of a stage with a packet (`skb`): its guard and its
/// path's filter around its record.
fn packet_stage(
    scope: &mut Scope,
    stage: &ast::ProgramStage,
    record: &ast::PacketRecord,
    skb: &Expr,
) -> Result<Stmt> {
    // The guard always runs: what it computes serves every stage after
    // it, and so does the filter of a stage without a guard. A guarded
    // stage's filter runs only when the guard holds, and the key and
    // `info` only when both do: they are checked in a region of their own
    // (sema/memo.rs), shared with each other but not with the next stage.
    let guard = stage.guard.as_ref().map(|g| scope.expr(g)).transpose()?;
    let filter = record.filter.as_ref();
    let always = match (&guard, filter) {
        (None, Some(f)) => Some(scope.expr(f)?),
        _ => None,
    };
    // The span is checked (and lowered) before `info`, which runs only
    // when a record starts: what `info` computes may serve it.
    let (condition, key, recall, info, group, capture) =
        scope.in_region(false, |scope| -> Result<_> {
            let condition = match (guard, always, filter) {
                (None, Some(f), _) => f,
                (None, None, _) => int(1, stage.probe_span),
                (Some(g), _, Some(f)) => and(g, scope.expr(f)?),
                (Some(g), _, None) => g,
            };
            scope.expect_scalar(&condition, "a stage guard")?;
            let key = scope.expr(&record.key)?;
            scope.expect_storable(&key)?;
            let recall = match &record.recall {
                Some(span) => {
                    let v = scope.expr(span)?;
                    expect_integers(&v, "a recalled stage's span", "(owner, start, length)")?;
                    Some(Box::new(v))
                }
                None => None,
            };
            let info = match &record.info {
                Some(e) => {
                    let v = scope.expr(e)?;
                    scope.expect_storable(&v)?;
                    Some(v)
                }
                None => None,
            };
            let group = match &record.group {
                Some(e) => {
                    let g = scope.expr(e)?;
                    scope.expect_scalar(&g, "`hist_by`")?;
                    Some(Box::new(g))
                }
                None => None,
            };
            let capture = match &record.capture {
                Some(call) => {
                    let capture = scope.expr(call)?;
                    expect_integers(
                        &capture,
                        "pkt_capture($skb)",
                        "(start, length, wire length)",
                    )?;
                    Some(Box::new(capture))
                }
                None => None,
            };
            Ok((condition, key, recall, info, group, capture))
        })?;
    let record = Stmt::PathStage {
        path: stage.path,
        stage: stage.index,
        info,
        group,
        recall,
        capture,
        key,
        skb: skb.clone(),
    };
    Ok(Stmt::If(condition, vec![record], Vec::new()))
}

/// The integer `v`, typed, at `span`.
pub(in crate::sema) fn int(v: i64, span: Span) -> Expr {
    Expr {
        ty: Ty::I64,
        kind: tast::ExprKind::Int(v),
        span,
    }
}

fn and(a: Expr, b: Expr) -> Expr {
    let span = a.span.join(b.span);
    Expr {
        ty: Ty::U64,
        kind: tast::ExprKind::Binary {
            op: ast::BinOp::And,
            lhs: Box::new(a),
            rhs: Box::new(b),
            signed: false,
        },
        span,
    }
    .folded()
}

/// An error unless a report format (`describe`, `halves`, `half_fields`)
/// fits the values it formats (`info`'s, else the key's).
fn check_report_format(format: &str, info: &Ty, span: Span) -> Result<()> {
    let items = match info {
        Ty::Void => Vec::new(),
        Ty::Tuple(items) => items.clone(),
        other => vec![other.clone()],
    };
    let kinds: Vec<ArgKind> = items
        .iter()
        .map(|t| {
            if t.prints_as_integer() {
                ArgKind::Integer
            } else {
                ArgKind::String
            }
        })
        .collect();
    let pieces =
        crate::format::printf::parse_format(format).map_err(|m| Diagnostic::at(span, m))?;
    crate::format::printf::check_report_args(&pieces, &kinds)
        .map_err(|m| Diagnostic::at(span, format!("format and info do not fit: {}", m)))
}
