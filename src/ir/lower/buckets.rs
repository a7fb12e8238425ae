//! Histogram bucket indexes computed in the kernel: `hist(x)`, `hist(x, k)`
//! and `lhist()`. `format::loghist::hist_index` is the Rust reference of
//! [`Lower::hist_bucket`] and the tests check the two agree.

use super::Lower;
use crate::ir::{AluOp, Cond, Inst, Operand, VReg};

impl Lower<'_> {
    /// Pushes `dst = lhs op rhs`.
    pub(super) fn alu3(&mut self, op: AluOp, dst: VReg, lhs: Operand, rhs: Operand) {
        self.f.push(Inst::Alu { op, dst, lhs, rhs });
    }

    /// The `hist(x, bits)` bucket index:
    /// - `x < 0` → 0;
    /// - `x < 2^bits` → `x + 1` (exact buckets; with `bits = 0` only 0 → 1);
    /// - otherwise, with `e = floor(log2 x)` and `s = e - bits`:
    ///   `1 + (s << bits) + (x >> s)`, where `x >> s` is in
    ///   `[2^bits, 2^(bits+1))`, i.e. the sub-bucket of width `2^s`.
    ///
    /// With `bits = 0` this is bpftrace's `2 + floor(log2 x)`; the log2 is
    /// a 6-step binary search, the sub-bucket costs one subtraction, two
    /// shifts and two additions.
    pub(super) fn hist_bucket(&mut self, x: VReg, bits: u8) -> VReg {
        let (b, n, done) = (self.f.vreg(), self.f.vreg(), self.f.label());
        self.f.push(Inst::Mov {
            dst: b,
            src: Operand::Imm(0),
        });
        self.jump_if(Cond::SLt, x, Operand::Imm(0), done);
        if bits == 0 {
            self.f.push(Inst::Mov {
                dst: b,
                src: Operand::Imm(1),
            });
            self.jump_if(Cond::Eq, x, Operand::Imm(0), done);
        } else {
            self.alu3(AluOp::Add, b, Operand::Reg(x), Operand::Imm(1));
            self.jump_if(Cond::Lt, x, Operand::Imm(1i64 << bits), done);
        }
        self.f.push(Inst::Mov {
            dst: n,
            src: Operand::Reg(x),
        });
        self.f.push(Inst::Mov {
            dst: b,
            src: Operand::Imm(2),
        });
        for shift in [32, 16, 8, 4, 2, 1] {
            let skip = self.f.label();
            self.jump_if(Cond::Lt, n, Operand::Imm(1i64 << shift), skip);
            self.alu3(AluOp::Rsh, n, Operand::Reg(n), Operand::Imm(shift));
            self.alu3(AluOp::Add, b, Operand::Reg(b), Operand::Imm(shift));
            self.f.push(Inst::Label(skip));
        }
        if bits > 0 {
            // b = 2 + e here; n (now 1) is reused for s = e - bits.
            let k = i64::from(bits);
            self.alu3(AluOp::Sub, n, Operand::Reg(b), Operand::Imm(2 + k));
            self.alu3(AluOp::Lsh, b, Operand::Reg(n), Operand::Imm(k));
            self.alu3(AluOp::Rsh, n, Operand::Reg(x), Operand::Reg(n));
            self.alu3(AluOp::Add, b, Operand::Reg(b), Operand::Reg(n));
            self.alu3(AluOp::Add, b, Operand::Reg(b), Operand::Imm(1));
        }
        self.f.push(Inst::Label(done));
        b
    }

    /// lhist() bucket: 0 below `min`, n+1 at or above `max`, else 1 + (x-min)/step.
    pub(super) fn linear_bucket(&mut self, x: VReg, min: i64, max: i64, step: i64) -> VReg {
        let (b, done) = (self.f.vreg(), self.f.label());
        self.f.push(Inst::Mov {
            dst: b,
            src: Operand::Imm(0),
        });
        self.jump_if(Cond::SLt, x, Operand::Imm(min), done);
        self.f.push(Inst::Mov {
            dst: b,
            src: Operand::Imm((max - min) / step + 1),
        });
        self.jump_if(Cond::SGe, x, Operand::Imm(max), done);
        self.alu3(AluOp::Sub, b, Operand::Reg(x), Operand::Imm(min));
        self.alu3(AluOp::Div, b, Operand::Reg(b), Operand::Imm(step));
        self.alu3(AluOp::Add, b, Operand::Reg(b), Operand::Imm(1));
        self.f.push(Inst::Label(done));
        b
    }
}
