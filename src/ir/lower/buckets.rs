//! Histogram bucket indexes computed in the kernel: `hist(x)`, `hist(x, k)`
//! and `lhist()`. `format::loghist::hist_index` is the Rust reference of
//! [`Lower::hist_bucket`] and the tests check the two agree.

use super::Lower;
use crate::ir::{AluOp, Cond, VReg};

impl Lower<'_> {
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
        self.f.mov_imm(b, 0);
        self.f.branch_imm(Cond::SLt, x, 0, done);
        if bits == 0 {
            self.f.mov_imm(b, 1);
            self.f.branch_imm(Cond::Eq, x, 0, done);
        } else {
            self.f.alu_imm(AluOp::Add, b, x, 1);
            self.f.branch_imm(Cond::Lt, x, 1i64 << bits, done);
        }
        self.f.mov_reg(n, x);
        self.f.mov_imm(b, 2);
        for shift in [32, 16, 8, 4, 2, 1] {
            let skip = self.f.label();
            self.f.branch_imm(Cond::Lt, n, 1i64 << shift, skip);
            self.f.alu_imm(AluOp::Rsh, n, n, shift);
            self.f.alu_imm(AluOp::Add, b, b, shift);
            self.f.bind(skip);
        }
        if bits > 0 {
            // b = 2 + e here; n (now 1) is reused for s = e - bits.
            let k = i64::from(bits);
            self.f.alu_imm(AluOp::Sub, n, b, 2 + k);
            self.f.alu_imm(AluOp::Lsh, b, n, k);
            self.f.alu_reg(AluOp::Rsh, n, x, n);
            self.f.alu_reg(AluOp::Add, b, b, n);
            self.f.alu_imm(AluOp::Add, b, b, 1);
        }
        self.f.bind(done);
        b
    }

    /// lhist() bucket: 0 below `min`, n+1 at or above `max`, else 1 + (x-min)/step.
    pub(super) fn linear_bucket(&mut self, x: VReg, min: i64, max: i64, step: i64) -> VReg {
        let (b, done) = (self.f.vreg(), self.f.label());
        self.f.mov_imm(b, 0);
        self.f.branch_imm(Cond::SLt, x, min, done);
        self.f.mov_imm(b, (max - min) / step + 1);
        self.f.branch_imm(Cond::SGe, x, max, done);
        self.f.alu_imm(AluOp::Sub, b, x, min);
        self.f.alu_imm(AluOp::Div, b, b, step);
        self.f.alu_imm(AluOp::Add, b, b, 1);
        self.f.bind(done);
        b
    }
}
