//! Lowering of the operations that need more than one BPF instruction:
//! signed division and string comparison.

use super::{Lower, Val};
use crate::diag::Result;
use crate::ir::{Addr, AluOp, Cond, VReg, Width};
use crate::sema::tast::Expr;

impl Lower<'_> {
    /// Signed `/` or `%` through unsigned division of the magnitudes.
    pub(super) fn signed_div(&mut self, modulo: bool, l: VReg, r: VReg) -> VReg {
        let (a, b, neg, out) = (self.f.vreg(), self.f.vreg(), self.f.vreg(), self.f.vreg());
        self.f.mov_reg(a, l);
        self.f.mov_reg(b, r);
        self.f.mov_imm(neg, 0);
        for (reg, flips) in [(a, true), (b, !modulo)] {
            let pos = self.f.label();
            self.f.branch_imm(Cond::SGe, reg, 0, pos);
            self.f.neg(reg, reg);
            if flips {
                self.f.alu_imm(AluOp::Xor, neg, neg, 1);
            }
            self.f.bind(pos);
        }
        let op = if modulo { AluOp::Mod } else { AluOp::Div };
        self.f.alu_reg(op, out, a, b);
        let done = self.f.label();
        self.f.branch_imm(Cond::Eq, neg, 0, done);
        self.f.neg(out, out);
        self.f.bind(done);
        out
    }

    /// 1 if two strings are equal up to the first NUL (or the shorter buffer).
    pub(super) fn strings_equal(&mut self, a: &Expr, b: &Expr) -> Result<VReg> {
        let (Val::Mem(sa, la), Val::Mem(sb, lb)) = (self.expr(a)?, self.expr(b)?) else {
            unreachable!("strings are memory values");
        };
        let (eq, ca, cb) = (self.f.vreg(), self.f.vreg(), self.f.vreg());
        let (differ, done) = (self.f.label(), self.f.label());
        for i in 0..la.min(lb) as i32 {
            self.f.load_into(ca, Addr::Stack(sa, i), Width::B1);
            self.f.load_into(cb, Addr::Stack(sb, i), Width::B1);
            self.f.branch_reg(Cond::Ne, ca, cb, differ);
            self.f.mov_imm(eq, 1);
            self.f.branch_imm(Cond::Eq, ca, 0, done);
        }
        self.f.mov_imm(eq, 1);
        self.f.jump(done);
        self.f.bind(differ);
        self.f.mov_imm(eq, 0);
        self.f.bind(done);
        Ok(eq)
    }
}
