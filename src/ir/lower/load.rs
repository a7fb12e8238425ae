//! Lowering of reads: probe arguments and return values, struct fields
//! and strings in kernel memory, the context or the packet, map values
//! and tuple elements.

use super::mem::{Base, Place};
use super::{Lower, Val};
use crate::arch;
use crate::bpf::MapId;
use crate::diag::{Diagnostic, Result};
use crate::ir::{Addr, AluOp, Cond, Operand, Slot, VReg, Width};
use crate::providers::{self, ArgAccess};
use crate::sema::tast::{Agg, Expr, ExprKind as K, MapValue, Space};
use crate::types::Ty;

/// Where a field or string is: its base pointer (none: the context), the
/// offset from it and the address space.
pub(super) type Location<'e> = (Option<&'e Expr>, u32, Space);

impl Lower<'_> {
    /// `argN`.
    pub(super) fn probe_arg(&mut self, n: u32) -> VReg {
        self.probe_word(arch::ARGS[n as usize], n)
    }

    /// `retval`: after the arguments in a context of u64 words (fexit).
    pub(super) fn retval(&mut self) -> VReg {
        self.probe_word(arch::RETVAL, self.prog.param_count)
    }

    /// A word of the probe's context: register `reg` of `struct pt_regs`
    /// for a probe reading registers, else word `index` of its u64 array.
    fn probe_word(&mut self, reg: arch::Reg, index: u32) -> VReg {
        let off = match providers::of_kind(self.prog.probe.kind).args {
            ArgAccess::Regs => reg.offset,
            _ => index as i16 * 8,
        };
        self.f.ctx_load(off, Width::B8)
    }

    /// A `size`-byte field of type `ty` at `at`, its bits `(shift, bits)`
    /// when it is a bitfield, sign-extended when `ty` is signed.
    pub(super) fn field(
        &mut self,
        ty: &Ty,
        (base, offset, space): Location<'_>,
        size: u8,
        bitfield: Option<(u8, u8)>,
    ) -> Result<VReg> {
        let width = Width::from_bytes(size as u64).unwrap_or(Width::B8);
        let r = match (space, base) {
            (Space::Kernel, Some(b)) => {
                let v = self.expr(b)?;
                let base = self.scalar_of(v);
                self.f.read_kernel(base, offset, width)
            }
            (Space::Packet, Some(b)) => self.packet_load(b, offset, width)?,
            _ => self.f.ctx_load(offset as i16, width),
        };
        // The loaded word stays as it is (a repeated read reuses it);
        // a bitfield or a sign extension goes into a new register.
        let (lsh, bits) = match bitfield {
            Some((shift, bits)) => (64 - shift as i64 - bits as i64, bits as i64),
            None if ty.is_signed() && size < 8 => (64 - size as i64 * 8, size as i64 * 8),
            None => return Ok(r),
        };
        let out = self.f.vreg();
        self.f.alu_imm(AluOp::Lsh, out, r, lsh);
        let op = if ty.is_signed() {
            AluOp::Arsh
        } else {
            AluOp::Rsh
        };
        self.f.alu_imm(op, out, out, 64 - bits);
        Ok(out)
    }

    /// A string (or byte array) of `len` bytes at `at`, copied into a
    /// temporary slot; up to its NUL when `nul_terminated`. A context
    /// string with `data_loc` is where the context's `__data_loc` word
    /// says.
    pub(super) fn string_field(
        &mut self,
        len: u32,
        (base, offset, space): Location<'_>,
        nul_terminated: bool,
        data_loc: bool,
    ) -> Result<Val> {
        let slot = self.temp(len);
        if let (Space::Packet, Some(b)) = (space, base) {
            self.packet_copy(b, offset, len, slot)?;
            return Ok(Val::Mem(slot, len));
        }
        self.zero(Place::stack(slot), len);
        let src = match (space, base) {
            (Space::Kernel, Some(b)) => self.address(b, offset)?,
            _ => {
                let a = self.f.vreg();
                let off = if data_loc {
                    let loc = self.f.ctx_load(offset as i16, Width::B4);
                    self.f.alu_imm(AluOp::And, loc, loc, 0xffff);
                    Operand::Reg(loc)
                } else {
                    Operand::Imm(offset.into())
                };
                self.f.alu(AluOp::Add, a, Operand::Reg(self.f.ctx), off);
                a
            }
        };
        let dst = self.addr(Place::stack(slot));
        if nul_terminated {
            self.f.probe_read_str(dst, len, src);
        } else {
            self.f.probe_read(dst, len, src);
        }
        Ok(Val::Mem(slot, len))
    }

    /// `base + offset` as a register.
    pub(super) fn address(&mut self, base: &Expr, offset: u32) -> Result<VReg> {
        let v = self.expr(base)?;
        let b = self.scalar_of(v);
        Ok(self.offset(b, offset as i64))
    }

    /// The word at `off` in memory value `x` (a scalar stays as it is).
    pub(super) fn word(&mut self, x: &Expr, off: u32) -> Result<Val> {
        Ok(match self.expr(x)? {
            Val::Mem(slot, _) => Val::Reg(self.f.load(Addr::Stack(slot, off as i32), Width::B8)),
            v => v,
        })
    }

    /// The element `e` of `tuple` at `offset` (of a map's tuple value:
    /// read in place).
    pub(super) fn element(&mut self, e: &Expr, tuple: &Expr, offset: u32) -> Result<Val> {
        if let K::MapRead { map, keys } = &tuple.kind {
            return self.map_read(*map, keys, &e.ty, Some(offset), None);
        }
        let Val::Mem(slot, _) = self.expr(tuple)? else {
            return Err(Diagnostic::at(e.span, "a tuple element of a non-tuple"));
        };
        let size = e.ty.storage_size();
        if e.ty.is_scalar() {
            let width = Width::from_bytes(u64::from(size)).unwrap_or(Width::B8);
            return Ok(Val::Reg(
                self.f.load(Addr::Stack(slot, offset as i32), width),
            ));
        }
        let from = Place {
            base: Base::Stack(slot),
            off: offset as i32,
        };
        let copy = self.temp(size);
        self.copy(Place::stack(copy), from, size);
        Ok(Val::Mem(copy, size))
    }

    /// The value of `map[keys]` (zero when missing), or with `element`,
    /// the tuple element of type `ty` at that offset in it (read in
    /// place, not copying the whole tuple). A memory value is copied into
    /// `into` if given, else into a temporary slot.
    pub(super) fn map_read(
        &mut self,
        map: MapId,
        keys: &[Expr],
        ty: &Ty,
        element: Option<u32>,
        into: Option<Slot>,
    ) -> Result<Val> {
        let key = self.key(map, keys, None)?;
        let p = self.lookup(map, key);
        let missing = self.f.label();
        let agg = match &self.script.maps[map.0 as usize].value {
            MapValue::Agg(a) if element.is_none() => Some(*a),
            _ => None,
        };
        let (offset, width) = match element {
            Some(offset) => (offset, Width::from_bytes(u64::from(ty.storage_size()))),
            None => (0, Some(Width::B8)),
        };
        if ty.is_scalar() {
            let r = self.f.imm(0);
            self.f.branch_imm(Cond::Eq, p, 0, missing);
            let addr = Addr::Reg(p, offset as i16);
            self.f.load_into(r, addr, width.unwrap_or(Width::B8));
            if agg == Some(Agg::Avg) {
                let sum = self.f.load(Addr::Reg(p, 8), Width::B8);
                self.f.alu_reg(AluOp::Div, r, sum, r);
            }
            self.f.bind(missing);
            return Ok(Val::Reg(r));
        }
        let size = ty.storage_size();
        let slot = into.unwrap_or_else(|| self.temp(size));
        self.zero(Place::stack(slot), size);
        self.f.branch_imm(Cond::Eq, p, 0, missing);
        let from = Place {
            base: Base::Ptr(p),
            off: offset as i32,
        };
        self.copy(Place::stack(slot), from, size);
        self.f.bind(missing);
        Ok(Val::Mem(slot, size))
    }
}
