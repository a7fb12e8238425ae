//! Lowering of conditions to branches: `if`, `while`, `?:`, `&&`, `||`
//! and comparisons jump on the condition instead of computing its value.

use super::Lower;
use crate::diag::Result;
use crate::ir::{Cond, Label};
use crate::sema::tast::{Expr, ExprKind as K};
use crate::syntax::ast::BinOp;
use crate::types::Ty;

impl Lower<'_> {
    /// Jumps to `target` when `cond` is false (zero).
    pub(super) fn branch_unless(&mut self, cond: &Expr, target: Label) -> Result<()> {
        self.branch(cond, false, target)
    }

    /// Jumps to `target` when `cond` is `when` (true: non-zero).
    fn branch(&mut self, cond: &Expr, when: bool, target: Label) -> Result<()> {
        if let K::Int(v) = cond.kind {
            if (v != 0) == when {
                self.f.jump(target);
            }
            return Ok(());
        }
        if let K::Binary {
            op,
            lhs,
            rhs,
            signed,
        } = &cond.kind
        {
            match op {
                BinOp::And | BinOp::Or => {
                    // `a && b` is false if either is; `a || b` is true if either is.
                    let short = (*op == BinOp::And) != when;
                    if short {
                        self.branch(lhs, when, target)?;
                        return self.branch(rhs, when, target);
                    }
                    let skip = self.f.label();
                    self.branch(lhs, !when, skip)?;
                    self.branch(rhs, when, target)?;
                    self.f.bind(skip);
                    return Ok(());
                }
                _ if is_condition(*op) && matches!(lhs.ty, Ty::Str(_)) => {
                    let equal = self.strings_equal(lhs, rhs)?;
                    let jump_when_equal = (*op == BinOp::Eq) == when;
                    let c = if jump_when_equal { Cond::Ne } else { Cond::Eq };
                    self.f.branch_imm(c, equal, 0, target);
                    return Ok(());
                }
                _ if is_condition(*op) => {
                    let lv = self.expr(lhs)?;
                    let l = self.scalar_of(lv);
                    let r = self.operand(rhs)?;
                    let c = comparison(*op, *signed);
                    let c = if when { c } else { negate(c) };
                    self.f.branch(c, l, r, target);
                    return Ok(());
                }
                _ => {}
            }
        }
        let v = self.expr(cond)?;
        let r = self.scalar_of(v);
        let c = if when { Cond::Ne } else { Cond::Eq };
        self.f.branch_imm(c, r, 0, target);
        Ok(())
    }
}

/// Whether `op` compares (`==`, `!=`, `<`, `<=`, `>`, `>=`).
pub(super) fn is_condition(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
    )
}

/// The branch condition of comparison `op`.
fn comparison(op: BinOp, signed: bool) -> Cond {
    match (op, signed) {
        (BinOp::Eq, _) => Cond::Eq,
        (BinOp::Ne, _) => Cond::Ne,
        (BinOp::Lt, false) => Cond::Lt,
        (BinOp::Le, false) => Cond::Le,
        (BinOp::Gt, false) => Cond::Gt,
        (BinOp::Ge, false) => Cond::Ge,
        (BinOp::Lt, true) => Cond::SLt,
        (BinOp::Le, true) => Cond::SLe,
        (BinOp::Gt, true) => Cond::SGt,
        _ => Cond::SGe,
    }
}

/// The condition that holds exactly when `c` does not.
fn negate(c: Cond) -> Cond {
    match c {
        Cond::Eq => Cond::Ne,
        Cond::Ne => Cond::Eq,
        Cond::Gt => Cond::Le,
        Cond::Ge => Cond::Lt,
        Cond::Lt => Cond::Ge,
        Cond::Le => Cond::Gt,
        Cond::SGt => Cond::SLe,
        Cond::SGe => Cond::SLt,
        Cond::SLt => Cond::SGe,
        Cond::SLe => Cond::SGt,
        Cond::Set => unreachable!("Set is never produced by comparisons"),
    }
}
