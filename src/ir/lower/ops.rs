//! Lowering of the operations that need more than one BPF instruction:
//! signed division and string comparison.

use super::{Lower, Val};
use crate::diag::Result;
use crate::ir::{Addr, AluOp, Cond, Inst, Operand, VReg, Width};
use crate::sema::tast::Expr;

impl Lower<'_> {
    /// Signed `/` or `%` through unsigned division of the magnitudes.
    pub(super) fn signed_div(&mut self, modulo: bool, l: VReg, r: VReg) -> VReg {
        let (a, b, neg, out) = (self.f.vreg(), self.f.vreg(), self.f.vreg(), self.f.vreg());
        self.f.push(Inst::Mov {
            dst: a,
            src: Operand::Reg(l),
        });
        self.f.push(Inst::Mov {
            dst: b,
            src: Operand::Reg(r),
        });
        self.f.push(Inst::Mov {
            dst: neg,
            src: Operand::Imm(0),
        });
        for (reg, flips) in [(a, true), (b, !modulo)] {
            let pos = self.f.label();
            self.jump_if(Cond::SGe, reg, Operand::Imm(0), pos);
            self.f.push(Inst::Neg { dst: reg, src: reg });
            if flips {
                self.alu(AluOp::Xor, neg, 1);
            }
            self.f.push(Inst::Label(pos));
        }
        let op = if modulo { AluOp::Mod } else { AluOp::Div };
        self.f.push(Inst::Alu {
            op,
            dst: out,
            lhs: Operand::Reg(a),
            rhs: Operand::Reg(b),
        });
        let done = self.f.label();
        self.jump_if(Cond::Eq, neg, Operand::Imm(0), done);
        self.f.push(Inst::Neg { dst: out, src: out });
        self.f.push(Inst::Label(done));
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
            self.f.push(Inst::Load {
                dst: ca,
                addr: Addr::Stack(sa, i),
                width: Width::B1,
            });
            self.f.push(Inst::Load {
                dst: cb,
                addr: Addr::Stack(sb, i),
                width: Width::B1,
            });
            self.jump_if(Cond::Ne, ca, Operand::Reg(cb), differ);
            self.f.push(Inst::Mov {
                dst: eq,
                src: Operand::Imm(1),
            });
            self.jump_if(Cond::Eq, ca, Operand::Imm(0), done);
        }
        self.f.push(Inst::Mov {
            dst: eq,
            src: Operand::Imm(1),
        });
        self.f.push(Inst::Jump(done));
        self.f.push(Inst::Label(differ));
        self.f.push(Inst::Mov {
            dst: eq,
            src: Operand::Imm(0),
        });
        self.f.push(Inst::Label(done));
        Ok(eq)
    }
}
