//! Lowering of expressions: [`Lower::expr`] hands each kind to the
//! function of its family: constants, variables, tuples, inlined calls and
//! operators here, reads in `load`, built-in variables and functions in
//! `builtin` and `rate_limit`, conditions in `cond`.

use super::mem::{Base, Place};
use super::{Home, Lower, Val};
use crate::diag::{Result, Span};
use crate::ir::{Addr, AluOp, Cond, Inst, Operand, Slot, VReg, Width};
use crate::sema::tast::{Expr, ExprKind as K, InlineResult, Stmt, VarId};
use crate::syntax::ast::{BinOp, UnOp};
use crate::types::Ty;

impl Lower<'_> {
    /// Lowers an expression; its instructions are attributed to its span.
    pub(super) fn expr(&mut self, e: &Expr) -> Result<Val> {
        let outer = self.loc;
        self.set_loc(e.span);
        let v = self.expr_kind(e);
        if let Some(outer) = outer {
            self.set_loc(outer);
        }
        v
    }

    /// Marks where the following instructions come from.
    pub(super) fn set_loc(&mut self, span: Span) {
        if self.loc != Some(span) {
            // A marker with no instruction after it is replaced, not kept.
            match self.f.insts.last_mut() {
                Some(Inst::Loc(last)) => *last = span,
                _ => self.f.push(Inst::Loc(span)),
            }
            self.loc = Some(span);
        }
    }

    /// Lowers `e` with the function of its kind's family.
    fn expr_kind(&mut self, e: &Expr) -> Result<Val> {
        let ty = &e.ty;
        Ok(match &e.kind {
            K::Int(v) => Val::Reg(self.f.imm(*v)),
            K::Str(s) => self.string(s, ty.storage_size()),
            K::Var(id) => self.var(*id),
            K::Tuple(items) => self.tuple(items, ty)?,
            K::Retyped(x) => self.expr(x)?,
            K::Inline {
                body,
                result,
                locals,
            } => self.inline_call(body, result, locals)?,
            // Operators.
            K::Unary(op, x) => Val::Reg(self.unary(*op, x)?),
            K::Binary { lhs, rhs, .. } if matches!(ty, Ty::PacketPtr(_)) => {
                self.packet_sum(lhs, rhs)?
            }
            K::Binary {
                op,
                lhs,
                rhs,
                signed,
            } => self.binary(e, *op, lhs, rhs, *signed)?,
            K::Ternary(c, a, b) => self.ternary(ty, c, a, b)?,
            K::Convert(x) => Val::Reg(self.convert(x, ty)?),
            K::FromNetwork { bits, value } => Val::Reg(self.network_to_host(*bits, value)?),
            // Loads (`load`).
            K::Arg(n) => Val::Reg(self.probe_arg(*n)),
            K::Retval => Val::Reg(self.retval()),
            K::Load {
                base,
                offset,
                size,
                bitfield,
                space,
            } => {
                let at = (base.as_deref(), *offset, *space);
                Val::Reg(self.field(ty, at, *size, *bitfield)?)
            }
            K::LoadStr {
                base,
                offset,
                nul_terminated,
                space,
                data_loc,
            } => {
                let at = (base.as_deref(), *offset, *space);
                self.string_field(ty.storage_size(), at, *nul_terminated, *data_loc)?
            }
            K::Offset(base, off) => Val::Reg(self.address(base, *off)?),
            K::MapRead { map, keys } => self.map_read(*map, keys, ty, None, None)?,
            K::Element { tuple, offset } => self.element(e, tuple, *offset)?,
            K::Word(x, off) => self.word(x, *off)?,
            // Built-in variables and functions (`builtin`, `rate_limit`).
            K::Builtin(v) => self.builtin(*v),
            K::Kstack(limit) => self.kstack(*limit),
            K::Ntop { family, addr } => self.ntop(*family, addr)?,
            K::RateLimit { per_second, slot } => {
                Val::Reg(self.ratelimit(e.span, *per_second, *slot)?)
            }
        })
    }

    /// A string constant of `len` bytes (NUL-padded) in a temporary slot.
    fn string(&mut self, s: &str, len: u32) -> Val {
        let slot = self.temp(len);
        let mut bytes = s.as_bytes().to_vec();
        bytes.resize(len.div_ceil(8) as usize * 8, 0);
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let word = i64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
            let addr = Addr::Stack(slot, i as i32 * 8);
            self.f.store_imm(addr, Width::B8, word);
        }
        Val::Mem(slot, len)
    }

    /// A `$variable`, where it lives.
    fn var(&self, id: VarId) -> Val {
        match self.vars[id.0 as usize] {
            Home::Reg(r) => Val::Reg(r),
            Home::Mem(slot, size) => Val::Mem(slot, size),
        }
    }

    /// A tuple built in a temporary slot.
    fn tuple(&mut self, items: &[Expr], ty: &Ty) -> Result<Val> {
        let size = ty.storage_size();
        let slot = self.temp(size);
        self.tuple_into(slot, items, ty)?;
        Ok(Val::Mem(slot, size))
    }

    /// Builds a tuple in `slot` (zeroed first: it may have padding).
    /// Its layout is that of `ty` (the tuple's own type, or the wider one
    /// of the variable or map value it is built for).
    pub(super) fn tuple_into(&mut self, slot: Slot, items: &[Expr], ty: &Ty) -> Result<()> {
        let tys: Vec<Ty> = match ty {
            Ty::Tuple(tys) if tys.len() == items.len() => tys.clone(),
            _ => items.iter().map(|i| i.ty.clone()).collect(),
        };
        let (offsets, size) = crate::types::tuple_layout(&tys);
        self.zero(Place::stack(slot), size);
        for ((item, off), ty) in items.iter().zip(offsets).zip(&tys) {
            let v = self.expr(item)?;
            self.store_val(
                Place {
                    base: Base::Stack(slot),
                    off: off as i32,
                },
                v,
                ty.storage_size(),
            );
        }
        Ok(())
    }

    /// An inlined call: its body with its `locals` in place, then its value.
    fn inline_call(
        &mut self,
        body: &[Stmt],
        result: &InlineResult,
        locals: &[VarId],
    ) -> Result<Val> {
        let locals: Vec<usize> = locals.iter().map(|v| v.0 as usize).collect();
        self.place_locals(&locals);
        self.start_vars(&locals);
        let out = self.f.label();
        self.leave.push(out);
        let lowered = self.block(body);
        self.leave.pop();
        lowered?;
        self.f.bind(out);
        let value = match result {
            InlineResult::Var(id) => self.var(*id),
            InlineResult::Expr(e) => self.expr(e)?,
            InlineResult::Nothing => Val::Reg(self.f.imm(0)),
        };
        let kept = match value {
            Val::Mem(slot, _) => Some(slot),
            Val::Reg(_) => None,
        };
        self.release_locals(&locals, kept);
        Ok(value)
    }

    /// `-x`, `~x` or `!x`.
    fn unary(&mut self, op: UnOp, x: &Expr) -> Result<VReg> {
        let v = self.expr(x)?;
        let x = self.scalar_of(v);
        let r = self.f.vreg();
        match op {
            UnOp::Neg => self.f.neg(r, x),
            UnOp::BitNot => self.f.alu_imm(AluOp::Xor, r, x, -1),
            _ => {
                let done = self.f.label();
                self.f.mov_imm(r, 1);
                self.f.branch_imm(Cond::Eq, x, 0, done);
                self.f.mov_imm(r, 0);
                self.f.bind(done);
            }
        }
        Ok(r)
    }

    /// A packet pointer plus a number, either way round.
    fn packet_sum(&mut self, lhs: &Expr, rhs: &Expr) -> Result<Val> {
        let (ptr, n) = match lhs.ty {
            Ty::PacketPtr(_) => (lhs, rhs),
            _ => (rhs, lhs),
        };
        self.packet_add(ptr, n)
    }

    /// A binary operator: arithmetic, or a condition's value (0 or 1).
    fn binary(&mut self, e: &Expr, op: BinOp, lhs: &Expr, rhs: &Expr, signed: bool) -> Result<Val> {
        let r = self.f.vreg();
        if super::cond::is_condition(op) || matches!(op, BinOp::And | BinOp::Or) {
            let done = self.f.label();
            self.f.mov_imm(r, 0);
            self.branch_unless(e, done)?;
            self.f.mov_imm(r, 1);
            self.f.bind(done);
            return Ok(Val::Reg(r));
        }
        let lv = self.expr(lhs)?;
        let l = self.scalar_of(lv);
        let rr = self.operand(rhs)?;
        let alu = match op {
            BinOp::Add => AluOp::Add,
            BinOp::Sub => AluOp::Sub,
            BinOp::Mul => AluOp::Mul,
            BinOp::Div | BinOp::Mod if signed => {
                let rv = self.scalar_operand(rr);
                return Ok(Val::Reg(self.signed_div(op == BinOp::Mod, l, rv)));
            }
            BinOp::Div => AluOp::Div,
            BinOp::Mod => AluOp::Mod,
            BinOp::BitAnd => AluOp::And,
            BinOp::BitOr => AluOp::Or,
            BinOp::BitXor => AluOp::Xor,
            BinOp::Shl => AluOp::Lsh,
            BinOp::Shr if signed => AluOp::Arsh,
            BinOp::Shr => AluOp::Rsh,
            _ => unreachable!("conditions are handled above"),
        };
        self.f.alu(alu, r, Operand::Reg(l), rr);
        Ok(Val::Reg(r))
    }

    /// `c ? a : b`, its value in a register or a zeroed slot.
    fn ternary(&mut self, ty: &Ty, c: &Expr, a: &Expr, b: &Expr) -> Result<Val> {
        let (else_l, done) = (self.f.label(), self.f.label());
        let size = ty.storage_size();
        let out = if ty.is_scalar() {
            Val::Reg(self.f.vreg())
        } else {
            Val::Mem(self.temp(size), size)
        };
        if let Val::Mem(slot, size) = out {
            self.zero(Place::stack(slot), size);
        }
        self.branch_unless(c, else_l)?;
        self.assign_to(out, a)?;
        self.f.jump(done);
        self.f.bind(else_l);
        self.assign_to(out, b)?;
        self.f.bind(done);
        Ok(out)
    }

    /// Evaluates `e` into an existing value location (ternary branches).
    fn assign_to(&mut self, out: Val, e: &Expr) -> Result<()> {
        let v = self.expr(e)?;
        match out {
            Val::Reg(r) => {
                let s = self.scalar_of(v);
                self.f.mov_reg(r, s);
            }
            Val::Mem(slot, size) => self.store_val(Place::stack(slot), v, size),
        }
        Ok(())
    }

    /// A cast of `x` to integer type `ty`: truncated, sign-extended when
    /// signed.
    fn convert(&mut self, x: &Expr, ty: &Ty) -> Result<VReg> {
        let v = self.expr(x)?;
        let src = self.scalar_of(v);
        let r = self.f.vreg();
        self.f.mov_reg(r, src);
        if let Ty::Int { size, signed } = *ty {
            self.extend(r, size, signed);
        }
        Ok(r)
    }

    /// Truncates `r` to `size` bytes, sign-extending when `signed`.
    fn extend(&mut self, r: VReg, size: u8, signed: bool) {
        if size >= 8 {
            return;
        }
        let shift = 64 - size as i64 * 8;
        self.f.alu_imm(AluOp::Lsh, r, r, shift);
        let op = if signed { AluOp::Arsh } else { AluOp::Rsh };
        self.f.alu_imm(op, r, r, shift);
    }

    /// The low `bits` bits of `value` from network to host byte order.
    fn network_to_host(&mut self, bits: u8, value: &Expr) -> Result<VReg> {
        let v = self.expr(value)?;
        let x = self.scalar_of(v);
        let r = self.f.vreg();
        self.f.alu_imm(AluOp::FromBe, r, x, bits.into());
        Ok(r)
    }

    /// A scalar expression as an operand: constants stay immediates.
    pub(super) fn operand(&mut self, e: &Expr) -> Result<Operand> {
        if let K::Int(v) = e.kind {
            return Ok(Operand::Imm(v));
        }
        let v = self.expr(e)?;
        Ok(Operand::Reg(self.scalar_of(v)))
    }

    /// An operand in a register.
    pub(super) fn scalar_operand(&mut self, o: Operand) -> VReg {
        match o {
            Operand::Reg(r) => r,
            Operand::Imm(v) => self.f.imm(v),
        }
    }
}
